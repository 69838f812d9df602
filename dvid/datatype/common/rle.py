"""Run-length encoded sparse volumes: labelvol's stored runs and the legacy sparsevol wire formats.

A run is one row of x-consecutive voxels: ``(x, y, z, length)``. Runs travel as numpy ``int32``
arrays of shape ``(n, 4)`` in global voxel coordinates; arithmetic is done in int64 internally.

* Stored labelvol value (spec image-label.md §3.1): the runs of one label in one block, 16 bytes
  each (``i32 x, y, z, length`` LE), no header.
* Legacy ``sparsevol`` payload (§3.3): ``[0, 3, 0, 0]`` (descriptor, ndim, run dimension, reserved),
  ``u32`` voxel count (DVID writes 0), ``u32`` run count, then the runs.
* ``sparsevol-coarse``: the same layout with runs of consecutive *block* x coordinates.

Block sizes are DVID-ordered ``(sx, sy, sz)`` (or one int for cubes); numpy shapes are ``(nz, ny, nx)``.
Everything is vectorized: no Python loop runs per voxel or per run.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from dvid.errors import BadRequest

RUN_BYTES = 16
HEADER_BYTES = 12
SPARSEVOL_HEADER = bytes([0, 3, 0, 0])

_I32_MIN = -(2**31)
_I32_MAX = 2**31 - 1
_U32_MAX = 2**32 - 1
_BOUND_CLAMP = 2**40  # query bounds beyond any int32 coordinate are clamped to this before arithmetic


def empty_runs() -> np.ndarray:
    """An empty ``(0, 4)`` int32 runs array."""
    return np.zeros((0, 4), dtype=np.int32)


def _as_runs(runs: np.ndarray | Sequence[Sequence[int]]) -> np.ndarray:
    """Validate the runs' shape and return them as int64 ``(n, 4)`` for overflow-safe arithmetic."""
    arr = np.asarray(runs)
    if arr.size == 0:
        return np.zeros((0, 4), dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 4 or not np.issubdtype(arr.dtype, np.integer):
        raise BadRequest(f"runs must be an integer array of shape (n, 4), got {arr.dtype} {arr.shape}")
    if arr.dtype.itemsize >= 4 and (arr.min() < _I32_MIN or arr.max() > _I32_MAX):
        raise BadRequest("run coordinates and lengths must fit in 32-bit signed integers")
    return arr.astype(np.int64, copy=False)


def _to_int32(runs: np.ndarray) -> np.ndarray:
    """Cast int64 runs to int32, refusing values (e.g. merged lengths) outside the int32 range."""
    if runs.size and (runs.min() < _I32_MIN or runs.max() > _I32_MAX):
        raise BadRequest("run coordinates or lengths exceed the 32-bit range")
    return np.ascontiguousarray(runs, dtype=np.int32)


def _block_size(block_size: int | Sequence[int], what: str = "block size (x, y, z)") -> np.ndarray:
    """Three positive ints as int64, in the order given; one int means a cube."""
    size = np.asarray([block_size] * 3 if np.isscalar(block_size) else block_size)
    if size.shape != (3,) or not np.issubdtype(size.dtype, np.integer) or (size <= 0).any():
        raise BadRequest(f"{what} must be one or three positive integers, got {block_size!r}")
    return size.astype(np.int64)


def _order_zyx(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Stable permutation sorting by z, then y, then x."""
    return np.lexsort((x, y, z))


def _rows_changed(*cols: np.ndarray) -> np.ndarray:
    """For sorted columns: True where any column differs from the previous element (and at 0)."""
    n = len(cols[0])
    changed = np.zeros(n, dtype=bool)
    if n:
        changed[0] = True
        for col in cols:
            changed[1:] |= col[1:] != col[:-1]
    return changed


# ---- runs from label blocks ---------------------------------------------------------------------------


def block_runs_by_label(
    block: np.ndarray, origin: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of every non-zero label in a ``(nz, ny, nx)`` block whose first voxel is ``origin`` (x, y, z).

    Returns ``(labels, runs, offsets)``: the sorted distinct non-zero labels (uint64), all runs (int32,
    global coordinates) grouped by label, and offsets (int64, ``len(labels) + 1``) such that label ``i``
    owns ``runs[offsets[i]:offsets[i + 1]]``, ordered by (z, y, x). Runs never cross the block's x edge.
    """
    arr = np.asarray(block)
    if arr.ndim != 3 or not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise BadRequest(f"label block must be a 3-D integer array, got {arr.dtype} {arr.shape}")
    if len(origin) != 3:
        raise BadRequest(f"block origin must be (x, y, z), got {origin!r}")
    nz, ny, nx = arr.shape
    x0, y0, z0 = (int(v) for v in origin)
    if min(x0, y0, z0) < _I32_MIN or max(x0 + nx, y0 + ny, z0 + nz) - 1 > _I32_MAX:
        raise BadRequest(f"block at {origin} of shape {arr.shape} exceeds the 32-bit coordinate range")
    if arr.size == 0:
        return np.zeros(0, np.uint64), empty_runs(), np.zeros(1, np.int64)

    flat = arr.reshape(-1)
    change = np.empty(flat.size, dtype=bool)
    change[0] = True
    np.not_equal(flat[1:], flat[:-1], out=change[1:])
    change[::nx] = True  # every row starts a run; so each run ends at the next change
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], flat.size)
    labels = flat[starts].astype(np.uint64)
    keep = labels != 0
    starts, ends, labels = starts[keep], ends[keep], labels[keep]

    order = np.argsort(labels, kind="stable")  # runs are in scan order, so stable keeps (z, y, x)
    starts, ends, labels = starts[order], ends[order], labels[order]
    row, xs = np.divmod(starts, nx)
    zs, ys = np.divmod(row, ny)
    runs = np.stack([xs + x0, ys + y0, zs + z0, ends - starts], axis=1).astype(np.int32)

    first = np.flatnonzero(_rows_changed(labels))
    offsets = np.append(first, len(labels)).astype(np.int64)
    return labels[first], runs, offsets


# ---- stored labelvol value ----------------------------------------------------------------------------


def runs_to_bytes(runs: np.ndarray) -> bytes:
    """The stored per-(label, block) value: 16 bytes per run (``i32 x, y, z, length`` LE), no header."""
    return _to_int32(_as_runs(runs)).astype("<i4", copy=False).tobytes()


def runs_from_bytes(data: bytes) -> np.ndarray:
    """Inverse of :func:`runs_to_bytes`."""
    if len(data) % RUN_BYTES:
        raise BadRequest(f"stored runs must be a multiple of {RUN_BYTES} bytes, got {len(data)}")
    return np.frombuffer(data, dtype="<i4").reshape(-1, 4).astype(np.int32)


# ---- legacy sparsevol payloads --------------------------------------------------------------------------


def encode_sparsevol(runs: np.ndarray, *, fill_voxel_count: bool = False) -> bytes:
    """Legacy sparsevol payload of ``runs`` (in the given order).

    DVID always writes 0 as the voxel count; ``fill_voxel_count=True`` writes the sum of the run lengths
    instead (saturated at 2**32 - 1).
    """
    r = _to_int32(_as_runs(runs))
    count = min(int(r[:, 3].astype(np.int64).sum()), _U32_MAX) if fill_voxel_count else 0
    return SPARSEVOL_HEADER + struct.pack("<II", count, len(r)) + r.astype("<i4", copy=False).tobytes()


def decode_sparsevol(data: bytes) -> np.ndarray:
    """Parse a legacy sparsevol payload (``split`` bodies, ``sparsevol`` responses) into runs.

    Checks the descriptor (0 = binary), ndim (3), run dimension (0 = x), that the byte length matches
    the declared run count exactly, that every length is positive and that no run passes x = 2**31 - 1.
    The reserved byte and the voxel count are ignored (DVID and neuclease write 0 there).
    """
    if len(data) < HEADER_BYTES:
        raise BadRequest(
            f"sparsevol payload is {len(data)} bytes, shorter than its {HEADER_BYTES}-byte header"
        )
    descriptor, ndim, run_dim = data[0], data[1], data[2]
    if descriptor != 0:
        raise BadRequest(f"sparsevol payload descriptor {descriptor} is not supported (only 0, binary)")
    if ndim != 3:
        raise BadRequest(f"sparsevol payload must have 3 dimensions, header says {ndim}")
    if run_dim != 0:
        raise BadRequest(f"sparsevol runs must be along x (run dimension 0), header says {run_dim}")
    (n,) = struct.unpack_from("<I", data, 8)
    body = len(data) - HEADER_BYTES
    if body != n * RUN_BYTES:
        raise BadRequest(
            f"sparsevol payload declares {n} runs ({n * RUN_BYTES} bytes) but carries {body} bytes of runs"
        )
    runs = np.frombuffer(data, dtype="<i4", offset=HEADER_BYTES).reshape(-1, 4).astype(np.int32)
    lengths = runs[:, 3].astype(np.int64)
    if n and (bad := np.flatnonzero(lengths <= 0)).size:
        i = int(bad[0])
        raise BadRequest(f"sparsevol run {i} at {tuple(int(v) for v in runs[i, :3])} has length {lengths[i]}")
    if n and (bad := np.flatnonzero(runs[:, 0] + lengths - 1 > _I32_MAX)).size:
        i = int(bad[0])
        raise BadRequest(f"sparsevol run {i} starting at x={runs[i, 0]} passes the 32-bit coordinate range")
    return runs


# ---- run algebra --------------------------------------------------------------------------------------


def merge_runs(runs: np.ndarray) -> np.ndarray:
    """Sort runs by (z, y, x) and coalesce runs on one row that touch or overlap (a union of voxels).

    Joins runs split at block boundaries into one body stream; drops runs of length <= 0.
    """
    r = _as_runs(runs)
    r = r[r[:, 3] > 0]
    if not len(r):
        return empty_runs()
    r = r[_order_zyx(r[:, 0], r[:, 1], r[:, 2])]
    x, y, z = r[:, 0], r[:, 1], r[:, 2]
    new_row = _rows_changed(y, z)
    # Running max of run ends within each row: offset each row into its own value band, then one cummax.
    band = (np.cumsum(new_row) - 1) << 34
    reach = np.maximum.accumulate(band + (x + r[:, 3] + 2**32)) - band - 2**32
    seg = new_row.copy()
    seg[1:] |= x[1:] > reach[:-1]  # a gap after everything so far on this row starts a new run
    first = np.flatnonzero(seg)
    last = np.append(first[1:], len(r)) - 1
    merged = np.stack([x[first], y[first], z[first], reach[last] - x[first]], axis=1)
    return _to_int32(merged)


def clip_runs(
    runs: np.ndarray,
    *,
    minx: int | None = None,
    maxx: int | None = None,
    miny: int | None = None,
    maxy: int | None = None,
    minz: int | None = None,
    maxz: int | None = None,
) -> np.ndarray:
    """Keep the parts of runs inside the inclusive voxel bounds (None = unbounded), in input order.

    Runs outside the y/z bounds are dropped, x is clipped, and runs clipped to nothing are dropped.
    """
    r = _as_runs(runs)

    def bound(v: int | None) -> int | None:
        return None if v is None else max(-_BOUND_CLAMP, min(_BOUND_CLAMP, int(v)))

    minx, maxx, miny, maxy, minz, maxz = map(bound, (minx, maxx, miny, maxy, minz, maxz))
    x0, y, z = r[:, 0], r[:, 1], r[:, 2]
    x1 = x0 + r[:, 3]  # exclusive end
    keep = np.ones(len(r), dtype=bool)
    for col, lo, hi in ((y, miny, maxy), (z, minz, maxz)):
        if lo is not None:
            keep &= col >= lo
        if hi is not None:
            keep &= col <= hi
    if minx is not None:
        x0 = np.maximum(x0, minx)
    if maxx is not None:
        x1 = np.minimum(x1, maxx + 1)
    keep &= x1 > x0
    return _to_int32(np.stack([x0, y, z, x1 - x0], axis=1)[keep])


def _cut_at_blocks(r: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cut int64 runs (positive lengths) at block x edges; returns the pieces and their (bx, by, bz)."""
    x, y, z, length = r.T
    bx0 = x // size[0]
    pieces = (x + length - 1) // size[0] - bx0 + 1
    idx = np.repeat(np.arange(len(r)), pieces)
    step = np.arange(len(idx)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    bx = bx0[idx] + step
    start = np.maximum(x[idx], bx * size[0])
    end = np.minimum(x[idx] + length[idx], (bx + 1) * size[0])
    cut = np.stack([start, y[idx], z[idx], end - start], axis=1)
    coords = np.stack([bx, y[idx] // size[1], z[idx] // size[2]], axis=1)
    return cut, coords


def block_pieces(runs: np.ndarray, block_size: int | Sequence[int]) -> int:
    """How many pieces cutting the runs at block x edges makes (what :func:`split_runs_by_block`
    would allocate): a bound to check before cutting runs a client sent."""
    size = _block_size(block_size)
    r = _as_runs(runs)
    x, length = r[:, 0], r[:, 3]
    keep = length > 0
    return int(((x[keep] + length[keep] - 1) // size[0] - x[keep] // size[0] + 1).sum())


def split_runs_by_block(
    runs: np.ndarray, block_size: int | Sequence[int]
) -> dict[tuple[int, int, int], np.ndarray]:
    """Cut runs at block x edges and group them by block ``(bx, by, bz)``.

    Blocks come in (z, y, x) key order; each block's runs are ordered by (z, y, x). Runs of length
    <= 0 are dropped.
    """
    size = _block_size(block_size)
    r = _as_runs(runs)
    r = r[r[:, 3] > 0]
    if not len(r):
        return {}
    cut, coords = _cut_at_blocks(r, size)
    order = np.lexsort((cut[:, 0], cut[:, 1], cut[:, 2], coords[:, 0], coords[:, 1], coords[:, 2]))
    cut, coords = _to_int32(cut[order]), coords[order]
    first = np.flatnonzero(_rows_changed(coords[:, 0], coords[:, 1], coords[:, 2]))
    keys = [(int(bx), int(by), int(bz)) for bx, by, bz in coords[first].tolist()]
    return dict(zip(keys, np.split(cut, first[1:]), strict=True))


def runs_mask_in_block(
    runs: np.ndarray, origin: tuple[int, int, int], block_shape: int | Sequence[int]
) -> np.ndarray:
    """Boolean ``(nz, ny, nx)`` mask of the voxels the runs cover inside the block at ``origin`` (x, y, z).

    ``block_shape`` is the numpy shape ``(nz, ny, nx)`` (an int means a cube). Runs, or parts of runs,
    outside the block are ignored; overlapping runs are fine.
    """
    nz, ny, nx = (int(v) for v in _block_size(block_shape, "block shape (nz, ny, nx)"))
    x0, y0, z0 = (int(v) for v in origin)
    r = clip_runs(
        runs, minx=x0, maxx=x0 + nx - 1, miny=y0, maxy=y0 + ny - 1, minz=z0, maxz=z0 + nz - 1
    ).astype(np.int64)
    n = nz * ny * nx
    start = ((r[:, 2] - z0) * ny + (r[:, 1] - y0)) * nx + (r[:, 0] - x0)
    diff = np.bincount(start, minlength=n + 1) - np.bincount(start + r[:, 3], minlength=n + 1)
    return (np.cumsum(diff[:n]) > 0).reshape(nz, ny, nx)


# ---- sparsevol-coarse -----------------------------------------------------------------------------------


def coarse_blocks(runs: np.ndarray, block_size: int | Sequence[int]) -> np.ndarray:
    """The distinct ``(bx, by, bz)`` blocks (int32, ``(n, 3)``) the runs touch, sorted by (z, y, x)."""
    size = _block_size(block_size)
    r = _as_runs(runs)
    r = r[r[:, 3] > 0]
    if not len(r):
        return np.zeros((0, 3), dtype=np.int32)
    _, coords = _cut_at_blocks(r, size)
    coords = coords[_order_zyx(coords[:, 0], coords[:, 1], coords[:, 2])]
    coords = coords[_rows_changed(coords[:, 0], coords[:, 1], coords[:, 2])]
    return coords.astype(np.int32)


def encode_sparsevol_coarse(block_coords: np.ndarray) -> bytes:
    """sparsevol-coarse payload: the blocks ``(bx, by, bz)`` sorted by (z, y, x) and coalesced into
    spans of consecutive bx; the count field is 0 as in DVID. Duplicate blocks are ignored.
    """
    coords = np.asarray(block_coords)
    if coords.size == 0:
        return encode_sparsevol(empty_runs())
    if coords.ndim != 2 or coords.shape[1] != 3 or not np.issubdtype(coords.dtype, np.integer):
        raise BadRequest(f"block coordinates must be an integer array of shape (n, 3), got {coords.shape}")
    ones = np.ones((len(coords), 1), dtype=np.int64)
    return encode_sparsevol(merge_runs(np.hstack([coords.astype(np.int64), ones])))


def coarse_runs_to_blocks(runs: np.ndarray) -> np.ndarray:
    """Expand block-coordinate spans (``sparsevol-coarse``, ``split-coarse`` bodies) into the distinct
    ``(bx, by, bz)`` blocks, int32 ``(n, 3)`` sorted by (z, y, x).
    """
    return coarse_blocks(runs, 1)
