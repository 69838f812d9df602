"""neuronjson's model without HTTP: the merge rules and the query matcher held against plain reference
implementations with hypothesis, the in-memory index against the matcher (also after writes), Go's
float output, and the index cache's epochs with a memory engine."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dvid.dag.ancestry import Ancestry
from dvid.datatype.neuronjson import keys
from dvid.datatype.neuronjson.index import VersionIndex
from dvid.datatype.neuronjson.merge import WriteMode, merge
from dvid.datatype.neuronjson.model import Annotations, Write
from dvid.datatype.neuronjson.query import parse_query
from dvid.datatype.neuronjson.values import dumps, go_float
from dvid.storage.memory import MemoryEngine
from dvid.storage.versioned import VersionedStore

FIELDS = ("status", "type", "group", "tags", "note")
WORDS = ("a", "ab", "b", "Traced", "Anchor", "")
scalars = st.one_of(
    st.integers(-3, 3),
    st.sampled_from(WORDS),
    st.sampled_from([1.0, 2.5, True, None]),
)
values = st.one_of(
    scalars,
    st.lists(st.integers(-3, 3), max_size=3),
    st.lists(st.sampled_from(WORDS), max_size=3),
    st.just([1, "a"]),
    st.just({"x": 1}),
)
records = st.dictionaries(st.sampled_from(FIELDS), values, max_size=5)


# ---- the query matcher against a plain reference --------------------------------------------------


def reference_values(value: Any) -> list[Any]:
    """What a record's field offers, per spec §5.5, written out case by case."""
    if value is None or value is True or value is False:
        return []
    if type(value) is int:
        return [value]
    if type(value) is float:
        return [int(value)] if value == int(value) else []
    if type(value) is str:
        return [value]
    if type(value) is list and len(value) > 0:
        if all(type(v) is int for v in value):
            return list(value)
        if all(type(v) is str for v in value):
            return list(value)
    return []


def reference_condition(cond: Any, record: dict, name: str) -> bool:
    value = record.get(name)
    if cond == "exists/0":
        return value is None
    if type(cond) is str and cond.startswith("exists/"):
        return value is not None
    wanted = cond if type(cond) is list else [cond]
    if len(wanted) == 0:
        return False
    if not (all(type(w) is int for w in wanted) or all(type(w) is str for w in wanted)):
        return False
    for w in wanted:
        for v in reference_values(value):
            if type(w) is str and w.startswith("re/"):
                if type(v) is str and re.search(w[3:], v):
                    return True
            elif type(w) is type(v) and w == v:
                return True
    return False


def reference_matches(query: Any, record: dict) -> bool:
    alternatives = query if isinstance(query, list) else [query]
    return any(all(reference_condition(c, record, n) for n, c in alt.items()) for alt in alternatives)


conditions = st.one_of(
    st.integers(-3, 3),
    st.sampled_from((*WORDS, "re/^a", "re/b$", "re/.", "exists/0", "exists/1", "exists/x")),
    st.lists(st.integers(-3, 3), max_size=3),
    st.lists(st.sampled_from((*WORDS, "re/^A", "re/ce")), max_size=3),
    st.sampled_from([2.5, 1.0, True, None, [1, "a"], {"x": 1}]),
)
queries = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), conditions, max_size=3),
    st.lists(
        st.dictionaries(st.sampled_from(FIELDS), conditions, min_size=1, max_size=2), min_size=1, max_size=3
    ),
)


@settings(max_examples=400, deadline=None)
@given(queries, records)
def test_matcher_agrees_with_the_reference(query, record):
    parsed = parse_query(json.dumps(query).encode())
    assert parsed.matches(record) == reference_matches(query, record)


@settings(max_examples=150, deadline=None)
@given(queries, st.lists(records, max_size=25), st.lists(st.tuples(st.integers(1, 30), records | st.none())))
def test_index_agrees_with_the_matcher_after_writes(query, initial, writes):
    parsed = parse_query(json.dumps(query).encode())
    if parsed.body_ids is not None:
        return
    index = VersionIndex({i + 1: {"bodyid": i + 1, **r} for i, r in enumerate(initial)}, epochs=())
    index.evaluate(parsed)  # builds the postings of the query's fields before the writes
    for body_id, record in writes:
        index.put(body_id, None if record is None else {"bodyid": body_id, **record})
    expected = sorted(i for i, r in index.records.items() if reference_matches(query, r))
    assert index.evaluate(parsed) == expected
    fresh = VersionIndex(dict(index.records), epochs=())
    assert fresh.evaluate(parsed) == expected
    assert +fresh.counts == +index.counts


# ---- the merge rules --------------------------------------------------------------------------

META = ("_user", "_time")
NOW, USER = "2024-05-01T10:11:12-04:00", "writer"


def plain(record: dict) -> dict:
    return {k: v for k, v in record.items() if not k.endswith(META)}


stored_records = st.dictionaries(
    st.sampled_from(FIELDS), values.filter(lambda v: v is not None), max_size=5
).map(
    lambda r: {
        "bodyid": 1,
        **r,
        **{f + "_user": "old" for f in r},
        **{f + "_time": "2000-01-01T00:00:00Z" for f in r},
    }
)
bodies = st.dictionaries(st.sampled_from(FIELDS), values, max_size=4).map(lambda r: {"bodyid": 1, **r})


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and json.dumps(a) == json.dumps(b)


@settings(max_examples=300, deadline=None)
@given(stored_records, bodies, st.booleans(), st.sets(st.sampled_from(FIELDS), max_size=2))
def test_merge_rules(orig, body, replace, conditional):
    mode = WriteMode(USER, NOW, replace, frozenset(conditional))
    out = merge(orig, body, mode)
    deleted = {f for f, v in body.items() if v is None}
    given_ = {f: v for f, v in body.items() if v is not None}
    protected = set() if replace else {f for f in conditional if f in orig and f not in deleted}
    # the values
    if replace:
        assert plain(out) == given_
    else:
        expected = {f: v for f, v in plain(orig).items() if f not in deleted}
        expected.update({f: v for f, v in given_.items() if f not in protected})
        assert plain(out) == expected
    assert not deleted & set(out)
    assert "bodyid_user" not in out and "bodyid_time" not in out
    # the stamps
    for f in plain(out):
        if f == "bodyid":
            continue
        changed = f not in orig or not _same(orig[f], out[f])
        if f in protected or not changed:
            assert (out.get(f + "_user"), out.get(f + "_time")) == (orig[f + "_user"], orig[f + "_time"]), f
        else:
            assert (out[f + "_user"], out[f + "_time"]) == (USER, NOW), f
    for f in deleted:
        assert (out[f + "_user"], out[f + "_time"]) == (USER, NOW)


def test_merge_honours_given_stamps_and_null_user():
    orig = {"bodyid": 1, "a": 1, "a_user": "x", "a_time": "t0"}
    mode = WriteMode(USER, NOW)
    assert merge(orig, {"bodyid": 1, "a": 2, "a_user": "given"}, mode) == {
        "bodyid": 1, "a": 2, "a_user": "given", "a_time": NOW
    }  # fmt: skip
    assert merge(orig, {"bodyid": 1, "a": None, "a_user": None}, mode) == {"bodyid": 1, "a_time": NOW}
    assert merge(None, {"bodyid": 1, "user": "me"}, mode) == {"bodyid": 1, "user": "me"}


# ---- output -----------------------------------------------------------------------------------


def test_go_float_format():
    cases = [
        (3.0, "3"), (-0.0, "-0"), (0.0, "0"), (1e-7, "1e-7"), (1.5e-7, "1.5e-7"), (1e-6, "0.000001"),
        (1.5e-5, "0.000015"), (1e16, "10000000000000000"), (1e20, "100000000000000000000"),
        (1e21, "1e+21"), (1.5e22, "1.5e+22"), (123.456, "123.456"), (1e-100, "1e-100"),
        (1e300, "1e+300"), (0.1, "0.1"), (-2.5e-9, "-2.5e-9"), (5e-324, "5e-324"),
    ]  # fmt: skip
    for value, text in cases:
        assert go_float(value) == text, value
    assert dumps({"b": [1.0, {"z": 0.5, "a": 2**64 - 1}], "a": "<&>"}) == (
        b'{"a":"\\u003c\\u0026\\u003e","b":[1,{"a":18446744073709551615,"z":0.5}]}'
    )


# ---- the cache and its epochs -----------------------------------------------------------------


def test_index_cache_sees_writes_made_through_another_cache():
    store = VersionedStore(MemoryEngine())
    ctx = store.context(1, Ancestry.root(1))
    mine, theirs = Annotations(), Annotations()  # two servers on one store
    mode = WriteMode(USER, NOW)
    mine.post(ctx, [Write("5", b'{"bodyid":5,"a":"x"}')], mode)
    q = parse_query(b'{"a":"x"}')
    assert [i for i, _ in mine.query(ctx, q)] == [5]
    assert [i for i, _ in theirs.query(ctx, q)] == [5]
    theirs.post(ctx, [Write("6", b'{"bodyid":6,"a":"x"}')], mode)
    assert [i for i, _ in mine.query(ctx, q)] == [5, 6]  # rebuilt: the epoch changed
    mine.post(ctx, [Write("7", b'{"bodyid":7,"a":"x"}')], mode)  # updated in place
    assert [i for i, _ in mine.query(ctx, q)] == [5, 6, 7]
    assert mine.cache.current(ctx) is not None
    theirs.delete(ctx, 5)
    assert mine.cache.current(ctx) is None
    assert [i for i, _ in mine.query(ctx, q)] == [6, 7]
    assert mine.ids(ctx) == [6, 7]
    assert keys.decode_tkey(keys.annotation_tkey(2**64 - 1)) == 2**64 - 1


def chain(version: int) -> Ancestry:
    """Versions version, version - 1, ..., 1, each the parent of the one before."""
    order = {v: version - v for v in range(version, 0, -1)}
    return Ancestry(version, order, True, lambda v: frozenset(range(1, v)))


def test_index_cache_keeps_a_bounded_number_of_versions():
    store = VersionedStore(MemoryEngine())
    annotations = Annotations(max_versions=2)
    for v in range(1, 5):
        ctx = store.context(1, chain(v))
        annotations.ids(ctx)
    assert len(annotations.cache._indexes) == 2
