"""Reads of an image volume: slices as images, raw volumes streamed slab by slab or compressed
for the wire, and blocks as stored or uncompressed."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import numpy as np
from aiohttp import web

from dvid.datatype.common import envelope
from dvid.datatype.common.blockstore import BlockStore
from dvid.datatype.common.geometry import Box
from dvid.datatype.common.request import InstanceRequest, octet_response
from dvid.datatype.common.streaming import BodyStream
from dvid.datatype.common.wire import compress_wire
from dvid.datatype.imageblk.core import ImageCore
from dvid.errors import BadRequest
from dvid.storage.versioned import DataContext


class ImageReads(ImageCore):
    """Reads that any level of an image volume answers (the HTTP side is in ``handlers.py``)."""

    #: ``?compression=`` values a raw volume GET can answer with.
    output_compressions: ClassVar[tuple[str, ...]] = ("lz4", "gzip")

    def slice_image(self, ctx: DataContext, sub: Any, fmt: Any, isotropic: bool) -> bytes:
        """A 2-D slice encoded as an image (optionally resampled to square pixels)."""
        from dvid.datatype.common import imageio

        a, b = sub.dims
        box = sub.box
        res = self.settings.VoxelSize
        if isotropic and res[a] != res[b]:
            fine = min(res[a], res[b])
            size = list(box.size)
            for axis in (a, b):
                size[axis] = max(1, int(box.size[axis] * fine / res[axis] + 0.5))
            read = Box(box.offset, tuple(size))
            plane = _plane(self.blocks.read_box(ctx, read), sub.dims)
            plane = imageio.isotropic_resize(plane, box.size[b], box.size[a], self.interpolable)
        else:
            plane = _plane(self.blocks.read_box(ctx, box), sub.dims)
        return imageio.encode_slice(plane, self.voxel_kind, fmt)

    def _read_blocks_concatenated(self, ctx: DataContext, box: Box, span: int) -> bytes:
        row = self.blocks.read_box(ctx, box)  # (bz, by, span*bx)
        bx = self.block_size[0]
        parts = [np.ascontiguousarray(row[:, :, i * bx : (i + 1) * bx]) for i in range(span)]
        return b"".join(p.tobytes() for p in parts)

    def _block_payload(self, stored: bytes, compression: str) -> bytes:
        codec = self.blocks.codec
        if compression == "uncompressed":
            return codec.decode(stored).tobytes()
        if compression == "jpeg" and not codec.is_jpeg:
            raise BadRequest("compression=jpeg needs an instance stored with jpeg compression")
        return envelope.payload(stored)

    def compressed_volume_response(self, vol: np.ndarray, wire: str) -> web.Response:
        """A raw volume answered with ``?compression=`` (lz4 or gzip; label types add more)."""
        return octet_response(compress_wire(vol.data.cast("B"), wire))


def _plane(vol: np.ndarray, dims: tuple[int, ...]) -> np.ndarray:
    """The 2-D (rows, columns) plane of a one-voxel-thick read: xy -> (y, x), xz -> (z, x), yz -> (z, y)."""
    if dims == (0, 1):
        return vol[0]
    if dims == (0, 2):
        return vol[:, 0]
    return vol[:, :, 0]


#: Volumes up to this many bytes are read on the event loop: a thread hop costs more than the read.
INLINE_READ_BYTES = 256 << 10


async def stream_volume(
    req: InstanceRequest, blocks: BlockStore, ctx: DataContext, box: Box
) -> web.StreamResponse:
    """Send a volume as raw bytes, assembled slab by slab (one block layer of z) in a worker thread
    while the previous slab is written, so memory stays near two slabs whatever the volume size."""
    if box.voxels * blocks.codec.fmt.bytes_per_voxel <= INLINE_READ_BYTES and not ctx.remote:
        small = blocks.read_box(ctx, box)
        return web.Response(body=small.data.cast("B"), content_type="application/octet-stream")
    slabs = blocks.slabs(box)
    current = await asyncio.to_thread(blocks.read_box, ctx, slabs[0])  # errors here still get a status
    if len(slabs) == 1:
        return web.Response(body=current.data.cast("B"), content_type="application/octet-stream")
    resp = BodyStream()
    resp.content_type = "application/octet-stream"
    resp.content_length = box.voxels * blocks.codec.fmt.bytes_per_voxel
    await resp.prepare(req.request)
    for i in range(0 if resp.headers_only else len(slabs)):
        upcoming = (
            asyncio.ensure_future(asyncio.to_thread(blocks.read_box, ctx, slabs[i + 1]))
            if i + 1 < len(slabs)
            else None
        )
        try:
            await resp.write(current.data.cast("B"))
        except BaseException:
            if upcoming is not None:
                upcoming.cancel()
            raise
        if upcoming is not None:
            current = await upcoming
    await resp.write_eof()
    return resp
