"""The literal per-block partition (as dvid first had it, one step per block): the oracle of
test_roi_spans' equivalence test of dvid.datatype.common.spans.partition. Not a test module."""

from __future__ import annotations

from typing import Any

import numpy as np

from dvid.errors import BadRequest

# ---- partition -------------------------------------------------------------------------------


def _tdiv(a: int, b: int) -> int:
    """Go's int32 division (truncating toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _tmod(a: int, b: int) -> int:
    """Go's ``%`` (sign of the dividend)."""
    return a - b * _tdiv(a, b)


class _Partition:
    def __init__(self, block_size: tuple[int, int, int], min_z: int, max_z: int) -> None:
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
    """The longest run of x in [a, b] that no run covers (the first of equal length), or None."""
    used = bytearray(b - a + 1)
    for _, _, x0, x1 in runs:
        if x0 > b or x1 < a:
            continue
        lo, hi = max(a, x0), min(b, x1)
        used[lo - a : hi - a + 1] = b"\x01" * (hi - lo + 1)
    best: tuple[int, int] | None = None
    best_size = 0
    start = None
    for i in range(len(used) + 1):
        if i < len(used) and not used[i]:
            if start is None:
                start = i
            continue
        if start is not None:
            if i - start > best_size:
                best_size, best = i - start, (a + start, a + i - 1)
            start = None
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
    spans: np.ndarray, block_size: tuple[int, int, int], min_z: int, max_z: int, batch: int, optimized: bool
) -> dict[str, Any]:
    """DVID's ``/partition`` (both algorithms) over spans in key order; see the roi help text."""
    if batch <= 0:
        raise BadRequest(f"batchsize must be a positive integer, got {batch}")
    out = _Partition(block_size, min_z, max_z)
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
    end_y = max_y + (yleft - _tdiv(yleft, 2))
    for y0 in range(beg_y, end_y + 1, bs):
        y1 = y0 + bs - 1
        actives = [r for r in layer if y0 <= r[1] <= y1]
        if not actives:
            continue
        min_x, max_x = min(r[2] for r in actives), max(r[3] for r in actives)
        out.extend(0, min_x)
        out.extend(0, max_x)
        xleft = _tmod(max_x - min_x + 1, bs)
        beg_x = min_x - _tdiv(xleft, 2)
        end_x = max_x + (xleft - _tdiv(xleft, 2))
        for x0 in range(beg_x, end_x + 1, bs):
            lo, hi = [x0, y0, zbeg], [x0 + bs - 1, y1, zend]
            total = _total(lo, hi)
            active = _find_actives(actives, x0, x0 + bs - 1)
            if active > 0:
                out.subvolumes.append(out.subvolume(lo, hi, total, active))
            out.active += active
            out.total += total


def _add_optimized(out: _Partition, layer: list, zbeg: int, zend: int, bs: int) -> None:
    ys = [r[1] for r in layer]
    min_y, max_y = min(ys), max(ys)
    out.extend(1, min_y)
    out.extend(1, max_y)
    yleft = _tmod(max_y - min_y + 1, bs)
    beg_y = min_y
    while beg_y <= max_y:
        end_y = beg_y + bs - 1
        if yleft > 0:
            end_y += 1
            yleft -= 1
        actives = [r for r in layer if beg_y <= r[1] <= end_y]
        if actives:
            min_x, max_x = min(r[2] for r in actives), max(r[3] for r in actives)
            out.extend(0, min_x)
            out.extend(0, max_x)
            xleft = _tmod(max_x - min_x + 1, bs)
            beg_x = min_x
            while beg_x <= max_x:
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
                            out.subvolumes.append(out.subvolume(lo, last, total, active))
                    beg_x = hole_end + 1
                else:
                    total = _total(lo, hi)
                    active = _find_actives(actives, beg_x, end_x)
                    out.subvolumes.append(out.subvolume(lo, hi, total, active))
                    beg_x = end_x + 1
                out.active += active
                out.total += total
        beg_y = end_y + 1
