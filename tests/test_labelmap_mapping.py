"""The versioned sv -> body mapping over real LevelDB: inheritance, retirement, caches that stay right
after failed commits, after writes through another Mapping on the same store (another server), and after
writes to versions with descendants; a hypothesis model over a small DAG."""

from __future__ import annotations

import itertools
import struct
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dvid.datatype.labelmap import mapping as mapping_module
from dvid.datatype.labelmap.mapping import Mapping, epoch_tkey, local_uuid, mapping_tkey
from dvid.errors import VersionConflict
from dvid.storage.leveldb import LevelDBEngine
from tests.test_versioned_store import Repo


class Boom(Exception):
    """Raised inside a batch's ``with``: the batch is abandoned, never committed."""


@pytest.fixture(scope="module")
def leveldb(tmp_path_factory):
    eng = LevelDBEngine(tmp_path_factory.mktemp("mapping") / "db")
    yield eng
    eng.close()


_instance_ids = itertools.count(100)


@pytest.fixture
def repo(leveldb) -> Repo:
    """A fresh DAG over the shared LevelDB, under an instance id of its own."""
    return Repo(leveldb, instance_id=next(_instance_ids))


def write(mapping: Mapping, ctx, svs, bodies) -> None:
    with ctx.batch() as batch:
        mapping.set(ctx, batch, svs, bodies)


def look(mapping: Mapping, ctx, svs) -> list[int]:
    return mapping.lookup(ctx, np.array(svs, np.uint64)).tolist()


def test_unmapped_retired_and_identity(repo):
    m = Mapping()
    root = repo.ctx(1)
    assert look(m, root, [0, 1, 2**64 - 1]) == [0, 1, 2**64 - 1]
    write(m, root, [5, 6, 7, 8], [50, 0, 7, 50])
    assert look(m, root, [5, 6, 7, 8, 9, 0]) == [50, 0, 7, 50, 9, 0]
    assert m.lookup_one(root, 6) == 0
    table = np.array([[5, 9], [8, 6]], np.uint64)
    assert m.lookup(root, table).tolist() == [[50, 9], [50, 0]]
    svs, bodies = m.assignments(root)
    assert (svs.tolist(), bodies.tolist()) == ([5, 6, 8], [50, 0, 50])  # 7 -> 7 is not listed
    # stored as one key per supervoxel: u64 BE sv -> u64 LE body, no envelope
    assert root.get(mapping_tkey(5)) == struct.pack("<Q", 50)
    assert root.get(mapping_tkey(7)) == struct.pack("<Q", 7)
    assert len(root.get(epoch_tkey(local_uuid(1)))) == 8
    # a fresh Mapping (a restarted server) reads the same from the store
    fresh = Mapping()
    assert look(fresh, root, [5, 6, 7, 8]) == [50, 0, 7, 50]
    assert [a.tolist() for a in fresh.assignments(root)] == [[5, 6, 8], [50, 0, 50]]


def test_last_assignment_of_an_sv_wins_and_bad_input(repo):
    m = Mapping()
    root = repo.ctx(1)
    write(m, root, [3, 3, 4], [30, 31, 40])
    assert look(m, root, [3, 4]) == [31, 40]
    assert look(Mapping(), root, [3, 4]) == [31, 40]
    with root.batch() as batch, pytest.raises(ValueError, match="background"):
        m.set(root, batch, [0], [1])
    with root.batch() as batch, pytest.raises(ValueError, match="same length"):
        m.set(root, batch, [1, 2], [1])


def test_versions_inherit_and_stay_apart(repo):
    m = Mapping()
    root = repo.ctx(1)
    write(m, root, [1, 2, 3], [10, 10, 10])
    child = repo.ctx(repo.new(1))
    sibling = repo.ctx(repo.branch(1))
    assert look(m, child, [1, 2, 3]) == [10, 10, 10]
    write(m, child, [2, 3, 4], [0, 3, 10])  # retire 2, give 3 back its own id
    assert look(m, child, [1, 2, 3, 4]) == [10, 0, 3, 10]
    assert [a.tolist() for a in m.assignments(child)] == [[1, 2, 4], [10, 0, 10]]
    assert look(m, root, [1, 2, 3, 4]) == [10, 10, 10, 4]
    assert look(m, sibling, [1, 2, 3, 4]) == [10, 10, 10, 4]
    for other in (Mapping(), Mapping(max_versions=1)):
        assert look(other, child, [1, 2, 3, 4]) == [10, 0, 3, 10]
        assert look(other, root, [1, 2, 3, 4]) == [10, 10, 10, 4]
        assert look(other, child, [1, 2, 3, 4]) == [10, 0, 3, 10]


def test_merge_of_branches(repo):
    m = Mapping()
    left = repo.ctx(repo.new(1))
    right = repo.ctx(repo.branch(1))
    write(m, left, [1], [10])
    write(m, right, [2], [20])
    merged = repo.ctx(repo.merge(left.version, right.version))
    # the parents' epochs differ at the merge, their assignments do not
    assert look(m, merged, [1, 2, 3]) == [10, 20, 3]
    write(m, merged, [3], [30])
    assert look(m, merged, [1, 2, 3]) == [10, 20, 30]
    assert look(Mapping(), merged, [1, 2, 3]) == [10, 20, 30]
    write(m, right, [1], [11])  # (a write to a committed version) now the parents disagree on 1
    with pytest.raises(VersionConflict):
        m.lookup(merged, [1])


def test_failed_commit_leaves_the_cache_right(repo):
    m = Mapping()
    root = repo.ctx(1)
    write(m, root, [1], [10])
    assert look(m, root, [1, 2]) == [10, 2]
    with pytest.raises(Boom), root.batch() as batch:
        m.set(root, batch, [1, 2], [11, 20])
        raise Boom
    assert look(m, root, [1, 2]) == [10, 2]
    # the write lock was released with the abandoned batch
    write(m, root, [2], [21])
    assert look(m, root, [1, 2]) == [10, 21]


def test_the_cache_follows_a_commit(repo):
    m = Mapping()
    root = repo.ctx(1)
    assert look(m, root, [1]) == [1]
    with root.batch() as batch:
        m.set(root, batch, [1], [10])
        assert look(m, root, [1]) == [1]  # not yet stored
    assert look(m, root, [1]) == [10]
    assert len(m.view(root).overlay_svs) == 1  # taken in place, not rebuilt


def test_one_set_per_batch(repo):
    m = Mapping()
    root = repo.ctx(1)
    with root.batch() as batch:
        m.set(root, batch, [1], [10])
        with pytest.raises(ValueError, match="one mapping write per batch"):
            m.set(root, batch, [2], [20])
    assert look(m, root, [1, 2]) == [10, 2]


def test_writes_through_another_mapping(repo):
    """Two servers on one store: each sees the other's writes at its next read."""
    a, b = Mapping(), Mapping()
    root = repo.ctx(1)
    write(a, root, [1], [10])
    assert look(b, root, [1, 2]) == [10, 2]
    write(b, root, [2], [20])
    assert look(a, root, [1, 2]) == [10, 20]
    # a's cache is now older than the store when a writes: its own write must not hide b's
    write(b, root, [3], [30])
    write(a, root, [4], [40])
    assert look(a, root, [1, 2, 3, 4]) == [10, 20, 30, 40]
    assert look(b, root, [1, 2, 3, 4]) == [10, 20, 30, 40]


def test_write_to_a_version_with_descendants(repo):
    """With --fullwrite a committed version can change under its children."""
    m = Mapping()
    root = repo.ctx(1)
    child = repo.ctx(repo.new(1))
    grandchild = repo.ctx(repo.new(child.version))
    write(m, child, [1], [10])  # the child has an epoch of its own
    assert look(m, grandchild, [1, 2]) == [10, 2]
    assert look(m, child, [1, 2]) == [10, 2]
    write(m, root, [2, 1], [20, 0])
    assert look(m, child, [1, 2]) == [10, 20]
    assert look(m, grandchild, [1, 2]) == [10, 20]
    assert look(m, root, [1, 2]) == [0, 20]


def test_overlay_compaction(repo, monkeypatch):
    monkeypatch.setattr(mapping_module, "_OVERLAY_MIN", 8)
    m = Mapping()
    root = repo.ctx(1)
    write(m, root, np.arange(1, 101), np.arange(1001, 1101))
    assert look(m, root, [1, 100]) == [1001, 1100]
    for i in range(1, 30):
        write(m, root, [i, 200 + i], [i, 5])  # identity again, and new ones
    view = m.view(root)
    assert len(view) < 100 + 2 * 29  # folded at least once
    svs, bodies = view.assignments()
    expected = {i: 1000 + i for i in range(30, 101)} | {200 + i: 5 for i in range(1, 30)}
    assert dict(zip(svs.tolist(), bodies.tolist(), strict=True)) == expected
    assert look(Mapping(), root, list(expected)) == list(expected.values())


def test_set_holds_the_write_lock_until_commit(repo):
    m = Mapping()
    root = repo.ctx(1)
    done = threading.Event()

    def other_writer():
        write(m, root, [2], [20])
        done.set()

    with root.batch() as batch:
        m.set(root, batch, [1], [10])
        thread = threading.Thread(target=other_writer)
        thread.start()
        assert not done.wait(0.2)  # blocked in set() until this batch commits
    thread.join(30)
    assert done.is_set()
    assert look(m, root, [1, 2]) == [10, 20]


def test_concurrent_readers_never_go_back(repo):
    """Readers in threads, one writer raising sv 1's body step by step: no reader sees it go back."""
    m = Mapping()
    root = repo.ctx(1)
    stop = threading.Event()
    errors: list[str] = []

    def reader():
        last = 0
        while not stop.is_set():
            body = m.lookup_one(root, 1)
            if body < last:
                errors.append(f"saw {body} after {last}")
            last = body

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for body in range(2, 200):
        write(m, root, [1, 1000 + body], [body, body])
    stop.set()
    for t in threads:
        t.join(30)
    assert errors == []
    assert m.lookup_one(root, 1) == 199


# ---- a model ------------------------------------------------------------------------------------------

VERSIONS = (1, 2, 3, 4)  # 1 -> 2 -> 4, 1 -> 3 (a branch); writes to 1 and 2 are "fullwrite" ones
PARENT = {1: None, 2: 1, 3: 1, 4: 2}
SVS = st.integers(1, 8)

writes = st.tuples(
    st.just("write"),
    st.sampled_from(VERSIONS),
    st.integers(0, 1),  # which server
    st.lists(st.tuples(SVS, st.integers(0, 9)), min_size=1, max_size=4),
    st.booleans(),  # the commit fails
)
reads = st.tuples(st.just("read"), st.sampled_from(VERSIONS), st.integers(0, 1))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(writes, reads), max_size=25))
def test_random_writes_match_a_dict_model(leveldb, ops):
    repo = Repo(leveldb, instance_id=next(_instance_ids))
    assert repo.new(1) == 2 and repo.branch(1) == 3 and repo.new(2) == 4
    ctxs = {v: repo.ctx(v) for v in VERSIONS}
    servers = (Mapping(), Mapping(max_versions=2))
    own: dict[int, dict[int, int]] = {v: {} for v in VERSIONS}

    def visible(v: int) -> dict[int, int]:
        chain = []
        at: int | None = v
        while at is not None:
            chain.append(at)
            at = PARENT[at]
        out: dict[int, int] = {}
        for ancestor in reversed(chain):
            out.update(own[ancestor])
        return out

    for op in ops:
        if op[0] == "write":
            _, v, server, pairs, fails = op
            svs, bodies = zip(*pairs, strict=True)
            try:
                with ctxs[v].batch() as batch:
                    servers[server].set(ctxs[v], batch, svs, bodies)
                    if fails:
                        raise Boom
            except Boom:
                continue
            own[v].update(pairs)
        else:
            _, v, server = op
            model = visible(v)
            ids = list(range(0, 10))
            assert look(servers[server], ctxs[v], ids) == [model.get(i, i) for i in ids]
            listed = {s: b for s, b in model.items() if s != b}
            svs, bodies = servers[server].assignments(ctxs[v])
            assert dict(zip(svs.tolist(), bodies.tolist(), strict=True)) == listed
            assert svs.tolist() == sorted(listed)
    for v in VERSIONS:
        model = visible(v)
        for server in servers:
            assert look(server, ctxs[v], list(range(10))) == [model.get(i, i) for i in range(10)]
