"""The Engine contract, run against every engine (the ``engine`` fixture), plus a model-based test.

Every engine must behave like a sorted dict of bytes -> bytes with half-open scans and atomic batches.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from dvid.errors import DVIDError
from dvid.storage.engine import prefix_successor
from dvid.storage.leveldb import LevelDBEngine


def fill(engine, keys, value_of=lambda k: b"v" + k):
    for k in keys:
        engine.put(k, value_of(k))


def all_pairs(engine):
    return list(engine.scan(b"", None))


# ---- single-key operations ------------------------------------------------------------------------


def test_get_absent_key_is_none(engine):
    assert engine.get(b"missing") is None
    assert engine.get(b"") is None


def test_put_then_get(engine):
    engine.put(b"k", b"value")
    assert engine.get(b"k") == b"value"
    assert engine.get(b"k2") is None
    assert engine.get(b"") is None


def test_empty_value_is_distinct_from_missing(engine):
    engine.put(b"empty", b"")
    assert engine.get(b"empty") == b""
    assert engine.get(b"empty") is not None
    assert all_pairs(engine) == [(b"empty", b"")]
    assert engine.get_many([b"empty", b"nope"]) == [b"", None]


def test_empty_key(engine):
    engine.put(b"", b"root")
    engine.put(b"\x00", b"zero")
    assert engine.get(b"") == b"root"
    assert all_pairs(engine) == [(b"", b"root"), (b"\x00", b"zero")]


def test_overwrite(engine):
    engine.put(b"k", b"one")
    engine.put(b"k", b"two")
    assert engine.get(b"k") == b"two"
    engine.put(b"k", b"")
    assert engine.get(b"k") == b""
    assert all_pairs(engine) == [(b"k", b"")]


def test_delete(engine):
    engine.put(b"a", b"1")
    engine.put(b"b", b"2")
    engine.delete(b"a")
    assert engine.get(b"a") is None
    assert engine.get(b"b") == b"2"
    assert all_pairs(engine) == [(b"b", b"2")]


def test_delete_absent_key_is_not_an_error(engine):
    engine.delete(b"never-there")
    engine.put(b"x", b"1")
    engine.delete(b"x")
    engine.delete(b"x")
    assert engine.get(b"x") is None
    assert all_pairs(engine) == []


def test_values_are_returned_as_bytes(engine):
    engine.put(b"k", bytes(bytearray(b"\x00\xff" * 1000)))
    value = engine.get(b"k")
    assert isinstance(value, bytes)
    assert value == b"\x00\xff" * 1000


def test_large_value(engine):
    big = bytes(range(256)) * 4096  # 1 MiB
    engine.put(b"big", big)
    assert engine.get(b"big") == big


def test_binary_keys_with_zero_and_ff_bytes(engine):
    ks = [b"\x00", b"\x00\x00", b"\x00\xff", b"\x01", b"\x7f", b"\x80", b"\xff", b"\xff\x00", b"\xff\xff"]
    for k in reversed(ks):
        engine.put(k, k * 2)
    for k in ks:
        assert engine.get(k) == k * 2
    assert [k for k, _ in all_pairs(engine)] == ks  # bytewise (unsigned) order
    assert [k for k, _ in engine.scan(b"\x00\xff", b"\xff\x00")] == [
        b"\x00\xff",
        b"\x01",
        b"\x7f",
        b"\x80",
        b"\xff",
    ]
    assert [k for k, _ in engine.scan(b"\xff", None)] == [b"\xff", b"\xff\x00", b"\xff\xff"]


def test_keys_compare_bytewise_not_by_length(engine):
    fill(engine, [b"b", b"ab", b"a", b"a\x00", b"aa", b"abc"])
    assert [k for k, _ in all_pairs(engine)] == [b"a", b"a\x00", b"aa", b"ab", b"abc", b"b"]


# ---- scans ----------------------------------------------------------------------------------------

KEYS = [b"a", b"b", b"c", b"d", b"e"]


def test_scan_is_half_open(engine):
    fill(engine, KEYS)
    assert list(engine.scan(b"b", b"d")) == [(b"b", b"vb"), (b"c", b"vc")]
    # Bounds need not be stored keys.
    assert [k for k, _ in engine.scan(b"a\x00", b"c\x00")] == [b"b", b"c"]
    assert [k for k, _ in engine.scan(b"a", b"a")] == []
    assert [k for k, _ in engine.scan(b"a", b"a\x00")] == [b"a"]
    assert [k for k, _ in engine.scan(b"d", b"b")] == []


def test_scan_to_end_with_stop_none(engine):
    fill(engine, KEYS)
    assert [k for k, _ in engine.scan(b"c", None)] == [b"c", b"d", b"e"]
    assert [k for k, _ in engine.scan(b"", None)] == KEYS
    assert [k for k, _ in engine.scan(b"f", None)] == []


def test_scan_empty_engine(engine):
    assert list(engine.scan(b"", None)) == []
    assert list(engine.scan(b"", None, reverse=True)) == []
    assert list(engine.scan(b"a", b"z", keys_only=True)) == []


def test_scan_reverse(engine):
    fill(engine, KEYS)
    assert [k for k, _ in engine.scan(b"b", b"e", reverse=True)] == [b"d", b"c", b"b"]
    assert list(engine.scan(b"", None, reverse=True)) == [(k, b"v" + k) for k in reversed(KEYS)]
    assert [k for k, _ in engine.scan(b"c", None, reverse=True)] == [b"e", b"d", b"c"]
    assert [k for k, _ in engine.scan(b"b\x00", b"d\x00", reverse=True)] == [b"d", b"c"]


def test_reverse_scan_reaches_the_empty_key(engine):
    engine.put(b"", b"empty key")
    assert list(engine.scan(b"", None, reverse=True)) == [(b"", b"empty key")]
    engine.put(b"b", b"2")
    assert list(engine.scan(b"", b"a", reverse=True)) == [(b"", b"empty key")]
    assert list(engine.scan(b"", b"\x00", reverse=True, keys_only=True)) == [(b"", b"")]
    assert list(engine.scan(b"", None, reverse=True)) == [(b"b", b"2"), (b"", b"empty key")]


def test_reverse_scan_of_a_single_key_range(engine):
    fill(engine, [b"b", b"d", b"f"])
    assert [k for k, _ in engine.scan(b"d", b"e", reverse=True)] == [b"d"]
    assert [k for k, _ in engine.scan(b"f", None, reverse=True)] == [b"f"]
    assert [k for k, _ in engine.scan(b"f", None, reverse=True, keys_only=True)] == [b"f"]
    assert [k for k, _ in engine.scan(b"c", b"e", reverse=True)] == [b"d"]
    assert [k for k, _ in engine.scan(b"b", b"c", reverse=True)] == [b"b"]


def test_reverse_scan_is_forward_scan_reversed_for_all_bounds(engine):
    stored = [b"", b"\x00", b"a", b"a\x00", b"b", b"\xff"]
    fill(engine, stored[::2])
    bounds = [*stored, b"c", b"\xff\xff"]
    for start in bounds:
        for stop in [*bounds, None]:
            forward = list(engine.scan(start, stop))
            assert forward == [
                (k, b"v" + k) for k in stored[::2] if k >= start and (stop is None or k < stop)
            ]
            assert list(engine.scan(start, stop, reverse=True)) == forward[::-1], (start, stop)
            assert list(engine.scan(start, stop, reverse=True, keys_only=True)) == [
                (k, b"") for k, _ in forward[::-1]
            ]


def test_scan_keys_only(engine):
    fill(engine, KEYS)
    assert list(engine.scan(b"b", b"d", keys_only=True)) == [(b"b", b""), (b"c", b"")]
    assert list(engine.scan(b"c", None, keys_only=True, reverse=True)) == [
        (b"e", b""),
        (b"d", b""),
        (b"c", b""),
    ]


def test_scan_returns_values(engine):
    engine.put(b"k1", b"")
    engine.put(b"k2", b"\x00\x01")
    assert list(engine.scan(b"k", b"l")) == [(b"k1", b""), (b"k2", b"\x00\x01")]


def test_scan_prefix_with_prefix_successor(engine):
    fill(engine, [b"ab", b"ab\x00", b"ab\xff\xff", b"ac", b"a\xff", b"b"])
    stop = prefix_successor(b"ab")
    assert stop == b"ac"
    assert [k for k, _ in engine.scan(b"ab", stop)] == [b"ab", b"ab\x00", b"ab\xff\xff"]
    assert prefix_successor(b"a\xff") == b"b"
    assert prefix_successor(b"\xff\xff") is None
    assert [k for k, _ in engine.scan(b"a\xff", prefix_successor(b"a\xff"))] == [b"a\xff"]


def test_scan_is_a_snapshot(engine):
    fill(engine, [b"k%02d" % i for i in range(20)])
    it = engine.scan(b"k", b"l")
    seen = [next(it)]
    # Writes while iterating: overwrite, delete and insert inside and outside the range.
    engine.put(b"k10", b"changed")
    engine.delete(b"k15")
    engine.put(b"k10a", b"new")
    engine.put(b"k99", b"new")
    with engine.batch() as wb:
        wb.delete(b"k19")
        wb.put(b"k05", b"batched")
    seen.extend(it)
    assert seen == [(b"k%02d" % i, b"vk%02d" % i) for i in range(20)]
    # The writes themselves took effect.
    assert engine.get(b"k10") == b"changed"
    assert engine.get(b"k15") is None
    assert engine.get(b"k05") == b"batched"


def test_scan_while_deleting_everything_seen(engine):
    fill(engine, [b"%03d" % i for i in range(100)])
    seen = []
    for k, _ in engine.scan(b"", None, keys_only=True):
        engine.delete(k)
        seen.append(k)
    assert seen == [b"%03d" % i for i in range(100)]
    assert all_pairs(engine) == []


# ---- get_many -------------------------------------------------------------------------------------


def test_get_many(engine):
    fill(engine, [b"a", b"c"])
    engine.put(b"e", b"")
    assert engine.get_many([]) == []
    assert engine.get_many([b"c", b"b", b"a", b"e", b"c"]) == [b"vc", None, b"va", b"", b"vc"]


# ---- batches --------------------------------------------------------------------------------------


def test_scan_ranges_reads_each_range_in_order(engine):
    for k in (b"a", b"b", b"b\x00", b"c", b"d\xff", b"e"):
        engine.put(k, k.upper())
    ranges = [(b"b", b"d"), (b"", b"a\x00"), (b"d", b"d"), (b"e", b"a"), (b"d", b"\xff")]
    got = list(engine.scan_ranges(ranges))
    assert got == [
        [(b"b", b"B"), (b"b\x00", b"B\x00"), (b"c", b"C")],
        [(b"a", b"A")],
        [],  # empty range
        [],  # stop before start
        [(b"d\xff", b"D\xff"), (b"e", b"E")],
    ]
    assert list(engine.scan_ranges([])) == []


def test_batch_commits_on_exit_and_is_visible_at_once(engine):
    engine.put(b"gone", b"x")
    with engine.batch() as wb:
        wb.put(b"a", b"1")
        wb.put(b"b", b"2")
        wb.delete(b"gone")
        # Nothing is visible before the batch is applied.
        assert engine.get(b"a") is None
        assert engine.get(b"gone") == b"x"
    assert engine.get(b"a") == b"1"
    assert engine.get(b"b") == b"2"
    assert engine.get(b"gone") is None
    assert all_pairs(engine) == [(b"a", b"1"), (b"b", b"2")]


def test_batch_explicit_commit(engine):
    wb = engine.batch()
    wb.put(b"a", b"1")
    wb.put(b"e", b"")
    assert engine.get(b"a") is None
    wb.commit()
    assert engine.get(b"a") == b"1"
    assert engine.get(b"e") == b""


def test_batch_whose_body_raises_writes_nothing(engine):
    engine.put(b"keep", b"old")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), engine.batch() as wb:
        wb.put(b"a", b"1")
        wb.put(b"keep", b"new")
        wb.delete(b"keep")
        raise Boom
    assert engine.get(b"a") is None
    assert engine.get(b"keep") == b"old"
    assert all_pairs(engine) == [(b"keep", b"old")]


def test_batch_later_ops_win(engine):
    engine.put(b"d", b"old")
    with engine.batch() as wb:
        wb.put(b"a", b"1")
        wb.put(b"a", b"2")  # put, put -> last put
        wb.put(b"b", b"1")
        wb.delete(b"b")  # put, delete -> gone
        wb.delete(b"c")
        wb.put(b"c", b"3")  # delete, put -> present
        wb.delete(b"d")
        wb.put(b"d", b"")  # existing key: delete, put empty -> empty value
    assert engine.get(b"a") == b"2"
    assert engine.get(b"b") is None
    assert engine.get(b"c") == b"3"
    assert engine.get(b"d") == b""
    assert all_pairs(engine) == [(b"a", b"2"), (b"c", b"3"), (b"d", b"")]


def test_empty_batch(engine):
    engine.put(b"a", b"1")
    with engine.batch():
        pass
    assert all_pairs(engine) == [(b"a", b"1")]


def test_batch_commit_applies_queued_ops_once(engine):
    """Ops committed once are not replayed by a later commit of the same batch object."""
    wb = engine.batch()
    wb.put(b"a", b"from-batch")
    wb.commit()
    engine.put(b"a", b"newer")
    wb.put(b"b", b"2")
    wb.commit()
    assert engine.get(b"a") == b"newer"
    assert engine.get(b"b") == b"2"
    # Same through the context manager: an explicit commit inside `with` is not repeated on exit.
    with engine.batch() as wb2:
        wb2.put(b"c", b"1")
        wb2.commit()
        engine.delete(b"c")
    assert engine.get(b"c") is None


def test_batch_many_keys(engine):
    with engine.batch() as wb:
        for i in range(1000):
            wb.put(i.to_bytes(4, "big"), i.to_bytes(4, "little"))
    pairs = all_pairs(engine)
    assert len(pairs) == 1000
    assert pairs[0] == (b"\x00\x00\x00\x00", b"\x00\x00\x00\x00")
    assert pairs[-1] == ((999).to_bytes(4, "big"), (999).to_bytes(4, "little"))


# ---- delete_range ---------------------------------------------------------------------------------


def test_delete_range_half_open(engine):
    fill(engine, KEYS)
    assert engine.delete_range(b"b", b"d") == 2
    assert [k for k, _ in all_pairs(engine)] == [b"a", b"d", b"e"]
    assert engine.delete_range(b"b", b"d") == 0
    assert engine.delete_range(b"x", b"z") == 0
    assert [k for k, _ in all_pairs(engine)] == [b"a", b"d", b"e"]


def test_delete_range_to_end(engine):
    fill(engine, KEYS)
    assert engine.delete_range(b"c", None) == 3
    assert [k for k, _ in all_pairs(engine)] == [b"a", b"b"]
    assert engine.delete_range(b"", None) == 2
    assert all_pairs(engine) == []


def test_delete_range_in_several_chunks(engine):
    ks = [i.to_bytes(2, "big") for i in range(250)]
    fill(engine, ks)
    engine.put(b"\x00", b"before")
    engine.put(b"\xff", b"after")
    assert engine.delete_range(b"\x00\x00", b"\x01\x00", chunk=7) == 250
    assert all_pairs(engine) == [(b"\x00", b"before"), (b"\xff", b"after")]


def test_delete_range_with_ff_keys(engine):
    fill(engine, [b"a", b"a\xff", b"a\xff\xff", b"a\xff\xff\x00", b"b"])
    assert engine.delete_range(b"a\xff", prefix_successor(b"a\xff"), chunk=1) == 3
    assert [k for k, _ in all_pairs(engine)] == [b"a", b"b"]


# ---- close ----------------------------------------------------------------------------------------


def test_close_is_idempotent(engine):
    engine.put(b"a", b"1")
    engine.close()
    engine.close()


def test_describe_names_the_engine(engine):
    assert engine.name in ("memory", "leveldb", "postgres")
    assert engine.describe().startswith(engine.name)


def test_leveldb_persists_across_close_and_reopen(tmp_path):
    path = tmp_path / "db"
    eng = LevelDBEngine(path)
    eng.put(b"a", b"1")
    eng.put(b"e", b"")
    with eng.batch() as wb:
        wb.put(b"b", b"2")
        wb.delete(b"a")
    eng.close()
    with pytest.raises(RuntimeError):
        eng.get(b"b")
    eng = LevelDBEngine(path)
    try:
        assert all_pairs(eng) == [(b"b", b"2"), (b"e", b"")]
        assert eng.describe() == f"leveldb @ {path}"
    finally:
        eng.close()


def test_leveldb_second_open_of_same_store_fails(tmp_path):
    from dvid.errors import DVIDError

    eng = LevelDBEngine(tmp_path / "db")
    try:
        with pytest.raises(DVIDError) as info:
            LevelDBEngine(tmp_path / "db")
        assert info.value.status == 500
    finally:
        eng.close()


# ---- model-based test: every engine against a plain dict ------------------------------------------

small_keys = st.binary(min_size=0, max_size=3).map(lambda b: bytes(x % 4 * 0x55 for x in b))
# Keys from a small alphabet including 0x00 and 0xFF so that operations collide and bounds matter.
values = st.binary(max_size=6)
bounds = st.one_of(st.none(), small_keys)
batch_ops = st.lists(st.tuples(st.booleans(), small_keys, values), max_size=8)


def _model_scan(model: dict, start: bytes, stop: bytes | None, reverse: bool) -> list[tuple[bytes, bytes]]:
    out = sorted((k, v) for k, v in model.items() if k >= start and (stop is None or k < stop))
    return out[::-1] if reverse else out


class EngineVsDict(RuleBasedStateMachine):
    engine = None  # set per test

    def __init__(self) -> None:
        super().__init__()
        self.engine.delete_range(b"", None)
        self.model: dict[bytes, bytes] = {}

    @rule(k=small_keys, v=values)
    def put(self, k, v):
        self.engine.put(k, v)
        self.model[k] = v

    @rule(k=small_keys)
    def delete(self, k):
        self.engine.delete(k)
        self.model.pop(k, None)

    @rule(k=small_keys)
    def get(self, k):
        assert self.engine.get(k) == self.model.get(k)

    @rule(ks=st.lists(small_keys, max_size=5))
    def get_many(self, ks):
        assert self.engine.get_many(ks) == [self.model.get(k) for k in ks]

    @rule(ops=batch_ops, fail=st.booleans())
    def batch(self, ops, fail):
        try:
            with self.engine.batch() as wb:
                for is_put, k, v in ops:
                    if is_put:
                        wb.put(k, v)
                    else:
                        wb.delete(k)
                if fail:
                    raise KeyError("abandon")
        except KeyError:
            return
        for is_put, k, v in ops:
            if is_put:
                self.model[k] = v
            else:
                self.model.pop(k, None)

    @rule(start=small_keys, stop=bounds, reverse=st.booleans(), keys_only=st.booleans())
    def scan(self, start, stop, reverse, keys_only):
        got = list(self.engine.scan(start, stop, keys_only=keys_only, reverse=reverse))
        want = _model_scan(self.model, start, stop, reverse)
        if keys_only:
            want = [(k, b"") for k, _ in want]
        assert got == want

    @rule(ranges=st.lists(st.tuples(small_keys, small_keys), max_size=4))
    def scan_ranges(self, ranges):
        got = list(self.engine.scan_ranges(ranges))
        assert got == [_model_scan(self.model, start, stop, False) for start, stop in ranges]

    @rule(start=small_keys, stop=bounds, chunk=st.integers(1, 4))
    def delete_range(self, start, stop, chunk):
        doomed = [k for k, _ in _model_scan(self.model, start, stop, False)]
        assert self.engine.delete_range(start, stop, chunk=chunk) == len(doomed)
        for k in doomed:
            del self.model[k]

    @invariant()
    def same_contents(self):
        assert list(self.engine.scan(b"", None)) == sorted(self.model.items())


def test_engine_matches_dict_model(engine):
    machine = type("EngineVsDictBound", (EngineVsDict,), {"engine": engine})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=100,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )


def test_leveldb_store_in_use_is_refused_in_plain_words(tmp_path):
    first = LevelDBEngine(tmp_path / "db")
    try:
        with pytest.raises(DVIDError) as info:
            LevelDBEngine(tmp_path / "db")
        message = info.value.message
        assert message.startswith(f"cannot open LevelDB store at {tmp_path / 'db'}: it is locked (IO error: ")
        assert message.endswith("; is another dvid server running on this store?")
        assert "b'" not in message
    finally:
        first.close()
