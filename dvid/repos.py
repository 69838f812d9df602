"""RepoManager: repos, their version DAGs and data instances, persisted in the metadata key space.

Metadata layout (DVID's keys, msgpack values instead of Go gob):

======================  ===========================================================
``00 03 01``            next repo id, next version id, next instance id (3 x u32be)
``00 04 01 <repo>``     the repo record: alias, description, log, DAG, instances
``00 05 01``            metadata format marker
``00 07 01 <repo>``     saved mutation id (u64 little-endian)
``00 08 01 <inst>``     an instance whose data is still being deleted (value: its store's name)
``00 20 01 <token>``    an import in progress or its garbage (dvid/transfer)
``00 20 01 replica v``  an open version an import created (a replica a later push may replace)
======================  ===========================================================

With several stores (``[store.NAME]`` + ``[backend]``), metadata lives in the metadata store and
each instance's data in the store chosen for it at creation; that store's name is kept in the repo
record (``instance_stores``: data UUID -> store name), so a changed configuration cannot silently
point an existing instance at another (empty) store: the manager refuses to start instead.

Every change rewrites the affected repo record in one atomic batch together with the id
counters, so a restarted server sees exactly what it had. Version ids are allocated server-wide
and increase, so a child's id always exceeds its parents'.
"""

from __future__ import annotations

import bisect
import json
import logging
import random
import re
import struct
import threading
import uuid as uuidlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import msgpack

from dvid.dag.dag import Node, VersionDAG, log_entry
from dvid.datatype import registry
from dvid.datatype.base import Datatype, InstanceMeta, parse_tags_setting
from dvid.datatype.common.envelope import Compression
from dvid.datatype.common.numbers import parse_decimal
from dvid.datatype.common.request import parse_bool
from dvid.errors import BadRequest, Conflict, DVIDError, NotFound
from dvid.jobs import JobRegistry
from dvid.repo import InstanceRepoAccess, Repo, new_uuid, validate_assigned_uuid
from dvid.storage import keys
from dvid.storage.stores import Stores

log = logging.getLogger("dvid.repos")

NEW_IDS_KEY = keys.metadata_key(3)
FORMAT_KEY = keys.metadata_key(5)
REPO_CLASS = 4
MUTATION_ID_CLASS = 7
PENDING_DELETE_CLASS = 8
TRANSFER_CLASS = 0x20  # import in progress, or garbage an import left (dvid/transfer)
METADATA_FORMAT = {"format": "dvid-python-msgpack", "version": 1}
MUTATION_ID_STRIDE = 100

#: Names no instance may take (they are node-level actions).
RESERVED_NAMES = frozenset({"log", "branch", "note", "commit", "newversion", "tag", "status"})
_NAME = re.compile(r"^[^/\x00-\x1f]+$")
_CORE_SETTINGS = frozenset({"typename", "dataname", "versioned", "compression", "checksum", "tags"})


def _new_instance_message(name: str, type_name: str, config: dict[str, Any]) -> str:
    """The repo log's line for a new instance: its settings as the client gave them, in JSON."""
    given = {k: v for k, v in config.items() if k.lower() not in ("typename", "dataname")}
    text = f'New data instance "{name}" of type "{type_name}"'
    return f"{text} with settings {json.dumps(given, sort_keys=True)}" if given else text


class RepoManager:
    """All repos of a server, with UUID resolution and persistence. Thread-safe."""

    def __init__(
        self,
        stores: Stores,
        *,
        instance_id_gen: str = "sequential",
        instance_id_start: int = 1,
        min_mutation_id_start: int = 1_000_000_000,
    ) -> None:
        #: every store; ``engine`` is the metadata store's engine
        self.stores = stores
        self.engine = stores.metadata_engine
        self.instance_id_gen = instance_id_gen
        self.min_mutation_id_start = max(1_000_000_000, min_mutation_id_start)
        self._lock = threading.RLock()
        self.repos: dict[int, Repo] = {}
        self._by_uuid: dict[str, tuple[Repo, int]] = {}
        self._sorted_uuids: list[str] = []
        self._next_repo = 1
        self._next_version = 1
        self._next_instance = max(1, instance_id_start)
        self._deleters: list[threading.Thread] = []
        self.jobs = JobRegistry()
        self._load()

    # ---- persistence -------------------------------------------------------------------------
    def _load(self) -> None:
        raw_ids = self.engine.get(NEW_IDS_KEY)
        if raw_ids is None:
            with self.engine.batch() as wb:
                wb.put(FORMAT_KEY, msgpack.packb(METADATA_FORMAT))
                wb.put(NEW_IDS_KEY, self._ids_bytes())
            return
        fmt = msgpack.unpackb(self.engine.get(FORMAT_KEY) or msgpack.packb({}))
        if fmt.get("format") != METADATA_FORMAT["format"]:
            raise BadRequest(f"the store holds metadata in an unknown format {fmt!r}")
        self._next_repo, self._next_version, next_instance = struct.unpack(">III", raw_ids)
        self._next_instance = max(self._next_instance, next_instance)
        for repo in self._stored_repos():
            self._register(repo)
        for k, value in self.engine.scan(
            keys.metadata_key(PENDING_DELETE_CLASS), keys.metadata_key(PENDING_DELETE_CLASS + 1)
        ):
            self._start_data_deletion(struct.unpack(">I", k[-4:])[0], value.decode() or None)

    def _stored_repos(self) -> list[Repo]:
        start = keys.metadata_key(REPO_CLASS)
        return [
            self._repo_from_record(msgpack.unpackb(value, strict_map_key=False))
            for _, value in self.engine.scan(start, keys.metadata_key(REPO_CLASS + 1))
        ]

    def reload_metadata(self) -> None:
        """Read the repos and the id counters again from the metadata store, as another server
        sharing the store (PostgreSQL) may have changed them. Every instance gets a fresh object;
        counters never move back."""
        with self._lock:
            raw_ids = self.engine.get(NEW_IDS_KEY)
            if raw_ids is not None:
                stored = struct.unpack(">III", raw_ids)
                self._next_repo = max(self._next_repo, stored[0])
                self._next_version = max(self._next_version, stored[1])
                self._next_instance = max(self._next_instance, stored[2])
            repos = self._stored_repos()
            self.repos.clear()
            self._by_uuid.clear()
            self._sorted_uuids.clear()
            for repo in repos:
                self._register(repo)

    def _ids_bytes(self) -> bytes:
        return struct.pack(">III", self._next_repo, self._next_version, self._next_instance)

    def _repo_key(self, repo_id: int) -> bytes:
        return keys.metadata_key(REPO_CLASS, keys.u32be(repo_id))

    def _repo_from_record(self, rec: dict[str, Any]) -> Repo:
        repo = Repo(
            repo_id=rec["repo_id"],
            dag=VersionDAG.from_record(rec["dag"]),
            alias=rec["alias"],
            description=rec["description"],
            passcode=rec.get("passcode", ""),
            log=list(rec["log"]),
            properties=dict(rec["properties"]),
            created=rec["created"],
            updated=rec["updated"],
            instance_stores=dict(rec.get("instance_stores", {})),
        )
        saved = self.engine.get(keys.metadata_key(MUTATION_ID_CLASS, keys.u32be(repo.repo_id)))
        if saved is not None:
            repo.mutation_id = repo.saved_mutation_id = struct.unpack("<Q", saved)[0]
        for meta_rec in rec["instances"]:
            self._attach_instance(repo, InstanceMeta.from_record(meta_rec))
        return repo

    def save(self, repo: Repo) -> None:
        """Write a repo's record and the id counters in one atomic batch."""
        with self._lock:
            record = msgpack.packb(repo.to_record())
            with self.engine.batch() as wb:
                wb.put(self._repo_key(repo.repo_id), record)
                wb.put(NEW_IDS_KEY, self._ids_bytes())

    def _register(self, repo: Repo) -> None:
        self.repos[repo.repo_id] = repo
        for node in repo.dag.nodes.values():
            self._index_uuid(repo, node)

    def _index_uuid(self, repo: Repo, node: Node) -> None:
        self._by_uuid[node.uuid] = (repo, node.version)
        bisect.insort(self._sorted_uuids, node.uuid)

    def _unindex_uuid(self, uuid: str) -> None:
        self._by_uuid.pop(uuid, None)
        i = bisect.bisect_left(self._sorted_uuids, uuid)
        if i < len(self._sorted_uuids) and self._sorted_uuids[i] == uuid:
            del self._sorted_uuids[i]

    # ---- ids ---------------------------------------------------------------------------------
    def _allocate_version(self) -> int:
        v = self._next_version
        self._next_version += 1
        return v

    def _allocate_instance_id(self) -> int:
        used = {inst.meta.instance_id for r in self.repos.values() for inst in r.instances.values()}
        if self.instance_id_gen == "random":
            while True:
                candidate = random.randint(1, 0xFFFFFFFE)
                if candidate not in used and not self._instance_has_data(candidate):
                    return candidate
        while self._next_instance in used or self._instance_has_data(self._next_instance):
            self._next_instance += 1
        iid = self._next_instance
        self._next_instance += 1
        return iid

    def _instance_has_data(self, instance_id: int) -> bool:
        """Whether any store holds keys of this instance id (or its deletion is still pending)."""
        if self.engine.get(keys.metadata_key(PENDING_DELETE_CLASS, keys.u32be(instance_id))) is not None:
            return True
        prefix = keys.instance_prefix(instance_id)
        stop = keys.instance_prefix(instance_id + 1)
        return any(
            next(eng.scan(prefix, stop, keys_only=True), None) is not None
            for eng in self.stores.engines.values()
        )

    def _new_child_uuid(self, assigned: Any) -> str:
        if assigned in (None, ""):
            return new_uuid()
        uuid = validate_assigned_uuid(assigned)
        if uuid in self._by_uuid:
            raise Conflict(f"UUID {uuid} already exists in this server")
        return uuid

    def new_mutation_id(self, repo: Repo) -> int:
        """The next mutation id of a repo (persisted in strides, as DVID)."""
        with self._lock:
            mid = repo.mutation_id
            repo.mutation_id += 1
            if repo.mutation_id >= repo.saved_mutation_id:
                repo.saved_mutation_id = repo.mutation_id + MUTATION_ID_STRIDE
                self._save_mutation_id(repo)
            return mid

    def _save_mutation_id(self, repo: Repo) -> None:
        key = keys.metadata_key(MUTATION_ID_CLASS, keys.u32be(repo.repo_id))
        self.engine.put(key, struct.pack("<Q", repo.saved_mutation_id))

    def locked(self) -> AbstractContextManager[Any]:
        """Hold the manager's (re-entrant) lock: no repo, DAG or instance changes meanwhile.

        ``with manager.locked():`` around reads that must see one consistent state (a transfer's
        plan) or around changes made outside the manager before committing them (an import).
        """
        return self._lock

    # ---- resolution --------------------------------------------------------------------------
    def lookup(self, uuid: str) -> tuple[Repo, Node] | None:
        """The repo and node of an exact version UUID, or None if this server lacks it."""
        with self._lock:
            found = self._by_uuid.get(uuid)
            if found is None:
                return None
            repo, version = found
            return repo, repo.dag.nodes[version]

    def resolve(self, spec: str) -> tuple[Repo, Node]:
        """A version reference: a UUID or unique prefix, ``uuid:branch``, ``:branch``, ``branch~N``."""
        parts = spec.split(":")
        if len(parts) > 2:
            raise BadRequest(f'bad UUID specification "{spec}"')
        prefix = parts[0]
        branch = parts[1] if len(parts) == 2 else ""
        with self._lock:
            if len(parts) == 2 and prefix == "":
                if len(self.repos) != 1:
                    if not self.repos:
                        raise NotFound("there are no repos on this server")
                    raise BadRequest("UUID must be specified if more than one repo exists")
                repo = next(iter(self.repos.values()))
                node = repo.dag.root
            else:
                repo, node = self._match_prefix(prefix)
            if branch:
                node = repo.dag.resolve_ref(branch)
            return repo, node

    def _match_prefix(self, prefix: str) -> tuple[Repo, Node]:
        exact = self._by_uuid.get(prefix)
        if exact is not None:
            repo, version = exact
            return repo, repo.dag.node(version)
        if not prefix:
            raise BadRequest("a UUID or UUID prefix is required")
        i = bisect.bisect_left(self._sorted_uuids, prefix)
        matches = []
        for uuid in self._sorted_uuids[i : i + 2]:
            if uuid.startswith(prefix):
                matches.append(uuid)
        if not matches:
            raise NotFound(f"could not find UUID with partial match to {prefix}")
        if len(matches) > 1:
            raise BadRequest(f"more than one UUID matches {prefix}")
        repo, version = self._by_uuid[matches[0]]
        return repo, repo.dag.node(version)

    # ---- repos -------------------------------------------------------------------------------
    def new_repo(
        self, alias: str = "", description: str = "", root: str | None = None, passcode: str = ""
    ) -> Repo:
        with self._lock:
            if root:
                if root in self._by_uuid:
                    raise Conflict(f"UUID already exists in datastore: {root}")
                root_uuid = validate_assigned_uuid(root)
            else:
                root_uuid = new_uuid()
            repo_id = self._next_repo
            self._next_repo += 1
            dag = VersionDAG(Node(uuid=root_uuid, version=self._allocate_version()))
            start = self.min_mutation_id_start
            repo = Repo(
                repo_id=repo_id,
                dag=dag,
                alias=alias,
                description=description,
                passcode=passcode,
                mutation_id=start,
                saved_mutation_id=start + MUTATION_ID_STRIDE,
            )
            self._register(repo)
            self.save(repo)
            self._save_mutation_id(repo)
            return repo

    def repo_info(self, repo: Repo) -> dict[str, Any]:
        """A repo's info JSON, taken under the lock so no concurrent change is seen half-made."""
        with self._lock:
            return repo.info()

    def iter_repos(self) -> Iterator[Repo]:
        with self._lock:
            return iter(sorted(self.repos.values(), key=lambda r: r.repo_id))

    def set_repo_info(self, repo: Repo, alias: Any = None, description: Any = None) -> None:
        for name, value in (("alias", alias), ("description", description)):
            if value is not None and not isinstance(value, str):
                raise BadRequest(f"'{name}' must be a string")
        with self._lock:
            if alias is not None:
                repo.alias = alias
            if description is not None:
                repo.description = description
            repo.touch()
            self.save(repo)

    def add_repo_log(self, repo: Repo, messages: list[str]) -> None:
        with self._lock:
            repo.log.extend(log_entry(m) for m in messages)
            repo.touch()
            self.save(repo)

    def delete_repo(self, repo: Repo) -> None:
        """Remove a repo's metadata at once and delete its instances' data in the background."""
        with self._lock:
            iids = [
                (inst.meta.instance_id, repo.instance_stores.get(inst.meta.data_uuid, self.stores.default))
                for inst in repo.instances.values()
            ]
            with self.engine.batch() as wb:
                wb.delete(self._repo_key(repo.repo_id))
                wb.delete(keys.metadata_key(MUTATION_ID_CLASS, keys.u32be(repo.repo_id)))
                for iid, store_name in iids:
                    wb.put(keys.metadata_key(PENDING_DELETE_CLASS, keys.u32be(iid)), store_name.encode())
            del self.repos[repo.repo_id]
            for uuid in list(repo.dag.by_uuid):
                self._unindex_uuid(uuid)
        for iid, store_name in iids:
            self._start_data_deletion(iid, store_name)

    # ---- versions ----------------------------------------------------------------------------
    def commit(self, repo: Repo, node: Node, note: str = "", log_messages: list[str] | None = None) -> Node:
        with self._lock:
            repo.dag.commit(node.version, note, log_messages)
            repo.touch()
            self.save(repo)
            return node

    def new_version(self, repo: Repo, parent: Node, note: str = "", uuid: Any = None) -> Node:
        with self._lock:
            child_uuid = self._new_child_uuid(uuid)
            child = repo.dag.new_version(parent.version, self._next_version, child_uuid, note)
            return self._added(repo, child)

    def branch(self, repo: Repo, parent: Node, name: str, note: str = "", uuid: Any = None) -> Node:
        with self._lock:
            child_uuid = self._new_child_uuid(uuid)
            child = repo.dag.branch(parent.version, self._next_version, child_uuid, name, note)
            return self._added(repo, child)

    def tag(self, repo: Repo, parent: Node, tag: str, note: str = "") -> Node:
        with self._lock:
            if tag in self._by_uuid:
                raise Conflict(f"tag {tag!r} is already used as a version name on this server")
            child = repo.dag.tag(parent.version, self._next_version, tag, note)
            return self._added(repo, child)

    def merge(self, repo: Repo, parents: list[Node], note: str = "", uuid: Any = None) -> Node:
        with self._lock:
            for p in parents:
                if p.uuid not in repo.dag:
                    raise BadRequest(f"merge parent {p.uuid} is not in the same repo as {parents[0].uuid}")
            child_uuid = self._new_child_uuid(uuid)
            child = repo.dag.merge([p.version for p in parents], self._next_version, child_uuid, note)
            return self._added(repo, child)

    def _added(self, repo: Repo, child: Node) -> Node:
        """Bookkeeping after the DAG accepted a new child with id ``_next_version``."""
        self._allocate_version()
        self._index_uuid(repo, child)
        repo.touch()
        self.save(repo)
        return child

    def resolve_merge(self, repo: Repo, data_names: list[str], parents: list[Node], note: str = "") -> Node:
        """DVID's ``resolve``: earlier parents win; later parents get conflicting keys tombstoned
        in a new committed child, then everything is merged conflict-free."""
        if len(parents) < 2:
            raise BadRequest("resolve requires at least two parents")
        if not data_names:
            raise BadRequest("resolve requires at least one data instance in 'data'")
        instances = [repo.instance(name) for name in data_names]
        for p in parents:
            if not p.locked:
                raise Conflict(f"can't merge an unlocked node: commit {p.uuid} first")
        with self._lock:
            ancestries = [repo.dag.ancestry(p.version) for p in parents]
            deletions: dict[int, dict[int, list[bytes]]] = {i: {} for i in range(len(parents))}
            for inst in instances:
                if not inst.versioned:
                    continue
                per_parent = [inst.context(a) for a in ancestries]
                visible = [dict(ctx.visible_versions()) for ctx in per_parent]
                all_tks = set().union(*visible)
                for tk in all_tks:
                    winner = next((v[tk] for v in visible if tk in v), None)
                    for i, v in enumerate(visible):
                        if tk in v and v[tk] != winner:
                            deletions[i].setdefault(inst.meta.instance_id, []).append(tk)
            final_parents: list[Node] = []
            for i, parent in enumerate(parents):
                if not deletions[i]:
                    final_parents.append(parent)
                    continue
                child = self.branch(
                    repo, parent, f"conflict-{parent.uuid}", "Version for deleting conflicts before merge"
                )
                ancestry = repo.dag.ancestry(child.version)
                by_id = {inst.meta.instance_id: inst for inst in instances}
                for iid, tks in deletions[i].items():
                    with by_id[iid].store.context(iid, ancestry).batch() as b:
                        for tk in tks:
                            b.delete(tk)
                self.commit(repo, child)
                final_parents.append(child)
            return self.merge(repo, final_parents, note)

    # ---- instances ---------------------------------------------------------------------------
    def instance_store_name(self, repo: Repo, meta: InstanceMeta) -> str:
        """The store holding an instance's data: the recorded one, else the configuration's choice."""
        name = repo.instance_stores.get(meta.data_uuid)
        if name is None:
            name = self.stores.choose(
                data_uuid=meta.data_uuid,
                name=meta.name,
                root_uuid=repo.root_uuid,
                type_name=meta.type_name,
                tags=meta.tags,
            )
            repo.instance_stores[meta.data_uuid] = name
        elif name not in self.stores.engines:
            raise DVIDError(
                f'data instance "{meta.name}" (data UUID {meta.data_uuid}) of repo {repo.root_uuid} is kept'
                f' in store "{name}", which is not configured'
                f" (stores: {', '.join(sorted(self.stores.engines))}); add [store.{name}] back",
                status=500,
            )
        return name

    def _attach_instance(self, repo: Repo, meta: InstanceMeta) -> Datatype:
        cls = registry.get_type(meta.type_name)
        inst = cls(
            meta,
            self.stores.versioned(self.instance_store_name(repo, meta)),
            save=lambda: self.save(repo),
            instance_names=lambda data_uuids: self._names_for(repo, data_uuids),
            repo_access=InstanceRepoAccess(self, repo),
        )
        repo.instances[meta.name] = inst
        return inst

    @staticmethod
    def _names_for(repo: Repo, data_uuids: list[str]) -> list[str]:
        by_uuid = {inst.meta.data_uuid: name for name, inst in repo.instances.items()}
        return [by_uuid.get(u, "undefined") for u in data_uuids]

    def new_instance(self, repo: Repo, node: Node, config: dict[str, Any]) -> Datatype:
        """Create a data instance from DVID's instance-creation JSON (keys case-insensitive)."""
        settings: dict[str, Any] = {}
        for key, value in config.items():
            k = key.lower()
            if k == "versioned" and isinstance(value, bool):
                settings[k] = value
            elif not isinstance(value, str):
                raise BadRequest(f"Setting for '{key}' was not a string")
            else:
                settings[k] = value
        type_name = settings.get("typename")
        name = settings.get("dataname")
        if not type_name:
            raise BadRequest("POST on repo endpoint requires specification of valid 'typename'")
        if not name:
            raise BadRequest("POST on repo endpoint requires specification of valid 'dataname'")
        cls = registry.get_type(type_name)
        self._check_instance_name(repo, name)
        versioned = parse_bool(settings.get("versioned", True), "versioned", None, what="setting")
        block_x = str(settings.get("blocksize", "32")).replace("_", ",").split(",")[0].strip()
        jpeg_level = parse_decimal(block_x, signed=False) or 32  # the block size is checked later
        compression = Compression.parse(
            settings.get("compression") or cls.default_compression,
            settings.get("checksum"),
            jpeg_level=jpeg_level,
        )
        tags = parse_tags_setting(settings.get("tags", ""))
        # "compression" is passed on too: a type may refuse some (imageblk: jpeg only for uint8blk)
        type_settings = cls.validate_settings(
            {k: v for k, v in settings.items() if k not in _CORE_SETTINGS or k == "compression"}
        )
        with self._lock:
            self._check_instance_name(repo, name)
            meta = InstanceMeta(
                name=name,
                type_name=cls.type_name,
                data_uuid=Datatype.new_data_uuid(),
                instance_id=self._allocate_instance_id(),
                repo_uuid=node.uuid,
                versioned=versioned,
                compression=compression.to_record(),
                tags=tags,
                properties={"settings": type_settings},
            )
            inst = self._attach_instance(repo, meta)
            repo.log.append(log_entry(_new_instance_message(name, cls.type_name, config)))
            repo.touch()
            self.save(repo)
            return inst

    @staticmethod
    def _check_instance_name(repo: Repo, name: str) -> None:
        if name in RESERVED_NAMES:
            raise BadRequest(f"{name!r} is a reserved name and cannot name a data instance")
        if not _NAME.match(name):
            raise BadRequest(f"data instance name {name!r} may not contain '/' or control characters")
        if name in repo.instances:
            raise Conflict(f'Data named "{name}" already exists in repo (root {repo.root_uuid})')

    def rename_instance(self, repo: Repo, old: str, new: str) -> None:
        with self._lock:
            inst = repo.instance(old)
            self._check_instance_name(repo, new)
            del repo.instances[old]
            inst.meta.name = new
            repo.instances[new] = inst
            repo.log.append(log_entry(f'Renamed data instance "{old}" to "{new}"'))
            repo.touch()
            self.save(repo)

    def delete_instance(self, repo: Repo, name: str) -> None:
        """Remove an instance's metadata at once and its data in the background."""
        with self._lock:
            inst = repo.instance(name)
            iid = inst.meta.instance_id
            store_name = repo.instance_stores.pop(inst.meta.data_uuid, self.stores.default)
            del repo.instances[name]
            for other in repo.instances.values():
                if inst.meta.data_uuid in other.meta.syncs:
                    other.meta.syncs.remove(inst.meta.data_uuid)
            repo.log.append(log_entry(f"Delete data instance '{name}' of type '{inst.type_name}'"))
            repo.touch()
            with self.engine.batch() as wb:
                wb.put(self._repo_key(repo.repo_id), msgpack.packb(repo.to_record()))
                wb.put(keys.metadata_key(PENDING_DELETE_CLASS, keys.u32be(iid)), store_name.encode())
        self._start_data_deletion(iid, store_name)

    def _start_data_deletion(self, instance_id: int, store_name: str | None = None) -> None:
        """Delete an instance's data from its store in the background (every store if not known)."""
        names = [store_name] if store_name in self.stores.engines else list(self.stores.engines)

        def run() -> None:
            with self.jobs.run(
                "delete-instance", f"deleting the data of instance id {instance_id}", "keys"
            ) as job:
                removed = sum(self.stores.versioned(n).delete_instance(instance_id) for n in names)
                job.advance(removed)
            self.engine.delete(keys.metadata_key(PENDING_DELETE_CLASS, keys.u32be(instance_id)))
            log.info("deleted %d keys of instance id %d", removed, instance_id)

        thread = threading.Thread(target=run, name=f"delete-instance-{instance_id}", daemon=True)
        self._deleters.append(thread)
        thread.start()

    def wait_for_deletions(self, timeout: float | None = None) -> None:
        """Block until background data deletions have finished (used at shutdown and in tests)."""
        for thread in list(self._deleters):
            thread.join(timeout)
        self._deleters = [t for t in self._deleters if t.is_alive()]

    def pending_deletions(self) -> int:
        start = keys.metadata_key(PENDING_DELETE_CLASS)
        return sum(
            1 for _ in self.engine.scan(start, keys.metadata_key(PENDING_DELETE_CLASS + 1), keys_only=True)
        )

    def types_in_use(self) -> dict[str, str]:
        with self._lock:
            return {
                inst.type_name: inst.type_url
                for repo in self.repos.values()
                for inst in repo.instances.values()
            }

    # ---- transfers (push and pull; the logic is in dvid/transfer) ------------------------------
    # An import writes its data under version and instance ids no metadata refers to yet, listed
    # in a marker ``00 20 01 <token>``; ``commit_transfer`` then registers everything in one
    # metadata batch. Leftover markers (a failed or interrupted import, or garbage an import
    # replaced) are cleaned by dvid.transfer.importer.clean_markers at startup.
    # ``00 20 01 "replica" <version u32be>`` records a version an import created while it was open
    # on the sender (a replica): a later push of that version may replace it. Version ids are never
    # reused, so a record outliving its version (committed here, repo deleted) is inert.
    def reserve_transfer(
        self, n_versions: int, n_instances: int, marker: Callable[[list[int], list[int]], dict[str, Any]]
    ) -> tuple[list[int], list[int], bytes]:
        """Allocate version and instance ids for an import and persist them with its marker."""
        with self._lock:
            versions = [self._allocate_version() for _ in range(n_versions)]
            iids = [self._allocate_instance_id() for _ in range(n_instances)]
            key = _new_transfer_key()
            with self.engine.batch() as wb:
                wb.put(NEW_IDS_KEY, self._ids_bytes())
                wb.put(key, msgpack.packb(marker(versions, iids)))
            return versions, iids, key

    def transfer_markers(self) -> list[tuple[bytes, dict[str, Any]]]:
        start = keys.metadata_key(TRANSFER_CLASS)
        return [
            (k, msgpack.unpackb(v, strict_map_key=False))
            for k, v in self.engine.scan(start, keys.metadata_key(TRANSFER_CLASS + 1))
            if not k.startswith(_REPLICA_PREFIX)
        ]

    def is_transfer_replica(self, version: int) -> bool:
        """Whether local version ``version`` was created by an import while open on the sender."""
        return self.engine.get(_replica_key(version)) is not None

    def drop_transfer_marker(self, key: bytes) -> None:
        self.engine.delete(key)

    def detached_instance(self, root_uuid: str, meta: InstanceMeta) -> Datatype:
        """An instance object for ``meta`` that belongs to no repo (to reach its store while importing)."""
        scratch = Repo(repo_id=0, dag=VersionDAG(Node(uuid=root_uuid, version=0)))
        found = self._by_uuid.get(root_uuid)
        if found is not None:
            scratch.instance_stores = dict(found[0].instance_stores)
        return self._attach_instance(scratch, meta)

    def transferred_repo(self, record: dict[str, Any], root: Node) -> Repo:
        """A repo an import creates, not yet registered (``commit_transfer`` does): the sender's repo
        record (alias, description, log, properties, times, mutation id) over the root node."""
        start = max(self.min_mutation_id_start, int(record.get("mutation_id") or 0))
        return Repo(
            repo_id=0,
            dag=VersionDAG(root),
            alias=record["alias"],
            description=record["description"],
            log=list(record["log"]),
            properties=dict(record["properties"]),
            created=record["created"],
            updated=record["updated"],
            mutation_id=start,
            saved_mutation_id=start + MUTATION_ID_STRIDE,
        )

    def attach_transferred(self, repo: Repo, meta: InstanceMeta) -> Datatype:
        """Register an imported instance in its repo (the caller holds :meth:`locked`, then commits)."""
        return self._attach_instance(repo, meta)

    def commit_transfer(
        self,
        repo: Repo,
        *,
        new_repo: bool,
        indexed: list[Node],
        marker_key: bytes,
        garbage: dict[str, Any] | None,
        replicas: dict[int, str] | None = None,
        unreplicated: list[int] | None = None,
        mutation_id: int = 0,
    ) -> tuple[bytes, dict[str, Any]] | None:
        """Persist an import: the repo record, the ids, the marker swapped for a garbage marker, at once.

        Returns the garbage marker as ``(key, marker)`` for the caller to clean, if there is one.

        The caller holds the lock (:meth:`locked`) and has already changed ``repo`` in memory; ``indexed`` are
        its nodes that are new or got a new version id. ``replicas`` (version id -> UUID) are
        recorded as replicas, ``unreplicated`` (replaced version ids) lose that record.
        ``mutation_id`` is the sender's next mutation id: an existing repo's next one is raised to it,
        so the mutation ids of edits here continue after those of the versions received.
        """
        garbage_key = _new_transfer_key() if garbage is not None else None
        with self._lock:
            if new_repo:
                repo.repo_id = self._next_repo
                self._next_repo += 1
            save_mutation_id = new_repo
            if mutation_id > repo.mutation_id:
                repo.mutation_id = mutation_id
                if repo.mutation_id >= repo.saved_mutation_id:
                    repo.saved_mutation_id = repo.mutation_id + MUTATION_ID_STRIDE
                    save_mutation_id = True
            with self.engine.batch() as wb:
                wb.put(self._repo_key(repo.repo_id), msgpack.packb(repo.to_record()))
                wb.put(NEW_IDS_KEY, self._ids_bytes())
                if save_mutation_id:
                    key = keys.metadata_key(MUTATION_ID_CLASS, keys.u32be(repo.repo_id))
                    wb.put(key, struct.pack("<Q", repo.saved_mutation_id))
                wb.delete(marker_key)
                if garbage_key is not None:
                    wb.put(garbage_key, msgpack.packb(garbage))
                for version in unreplicated or ():
                    wb.delete(_replica_key(version))
                for version, uuid in (replicas or {}).items():
                    wb.put(_replica_key(version), msgpack.packb({"uuid": uuid}))
            if new_repo:
                self._register(repo)
            else:
                for node in indexed:
                    self._unindex_uuid(node.uuid)
                    self._index_uuid(repo, node)
        return None if garbage is None or garbage_key is None else (garbage_key, garbage)


_REPLICA_PREFIX = keys.metadata_key(TRANSFER_CLASS, b"replica")


def _new_transfer_key() -> bytes:
    """The key of a new import or garbage marker (``00 20 01 <random token>``)."""
    return keys.metadata_key(TRANSFER_CLASS, uuidlib.uuid4().bytes)


def _replica_key(version: int) -> bytes:
    return _REPLICA_PREFIX + keys.u32be(version)
