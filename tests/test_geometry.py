"""Geometry of voxel requests (spec image-label.md §0.2): dims/size/offset strings, boxes, block ranges."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dvid.datatype.common.blockstore import BlockCodec, BlockStore
from dvid.datatype.common.envelope import Compression
from dvid.datatype.common.geometry import (
    Box,
    iter_block_rows,
    parse_block_list,
    parse_dims,
    parse_ints,
    parse_subvolume,
)
from dvid.datatype.common.numbers import OUT_OF_RANGE, parse_decimal
from dvid.datatype.common.voxels import VOXEL_FORMATS
from dvid.errors import BadRequest

# ---- dims --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "dims"),
    [
        ("0_1", (0, 1)), ("xy", (0, 1)), ("XY", (0, 1)), ("0,1", (0, 1)),
        ("0_2", (0, 2)), ("xz", (0, 2)), ("XZ", (0, 2)), ("Xz", (0, 2)), ("0,2", (0, 2)),
        ("1_2", (1, 2)), ("yz", (1, 2)), ("YZ", (1, 2)), ("1,2", (1, 2)),
        ("0_1_2", (0, 1, 2)), ("0,1,2", (0, 1, 2)), ("xyz", (0, 1, 2)),
        ("vol", (0, 1, 2)), ("VOL", (0, 1, 2)),
    ],
)  # fmt: skip
def test_parse_dims_aliases(text, dims):
    assert parse_dims(text) == dims


@pytest.mark.parametrize(
    "text", ["", "0", "1_0", "0_3", "2_1", "zx", "x", "xyzz", "0_1_2_3", "volume", "0__1"]
)
def test_parse_dims_unknown_is_bad_request(text):
    with pytest.raises(BadRequest, match="unknown dims"):
        parse_dims(text)


# ---- integer tuples ----------------------------------------------------------------------------------


def test_parse_ints_accepts_negative_offsets_and_both_separators():
    assert parse_ints("-5_0_17", 3, "offset") == (-5, 0, 17)
    assert parse_ints("-5,0,+17", 3, "offset") == (-5, 0, 17)
    assert parse_ints("64_32", 2, "size", positive=True) == (64, 32)
    assert parse_ints("2147483647_-2147483647_0", 3, "offset") == (2**31 - 1, -(2**31 - 1), 0)


@pytest.mark.parametrize("text", ["0_1_1", "1_0_1", "1_1_0", "-1_4_4", "4_4_-32"])
def test_parse_ints_positive_refuses_zero_and_negative(text):
    with pytest.raises(BadRequest, match="positive"):
        parse_ints(text, 3, "size", positive=True)


@pytest.mark.parametrize("text", ["1_2", "1_2_3_4", "", "1", "1__2_3", "_1_2_3", "1_2_3_"])
def test_parse_ints_wrong_count(text):
    with pytest.raises(BadRequest, match="3 integers"):
        parse_ints(text, 3, "size")


@pytest.mark.parametrize(
    "text",
    [
        "a_b_c",
        "1.5_2_3",
        "1_2_3x",
        "0x10_1_1",
        " 1_2_3",
        "1_2_ 3",
        "1e3_1_1",
        "--1_1_1",
        "1_2_3\n",
        "\u0661_2_3",
        "\u00b2_2_3",
    ],
)
def test_parse_ints_garbage(text):
    # a trailing newline or non-ASCII digits (which Python's int() would accept) are not integers either
    with pytest.raises(BadRequest):
        parse_ints(text, 3, "offset")


@pytest.mark.parametrize(
    "text",
    ["2147483648_0_0", "0_-2147483648_0", "0_0_99999999999", "9" * 5000 + "_0_0", "0_-" + "1" * 4400 + "_0"],
)
def test_parse_ints_out_of_int32_range(text):
    with pytest.raises(BadRequest, match="32-bit"):
        parse_ints(text, 3, "offset")


# ---- subvolumes ------------------------------------------------------------------------------------


def test_parse_subvolume_volume():
    sub = parse_subvolume("0_1_2", "512_256_128", "0_0_100")
    assert sub.is_3d
    assert sub.box == Box((0, 0, 100), (512, 256, 128))
    assert sub.box.shape == (128, 256, 512)
    assert sub.box.end == (512, 256, 228)
    assert sub.box.voxels == 512 * 256 * 128


@pytest.mark.parametrize(
    ("dims", "size", "expect"),
    [
        ("xy", "30_20", (30, 20, 1)),
        ("0_2", "30_20", (30, 1, 20)),  # x in [x, x+W), z in [z, z+H) at fixed y
        ("yz", "30_20", (1, 30, 20)),
    ],
)
def test_parse_subvolume_slices_have_size_one_along_the_missing_axis(dims, size, expect):
    sub = parse_subvolume(dims, size, "-3_4_-5")
    assert not sub.is_3d
    assert sub.box.offset == (-3, 4, -5)
    assert sub.box.size == expect
    assert sub.box.voxels == 600


@pytest.mark.parametrize(
    ("dims", "size", "offset"),
    [
        ("0_1", "30_20_1", "0_0_0"),  # a slice takes two sizes
        ("0_1_2", "30_20", "0_0_0"),  # a volume takes three
        ("0_1", "30_20", "0_0"),  # offsets are always 3-D
        ("0_1", "30_0", "0_0_0"),
        ("0_1_2", "8_8_-8", "0_0_0"),
        ("0_1_2", "8_8_8", "a_0_0"),
        ("1_1", "8_8", "0_0_0"),
    ],
)
def test_parse_subvolume_bad(dims, size, offset):
    with pytest.raises(BadRequest):
        parse_subvolume(dims, size, offset)


# ---- boxes -------------------------------------------------------------------------------------------


def test_block_range_uses_floor_division_for_negative_coordinates():
    bs = (32, 32, 32)
    assert Box((-1, -32, -33), (1, 1, 1)).block_range(bs) == ((-1, -1, -2), (-1, -1, -2))
    assert Box((-40, 0, -1), (80, 32, 2)).block_range(bs) == ((-2, 0, -1), (1, 0, 0))
    assert Box((0, 0, 0), (32, 32, 32)).block_range(bs) == ((0, 0, 0), (0, 0, 0))
    assert Box((31, 31, 31), (2, 2, 2)).block_range(bs) == ((0, 0, 0), (1, 1, 1))
    # non-cubic blocks: each axis uses its own block size
    assert Box((-5, 7, 9), (10, 1, 1)).block_range((4, 8, 3)) == ((-2, 0, 3), (1, 0, 3))


def test_is_aligned():
    bs = (32, 16, 8)
    assert Box((0, 0, 0), (32, 16, 8)).is_aligned(bs)
    assert Box((-64, -16, 8), (64, 32, 24)).is_aligned(bs)
    assert not Box((1, 0, 0), (32, 16, 8)).is_aligned(bs)
    assert not Box((0, 0, 0), (32, 16, 9)).is_aligned(bs)
    assert not Box((0, -8, 0), (32, 16, 8)).is_aligned(bs)
    assert not Box((0, 0, 0), (16, 16, 8)).is_aligned(bs)


def test_box_union():
    a, b = Box((0, 0, 0), (4, 4, 4)), Box((-2, 3, 10), (1, 1, 1))
    assert a.union(b) == Box((-2, 0, 0), (6, 4, 11))
    assert b.union(a) == a.union(b)


def test_iter_block_rows_is_storage_order():
    assert list(iter_block_rows((0, -1, 2), (5, 0, 3))) == [(-1, 2), (0, 2), (-1, 3), (0, 3)]


coords = st.integers(-200, 200)
sizes = st.integers(1, 90)
block_sizes = st.tuples(st.integers(1, 40), st.integers(1, 40), st.integers(1, 40))


@settings(max_examples=150, deadline=None)
@given(offset=st.tuples(coords, coords, coords), size=st.tuples(sizes, sizes, sizes), bs=block_sizes)
def test_block_range_brute_force(offset, size, bs):
    box = Box(offset, size)
    first, last = box.block_range(bs)
    for axis in range(3):
        touched = {v // bs[axis] for v in range(offset[axis], offset[axis] + size[axis])}
        assert (first[axis], last[axis]) == (min(touched), max(touched))
    aligned = all(offset[a] % bs[a] == 0 and size[a] % bs[a] == 0 for a in range(3))
    assert box.is_aligned(bs) == aligned


# ---- slabs -------------------------------------------------------------------------------------------


def _store(bs):
    return BlockStore(BlockCodec(VOXEL_FORMATS["uint8"], bs, Compression()))


def test_slabs_cut_at_block_boundaries():
    store = _store((32, 32, 32))
    slabs = store.slabs(Box((5, -7, -40), (10, 11, 100)))
    assert [(s.offset[2], s.size[2]) for s in slabs] == [(-40, 8), (-32, 32), (0, 32), (32, 28)]
    assert all(s.offset[:2] == (5, -7) and s.size[:2] == (10, 11) for s in slabs)
    assert store.slabs(Box((0, 0, 64), (1, 1, 32))) == [Box((0, 0, 64), (1, 1, 32))]


@settings(max_examples=150, deadline=None)
@given(offset=st.tuples(coords, coords, coords), size=st.tuples(sizes, sizes, sizes), bs=block_sizes)
def test_slabs_tile_the_box_exactly(offset, size, bs):
    box = Box(offset, size)
    slabs = _store(bs).slabs(box)
    assert slabs, "a box always has at least one slab"
    z = box.offset[2]
    for slab in slabs:
        assert slab.offset[:2] == box.offset[:2] and slab.size[:2] == box.size[:2]
        assert slab.offset[2] == z and slab.size[2] > 0
        first, last = slab.block_range(bs)
        assert first[2] == last[2], "a slab never spans two block layers"
        z += slab.size[2]
    assert z == box.end[2]
    assert sum(s.voxels for s in slabs) == box.voxels
    # every slab but the last ends on a block boundary
    assert all(s.end[2] % bs[2] == 0 for s in slabs[:-1])


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("-12", -12), ("+7", 7), ("0007", 7), ("0" * 50 + "1", 1), (str(2**64 - 1), 2**64 - 1)],
)
def test_parse_decimal(text, value):
    assert parse_decimal(text) == value


@pytest.mark.parametrize("text", ["", " 1", "1 ", "1_000", "\u0661", "\u00b2", "0x10", "1.0", "-", "1\n"])
def test_parse_decimal_refuses_what_int_is_lenient_about(text):
    assert parse_decimal(text) is None


def test_parse_decimal_never_converts_thousands_of_digits():
    # int() raises ValueError past 4300 digits: that escaped parsers as a 500 (fuzz, issue 11)
    assert parse_decimal("9" * 5000) == OUT_OF_RANGE
    assert parse_decimal("-" + "9" * 5000) == -OUT_OF_RANGE
    assert parse_decimal("+5", signed=False) is None and parse_decimal("5", signed=False) == 5


def test_parse_block_list():
    assert parse_block_list("") == []
    assert parse_block_list("1,2,3,-4,5,6") == [(1, 2, 3), (-4, 5, 6)]
    for bad in ("1,2", "a,b,c", "1,,2", f"{2**31},0,0", "9" * 5000 + ",0,0"):
        with pytest.raises(BadRequest):
            parse_block_list(bad)
