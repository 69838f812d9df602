"""Geometry of voxel requests: DVID's ``<dims>/<size>/<offset>`` strings, boxes and block ranges.

Coordinates are (x, y, z); numpy arrays are (z, y, x) C-order. Voxel-to-block uses floor
division, so negative coordinates belong to negative blocks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from dvid.datatype.common.numbers import parse_decimal
from dvid.errors import BadRequest

Point = tuple[int, int, int]

#: dims string -> the axes the request spans (0 = x, 1 = y, 2 = z).
_DIMS = {
    "0_1": (0, 1), "xy": (0, 1),
    "0_2": (0, 2), "xz": (0, 2),
    "1_2": (1, 2), "yz": (1, 2),
    "0_1_2": (0, 1, 2), "xyz": (0, 1, 2), "vol": (0, 1, 2),
}  # fmt: skip


def parse_dims(text: str) -> tuple[int, ...]:
    """``0_1``/``xy``, ``0_2``/``xz``, ``1_2``/``yz``, ``0_1_2``/``vol`` (commas also accepted)."""
    dims = _DIMS.get(text.lower().replace(",", "_"))
    if dims is None:
        raise BadRequest(f'unknown dims "{text}": use 0_1 (xy), 0_2 (xz), 1_2 (yz) or 0_1_2 (a volume)')
    return dims


def parse_ints(text: str, count: int, what: str, *, positive: bool = False) -> tuple[int, ...]:
    """``count`` integers separated by ``_`` (or ``,``), e.g. ``"64_64_32"``."""
    parsed = [parse_decimal(p) for p in re.split(r"[_,]", text)]
    if len(parsed) != count or None in parsed:
        example = "_".join(["64"] * count)
        raise BadRequest(f'{what} must be {count} integers separated by "_" (e.g. {example}), got "{text}"')
    values = tuple(v for v in parsed if v is not None)
    if positive and any(v <= 0 for v in values):
        raise BadRequest(f'{what} must be positive in every dimension, got "{text}"')
    if any(abs(v) >= 2**31 for v in values):
        raise BadRequest(f'{what} is out of the 32-bit coordinate range: "{text}"')
    return values


def parse_block_list(text: str, what: str = "blocks") -> list[Point]:
    """``x1,y1,z1,x2,y2,z2,...``: block coordinates (32-bit integers), as (x, y, z) triples."""
    parsed = [parse_decimal(p) for p in text.split(",")] if text else []
    if None in parsed:
        raise BadRequest(f"{what} must be comma-separated integers x1,y1,z1,...: {text[:200]!r}")
    if len(parsed) % 3:
        raise BadRequest(f"{what} must list x,y,z triples (the count is not a multiple of 3)")
    values = [v for v in parsed if v is not None]
    if any(abs(v) >= 2**31 for v in values):
        raise BadRequest(f"{what} holds a coordinate outside the 32-bit range: {text[:200]!r}")
    return [(values[i], values[i + 1], values[i + 2]) for i in range(0, len(values), 3)]


@dataclass(frozen=True)
class Box:
    """An axis-aligned box of voxels: ``offset`` (x, y, z) and ``size`` (x, y, z), both inclusive-start."""

    offset: Point
    size: Point

    @property
    def end(self) -> Point:
        """One past the last voxel on each axis."""
        return (self.offset[0] + self.size[0], self.offset[1] + self.size[1], self.offset[2] + self.size[2])

    @property
    def shape(self) -> tuple[int, int, int]:
        """The numpy shape (z, y, x)."""
        return (self.size[2], self.size[1], self.size[0])

    @property
    def voxels(self) -> int:
        return self.size[0] * self.size[1] * self.size[2]

    def is_aligned(self, block_size: Point) -> bool:
        parts = zip(self.offset, self.size, block_size, strict=True)
        return all(o % b == 0 and s % b == 0 for o, s, b in parts)

    def block_range(self, block_size: Point) -> tuple[Point, Point]:
        """First and last (inclusive) block coordinates the box touches."""
        first = tuple(o // b for o, b in zip(self.offset, block_size, strict=True))
        last = tuple((e - 1) // b for e, b in zip(self.end, block_size, strict=True))
        return first, last  # type: ignore[return-value]

    def union(self, other: Box) -> Box:
        lo = tuple(min(a, b) for a, b in zip(self.offset, other.offset, strict=True))
        hi = tuple(max(a, b) for a, b in zip(self.end, other.end, strict=True))
        return Box(lo, tuple(h - lo_ for h, lo_ in zip(hi, lo, strict=True)))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Subvolume:
    """A parsed voxel request: the box, and which axes it spans (2 for a slice, 3 for a volume)."""

    box: Box
    dims: tuple[int, ...]

    @property
    def is_3d(self) -> bool:
        return len(self.dims) == 3


def parse_subvolume(dims_text: str, size_text: str, offset_text: str) -> Subvolume:
    """``raw/<dims>/<size>/<offset>``: a slice has two sizes (along its axes) and a 3-D offset."""
    dims = parse_dims(dims_text)
    sizes = parse_ints(size_text, len(dims), "size", positive=True)
    offset = parse_ints(offset_text, 3, "offset")
    size = [1, 1, 1]
    for axis, n in zip(dims, sizes, strict=True):
        size[axis] = n
    return Subvolume(Box(offset, (size[0], size[1], size[2])), dims)  # type: ignore[arg-type]


def iter_block_rows(first: Point, last: Point) -> Iterator[tuple[int, int]]:
    """``(by, bz)`` for every x-row of blocks in the range, in storage (z, y) order."""
    for bz in range(first[2], last[2] + 1):
        for by in range(first[1], last[1] + 1):
            yield by, bz
