"""VersionDAG: one repo's versions, with DVID's rules for commit, branch, tag and merge.

Nodes are keyed by their server-local version id; ids and UUIDs are allocated by the caller
(the repo manager), which also guarantees that a child's id is larger than its parents'.
Master is the branch named ``""``; ``"master"`` is accepted wherever a branch name is.
"""

from __future__ import annotations

import functools
import re
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import networkx as nx

from dvid.dag.ancestry import Ancestry
from dvid.errors import BadRequest, Conflict, NotFound

MASTER = ""
#: Versions whose ancestry and ancestor set each DAG keeps cached (least recently used dropped
#: first). Both hold one item per ancestor, ~100 bytes together, so a repo's caches stay under
#: about this x its depth x 100 bytes (25 MiB for 1,000 versions deep) however many versions it has.
ANCESTRY_CACHE_VERSIONS = 256
_BRANCH_REF = re.compile(r"^(?P<name>.*?)(?:~(?P<steps>\d+))?$")


def now_rfc3339() -> str:
    """Current local time in RFC 3339 with offset, as DVID writes ``Created``/``Updated``."""
    return datetime.now().astimezone().isoformat()


def log_entry(message: str) -> str:
    """A log line as DVID stores it: ``"<RFC3339 time>  <message>"``."""
    return f"{datetime.now().astimezone().isoformat(timespec='seconds')}  {message}"


def canonical_branch(name: str) -> str:
    """``"master"`` and ``""`` both name master, stored as ``""``."""
    return MASTER if name in ("", "master") else name


@dataclass
class Node:
    """One version in the DAG."""

    uuid: str
    version: int
    branch: str = MASTER
    note: str = ""
    log: list[str] = field(default_factory=list)
    locked: bool = False
    parents: list[int] = field(default_factory=list)
    children: list[int] = field(default_factory=list)
    created: str = field(default_factory=now_rfc3339)
    updated: str = field(default_factory=now_rfc3339)

    def to_json(self) -> dict[str, Any]:
        """The node as DVID's repo-info JSON shows it."""
        return {
            "Branch": self.branch,
            "Note": self.note,
            "Log": list(self.log),
            "UUID": self.uuid,
            "VersionID": self.version,
            "Locked": self.locked,
            "Parents": list(self.parents),
            "Children": list(self.children),
            "Created": self.created,
            "Updated": self.updated,
        }

    def touch(self) -> None:
        self.updated = now_rfc3339()


class VersionDAG:
    """The version graph of one repo (networkx inside; edges run parent -> child)."""

    def __init__(self, root: Node) -> None:
        self.root_version = root.version
        self.nodes: dict[int, Node] = {}
        self.by_uuid: dict[str, int] = {}
        self.graph = nx.DiGraph()
        bounded = functools.lru_cache(maxsize=ANCESTRY_CACHE_VERSIONS)
        self._ancestors_cached = bounded(self._compute_ancestors)
        self._ancestry_cached = bounded(self._compute_ancestry)
        self._add(root)

    # ---- lookup ------------------------------------------------------------------------------
    @property
    def root(self) -> Node:
        return self.nodes[self.root_version]

    def node(self, version: int) -> Node:
        try:
            return self.nodes[version]
        except KeyError:
            raise NotFound(f"version {version} is not in this repo") from None

    def node_by_uuid(self, uuid: str) -> Node:
        try:
            return self.nodes[self.by_uuid[uuid]]
        except KeyError:
            raise NotFound(f"UUID {uuid} is not in this repo") from None

    def __contains__(self, uuid: str) -> bool:
        return uuid in self.by_uuid

    def __len__(self) -> int:
        return len(self.nodes)

    # ---- mutation ----------------------------------------------------------------------------
    def _add(self, node: Node) -> Node:
        self.nodes[node.version] = node
        self.by_uuid[node.uuid] = node.version
        self.graph.add_node(node.version)
        for p in node.parents:
            self.graph.add_edge(p, node.version)
        return node

    def graft(self, node: Node, *, replacing: int | None = None) -> None:
        """Add a version made elsewhere (an imported one) as a child of its parents, which must be
        here already.

        With ``replacing``, the node takes the place of that childless version among its parents'
        children, and the replaced version is removed; a node without parents becomes the root
        (it replaces the root). Ids are the caller's: a child's must exceed its parents'.
        """
        old = self.nodes.pop(replacing, None) if replacing is not None else None
        if old is not None:
            self.graph.remove_node(old.version)
            self.by_uuid.pop(old.uuid, None)
        self._add(node)
        if not node.parents:
            self.root_version = node.version
        for p in node.parents:
            children = self.nodes[p].children
            if old is not None and old.version in children:
                children[children.index(old.version)] = node.version
            elif node.version not in children:
                children.append(node.version)
        self.forget_ancestries()

    def commit(self, version: int, note: str = "", log: list[str] | None = None) -> Node:
        """Lock a node for good; a non-empty note replaces the node's note."""
        node = self.node(version)
        if node.locked:
            raise Conflict(f"node {node.uuid} has already been committed")
        node.locked = True
        if note:
            node.note = note
        node.log.extend(log_entry(m) for m in (log or []))
        node.touch()
        return node

    def _check_parent(self, version: int, action: str = "branch") -> Node:
        parent = self.node(version)
        if not parent.locked:
            raise Conflict(f"can't {action} an unlocked node: commit {parent.uuid} first")
        return parent

    def _same_branch_child(self, parent: Node, branch: str) -> Node | None:
        for c in parent.children:
            if self.nodes[c].branch == branch:
                return self.nodes[c]
        return None

    def _new_child(self, parents: list[Node], version: int, uuid: str, branch: str, note: str) -> Node:
        if uuid in self.by_uuid:
            raise Conflict(f"UUID {uuid} already exists in this repo")
        if any(version <= p.version for p in parents):
            raise ValueError("a child's version id must exceed its parents'")
        child = Node(
            uuid=uuid, version=version, branch=branch, note=note, parents=[p.version for p in parents]
        )
        for p in parents:
            p.children.append(version)
            p.touch()
        self._add(child)
        return child

    def new_version(self, parent_version: int, version: int, uuid: str, note: str = "") -> Node:
        """An open child on the parent's branch; a node has at most one child per branch."""
        parent = self._check_parent(parent_version)
        if self._same_branch_child(parent, parent.branch) is not None:
            name = parent.branch or "master"
            raise Conflict(
                f"branch already exists with given name: node {parent.uuid} already has a child on "
                f"branch {name!r}; use the branch endpoint to start a new branch"
            )
        return self._new_child([parent], version, uuid, parent.branch, note)

    def branch(self, parent_version: int, version: int, uuid: str, name: str, note: str = "") -> Node:
        """An open child on a new branch; branch names are unique across the DAG."""
        if canonical_branch(name) == MASTER:
            raise BadRequest("Cannot create a master branch: give the new branch a name other than 'master'")
        parent = self._check_parent(parent_version)
        if name == parent.branch:
            return self.new_version(parent_version, version, uuid, note)
        if any(n.branch == name for n in self.nodes.values()):
            raise Conflict(f"branch {name!r} already exists in this repo")
        return self._new_child([parent], version, uuid, name, note)

    def tag(self, parent_version: int, version: int, tag: str, note: str = "") -> Node:
        """A committed child whose UUID is the tag string itself, on branch ``tag-<tag>``."""
        if not tag:
            raise BadRequest("tag requires a non-empty 'tag' string")
        parent_uuid = self.node(parent_version).uuid
        child = self.branch(parent_version, version, tag, f"tag-{tag}", note)
        self.commit(child.version, note or f'Tag of version {parent_uuid} with "{tag}"')
        return child

    def merge(self, parent_versions: list[int], version: int, uuid: str, note: str = "") -> Node:
        """An open master-branch child of two or more committed parents (conflict-free merge)."""
        if len(parent_versions) < 2:
            raise BadRequest("merge requires at least two parents")
        if len(set(parent_versions)) != len(parent_versions):
            raise BadRequest("merge parents must be distinct versions")
        parents = [self._check_parent(v, "merge") for v in parent_versions]
        return self._new_child(parents, version, uuid, MASTER, note)

    def set_note(self, version: int, note: str) -> None:
        node = self.node(version)
        node.note = note
        node.touch()

    def add_log(self, version: int, messages: list[str]) -> None:
        node = self.node(version)
        node.log.extend(log_entry(m) for m in messages)
        node.touch()

    # ---- branches ----------------------------------------------------------------------------
    def branch_names(self) -> set[str]:
        return {n.branch for n in self.nodes.values()}

    def branch_head(self, name: str) -> Node:
        """The leaf of a branch (the newest, should a merge have left two)."""
        branch = canonical_branch(name)
        leaves = [n for n in self.nodes.values() if n.branch == branch and not self._has_same_branch_child(n)]
        if not leaves:
            raise NotFound(f'branch "{name}" not found in repo "{self.root.uuid}"')
        return max(leaves, key=lambda n: n.version)

    def _has_same_branch_child(self, node: Node) -> bool:
        return any(self.nodes[c].branch == node.branch for c in node.children)

    def branch_versions(self, name: str) -> list[str]:
        """UUIDs from the branch's leaf up to the root (through other branches), leaf first.

        Below a merge the walk goes up through the last parent and lists the other parents
        on the way, as DVID does. Unknown branch: ``[]``.
        """
        branch = canonical_branch(name)
        on_branch = [n for n in self.nodes.values() if n.branch == branch]
        if not on_branch:
            return []
        node = min(on_branch, key=lambda n: n.version)
        while True:
            same = [self.nodes[c] for c in node.children if self.nodes[c].branch == branch]
            if not same:
                break
            if len(same) > 1:
                raise BadRequest(f'branch "{name}" has more than 1 child: {", ".join(c.uuid for c in same)}')
            node = same[0]
        out: list[str] = []
        current: Node | None = node
        while current is not None:
            out.append(current.uuid)
            if not current.parents:
                break
            out.extend(self.nodes[p].uuid for p in current.parents[:-1])
            current = self.nodes[current.parents[-1]]
        return out

    def resolve_ref(self, ref: str) -> Node:
        """A branch reference within this repo: ``name`` (its head) or ``name~N`` (N steps up)."""
        m = _BRANCH_REF.match(ref)
        assert m is not None  # the pattern matches every string
        name, steps = m.group("name"), m.group("steps")
        if steps is None:
            return self.branch_head(name)
        if canonical_branch(name) not in self.branch_names():
            raise NotFound(f'branch "{name}" not found in repo "{self.root.uuid}"')
        chain = self.branch_versions(name)
        n = int(steps)
        if n >= len(chain):
            raise BadRequest(f'parent {n} is out of range for branch "{name}"')
        return self.node_by_uuid(chain[n])

    # ---- ancestry ----------------------------------------------------------------------------
    def ancestors(self, version: int) -> frozenset[int]:
        """Strict ancestors of a version (cached: a node's parents never change)."""
        return self._ancestors_cached(version)

    def ancestry(self, version: int) -> Ancestry:
        """The version and its ancestors nearest first, for versioned reads (cached)."""
        return self._ancestry_cached(version)

    def cached_ancestries(self) -> int:
        """How many versions' ancestries are cached now (at most ``ANCESTRY_CACHE_VERSIONS``)."""
        return self._ancestry_cached.cache_info().currsize

    def forget_ancestries(self) -> None:
        """Drop the cached ancestries: needed only when existing nodes are replaced (an import)."""
        self._ancestry_cached.cache_clear()
        self._ancestors_cached.cache_clear()

    def _compute_ancestors(self, version: int) -> frozenset[int]:
        return frozenset(nx.ancestors(self.graph, version))

    def _compute_ancestry(self, version: int) -> Ancestry:
        self.node(version)
        # Breadth-first up the parents, but a version is ranked only once all its children within
        # the ancestry are, so every ancestor ranks after all its descendants (even below merges).
        members = self.ancestors(version) | {version}
        waiting = {v: sum(c in members for c in self.nodes[v].children) for v in members}
        order: dict[int, int] = {}
        linear = True
        queue = deque([version])
        while queue:
            v = queue.popleft()
            order[v] = len(order)
            parents = self.nodes[v].parents
            if len(parents) > 1:
                linear = False
            for p in parents:
                waiting[p] -= 1
                if waiting[p] == 0:
                    queue.append(p)
        return Ancestry(version, order, linear, self.ancestors)

    # ---- serialization -----------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The ``DAG`` object of DVID's repo info."""
        return {
            "Root": self.root.uuid,
            "Nodes": {n.uuid: n.to_json() for n in sorted(self.nodes.values(), key=lambda n: n.version)},
        }

    def to_record(self) -> dict[str, Any]:
        """A plain structure for persistence (msgpack)."""
        return {"root": self.root_version, "nodes": [asdict(n) for n in self.nodes.values()]}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> VersionDAG:
        nodes = sorted((Node(**n) for n in record["nodes"]), key=lambda n: n.version)
        by_version = {n.version: n for n in nodes}
        dag = cls(by_version[record["root"]])
        for n in nodes:
            if n.version != dag.root_version:
                dag._add(n)
        return dag
