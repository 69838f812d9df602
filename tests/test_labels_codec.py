"""uint64 label codecs (dvid.datatype.common.labels): pseudocolor, label down-res, compressed_segmentation."""

from __future__ import annotations

import gzip
import itertools
import struct
from collections import Counter

import compressed_segmentation
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dvid.datatype.common import labels
from dvid.datatype.common.labels import downsample_labels_2x, encode_google, encode_googlegzip, pseudocolor
from dvid.errors import BadRequest
from tests.shared_data import DATA

U64_MAX = 2**64 - 1


def load_sample(name: str) -> np.ndarray:
    """A gzipped raw 64^3 uint64 LE ZYX test volume from tests/data."""
    path = DATA / f"{name}.dat.gz"
    assert path.is_file(), f"test data missing: {path}"
    return np.frombuffer(gzip.decompress(path.read_bytes()), dtype="<u8").reshape(64, 64, 64)


# ---------------------------------------------------------------------------------------------- pseudocolor


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """Pure-Python MurmurHash3_x86_32 of any byte string (reference for the vectorized version)."""
    m = 0xFFFFFFFF
    c1, c2 = 0xCC9E2D51, 0x1B873593

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (32 - r))) & m

    def mix(k: int) -> int:
        return (rotl((k * c1) & m, 15) * c2) & m

    h = seed & m
    nblocks = len(data) // 4
    for (k,) in struct.iter_unpack("<I", data[: 4 * nblocks]):
        h = (rotl(h ^ mix(k), 13) * 5 + 0xE6546B64) & m
    tail = data[4 * nblocks :]
    if tail:
        h ^= mix(int.from_bytes(tail, "little"))
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & m
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & m
    return h ^ (h >> 16)


@pytest.mark.parametrize(
    ("data", "seed", "expected"),
    [
        (b"", 0, 0),
        (b"", 1, 0x514E28B7),
        (b"", 0xFFFFFFFF, 0x81F16F39),
        (b"\0\0\0\0", 0, 0x2362F9DE),
        (b"hello", 0, 0x248BFA47),
        (b"aaaa", 0x9747B28C, 0x5A97808A),
        (b"Hello, world!", 0x9747B28C, 0x24884CBA),
        (b"The quick brown fox jumps over the lazy dog", 0, 0x2E4FF723),
    ],
)
def test_reference_murmur3_known_vectors(data: bytes, seed: int, expected: int) -> None:
    assert murmur3_32(data, seed) == expected


def reference_rgba(label: int) -> tuple[int, int, int, int]:
    h = murmur3_32(label.to_bytes(8, "little"))
    return h >> 24, (h >> 16) & 255, (h >> 8) & 255, 255


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(
        np.uint64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=7),
        elements=st.integers(0, U64_MAX) | st.sampled_from([0, 1, 2**32 - 1, 2**32, U64_MAX]),
    )
)
def test_pseudocolor_matches_reference(plane: np.ndarray) -> None:
    rgba = pseudocolor(plane)
    assert rgba.dtype == np.uint8 and rgba.shape == (*plane.shape, 4)
    expected = [reference_rgba(int(v)) for v in plane.ravel()]
    np.testing.assert_array_equal(rgba.reshape(-1, 4), np.array(expected, dtype=np.uint8))


def test_pseudocolor_dtypes_and_errors() -> None:
    plane = np.array([[0, 23], [911, U64_MAX]], dtype=np.uint64)
    np.testing.assert_array_equal(pseudocolor(plane.astype(">u8")), pseudocolor(plane))
    np.testing.assert_array_equal(pseudocolor(np.array([[23]], np.uint8)), pseudocolor(plane[:1, 1:]))
    assert pseudocolor(np.zeros((0, 5), np.uint64)).shape == (0, 5, 4)
    for bad in (np.zeros((2, 2, 2), np.uint64), np.zeros((2, 2), np.float32), np.zeros((2, 2), np.int64)):
        with pytest.raises(BadRequest):
            pseudocolor(bad)


# ------------------------------------------------------------------------------------------------ down-res


def reference_downsample(vol: np.ndarray) -> np.ndarray:
    """Brute force per output voxel: edge-pad odd dims, mode of non-zero labels, ties to smallest."""
    nz, ny, nx = vol.shape
    out = np.zeros(((nz + 1) // 2, (ny + 1) // 2, (nx + 1) // 2), dtype=np.uint64)
    for z, y, x in np.ndindex(*out.shape):
        cube = [
            int(vol[min(2 * z + dz, nz - 1), min(2 * y + dy, ny - 1), min(2 * x + dx, nx - 1)])
            for dz, dy, dx in itertools.product((0, 1), repeat=3)
        ]
        votes = Counter(v for v in cube if v)
        if votes:
            top = max(votes.values())
            out[z, y, x] = min(v for v, n in votes.items() if n == top)
    return out


few_labels = st.sampled_from([0, 0, 1, 2, 3, 2**40 + 7, U64_MAX])
small_shapes = hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=7)


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(np.uint64, small_shapes, elements=few_labels))
def test_downsample_matches_brute_force(vol: np.ndarray) -> None:
    out = downsample_labels_2x(vol)
    assert out.dtype == np.uint64 and out.shape == tuple((n + 1) // 2 for n in vol.shape)
    np.testing.assert_array_equal(out, reference_downsample(vol))


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.uint64, small_shapes, elements=few_labels), st.integers(1, 5))
def test_downsample_chunking_is_invisible(vol: np.ndarray, chunk: int) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(labels, "_DOWNRES_CHUNK", chunk)
        np.testing.assert_array_equal(downsample_labels_2x(vol), reference_downsample(vol))


@pytest.mark.parametrize(
    ("cube", "expected"),
    [
        ([0] * 8, 0),
        ([0] * 7 + [9], 9),
        ([0] * 6 + [9, 4], 4),  # 1-1 tie: smallest
        ([5] * 4 + [3] * 4, 3),  # 4-4 tie: smallest
        ([0] * 5 + [7, 7, 2], 7),  # zeros are the majority but never win
        ([U64_MAX] * 3 + [1, 2, 0, 0, 0], U64_MAX),
    ],
)
def test_downsample_cube_rule(cube: list[int], expected: int) -> None:
    for perm in (cube, cube[::-1], cube[3:] + cube[:3]):
        vol = np.array(perm, dtype=np.uint64).reshape(2, 2, 2)
        assert downsample_labels_2x(vol).tolist() == [[[expected]]]


def test_downsample_uniform_and_edge_cases() -> None:
    np.testing.assert_array_equal(downsample_labels_2x(np.zeros((5, 6, 7), np.uint64)), np.zeros((3, 3, 4)))
    solid = np.full((4, 3, 9), 2**63 + 5, np.uint64)
    np.testing.assert_array_equal(downsample_labels_2x(solid), np.full((2, 2, 5), 2**63 + 5, np.uint64))
    assert downsample_labels_2x(np.zeros((0, 4, 4), np.uint64)).shape == (0, 2, 2)
    # An odd trailing plane votes twice with itself (edge replication).
    vol = np.array([[[3]], [[3]], [[4]]], dtype=np.uint64)  # nz=3, ny=nx=1
    assert downsample_labels_2x(vol).ravel().tolist() == [3, 4]
    for bad in (np.zeros((2, 2), np.uint64), np.zeros((2, 2, 2), np.float64)):
        with pytest.raises(BadRequest):
            downsample_labels_2x(bad)


# ---------------------------------------------------------------------------- compressed_segmentation


def decode_google(buf: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """Independent decoder of spec §2.3 (one channel, 8^3 blocks) into a ZYX uint64 volume."""
    words = np.frombuffer(buf, dtype="<u4")
    assert words[0] == 1, "channel 0 must start right after the 1-word channel header"
    out = np.empty(shape, dtype=np.uint64)
    grid = tuple(n // 8 for n in shape)
    for i, (gz, gy, gx) in enumerate(np.ndindex(*grid)):  # blocks in (gz, gy, gx) order, gx fastest
        head, values_at = int(words[1 + 2 * i]), int(words[2 + 2 * i])
        table_at, bits = head & 0xFFFFFF, head >> 24
        assert bits in (0, 1, 2, 4, 8, 16, 32)
        if bits:
            packed = words[1 + values_at : 1 + values_at + bits * 512 // 32]
            stream = np.unpackbits(packed.view(np.uint8), bitorder="little").reshape(512, bits)
            index = stream.astype(np.int64) @ (1 << np.arange(bits))
        else:
            index = np.zeros(512, dtype=np.int64)
        table = np.frombuffer(buf, dtype="<u8", count=int(index.max()) + 1, offset=4 * (1 + table_at))
        # Within a block voxel i is at x = i % 8, y = (i // 8) % 8, z = i // 64: ZYX C-order.
        out[8 * gz : 8 * gz + 8, 8 * gy : 8 * gy + 8, 8 * gx : 8 * gx + 8] = table[index].reshape(8, 8, 8)
    return out


def check_google(vol: np.ndarray) -> bytes:
    buf = encode_google(vol)
    assert struct.unpack_from("<I", buf) == (1,)
    np.testing.assert_array_equal(decode_google(buf, vol.shape), vol)
    nz, ny, nx = vol.shape
    decoded = compressed_segmentation.decompress(buf, (nx, ny, nz), np.uint64, order="F")
    np.testing.assert_array_equal(decoded.T, vol)
    return buf


def test_google_layout_is_x_fastest() -> None:
    z, y, x = np.indices((8, 16, 24), dtype=np.uint64)
    check_google(x + 100 * y + 10_000 * z)  # every voxel distinct: any axis mix-up shows
    vol = (x // 8) + 10 * (y // 8) + 100 * (z // 8)  # one label per block: block order
    buf = check_google(vol)
    words = np.frombuffer(buf, "<u4")
    firsts = [
        int(np.frombuffer(buf, "<u8", count=1, offset=4 * (1 + (int(words[1 + 2 * i]) & 0xFFFFFF)))[0])
        for i in range(6)
    ]
    assert firsts == [0, 1, 2, 10, 11, 12]


@settings(max_examples=30, deadline=None)
@given(
    hnp.arrays(
        np.uint64,
        st.tuples(*[st.sampled_from([8, 16])] * 3),
        elements=few_labels | st.integers(0, U64_MAX),
    )
)
def test_google_round_trip(vol: np.ndarray) -> None:
    check_google(vol)


def test_google_inputs() -> None:
    vol = np.arange(8 * 8 * 16, dtype=np.uint64).reshape(8, 8, 16) % 37
    ref = encode_google(vol)
    readonly = np.frombuffer(vol.tobytes(), dtype="<u8").reshape(vol.shape)
    assert encode_google(readonly) == ref
    assert encode_google(vol.astype(">u8")) == ref
    assert encode_google(np.asfortranarray(vol)) == ref
    assert gzip.decompress(encode_googlegzip(vol)) == ref
    assert gzip.decompress(encode_googlegzip(vol, level=6)) == ref
    for shape in ((8, 8, 12), (4, 8, 8), (8, 9, 8), (0, 8, 8), (8, 8)):
        with pytest.raises(BadRequest):
            encode_google(np.zeros(shape, np.uint64))
    with pytest.raises(BadRequest):
        encode_google(np.zeros((8, 8, 8), np.float32))


# ------------------------------------------------------------------------------------------- real data


def test_fib19_sample1() -> None:
    vol = load_sample("fib19-64x64x64-sample1")
    present = np.unique(vol)
    assert len(present) == 18 and present[0] == 449  # spec §6
    buf = check_google(vol)
    assert len(buf) < vol.nbytes // 50
    assert gzip.decompress(encode_googlegzip(vol)) == buf

    down = downsample_labels_2x(vol)
    assert down.shape == (32, 32, 32)
    assert np.isin(np.unique(down), present).all()
    assert 0 not in down  # no zeros in the input, so none can appear
    np.testing.assert_array_equal(
        downsample_labels_2x(vol[:8, :8, :8]), reference_downsample(vol[:8, :8, :8])
    )
