"""DataContext semantics (core.md §5.6) on every engine, over real VersionDAG ancestries."""

from __future__ import annotations

import threading

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from dvid.dag.ancestry import Ancestry
from dvid.dag.dag import Node, VersionDAG
from dvid.errors import Conflict, VersionConflict
from dvid.storage import keys
from dvid.storage.versioned import VersionedStore

IID = 7


def tk(name: str | bytes) -> bytes:
    """keyvalue's tkey (class 0xB1, key + 0x00)."""
    if isinstance(name, str):
        name = name.encode()
    return keys.tkey(0xB1, name + b"\x00")


def uid(v: int) -> str:
    return f"{v:032x}"


class Repo:
    """A VersionDAG with id allocation, and DataContexts of one instance over an engine."""

    def __init__(self, engine, instance_id: int = IID) -> None:
        self.engine = engine
        self.store = VersionedStore(engine)
        self.iid = instance_id
        self.dag = VersionDAG(Node(uuid=uid(1), version=1))
        self.next = 2

    def ctx(self, version: int, instance_id: int | None = None):
        return self.store.context(
            self.iid if instance_id is None else instance_id, self.dag.ancestry(version)
        )

    def _alloc(self) -> int:
        self.next += 1
        return self.next - 1

    def commit(self, *versions: int) -> None:
        for v in versions:
            if not self.dag.node(v).locked:
                self.dag.commit(v)

    def new(self, parent: int) -> int:
        self.commit(parent)
        v = self._alloc()
        self.dag.new_version(parent, v, uid(v))
        return v

    def branch(self, parent: int, name: str | None = None) -> int:
        self.commit(parent)
        v = self._alloc()
        self.dag.branch(parent, v, uid(v), name or f"b{v}")
        return v

    def merge(self, *parents: int) -> int:
        self.commit(*parents)
        v = self._alloc()
        self.dag.merge(list(parents), v, uid(v))
        return v

    def raw_keys(self) -> list[bytes]:
        return [k for k, _ in self.engine.scan(b"", None, keys_only=True)]


def put_all(ctx, items) -> None:
    """Several versioned puts in one batch."""
    with ctx.batch() as b:
        for tkey, value in items:
            b.put(tkey, value)


@pytest.fixture
def repo(engine) -> Repo:
    return Repo(engine)


# ---- single keys -----------------------------------------------------------------------------------


def test_put_get_and_missing(repo):
    c = repo.ctx(1)
    assert c.version == 1
    assert c.get(tk("a")) is None
    assert not c.exists(tk("a"))
    c.put(tk("a"), b"1")
    assert c.get(tk("a")) == b"1"
    assert c.exists(tk("a"))
    assert c.get(tk("b")) is None
    assert repo.raw_keys() == [keys.data_key(IID, tk("a"), 1)]


def test_empty_value_is_a_hit(repo):
    c = repo.ctx(1)
    c.put(tk("e"), b"")
    assert c.get(tk("e")) == b""
    assert c.exists(tk("e"))
    v2 = repo.new(1)
    assert repo.ctx(v2).get(tk("e")) == b""
    assert list(repo.ctx(v2).range(tk("a"), tk("z"))) == [(tk("e"), b"")]


def test_overwrite_at_same_version(repo):
    c = repo.ctx(1)
    c.put(tk("a"), b"1")
    c.put(tk("a"), b"2")
    assert c.get(tk("a")) == b"2"
    assert repo.raw_keys() == [keys.data_key(IID, tk("a"), 1)]


def test_nearest_ancestor_read(repo):
    repo.ctx(1).put(tk("a"), b"root")
    v2 = repo.new(1)
    v3 = repo.new(v2)
    v4 = repo.new(v3)
    assert repo.ctx(v4).get(tk("a")) == b"root"
    repo.ctx(v3).put(tk("a"), b"three")
    assert repo.ctx(v4).get(tk("a")) == b"three"
    assert repo.ctx(v3).get(tk("a")) == b"three"
    assert repo.ctx(v2).get(tk("a")) == b"root"
    assert repo.ctx(1).get(tk("a")) == b"root"


def test_child_shadows_parent(repo):
    repo.ctx(1).put(tk("a"), b"parent")
    v2 = repo.new(1)
    repo.ctx(v2).put(tk("a"), b"child")
    assert repo.ctx(v2).get(tk("a")) == b"child"
    assert repo.ctx(1).get(tk("a")) == b"parent"
    assert repo.raw_keys() == [keys.data_key(IID, tk("a"), 1), keys.data_key(IID, tk("a"), v2)]


def test_delete_writes_tombstone_only_at_current_version(repo):
    repo.ctx(1).put(tk("a"), b"old")
    v2 = repo.new(1)
    repo.ctx(v2).delete(tk("a"))
    assert repo.ctx(v2).get(tk("a")) is None
    assert not repo.ctx(v2).exists(tk("a"))
    assert repo.ctx(1).get(tk("a")) == b"old"
    assert repo.raw_keys() == [
        keys.data_key(IID, tk("a"), 1),
        keys.data_key(IID, tk("a"), v2, tombstone=True),
    ]
    assert repo.engine.get(keys.data_key(IID, tk("a"), v2, tombstone=True)) == b""
    v3 = repo.new(v2)
    assert repo.ctx(v3).get(tk("a")) is None  # the tombstone is inherited


def test_delete_always_writes_tombstone(repo):
    repo.ctx(1).delete(tk("never"))
    assert repo.raw_keys() == [keys.data_key(IID, tk("never"), 1, tombstone=True)]
    assert repo.ctx(1).get(tk("never")) is None


def test_put_and_delete_at_same_version_replace_each_other(repo):
    c = repo.ctx(1)
    c.put(tk("a"), b"1")
    c.delete(tk("a"))
    assert c.get(tk("a")) is None
    assert repo.raw_keys() == [keys.data_key(IID, tk("a"), 1, tombstone=True)]
    c.put(tk("a"), b"2")
    assert c.get(tk("a")) == b"2"
    assert repo.raw_keys() == [keys.data_key(IID, tk("a"), 1)]


def test_repost_in_descendant_reintroduces(repo):
    repo.ctx(1).put(tk("a"), b"v1")
    v2 = repo.new(1)
    repo.ctx(v2).delete(tk("a"))
    v3 = repo.new(v2)
    assert repo.ctx(v3).get(tk("a")) is None
    repo.ctx(v3).put(tk("a"), b"back")
    assert repo.ctx(v3).get(tk("a")) == b"back"
    assert repo.ctx(v2).get(tk("a")) is None
    assert repo.ctx(1).get(tk("a")) == b"v1"
    v4 = repo.new(v3)
    assert repo.ctx(v4).get(tk("a")) == b"back"


def test_unrelated_branch_versions_are_invisible(repo):
    repo.ctx(1).put(tk("a"), b"root")
    v2 = repo.new(1)
    vb = repo.branch(1, "side")
    repo.ctx(vb).put(tk("a"), b"side")
    repo.ctx(vb).put(tk("only-side"), b"x")
    repo.ctx(v2).delete(tk("gone"))
    assert repo.ctx(v2).get(tk("a")) == b"root"
    assert repo.ctx(v2).get(tk("only-side")) is None
    assert repo.ctx(1).get(tk("only-side")) is None
    assert repo.ctx(vb).get(tk("a")) == b"side"
    v3 = repo.new(v2)
    assert repo.ctx(v3).get(tk("a")) == b"root"
    assert list(repo.ctx(v3).keys(tk(""), tk("zzz"))) == [tk("a")]
    # A branch from a later master node does not see the sibling branch either.
    vc = repo.branch(v3, "other")
    assert repo.ctx(vc).get(tk("only-side")) is None


def test_instances_are_isolated(repo):
    repo.ctx(1).put(tk("a"), b"seven")
    repo.ctx(1, instance_id=8).put(tk("a"), b"eight")
    repo.ctx(1, instance_id=6).delete(tk("a"))
    assert repo.ctx(1).get(tk("a")) == b"seven"
    assert repo.ctx(1, instance_id=8).get(tk("a")) == b"eight"
    assert repo.ctx(1, instance_id=6).get(tk("a")) is None
    assert list(repo.ctx(1).range(b"", b"\xff" * 8)) == [(tk("a"), b"seven")]


def test_unversioned_context_uses_root_ancestry(repo):
    c = repo.store.context(3, Ancestry.root(1))
    c.put(tk("a"), b"x")
    assert c.get(tk("a")) == b"x"
    assert repo.engine.get(keys.data_key(3, tk("a"), 1)) == b"x"


def test_get_many_and_a_batch_putting_one_key_twice(repo):
    c = repo.ctx(1)
    put_all(c, [(tk("a"), b"1"), (tk("b"), b""), (tk("a"), b"3")])
    assert c.get_many([tk("a"), tk("x"), tk("b")]) == [b"3", None, b""]


def test_versioned_batch_is_atomic(repo):
    c = repo.ctx(1)
    c.put(tk("keep"), b"k")
    with pytest.raises(RuntimeError), c.batch() as b:
        b.put(tk("a"), b"1")
        b.delete(tk("keep"))
        raise RuntimeError("abort")
    assert c.get(tk("a")) is None
    assert c.get(tk("keep")) == b"k"
    with c.batch() as b:
        b.put(tk("a"), b"1")
        b.delete(tk("keep"))
        b.put(tk("c"), b"3")
        b.delete(tk("c"))
    assert c.get(tk("a")) == b"1"
    assert c.get(tk("keep")) is None
    assert c.get(tk("c")) is None
    assert repo.raw_keys() == [
        keys.data_key(IID, tk("a"), 1),
        keys.data_key(IID, tk("c"), 1, tombstone=True),
        keys.data_key(IID, tk("keep"), 1, tombstone=True),
    ]


def test_batch_holds_a_lock_until_it_is_stored(repo):
    """A read-modify-write under ``hold``: whoever takes the lock next reads the new value."""
    c = repo.ctx(1)
    lock = threading.Lock()
    seen: list[bytes | None] = []

    def next_reader() -> None:
        with lock:
            seen.append(c.get(tk("counter")))

    reader = threading.Thread(target=next_reader)
    with c.batch() as b:
        b.for_context(repo.ctx(1, instance_id=IID + 1)).hold(lock)
        b.hold(lock)  # already held (by the shared batch): not taken twice
        reader.start()
        b.put(tk("counter"), b"1")
    reader.join(10)
    assert seen == [b"1"]
    assert not lock.locked()
    with pytest.raises(RuntimeError), c.batch() as b:
        b.hold(lock)
        raise RuntimeError("abort")
    assert not lock.locked()


def test_get_at_version_100_commits_deep(repo):
    writes = {}
    v = 1
    history = [1]
    for depth in range(1, 101):
        v = repo.new(v)
        history.append(v)
        if depth % 10 == 3:
            repo.ctx(v).put(tk("k"), f"d{depth}".encode())
            writes[depth] = f"d{depth}".encode()
        if depth == 50:
            repo.ctx(v).delete(tk("k"))
            writes[depth] = None
        if depth == 1:
            repo.ctx(v).put(tk("early"), b"e")
    deepest = repo.ctx(history[-1])
    assert deepest.get(tk("k")) == b"d93"
    assert deepest.get(tk("early")) == b"e"
    assert deepest.get(tk("missing")) is None
    assert list(deepest.keys(tk(""), tk("zz"))) == [tk("early"), tk("k")]
    for depth, version in enumerate(history):
        written = [d for d in writes if d <= depth]
        expect = writes[max(written)] if written else None
        assert repo.ctx(version).get(tk("k")) == expect, depth


# ---- ranges ----------------------------------------------------------------------------------------


def test_range_inclusive_of_both_ends(repo):
    c = repo.ctx(1)
    for name in ("a", "b", "c", "d", "e"):
        c.put(tk(name), name.encode() * 2)
    assert list(c.range(tk("b"), tk("d"))) == [(tk("b"), b"bb"), (tk("c"), b"cc"), (tk("d"), b"dd")]
    assert list(c.keys(tk("b"), tk("d"))) == [tk("b"), tk("c"), tk("d")]
    assert list(c.range(tk("c"), tk("c"))) == [(tk("c"), b"cc")]
    assert list(c.range(tk("b"), tk("d"), keys_only=True)) == [(tk("b"), b""), (tk("c"), b""), (tk("d"), b"")]
    assert list(c.range(tk("d"), tk("b"))) == []
    assert list(c.range(tk("a1"), tk("c1"))) == [(tk("b"), b"bb"), (tk("c"), b"cc")]
    assert list(c.keys(keys.min_tkey(0xB1), keys.max_tkey(0xB1))) == [tk(n) for n in "abcde"]


def test_range_excludes_longer_keys_after_end(repo):
    c = repo.ctx(1)
    for name in ("foo", "foo0", "foobar", "fo", "foo\xff", "fop"):
        c.put(tk(name), name.encode())
    assert list(c.keys(tk("fo"), tk("foo"))) == [tk("fo"), tk("foo")]
    assert list(c.keys(tk("foo"), tk("foo"))) == [tk("foo")]
    assert list(c.keys(tk("foo0"), tk("fooz"))) == [tk("foo0"), tk("foobar")]


def test_range_excludes_raw_tkeys_merely_prefixed_by_end(repo):
    """A tkey that starts with the end tkey's bytes (not prefix-free) is still outside ``[begin, end]``."""
    c = repo.ctx(1)
    end = keys.tkey(0x20, b"ab")
    for payload in (b"a", b"ab", b"ab\x00", b"ab\x01", b"abz", b"b"):
        c.put(keys.tkey(0x20, payload), payload)
    assert list(c.keys(keys.tkey(0x20, b"a"), end)) == [keys.tkey(0x20, b"a"), end]
    assert list(c.range(end, end)) == [(end, b"ab")]


def test_get_ignores_longer_tkeys_that_start_with_the_key(repo):
    """keyvalue key "foo\x00bar" has a tkey starting with tkey("foo"); neither sees the other's versions."""
    root = repo.ctx(1)
    root.put(tk("foo"), b"foo")
    v2 = repo.new(1)
    repo.ctx(v2).put(tk("foo\x00bar"), b"longer")
    repo.ctx(v2).delete(tk("foo\x00baz"))
    assert repo.ctx(v2).get(tk("foo")) == b"foo"
    assert repo.ctx(v2).get(tk("foo\x00bar")) == b"longer"
    repo.ctx(v2).delete(tk("foo"))
    assert repo.ctx(v2).get(tk("foo")) is None
    assert repo.ctx(v2).get(tk("foo\x00bar")) == b"longer"
    assert root.get(tk("foo")) == b"foo"
    assert list(repo.ctx(v2).keys(tk(""), tk("foo"))) == []
    assert list(repo.ctx(v2).keys(tk(""), tk("zz"))) == [tk("foo\x00bar")]


def test_range_resolves_each_key_and_omits_tombstoned(repo):
    root = repo.ctx(1)
    put_all(root, [(tk("a"), b"a1"), (tk("b"), b"b1"), (tk("c"), b"c1"), (tk("d"), b"d1")])
    v2 = repo.new(1)
    c2 = repo.ctx(v2)
    c2.put(tk("b"), b"b2")
    c2.delete(tk("c"))
    c2.put(tk("e"), b"")
    v3 = repo.new(v2)
    c3 = repo.ctx(v3)
    c3.delete(tk("a"))
    c3.put(tk("c"), b"c3")
    assert list(c2.range(tk("a"), tk("z"))) == [
        (tk("a"), b"a1"),
        (tk("b"), b"b2"),
        (tk("d"), b"d1"),
        (tk("e"), b""),
    ]
    assert list(c3.range(tk("a"), tk("z"))) == [
        (tk("b"), b"b2"),
        (tk("c"), b"c3"),
        (tk("d"), b"d1"),
        (tk("e"), b""),
    ]
    assert list(root.range(tk("a"), tk("z"))) == [(tk(n), f"{n}1".encode()) for n in "abcd"]
    bounds = [(tk("a"), tk("z")), (tk("c"), tk("c")), (tk("d"), tk("b")), (tk("b"), tk("d"))]
    for ctx in (root, c2, c3):
        assert list(ctx.ranges(bounds)) == [list(ctx.range(b, e)) for b, e in bounds]
    assert list(c3.keys(tk("a"), tk("c"))) == [tk("b"), tk("c")]


def test_delete_range_tombstones_only_visible_keys(repo):
    root = repo.ctx(1)
    put_all(root, [(tk("a"), b"1"), (tk("b"), b"2"), (tk("c"), b"3"), (tk("x"), b"outside")])
    vb = repo.branch(1, "side")
    repo.ctx(vb).put(tk("bb"), b"side only")
    v2 = repo.new(1)
    c2 = repo.ctx(v2)
    c2.delete(tk("b"))
    c2.put(tk("c2"), b"new")
    before = set(repo.raw_keys())
    assert c2.delete_range(tk("a"), tk("d")) == 2 + 1  # a, c, c2 (b is already gone, bb is not visible)
    added = set(repo.raw_keys()) - before
    # c2's value at v2 is replaced by a tombstone at v2; b's tombstone was already there.
    assert added == {keys.data_key(IID, tk(n), v2, tombstone=True) for n in ("a", "c", "c2")}
    assert keys.data_key(IID, tk("c2"), v2) not in repo.raw_keys()
    assert list(c2.keys(tk(""), tk("zz"))) == [tk("x")]
    # Ancestors and other branches are untouched.
    assert list(root.keys(tk(""), tk("zz"))) == [tk("a"), tk("b"), tk("c"), tk("x")]
    assert repo.ctx(vb).get(tk("bb")) == b"side only"
    assert c2.delete_range(tk("a"), tk("d")) == 0


def test_delete_instance_and_version_keys(repo):
    repo.ctx(1).put(tk("a"), b"1")
    v2 = repo.new(1)
    repo.ctx(v2).put(tk("b"), b"2")
    repo.ctx(v2).delete(tk("a"))
    repo.ctx(v2, instance_id=IID + 1).put(tk("a"), b"other")
    repo.ctx(v2, instance_id=IID - 1).put(tk("a"), b"other")
    assert list(repo.store.version_keys(IID, v2)) == [
        keys.data_key(IID, tk("a"), v2, tombstone=True),
        keys.data_key(IID, tk("b"), v2),
    ]
    assert list(repo.store.version_keys(IID, 1)) == [keys.data_key(IID, tk("a"), 1)]
    assert repo.store.delete_instance(IID) == 3
    assert repo.ctx(1).get(tk("a")) is None
    assert repo.ctx(v2).get(tk("b")) is None
    assert repo.ctx(v2, instance_id=IID + 1).get(tk("a")) == b"other"
    assert repo.ctx(v2, instance_id=IID - 1).get(tk("a")) == b"other"
    assert len(repo.raw_keys()) == 2


def test_visible_keys_are_the_stored_keys_of_the_visible_values(repo):
    put_all(repo.ctx(1), [(tk("a"), b"a1"), (tk("b"), b"b1"), (tk("c"), b"c1")])
    v2 = repo.new(1)
    c2 = repo.ctx(v2)
    c2.put(tk("b"), b"b2")
    c2.delete(tk("c"))
    c2.put(tk("d"), b"d2")
    repo.ctx(v2, instance_id=IID + 1).put(tk("a"), b"other")
    assert list(c2.visible_keys()) == [
        keys.data_key(IID, tk("a"), 1),
        keys.data_key(IID, tk("b"), v2),
        keys.data_key(IID, tk("d"), v2),
    ]
    assert [repo.engine.get(k) for k in c2.visible_keys()] == [v for _, v in c2.range(tk(""), tk("zz"))]
    assert list(repo.ctx(1).visible_keys()) == [keys.data_key(IID, tk(n), 1) for n in "abc"]


def test_visible_keys_below_a_merge_refuse_a_conflict(repo):
    a, b = repo.branch(1, "a"), repo.branch(1, "b")
    repo.ctx(a).put(tk("k"), b"one")
    repo.ctx(b).put(tk("k"), b"two")
    with pytest.raises(VersionConflict):
        list(repo.ctx(repo.merge(a, b)).visible_keys())


def test_portable_keys_are_stored_under_local_ids(repo):
    repo.ctx(1).put(tk("a"), b"1")
    repo.ctx(1).delete(tk("b"))
    pairs = [(keys.portable_key(k), v) for k, v in repo.engine.scan(b"", None)]
    assert [pk for pk, _ in pairs] == [tk("a") + b"\x03", tk("b") + b"\x4f"]
    repo.store.put_portable(IID + 1, 5, pairs)
    assert repo.engine.get(keys.data_key(IID + 1, tk("a"), 5)) == b"1"
    assert repo.engine.get(keys.data_key(IID + 1, tk("b"), 5, tombstone=True)) == b""
    before = repo.raw_keys()
    with pytest.raises(ValueError, match="mark"):
        repo.store.put_portable(IID + 2, 5, [(tk("c") + b"\x03", b"c"), (tk("d") + b"\x00", b"d")])
    with pytest.raises(ValueError, match="mark"):
        repo.store.put_portable(IID + 2, 5, [(b"", b"c")])
    assert repo.raw_keys() == before  # nothing of a refused batch is stored


def test_copy_version_and_delete_versions(repo):
    repo.ctx(1).put(tk("a"), b"1")
    v2 = repo.new(1)
    repo.ctx(v2).put(tk("b"), b"2")
    repo.ctx(v2).delete(tk("a"))
    repo.ctx(v2, instance_id=IID + 1).put(tk("x"), b"other")
    assert repo.store.copy_version(IID, v2, 9) == 2
    assert list(repo.store.version_keys(IID, 9)) == [
        keys.data_key(IID, tk("a"), 9, tombstone=True),
        keys.data_key(IID, tk("b"), 9),
    ]
    assert repo.engine.get(keys.data_key(IID, tk("b"), 9)) == b"2"
    assert repo.store.delete_versions(IID, {v2, 9}, batch_size=1) == 4
    assert [keys.version_of(k) for k in repo.raw_keys()] == [1, v2]  # IID at 1, IID + 1 at v2
    assert repo.ctx(1).get(tk("a")) == b"1"
    assert repo.ctx(v2, instance_id=IID + 1).get(tk("x")) == b"other"


# ---- merges (§5.6) ---------------------------------------------------------------------------------


@pytest.fixture
def diamond(repo):
    """root -> left (master), root -> right (branch); both committed; returns (repo, root, left, right)."""
    left = repo.new(1)
    right = repo.branch(1, "right")
    return repo, 1, left, right


def test_merge_where_only_one_side_changed(diamond):
    repo, root, left, right = diamond
    repo.ctx(root).put(tk("k"), b"root")
    repo.ctx(right).put(tk("k"), b"right")
    repo.ctx(left).put(tk("left-only"), b"L")
    for parents in ((left, right), (right, left)):
        m = repo.merge(*parents)
        c = repo.ctx(m)
        assert c.get(tk("k")) == b"right"
        assert c.get(tk("left-only")) == b"L"
        assert list(c.range(tk(""), tk("zz"))) == [(tk("k"), b"right"), (tk("left-only"), b"L")]


def test_merge_where_both_sides_wrote_is_version_conflict(diamond):
    repo, root, left, right = diamond
    repo.ctx(root).put(tk("k"), b"root")
    repo.ctx(left).put(tk("k"), b"left")
    repo.ctx(right).put(tk("k"), b"right")
    repo.ctx(left).put(tk("same"), b"equal bytes")
    repo.ctx(right).put(tk("same"), b"equal bytes")
    repo.ctx(root).put(tk("fine"), b"ok")
    m = repo.merge(left, right)
    c = repo.ctx(m)
    with pytest.raises(VersionConflict):
        c.get(tk("k"))
    with pytest.raises(Conflict):
        c.exists(tk("k"))
    with pytest.raises(VersionConflict):  # different versions, even with equal values
        c.get(tk("same"))
    with pytest.raises(VersionConflict):
        list(c.range(tk(""), tk("zz")))
    with pytest.raises(VersionConflict):
        c.delete_range(tk(""), tk("zz"))
    assert c.get(tk("fine")) == b"ok"
    # A write at the merge node (or below it) settles the key.
    c.put(tk("k"), b"merged")
    assert c.get(tk("k")) == b"merged"
    below = repo.new(m)
    repo.ctx(below).delete(tk("same"))
    assert repo.ctx(below).get(tk("same")) is None
    assert list(repo.ctx(below).range(tk(""), tk("zz"))) == [(tk("fine"), b"ok"), (tk("k"), b"merged")]


def test_merge_delete_on_one_side_beats_unchanged_inherited_value(diamond):
    repo, root, left, right = diamond
    repo.ctx(root).put(tk("k"), b"root")
    repo.ctx(left).delete(tk("k"))
    for parents in ((left, right), (right, left)):
        m = repo.merge(*parents)
        assert repo.ctx(m).get(tk("k")) is None
        assert list(repo.ctx(m).keys(tk(""), tk("zz"))) == []


def test_merge_delete_on_one_side_write_on_other_keeps_write(diamond):
    repo, root, left, right = diamond
    repo.ctx(root).put(tk("k"), b"root")
    repo.ctx(left).delete(tk("k"))
    repo.ctx(right).put(tk("k"), b"right")
    for parents in ((left, right), (right, left)):
        assert repo.ctx(repo.merge(*parents)).get(tk("k")) == b"right"


def test_diamond_merge_where_both_inherit_root(diamond):
    repo, root, left, right = diamond
    repo.ctx(root).put(tk("k"), b"root")
    repo.ctx(root).delete(tk("d"))
    m = repo.merge(left, right)
    assert repo.ctx(m).get(tk("k")) == b"root"
    assert repo.ctx(m).get(tk("d")) is None
    assert repo.ctx(m).get(tk("none")) is None
    assert list(repo.ctx(m).range(tk(""), tk("zz"))) == [(tk("k"), b"root")]


def test_merge_with_a_parent_that_is_an_ancestor_of_the_other(repo):
    repo.ctx(1).put(tk("k"), b"root")
    v2 = repo.new(1)
    repo.ctx(v2).put(tk("k"), b"two")
    repo.ctx(v2).delete(tk("gone"))
    repo.ctx(1).put(tk("gone"), b"root")
    m = repo.merge(1, v2)
    assert repo.ctx(m).get(tk("k")) == b"two"
    assert repo.ctx(m).get(tk("gone")) is None


def test_nested_merges(repo):
    root = 1
    put_all(repo.ctx(root), [(tk("x"), b"0"), (tk("y"), b"0"), (tk("z"), b"0")])
    a = repo.branch(root, "a")
    b = repo.branch(root, "b")
    repo.ctx(a).put(tk("x"), b"a")
    repo.ctx(b).delete(tk("y"))
    m1 = repo.merge(a, b)
    c1 = repo.ctx(m1)
    assert (c1.get(tk("x")), c1.get(tk("y")), c1.get(tk("z"))) == (b"a", None, b"0")
    # m1 merged with a branch that changed nothing: m1's resolution stands.
    c = repo.branch(root, "c")
    m2 = repo.merge(m1, c)
    c2 = repo.ctx(m2)
    assert (c2.get(tk("x")), c2.get(tk("y")), c2.get(tk("z"))) == (b"a", None, b"0")
    # m1 merged with a branch that wrote x and z independently: x conflicts, z comes from d.
    d = repo.branch(root, "d")
    repo.ctx(d).put(tk("x"), b"d")
    repo.ctx(d).put(tk("z"), b"d")
    m3 = repo.merge(d, m1)
    c3 = repo.ctx(m3)
    with pytest.raises(VersionConflict):
        c3.get(tk("x"))
    assert c3.get(tk("y")) is None
    assert c3.get(tk("z")) == b"d"
    # Two merges of the same parents, merged again: both inherit the same versions, no conflict.
    m1b = repo.merge(b, a)
    m4 = repo.merge(m1, m1b)
    c4 = repo.ctx(m4)
    assert (c4.get(tk("x")), c4.get(tk("y")), c4.get(tk("z"))) == (b"a", None, b"0")
    # A write at m1b shadows everything it descends from, including m1's inherited versions.
    below = repo.new(m4)
    repo.ctx(m1b).put(tk("z"), b"m1b")  # (written before reading; the store does not check locks)
    assert repo.ctx(below).get(tk("z")) == b"m1b"


def test_conflicting_merge_resolved_in_a_nested_merge(repo):
    """Both parents of m1 wrote k (a conflict at m1); m1b, a sibling merge, wrote k: below m1 + m1b, m1b's."""
    a = repo.branch(1, "a")
    b = repo.branch(1, "b")
    repo.ctx(a).put(tk("k"), b"a")
    repo.ctx(b).put(tk("k"), b"b")
    m1 = repo.merge(a, b)
    m1b = repo.merge(b, a)
    repo.ctx(m1b).put(tk("k"), b"resolved")
    with pytest.raises(VersionConflict):
        repo.ctx(m1).get(tk("k"))
    for parents in ((m1, m1b), (m1b, m1)):
        assert repo.ctx(repo.merge(*parents)).get(tk("k")) == b"resolved"


def test_tombstone_on_one_path_settles_an_inner_merge_conflict(repo):
    """m6 = merge(b5, b4) conflicts on k; below m9 = merge(child of m6, child of b4 that deleted k) the
    tombstone shadows b4's write, so only b5's value is left (DVID's answer here depends on parent order)."""
    b4 = repo.branch(1)
    b5 = repo.branch(1)
    repo.ctx(b4).put(tk("k"), b"4")
    repo.ctx(b5).put(tk("k"), b"5")
    m6 = repo.merge(b5, b4)
    with pytest.raises(VersionConflict):
        repo.ctx(m6).get(tk("k"))
    v7 = repo.new(b4)
    repo.ctx(v7).delete(tk("k"))
    v8 = repo.new(m6)
    for parents in ((v8, v7), (v7, v8)):
        m = repo.merge(*parents)
        assert repo.ctx(m).get(tk("k")) == b"5"
        assert list(repo.ctx(m).range(tk(""), tk("zz"))) == [(tk("k"), b"5")]


# ---- property tests --------------------------------------------------------------------------------

KEY_NAMES = ["a", "b", "c"]
values = st.binary(max_size=3)
LINEAR_KINDS = [
    "commit",
    "newversion",
    "newversion",
    "branch",
    "branch",
    "put",
    "put",
    "put",
    "put",
    "delete",
    "delete",
    "delete_range",
]  # repeated entries weight the choice


def ops_strategy(kinds: list[str]):
    """Operations ``(kind, i, j, key, value)``; i and j pick versions, modulo what exists."""
    idx = st.integers(0, 30)
    return st.tuples(st.sampled_from(kinds), idx, idx, st.sampled_from(KEY_NAMES), values)


TOMB = object()
UNDECIDED = object()


class Model:
    """Writes recorded per version; reads computed without the store or the DAG's ancestry code."""

    def __init__(self) -> None:
        self.parents: dict[int, list[int]] = {1: []}
        self.writes: dict[int, dict[str, object]] = {1: {}}

    def add(self, version: int, parents: list[int]) -> None:
        self.parents[version] = list(parents)
        self.writes[version] = {}

    def read_linear(self, version: int, key: str):
        """Nearest write wins: walk up the single-parent chain."""
        v: int | None = version
        while v is not None:
            if key in self.writes[v]:
                w = self.writes[v][key]
                return None if w is TOMB else w
            ps = self.parents[v]
            assert len(ps) <= 1
            v = ps[0] if ps else None
        return None

    def read_dvid(self, version: int, key: str, flip: bool = False):
        """DVID's findMatch (core.md §5.6), visiting merge parents in stored (or reversed) order.

        Returns a value, None, or VersionConflict (the class) for a conflict.
        """
        invalid: set[int] = set()

        def invalidate(v: int) -> None:
            for p in self.parents[v]:
                if p not in invalid:
                    invalid.add(p)
                    invalidate(p)

        def find(v: int):
            if key in self.writes[v]:
                if v in invalid:
                    return None
                invalidate(v)
                return None if self.writes[v][key] is TOMB else v
            ps = self.parents[v]
            if not ps:
                return None
            if len(ps) == 1:
                return find(ps[0])
            found = [find(p) for p in (reversed(ps) if flip else ps)]
            live = {f for f in found if f is not None and f not in invalid}
            if len(live) > 1:
                raise VersionConflict("conflict")
            return live.pop() if live else None

        try:
            w = find(version)
        except VersionConflict:
            return VersionConflict
        return None if w is None else self.writes[w][key]

    def reference(self, version: int, key: str):
        """DVID's answer, or UNDECIDED where it depends on the order of some merge's parents."""
        want = self.read_dvid(version, key)
        return want if want == self.read_dvid(version, key, flip=True) else UNDECIDED


def run_ops(repo: Repo, model: Model, ops) -> None:
    dag = repo.dag
    for o in ops:
        versions = sorted(dag.nodes)
        open_versions = [v for v in versions if not dag.node(v).locked]
        kind, i, j, key, value = o
        if kind == "commit":
            repo.commit(versions[i % len(versions)])
        elif kind in ("newversion", "branch"):
            parent = versions[i % len(versions)]
            node = dag.node(parent)
            taken = any(dag.node(c).branch == node.branch for c in node.children)
            v = repo.new(parent) if kind == "newversion" and not taken else repo.branch(parent)
            model.add(v, [parent])
        elif kind == "merge":
            # Merge recent versions (the ones most likely to hold writes); a few merges per history
            # keep DVID's path-by-path reference (exponential in stacked merges) fast.
            a, b = versions[-1 - i % len(versions)], versions[-1 - j % len(versions)]
            if a != b and sum(len(ps) > 1 for ps in model.parents.values()) < 6:
                model.add(repo.merge(a, b), [a, b])
        elif open_versions:
            v = open_versions[-1 - i % len(open_versions)]
            ctx = repo.ctx(v)
            if kind == "put":
                ctx.put(tk(key), value)
                model.writes[v][key] = value
            elif kind == "put_open":  # the same key at every open version (makes merge conflicts likely)
                for w in open_versions:
                    repo.ctx(w).put(tk(key), value + bytes([w]))
                    model.writes[w][key] = value + bytes([w])
            elif kind == "delete":
                ctx.delete(tk(key))
                model.writes[v][key] = TOMB
            else:
                want = {k: model.reference(v, k) for k in KEY_NAMES}
                if UNDECIDED in want.values():
                    continue  # no reference for this version
                visible = [k for k in KEY_NAMES if want[k] not in (None, VersionConflict)]
                if VersionConflict in want.values():
                    with pytest.raises(VersionConflict):
                        ctx.delete_range(tk(KEY_NAMES[0]), tk(KEY_NAMES[-1]))
                else:
                    assert ctx.delete_range(tk(KEY_NAMES[0]), tk(KEY_NAMES[-1])) == len(visible)
                    for k in visible:
                        model.writes[v][k] = TOMB


def check_reads(repo: Repo, model: Model, *, linear: bool) -> None:
    for v in sorted(repo.dag.nodes):
        ctx = repo.ctx(v)
        expected = {}
        for k in KEY_NAMES:
            want = model.reference(v, k)
            if linear:
                assert want == model.read_linear(v, k)
            elif want is UNDECIDED:
                continue  # DVID's own answer depends on the order of merge parents here: no reference
            expected[k] = want
            if want is VersionConflict:
                with pytest.raises(VersionConflict):
                    ctx.get(tk(k))
            else:
                assert ctx.get(tk(k)) == want, (v, k)
        if len(expected) == len(KEY_NAMES):
            if VersionConflict in expected.values():
                with pytest.raises(VersionConflict):
                    list(ctx.range(tk(""), tk("zz")))
            else:
                want_range = [(tk(k), val) for k, val in expected.items() if val is not None]
                assert list(ctx.range(tk(""), tk("zz"))) == want_range


PROPERTY_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no slow "explain" phase
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@given(ops=st.lists(ops_strategy(LINEAR_KINDS), max_size=40))
def test_reads_match_nearest_write_model_on_linear_histories(engine, ops):
    engine.delete_range(b"", None)
    repo, model = Repo(engine), Model()
    run_ops(repo, model, ops)
    assert all(repo.dag.ancestry(v).linear for v in repo.dag.nodes)
    check_reads(repo, model, linear=True)


@PROPERTY_SETTINGS
@given(
    ops=st.lists(
        ops_strategy([*LINEAR_KINDS, "put_open", "merge", "merge", "merge"]), min_size=10, max_size=40
    )
)
def test_reads_match_dvid_find_match_with_merges(engine, ops):
    engine.delete_range(b"", None)
    repo, model = Repo(engine), Model()
    run_ops(repo, model, ops)
    check_reads(repo, model, linear=False)


@PROPERTY_SETTINGS
@given(ops=st.lists(ops_strategy(LINEAR_KINDS), max_size=40), pick=st.tuples(st.integers(0), st.integers(0)))
def test_differences_list_exactly_the_keys_read_differently(engine, ops, pick):
    """``differences`` between two versions names every key whose reads differ, and only keys
    whose visible stored version differs (a rewrite with the same bytes counts, as documented)."""
    engine.delete_range(b"", None)
    repo, model = Repo(engine), Model()
    run_ops(repo, model, ops)
    versions = sorted(repo.dag.nodes)
    a, b = versions[pick[0] % len(versions)], versions[pick[1] % len(versions)]
    here = repo.ctx(b)
    diffs = list(here.differences(repo.dag.ancestry(a)))
    listed = {t: (old, new) for t, old, new in diffs}
    assert [t for t, _, _ in diffs] == sorted(listed)  # tkey order, each once
    for k in KEY_NAMES:
        read_a, read_b = model.read_linear(a, k), model.read_linear(b, k)
        if read_a != read_b:
            assert tk(k) in listed, (a, b, k)
        if tk(k) in listed:
            old, new = listed[tk(k)]
            assert (old is None) == (read_a is None) and (new is None) == (read_b is None)
            assert (engine.get(old) if old else None) == read_a
            assert (engine.get(new) if new else None) == read_b
    assert list(repo.ctx(a).differences(repo.dag.ancestry(a))) == []
