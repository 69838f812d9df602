"""Run-length codecs for labelvol (spec image-label.md §3.1–3.3, §7): runs, sparsevol, sparsevol-coarse."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dvid.datatype.common.rle import (
    block_runs_by_label,
    clip_runs,
    coarse_blocks,
    coarse_runs_to_blocks,
    decode_sparsevol,
    encode_sparsevol,
    encode_sparsevol_coarse,
    merge_runs,
    runs_from_bytes,
    runs_mask_in_block,
    runs_to_bytes,
    split_runs_by_block,
)
from dvid.errors import BadRequest
from tests.shared_data import DATA

SAMPLES = ["fib19-64x64x64-sample1.dat.gz", "cx-64x64x64-sample1.dat.gz"]


def load_sample(name: str) -> np.ndarray:
    path = DATA / name
    assert path.exists(), f"test data missing: {path}"
    return np.frombuffer(gzip.decompress(path.read_bytes()), dtype="<u8").reshape(64, 64, 64)


@pytest.fixture(scope="module", params=SAMPLES)
def sample(request) -> np.ndarray:
    return load_sample(request.param)


def paint(runs, origin, shape, values=None) -> np.ndarray:
    """Reference rasterizer (one Python step per run): runs -> (nz, ny, nx) array, or a mask if no values."""
    out = np.zeros(shape, dtype=np.uint64 if values is not None else bool)
    x0, y0, z0 = origin
    for i, (x, y, z, n) in enumerate(np.asarray(runs, dtype=np.int64)):
        out[z - z0, y - y0, x - x0 : x - x0 + n] = True if values is None else values[i]
    return out


def by_label(labels, runs, offsets) -> dict[int, np.ndarray]:
    return {int(lab): runs[offsets[i] : offsets[i + 1]] for i, lab in enumerate(labels)}


def zyx_sorted(runs) -> bool:
    keys = [(int(z), int(y), int(x)) for x, y, z, _ in runs]
    return keys == sorted(keys)


# ---- strategies ---------------------------------------------------------------------------------------

origins = st.tuples(*[st.integers(-100, 100)] * 3)
shapes = st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 12))
label_blocks = shapes.flatmap(
    lambda s: hnp.arrays(np.uint64, s, elements=st.sampled_from([0, 1, 2, 7, 2**63 + 5, 2**64 - 1]))
)


@st.composite
def runs_in_box(draw, max_runs: int = 30, extent: int = 20):
    """Random runs (overlaps and touching allowed) inside [-extent, extent) on every axis."""
    n = draw(st.integers(0, max_runs))
    xs = draw(hnp.arrays(np.int32, n, elements=st.integers(-extent, extent - 1)))
    ys = draw(hnp.arrays(np.int32, n, elements=st.integers(-4, 3)))
    zs = draw(hnp.arrays(np.int32, n, elements=st.integers(-4, 3)))
    lens = draw(hnp.arrays(np.int32, n, elements=st.integers(1, extent)))
    lens = np.minimum(lens, extent - xs).astype(np.int32)
    return np.stack([xs, ys, zs, lens], axis=1).reshape(-1, 4).astype(np.int32)


BOX_ORIGIN = (-20, -4, -4)
BOX_SHAPE = (8, 8, 40)  # (nz, ny, nx) covering runs_in_box


# ---- block_runs_by_label ------------------------------------------------------------------------------


@given(label_blocks, origins)
@settings(max_examples=150, deadline=None)
def test_block_runs_reconstruct_block(block, origin):
    labels, runs, offsets = block_runs_by_label(block, origin)
    assert runs.dtype == np.int32 and runs.shape[1] == 4 and offsets.dtype == np.int64
    assert labels.dtype == np.uint64
    np.testing.assert_array_equal(labels, np.setdiff1d(np.unique(block), [0]))
    assert offsets[0] == 0 and offsets[-1] == len(runs) and (np.diff(offsets) > 0).all()
    values = np.repeat(labels, np.diff(offsets))
    np.testing.assert_array_equal(paint(runs, origin, block.shape, values), block)
    nx = block.shape[2]
    assert ((runs[:, 0] >= origin[0]) & (runs[:, 0] + runs[:, 3] <= origin[0] + nx)).all()
    for lab_runs in by_label(labels, runs, offsets).values():
        assert zyx_sorted(lab_runs)
        np.testing.assert_array_equal(merge_runs(lab_runs), lab_runs)  # runs are maximal already


def test_block_runs_small_golden():
    block = np.array([[[0, 5, 5, 3], [3, 3, 0, 0]]], dtype=np.uint64)  # z=0: rows y=0, y=1
    labels, runs, offsets = block_runs_by_label(block, (10, 20, 30))
    assert labels.tolist() == [3, 5]
    assert offsets.tolist() == [0, 2, 3]
    assert runs.tolist() == [[13, 20, 30, 1], [10, 21, 30, 2], [11, 20, 30, 2]]


def test_block_runs_edge_cases():
    labels, runs, offsets = block_runs_by_label(np.zeros((2, 2, 2), np.uint64), (0, 0, 0))
    assert labels.size == 0 and runs.shape == (0, 4) and offsets.tolist() == [0]
    labels, runs, offsets = block_runs_by_label(np.zeros((0, 2, 2), np.uint64), (0, 0, 0))
    assert labels.size == 0 and runs.shape == (0, 4) and offsets.tolist() == [0]
    with pytest.raises(BadRequest, match="3-D integer array"):
        block_runs_by_label(np.zeros((2, 2), np.uint64), (0, 0, 0))
    with pytest.raises(BadRequest, match="32-bit coordinate range"):
        block_runs_by_label(np.ones((1, 1, 2), np.uint64), (2**31 - 1, 0, 0))
    # non-contiguous input views work
    block = np.arange(64, dtype=np.uint64).reshape(4, 4, 4)[:, ::2, ::-1]
    labels, runs, offsets = block_runs_by_label(block, (0, 0, 0))
    np.testing.assert_array_equal(
        paint(runs, (0, 0, 0), block.shape, np.repeat(labels, np.diff(offsets))), block
    )


# ---- real data ------------------------------------------------------------------------------------------


def test_sample_voxel_counts_and_reconstruction(sample):
    labels, runs, offsets = block_runs_by_label(sample, (0, 0, 0))
    ref_labels, ref_counts = np.unique(sample[sample != 0], return_counts=True)
    np.testing.assert_array_equal(labels, ref_labels)
    counts = np.add.reduceat(runs[:, 3].astype(np.int64), offsets[:-1])
    np.testing.assert_array_equal(counts, ref_counts)
    values = np.repeat(labels, np.diff(offsets))
    np.testing.assert_array_equal(paint(runs, (0, 0, 0), sample.shape, values), sample)


def test_sample_blockwise_runs_merge_to_whole_volume(sample):
    """Runs collected per 32^3 block (split at block x edges) merge into the whole-volume runs, and
    split_runs_by_block of the whole-volume runs gives back each block's runs."""
    origin = (-32, 32, 0)  # negative block coordinates too
    labels, runs, offsets = block_runs_by_label(sample, origin)
    whole = by_label(labels, runs, offsets)
    pieces: dict[int, dict[tuple[int, int, int], np.ndarray]] = {}
    for bz in range(2):
        for by in range(2):
            for bx in range(2):
                blk = sample[bz * 32 : bz * 32 + 32, by * 32 : by * 32 + 32, bx * 32 : bx * 32 + 32]
                blk_origin = (origin[0] + bx * 32, origin[1] + by * 32, origin[2] + bz * 32)
                key = (blk_origin[0] // 32, blk_origin[1] // 32, blk_origin[2] // 32)
                for lab, lab_runs in by_label(*block_runs_by_label(blk, blk_origin)).items():
                    pieces.setdefault(lab, {})[key] = lab_runs
    assert sorted(pieces) == sorted(whole)
    for lab, parts in pieces.items():
        stream = np.concatenate(list(parts.values()))  # block key order, as a labelvol range scan
        np.testing.assert_array_equal(merge_runs(stream), whole[lab])
        split = split_runs_by_block(whole[lab], 32)
        assert sorted(split) == sorted(parts)
        for key, blk_runs in split.items():
            np.testing.assert_array_equal(blk_runs, parts[key])
            np.testing.assert_array_equal(runs_from_bytes(runs_to_bytes(blk_runs)), blk_runs)


def test_sample_sparsevol_and_coarse(sample):
    labels, runs, offsets = block_runs_by_label(sample, (0, 0, 0))
    for i, lab in enumerate(labels[:6]):
        lab_runs = runs[offsets[i] : offsets[i + 1]]
        payload = encode_sparsevol(lab_runs)
        assert payload[:12] == bytes([0, 3, 0, 0]) + struct.pack("<II", 0, len(lab_runs))
        np.testing.assert_array_equal(decode_sparsevol(payload), lab_runs)
        blocks = coarse_blocks(lab_runs, 32)
        zyx = np.argwhere((sample == lab).reshape(2, 32, 2, 32, 2, 32).any(axis=(1, 3, 5)))
        np.testing.assert_array_equal(blocks, zyx[:, ::-1])
        coarse = decode_sparsevol(encode_sparsevol_coarse(blocks))
        np.testing.assert_array_equal(coarse_runs_to_blocks(coarse), blocks)
        # bounds: exact clip equals numpy masking of the label's voxels
        bounds = dict(minx=5, maxx=40, miny=10, maxy=63, minz=0, maxz=20)
        clipped = clip_runs(lab_runs, **bounds)
        ref = np.zeros_like(sample, dtype=bool)
        ref[0:21, 10:64, 5:41] = (sample == lab)[0:21, 10:64, 5:41]
        np.testing.assert_array_equal(paint(clipped, (0, 0, 0), sample.shape), ref)


# ---- stored values --------------------------------------------------------------------------------------


@given(runs_in_box())
@settings(deadline=None)
def test_runs_bytes_round_trip(runs):
    data = runs_to_bytes(runs)
    assert len(data) == 16 * len(runs)
    out = runs_from_bytes(data)
    assert out.dtype == np.int32 and out.flags.writeable
    np.testing.assert_array_equal(out, runs.reshape(-1, 4))


def test_runs_bytes_layout_and_errors():
    assert runs_to_bytes(np.array([[1, -2, 3, 4]])) == struct.pack("<4i", 1, -2, 3, 4)
    assert runs_to_bytes(np.zeros((0, 4), np.int32)) == b""
    assert runs_from_bytes(b"").shape == (0, 4)
    with pytest.raises(BadRequest, match="multiple of 16 bytes, got 17"):
        runs_from_bytes(b"\0" * 17)
    with pytest.raises(BadRequest, match=r"shape \(n, 4\)"):
        runs_to_bytes(np.zeros((2, 3), np.int32))
    with pytest.raises(BadRequest, match="32-bit"):
        runs_to_bytes(np.array([[2**31, 0, 0, 1]], dtype=np.int64))


# ---- sparsevol ------------------------------------------------------------------------------------------


def test_encode_sparsevol_golden():
    runs = np.array([[1, 2, 3, 4], [-5, 6, 7, 8]], dtype=np.int32)
    body = struct.pack("<8i", 1, 2, 3, 4, -5, 6, 7, 8)
    assert encode_sparsevol(runs) == b"\x00\x03\x00\x00" + struct.pack("<II", 0, 2) + body
    assert (
        encode_sparsevol(runs, fill_voxel_count=True)
        == b"\x00\x03\x00\x00" + struct.pack("<II", 12, 2) + body
    )
    assert encode_sparsevol(np.zeros((0, 4), np.int32)) == bytes([0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])


@given(runs_in_box(), st.booleans())
@settings(deadline=None)
def test_sparsevol_round_trip(runs, fill):
    np.testing.assert_array_equal(decode_sparsevol(encode_sparsevol(runs, fill_voxel_count=fill)), runs)


def test_decode_sparsevol_ignores_voxel_count_and_reserved():
    payload = bytes([0, 3, 0, 9]) + struct.pack("<II", 12345, 1) + struct.pack("<4i", 1, 2, 3, 4)
    assert decode_sparsevol(payload).tolist() == [[1, 2, 3, 4]]


def _payload(runs, header=bytes([0, 3, 0, 0]), count=None) -> bytes:
    n = len(runs) if count is None else count
    return header + struct.pack("<II", 0, n) + b"".join(struct.pack("<4i", *r) for r in runs)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "0 bytes, shorter than its 12-byte header"),
        (bytes([0, 3, 0, 0, 0, 0, 0]), "7 bytes, shorter than its 12-byte header"),
        (_payload([(1, 2, 3, 4)], header=bytes([1, 3, 0, 0])), "descriptor 1 is not supported"),
        (_payload([(1, 2, 3, 4)], header=bytes([0, 2, 0, 0])), "3 dimensions, header says 2"),
        (_payload([(1, 2, 3, 4)], header=bytes([0, 3, 1, 0])), r"run dimension 0\), header says 1"),
        (_payload([(1, 2, 3, 4)])[:-1], r"declares 1 runs \(16 bytes\) but carries 15 bytes"),
        (_payload([(1, 2, 3, 4)], count=2), r"declares 2 runs \(32 bytes\) but carries 16 bytes"),
        (_payload([(1, 2, 3, 4)], count=0), r"declares 0 runs \(0 bytes\) but carries 16 bytes"),
        (_payload([(1, 2, 3, 4), (5, 6, 7, 0)]), r"run 1 at \(5, 6, 7\) has length 0"),
        (_payload([(1, 2, 3, -3)]), r"run 0 at \(1, 2, 3\) has length -3"),
        (_payload([(2**31 - 2, 0, 0, 3)]), "passes the 32-bit coordinate range"),
    ],
)
def test_decode_sparsevol_rejects_corrupt(payload, message):
    with pytest.raises(BadRequest, match=message):
        decode_sparsevol(payload)


def test_decode_sparsevol_max_coordinate_ok():
    assert decode_sparsevol(_payload([(2**31 - 2, 0, 0, 2)])).tolist() == [[2**31 - 2, 0, 0, 2]]


# ---- merge / clip ---------------------------------------------------------------------------------------


@given(runs_in_box())
@settings(deadline=None)
def test_merge_runs_is_sorted_union(runs):
    merged = merge_runs(runs)
    assert merged.dtype == np.int32
    np.testing.assert_array_equal(paint(merged, BOX_ORIGIN, BOX_SHAPE), paint(runs, BOX_ORIGIN, BOX_SHAPE))
    assert zyx_sorted(merged) and (merged[:, 3] > 0).all()
    same_row = (merged[1:, 1] == merged[:-1, 1]) & (merged[1:, 2] == merged[:-1, 2])
    assert (merged[1:, 0][same_row] > (merged[:-1, 0] + merged[:-1, 3])[same_row]).all()  # gaps remain
    np.testing.assert_array_equal(merge_runs(merged), merged)
    shuffled = runs[np.random.default_rng(0).permutation(len(runs))]
    np.testing.assert_array_equal(merge_runs(shuffled), merged)


def test_merge_runs_golden():
    runs = np.array(
        [
            [32, 0, 0, 32],
            [0, 0, 0, 32],
            [70, 0, 0, 2],
            [5, 1, 0, 3],
            [64, 0, 0, 6],
            [1, 0, 1, 1],
            [66, 0, 0, 1],
        ]
    )
    assert merge_runs(runs).tolist() == [[0, 0, 0, 72], [5, 1, 0, 3], [1, 0, 1, 1]]
    assert merge_runs(np.array([[0, 0, 0, 0], [3, 0, 0, -1]])).shape == (0, 4)
    assert merge_runs(np.zeros((0, 4), np.int32)).shape == (0, 4)
    with pytest.raises(BadRequest, match="32-bit range"):
        merge_runs(np.array([[-(2**31), 0, 0, 2**31 - 1], [-1, 0, 0, 2**31 - 1]]))


bound = st.one_of(st.none(), st.integers(-25, 25))


@given(runs_in_box(), bound, bound, bound, bound, bound, bound)
@settings(deadline=None)
def test_clip_runs_matches_numpy_mask(runs, minx, maxx, miny, maxy, minz, maxz):
    clipped = clip_runs(runs, minx=minx, maxx=maxx, miny=miny, maxy=maxy, minz=minz, maxz=maxz)
    assert (clipped[:, 3] > 0).all()
    z, y, x = np.indices(BOX_SHAPE)
    x, y, z = x + BOX_ORIGIN[0], y + BOX_ORIGIN[1], z + BOX_ORIGIN[2]
    inside = np.ones(BOX_SHAPE, dtype=bool)
    for coord, lo, hi in ((x, minx, maxx), (y, miny, maxy), (z, minz, maxz)):
        if lo is not None:
            inside &= coord >= lo
        if hi is not None:
            inside &= coord <= hi
    expected = paint(runs, BOX_ORIGIN, BOX_SHAPE) & inside
    np.testing.assert_array_equal(paint(clipped, BOX_ORIGIN, BOX_SHAPE), expected)
    # without x bounds, clipping is a row filter that keeps the input order
    rows_only = clip_runs(runs, miny=miny, maxy=maxy, minz=minz, maxz=maxz)
    in_rows = np.ones(len(runs), dtype=bool)
    for col, lo, hi in ((runs[:, 1], miny, maxy), (runs[:, 2], minz, maxz)):
        in_rows &= (col >= (lo if lo is not None else -99)) & (col <= (hi if hi is not None else 99))
    np.testing.assert_array_equal(rows_only, runs[in_rows])


def test_clip_runs_golden_and_extreme_bounds():
    runs = np.array([[0, 0, 0, 10], [0, 1, 0, 10], [20, 0, 0, 5]], dtype=np.int32)
    assert clip_runs(runs, minx=5, maxx=21, maxy=0).tolist() == [[5, 0, 0, 5], [20, 0, 0, 2]]
    assert clip_runs(runs, minx=10, maxx=19).shape == (0, 4)
    np.testing.assert_array_equal(clip_runs(runs, minx=-(10**30), maxx=10**30, minz=-(2**40)), runs)
    np.testing.assert_array_equal(clip_runs(runs), runs)


# ---- split by block / rasterize ------------------------------------------------------------------------


block_sizes = st.one_of(st.integers(1, 9), st.tuples(st.integers(1, 9), st.integers(1, 5), st.integers(1, 5)))


@given(runs_in_box(), block_sizes)
@settings(deadline=None)
def test_split_runs_by_block_and_masks_reproduce_mask(runs, block_size):
    sx, sy, sz = (block_size,) * 3 if isinstance(block_size, int) else block_size
    split = split_runs_by_block(runs, block_size)
    keys = list(split)
    assert keys == sorted(keys, key=lambda k: (k[2], k[1], k[0]))
    margin = 9  # >= any block size: every touched block fits in the canvas
    canvas_origin = tuple(o - margin for o in BOX_ORIGIN)
    total = np.zeros(tuple(s + 2 * margin for s in BOX_SHAPE), dtype=bool)
    for (bx, by, bz), blk_runs in split.items():
        assert blk_runs.dtype == np.int32 and zyx_sorted(blk_runs)
        x, y, z, n = blk_runs.T.astype(np.int64)
        assert (x // sx == bx).all() and ((x + n - 1) // sx == bx).all()
        assert (y // sy == by).all() and (z // sz == bz).all()
        origin = (bx * sx, by * sy, bz * sz)
        mask = runs_mask_in_block(blk_runs, origin, (sz, sy, sx))
        assert mask.shape == (sz, sy, sx)
        np.testing.assert_array_equal(mask, paint(blk_runs, origin, (sz, sy, sx)))
        # rasterizing the unsplit runs in this block gives the same mask
        np.testing.assert_array_equal(runs_mask_in_block(runs, origin, (sz, sy, sx)), mask)
        lo = [o - c for o, c in zip(origin[::-1], canvas_origin[::-1], strict=True)]
        total[lo[0] : lo[0] + sz, lo[1] : lo[1] + sy, lo[2] : lo[2] + sx] |= mask
    np.testing.assert_array_equal(total, paint(runs, canvas_origin, total.shape))
    got = np.concatenate(list(split.values())) if split else np.zeros((0, 4), np.int32)
    assert got[:, 3].sum() == runs[:, 3].sum()  # cutting keeps every voxel, duplicates included


def test_split_runs_by_block_golden():
    runs = np.array([[-3, 0, 0, 40], [5, 33, -1, 2]], dtype=np.int32)
    split = split_runs_by_block(runs, 32)
    assert list(split) == [(0, 1, -1), (-1, 0, 0), (0, 0, 0), (1, 0, 0)]
    assert split[(0, 1, -1)].tolist() == [[5, 33, -1, 2]]
    assert split[(-1, 0, 0)].tolist() == [[-3, 0, 0, 3]]
    assert split[(0, 0, 0)].tolist() == [[0, 0, 0, 32]]
    assert split[(1, 0, 0)].tolist() == [[32, 0, 0, 5]]
    assert split_runs_by_block(np.zeros((0, 4), np.int32), 32) == {}
    with pytest.raises(BadRequest, match="block size"):
        split_runs_by_block(runs, (32, 32))
    with pytest.raises(BadRequest, match="block size"):
        split_runs_by_block(runs, 0)


def test_runs_mask_in_block_overlaps_and_outside():
    runs = np.array([[-5, 1, 1, 8], [1, 1, 1, 2], [3, 9, 1, 4], [2, 0, 0, 100]], dtype=np.int32)
    mask = runs_mask_in_block(runs, (0, 0, 0), 4)
    expected = np.zeros((4, 4, 4), dtype=bool)
    expected[1, 1, 0:3] = True
    expected[0, 0, 2:4] = True
    np.testing.assert_array_equal(mask, expected)
    far = runs_mask_in_block(runs, (100, 0, 0), (2, 3, 4))  # only the 100-voxel run reaches x = 100, 101
    assert np.argwhere(far).tolist() == [[0, 0, 0], [0, 0, 1]]
    assert not runs_mask_in_block(runs, (102, 0, 0), (2, 3, 4)).any()


# ---- sparsevol-coarse ----------------------------------------------------------------------------------


@given(runs_in_box(), block_sizes)
@settings(deadline=None)
def test_coarse_blocks_matches_reference(runs, block_size):
    sx, sy, sz = (block_size,) * 3 if isinstance(block_size, int) else block_size
    blocks = coarse_blocks(runs, block_size)
    voxels = np.argwhere(paint(runs, BOX_ORIGIN, BOX_SHAPE)) + BOX_ORIGIN[::-1]  # (z, y, x)
    ref = np.unique(voxels // (sz, sy, sx), axis=0)[:, ::-1]  # unique sorts by z, y, x
    np.testing.assert_array_equal(blocks, ref.reshape(-1, 3))
    decoded = decode_sparsevol(encode_sparsevol_coarse(blocks))
    np.testing.assert_array_equal(coarse_runs_to_blocks(decoded), blocks)
    np.testing.assert_array_equal(decoded, merge_runs(decoded))  # spans are maximal


def test_encode_sparsevol_coarse_golden():
    blocks = np.array([[2, 0, 0], [0, 0, 0], [1, 0, 0], [1, 0, 0], [5, -1, 0], [0, 0, 1]])
    spans = [(5, -1, 0, 1), (0, 0, 0, 3), (0, 0, 1, 1)]
    expected = (
        bytes([0, 3, 0, 0]) + struct.pack("<II", 0, 3) + b"".join(struct.pack("<4i", *s) for s in spans)
    )
    assert encode_sparsevol_coarse(blocks) == expected
    assert encode_sparsevol_coarse(np.zeros((0, 3), np.int32)) == bytes([0, 3, 0, 0]) + bytes(8)
    with pytest.raises(BadRequest, match=r"shape \(n, 3\)"):
        encode_sparsevol_coarse(np.zeros((2, 4), np.int32))
