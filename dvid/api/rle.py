"""DVID's legacy sparse-volume payload (``sparsevol``): runs along x, decoded and encoded with numpy.

Payload: bytes ``0, 3, 0, 0``; uint32 voxel count (DVID writes 0); uint32 number of runs; then per
run int32 x, y, z, length, all little-endian. Coordinates here are (z, y, x) rows.
"""

from __future__ import annotations

import numpy as np

HEADER = bytes((0, 3, 0, 0))
_RUN = np.dtype([("x", "<i4"), ("y", "<i4"), ("z", "<i4"), ("n", "<i4")])


def decode_runs(payload: bytes) -> np.ndarray:
    """The runs of a payload as an ``(n, 4)`` int32 array of (x, y, z, length)."""
    if len(payload) < 12 or payload[:4] != HEADER:
        raise ValueError(f"not a legacy sparsevol payload ({len(payload)} bytes, header {payload[:4]!r})")
    count = int(np.frombuffer(payload, "<u4", 1, 8)[0])
    if len(payload) != 12 + 16 * count:
        raise ValueError(f"sparsevol payload of {len(payload)} bytes does not hold its {count} runs")
    runs = np.frombuffer(payload, _RUN, count, 12)
    return np.stack([runs["x"], runs["y"], runs["z"], runs["n"]], axis=1)


def runs_to_coords(runs: np.ndarray) -> np.ndarray:
    """Every voxel of the runs as an ``(N, 3)`` int32 array of (z, y, x), in run order."""
    lengths = runs[:, 3].astype(np.int64)
    if len(runs) == 0 or lengths.sum() == 0:
        return np.empty((0, 3), np.int32)
    run_of = np.repeat(np.arange(len(runs)), lengths)
    first = np.cumsum(lengths) - lengths
    step = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(first, lengths)
    coords = np.empty((len(run_of), 3), np.int32)
    coords[:, 0] = runs[run_of, 2]
    coords[:, 1] = runs[run_of, 1]
    coords[:, 2] = runs[run_of, 0] + step
    return coords


def coords_to_mask(coords: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The boolean mask of the voxels' bounding box and the box's first voxel (z, y, x)."""
    coords = np.asarray(coords)
    if coords.ndim != 2 or coords.shape[1] != 3:
        raise ValueError(f"coordinates are an (N, 3) array of (z, y, x), got shape {coords.shape}")
    if len(coords) == 0:
        return np.zeros((0, 0, 0), bool), (0, 0, 0)
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    mask = np.zeros(tuple(int(v) for v in hi - lo + 1), bool)
    rel = coords - lo
    mask[rel[:, 0], rel[:, 1], rel[:, 2]] = True
    return mask, (int(lo[0]), int(lo[1]), int(lo[2]))


def mask_to_runs(mask: np.ndarray, offset: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """The runs along x of a (z, y, x) boolean mask whose first voxel is at ``offset``: (x, y, z, n)."""
    mask = np.asarray(mask, bool)
    if mask.ndim != 3:
        raise ValueError(f"a mask is a 3-D (z, y, x) array, got shape {mask.shape}")
    nz, ny, nx = mask.shape
    rows = np.zeros((nz * ny, nx + 2), np.int8)
    rows[:, 1:-1] = mask.reshape(nz * ny, nx)
    edges = np.diff(rows, axis=1)
    starts, ends = np.nonzero(edges == 1), np.nonzero(edges == -1)
    row, x0 = starts
    z, y = np.divmod(row, ny)
    runs = np.empty((len(row), 4), np.int32)
    runs[:, 0] = x0 + offset[2]
    runs[:, 1] = y + offset[1]
    runs[:, 2] = z + offset[0]
    runs[:, 3] = ends[1] - x0
    return runs


def encode_runs(runs: np.ndarray) -> bytes:
    """The payload of (x, y, z, length) runs."""
    runs = np.ascontiguousarray(runs, dtype="<i4")
    return HEADER + np.array([0, len(runs)], "<u4").tobytes() + runs.tobytes()
