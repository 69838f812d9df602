"""Batched versioned reads (``DataContext.get_many``, ``exist_many``, ``ranges(keys_only=True)``)
answer exactly what one ``get`` per key answers, on every engine and version history."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dvid.errors import VersionConflict
from dvid.storage import keys
from tests.test_versioned_store import (
    KEY_NAMES,
    LINEAR_KINDS,
    PROPERTY_SETTINGS,
    Model,
    Repo,
    ops_strategy,
    run_ops,
    tk,
)

#: Keys read besides the written ones: absent, and a prefix / an extension of written tkeys.
PROBES = [*KEY_NAMES, "zz", ""]


def single_reads(ctx, tks):
    out = []
    for t in tks:
        try:
            out.append(ctx.get(t))
        except VersionConflict:
            return VersionConflict
    return out


def check_batched(repo: Repo, tks: list[bytes]) -> None:
    for v in sorted(repo.dag.nodes):
        ctx = repo.ctx(v)
        want = single_reads(ctx, tks)
        if want is VersionConflict:
            with pytest.raises(VersionConflict):
                ctx.get_many(tks)
            continue
        assert ctx.get_many(tks) == want, v
        assert ctx.exist_many(tks) == [w is not None for w in want], v


def test_get_many_of_an_empty_list(repo_engine):
    assert repo_engine.ctx(1).get_many([]) == []
    assert repo_engine.ctx(1).exist_many([]) == []


@pytest.fixture
def repo_engine(engine) -> Repo:
    return Repo(engine)


def test_get_many_keeps_request_order_repeats_and_empty_values(repo_engine):
    ctx = repo_engine.ctx(1)
    ctx.put(tk("b"), b"B")
    ctx.put(tk("a"), b"")
    raw = keys.tkey(0x85, b"1.dat")
    ctx.put(raw + b"a", b"longer")  # "1.data": a tkey that extends "1.dat"
    order = [tk("b"), tk("a"), tk("x"), tk("b"), raw, raw + b"a"]
    assert ctx.get_many(order) == [b"B", b"", None, b"B", None, b"longer"]
    assert ctx.exist_many(order) == [True, True, False, True, False, True]


def test_get_many_sees_tombstones_and_nearest_ancestor(repo_engine):
    repo = repo_engine
    repo.ctx(1).put(tk("a"), b"root")
    repo.ctx(1).put(tk("b"), b"root-b")
    child = repo.new(1)
    repo.ctx(child).delete(tk("a"))
    repo.ctx(child).put(tk("c"), b"child")
    assert repo.ctx(child).get_many([tk("a"), tk("b"), tk("c")]) == [None, b"root-b", b"child"]
    assert repo.ctx(1).get_many([tk("a"), tk("b"), tk("c")]) == [b"root", b"root-b", None]
    assert repo.ctx(child).exist_many([tk("a"), tk("b"), tk("c")]) == [False, True, True]


def _probe_keys(data) -> list[bytes]:
    names = data.draw(st.lists(st.sampled_from(PROBES), max_size=8))
    return [tk(n) if n else keys.tkey(0xB1, b"") for n in names]


@PROPERTY_SETTINGS
@given(ops=st.lists(ops_strategy(LINEAR_KINDS), max_size=30), data=st.data())
def test_batched_reads_equal_single_gets_on_linear_histories(engine, ops, data):
    engine.delete_range(b"", None)
    repo = Repo(engine)
    run_ops(repo, Model(), ops)
    check_batched(repo, _probe_keys(data))


@PROPERTY_SETTINGS
@given(
    ops=st.lists(ops_strategy([*LINEAR_KINDS, "put_open", "merge", "merge"]), min_size=5, max_size=30),
    data=st.data(),
)
def test_batched_reads_equal_single_gets_with_merges(engine, ops, data):
    engine.delete_range(b"", None)
    repo = Repo(engine)
    run_ops(repo, Model(), ops)
    check_batched(repo, _probe_keys(data))
