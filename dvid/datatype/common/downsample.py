"""2x2x2 down-resolution of image volumes (spec §5.3): floor mean per cube, vectorized with numpy."""

from __future__ import annotations

import numpy as np

from dvid.datatype.common.voxels import voxel_format


def downsample_2x(vol: np.ndarray, value_kind: str) -> np.ndarray:
    """Halve a ``(nz, ny, nx)`` volume (``(nz, ny, nx, 4)`` for rgba8) by averaging each 2x2x2 cube.

    * An odd dimension is first padded by one edge-replicated plane, so the output has shape
      ``ceil(n / 2)`` per axis and a trailing half cube averages its voxels with copies of themselves.
    * Integer kinds (and each rgba8 channel): ``floor(sum of 8 / 8)``; for uint8 exactly ``sum >> 3``.
      Sums are taken in uint64; for uint64 values, which could overflow, the exact identity
      ``floor(sum(v) / 8) = sum(v >> 3) + (sum(v & 7) >> 3)`` is used instead.
    * float32: the mean computed in float64, rounded to float32 (never above the cube maximum).

    Returns a new little-endian array of the kind's dtype.  Raises ValueError if the array's dtype or shape
    does not fit ``value_kind``.
    """
    fmt = voxel_format(value_kind)
    fmt.check(vol, 3, "volume", "nz, ny, nx")
    dtype = fmt.dtype
    nz, ny, nx = ((n + 1) // 2 for n in vol.shape[:3])
    extra = vol.shape[3:]
    if 0 in (nz, ny, nx):
        return np.zeros((nz, ny, nx, *extra), dtype=dtype)
    vol = np.asarray(vol, dtype=dtype)
    pad = [(0, n % 2) for n in vol.shape[:3]] + [(0, 0)] * len(extra)
    if any(after for _, after in pad):
        vol = np.pad(vol, pad, mode="edge")
    cubes = vol.reshape(nz, 2, ny, 2, nx, 2, *extra)
    axes = (1, 3, 5)
    if value_kind == "float32":
        return (cubes.sum(axis=axes, dtype=np.float64) / 8).astype(dtype)
    if value_kind == "uint64":
        high = (cubes >> np.uint64(3)).sum(axis=axes, dtype=np.uint64)
        low = (cubes & np.uint64(7)).sum(axis=axes, dtype=np.uint64) >> np.uint64(3)
        return (high + low).astype(dtype, copy=False)
    return (cubes.sum(axis=axes, dtype=np.uint64) >> np.uint64(3)).astype(dtype)
