"""The sending side: which versions and instances to send, and the stream that carries them.

The receiver's ``have`` (its nodes with their parents and locked flags, and its instances' data
UUIDs) decides what is sent: every version of the pushed version's ancestry the receiver lacks
or holds open (an open version may have changed since), and for each such version the keys
written at it. An instance the receiver lacks gets its keys at every version of the ancestry; an
unversioned instance is sent whole (its one copy at the root). Data is read through each
instance's own store.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from dvid.dag.dag import Node
from dvid.datatype.base import Datatype
from dvid.repo import Repo
from dvid.repos import RepoManager
from dvid.storage import keys
from dvid.transfer import stream

#: Values fetched per engine.get_many call, at most (and about _FETCH_BYTES of them).
_FETCH = 256
_FETCH_BYTES = 4 << 20


@dataclass
class ExportPlan:
    repo: Repo
    target: Node
    flatten: bool
    nodes: list[Node]  # header order (ascending local version: parents first)
    send: set[str]  # node UUIDs whose data is sent
    instances: list[Datatype]
    full: list[bool]  # per instance: the receiver lacks it (versioned: every node's keys are sent)
    header: dict[str, Any] = field(default_factory=dict)


def node_record(node: Node, dag_nodes: dict[int, Node], *, as_root: bool = False) -> dict[str, Any]:
    return {
        "uuid": node.uuid,
        "branch": "" if as_root else node.branch,
        "note": node.note,
        "log": list(node.log),
        "locked": node.locked,
        "parents": [] if as_root else [dag_nodes[p].uuid for p in node.parents],
        "created": node.created,
        "updated": node.updated,
    }


def have_record(repo: Repo) -> dict[str, Any]:
    """What a receiver holds of a repo, for the sender to plan a transfer."""
    dag = repo.dag
    return {
        "root": repo.root_uuid,
        "nodes": {
            n.uuid: {"locked": n.locked, "parents": [dag.nodes[p].uuid for p in n.parents]}
            for n in dag.nodes.values()
        },
        "instances": {
            inst.meta.data_uuid: {"name": name, "versioned": inst.versioned}
            for name, inst in repo.instances.items()
        },
    }


def plan_export(
    manager: RepoManager,
    uuid: str,
    have: dict[str, Any] | None,
    data: list[str] | None = None,
    flatten: bool = False,
) -> ExportPlan:
    with manager.locked():
        repo, target = manager.resolve(uuid)
        dag = repo.dag
        if data:
            instances = [repo.instance(name) for name in data]
        else:
            instances = [repo.instances[n] for n in sorted(repo.instances)]
        have_nodes: dict[str, Any] = (have or {}).get("nodes", {})
        have_insts: dict[str, Any] = (have or {}).get("instances", {})
        if flatten:
            nodes = [target]
            send = {target.uuid}
            full = [True] * len(instances)
            records = [node_record(target, dag.nodes, as_root=True)]
            root_uuid = target.uuid
        else:
            versions = sorted(dag.ancestors(target.version) | {target.version})
            nodes = [dag.nodes[v] for v in versions]
            send = {n.uuid for n in nodes if n.uuid not in have_nodes or not have_nodes[n.uuid].get("locked")}
            full = [not inst.versioned or inst.meta.data_uuid not in have_insts for inst in instances]
            records = [node_record(n, dag.nodes) for n in nodes]
            root_uuid = repo.root_uuid
        inst_records = []
        for inst, is_full in zip(instances, full, strict=True):
            rec = inst.meta.to_record()
            rec.pop("instance_id", None)
            rec["full"] = is_full
            inst_records.append(rec)
        header = {
            "mode": "flatten" if flatten else "full",
            "repo": {
                "root": root_uuid,
                "alias": repo.alias,
                "description": repo.description,
                "log": list(repo.log),
                "properties": dict(repo.properties),
                "created": repo.created,
                "updated": repo.updated,
                "mutation_id": repo.mutation_id,
            },
            "target": target.uuid,
            "nodes": records,
            "send": [n.uuid for n in nodes if n.uuid in send],
            "instances": inst_records,
        }
        return ExportPlan(repo, target, flatten, nodes, send, instances, full, header)


def _fetch(inst: Datatype, stored_keys: Iterator[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """``(portable key, value)`` for stored data keys, values read in batches.

    A batch holds at most _FETCH values and, going by the values seen so far, about _FETCH_BYTES:
    it starts at one value and grows, so large values (1 MiB keyvalue values) never make a
    batch of hundreds of megabytes.
    """
    engine = inst.store.engine
    chunk: list[bytes] = []
    limit = 1
    seen_bytes = seen_values = 0

    def flush() -> Iterator[tuple[bytes, bytes]]:
        nonlocal limit, seen_bytes, seen_values
        values = engine.get_many(chunk)
        for i, k in enumerate(chunk):
            v, values[i] = values[i], None
            if v is not None:
                seen_bytes += len(v)
                seen_values += 1
                yield keys.portable_key(k), v
        average = seen_bytes / seen_values if seen_values else 1
        limit = max(1, min(_FETCH, limit * 2, int(_FETCH_BYTES / max(average, 1.0))))

    for k in stored_keys:
        chunk.append(k)
        if len(chunk) >= limit:
            yield from flush()
            chunk = []
    if chunk:
        yield from flush()


def version_delta(inst: Datatype, version: int) -> Iterator[tuple[bytes, bytes]]:
    """The keys (values and tombstones) written at ``version``."""
    return _fetch(inst, inst.store.version_keys(inst.meta.instance_id, version))


def visible_state(inst: Datatype, repo: Repo, version: int) -> Iterator[tuple[bytes, bytes]]:
    """The key-values visible at ``version`` (tombstones dropped): for flatten, and for an
    unversioned instance's one copy (at the repo root)."""
    return _fetch(inst, inst.context(repo.dag.ancestry(version)).visible_keys())


def export_stream(plan: ExportPlan) -> Generator[bytes, None, None]:
    """The whole stream, as chunks of about one KVS record each."""
    framer = stream.Framer()
    yield framer.preamble()
    yield framer.meta(stream.HEADER, plan.header)
    versioned = [(i, inst) for i, inst in enumerate(plan.instances) if inst.versioned]
    any_full = any(plan.full[i] for i, _ in versioned)
    for index, node in enumerate(plan.nodes):
        sent = node.uuid in plan.send
        wanted = [(i, inst) for i, inst in versioned if sent or plan.full[i]]
        if not sent and not (any_full and wanted):
            continue
        yield framer.meta(stream.VERSION, {"node": index})
        for i, inst in wanted:
            if plan.flatten:
                pairs = visible_state(inst, plan.repo, node.version)
            else:
                pairs = version_delta(inst, node.version)
            yield from framer.kv_batches(index, i, pairs)
    unversioned = [(i, inst) for i, inst in enumerate(plan.instances) if not inst.versioned]
    if unversioned:
        yield framer.meta(stream.VERSION, {"node": stream.ROOT_NODE})
        for i, inst in unversioned:
            root = plan.repo.dag.root_version
            yield from framer.kv_batches(stream.ROOT_NODE, i, visible_state(inst, plan.repo, root))
    yield framer.end()
