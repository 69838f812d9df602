"""ROI spans: runs of blocks along x, ``[z, y, x0, x1]`` in block coordinates (x0 and x1 inclusive).

Pure model code (numpy in, numpy out; no storage, no aiohttp) for the ``roi`` datatype and for
ROI masking of image reads and writes:

- :func:`parse_spans` / :func:`parse_points`: validated JSON bodies as int64 arrays;
- :func:`canonical_spans`: spans in DVID's key order (z, y, x0, then run length), duplicates
  collapsed, overlapping runs kept (what ``GET /roi`` returns after a ``POST /roi``);
- :class:`SpanIndex`: membership of many blocks at once (spans merged into disjoint intervals of
  one int64 line, then one ``searchsorted``), used by ptquery and image masking;
- :func:`block_mask` / :func:`voxel_mask`: an ROI over a grid of blocks or a box of voxels;
- :func:`partition`: DVID's two ``/partition`` algorithms, reproduced literally.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from dvid.errors import BadRequest, PayloadTooLarge

MIN_I32 = -(2**31)
MAX_I32 = 2**31 - 1
MAX_U32 = 2**32 - 1

#: Each row of x-intervals lives in its own 2**33-wide stretch of the line (x spans < 2**32).
_ROW_STRIDE = np.int64(1 << 33)
_X_BIAS = np.int64(1 << 31)


# ---- JSON bodies -----------------------------------------------------------------------------


def _int_rows(body: bytes, width: int, what: str, example: str) -> np.ndarray:
    """A JSON array of ``width``-int arrays as an (n, width) int64 array; 400 naming the first bad item.

    The fast path is one ``json.loads`` and one ``np.array``; the slow path only runs to explain
    an error.
    """
    try:
        text = bytes(body).decode("utf-8")
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: also int()'s 4300-digit limit
        raise BadRequest(f"{what} must be a JSON array like {example}: {exc}") from None
    except RecursionError:
        raise BadRequest(f"{what} must be a JSON array like {example}: nested too deeply") from None
    if data is None:  # Go decodes null into an empty slice
        return np.zeros((0, width), np.int64)
    if not isinstance(data, list):
        raise BadRequest(f"{what} must be a JSON array like {example}, got {type(data).__name__}")
    if not data:
        return np.zeros((0, width), np.int64)
    arr = None
    # JSON true/false would become 1/0 in a numpy int array; valid bodies hold no letters t or f.
    if "t" not in text and "f" not in text:
        try:
            arr = np.array(data)
        except (ValueError, OverflowError):
            arr = None
    if arr is None or arr.dtype.kind not in "iu" or arr.ndim != 2 or arr.shape[1] != width:
        for i, item in enumerate(data):
            ok = (
                isinstance(item, list)
                and len(item) == width
                and all(isinstance(v, int) and not isinstance(v, bool) for v in item)
            )
            if not ok:
                raise BadRequest(
                    f"{what} must be a JSON array of {width}-integer arrays like {example};"
                    f" item {i} is {json.dumps(item)[:100]}"
                )
            if any(not MIN_I32 <= v <= MAX_I32 for v in item):
                raise BadRequest(f"{what}: item {i} {item} is outside the 32-bit coordinate range")
        raise BadRequest(f"{what} must be a JSON array of {width}-integer arrays like {example}")
    arr = arr.astype(np.int64, copy=False)
    bad = np.flatnonzero(((arr < MIN_I32) | (arr > MAX_I32)).any(axis=1))
    if bad.size:
        i = int(bad[0])
        raise BadRequest(f"{what}: item {i} {arr[i].tolist()} is outside the 32-bit coordinate range")
    return arr


def parse_spans(body: bytes) -> np.ndarray:
    """A ``POST /roi`` body: ``[[z, y, x0, x1], ...]`` as an (n, 4) int64 array; every span needs x0 <= x1."""
    spans = _int_rows(body, 4, "ROI spans", "[[z, y, x0, x1], ...]")
    bad = np.flatnonzero(spans[:, 3] < spans[:, 2])
    if bad.size:
        i = int(bad[0])
        raise BadRequest(
            f"ROI span {i} {spans[i].tolist()} has x1 < x0: spans are [z, y, x0, x1] with x0 <= x1"
        )
    # the key stores the run length as a u32: a run over all 2**32 x blocks does not fit
    bad = np.flatnonzero(spans[:, 3] - spans[:, 2] >= MAX_U32)
    if bad.size:
        i = int(bad[0])
        raise BadRequest(
            f"ROI span {i} {spans[i].tolist()} is too long: a span holds at most {MAX_U32} blocks"
            " (x1 - x0 < 4294967295)"
        )
    return spans


def parse_points(body: bytes) -> np.ndarray:
    """A ``POST /ptquery`` body: ``[[x, y, z], ...]`` voxel points as an (n, 3) int64 array."""
    return _int_rows(body, 3, "ptquery points", "[[x, y, z], ...]")


# ---- canonical order -------------------------------------------------------------------------


def canonical_spans(spans: np.ndarray) -> np.ndarray:
    """Spans sorted as DVID's keys sort (z, y, x0, run length) with exact duplicates collapsed."""
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 4)
    if len(spans) == 0:
        return spans
    order = np.lexsort((spans[:, 3], spans[:, 2], spans[:, 1], spans[:, 0]))
    s = spans[order]
    keep = np.ones(len(s), bool)
    keep[1:] = (s[1:] != s[:-1]).any(axis=1)
    return s[keep]


def spans_json(spans: np.ndarray) -> bytes:
    """``[[z,y,x0,x1],...]`` compact, as Go's json.Marshal writes it (``[]`` when empty)."""
    if len(spans) == 0:
        return b"[]"
    return json.dumps(np.asarray(spans).tolist(), separators=(",", ":")).encode()


# ---- membership ------------------------------------------------------------------------------


class SpanIndex:
    """Block membership against a set of spans, many blocks per call.

    Rows (z, y) are ranked; each span becomes the interval ``rank * 2**33 + (x + 2**31)`` of one
    int64 line, where rows can never touch; overlapping or adjacent intervals are merged, so a
    block is inside iff the last interval starting at or before it ends at or after it.
    """

    def __init__(self, spans: np.ndarray) -> None:
        spans = np.asarray(spans, dtype=np.int64).reshape(-1, 4)
        self.count = len(spans)
        if not len(spans):
            self.rows = np.zeros(0, np.int64)
            self.starts = self.ends = np.zeros(0, np.int64)
            return
        rowkey = _row_key(spans[:, 0], spans[:, 1])
        self.rows, rank = np.unique(rowkey, return_inverse=True)
        base = rank.reshape(-1).astype(np.int64) * _ROW_STRIDE
        starts = base + spans[:, 2] + _X_BIAS
        ends = base + spans[:, 3] + _X_BIAS
        order = np.argsort(starts, kind="stable")
        starts, ends = starts[order], ends[order]
        reach = np.maximum.accumulate(ends)
        new = np.ones(len(starts), bool)
        new[1:] = starts[1:] > reach[:-1] + 1
        group = np.cumsum(new) - 1
        self.starts = starts[new]
        self.ends = np.zeros(len(self.starts), np.int64)
        np.maximum.at(self.ends, group, ends)

    def contains(self, bx: np.ndarray, by: np.ndarray, bz: np.ndarray) -> np.ndarray:
        """Whether each block (bx[i], by[i], bz[i]) is covered by a span (bool array)."""
        bx, by, bz = (np.asarray(a, dtype=np.int64).reshape(-1) for a in (bx, by, bz))
        if not len(self.rows) or not len(bx):
            return np.zeros(len(bx), bool)
        key = _row_key(bz, by)
        rank = np.searchsorted(self.rows, key)
        found = rank < len(self.rows)
        found[found] = self.rows[rank[found]] == key[found]
        pos = rank * _ROW_STRIDE + bx + _X_BIAS
        i = np.searchsorted(self.starts, pos, side="right") - 1
        inside = found & (i >= 0)
        inside[inside] = pos[inside] <= self.ends[i[inside]]
        return inside

    def contains_points(self, points: np.ndarray, block_size: tuple[int, int, int]) -> np.ndarray:
        """Whether each voxel point (x, y, z) lies in a covered block (floor division by block size)."""
        pts = np.asarray(points, dtype=np.int64).reshape(-1, 3)
        blocks = pts // np.asarray(block_size, dtype=np.int64)
        return self.contains(blocks[:, 0], blocks[:, 1], blocks[:, 2])

    def block_grid(self, first: tuple[int, int, int], last: tuple[int, int, int]) -> np.ndarray:
        """A (nz, ny, nx) bool grid of the blocks ``first..last`` (inclusive, (x, y, z)): inside or not."""
        zs = np.arange(first[2], last[2] + 1, dtype=np.int64)
        ys = np.arange(first[1], last[1] + 1, dtype=np.int64)
        xs = np.arange(first[0], last[0] + 1, dtype=np.int64)
        z, y, x = np.meshgrid(zs, ys, xs, indexing="ij")
        return self.contains(x.ravel(), y.ravel(), z.ravel()).reshape(z.shape)


def _row_key(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(z, y) as one sortable int64: z and y are 32-bit, so ``(z << 32) + (y + 2**31)`` keeps order."""
    return (np.asarray(z, dtype=np.int64) << np.int64(32)) + (np.asarray(y, dtype=np.int64) + _X_BIAS)


def voxel_mask(
    index: SpanIndex,
    offset: tuple[int, int, int],
    size: tuple[int, int, int],
    block_size: tuple[int, int, int],
) -> np.ndarray:
    """A (nz, ny, nx) uint8 volume, 1 where the voxel's block is in the ROI, for the box at ``offset``."""
    axes = [
        np.arange(o, o + n, dtype=np.int64) // b for o, n, b in zip(offset, size, block_size, strict=True)
    ]
    first = tuple(int(a[0]) for a in axes)
    last = tuple(int(a[-1]) for a in axes)
    grid = index.block_grid(first, last).astype(np.uint8)  # type: ignore[arg-type]
    bx, by, bz = (a - f for a, f in zip(axes, first, strict=True))
    return grid[bz[:, None, None], by[None, :, None], bx[None, None, :]]


# ---- partition -------------------------------------------------------------------------------


def _tdiv(a: int, b: int) -> int:
    """Go's int32 division (truncating toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _tmod(a: int, b: int) -> int:
    """Go's ``%`` (sign of the dividend)."""
    return a - b * _tdiv(a, b)


class _Partition:
    def __init__(
        self, block_size: tuple[int, int, int], min_z: int, max_z: int, max_subvolumes: int | None = None
    ) -> None:
        self.max_subvolumes = max_subvolumes
        self.bs = block_size
        self.total = 0
        self.active = 0
        self.roi_min = [0, 0, min_z]
        self.roi_max = [0, 0, max_z]
        self.subvolumes: list[dict[str, Any]] = []

    def extend(self, dim: int, value: int) -> None:
        if value < self.roi_min[dim]:
            self.roi_min[dim] = value
        if value > self.roi_max[dim]:
            self.roi_max[dim] = value

    def append(self, lo: list[int], hi: list[int], total: int, active: int) -> None:
        if self.max_subvolumes is not None and len(self.subvolumes) >= self.max_subvolumes:
            raise PayloadTooLarge(
                f"partition has more than {self.max_subvolumes} subvolumes, above the server's in-memory"
                " response limit; use a larger batchsize"
            )
        self.subvolumes.append(self.subvolume(lo, hi, total, active))

    def subvolume(self, lo: list[int], hi: list[int], total: int, active: int) -> dict[str, Any]:
        bs = self.bs
        return {
            "MinPoint": [lo[i] * bs[i] for i in range(3)],
            "MaxPoint": [(hi[i] + 1) * bs[i] - 1 for i in range(3)],
            "MinChunk": list(lo),
            "MaxChunk": list(hi),
            "TotalBlocks": total,
            "ActiveBlocks": active,
        }

    def result(self) -> dict[str, Any]:
        return {
            "NumTotalBlocks": self.total,
            "NumActiveBlocks": self.active,
            "NumSubvolumes": len(self.subvolumes),
            "ROI": {"MinChunk": self.roi_min, "MaxChunk": self.roi_max},
            "Subvolumes": self.subvolumes,
        }


def _find_actives(runs: list[tuple[int, int, int, int]], a: int, b: int) -> int:
    n = 0
    for _, _, x0, x1 in runs:
        if x0 > b or x1 < a:
            continue
        n += min(b, x1) - max(a, x0) + 1
    return n


def _find_x_hole(runs: list[tuple[int, int, int, int]], a: int, b: int) -> tuple[int, int] | None:
    """The longest run of x in [a, b] that no run covers (the first of equal length), or None.

    Over the runs' intervals, not per block: a column can be 2**31 blocks wide."""
    segs = sorted((max(a, x0), min(b, x1)) for _, _, x0, x1 in runs if x0 <= b and x1 >= a)
    best: tuple[int, int] | None = None
    best_size = 0
    cur = a
    for lo, hi in segs:
        if lo > cur and lo - cur > best_size:
            best_size, best = lo - cur, (cur, lo - 1)
        cur = max(cur, hi + 1)
    if cur <= b and b - cur + 1 > best_size:
        best = (cur, b)
    return best


def _total(lo: list[int], hi: list[int]) -> int:
    return (hi[0] - lo[0] + 1) * (hi[1] - lo[1] + 1) * (hi[2] - lo[2] + 1)


def _layers(spans: np.ndarray, beg: int, end: int, bs: int, grow_extra: int | None):
    """DVID's layering: spans in key order, a new layer when z passes the layer end (advancing one layer)."""
    layer: list[tuple[int, int, int, int]] = []
    extra = grow_extra
    for z, y, x0, x1 in spans.tolist():
        if z > end:
            yield beg, end, layer
            beg, end = end + 1, end + bs
            if extra is not None and extra > 0:
                end += 1
                extra -= 1
            layer = []
        layer.append((z, y, x0, x1))
    if layer:
        yield beg, end, layer


def partition(
    spans: np.ndarray,
    block_size: tuple[int, int, int],
    min_z: int,
    max_z: int,
    batch: int,
    optimized: bool,
    max_subvolumes: int | None = None,
) -> dict[str, Any]:
    """DVID's ``/partition`` (both algorithms) over spans in key order; see the roi help text.

    Rows and columns without active blocks are skipped arithmetically (their totals still count),
    so the work is bounded by the subvolumes listed; more than ``max_subvolumes`` of them is a 413.
    """
    if not 0 < batch <= MAX_I32:
        raise BadRequest(f"batchsize must be a positive 32-bit integer, got {batch}")
    out = _Partition(block_size, min_z, max_z, max_subvolumes)
    dz = max_z - min_z + 1
    zleft = _tmod(dz, batch)
    if optimized:
        layers = _layers(spans, min_z, min_z + batch - 1, batch, zleft)
        for beg, end, layer in layers:
            _add_optimized(out, layer, beg, end, batch)
    else:
        beg = min_z - _tdiv(zleft, 2)
        for lbeg, lend, layer in _layers(spans, beg, beg + batch - 1, batch, None):
            _add_grid(out, layer, lbeg, lend, batch)
    return out.result()


def _add_grid(out: _Partition, layer: list, zbeg: int, zend: int, bs: int) -> None:
    ys = [r[1] for r in layer]
    min_y, max_y = min(ys), max(ys)
    out.extend(1, min_y)
    out.extend(1, max_y)
    yleft = _tmod(max_y - min_y + 1, bs)
    beg_y = min_y - _tdiv(yleft, 2)
    # rows y0 = beg_y + k*bs; only those holding runs do anything
    rows: dict[int, list] = {}
    for r in layer:
        rows.setdefault((r[1] - beg_y) // bs, []).append(r)
    col_total = bs * bs * (zend - zbeg + 1)
    for k in sorted(rows):
        y0 = beg_y + k * bs
        y1 = y0 + bs - 1
        actives = rows[k]
        min_x, max_x = min(r[2] for r in actives), max(r[3] for r in actives)
        out.extend(0, min_x)
        out.extend(0, max_x)
        xleft = _tmod(max_x - min_x + 1, bs)
        beg_x = min_x - _tdiv(xleft, 2)
        end_x = max_x + (xleft - _tdiv(xleft, 2))
        out.total += len(range(beg_x, end_x + 1, bs)) * col_total  # empty columns count too
        # the columns some run touches, as merged ranges of column indices, in x order
        cols = sorted(((r[2] - beg_x) // bs, (r[3] - beg_x) // bs) for r in actives)
        merged: list[list[int]] = []
        for c0, c1 in cols:
            if merged and c0 <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], c1)
            else:
                merged.append([c0, c1])
        for c0, c1 in merged:
            for c in range(c0, c1 + 1):
                x0 = beg_x + c * bs
                active = _find_actives(actives, x0, x0 + bs - 1)
                if active > 0:
                    out.append([x0, y0, zbeg], [x0 + bs - 1, y1, zend], col_total, active)
                out.active += active


def _next_covered(runs: list, x: int) -> int | None:
    """The smallest x' >= x that a run covers, or None."""
    best = None
    for r in runs:
        if r[3] >= x:
            p = max(r[2], x)
            if best is None or p < best:
                best = p
    return best


def _add_optimized(out: _Partition, layer: list, zbeg: int, zend: int, bs: int) -> None:
    ys = [r[1] for r in layer]
    min_y, max_y = min(ys), max(ys)
    out.extend(1, min_y)
    out.extend(1, max_y)
    yleft = _tmod(max_y - min_y + 1, bs)
    # rows start at min_y: the first ``yleft`` are bs + 1 high, the others bs; rows without runs
    # change nothing, so only those holding runs are visited
    tall = yleft * (bs + 1)
    rows: dict[int, list] = {}
    for r in layer:
        d = r[1] - min_y
        k = d // (bs + 1) if d < tall else yleft + (d - tall) // bs
        rows.setdefault(k, []).append(r)
    for k in sorted(rows):
        beg_y = min_y + k * (bs + 1) if k <= yleft else min_y + tall + (k - yleft) * bs
        end_y = beg_y + bs - 1 + (1 if k < yleft else 0)
        actives = rows[k]
        min_x, max_x = min(r[2] for r in actives), max(r[3] for r in actives)
        out.extend(0, min_x)
        out.extend(0, max_x)
        xleft = _tmod(max_x - min_x + 1, bs)
        beg_x = min_x
        while beg_x <= max_x:
            if xleft == 0:  # columns of bs from here on: skip those no run touches
                nxt = _next_covered(actives, beg_x)
                if nxt is None:
                    break
                beg_x += (nxt - beg_x) // bs * bs
            end_x = beg_x + bs - 1
            if xleft > 0:
                end_x += 1
                xleft -= 1
            lo, hi = [beg_x, beg_y, zbeg], [end_x, end_y, zend]
            hole = _find_x_hole(actives, beg_x, end_x)
            total = active = 0
            if hole is not None:
                hole_beg, hole_end = hole
                if hole_beg - 1 >= beg_x:
                    last = [hole_beg - 1, end_y, zend]
                    total = _total(lo, last)
                    active = _find_actives(actives, beg_x, hole_beg - 1)
                    if out.subvolumes:
                        prev = out.subvolumes[-1]
                        # DVID sets MaxPoint to the *first* voxel of the last chunk (kept as is)
                        prev["MaxPoint"] = [last[i] * out.bs[i] for i in range(3)]
                        prev["MaxChunk"] = last
                        prev["TotalBlocks"] += total
                        prev["ActiveBlocks"] += active
                    else:  # DVID would index subvolume -1 here; start the first subvolume instead
                        out.append(lo, last, total, active)
                beg_x = hole_end + 1
            else:
                total = _total(lo, hi)
                active = _find_actives(actives, beg_x, end_x)
                out.append(lo, hi, total, active)
                beg_x = end_x + 1
            out.active += active
            out.total += total
