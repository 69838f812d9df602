"""labelmap's voxel endpoints: volume reads as bodies or supervoxels at any scale, block streams
out and in (``blocks``, ``specificblocks``, ``POST blocks``, ``ingest-supervoxels``) and raw POSTs."""

from __future__ import annotations

import asyncio
import copy
import struct
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

from aiohttp import web

from dvid.datatype.common.blockstore import frame_block
from dvid.datatype.common.geometry import Box, Point, parse_block_list, parse_subvolume
from dvid.datatype.common.labels import GOOGLEGZIP_LEVEL
from dvid.datatype.common.request import InstanceRequest
from dvid.datatype.common.streaming import stream_pieces
from dvid.datatype.common.wire import compress_wire
from dvid.datatype.labelmap.blocks import MAX_BLOCK_BYTES
from dvid.datatype.labelmap.core import LabelMapCore
from dvid.errors import BadRequest
from dvid.storage.versioned import DataContext

#: ``compression=`` values of labelmap block streams.
BLOCK_STREAM_COMPRESSIONS = ("", "lz4", "gzip", "blocks", "uncompressed")
#: Blocks of a POST blocks stream committed per atomic batch.
INGEST_BATCH_BLOCKS = 64
_FRAME = struct.Struct("<iiiI")


class LabelMapVoxels(LabelMapCore):
    """Voxel reads and writes over :class:`LabelMapCore`."""

    # ---- which scale and labels a read sees ----------------------------------------------------
    def _scale(self, req: InstanceRequest) -> int:
        scale = req.query_int("scale", 0) or 0
        if not 0 <= scale <= 255:
            raise BadRequest(f"scale must be between 0 and 255, got {scale}")
        return scale

    def _target(self, req: InstanceRequest) -> tuple[Any, DataContext]:
        """The view (scale, bodies or supervoxels) a read of ``req`` goes through."""
        return self.view(req.ctx, self._scale(req), req.query_bool("supervoxels")), req.ctx

    def _masked(self, req: InstanceRequest, inst: Any) -> Any:
        roi = self._roi_filter(req)
        if roi is None:
            return inst
        if inst.scale != 0:
            raise BadRequest("roi masking applies to scale 0 only")
        masked = copy.copy(inst)
        masked.blocks = roi.masked_store(inst.blocks)
        return masked

    def cutout_metadata(self, req: InstanceRequest, inst: Any, box: Box) -> dict[str, Any]:
        """As the image types', with the scale read (its voxel size) and bodies or supervoxels."""
        meta = super().cutout_metadata(req, inst, box)
        meta["voxel_size"] = [v * 2**inst.scale for v in meta["voxel_size"]]
        meta["scale"] = inst.scale
        meta["supervoxels"] = bool(inst.supervoxels)
        return meta

    # ---- raw GET: neuroglancer's chunk of one block, transcoded -----------------------------------
    async def handle_get_raw(self, req: InstanceRequest) -> web.StreamResponse:
        """As the image types' raw GET, except that a google/googlegzip read of exactly one stored
        block (neuroglancer's chunk, when its chunk size is the block size) is transcoded from the
        compressed Block's palettes, never decoded into voxels."""
        one = self._one_block_google(req)
        if one is not None:
            inst, ctx, coord, wire = one
            stored = await req.small(ctx.get, inst.blocks.tkey(*coord))
            if stored is not None:
                body = await asyncio.to_thread(_google_body, inst.label_codec, stored, wire)
                headers = {"Content-Encoding": "gzip"} if wire == "googlegzip" else None
                return web.Response(body=body, content_type="application/octet-stream", headers=headers)
        return await super().handle_get_raw(req)

    def _one_block_google(self, req: InstanceRequest) -> tuple[Any, DataContext, Point, str] | None:
        """(view, context, block, wire) when ``req`` reads one whole block as google or googlegzip
        without an roi; None otherwise (the general path then answers, errors included)."""
        wire = req.query.get("compression", "")
        plain = "roi" not in req.query and "format" not in req.query
        if wire not in ("google", "googlegzip") or len(req.args) != 3 or not plain:
            return None
        try:
            sub = parse_subvolume(req.args[0], req.args[1], req.args[2])
            inst, ctx = self._target(req)
        except BadRequest:
            return None
        bs = inst.block_size
        if not sub.is_3d or tuple(sub.box.size) != tuple(bs) or not sub.box.is_aligned(bs):
            return None
        coord = (sub.box.offset[0] // bs[0], sub.box.offset[1] // bs[1], sub.box.offset[2] // bs[2])
        return inst, ctx, coord, wire

    # ---- raw POST: one mutation id per request --------------------------------------------------
    async def handle_post_raw(self, req: InstanceRequest) -> web.StreamResponse:
        self.new_mutation_id()
        return await super().handle_post_raw(req)

    # ---- block streams out -----------------------------------------------------------------------
    @staticmethod
    def _stream_compression(req: InstanceRequest, default: str) -> str:
        compression = req.query.get("compression", default)
        if compression not in BLOCK_STREAM_COMPRESSIONS:
            raise BadRequest(
                "compression for labelmap blocks must be lz4, gzip, blocks or uncompressed,"
                f' got "{compression}"'
            )
        return compression or "lz4"

    @staticmethod
    def _stream_payload(inst: Any, stored: bytes, compression: str) -> bytes:
        label_codec = inst.label_codec
        if compression == "blocks":
            return label_codec.wire_blocks_payload(stored)
        voxels = label_codec.decode(stored)
        if compression == "uncompressed":
            return voxels.tobytes()
        return compress_wire(memoryview(voxels).cast("B"), compression)

    async def handle_label_blocks(self, req: InstanceRequest) -> web.StreamResponse:
        box = self.aligned_box(req)
        compression = self._stream_compression(req, "lz4")
        inst, ctx = self._target(req)
        req.limits.check_voxels(box.voxels)
        first, last = box.block_range(inst.block_size)

        def pieces() -> Iterator[bytes]:
            for coord, stored in inst.blocks.iter_stored(ctx, first, last):
                yield frame_block(coord, self._stream_payload(inst, stored, compression))

        return await stream_pieces(req, "application/octet-stream", pieces())

    async def handle_specificblocks(self, req: InstanceRequest) -> web.StreamResponse:
        coords = parse_block_list(req.query.get("blocks", ""))
        compression = self._stream_compression(req, "blocks")
        inst, ctx = self._target(req)
        prefetch = req.query_bool("prefetch")

        def pieces() -> Iterator[bytes]:
            for coord in coords:
                stored = ctx.get(inst.blocks.tkey(*coord))
                if stored is not None and not prefetch:
                    yield frame_block(coord, self._stream_payload(inst, stored, compression))

        return await stream_pieces(req, "application/octet-stream", pieces())

    # ---- block streams in ------------------------------------------------------------------------
    async def handle_post_label_blocks(self, req: InstanceRequest) -> web.StreamResponse:
        scale = self._scale(req)
        downres = req.query_bool("downres")
        if downres and scale:
            raise BadRequest("downres=true needs scale 0: the pyramid is computed from scale 0")
        index = scale == 0 and not req.query_bool("noindexing")
        self.new_mutation_id()
        await self._ingest_stream(req, scale, index=index, derived=scale == 0, downres=downres)
        return web.Response()

    async def handle_ingest_supervoxels(self, req: InstanceRequest) -> web.StreamResponse:
        await self._ingest_stream(req, self._scale(req), index=False, derived=False, downres=False)
        return web.Response()

    async def _ingest_stream(
        self, req: InstanceRequest, scale: int, *, index: bool, derived: bool, downres: bool
    ) -> None:
        """Store the Blocks of a framed stream in atomic batches of INGEST_BATCH_BLOCKS as they
        arrive. ``index``: update label indexes (and listeners); ``derived``: extents and max
        labels; ``downres``: the pyramid above the blocks once all are stored."""
        target = self.at_scale(scale)
        pending: list[tuple[Point, bytes]] = []
        written: list[Point] = []
        seen = 0
        async for coord, payload in _frames(req.body_chunks()):
            seen += 1
            pending.append((coord, payload))
            if len(pending) >= INGEST_BATCH_BLOCKS:
                batch, pending = pending, []
                written += await asyncio.to_thread(target.store_blocks, req.ctx, batch, index, derived)
        if pending:
            written += await asyncio.to_thread(target.store_blocks, req.ctx, pending, index, derived)
        if not seen:
            raise BadRequest("POST blocks needs at least one block in its body")
        if downres and written:
            await asyncio.to_thread(self.update_pyramid_blocks, req.ctx, written)


def _google_body(label_codec: Any, stored: bytes, wire: str) -> bytes:
    body = label_codec.google(stored)
    return zlib.compress(body, GOOGLEGZIP_LEVEL, wbits=31) if wire == "googlegzip" else body


async def _frames(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[Point, bytes]]:
    """``(block coordinate, payload)`` of each record of a framed block stream, as it arrives."""
    buf = bytearray()
    async for chunk in chunks:
        buf += chunk
        pos = 0
        while len(buf) - pos >= _FRAME.size:
            bx, by, bz, n = _FRAME.unpack_from(buf, pos)
            if n == 0:
                raise BadRequest(f"block ({bx}, {by}, {bz}) of the stream has a zero-length payload")
            if n > MAX_BLOCK_BYTES:
                raise BadRequest(
                    f"block ({bx}, {by}, {bz}) of the stream claims {n} bytes, too many for a Block"
                )
            if len(buf) - pos - _FRAME.size < n:
                break
            start = pos + _FRAME.size
            yield (bx, by, bz), bytes(buf[start : start + n])
            pos = start + n
        del buf[:pos]
    if buf:
        raise BadRequest(f"the block stream ends inside a record ({len(buf)} bytes left over)")
