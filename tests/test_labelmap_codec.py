"""DVID's compressed label Block codec (dvid.datatype.labelmap.codec) against DVID's own test data,
hand-built Blocks, the spec's plain numpy reference and random volumes."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.labelmap_codec import reference_decode, reference_encode
from dvid.datatype.labelmap.codec import (
    BlockFormatError,
    block_shape,
    decode_block,
    decode_region,
    encode_block,
    google_block,
    label_counts,
    label_table,
    labels_at,
    relabel_block,
    solid_block,
    with_table,
)
from dvid.errors import BadRequest
from tests.shared_data import DATA

SAMPLES = (
    "fib19-64x64x64-sample1",
    "fib19-64x64x64-sample2",
    "cx-64x64x64-sample1",
    "cx-64x64x64-sample2",
)
U64_MAX = 2**64 - 1


def load_sample(name: str) -> np.ndarray:
    """A gzipped raw 64^3 uint64 LE ZYX test volume from tests/data."""
    path = DATA / f"{name}.dat.gz"
    assert path.is_file(), f"test data missing: {path}"
    return np.frombuffer(gzip.decompress(path.read_bytes()), dtype="<u8").reshape(64, 64, 64)


@pytest.fixture(scope="module")
def samples() -> dict[str, np.ndarray]:
    return {name: load_sample(name) for name in SAMPLES}


@pytest.fixture(scope="module")
def dvid_block() -> bytes:
    """DVID's own encoding of fib19 sample 1 (the payload of labelmap_test.go's TestPostBlock)."""
    return gzip.decompress((DATA / "fib19-64x64x64-sample1-block.dat.gz").read_bytes())


@pytest.fixture(scope="module")
def stream_block() -> bytes:
    """The Block inside stream_1block.dat: ``i32 bx, by, bz; u32 n; n bytes of gzip(Block)``."""
    raw = (DATA / "stream_1block.dat").read_bytes()
    bx, by, bz, n = struct.unpack_from("<iiiI", raw)
    assert (bx, by, bz) == (0, 0, 0) and len(raw) == 16 + n
    return gzip.decompress(raw[16:])


# ---- an independent way to write Blocks by hand ----------------------------------------------
def build_block(
    grid: tuple[int, int, int], table: list[int], palettes: list[list[int]], indices: list[np.ndarray | None]
) -> bytes:
    """A Block from its parts: ``grid`` = (gx, gy, gz); per sub-block its palette (indices into
    ``table``) and its 512 palette indices (None for Ns <= 1), packed MSB-first at ceil(log2 Ns) bits."""
    gx, gy, gz = grid
    parts = [struct.pack("<4I", gx, gy, gz, len(table)), np.array(table, "<u8").tobytes()]
    if len(table) > 1:
        parts.append(np.array([len(p) for p in palettes], "<u2").tobytes())
        parts.append(np.array([i for p in palettes for i in p], "<u4").tobytes())
        for palette, index in zip(palettes, indices, strict=True):
            if len(palette) >= 2:
                assert index is not None
                bits = (len(palette) - 1).bit_length()
                shifts = np.arange(bits - 1, -1, -1)
                bitarr = ((np.asarray(index, np.int64).reshape(512, 1) >> shifts) & 1).astype(np.uint8)
                parts.append(np.packbits(bitarr.reshape(-1)).tobytes())
    return b"".join(parts)


def expand(grid: tuple[int, int, int], subblocks: list[np.ndarray]) -> np.ndarray:
    """(nz, ny, nx) volume from per-sub-block (8, 8, 8) arrays in z, y, x sub-block order."""
    gx, gy, gz = grid
    arr = np.stack(subblocks).reshape(gz, gy, gx, 8, 8, 8)
    return np.ascontiguousarray(arr.transpose(0, 3, 1, 4, 2, 5)).reshape(gz * 8, gy * 8, gx * 8)


def sections(buf: bytes) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """N, label table, Ns and palette of a (non-solid) Block, read with plain numpy."""
    gx, gy, gz, n = struct.unpack_from("<4I", buf)
    nsb = gx * gy * gz
    table = np.frombuffer(buf, "<u8", n, 16)
    ns = np.frombuffer(buf, "<u2", nsb, 16 + 8 * n)
    palette = np.frombuffer(buf, "<u4", int(ns.sum()), 16 + 8 * n + 2 * nsb)
    return n, table, ns, palette


def subblock_label_pairs(buf: bytes) -> np.ndarray:
    """Sorted (sub-block, label) pairs of a Block's palettes: what each sub-block holds, order-free."""
    _, table, ns, palette = sections(buf)
    pairs = np.stack([np.repeat(np.arange(ns.size), ns), table[palette].astype(np.int64)], axis=1)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def assert_counts(buf: bytes, vol: np.ndarray) -> None:
    labels, counts = label_counts(buf)
    want_labels, want_counts = np.unique(vol, return_counts=True)
    assert labels.dtype == np.uint64 and counts.dtype == np.int64
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_array_equal(counts, want_counts)


# ---- DVID's real data ----------------------------------------------------------------------------
def test_dvids_block_decodes_bit_exactly_to_sample1(
    dvid_block: bytes, samples: dict[str, np.ndarray]
) -> None:
    assert len(dvid_block) == 22_512
    n, _, ns, _ = sections(dvid_block)
    assert struct.unpack_from("<3I", dvid_block) == (8, 8, 8)
    assert (n, int(ns.sum()), int(ns.min()), int(ns.max())) == (18, 820, 1, 6)
    vol = decode_block(dvid_block)
    assert vol.dtype == np.uint64 and vol.shape == (64, 64, 64) and vol.flags.c_contiguous
    np.testing.assert_array_equal(vol, samples["fib19-64x64x64-sample1"])
    assert block_shape(dvid_block) == (64, 64, 64)
    assert_counts(dvid_block, vol)
    for view in (memoryview(dvid_block), bytearray(dvid_block), memoryview(b"xx" + dvid_block)[2:]):
        np.testing.assert_array_equal(decode_block(view), vol)
        np.testing.assert_array_equal(label_table(view), label_table(dvid_block))


def test_encoding_sample1_matches_dvids_block_in_size_and_structure(
    dvid_block: bytes, samples: dict[str, np.ndarray]
) -> None:
    sample = samples["fib19-64x64x64-sample1"]
    ours = encode_block(sample)
    assert len(ours) == len(dvid_block) == 22_512
    assert ours[:16] == dvid_block[:16]  # gx, gy, gz, N
    _, table, ns, palette = sections(ours)
    _, dvid_table, dvid_ns, dvid_palette = sections(dvid_block)
    np.testing.assert_array_equal(np.sort(table), np.sort(dvid_table))
    np.testing.assert_array_equal(ns, dvid_ns)  # Ns is the count of distinct labels per sub-block
    assert palette.size == dvid_palette.size == 820
    np.testing.assert_array_equal(subblock_label_pairs(ours), subblock_label_pairs(dvid_block))
    np.testing.assert_array_equal(decode_block(ours), sample)


@pytest.mark.parametrize("name", SAMPLES)
def test_real_volumes_round_trip_and_match_the_reference(name: str, samples: dict[str, np.ndarray]) -> None:
    vol = samples[name]
    block = encode_block(vol)
    assert block == reference_encode(vol)  # the spec's plain numpy encoder makes the same choices
    np.testing.assert_array_equal(decode_block(block), vol)
    np.testing.assert_array_equal(reference_decode(block), vol)
    assert_counts(block, vol)
    assert encode_block(vol.copy()) == block  # deterministic


def test_stream_block_of_random_labels(stream_block: bytes) -> None:
    assert len(stream_block) == 152_672
    vol = decode_block(stream_block)
    np.testing.assert_array_equal(vol, reference_decode(stream_block))
    assert int(vol.min()) == 0 and int(vol.max()) == 9
    per_subblock = vol.reshape(8, 8, 8, 8, 8, 8).transpose(0, 2, 4, 1, 3, 5).reshape(512, 512)
    assert all(np.unique(sb).size == 10 for sb in per_subblock)  # 4 bits per voxel everywhere
    ours = encode_block(vol)
    assert len(ours) == 152_672 == 16 + 80 + 1024 + 4 * 5120 + 4 * 512 * 64
    np.testing.assert_array_equal(decode_block(ours), vol)
    assert_counts(stream_block, vol)
    assert_counts(ours, vol)


def test_input_byte_order_and_layout_do_not_matter(samples: dict[str, np.ndarray]) -> None:
    vol = samples["cx-64x64x64-sample1"]
    block = encode_block(vol)
    assert encode_block(vol.astype(">u8")) == block
    fortran = np.asfortranarray(vol)
    assert encode_block(fortran) == block
    twice = np.zeros((64, 64, 128), np.uint64)
    twice[:, :, ::2] = vol
    assert encode_block(twice[:, :, ::2]) == block
    assert encode_block(vol.astype(np.uint32)) == block  # any unsigned integer labels


# ---- hand-built Blocks: duplicates, zeros, Ns = 0 ------------------------------------------------
def test_duplicate_and_zero_table_entries_decode() -> None:
    pattern = np.arange(512) % 3
    block = build_block((1, 1, 1), [5, 0, 5], [[0, 1, 2]], [pattern])
    want = np.array([5, 0, 5], np.uint64)[pattern].reshape(8, 8, 8)
    np.testing.assert_array_equal(decode_block(block), want)
    np.testing.assert_array_equal(reference_decode(block), want)
    np.testing.assert_array_equal(label_table(block), [5, 0, 5])
    labels, counts = label_counts(block)  # entries 0 and 2 are both label 5: merged
    np.testing.assert_array_equal(labels, [0, 5])
    np.testing.assert_array_equal(counts, [int((pattern == 1).sum()), int((pattern != 1).sum())])


def test_palettes_in_any_order_and_shared_entries() -> None:
    """Two sub-blocks pointing at the same table entries in different orders (as after a merge)."""
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 3, 512), rng.integers(0, 2, 512)
    table = [7, U64_MAX, 7]
    block = build_block((2, 1, 1), table, [[2, 1, 0], [1, 0]], [a, b])
    t = np.array(table, np.uint64)
    want = expand((2, 1, 1), [t[[2, 1, 0]][a].reshape(8, 8, 8), t[[1, 0]][b].reshape(8, 8, 8)])
    vol = decode_block(block)
    np.testing.assert_array_equal(vol, want)
    assert_counts(block, vol)


def test_subblocks_without_data_are_label_0() -> None:
    index = np.arange(512) % 2
    block = build_block((2, 1, 2), [3, 4], [[], [0, 1], [1], []], [None, index, None, None])
    vol = decode_block(block)
    zeros = np.zeros((8, 8, 8), np.uint64)
    want = expand((2, 1, 2), [zeros, np.array([3, 4], np.uint64)[index].reshape(8, 8, 8), zeros + 4, zeros])
    np.testing.assert_array_equal(vol, want)
    np.testing.assert_array_equal(reference_decode(block), want)
    assert_counts(block, vol)
    labels, counts = label_counts(block)
    assert labels[0] == 0 and counts[0] == 2 * 512


def test_nine_bit_subblocks() -> None:
    """257..512 labels in a sub-block: 9 bits per voxel, rows straddling 9 bytes."""
    rng = np.random.default_rng(5)
    vol = rng.integers(1, 2**64 - 1, (16, 8, 16), dtype=np.uint64)  # every voxel its own label
    vol[:8, :, 8:] = rng.integers(0, 300, (8, 8, 8))  # ~250 labels: 8 bits
    vol[8:, :, :8] = 42
    block = encode_block(vol)
    assert block == reference_encode(vol)
    np.testing.assert_array_equal(decode_block(block), vol)
    np.testing.assert_array_equal(reference_decode(block), vol)
    assert_counts(block, vol)


# ---- solid blocks, tables, relabelling ---------------------------------------------------------------
@pytest.mark.parametrize("label", [0, 1, 12345678901, U64_MAX])
def test_solid_blocks(label: int) -> None:
    vol = np.full((32, 16, 64), label, np.uint64)
    block = encode_block(vol)
    assert len(block) == 24 and block == solid_block(label, (32, 16, 64))
    assert block == struct.pack("<4IQ", 8, 2, 4, 1, label)
    np.testing.assert_array_equal(decode_block(block), vol)
    assert block_shape(block) == (32, 16, 64)
    assert_counts(block, vol)
    np.testing.assert_array_equal(decode_block(block, table=np.array([9], np.uint64)), np.full_like(vol, 9))
    np.testing.assert_array_equal(decode_block(block + b"\x01\x02"), vol)  # DVID reads only the label


def test_table_replacement_maps_the_volume(samples: dict[str, np.ndarray]) -> None:
    vol = samples["fib19-64x64x64-sample2"]
    block = encode_block(vol)
    table = label_table(block)
    bodies = (table % np.uint64(3)) + np.uint64(100)  # several supervoxels per body
    want = bodies[np.searchsorted(table, vol)]
    np.testing.assert_array_equal(decode_block(block, table=bodies), want)
    mapped = with_table(block, bodies)
    assert len(mapped) == len(block) and mapped[16 + 8 * table.size :] == block[16 + 8 * table.size :]
    np.testing.assert_array_equal(label_table(mapped), bodies)
    np.testing.assert_array_equal(decode_block(mapped), want)
    assert_counts(mapped, want)  # duplicates from the mapping merged
    labels, counts = label_counts(block, table=bodies)
    np.testing.assert_array_equal(labels, [100, 101, 102])
    assert counts.sum() == vol.size
    np.testing.assert_array_equal(decode_block(block, table=list(bodies)), want)  # any int sequence


@pytest.mark.parametrize("name", ["fib19-64x64x64-sample1", "cx-64x64x64-sample2"])  # dense, sparse
def test_decode_into_a_view_of_a_larger_volume(name: str, samples: dict[str, np.ndarray]) -> None:
    vol = samples[name]
    block = encode_block(vol)
    big = np.full((80, 96, 200), 7, np.uint64)
    view = big[8:72, 16:80, 100:164]
    assert decode_block(block, out=view) is view
    np.testing.assert_array_equal(view, vol)
    big[8:72, 16:80, 100:164] = 7
    assert (big == 7).all()  # nothing written outside the view
    contiguous = np.zeros((64, 64, 64), np.uint64)
    assert decode_block(block, table=label_table(block) + np.uint64(1), out=contiguous) is contiguous
    np.testing.assert_array_equal(contiguous, vol + np.uint64(1))
    solid = np.zeros((64, 64, 64), np.uint64)[:, ::-1]
    decode_block(solid_block(5, (64, 64, 64)), out=solid)
    assert (solid == 5).all()


@pytest.mark.parametrize(
    ("out", "message"),
    [
        (np.zeros((64, 64, 32), np.uint64), r"\(64, 64, 64\) native uint64 .* got \(64, 64, 32\) uint64"),
        (np.zeros((64, 64, 64), np.int64), "got .* int64"),
        (np.zeros((64, 64, 64), ">u8"), ">u8"),
        ([0] * 8, "got list"),
    ],
)
def test_decode_refuses_a_bad_out(out: np.ndarray, message: str, dvid_block: bytes) -> None:
    with pytest.raises(ValueError, match=message):
        decode_block(dvid_block, out=out)


def test_decode_refuses_a_read_only_out(dvid_block: bytes) -> None:
    frozen = np.zeros((64, 64, 64), np.uint64)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        decode_block(dvid_block, out=frozen)


def test_relabel_block(samples: dict[str, np.ndarray]) -> None:
    vol = samples["cx-64x64x64-sample2"]
    block = encode_block(vol)
    table = label_table(block)
    src, dst = table[:3], np.array([1, 2, 1], np.uint64)
    relabelled = relabel_block(block, np.array([*src, 999], np.uint64), np.array([*dst, 5], np.uint64))
    want = vol.copy()
    for s, d in zip(src, dst, strict=True):
        want[vol == s] = d
    np.testing.assert_array_equal(decode_block(relabelled), want)
    assert relabel_block(block, np.zeros(0, np.uint64), np.zeros(0, np.uint64)) == block
    with pytest.raises(ValueError, match="repeats"):
        relabel_block(block, np.array([1, 1]), np.array([2, 3]))
    with pytest.raises(ValueError, match="mapping_from has 1 labels, mapping_to 2"):
        relabel_block(block, np.array([1]), np.array([2, 3]))


@pytest.mark.parametrize("shape", [(32, 32, 32), (16, 32, 64), (64, 8, 16), (8, 8, 8), (24, 40, 8)])
def test_other_block_sizes(shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    vol = rng.integers(0, 6, shape).astype(np.uint64) * np.uint64(2**40)
    vol[: shape[0] // 2] = 7  # half of it one label
    block = encode_block(vol)
    assert block == reference_encode(vol)
    assert block_shape(block) == shape
    np.testing.assert_array_equal(decode_block(block), vol)
    assert_counts(block, vol)


# ---- errors ----------------------------------------------------------------------------------------
def all_readers(buf: bytes) -> None:
    """Every function that reads a whole Block."""
    decode_block(buf)
    label_counts(buf)
    with_table(buf, label_table(buf))


def section_ends(buf: bytes) -> list[int]:
    n, _, ns, _ = sections(buf)
    table_end = 16 + 8 * n
    ns_end = table_end + 2 * ns.size
    palette_end = ns_end + 4 * int(ns.sum())
    return [16, table_end, ns_end, palette_end, len(buf)]


def test_truncation_at_every_section_boundary(dvid_block: bytes) -> None:
    ends = section_ends(dvid_block)
    cuts = sorted({c for end in ends for c in (end - 1, end, end + 1) if 0 <= c < len(dvid_block)} | {0})
    for cut in cuts:
        truncated = dvid_block[:cut]
        with pytest.raises(BlockFormatError, match=r"shorter than its 16-byte header|truncated"):
            decode_block(truncated)
        with pytest.raises(BlockFormatError):
            label_counts(truncated)
        with pytest.raises(BlockFormatError):
            with_table(truncated, np.zeros(18, np.uint64))
        if cut < 16 + 8 * 18:
            with pytest.raises(BlockFormatError):
                label_table(truncated)
        if cut < 16:
            with pytest.raises(BlockFormatError):
                block_shape(truncated)
    with pytest.raises(BlockFormatError, match="packed voxel indices: needs 22512 bytes, got 22511"):
        decode_block(dvid_block[:-1])
    with pytest.raises(BlockFormatError, match="label table: 1 labels need 24 bytes, got 20"):
        decode_block(solid_block(3, (64, 64, 64))[:20])


def test_trailing_bytes_are_ignored_as_dvid_does(dvid_block: bytes) -> None:
    padded = dvid_block + b"\xff" * 13
    np.testing.assert_array_equal(decode_block(padded), decode_block(dvid_block))
    assert with_table(padded, label_table(padded)) == dvid_block  # the clean Block
    assert_counts(padded, decode_block(dvid_block))


def header(gx: int, gy: int, gz: int, n: int) -> bytes:
    return struct.pack("<4I", gx, gy, gz, n)


@pytest.mark.parametrize(
    ("buf", "message"),
    [
        (header(8, 8, 8, 0), "declares 0 labels"),
        (header(0, 8, 8, 1) + bytes(8), r"0x8x8 \(x, y, z\) sub-blocks; each must be 1..128"),
        (header(8, 129, 8, 1) + bytes(8), "8x129x8"),
        (header(1, 1, 1, 2) + bytes(16) + struct.pack("<H", 513), "sub-block 0 declares 513 labels"),
        (
            build_block((2, 1, 1), [1, 2], [[0], [1, 2]], [None, np.arange(512) % 2]),
            "sub-block 1 palette entry 2 indexes past the 2-entry label table",
        ),
        (
            build_block((1, 1, 1), [1, 2, 3], [[0, 1, 2]], [np.r_[np.zeros(511, int), 3]]),
            "packed voxel index beyond its sub-block's palette size",
        ),
        (b"", "shorter than its 16-byte header"),
        ("not bytes", "bytes-like"),
    ],
)
def test_malformed_blocks(buf: bytes, message: str) -> None:
    structural = "packed voxel index" not in message  # with_table checks structure, not packed indices
    for read in (decode_block, label_counts, lambda b: with_table(b, label_table(b))):
        if read in (decode_block, label_counts) or structural:
            with pytest.raises(BlockFormatError, match=message):
                read(buf)  # type: ignore[operator]


@pytest.mark.parametrize("solid_neighbours", [0, 7])
def test_bad_index_in_a_nine_bit_subblock(solid_neighbours: int) -> None:
    index = np.arange(512) % 300
    index[100] = 300
    table = list(range(300))
    palettes, indices = [table] + [[0]] * solid_neighbours, [index] + [None] * solid_neighbours
    grid = (2, 2, 2) if solid_neighbours else (1, 1, 1)
    block = build_block(grid, table, palettes, indices)
    for read in (decode_block, label_counts):
        with pytest.raises(BlockFormatError, match="beyond its sub-block's palette size"):
            read(block)
    index[100] = 299
    good = build_block(grid, table, palettes, [index] + [None] * solid_neighbours)
    vol = decode_block(good)
    np.testing.assert_array_equal(vol, reference_decode(good))
    assert_counts(good, vol)


def test_block_format_error_is_a_400_and_a_value_error() -> None:
    assert issubclass(BlockFormatError, ValueError) and issubclass(BlockFormatError, BadRequest)
    assert BlockFormatError("x").status == 400


def test_wrong_replacement_tables(dvid_block: bytes) -> None:
    for table in (np.zeros(17, np.uint64), np.zeros(19, np.uint64), np.zeros((18, 1), np.uint64)):
        with pytest.raises(
            BlockFormatError, match=r"replacement label table has shape .*the block's table has 18"
        ):
            decode_block(dvid_block, table=table)
        with pytest.raises(BlockFormatError, match="has 18"):
            with_table(dvid_block, table)
        with pytest.raises(BlockFormatError, match="has 18"):
            label_counts(dvid_block, table=table)
    with pytest.raises(BlockFormatError, match="unsigned integer labels"):
        decode_block(dvid_block, table=np.full(18, -1))
    with pytest.raises(BlockFormatError, match="unsigned integer labels"):
        decode_block(dvid_block, table=np.zeros(18, np.float64))
    with pytest.raises(BlockFormatError, match="has 1"):
        decode_block(solid_block(1, (8, 8, 8)), table=np.zeros(2, np.uint64))


@pytest.mark.parametrize(
    "vol",
    [
        np.zeros((64, 64), np.uint64),
        np.zeros((64, 64, 60), np.uint64),
        np.zeros((0, 8, 8), np.uint64),
        np.zeros((8, 8, 1032), np.uint64),
        np.zeros((8, 8, 8), np.int64),
        np.zeros((8, 8, 8), np.float32),
    ],
)
def test_encode_refuses_bad_volumes(vol: np.ndarray) -> None:
    with pytest.raises(BadRequest):
        encode_block(vol)


def test_solid_block_refuses_bad_arguments() -> None:
    with pytest.raises(BadRequest, match="not a uint64"):
        solid_block(-1, (64, 64, 64))
    with pytest.raises(BadRequest, match="not a uint64"):
        solid_block(2**64, (64, 64, 64))
    with pytest.raises(BadRequest, match="3-D"):
        solid_block(1, (64, 64, 63))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_blocks_fail_only_as_block_format_errors(data: st.DataObject) -> None:
    """Any damage to a Block gives a volume of its declared shape or a BlockFormatError: never an
    IndexError, struct.error or numpy error."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    vol = rng.integers(0, data.draw(st.sampled_from([2, 5, 40, 300])), (16, 8, 8)).astype(np.uint64)
    buf = bytearray(encode_block(vol))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    buf = buf[: data.draw(st.integers(0, len(buf) + 8))] + bytes(data.draw(st.integers(0, 8)))
    for read in (decode_block, label_counts, lambda b: with_table(b, label_table(b)), block_shape):
        try:
            out = read(bytes(buf))
        except BlockFormatError:
            continue
        if read is decode_block:
            assert isinstance(out, np.ndarray) and out.shape == block_shape(bytes(buf))


# ---- random volumes ----------------------------------------------------------------------------
KINDS = ("few", "many", "solid", "mixed", "sparse", "runs")


def random_volume(kind: str, shape: tuple[int, int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pool = rng.integers(0, 2**64 - 1, 700, dtype=np.uint64, endpoint=True)
    pool[:2] = (0, U64_MAX)
    if kind == "few":
        return pool[rng.integers(0, 4, shape)]
    if kind == "many":  # up to 512 labels per sub-block (9 bits)
        return pool[rng.integers(0, 700, shape)]
    if kind == "solid":
        return np.full(shape, pool[rng.integers(0, 700)], np.uint64)
    if kind == "mixed":  # sub-blocks each solid, few-label or noisy
        nz, ny, nx = shape
        vol = pool[rng.integers(0, 3, shape)]
        grid = rng.integers(0, 3, (nz // 8, ny // 8, nx // 8))
        cells = np.kron(grid, np.ones((8, 8, 8), np.int64))
        vol[cells == 1] = pool[5]
        noisy = cells == 2
        vol[noisy] = pool[rng.integers(0, 700, int(noisy.sum()))]
        return vol
    if kind == "sparse":  # mostly one-label sub-blocks (some with no label 0), a few noisy ones
        nz, ny, nx = shape
        cells = np.kron(rng.random((nz // 8, ny // 8, nx // 8)), np.ones((8, 8, 8)))
        vol = np.full(shape, pool[1], np.uint64)
        vol[cells < 0.5] = pool[0]
        noisy = cells > 0.85
        vol[noisy] = pool[rng.integers(0, 700, int(noisy.sum()))]
        return vol
    # runs: labels constant along x for random lengths, as in segmentations
    flat = np.repeat(pool[rng.integers(0, 12, shape[0] * shape[1] * shape[2])], rng.integers(1, 20, 1))
    return flat[: shape[0] * shape[1] * shape[2]].reshape(shape)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(KINDS),
    shape=st.tuples(*(st.sampled_from([8, 16, 32]) for _ in range(3))),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_volumes_round_trip(kind: str, shape: tuple[int, int, int], seed: int) -> None:
    vol = random_volume(kind, shape, seed)
    block = encode_block(vol)
    assert block == reference_encode(vol)
    assert block_shape(block) == shape
    np.testing.assert_array_equal(decode_block(block), vol)
    np.testing.assert_array_equal(reference_decode(block), vol)
    assert_counts(block, vol)
    if kind == "solid":
        assert len(block) == 24
    table = label_table(block)
    bodies = table[::-1].copy()
    np.testing.assert_array_equal(decode_block(block, table=bodies), bodies[np.searchsorted(table, vol)])


# ---- the encoder's alternative paths -----------------------------------------------------------------
def test_many_labels_take_the_sorting_paths() -> None:
    """More labels than the presence matrix and the label hash take: sorts instead."""
    rng = np.random.default_rng(11)
    vol = rng.integers(0, 20_000, (64, 64, 64)).astype(np.uint64)
    vol[:32] = 3  # and some structure
    block = encode_block(vol)
    assert block == reference_encode(vol)
    np.testing.assert_array_equal(decode_block(block), vol)
    assert_counts(block, vol)


def test_a_label_missed_by_the_sample_is_found() -> None:
    """Noisy blocks guess their labels from a sample of runs; a label seen once must not be lost."""
    rng = np.random.default_rng(12)
    vol = rng.integers(0, 10, (64, 64, 64)).astype(np.uint64)
    vol[17, 33, 5] = 999
    block = encode_block(vol)
    assert 999 in label_table(block)
    assert block == reference_encode(vol)
    np.testing.assert_array_equal(decode_block(block), vol)


def test_label_hash_collisions_fall_back_to_search(monkeypatch: pytest.MonkeyPatch) -> None:
    from dvid.datatype.labelmap import codec

    monkeypatch.setattr(codec, "_HASH_MULTIPLIERS", (np.uint64(1),))  # small labels all hash to slot 0
    rng = np.random.default_rng(13)
    vol = rng.integers(0, 10, (32, 32, 32)).astype(np.uint64)
    block = encode_block(vol)
    assert block == reference_encode(vol)
    np.testing.assert_array_equal(decode_block(block), vol)


# ---- reads without decoding: labels at points, neuroglancer's compressed_segmentation ------------------
def google_decode(buf: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """A compressed_segmentation volume (8x8x8 blocks, one channel) as (z, y, x) uint64, by the
    reference library (neuroglancer's own encoder's Python port)."""
    import compressed_segmentation

    nz, ny, nx = shape
    xyz = compressed_segmentation.decompress(buf, (nx, ny, nz), np.uint64, (8, 8, 8), order="F")
    return np.ascontiguousarray(np.asarray(xyz).reshape(nx, ny, nz, order="F").T)


def all_positions(shape: tuple[int, int, int]) -> np.ndarray:
    return np.stack(np.unravel_index(np.arange(int(np.prod(shape))), shape), axis=1)


def assert_reads_without_decoding(block: bytes) -> None:
    """labels_at and google_block agree with decode_block, with the stored table and a mapped one."""
    vol = decode_block(block)
    shape = vol.shape
    table = label_table(block)
    renamed = (table * np.uint64(3)) // np.uint64(2) + np.uint64(1)  # one to one
    merged = table // np.uint64(3)  # labels 3k..3k+2 become one body: palettes shrink
    one_body = np.full(table.size, 7, np.uint64)
    for t in (None, renamed, merged, one_body):
        want = decode_block(block, t)
        everywhere = all_positions(shape)
        np.testing.assert_array_equal(labels_at(block, everywhere, t), want.reshape(-1))
        np.testing.assert_array_equal(google_decode(google_block(block, t), shape), want)


@pytest.mark.parametrize("name", SAMPLES)
def test_real_blocks_read_without_decoding(name: str, samples: dict[str, np.ndarray]) -> None:
    assert_reads_without_decoding(encode_block(samples[name]))


def test_dvids_and_hand_built_blocks_read_without_decoding(dvid_block: bytes, stream_block: bytes) -> None:
    rng = np.random.default_rng(11)
    index9 = rng.integers(0, 300, 512)
    for block in (
        dvid_block,
        stream_block,
        build_block((2, 1, 2), [3, 4], [[], [0, 1], [1], []], [None, np.arange(512) % 2, None, None]),
        build_block((2, 1, 1), [7, U64_MAX, 7], [[2, 1, 0], [1, 0]],
                    [rng.integers(0, 3, 512), rng.integers(0, 2, 512)]),
        build_block((1, 1, 1), list(range(300)), [list(range(300))], [index9]),  # 9 bits
        every_width(rng),
        solid_block(U64_MAX, (16, 8, 24)),
    ):  # fmt: skip
        assert_reads_without_decoding(block)


def every_width(rng: np.random.Generator) -> bytes:
    """A Block whose sub-blocks use every index width, 0 to 9 bits (palettes of 1 to 300 entries)."""
    sizes = [1, 2, 3, 5, 9, 17, 33, 65, 129, 300, 4, 1]  # widths 0 1 2 3 4 5 6 7 8 9 2 0
    palettes = [list(range(n)) for n in sizes]
    indices = [rng.integers(0, n, 512) if n > 1 else None for n in sizes]
    return build_block((3, 2, 2), list(range(300)), palettes, indices)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(KINDS),
    shape=st.tuples(*(st.sampled_from([8, 16, 32]) for _ in range(3))),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_blocks_read_without_decoding(kind: str, shape: tuple[int, int, int], seed: int) -> None:
    assert_reads_without_decoding(encode_block(random_volume(kind, shape, seed)))


def test_reads_without_decoding_refuse_what_decoding_refuses() -> None:
    index = np.arange(512) % 5
    index[77] = 6  # beyond the 5-entry palette (3 bits)
    bad = build_block((1, 1, 1), list(range(5)), [list(range(5))], [index])
    for read in (lambda b: labels_at(b, all_positions((8, 8, 8))), google_block):
        with pytest.raises(BlockFormatError, match="beyond its sub-block's palette size"):
            read(bad)
    good = encode_block(np.zeros((8, 8, 16), np.uint64))
    for outside in ([[0, 0, 16]], [[-1, 0, 0]], [[8, 0, 0]]):
        with pytest.raises(ValueError, match="outside the block"):
            labels_at(good, np.array(outside))
    with pytest.raises(BlockFormatError, match="replacement label table"):
        google_block(good, np.zeros(2, np.uint64))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(KINDS), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_decode_region_equals_decoding_the_block_then_slicing(
    kind: str, seed: int, data: st.DataObject
) -> None:
    """decode_region decodes only the sub-blocks a box meets; the voxels are those of a full decode,
    with or without a replacement table, for planes, thin slabs, whole blocks and empty boxes."""
    shape = tuple(data.draw(st.sampled_from([8, 16, 32, 64])) for _ in range(3))
    vol = random_volume(kind, shape, seed)
    buf = encode_block(vol)
    region = []
    for n in shape:
        start = data.draw(st.integers(0, n))
        stop = data.draw(st.integers(start, n))
        region.append(slice(start, stop))
    table = None
    if data.draw(st.booleans()):
        table = np.random.default_rng(seed).integers(0, 2**64 - 1, label_table(buf).size, dtype=np.uint64)
    box = tuple(region)
    assert np.array_equal(decode_region(buf, box, table), decode_block(buf, table)[box])


def test_decode_region_of_real_block_planes(samples: dict[str, np.ndarray]) -> None:
    for vol in samples.values():
        buf = encode_block(vol)
        every = slice(None)
        boxes = ((slice(17, 18), every, every), (every, slice(40, 41), every), (every, every, slice(63, 64)),
                 (slice(3, 9), slice(5, 60), slice(0, 64)))  # fmt: skip
        for box in boxes:
            assert np.array_equal(decode_region(buf, box), vol[box])
    with pytest.raises(ValueError, match="step 1"):
        decode_region(
            encode_block(np.zeros((8, 8, 8), np.uint64)), (slice(0, 8, 2), slice(None), slice(None))
        )
