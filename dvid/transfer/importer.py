"""The receiving side: check a transfer against what this server holds, write it invisibly, commit it.

1. ``Importer(manager, header)`` plans: which header nodes are new here (or replace an open
   version here), which instances are new, and refuses a diverged history (see ``_plan``).
   Only a replica may be replaced: an open version an import created here while it was open
   on the sender (recorded by ``RepoManager.commit_transfer``). Any other open version holds
   writes made here, so a push that would replace it is refused.
2. ``reserve()`` allocates local version and instance ids and persists them with a marker.
3. ``write(payload)`` stores a KVS record under those ids: no version or instance of this
   server's metadata refers to them yet, so nothing is visible.
4. ``commit()`` (after the END digest matched) re-checks the plan and registers nodes and
   instances in one metadata batch. ``abort()`` deletes what was written. A crash leaves the
   marker, and ``clean_markers`` deletes the written keys at the next start.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from dvid.dag.dag import Node, log_entry
from dvid.datatype import registry
from dvid.datatype.base import Datatype, InstanceMeta
from dvid.errors import BadRequest, Conflict
from dvid.repo import Repo
from dvid.repos import RepoManager
from dvid.transfer import stream

log = logging.getLogger("dvid.transfer")

_NODE_FIELDS = ("uuid", "branch", "note", "log", "locked", "parents", "created", "updated")


class Diverged(Conflict):
    """The receiver's history of the repo does not continue into the pushed one."""


@dataclass
class _Plan:
    repo: Repo | None  # None: a new repo
    versions: list[int | None]  # per header node: local version id, None if allocated by the import
    replaced: dict[int, int]  # header index -> local version id of the open node it replaces
    existing: list[Datatype | None]  # per header instance: the receiver's instance (same data UUID)
    new_id: list[bool]  # per header instance: data goes under a newly allocated instance id

    def signature(self) -> tuple[Any, ...]:
        return (
            id(self.repo),
            tuple(self.versions),
            tuple(sorted(self.replaced.items())),
            tuple(id(e) for e in self.existing),
        )


_INSTANCE_FIELDS = {"name": str, "type_name": str, "data_uuid": str, "versioned": bool, "full": bool}
_REPO_FIELDS = {"root": str, "alias": str, "description": str, "log": list, "properties": dict}


def _check_header(header: Any) -> None:
    """Refuse (400) a header whose structure the import could not follow."""
    if not isinstance(header, dict):
        raise BadRequest("transfer header must be a map")
    for name in ("mode", "repo", "target", "nodes", "send", "instances"):
        if name not in header:
            raise BadRequest(f"transfer header lacks {name!r}")
    if header["mode"] not in ("full", "flatten"):
        raise BadRequest(f"unknown transfer mode {header['mode']!r}")
    repo = header["repo"]
    if not isinstance(repo, dict) or any(not isinstance(repo.get(f), t) for f, t in _REPO_FIELDS.items()):
        raise BadRequest("transfer header has a malformed repo record")
    mutation_id = repo.get("mutation_id", 0)
    if type(mutation_id) is not int or not 0 <= mutation_id < 2**63:
        raise BadRequest("transfer header's repo record has a malformed mutation_id")
    nodes = header["nodes"]
    if not isinstance(nodes, list) or not nodes:
        raise BadRequest("transfer header lists no versions")
    for n in nodes:
        if (
            not isinstance(n, dict)
            or any(f not in n for f in _NODE_FIELDS)
            or not isinstance(n["uuid"], str)
            or not isinstance(n["branch"], str)
            or not isinstance(n["note"], str)
            or not isinstance(n["log"], list)
            or not isinstance(n["parents"], list)
            or not all(isinstance(p, str) for p in n["parents"])
        ):
            raise BadRequest("transfer header has a malformed node")
    uuids = [n["uuid"] for n in nodes]
    if len(set(uuids)) != len(uuids):
        raise BadRequest("transfer header lists a version twice")
    if header["target"] not in uuids:
        raise BadRequest("transfer header's target is not among its versions")
    send = header["send"]
    if not isinstance(send, list) or not all(isinstance(u, str) for u in send):
        raise BadRequest("transfer header has a malformed 'send' list")
    instances = header["instances"]
    if not isinstance(instances, list):
        raise BadRequest("transfer header has a malformed instance list")
    for rec in instances:
        if not isinstance(rec, dict) or any(
            not isinstance(rec.get(f), t) for f, t in _INSTANCE_FIELDS.items()
        ):
            raise BadRequest("transfer header has a malformed instance record")
        unknown = set(rec) - {"full"} - set(InstanceMeta.__dataclass_fields__)
        if unknown:
            raise BadRequest(
                f"transfer header's instance {rec['name']!r} has unknown fields {sorted(unknown)}"
            )
        registry.get_type(rec["type_name"])  # 400 if this server lacks the type
    for field in ("name", "data_uuid"):
        values = [rec[field] for rec in instances]
        if len(set(values)) != len(values):
            raise BadRequest(f"transfer header lists an instance {field} twice")


def _plan(manager: RepoManager, header: dict[str, Any]) -> _Plan:
    """What the import does here; raises Diverged/Conflict if it cannot be applied. Caller holds the lock."""
    nodes = header["nodes"]
    send = set(header["send"])
    uuids = [n["uuid"] for n in nodes]
    index = {u: i for i, u in enumerate(uuids)}
    root_uuid = header["repo"]["root"]
    found = manager.lookup(root_uuid)
    repo = found[0] if found else None
    if repo is not None and header["mode"] == "flatten":
        raise Conflict(
            f"version {root_uuid} already exists on this server: a flattened copy needs a new UUID"
        )
    if repo is not None and repo.root_uuid != root_uuid:
        raise Diverged(f"version {root_uuid} is on this server but is not the root of its repo")
    if nodes[0]["parents"] or uuids[0] != root_uuid:
        raise BadRequest("the first version of a transfer must be the repo root")
    versions: list[int | None] = []
    replaced: dict[int, int] = {}
    for i, n in enumerate(nodes):
        for p in n["parents"]:
            if index.get(p, i) >= i:
                raise BadRequest(f"version {n['uuid']}: parent {p} is not sent before it")
        other = manager.lookup(n["uuid"])
        if other is not None and other[0] is not repo:
            raise Conflict(f"version {n['uuid']} already exists on this server in another repo")
        if other is None:
            if n["uuid"] not in send:
                raise Conflict(
                    f"this server lacks version {n['uuid']}, which was not sent: rerun the transfer"
                )
            versions.append(None)
            continue
        assert repo is not None
        mine = other[1]
        my_parents = [repo.dag.nodes[p].uuid for p in mine.parents]
        if my_parents != n["parents"]:
            raise Diverged(
                f"history diverged: version {n['uuid']} has parents {my_parents} here but {n['parents']}"
                " in the pushed history"
            )
        if mine.locked:
            if not n["locked"]:
                raise Diverged(
                    f"history diverged: version {n['uuid']} is committed here but open on the sender"
                )
            if n["uuid"] in send:
                raise Conflict(f"version {n['uuid']} is committed here already: rerun the transfer")
            versions.append(mine.version)
        else:
            if n["uuid"] not in send:
                raise Conflict(f"version {n['uuid']} is open here but was not sent: rerun the transfer")
            if mine.children:
                raise Diverged(f"history diverged: open version {n['uuid']} has children here")
            if not manager.is_transfer_replica(mine.version):
                raise Conflict(
                    f"version {n['uuid']} is open on this server and was not received from a transfer,"
                    " so its local writes would be lost if the push replaced it: push into a fresh"
                    " server, or delete this repo here first"
                )
            versions.append(None)
            replaced[i] = mine.version
    if repo is not None:
        _check_branches(repo, nodes, versions, replaced)
    existing: list[Datatype | None] = []
    new_id: list[bool] = []
    by_data_uuid = {inst.meta.data_uuid: inst for inst in repo.instances.values()} if repo else {}
    carried = {rec["data_uuid"] for rec in header["instances"]}
    for rec in header["instances"]:
        mine_inst = by_data_uuid.get(rec["data_uuid"])
        named = repo.instances.get(rec["name"]) if repo else None
        # a name held here by an instance the transfer renames (it carries it too) is free
        if named is not None and named is not mine_inst and named.meta.data_uuid not in carried:
            raise Conflict(
                f"data instance {rec['name']!r} exists here with another data UUID"
                f" ({named.meta.data_uuid}, pushed {rec['data_uuid']})"
            )
        if mine_inst is not None:
            if mine_inst.type_name != rec["type_name"] or mine_inst.versioned != rec["versioned"]:
                raise Conflict(f"data instance {rec['name']!r} differs here in type or versioning")
            if mine_inst.versioned and rec["full"]:
                raise Conflict(f"data instance {rec['name']!r} exists here already: rerun the transfer")
        elif not rec["full"]:
            raise Conflict(f"this server lacks data instance {rec['name']!r}: rerun the transfer")
        existing.append(mine_inst)
        new_id.append(mine_inst is None or not rec["versioned"])
    return _Plan(repo, versions, replaced, existing, new_id)


def _check_branches(
    repo: Repo, nodes: list[dict[str, Any]], versions: list[int | None], replaced: dict
) -> None:
    """New versions must fit the receiver's DAG: one child per branch per version, unique branch names."""
    dag = repo.dag
    pushed = {n["uuid"] for n in nodes}
    branch_of = {n["uuid"]: n["branch"] for n in nodes}
    for i, n in enumerate(nodes):
        if versions[i] is not None or i in replaced:
            continue
        parent_branches = {branch_of[p] for p in n["parents"]}
        for p in n["parents"]:
            v = dag.by_uuid.get(p)
            if v is None:
                continue
            parent = dag.nodes[v]
            for c in parent.children:
                child = dag.nodes[c]
                if child.branch == n["branch"] and child.uuid not in pushed:
                    raise Diverged(
                        f"history diverged: version {p} has child {child.uuid} on branch"
                        f" {child.branch or 'master'!r} here, but {n['uuid']} in the pushed history"
                    )
        if n["branch"] not in parent_branches:
            taken = [m for m in dag.nodes.values() if m.branch == n["branch"] and m.uuid not in pushed]
            if taken:
                raise Diverged(
                    f"history diverged: branch {n['branch'] or 'master'!r} exists here"
                    f" (version {taken[0].uuid}) but not in the pushed history"
                )


def _node(rec: dict[str, Any], version: int, parents: list[int]) -> Node:
    return Node(
        uuid=rec["uuid"],
        version=version,
        branch=rec["branch"],
        note=rec["note"],
        log=list(rec["log"]),
        locked=bool(rec["locked"]),
        parents=parents,
        created=rec["created"],
        updated=rec["updated"],
    )


def _meta(rec: dict[str, Any], iid: int) -> InstanceMeta:
    fields = {k: v for k, v in rec.items() if k != "full"}
    fields["instance_id"] = iid
    return InstanceMeta.from_record(fields)


@dataclass
class _Target:
    inst: Datatype
    new_id: bool


class Importer:
    """One import of a transfer stream into a manager."""

    def __init__(self, manager: RepoManager, header: Any) -> None:
        _check_header(header)
        self.manager = manager
        self.header = header
        self.kvs = 0
        self.marker_key: bytes | None = None
        self.written = False
        with manager.locked():
            self.plan = _plan(manager, header)
        self.versions: list[int] = []
        self.root_version = 0
        self.targets: list[_Target] = []
        self._allocated: set[int] = set()

    # ---- reservation -------------------------------------------------------------------------
    def reserve(self) -> None:
        plan = self.plan
        root_uuid = self.header["repo"]["root"]
        n_versions = sum(1 for v in plan.versions if v is None)
        n_iids = sum(plan.new_id)
        metas: list[InstanceMeta | None] = []

        def marker(versions: list[int], iids: list[int]) -> dict[str, Any]:
            it = iter(iids)
            instances = []
            for rec, mine, new in zip(self.header["instances"], plan.existing, plan.new_id, strict=True):
                if new:
                    meta = _meta(rec, next(it))
                    instances.append([meta.to_record(), "all"])
                else:
                    assert mine is not None
                    meta = mine.meta
                    instances.append([meta.to_record(), "versions"])
                metas.append(meta)
            return {"root": root_uuid, "versions": versions, "instances": instances}

        new_versions, _, self.marker_key = self.manager.reserve_transfer(n_versions, n_iids, marker)
        it = iter(new_versions)
        self.versions = [v if v is not None else next(it) for v in plan.versions]
        self._allocated = set(new_versions)
        if plan.repo is not None and plan.repo.dag.root.uuid == root_uuid and 0 not in plan.replaced:
            self.root_version = plan.repo.dag.root_version
        else:
            self.root_version = self.versions[0]
        for meta, mine, new in zip(metas, plan.existing, plan.new_id, strict=True):
            assert meta is not None
            inst = self.manager.detached_instance(root_uuid, meta) if new else mine
            assert inst is not None
            self.targets.append(_Target(inst, new))

    # ---- data --------------------------------------------------------------------------------
    def write(self, payload: bytes) -> None:
        node, index, pairs = stream.decode_kvs(payload)
        if index >= len(self.targets):
            raise BadRequest(f"transfer names instance {index} of {len(self.targets)}")
        target = self.targets[index]
        if node == stream.ROOT_NODE:
            version = self.root_version
        elif node < len(self.versions):
            version = self.versions[node]
        else:
            raise BadRequest(f"transfer names version {node} of {len(self.versions)}")
        if not target.new_id and version not in self._allocated:
            raise BadRequest("transfer writes an existing instance at a version this server already has")
        self.written = True
        try:
            target.inst.store.put_portable(target.inst.meta.instance_id, version, pairs)
        except ValueError as exc:
            raise BadRequest(f"transfer {exc}") from None
        self.kvs += len(pairs)

    # ---- end ---------------------------------------------------------------------------------
    def commit(self) -> dict[str, Any]:
        manager = self.manager
        header = self.header
        with manager.locked():
            again = _plan(manager, header)
            if again.signature() != self.plan.signature():
                raise Conflict("this server's repo changed during the transfer: rerun it")
            plan = self.plan
            nodes = header["nodes"]
            new_repo = plan.repo is None
            uuid_version = {n["uuid"]: v for n, v in zip(nodes, self.versions, strict=True)}
            garbage_versions = sorted(plan.replaced.values())
            if new_repo:
                repo = manager.transferred_repo(header["repo"], _node(nodes[0], self.versions[0], []))
                first = 1
            else:
                assert plan.repo is not None
                repo = plan.repo
                first = 0
            indexed: list[Node] = []
            for i in range(first, len(nodes)):
                if plan.versions[i] is not None:
                    continue
                n = nodes[i]
                node = _node(n, self.versions[i], [uuid_version[p] for p in n["parents"]])
                old = plan.replaced.get(i)
                if old is not None:
                    _move_untransferred(repo, header, old, node.version)
                repo.dag.graft(node, replacing=old)
                indexed.append(node)
            garbage_instances = []
            for target, mine in zip(self.targets, plan.existing, strict=True):
                if mine is not None:  # detach all first: the transfer may swap names around
                    repo.instances.pop(mine.meta.name, None)
                    if target.new_id:
                        garbage_instances.append([mine.meta.to_record(), "all"])
            attached = [
                manager.attach_transferred(repo, _meta(rec, target.inst.meta.instance_id))
                for rec, target in zip(header["instances"], self.targets, strict=True)
            ]
            # a sync to an instance this server lacks (not sent with --data) would dangle: drop it
            present = {inst.meta.data_uuid for inst in repo.instances.values()}
            for inst in attached:
                inst.meta.syncs = [u for u in inst.meta.syncs if u in present]
            if garbage_versions:
                for inst in repo.instances.values():
                    garbage_instances.append([inst.meta.to_record(), "versions"])
            sent = len(indexed) + (1 if new_repo else 0)
            repo.log.append(
                log_entry(f"Received {sent} version(s) of {header['target']} by {header['mode']} transfer")
            )
            repo.touch()
            garbage = None
            if garbage_instances:
                garbage = {
                    "root": repo.root_uuid,
                    "versions": garbage_versions,
                    "instances": garbage_instances,
                }
            replicas = {
                self.versions[i]: n["uuid"]
                for i, n in enumerate(nodes)
                if plan.versions[i] is None and not n["locked"]
            }
            assert self.marker_key is not None
            garbage_marker = manager.commit_transfer(
                repo,
                new_repo=new_repo,
                indexed=indexed,
                marker_key=self.marker_key,
                garbage=garbage,
                replicas=replicas,
                unreplicated=garbage_versions,
                mutation_id=header["repo"].get("mutation_id", 0),
            )
            self.marker_key = None
        if garbage_marker is not None:
            start_cleaning(manager, [garbage_marker])
        return {
            "root": repo.root_uuid,
            "target": header["target"],
            "versions": sent,
            "kvs": self.kvs,
        }

    def abort(self) -> None:
        """Remove what this import wrote (called on any failure before commit)."""
        if self.marker_key is None:
            return
        key = self.marker_key
        self.marker_key = None
        markers = dict(self.manager.transfer_markers())
        if key in markers:
            clean_marker(self.manager, key, markers[key])


def _move_untransferred(repo: Repo, header: dict[str, Any], old: int, new: int) -> None:
    """Copy the keys an open version being replaced holds in instances the transfer does not carry."""
    carried = {rec["data_uuid"] for rec in header["instances"]}
    for inst in repo.instances.values():
        if inst.meta.data_uuid in carried:
            continue
        inst.store.copy_version(inst.meta.instance_id, old, new)


# ---- cleaning ------------------------------------------------------------------------------------
def clean_marker(manager: RepoManager, key: bytes, marker: dict[str, Any]) -> int:
    """Delete the keys a marker lists (whole instance ids, or some versions of an instance)."""
    removed = 0
    versions = set(marker.get("versions", []))
    for meta_rec, scope in marker.get("instances", []):
        meta = InstanceMeta.from_record(meta_rec)
        inst = manager.detached_instance(marker["root"], meta)
        if scope == "all":
            removed += inst.store.delete_instance(meta.instance_id)
        elif versions:
            removed += inst.store.delete_versions(meta.instance_id, versions)
    manager.drop_transfer_marker(key)
    return removed


def clean_markers(manager: RepoManager) -> int:
    """Clean every leftover marker (at startup: interrupted imports and uncleaned garbage)."""
    removed = 0
    for key, marker in manager.transfer_markers():
        removed += clean_marker(manager, key, marker)
    if removed:
        log.info("removed %d keys left by interrupted or replaced transfers", removed)
    return removed


_cleaners: list[threading.Thread] = []


def start_cleaning(manager: RepoManager, markers: list[tuple[bytes, dict[str, Any]]]) -> None:
    def run() -> None:
        for key, marker in markers:
            clean_marker(manager, key, marker)

    thread = threading.Thread(target=run, name="transfer-cleanup", daemon=True)
    _cleaners.append(thread)
    thread.start()


def wait_for_cleaning(timeout: float | None = None) -> None:
    for thread in list(_cleaners):
        thread.join(timeout)
    _cleaners[:] = [t for t in _cleaners if t.is_alive()]
