"""labelmap's cache of decoded block layers: planes cut from a cached layer equal a full decode,
for every axis, with and without a mapped table, and the cache stays within its budget."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dvid.datatype.common.envelope import Compression
from dvid.datatype.labelmap.blocks import LabelBlockCodec
from dvid.datatype.labelmap.slabcache import SLABS, SlabCache, thin_axis
from tests.test_labelmap_codec import random_volume

EVERY = slice(None)


def test_thin_axis_picks_the_layer_a_box_lies_in():
    shape = (64, 64, 64)
    assert thin_axis((slice(17, 18), EVERY, EVERY), shape) == 0
    assert thin_axis((EVERY, slice(40, 41), EVERY), shape) == 1
    assert thin_axis((EVERY, EVERY, slice(63, 64)), shape) == 2
    assert thin_axis((slice(16, 24), slice(3, 4), EVERY), shape) == 1  # the thinnest of two
    assert thin_axis((slice(7, 9), EVERY, EVERY), shape) is None  # straddles two layers
    assert thin_axis((EVERY, EVERY, EVERY), shape) is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["few", "many", "solid", "mixed", "sparse", "runs"]),
    seed=st.integers(0, 2**32 - 1),
    axis=st.integers(0, 2),
    planes=st.lists(st.integers(0, 63), min_size=1, max_size=6),
    mapped=st.booleans(),
)
def test_planes_from_cached_layers_equal_a_full_decode(kind, seed, axis, planes, mapped):
    vol = random_volume(kind, (64, 64, 64), seed)
    codec = LabelBlockCodec((64, 64, 64), Compression.parse("gzip"))
    if mapped:
        codec = codec.mapped(lambda labels: labels ^ np.uint64(0xABCDEF))  # any table map
    stored = codec.encode(vol)
    full = codec.decode(stored)
    for plane in planes:
        box = [EVERY, EVERY, EVERY]
        box[axis] = slice(plane, plane + 1)
        assert np.array_equal(codec.decode_part(stored, tuple(box)), full[tuple(box)])
        sub = [slice(5, 50), slice(0, 64), slice(9, 10)]
        assert np.array_equal(codec.decode_part(stored, tuple(sub)), full[tuple(sub)])


def test_the_second_plane_of_a_layer_is_a_hit_and_the_budget_holds():
    vol = random_volume("many", (64, 64, 64), 3)
    codec = LabelBlockCodec((64, 64, 64), Compression.parse("gzip"))
    stored = codec.encode(vol)
    before = (SLABS.hits, SLABS.misses)
    codec.decode_part(stored, (slice(8, 9), EVERY, EVERY))
    codec.decode_part(stored, (slice(9, 10), EVERY, EVERY))
    assert (SLABS.hits - before[0], SLABS.misses - before[1]) == (1, 1)
    small = SlabCache(budget=100_000)
    for index in range(8):
        small.layer(stored, lambda: codec.block_bytes(stored), 0, index)
    assert small._bytes <= 100_000 or len(small._entries) == 1
    assert len(small._entries) < 8
