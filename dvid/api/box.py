"""Boxes in z, y, x order: numpy-style indexes turned into boxes, and boxes cut into block-aligned pieces."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

Point = tuple[int, int, int]

#: DVID's voxel coordinates are 32-bit signed integers.
COORD_MIN, COORD_MAX = -(2**31), 2**31 - 1


@dataclass(frozen=True)
class Box:
    """The half-open box ``start <= p < stop``, points in (z, y, x) order."""

    start: Point
    stop: Point

    @property
    def shape(self) -> Point:
        z, y, x = (max(0, b - a) for a, b in zip(self.start, self.stop, strict=True))
        return z, y, x

    @property
    def voxels(self) -> int:
        return math.prod(self.shape)

    @property
    def empty(self) -> bool:
        return self.voxels == 0

    def raw_path(self) -> tuple[str, str]:
        """DVID's ``<size>/<offset>`` path segments (x, y, z order)."""
        (sz, sy, sx), (z, y, x) = self.shape, self.start
        return f"{sx}_{sy}_{sz}", f"{x}_{y}_{z}"

    def within(self, outer: Box) -> tuple[slice, slice, slice]:
        """The slices of an array holding ``outer`` that hold this box."""
        z, y, x = (slice(a - o, b - o) for a, b, o in zip(self.start, self.stop, outer.start, strict=True))
        return z, y, x


class BadIndex(IndexError):
    """A volume index that dvid.api refuses (see :func:`parse_index`)."""


def _bound(value: Any, axis: str, what: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise BadIndex(f"{axis} {what} must be an integer, got {value!r}")
    v = int(value)
    if v < 0:
        raise BadIndex(
            f"{axis} {what} {v} is negative: volume indexes are voxel coordinates, not counted from the"
            " end; use Volume.read(start, stop) for negative coordinates"
        )
    if v > COORD_MAX + 1:
        raise BadIndex(f"{axis} {what} {v} is beyond DVID's coordinate range (below 2^31)")
    return v


def has_open_bounds(key: Any) -> bool:
    """Whether a ``[z, y, x]`` index leaves a bound open (``:``, ``5:``, ``...`` or fewer than 3 items)."""
    items = key if isinstance(key, tuple) else (key,)
    if len(items) < 3 or Ellipsis in items:
        return True
    return any(isinstance(i, slice) and (i.start is None or i.stop is None) for i in items)


def parse_index(key: Any, shape: Point) -> tuple[Box, tuple[int, ...]]:
    """The box a ``[z, y, x]`` index selects, and the axes given as integers (dropped from the
    result, as numpy does). Open bounds go from 0 to ``shape``; steps, negative numbers (numpy's
    from-the-end has no meaning in an unbounded volume) and reversed bounds are refused."""
    items = key if isinstance(key, tuple) else (key,)
    if sum(item is Ellipsis for item in items) > 1:
        raise BadIndex("an index can only have a single ellipsis ('...')")
    if Ellipsis in items:
        i = items.index(Ellipsis)
        items = items[:i] + (slice(None),) * (3 - len(items) + 1) + items[i + 1 :]
    if len(items) > 3:
        raise BadIndex(f"too many indices for a 3-D volume: {len(items)} (give z, y, x)")
    items = items + (slice(None),) * (3 - len(items))
    start, stop, dropped = [], [], []
    for axis, (item, extent) in enumerate(zip(items, shape, strict=True)):
        name = "zyx"[axis]
        if isinstance(item, slice):
            if item.step not in (None, 1):
                raise BadIndex(f"{name}: steps are not supported (got step {item.step}); read, then slice")
            a = 0 if item.start is None else _bound(item.start, name, "start")
            b = extent if item.stop is None else _bound(item.stop, name, "stop")
            if b < a:
                raise BadIndex(f"{name}: stop {b} is before start {a}")
        else:
            a = _bound(item, name, "index")
            b = a + 1
            dropped.append(axis)
        start.append(a)
        stop.append(b)
    return Box((start[0], start[1], start[2]), (stop[0], stop[1], stop[2])), tuple(dropped)


def _cuts(start: int, stop: int, step: int | None) -> list[tuple[int, int]]:
    """``[start, stop)`` cut at the multiples of ``step`` (None: not cut)."""
    if step is None:
        return [(start, stop)]
    first = start // step * step
    return [(max(start, a), min(stop, a + step)) for a in range(first, stop, step)]


def aligned_pieces(box: Box, block: Point, itemsize: int, target_bytes: int) -> list[Box]:
    """``box`` cut at block boundaries into pieces of at most ~``target_bytes`` (at least one block
    each): whole y-x planes of a few block rows deep when they fit, else whole x rows, else blocks.
    Pieces never share a block, so they can be written concurrently."""
    if box.empty:
        return []
    (bz, by, bx), (_, ny, nx) = block, box.shape
    steps: list[int | None]
    if bz * ny * nx * itemsize <= target_bytes:
        steps = [max(1, target_bytes // (bz * ny * nx * itemsize)) * bz, None, None]
    elif bz * by * nx * itemsize <= target_bytes:
        steps = [bz, max(1, target_bytes // (bz * by * nx * itemsize)) * by, None]
    else:
        steps = [bz, by, max(1, target_bytes // (bz * by * bx * itemsize)) * bx]
    per_axis = [_cuts(box.start[a], box.stop[a], steps[a]) for a in range(3)]
    return [Box((z[0], y[0], x[0]), (z[1], y[1], x[1])) for z, y, x in itertools.product(*per_axis)]
