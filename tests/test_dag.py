"""VersionDAG: DVID's rules for commit, newversion, branch, tag, merge and branch references (core.md §3)."""

from __future__ import annotations

import re

import msgpack
import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dvid.dag.ancestry import Ancestry
from dvid.dag.dag import Node, VersionDAG, canonical_branch
from dvid.errors import BadRequest, Conflict, NotFound

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d  (?P<msg>.*)$")


def uid(v: int) -> str:
    return f"{v:032x}"


class Builder:
    """Allocates version ids and UUIDs the way the repo manager does (ids only grow)."""

    def __init__(self) -> None:
        self.dag = VersionDAG(Node(uuid=uid(1), version=1))
        self.next = 2

    def _alloc(self) -> int:
        v = self.next
        self.next += 1
        return v

    def new(self, parent: int, note: str = "", commit: bool = False) -> int:
        v = self._alloc()
        self.dag.new_version(parent, v, uid(v), note)
        if commit:
            self.dag.commit(v)
        return v

    def branch(self, parent: int, name: str, note: str = "", commit: bool = False) -> int:
        v = self._alloc()
        self.dag.branch(parent, v, uid(v), name, note)
        if commit:
            self.dag.commit(v)
        return v

    def tag(self, parent: int, tag: str, note: str = "") -> int:
        return self.dag.tag(parent, self._alloc(), tag, note).version

    def merge(self, parents: list[int], note: str = "", commit: bool = False) -> int:
        v = self._alloc()
        self.dag.merge(parents, v, uid(v), note)
        if commit:
            self.dag.commit(v)
        return v

    def commit(self, *versions: int) -> None:
        for v in versions:
            self.dag.commit(v)


@pytest.fixture
def b() -> Builder:
    return Builder()


# ---- nodes and commit ------------------------------------------------------------------------------


def test_root_node(b):
    root = b.dag.root
    assert root.version == 1 and root.uuid == uid(1)
    assert root.branch == "" and root.parents == [] and root.children == []
    assert root.locked is False
    assert len(b.dag) == 1
    assert uid(1) in b.dag and uid(2) not in b.dag
    assert b.dag.node(1) is root
    assert b.dag.node_by_uuid(uid(1)) is root


def test_unknown_nodes_are_not_found(b):
    with pytest.raises(NotFound):
        b.dag.node(99)
    with pytest.raises(NotFound):
        b.dag.node_by_uuid("nope")
    with pytest.raises(NotFound):
        b.dag.ancestry(99)
    with pytest.raises(NotFound):
        b.dag.commit(99)


def test_commit_locks_and_twice_is_conflict(b):
    node = b.dag.commit(1, "first", ["ingest done"])
    assert node.locked is True
    assert node.note == "first"
    assert len(node.log) == 1 and LOG_LINE.match(node.log[0]).group("msg") == "ingest done"
    with pytest.raises(Conflict):
        b.dag.commit(1, "again")
    assert b.dag.root.note == "first"
    assert b.dag.root.locked is True


def test_commit_empty_note_keeps_note(b):
    b.dag.set_note(1, "kept")
    b.dag.commit(1, "")
    assert b.dag.root.note == "kept"


def test_note_and_log(b):
    b.dag.set_note(1, "a")
    b.dag.set_note(1, "b")
    b.dag.add_log(1, ["one", "two"])
    b.dag.add_log(1, ["three"])
    assert b.dag.root.note == "b"
    assert [LOG_LINE.match(x).group("msg") for x in b.dag.root.log] == ["one", "two", "three"]


def test_children_only_of_locked_nodes(b):
    with pytest.raises(Conflict):
        b.dag.new_version(1, 2, uid(2))
    with pytest.raises(Conflict):
        b.dag.branch(1, 2, uid(2), "b")
    with pytest.raises(Conflict):
        b.dag.tag(1, 2, "v1")
    assert len(b.dag) == 1 and b.dag.root.children == []
    assert "tag-v1" not in b.dag.branch_names() and "b" not in b.dag.branch_names()
    b.commit(1)
    v2 = b.new(1)
    v3 = b.branch(1, "other")
    with pytest.raises(Conflict):
        b.dag.merge([v2, v3], 9, uid(9))  # both open
    b.commit(v2)
    with pytest.raises(Conflict):
        b.dag.merge([v2, v3], 9, uid(9))  # v3 open
    assert uid(9) not in b.dag
    assert b.dag.node(v2).children == []


# ---- newversion and branch -------------------------------------------------------------------------


def test_newversion_keeps_branch_and_allows_one_same_branch_child(b):
    b.commit(1)
    v2 = b.new(1, note="second")
    child = b.dag.node(v2)
    assert child.branch == "" and child.parents == [1] and child.locked is False and child.note == "second"
    assert b.dag.root.children == [v2]
    assert list(b.dag.graph.edges) == [(1, v2)]
    with pytest.raises(Conflict):
        b.dag.new_version(1, 10, uid(10))
    assert b.dag.root.children == [v2]
    # A different branch from the same parent is still allowed.
    v3 = b.branch(1, "feature", commit=True)
    v4 = b.new(v3)
    assert b.dag.node(v4).branch == "feature"
    assert b.dag.root.children == [v2, v3]


def test_branch_names_are_unique_dag_wide(b):
    b.commit(1)
    v2 = b.new(1, commit=True)
    v3 = b.branch(1, "b")
    assert b.dag.node(v3).branch == "b"
    with pytest.raises(Conflict):
        b.dag.branch(v2, 20, uid(20), "b")
    b.commit(v3)
    v4 = b.new(v3, commit=True)
    # Another branch name from any node is fine; reusing "b" from a master node is not.
    b.branch(v4, "c")
    with pytest.raises(Conflict):
        b.dag.branch(v2, 21, uid(21), "c")
    assert b.dag.branch_names() == {"", "b", "c"}


def test_branch_names_are_case_sensitive(b):
    b.commit(1)
    b.branch(1, "dev")
    assert b.dag.node(b.branch(1, "Dev")).branch == "Dev"


@pytest.mark.parametrize("name", ["", "master"])
def test_cannot_create_master_branch(b, name):
    b.commit(1)
    with pytest.raises(BadRequest):
        b.dag.branch(1, 2, uid(2), name)
    assert len(b.dag) == 1


def test_branch_with_parents_own_name_acts_like_newversion(b):
    b.commit(1)
    vb = b.branch(1, "b", commit=True)
    vb2 = b.branch(vb, "b")  # same name as the parent's branch: allowed, once
    node = b.dag.node(vb2)
    assert node.branch == "b" and node.parents == [vb]
    with pytest.raises(Conflict):
        b.dag.branch(vb, 30, uid(30), "b")
    with pytest.raises(Conflict):
        b.dag.new_version(vb, 30, uid(30))


def test_new_child_rules_on_ids(b):
    b.commit(1)
    v2 = b.new(1, commit=True)
    with pytest.raises(Conflict):
        b.dag.new_version(v2, 50, uid(1))  # UUID taken
    with pytest.raises(ValueError):
        b.dag.new_version(v2, v2, uid(60))  # id must exceed the parent's
    assert b.dag.node(v2).children == []


# ---- tag -------------------------------------------------------------------------------------------


def test_tag(b):
    b.commit(1)
    v = b.tag(1, "v1.0")
    node = b.dag.node(v)
    assert node.uuid == "v1.0"
    assert b.dag.node_by_uuid("v1.0") is node
    assert node.branch == "tag-v1.0"
    assert node.locked is True
    assert node.parents == [1]
    assert node.note == f'Tag of version {uid(1)} with "v1.0"'
    assert b.dag.root.children == [v]


def test_tag_with_note_and_uniqueness(b):
    b.commit(1)
    v2 = b.new(1, commit=True)
    v = b.tag(v2, "release", note="my note")
    assert b.dag.node(v).note == "my note"
    with pytest.raises(Conflict):
        b.tag(1, "release")  # branch tag-release exists
    with pytest.raises(BadRequest):
        b.tag(1, "")
    # A tag is committed, so it can have children, on its own branch.
    v3 = b.new(v)
    assert b.dag.node(v3).branch == "tag-release"


# ---- merge -----------------------------------------------------------------------------------------


def test_merge(b):
    b.commit(1)
    v2 = b.new(1, commit=True)
    v3 = b.branch(1, "b", commit=True)
    m = b.merge([v3, v2], note="merged")
    node = b.dag.node(m)
    assert node.parents == [v3, v2]  # given order
    assert node.branch == ""
    assert node.locked is False
    assert node.note == "merged"
    assert b.dag.node(v2).children == [m] and b.dag.node(v3).children == [m]
    assert set(b.dag.graph.predecessors(m)) == {v2, v3}


def test_merge_of_three(b):
    b.commit(1)
    ps = [b.branch(1, name, commit=True) for name in ("x", "y", "z")]
    m = b.merge(ps)
    assert b.dag.node(m).parents == ps


def test_merge_argument_errors(b):
    b.commit(1)
    v2 = b.new(1, commit=True)
    with pytest.raises(BadRequest):
        b.dag.merge([v2], 9, uid(9))
    with pytest.raises(BadRequest):
        b.dag.merge([], 9, uid(9))
    with pytest.raises(BadRequest):
        b.dag.merge([v2, v2], 9, uid(9))
    with pytest.raises(NotFound):
        b.dag.merge([v2, 77], 9, uid(9))
    assert len(b.dag) == 2


# ---- branch heads and branch-versions --------------------------------------------------------------


def test_branch_head(b):
    assert b.dag.branch_head("").version == 1
    b.commit(1)
    v2 = b.new(1, commit=True)
    v3 = b.new(v2)
    vb = b.branch(v2, "b", commit=True)
    vb2 = b.new(vb)
    assert b.dag.branch_head("").version == v3
    assert b.dag.branch_head("master").version == v3
    assert b.dag.branch_head("b").version == vb2
    with pytest.raises(NotFound):  # unknown branch
        b.dag.branch_head("nope")
    with pytest.raises(NotFound):
        b.dag.branch_head("B")


def test_branch_head_after_merge_is_merge_child(b):
    b.commit(1)
    v2 = b.new(1, commit=True)
    vb = b.branch(1, "b", commit=True)
    m = b.merge([v2, vb])
    assert b.dag.branch_head("master").version == m
    assert b.dag.branch_head("b").version == vb


def test_branch_versions_linear(b):
    b.commit(1)
    v2 = b.new(1, commit=True)
    v3 = b.new(v2, commit=True)
    v4 = b.new(v3)
    assert b.dag.branch_versions("master") == [uid(v4), uid(v3), uid(v2), uid(1)]
    assert b.dag.branch_versions("") == b.dag.branch_versions("master")
    assert b.dag.branch_versions("unknown") == []


def test_branch_versions_include_ancestors_on_other_branches(b):
    b.commit(1)
    v2 = b.new(1, commit=True)
    v3 = b.new(v2)
    vb = b.branch(v2, "b", commit=True)
    vb2 = b.new(vb, commit=True)
    vc = b.branch(vb2, "c")
    assert b.dag.branch_versions("b") == [uid(vb2), uid(vb), uid(v2), uid(1)]
    assert b.dag.branch_versions("c") == [uid(vc), uid(vb2), uid(vb), uid(v2), uid(1)]
    assert b.dag.branch_versions("master") == [uid(v3), uid(v2), uid(1)]


def test_branch_versions_merge_rule(b):
    b.commit(1)
    v2 = b.new(1, commit=True)
    vb = b.branch(1, "b", commit=True)
    vb2 = b.new(vb, commit=True)
    vc = b.branch(1, "c", commit=True)
    m = b.merge([v2, vc, vb2], commit=True)
    m2 = b.new(m)
    # Other parents are listed; the walk continues through the last parent.
    assert b.dag.branch_versions("master") == [uid(m2), uid(m), uid(v2), uid(vc), uid(vb2), uid(vb), uid(1)]


def test_branch_versions_with_two_same_branch_children_is_bad_request(b):
    b.commit(1)
    v2 = b.new(1, commit=True)
    vb = b.branch(1, "b", commit=True)
    # merge gives the root a second master child (DVID does not check this)
    b.merge([1, vb])
    assert len([c for c in b.dag.root.children if b.dag.node(c).branch == ""]) == 2
    assert v2 in b.dag.root.children
    with pytest.raises(BadRequest):
        b.dag.branch_versions("master")


def test_resolve_ref(b):
    b.commit(1)
    v2 = b.new(1, commit=True)
    v3 = b.new(v2)
    vb = b.branch(v2, "feat", commit=True)
    vb2 = b.new(vb)
    d = b.dag
    assert d.resolve_ref("feat").version == vb2
    assert d.resolve_ref("master").version == v3
    assert d.resolve_ref("").version == v3
    assert d.resolve_ref("master~0").version == v3
    assert d.resolve_ref("master~1").version == v2
    assert d.resolve_ref("master~2").version == 1
    assert d.resolve_ref("~1").version == v2
    assert d.resolve_ref("feat~0").version == vb2
    assert d.resolve_ref("feat~1").version == vb
    assert d.resolve_ref("feat~2").version == v2  # walks into master
    assert d.resolve_ref("feat~3").version == 1
    with pytest.raises(BadRequest):
        d.resolve_ref("feat~4")
    with pytest.raises(BadRequest):
        d.resolve_ref("master~3")
    with pytest.raises(NotFound):  # unknown branch
        d.resolve_ref("nope")
    with pytest.raises(NotFound):
        d.resolve_ref("nope~0")


def test_resolve_ref_branch_name_with_tilde(b):
    b.commit(1)
    v = b.branch(1, "a~b")
    assert b.dag.resolve_ref("a~b").version == v
    assert b.dag.resolve_ref("a~b~0").version == v
    assert b.dag.resolve_ref("a~b~1").version == 1


def test_canonical_branch():
    assert canonical_branch("master") == ""
    assert canonical_branch("") == ""
    assert canonical_branch("Master") == "Master"


# ---- ancestry --------------------------------------------------------------------------------------


def test_ancestry_linear(b):
    a = b.dag.ancestry(1)
    assert a.version == 1 and dict(a.order) == {1: 0} and a.linear
    b.commit(1)
    v2 = b.new(1, commit=True)
    vb = b.branch(v2, "b", commit=True)
    vb2 = b.new(vb)
    a = b.dag.ancestry(vb2)
    assert a.version == vb2
    assert dict(a.order) == {vb2: 0, vb: 1, v2: 2, 1: 3}
    assert a.linear is True
    assert a.ancestors_of(vb) == {v2, 1}
    assert b.dag.ancestors(vb2) == {vb, v2, 1}
    assert b.dag.ancestors(1) == frozenset()


def test_ancestry_below_merge(b):
    b.commit(1)
    v2 = b.new(1, commit=True)
    vb = b.branch(1, "b", commit=True)
    vc = b.branch(1, "c", commit=True)
    m = b.merge([v2, vb], commit=True)
    child = b.new(m)
    a = b.dag.ancestry(child)
    assert a.linear is False
    assert set(a.order) == {child, m, v2, vb, 1}
    assert a.order[child] == 0 and a.order[m] == 1
    assert a.order[v2] < a.order[vb]  # parents in their stored order
    assert a.order[1] == 4
    assert vc not in a.order
    assert a.ancestors_of(m) == {v2, vb, 1}
    assert b.dag.ancestry(v2).linear is True
    assert vc not in b.dag.ancestors(child)


def test_ancestry_ranks_every_ancestor_after_its_descendants(b):
    b.commit(1)
    v2 = b.new(1, commit=True)
    m = b.merge([1, v2])  # the root is both a parent and an ancestor of the other parent
    a = b.dag.ancestry(m)
    assert dict(a.order) == {m: 0, v2: 1, 1: 2}
    assert a.linear is False


def test_ancestry_root_helper():
    a = Ancestry.root(5)
    assert a.version == 5 and dict(a.order) == {5: 0} and a.linear and a.ancestors_of(5) == frozenset()


def test_ancestry_deep_chain(b):
    prev = 1
    for _ in range(100):
        b.commit(prev)
        prev = b.new(prev)
    a = b.dag.ancestry(prev)
    assert a.linear
    assert len(a.order) == 101
    assert a.order[1] == 100
    assert all(a.order[v] == prev - v for v in a.order)


def test_ancestry_cache_is_bounded_and_recomputes_evicted_versions(monkeypatch):
    """A version made every minute must not grow the caches: only the most recently used
    ancestries stay cached, and an evicted one comes back the same when read again."""
    import dvid.dag.dag as dag_module

    monkeypatch.setattr(dag_module, "ANCESTRY_CACHE_VERSIONS", 4)
    b = Builder()
    chain = [1]
    for _ in range(30):
        b.commit(chain[-1])
        chain.append(b.new(chain[-1]))
    first = {v: dict(b.dag.ancestry(v).order) for v in chain}
    assert b.dag.cached_ancestries() == 4
    assert b.dag._ancestors_cached.cache_info().currsize <= 4
    for v in chain:  # every one was evicted and is computed again, identically
        assert dict(b.dag.ancestry(v).order) == first[v] == {u: v - u for u in range(1, v + 1)}
        assert b.dag.ancestors(v) == frozenset(range(1, v))
    assert b.dag.cached_ancestries() == 4
    b.dag.forget_ancestries()
    assert b.dag.cached_ancestries() == 0


# ---- JSON and persistence --------------------------------------------------------------------------


def _sample(b: Builder) -> dict[str, int]:
    b.dag.commit(1, "root note", ["first log"])
    v2 = b.new(1, note="two", commit=True)
    vb = b.branch(1, "b", commit=True)
    m = b.merge([v2, vb], note="merge")
    t = b.tag(v2, "v1")
    b.dag.add_log(m, ["working"])
    return {"v2": v2, "vb": vb, "m": m, "t": t}


def test_to_json_shape(b):
    ids = _sample(b)
    j = b.dag.to_json()
    assert j["Root"] == uid(1)
    assert set(j["Nodes"]) == {uid(1), uid(ids["v2"]), uid(ids["vb"]), uid(ids["m"]), "v1"}
    fields = [
        "Branch",
        "Note",
        "Log",
        "UUID",
        "VersionID",
        "Locked",
        "Parents",
        "Children",
        "Created",
        "Updated",
    ]
    for uuid, n in j["Nodes"].items():
        assert list(n) == fields
        assert n["UUID"] == uuid
    root = j["Nodes"][uid(1)]
    assert root["Branch"] == "" and root["Note"] == "root note" and root["Locked"] is True
    assert root["VersionID"] == 1 and root["Parents"] == []
    assert root["Children"] == [ids["v2"], ids["vb"]]
    assert all(isinstance(c, int) for c in root["Children"])
    merged = j["Nodes"][uid(ids["m"])]
    assert merged["Parents"] == [ids["v2"], ids["vb"]] and merged["Locked"] is False
    assert [LOG_LINE.match(x).group("msg") for x in merged["Log"]] == ["working"]
    assert j["Nodes"]["v1"]["Branch"] == "tag-v1"
    assert j["Nodes"][uid(ids["v2"])]["Children"] == [ids["m"], ids["t"]]
    for n in j["Nodes"].values():
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", n["Created"])
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", n["Updated"])


def test_record_round_trip_through_msgpack(b):
    ids = _sample(b)
    record = msgpack.unpackb(msgpack.packb(b.dag.to_record()))
    dag = VersionDAG.from_record(record)
    assert dag.to_json() == b.dag.to_json()
    assert dag.to_record() == b.dag.to_record()
    assert dag.root_version == 1
    assert set(dag.graph.edges) == set(b.dag.graph.edges)
    for v in b.dag.nodes:
        a, a2 = b.dag.ancestry(v), dag.ancestry(v)
        assert dict(a.order) == dict(a2.order) and a.linear == a2.linear
        assert dag.ancestors(v) == b.dag.ancestors(v)
    assert dag.branch_versions("b") == b.dag.branch_versions("b")
    assert dag.node_by_uuid("v1").version == ids["t"]
    # The restored DAG keeps enforcing the rules.
    with pytest.raises(Conflict):
        dag.new_version(1, 100, uid(100))
    with pytest.raises(Conflict):
        dag.branch(ids["v2"], 100, uid(100), "b")
    dag.commit(ids["m"])
    assert dag.new_version(ids["m"], 100, uid(100)).parents == [ids["m"]]


def test_record_round_trip_of_root_only():
    dag = VersionDAG(Node(uuid="abc", version=7, note="n"))
    back = VersionDAG.from_record(msgpack.unpackb(msgpack.packb(dag.to_record())))
    assert back.root.uuid == "abc" and back.root.version == 7 and back.root.note == "n"
    assert back.to_json() == dag.to_json()


# ---- grafting imported versions ----------------------------------------------------------------------


def test_graft_adds_a_child_and_its_ancestry(b):
    b.commit(1)
    b.dag.ancestry(1)  # cached before the graft
    b.dag.graft(Node(uuid="imported", version=5, locked=True, parents=[1]))
    assert b.dag.node_by_uuid("imported").version == 5
    assert b.dag.root.children == [5]
    assert list(b.dag.ancestry(5).order) == [5, 1]
    assert b.dag.ancestors(5) == {1}
    b.dag.graft(Node(uuid="imported-child", version=6, parents=[5]))
    assert b.dag.node(5).children == [6]
    assert b.dag.ancestors(6) == {1, 5}


def test_graft_replacing_an_open_version_takes_its_place(b):
    b.commit(1)
    first = b.new(1)
    side = b.branch(1, "side")
    assert b.dag.root.children == [first, side]
    assert b.dag.ancestors(first) == {1}
    b.dag.graft(Node(uuid="pushed", version=9, parents=[1]), replacing=first)
    assert first not in b.dag.nodes and uid(first) not in b.dag
    assert b.dag.root.children == [9, side]
    assert b.dag.ancestors(9) == {1}
    with pytest.raises(NotFound):
        b.dag.ancestry(first)
    assert nx.is_directed_acyclic_graph(b.dag.graph) and set(b.dag.graph) == {1, 9, side}


def test_graft_of_a_parentless_node_replaces_the_root():
    dag = VersionDAG(Node(uuid="root", version=1))
    dag.ancestry(1)
    dag.graft(Node(uuid="root", version=4, locked=True), replacing=1)
    assert dag.root_version == 4 and dag.root.locked and list(dag.nodes) == [4]
    assert dag.node_by_uuid("root").version == 4
    assert list(dag.ancestry(4).order) == [4]


# ---- property tests --------------------------------------------------------------------------------

BRANCHES = ["a", "b", "c", "master"]
op = st.one_of(
    st.tuples(st.just("commit"), st.integers(0, 50)),
    st.tuples(st.just("newversion"), st.integers(0, 50)),
    st.tuples(st.just("branch"), st.integers(0, 50), st.sampled_from(BRANCHES)),
    st.tuples(st.just("tag"), st.integers(0, 50), st.sampled_from(["t1", "t2"])),
    st.tuples(st.just("merge"), st.lists(st.integers(0, 50), min_size=1, max_size=3)),
)


def apply_ops(ops) -> VersionDAG:
    """Run random operations, checking that each one succeeds exactly when DVID's rules allow it."""
    dag = VersionDAG(Node(uuid=uid(1), version=1))
    nxt = 2

    def pick(i: int) -> int:
        versions = sorted(dag.nodes)
        return versions[i % len(versions)]

    for o in ops:
        kind = o[0]
        if kind == "commit":
            node = dag.node(pick(o[1]))
            if node.locked:
                with pytest.raises(Conflict):
                    dag.commit(node.version)
            else:
                dag.commit(node.version)
            continue
        if kind == "merge":
            parents = [pick(i) for i in o[1]]
            if len(parents) < 2 or len(set(parents)) < len(parents):
                with pytest.raises(BadRequest):
                    dag.merge(parents, nxt, uid(nxt))
            elif not all(dag.node(p).locked for p in parents):
                with pytest.raises(Conflict):
                    dag.merge(parents, nxt, uid(nxt))
            else:
                child = dag.merge(parents, nxt, uid(nxt))
                assert child.parents == parents and child.branch == ""
                nxt += 1
            continue
        parent = dag.node(pick(o[1]))
        if kind == "newversion":
            name = parent.branch
        elif kind == "branch":
            name = o[2]
        else:
            name = f"tag-{o[2]}"
        if kind == "branch" and name in ("", "master"):
            with pytest.raises(BadRequest):
                dag.branch(parent.version, nxt, uid(nxt), name)
            continue
        if name == parent.branch:
            allowed = not any(dag.node(c).branch == name for c in parent.children)
        else:
            allowed = name not in dag.branch_names()
        allowed = allowed and parent.locked
        uuid = o[2] if kind == "tag" else uid(nxt)
        if kind == "tag" and uuid in dag:
            allowed = False
        if kind == "newversion":
            call = lambda: dag.new_version(parent.version, nxt, uuid)  # noqa: B023, E731
        elif kind == "branch":
            call = lambda: dag.branch(parent.version, nxt, uuid, name)  # noqa: B023, E731
        else:
            call = lambda: dag.tag(parent.version, nxt, o[2])  # noqa: B023, E731
        if not allowed:
            with pytest.raises(Conflict):
                call()
            continue
        child = call()
        assert child.version == nxt and child.uuid == uuid and child.branch == name
        assert child.parents == [parent.version] and child.locked == (kind == "tag")
        nxt += 1
    return dag


def check_invariants(dag: VersionDAG) -> None:
    g = dag.graph
    assert nx.is_directed_acyclic_graph(g)
    assert set(g.nodes) == set(dag.nodes)
    assert set(g.edges) == {(p, n.version) for n in dag.nodes.values() for p in n.parents}
    assert set(g.edges) == {(n.version, c) for n in dag.nodes.values() for c in n.children}
    assert [v for v in dag.nodes if not dag.nodes[v].parents] == [1]
    for n in dag.nodes.values():
        assert all(p < n.version for p in n.parents)
        assert len(set(n.parents)) == len(n.parents)
        # newversion/branch/tag give a node at most one child per branch; merges are not checked (as DVID).
        single = [dag.nodes[c].branch for c in n.children if len(dag.nodes[c].parents) == 1]
        assert len(single) == len(set(single))
        if len(n.parents) > 1:
            assert n.branch == ""
    # Named branches are single chains: one entry node, each with at most one same-branch child.
    for name in dag.branch_names() - {""}:
        on = [n for n in dag.nodes.values() if n.branch == name]
        entries = [n for n in on if dag.nodes[n.parents[0]].branch != name]
        assert len(entries) == 1
        chain = dag.branch_versions(name)
        head = dag.branch_head(name)
        assert chain[0] == head.uuid
        assert {dag.by_uuid[u] for u in chain} <= nx.ancestors(g, head.version) | {head.version}
        if dag.ancestry(head.version).linear:
            assert len(chain) == len(nx.ancestors(g, head.version)) + 1
        assert dag.resolve_ref(name).uuid == chain[0]
        assert dag.resolve_ref(f"{name}~{len(chain) - 1}").version == 1
    for v in dag.nodes:
        a = dag.ancestry(v)
        anc = nx.ancestors(g, v)
        assert set(a.order) == anc | {v}
        assert dag.ancestors(v) == anc
        assert sorted(a.order.values()) == list(range(len(anc) + 1))
        assert a.order[v] == 0
        assert a.linear == all(len(dag.nodes[u].parents) <= 1 for u in a.order)
        # Nearest first: every ancestor ranks after each of its children within the ancestry.
        for u in a.order:
            for p in dag.nodes[u].parents:
                assert a.order[p] > a.order[u]
        if a.linear:
            depth = nx.shortest_path_length(g, 1, v)
            assert a.order[1] == depth
            for u in a.order:
                assert a.order[u] == depth - nx.shortest_path_length(g, 1, u)


@settings(max_examples=100, deadline=None)
@given(st.lists(op, max_size=40))
def test_random_operations_keep_dvid_rules(ops):
    dag = apply_ops(ops)
    check_invariants(dag)
    back = VersionDAG.from_record(msgpack.unpackb(msgpack.packb(dag.to_record())))
    assert back.to_json() == dag.to_json()
    for v in dag.nodes:
        assert dict(back.ancestry(v).order) == dict(dag.ancestry(v).order)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 30)), min_size=1, max_size=30))
def test_random_merging_history_keeps_ancestry_nearest_first(steps):
    """Mostly merges: every step commits all open nodes, then adds a child or a merge of two nodes."""
    dag = VersionDAG(Node(uuid=uid(1), version=1))
    nxt = 2
    for merge, i in steps:
        for n in dag.nodes.values():
            if not n.locked:
                dag.commit(n.version)
        versions = sorted(dag.nodes)
        a = versions[i % len(versions)]
        bb = versions[(i * 7 + 3) % len(versions)]
        if merge and a != bb:
            dag.merge([a, bb], nxt, uid(nxt))
        else:
            dag.branch(a, nxt, uid(nxt), f"br{nxt}")
        nxt += 1
    check_invariants(dag)
