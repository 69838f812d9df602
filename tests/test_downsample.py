"""2x2x2 grayscale down-resolution (dvid.datatype.common.downsample)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dvid.datatype.common.downsample import downsample_2x

INT_KINDS = {
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
    "uint32": np.dtype("<u4"),
    "uint64": np.dtype("<u8"),
}
ALL_KINDS = {**INT_KINDS, "float32": np.dtype("<f4"), "rgba8": np.dtype("u1")}


def reference(vol: np.ndarray) -> np.ndarray:
    """Edge-pad odd dims, then floor(sum / 8) per cube with Python ints (exact for uint64)."""
    pad = [(0, n % 2) for n in vol.shape[:3]] + [(0, 0)] * (vol.ndim - 3)
    padded = np.pad(vol, pad, mode="edge").astype(object)
    nz, ny, nx = (n // 2 for n in padded.shape[:3])
    return padded.reshape(nz, 2, ny, 2, nx, 2, *vol.shape[3:]).sum(axis=(1, 3, 5)) // 8


shapes = hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=6)


@settings(max_examples=60, deadline=None)
@given(st.data(), st.sampled_from(sorted(INT_KINDS)), shapes)
def test_integer_kinds_match_exact_floor_mean(data, kind, shape):
    dtype = INT_KINDS[kind]
    vol = data.draw(hnp.arrays(dtype, shape, elements=st.integers(0, int(np.iinfo(dtype).max))))
    out = downsample_2x(vol, kind)
    assert out.dtype == dtype
    assert out.shape == tuple((n + 1) // 2 for n in shape)
    np.testing.assert_array_equal(out.astype(object), reference(vol))


@settings(max_examples=30, deadline=None)
@given(st.data(), shapes)
def test_rgba8_per_channel(data, shape):
    vol = data.draw(hnp.arrays(np.uint8, (*shape, 4)))
    out = downsample_2x(vol, "rgba8")
    assert out.dtype == np.uint8 and out.shape == (*((n + 1) // 2 for n in shape), 4)
    np.testing.assert_array_equal(out.astype(object), reference(vol))
    for c in range(4):
        np.testing.assert_array_equal(out[..., c], downsample_2x(np.ascontiguousarray(vol[..., c]), "uint8"))


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(sorted(ALL_KINDS)),
    shapes,
    st.integers(0, 2**64 - 1),
)
def test_constant_volume_stays_constant(kind, shape, raw):
    dtype = ALL_KINDS[kind]
    value = raw % (int(np.iinfo(dtype).max) + 1) if dtype.kind == "u" else np.float32(raw / 3.0e15)
    full_shape = (*shape, 4) if kind == "rgba8" else shape
    out = downsample_2x(np.full(full_shape, value, dtype=dtype), kind)
    assert out.dtype == dtype
    assert (out == np.asarray(value, dtype=dtype)).all()


@settings(max_examples=40, deadline=None)
@given(st.data(), st.sampled_from(sorted(ALL_KINDS)))
def test_result_within_cube_min_and_max(data, kind):
    dtype = ALL_KINDS[kind]
    if dtype.kind == "f":
        elements = st.floats(-(2.0**100), 2.0**100, width=32)
    else:
        elements = st.integers(0, int(np.iinfo(dtype).max))
    shape = (4, 2, 6, 4) if kind == "rgba8" else (4, 2, 6)
    vol = data.draw(hnp.arrays(dtype, shape, elements=elements))
    out = downsample_2x(vol, kind)
    cubes = vol.reshape(2, 2, 1, 2, 3, 2, *shape[3:])
    assert (out <= cubes.max(axis=(1, 3, 5))).all()
    assert (out >= cubes.min(axis=(1, 3, 5))).all()


def test_uint8_is_sum_shift_3():
    vol = np.array([[[255, 254], [253, 1]], [[0, 7], [100, 200]]], dtype=np.uint8)
    assert downsample_2x(vol, "uint8").tolist() == [[[int(vol.astype(int).sum()) >> 3]]]
    assert downsample_2x(np.full((2, 2, 2), 255, np.uint8), "uint8").item() == 255


def test_uint64_no_overflow():
    top = 2**64 - 1
    values = [top, top - 1, top - 2, top - 3, top - 4, top - 5, top - 6, 9]
    vol = np.array(values, dtype="<u8").reshape(2, 2, 2)
    assert downsample_2x(vol, "uint64").item() == sum(int(v) for v in vol.flat) // 8
    assert downsample_2x(np.full((2, 2, 2), top, "<u8"), "uint64").item() == top


def test_float32_mean():
    rng = np.random.default_rng(3)
    vol = rng.normal(size=(4, 6, 8)).astype("<f4")
    out = downsample_2x(vol, "float32")
    expect = vol.astype(np.float64).reshape(2, 2, 3, 2, 4, 2).mean(axis=(1, 3, 5)).astype(np.float32)
    np.testing.assert_array_equal(out, expect)
    vol[0, 0, 0] = np.nan
    out = downsample_2x(vol, "float32")
    assert np.isnan(out[0, 0, 0]) and np.isnan(out).sum() == 1


def test_odd_dims_replicate_edges():
    vol = np.arange(3 * 5 * 7, dtype="<u2").reshape(3, 5, 7) * 100
    out = downsample_2x(vol, "uint16")
    assert out.shape == (2, 3, 4)
    # The last cube along every axis is the single corner voxel repeated 8 times.
    assert out[-1, -1, -1] == vol[-1, -1, -1]
    # Along x only: the last x cube averages column 6 with itself.
    assert out[0, 0, -1] == int(vol[0:2, 0:2, 6].astype(int).sum() * 2) // 8
    single = np.array([[[42]]], dtype=np.uint8)
    assert downsample_2x(single, "uint8").tolist() == [[[42]]]


def test_byte_order_and_empty():
    vol = np.arange(64, dtype="<u4").reshape(4, 4, 4) * 65537
    out = downsample_2x(vol.astype(">u4"), "uint32")
    assert out.dtype == np.dtype("<u4")
    np.testing.assert_array_equal(out, downsample_2x(vol, "uint32"))
    empty = downsample_2x(np.zeros((0, 4, 4), np.uint8), "uint8")
    assert empty.shape == (0, 2, 2) and empty.dtype == np.uint8
    strided = np.arange(8 * 8 * 8, dtype=np.uint8).reshape(8, 8, 8)[::2, :, ::-1]
    np.testing.assert_array_equal(downsample_2x(strided, "uint8").astype(object), reference(strided))


def test_bad_input():
    with pytest.raises(ValueError, match="unknown value kind"):
        downsample_2x(np.zeros((2, 2, 2), np.uint8), "int8")
    with pytest.raises(ValueError, match="dtype"):
        downsample_2x(np.zeros((2, 2, 2), np.int16), "uint16")
    with pytest.raises(ValueError, match="shape"):
        downsample_2x(np.zeros((2, 2), np.uint8), "uint8")
    with pytest.raises(ValueError, match="shape"):
        downsample_2x(np.zeros((2, 2, 2, 3), np.uint8), "rgba8")
