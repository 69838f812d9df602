"""Inclusive voxel bounds of sparse-volume reads (``?minx=&maxx=&miny=&maxy=&minz=&maxz=``), as
labelvol and labelmap take them, and the block range they cover."""

from __future__ import annotations

from dvid.datatype.common.geometry import Point
from dvid.datatype.common.request import InstanceRequest
from dvid.datatype.common.route import query

_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1
BOUND_NAMES = ("minx", "maxx", "miny", "maxy", "minz", "maxz")
BOUNDS_QUERY = tuple(
    query(name, "integer", f"Inclusive voxel bound ({name[3]} {name[:3]}imum)") for name in BOUND_NAMES
)


class Bounds:
    """Inclusive voxel bounds from ``?minx=&maxx=...`` (None = unbounded), and their block range."""

    def __init__(self, values: dict[str, int | None], block_size: Point) -> None:
        self.values = values
        self.block_size = block_size
        self.any = any(v is not None for v in values.values())

    @classmethod
    def from_query(cls, req: InstanceRequest, block_size: Point) -> Bounds:
        values: dict[str, int | None] = {}
        for name in BOUND_NAMES:
            v = req.query_int(name)
            if v is not None:
                v = max(_I32_MIN, min(_I32_MAX, v))
            values[name] = v
        return cls(values, block_size)

    def block_limits(self, axis: int) -> tuple[int, int]:
        """Inclusive block range along an axis (floor division: right for negative bounds too)."""
        a = "xyz"[axis]
        lo, hi = self.values[f"min{a}"], self.values[f"max{a}"]
        size = self.block_size[axis]
        return (_I32_MIN if lo is None else lo // size), (_I32_MAX if hi is None else hi // size)

    def block_inside(self, coord: Point) -> bool:
        return all(lo <= c <= hi for c, (lo, hi) in zip(coord, map(self.block_limits, range(3)), strict=True))
