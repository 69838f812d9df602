"""The pyramid of an image volume: ``NAME_1``, ``NAME_2``, ... hold its 2x-downsampled levels
(neuroglancer's convention), built by ``POST .../pyramid`` and kept current by every later write."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from dvid.datatype.base import Datatype
from dvid.datatype.common.geometry import Box, Point
from dvid.datatype.imageblk.read import ImageReads
from dvid.datatype.imageblk.settings import _compression_setting
from dvid.errors import BadRequest, NotFound
from dvid.jobs import Job
from dvid.storage.versioned import DataContext


class ImagePyramid(ImageReads):
    """Pyramid levels: each a sibling instance of the same type, read and written as any volume."""

    @property
    def pyramid_levels(self) -> int:
        return int(self.meta.properties.get("pyramid_levels", 0))

    def level_instance(self, level: int) -> ImagePyramid:
        """The instance that holds pyramid level ``level`` (this one at 0), or a 404."""
        if level == 0:
            return self
        if self.repo_access is None:
            raise NotFound("pyramid levels need the repo")
        inst = self.repo_access.sibling(f"{self.name}_{level}")
        if not isinstance(inst, ImagePyramid):
            raise BadRequest(f"instance {inst.name!r} is not an image volume")
        return inst

    def build_pyramid(
        self, ctx_for: Any, levels: int, node_uuid: str, box: Box | None = None, job: Job | None = None
    ) -> None:
        """Create (if needed) and fill levels 1..levels from this volume: over ``box`` (just written),
        else above every block stored at this version. Never over the extents' box: extents may
        span billions of empty blocks (a build over them never ended and took all memory). ``job``,
        if given, advances by one per level built."""
        src: ImagePyramid = self
        src_ctx = ctx_for(self)
        if box is None:
            coords = self.blocks.stored_coords(src_ctx)
            if len(coords):
                for level in range(1, levels + 1):
                    self._ensure_level(level, node_uuid)
                self._downsample_blocks(ctx_for, coords, levels, job)
            return
        region = box
        for level in range(1, levels + 1):
            dst = self._ensure_level(level, node_uuid)
            dst_ctx = ctx_for(dst)
            bs = dst.block_size
            # the half-resolution region, widened to whole blocks of the level
            lo: Point = (
                (region.offset[0] // 2) // bs[0] * bs[0],
                (region.offset[1] // 2) // bs[1] * bs[1],
                (region.offset[2] // 2) // bs[2] * bs[2],
            )
            hi: Point = (
                _ceil_div(_ceil_div(region.end[0], 2), bs[0]) * bs[0],
                _ceil_div(_ceil_div(region.end[1], 2), bs[1]) * bs[1],
                _ceil_div(_ceil_div(region.end[2], 2), bs[2]) * bs[2],
            )
            for dst_box in _tiles(lo, hi, bs):
                dst.downsample_from(src, src_ctx, dst_ctx, dst_box)
            if job is not None:
                job.advance()
            src, src_ctx, region = (
                dst,
                dst_ctx,
                Box(lo, (hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2])),
            )

    def downsample(self, vol: np.ndarray) -> np.ndarray:
        """One pyramid step: 2x2x2 mean with floor (label types override with a mode)."""
        from dvid.datatype.common.downsample import downsample_2x

        return downsample_2x(vol, self.voxel_kind)

    def _ensure_level(self, level: int, node_uuid: str) -> ImagePyramid:
        try:
            return self.level_instance(level)
        except NotFound:
            pass
        assert self.repo_access is not None
        s = self.settings
        factor = 2**level
        config = {
            "typename": self.type_name,
            "dataname": f"{self.name}_{level}",
            "BlockSize": ",".join(map(str, s.BlockSize)),
            "VoxelSize": ",".join(str(v * factor) for v in s.VoxelSize),
            "VoxelUnits": ",".join(s.VoxelUnits),
            "Background": str(s.Background),
            "versioned": "true" if self.versioned else "false",
            "Compression": _compression_setting(self.compression),
        }
        inst = self.repo_access.create_sibling(config, node_uuid)
        assert isinstance(inst, ImagePyramid)
        return inst

    def update_pyramid(self, ctx: DataContext, box: Box) -> None:
        """After a write to level 0, recompute the affected blocks of every pyramid level."""
        levels = self.pyramid_levels
        if levels and self.repo_access is not None:
            with contextlib.suppress(NotFound):  # a level deleted since the pyramid was built
                self.build_pyramid(self._sibling_ctx_factory(ctx), levels, "", box)

    def downsample_from(self, src: ImagePyramid, src_ctx: DataContext, ctx: DataContext, box: Box) -> None:
        """Fill ``box`` of this pyramid level from the twice-as-large box of the level below."""
        src_box = Box(
            tuple(2 * o for o in box.offset),  # type: ignore[arg-type]
            tuple(2 * s for s in box.size),  # type: ignore[arg-type]
        )
        self._grow_instance_extents(box)  # first, as in write()
        with self.pyramid_lock:
            data = src.downsample(src.blocks.read_box(src_ctx, src_box))
            self.commit_blocks(ctx, data, self.blocks.plan_write(box, data))

    def update_pyramid_blocks(self, ctx: DataContext, coords: list[Point]) -> None:
        """After rewriting the level-0 blocks ``coords`` (a merge or split), recompute just the
        blocks above them at every pyramid level: each level block from its 2x2x2 children."""
        levels = self.pyramid_levels
        if not levels or not coords or self.repo_access is None:
            return
        with contextlib.suppress(NotFound):  # a level deleted since the pyramid was built
            self._downsample_blocks(
                self._sibling_ctx_factory(ctx), np.asarray(coords, dtype=np.int64), levels
            )

    def _downsample_blocks(
        self, ctx_for: Any, coords: np.ndarray, levels: int, job: Job | None = None
    ) -> None:
        """Recompute, at every level 1..levels, the blocks above the level-0 blocks ``coords``."""
        src: ImagePyramid = self
        src_ctx = ctx_for(self)
        current = coords
        for level in range(1, levels + 1):
            dst = self.level_instance(level)
            dst_ctx = ctx_for(dst)
            current = np.unique(np.floor_divide(current, 2), axis=0)
            for dst_box in _block_row_boxes(current, dst.block_size):
                dst.downsample_from(src, src_ctx, dst_ctx, dst_box)
            if job is not None:
                job.advance()
            src, src_ctx = dst, dst_ctx

    def _sibling_ctx_factory(self, ctx: DataContext) -> Any:
        def ctx_for(inst: Datatype) -> DataContext:
            if inst is self:
                return ctx
            return inst.context(ctx.ancestry)

        return ctx_for


#: Pyramid work goes tile by tile (at most this many voxels across in x and y, whole blocks), so
#: building the levels of a large volume holds only a few tiles in memory.
PYRAMID_TILE = 512


def _block_row_boxes(coords: np.ndarray, block_size: Point) -> list[Box]:
    """Boxes covering the blocks ``coords`` (an (n, 3) array of x, y, z block coordinates): one
    box per run of x-consecutive blocks in a row."""
    if not len(coords):
        return []
    order = np.lexsort((coords[:, 0], coords[:, 1], coords[:, 2]))
    c = coords[order]
    breaks = np.flatnonzero((np.diff(c[:, 0]) != 1) | (np.diff(c[:, 1]) != 0) | (np.diff(c[:, 2]) != 0))
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks + 1, [len(c)]))
    bx, by, bz = block_size
    return [
        Box((int(c[i, 0]) * bx, int(c[i, 1]) * by, int(c[i, 2]) * bz), ((j - i) * bx, by, bz))
        for i, j in zip(starts.tolist(), ends.tolist(), strict=True)
    ]


def _tiles(lo: Point, hi: Point, block_size: Point) -> list[Box]:
    """Block-aligned boxes tiling ``[lo, hi)``: one block layer thick, up to PYRAMID_TILE wide."""
    step_x = max(block_size[0], PYRAMID_TILE // block_size[0] * block_size[0])
    step_y = max(block_size[1], PYRAMID_TILE // block_size[1] * block_size[1])
    return [
        Box((x, y, z), (min(step_x, hi[0] - x), min(step_y, hi[1] - y), block_size[2]))
        for z in range(lo[2], hi[2], block_size[2])
        for y in range(lo[1], hi[1], step_y)
        for x in range(lo[0], hi[0], step_x)
    ]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)
