"""Property tests of the span model (dvid/datatype/common/spans.py) against brute-force models."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dvid.datatype import roi as roi_mod
from dvid.datatype.common import spans as sp
from dvid.errors import BadRequest
from tests.roi_partition_reference import partition as reference_partition

coord = st.integers(-6, 6)
span = st.tuples(coord, coord, coord, st.integers(0, 5)).map(lambda t: [t[0], t[1], t[2], t[2] + t[3]])
span_lists = st.lists(span, max_size=30)
block_size = st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5))


def blocks_of(spans) -> set[tuple[int, int, int]]:
    return {(x, y, z) for z, y, x0, x1 in spans for x in range(x0, x1 + 1)}


@given(span_lists)
def test_canonical_is_key_order_without_duplicates(spans):
    got = sp.canonical_spans(np.array(spans, dtype=np.int64).reshape(-1, 4)).tolist()
    want = sorted({tuple(s) for s in spans}, key=lambda s: (s[0], s[1], s[2], s[3] - s[2] + 1))
    assert got == [list(s) for s in want]
    # and that is the byte order of the stored keys
    tks = roi_mod.span_tkeys(np.array(got, dtype=np.int64).reshape(-1, 4))
    assert tks == sorted(tks)
    assert tks == [roi_mod.span_tkey(*s) for s in got]
    assert roi_mod.decode_span_tkeys(tks).tolist() == got


@given(
    span_lists, st.lists(st.tuples(st.integers(-9, 9), st.integers(-9, 9), st.integers(-9, 9)), max_size=60)
)
def test_index_contains_matches_brute_force(spans, queries):
    index = sp.SpanIndex(np.array(spans, dtype=np.int64).reshape(-1, 4))
    inside = blocks_of(spans)
    q = np.array(queries, dtype=np.int64).reshape(-1, 3)
    got = index.contains(q[:, 0], q[:, 1], q[:, 2]).tolist()
    assert got == [tuple(p) in inside for p in queries]


@given(
    span_lists,
    block_size,
    st.lists(st.tuples(st.integers(-40, 40), st.integers(-40, 40), st.integers(-40, 40)), max_size=60),
)
def test_points_use_floor_division(spans, bs, points):
    index = sp.SpanIndex(np.array(spans, dtype=np.int64).reshape(-1, 4))
    inside = blocks_of(spans)
    got = index.contains_points(np.array(points, dtype=np.int64).reshape(-1, 3), bs).tolist()
    assert got == [(x // bs[0], y // bs[1], z // bs[2]) in inside for x, y, z in points]


@settings(max_examples=50)
@given(
    span_lists,
    block_size,
    st.tuples(st.integers(-20, 20), st.integers(-20, 20), st.integers(-20, 20)),
    st.tuples(st.integers(1, 12), st.integers(1, 12), st.integers(1, 12)),
)
def test_voxel_mask_matches_brute_force(spans, bs, offset, size):
    index = sp.SpanIndex(np.array(spans, dtype=np.int64).reshape(-1, 4))
    inside = blocks_of(spans)
    got = sp.voxel_mask(index, offset, size, bs)
    z, y, x = np.meshgrid(
        *(np.arange(o, o + n) for o, n in zip(offset[::-1], size[::-1], strict=True)), indexing="ij"
    )
    want = np.vectorize(lambda a, b, c: (a // bs[0], b // bs[1], c // bs[2]) in inside)(x, y, z)
    np.testing.assert_array_equal(got, want.astype(np.uint8))


@given(span_lists)
def test_parse_round_trip(spans):
    body = json.dumps(spans).encode()
    np.testing.assert_array_equal(sp.parse_spans(body), np.array(spans, dtype=np.int64).reshape(-1, 4))


@pytest.mark.parametrize(
    "body",
    [
        b"[[1,2,3]]",
        b"[[1,2,4,3]]",
        b"[[1,2,3,false]]",
        b"[[1,2,3,4.0]]",
        b"[1,2,3,4]",
        b"{}",
        b"\xff",
        b"[[1,2,3,1e3]]",
    ],
)
def test_parse_rejects(body):
    with pytest.raises(BadRequest):
        sp.parse_spans(body)


def test_large_index_speed():
    """100,000 points against 1,000 spans: well under the 0.5 s server target (in-process)."""
    import time

    rng = np.random.default_rng(0)
    z = rng.integers(0, 40, 1000)
    y = rng.integers(0, 40, 1000)
    x0 = rng.integers(0, 200, 1000)
    spans = np.stack([z, y, x0, x0 + rng.integers(0, 20, 1000)], axis=1)
    points = rng.integers(0, 40 * 32, (100_000, 3))
    body = json.dumps(points.tolist()).encode()
    t0 = time.perf_counter()
    got = sp.SpanIndex(spans).contains_points(sp.parse_points(body), (32, 32, 32))
    elapsed = time.perf_counter() - t0
    inside = blocks_of(spans.tolist())
    b = points // 32
    assert got.tolist() == [(int(p[0]), int(p[1]), int(p[2])) in inside for p in b]
    assert elapsed < 2.0  # generous: noisy shared machines; the bench reports the real figure


def _random_spans(rng, n, spread):
    out = []
    for _ in range(n):
        z, y, x0 = (rng.randint(-spread, spread) for _ in range(3))
        out.append([z, y, x0, x0 + rng.randint(0, spread)])
    return sp.canonical_spans(np.array(out, dtype=np.int64))


@pytest.mark.parametrize("seed", range(40))
def test_partition_matches_the_literal_algorithm(seed):
    rng = random.Random(seed)
    spans = _random_spans(rng, rng.randint(1, 25), rng.choice([3, 8, 20]))
    batch = rng.randint(1, 6)
    min_z, max_z = int(spans[:, 0].min()), int(spans[:, 0].max())
    for optimized in (False, True):
        want = reference_partition(spans, (8, 8, 8), min_z, max_z, batch, optimized)
        got = sp.partition(spans, (8, 8, 8), min_z, max_z, batch, optimized)
        assert got == want, (seed, optimized)
