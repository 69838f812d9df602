"""Writes to an image volume: boxes of voxels (any alignment, atomic, extents and pyramid kept
current), label edits of stored blocks, and the receive path of a raw POST body."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from dvid.datatype.common.blockstore import EXTENTS_TKEY, WritePlan
from dvid.datatype.common.geometry import Box, Point
from dvid.datatype.common.request import InstanceRequest
from dvid.datatype.common.sync import BlockChange
from dvid.datatype.imageblk.pyramid import ImagePyramid
from dvid.datatype.imageblk.settings import _extents_value, _grow
from dvid.errors import BadRequest
from dvid.storage.versioned import DataContext, VersionedBatch

#: Blocks at least this large are encoded while the rest of a raw POST body still arrives.
OVERLAP_MIN_BLOCK_BYTES = 1 << 20


class ImageWrites(ImagePyramid):
    """Writes to level 0 of an image volume, and from there to its pyramid levels."""

    def write(
        self, ctx: DataContext, box: Box, data: np.ndarray, plan: WritePlan | None = None, roi: Any = None
    ) -> None:
        """Store a box of voxels (any alignment), grow extents, and update pyramid levels.

        ``plan`` holds the blocks already encoded (e.g. in parallel by the handler), if given;
        ``roi`` (a :class:`~dvid.datatype.roi.RoiFilter`), if given, keeps only its blocks.
        """

        def also(batch: VersionedBatch) -> None:  # runs under the write lock, in the same batch
            old = self.version_extents(ctx)
            new = _grow(old, box)
            if new != old:
                batch.put(EXTENTS_TKEY, _extents_value(*new))

        if plan is None:
            plan = self.blocks.plan_write(box, data)
        if roi is not None:
            plan = roi.filter_plan(plan)
        # the instance's extents (metadata, another batch) grow first: whenever the server stops,
        # they cover every block stored
        self._grow_instance_extents(box)
        self.commit_blocks(ctx, data, plan, also=also)
        self.update_pyramid(ctx, box)

    def edit_blocks(
        self,
        ctx: DataContext,
        find_blocks: Callable[[DataContext], list[Point]],
        relabel: Callable[[Point, np.ndarray], np.ndarray | None],
    ) -> list[Point]:
        """Rewrite stored blocks (label edits: merge, split, area delete) and what listeners derive
        from them, atomically, then the pyramid above them; returns the blocks rewritten.

        Under the write lock: ``find_blocks(ctx)`` lists the blocks to edit (it may validate and
        raise: nothing is written then); ``relabel(coord, voxels)`` returns a block's new voxels, or
        None to leave it (it may raise too).
        """
        codec = self.blocks.codec
        with self.write_lock:
            written: list[BlockChange] = []
            for coord in find_blocks(ctx):
                stored = ctx.get(self.blocks.tkey(*coord))
                if stored is None:
                    raise BadRequest(f"block {tuple(coord)} of {self.name!r} holds no labels to edit")
                new = relabel(coord, codec.decode(stored))
                if new is not None:
                    written.append((coord, stored, codec.encode(new)))
            if written:
                self.blocks.commit_changes(ctx, written, changes=self._notifier(ctx))
        coords = [coord for coord, _, _ in written]
        self.update_pyramid_blocks(ctx, coords)
        return coords

    # ---- the receive path of a raw POST body -------------------------------------------------
    def _volume_view(self, buf: np.ndarray, box: Box) -> np.ndarray:
        """The voxels of ``box`` in a byte buffer of exactly their size."""
        return buf.view(self.fmt.dtype).reshape(self.fmt.array_shape(box.shape))

    def _block_layers(self, box: Box) -> list[int]:
        first, last = box.block_range(self.block_size)
        return list(range(first[2], last[2] + 1))

    async def _receive_and_encode(
        self, req: InstanceRequest, box: Box, buf: np.ndarray
    ) -> tuple[np.ndarray, WritePlan]:
        """Read the body straight into ``buf``, refusing a wrong length as it arrives.

        With large blocks (labels: 2 MiB each) every block layer is encoded in a worker thread as
        soon as its last byte has arrived, overlapping the receive; the workers spend their time in
        numpy copies and lz4, which release the GIL. With small blocks (uint8blk's 32 KiB) that
        overlap was measured slower (per-block GIL holds stall the event loop's receive), so their
        layers are encoded after the receive, in parallel.
        """
        expected = buf.nbytes
        data = self._volume_view(buf, box)
        need = f"{box.size} voxels of {self.voxel_kind} need {expected}"
        layers = self._block_layers(box)
        overlap = self.blocks.codec.block_nbytes >= OVERLAP_MIN_BLOCK_BYTES and len(layers) > 1
        row_bytes = expected // box.size[2]
        z0, z1, bsz = box.offset[2], box.offset[2] + box.size[2], self.block_size[2]
        layer_ends = [(min((bz + 1) * bsz, z1) - z0) * row_bytes for bz in layers]
        encoding: list[asyncio.Future[WritePlan]] = []
        received = 0
        try:
            async for chunk in req.body_chunks():
                end = received + len(chunk)
                if end > expected:
                    raise BadRequest(f"body holds more bytes than the {need}")
                buf[received:end] = np.frombuffer(chunk, dtype=np.uint8)
                received = end
                while overlap and len(encoding) < len(layers) and received >= layer_ends[len(encoding)]:
                    layer = layers[len(encoding)]
                    encoding.append(
                        asyncio.ensure_future(
                            asyncio.to_thread(self.blocks.plan_write, box, data, range(layer, layer + 1))
                        )
                    )
            if received != expected:
                raise BadRequest(f"body holds {received} bytes, but {need}")
        finally:
            done = await asyncio.gather(*encoding, return_exceptions=True)
        plan = await self._encode_layers(box, data, layers[len(encoding) :])
        for part in done:
            if isinstance(part, BaseException):
                raise part
            plan.merge(part)
        return data, plan

    async def _encode_layers(self, box: Box, data: np.ndarray, layers: list[int]) -> WritePlan:
        """Encode the whole blocks of the given block layers of a received volume in one worker
        thread per CPU, each taking a run of layers."""
        plan = WritePlan()
        if not layers:
            return plan
        workers = max(1, min(os.cpu_count() or 1, len(layers)))
        step = -(-len(layers) // workers)
        runs = [layers[i : i + step] for i in range(0, len(layers), step)]
        parts = await asyncio.gather(
            *(asyncio.to_thread(self.blocks.plan_write, box, data, range(r[0], r[-1] + 1)) for r in runs)
        )
        for part in parts:
            plan.merge(part)
        return plan
