"""The HTTP API of the imageblk family: :class:`ImageBlk`, its route table and handlers.

The handlers parse and check requests, then call the model of the layers below (``core.py``,
``read.py``, ``pyramid.py``, ``write.py``) in worker threads; byte formats are in the help text.
"""

from __future__ import annotations

import asyncio
import copy
import math
from typing import Any, ClassVar

import numpy as np
from aiohttp import web

from dvid.datatype.base import Route
from dvid.datatype.common import cutout, jsonio
from dvid.datatype.common.blockstore import EXTENTS_TKEY, frame_block
from dvid.datatype.common.buffers import VOLUME_BUFFERS
from dvid.datatype.common.geometry import Box, Point, parse_block_list, parse_ints, parse_subvolume
from dvid.datatype.common.request import InstanceRequest, json_response, octet_response
from dvid.datatype.common.route import BINARY, BLOCK_COORD, JSON, OFFSET, SIZE3, Param
from dvid.datatype.common.streaming import stream_pieces
from dvid.datatype.common.wire import INPUT_COMPRESSIONS, gunzip_body, lz4_decompress_into, wire_compression
from dvid.datatype.imageblk.params import (
    BLOCK_COMPRESSION,
    ND_JSON,
    RAWKEY_QUERY,
    READ_QUERY,
    SCALE,
    SPAN,
    SPECIFIC_QUERY,
    VOLUME_DIMS,
    VOXEL_OUTPUT,
    VOXELS_ARGS,
    WRITE_QUERY,
)
from dvid.datatype.imageblk.pyramid import ImagePyramid
from dvid.datatype.imageblk.read import stream_volume
from dvid.datatype.imageblk.settings import _extents_value
from dvid.datatype.imageblk.write import ImageWrites
from dvid.errors import BadRequest
from dvid.storage.versioned import DataContext


class ImageBlk(ImageWrites):
    """Shared implementation; subclasses fix the voxel kind (``types.py``)."""

    routes: ClassVar[tuple[Route, ...]] = (
        Route("metadata", ("GET", "HEAD"), "handle_metadata", mutates=False,
              summary="The volume's axes and properties", produces=(ND_JSON,)),
        Route("extents", ("GET", "HEAD"), "handle_get_extents", mutates=False,
              summary="The extents written at this version"),
        Route("extents", ("POST",), "handle_post_extents", summary="Replace the extents",
              consumes=(JSON,), produces=()),
        Route("resolution", ("POST",), "handle_post_resolution", summary="Replace the voxel size",
              consumes=(JSON,), produces=()),
        Route("rawkey", ("GET",), "handle_rawkey", mutates=False,
              summary="The storage key of the block holding a voxel", query=RAWKEY_QUERY),
        Route("raw", ("GET", "HEAD"), "handle_get_raw", mutates=False, heavy=True,
              summary="A slice as an image, or a volume as raw voxels", args=VOXELS_ARGS,
              query=READ_QUERY, produces=VOXEL_OUTPUT, statuses=(406,)),
        Route("raw", ("POST",), "handle_post_raw", heavy=True, summary="Store a volume of voxels",
              args=(VOLUME_DIMS, SIZE3, OFFSET), query=WRITE_QUERY, consumes=(BINARY,), produces=()),
        Route("isotropic", ("GET", "HEAD"), "handle_get_isotropic", mutates=False, heavy=True,
              summary="As raw, slices resampled to square pixels", args=VOXELS_ARGS,
              query=READ_QUERY, produces=VOXEL_OUTPUT, statuses=(406,)),
        Route("blocks", ("GET",), "handle_get_blocks", mutates=False, heavy=True,
              summary="Whole blocks along x, uncompressed and concatenated", args=(BLOCK_COORD, SPAN),
              produces=(BINARY,)),
        Route("blocks", ("POST",), "handle_post_blocks", heavy=True,
              summary="Store whole uncompressed blocks along x", args=(BLOCK_COORD, SPAN),
              consumes=(BINARY,), produces=()),
        Route("subvolblocks", ("GET",), "handle_subvolblocks", mutates=False, heavy=True,
              summary="The stored blocks of a block-aligned box, framed", args=(SIZE3, OFFSET),
              query=(BLOCK_COMPRESSION, SCALE), produces=(BINARY,)),
        Route("specificblocks", ("GET",), "handle_specificblocks", mutates=False, heavy=True,
              summary="The listed blocks, framed", query=SPECIFIC_QUERY, produces=(BINARY,)),
        Route("pyramid", ("POST",), "handle_pyramid", heavy=True,
              summary="Build and keep current the 2x downsampled levels NAME_1 ... NAME_N",
              query=(Param("levels", "integer", "Number of levels", minimum=1, maximum=16),)),
    )  # fmt: skip

    # ---- handlers ----------------------------------------------------------------------------
    def _target(self, req: InstanceRequest) -> tuple[ImagePyramid, DataContext]:
        scale = req.query_int("scale", 0) or 0
        if scale < 0:
            raise BadRequest(f"scale must be 0 or positive, got {scale}")
        inst = self.level_instance(scale) if scale else self
        return inst, (req.ctx if inst is self else req.context_for(inst))

    def _roi_filter(self, req: InstanceRequest, *, for_write: bool = False) -> Any:
        """The ``?roi=<name>[&attenuation=n]`` filter of a request (None without ``roi``)."""
        from dvid.datatype.roi import RoiFilter

        return RoiFilter.from_request(req, self, for_write=for_write)

    def _masked(self, req: InstanceRequest, inst: ImagePyramid) -> ImagePyramid:
        """``inst`` reading through the request's ``?roi=`` mask (``inst`` itself without one)."""
        roi = self._roi_filter(req)
        if roi is None:
            return inst
        if inst is not self:
            raise BadRequest("roi masking applies to scale 0 only")
        masked = copy.copy(inst)  # a shallow twin whose reads go through the masking block store
        masked.blocks = roi.masked_store(inst.blocks)
        return masked

    async def handle_metadata(self, req: InstanceRequest) -> web.StreamResponse:
        ext = self.version_extents(req.ctx) or self.instance_extents()
        axes = []
        for i, label in enumerate("XYZ"):
            size = ext[1][i] - ext[0][i] + 1 if ext else 0
            s = self.settings
            axes.append({
                "Label": label, "Resolution": s.VoxelSize[i], "Units": s.VoxelUnits[i],
                "Size": size, "Offset": ext[0][i] if ext else 0,
            })  # fmt: skip
        body = jsonio.dumps({"Axes": axes, "Properties": self.extended_info()})
        return web.Response(body=body, content_type="application/vnd.dvid-nd-data+json")

    async def handle_get_extents(self, req: InstanceRequest) -> web.StreamResponse:
        ext = self.version_extents(req.ctx)
        return json_response(
            {"MinPoint": list(ext[0]) if ext else None, "MaxPoint": list(ext[1]) if ext else None}
        )

    async def handle_post_extents(self, req: InstanceRequest) -> web.StreamResponse:
        body = await req.json_object()
        points = (body.get("MinPoint"), body.get("MaxPoint"))
        if not all(
            isinstance(p, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in p)
            for p in points
        ):
            raise BadRequest('extents body must be {"MinPoint": [x,y,z], "MaxPoint": [x,y,z]} (integers)')
        lo, hi = tuple(points[0]), tuple(points[1])  # type: ignore[arg-type]
        if len(lo) != 3 or len(hi) != 3 or any(a > b for a, b in zip(lo, hi, strict=True)):
            raise BadRequest("extents need 3-D MinPoint <= MaxPoint")
        if any(abs(v) >= 2**31 for v in (*lo, *hi)):
            raise BadRequest("extents must be 32-bit voxel coordinates")
        req.ctx.put(EXTENTS_TKEY, _extents_value(lo, hi))
        self.meta.properties["extents"] = [list(lo), list(hi)]
        self.save()
        return web.Response()

    async def handle_post_resolution(self, req: InstanceRequest) -> web.StreamResponse:
        body = await req.json()
        numbers = isinstance(body, list) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in body
        )
        if not (numbers and len(body) == 3 and all(math.isfinite(v) and v > 0 for v in body)):
            raise BadRequest("resolution body must be a JSON array of 3 positive numbers, e.g. [8, 8, 8]")
        self.settings.VoxelSize = tuple(float(v) for v in body)  # type: ignore[assignment]
        self.meta.properties["settings"] = self.settings.model_dump(mode="json")
        self.save()
        return web.Response()

    async def handle_rawkey(self, req: InstanceRequest) -> web.StreamResponse:
        try:
            point = [int(req.query[a]) for a in ("x", "y", "z")]
        except (KeyError, ValueError):
            raise BadRequest("rawkey needs integer query parameters x, y and z") from None
        coord = [p // b for p, b in zip(point, self.block_size, strict=True)]
        from dvid.storage import keys

        key = keys.data_key(self.meta.instance_id, self.blocks.tkey(*coord), req.ctx.version)
        return json_response({"Key": key.hex()})

    async def handle_get_raw(self, req: InstanceRequest) -> web.StreamResponse:
        return await self._get_voxels(req, isotropic=False)

    async def handle_get_isotropic(self, req: InstanceRequest) -> web.StreamResponse:
        return await self._get_voxels(req, isotropic=True)

    async def _get_voxels(self, req: InstanceRequest, *, isotropic: bool) -> web.StreamResponse:
        from dvid.datatype.common import imageio

        if len(req.args) < 3:
            raise BadRequest(f"expect <dims>/<size>/<offset> after '{req.endpoint}'")
        sub = parse_subvolume(req.args[0], req.args[1], req.args[2])
        fmt_text = req.args[3] if len(req.args) > 3 else None
        inst, ctx = self._target(req)
        inst = self._masked(req, inst)
        req.limits.check_voxels(sub.box.voxels)
        if "format" in req.query and (fmt_text or not sub.is_3d):
            raise BadRequest(
                "?format= chooses a volume's file format: not with a slice or an image path part"
            )
        if sub.is_3d:
            cutout_format = (
                None if fmt_text else cutout.requested(req.query, req.request.headers.get("Accept"))
            )
            if cutout_format is not None:
                return await self._cutout_response(req, inst, ctx, sub.box, cutout_format)
            if fmt_text:
                fmt = imageio.parse_image_format(fmt_text)
                if fmt.kind != "jpeg" or inst.voxel_kind != "uint8":
                    raise BadRequest("a volume is sent as raw bytes, as a file (?format=) or (uint8) as /jpg")
                req.limits.check_in_memory(sub.box.voxels)
                vol = await asyncio.to_thread(inst.blocks.read_box, ctx, sub.box)
                body = await asyncio.to_thread(imageio.encode_volume_jpeg, vol, fmt.quality)
                return web.Response(body=body, content_type=fmt.content_type)
            wire = wire_compression(req, self.output_compressions)
            if wire:
                req.limits.check_in_memory(sub.box.voxels * inst.fmt.bytes_per_voxel)
                vol = await asyncio.to_thread(inst.blocks.read_box, ctx, sub.box)
                return await asyncio.to_thread(self.compressed_volume_response, vol, wire)
            return await stream_volume(req, inst.blocks, ctx, sub.box)
        fmt = imageio.parse_image_format(fmt_text)
        req.limits.check_in_memory(sub.box.voxels * inst.fmt.bytes_per_voxel)
        body = await asyncio.to_thread(inst.slice_image, ctx, sub, fmt, isotropic)
        return web.Response(body=body, content_type=fmt.content_type)

    def cutout_metadata(self, req: InstanceRequest, inst: Any, box: Box) -> dict[str, Any]:
        """What a cutout file says of its voxels besides the array (see ``common/cutout.py``)."""
        settings = inst.settings
        return {
            "instance": inst.name,
            "uuid": req.uuid,
            "offset": list(box.offset),
            "voxel_size": [float(v) for v in settings.VoxelSize],
            "voxel_units": list(settings.VoxelUnits),
        }

    async def _cutout_response(
        self, req: InstanceRequest, inst: Any, ctx: DataContext, box: Box, fmt: cutout.CutoutFormat
    ) -> web.Response:
        """A volume as a cutout file, read and encoded in a worker thread (the whole box in memory)."""
        req.limits.check_in_memory(box.voxels * inst.fmt.bytes_per_voxel)
        meta = self.cutout_metadata(req, inst, box)

        def build() -> bytes | memoryview:
            return cutout.encode(fmt, inst.blocks.read_box(ctx, box), meta)

        body = await asyncio.to_thread(build)
        name = cutout.filename(fmt, meta["instance"], box.size, box.offset)
        headers = {"Content-Disposition": f'attachment; filename="{name}"', "Vary": "Accept"}
        return web.Response(body=body, content_type=fmt.media_type, headers=headers)

    async def handle_post_raw(self, req: InstanceRequest) -> web.StreamResponse:
        if len(req.args) < 3:
            raise BadRequest("expect raw/0_1_2/<size>/<offset> for a POST")
        sub = parse_subvolume(req.args[0], req.args[1], req.args[2])
        if not sub.is_3d:
            raise BadRequest("only 3-D volumes (raw/0_1_2/...) can be stored")
        roi = self._roi_filter(req, for_write=True)
        if req.query_int("scale", 0):
            raise BadRequest("write to the pyramid level's own instance (NAME_N) rather than with scale=")
        req.limits.check_voxels(sub.box.voxels)
        expected = sub.box.voxels * self.fmt.bytes_per_voxel
        req.limits.check_in_memory(expected, "request body")  # also when chunked (no Content-Length)
        wire = wire_compression(req, INPUT_COMPRESSIONS)
        if wire == "gzip":
            raw = await asyncio.to_thread(gunzip_body, await req.body(), expected)
            data = self._volume_view(np.frombuffer(raw, dtype=np.uint8), sub.box)
            plan = await self._encode_layers(sub.box, data, self._block_layers(sub.box))
            await asyncio.to_thread(self.write, req.ctx, sub.box, data, plan, roi)
            return web.Response()
        with VOLUME_BUFFERS.borrow(expected) as buf:
            if wire == "lz4":
                await asyncio.to_thread(lz4_decompress_into, await req.body(), buf)
                data = self._volume_view(buf, sub.box)
                plan = await self._encode_layers(sub.box, data, self._block_layers(sub.box))
            else:
                length = req.body_length
                if length is not None and length != expected:
                    need = f"{sub.box.size} voxels of {self.voxel_kind} need {expected}"
                    raise BadRequest(f"body holds {length} bytes, but {need}")
                data, plan = await self._receive_and_encode(req, sub.box, buf)
            await asyncio.to_thread(self.write, req.ctx, sub.box, data, plan, roi)
        return web.Response()

    def _block_span(self, req: InstanceRequest) -> tuple[Point, int]:
        if len(req.args) < 2:
            raise BadRequest("expect blocks/<bx_by_bz>/<number of blocks along x>")
        start = parse_ints(req.args[0], 3, "block coordinate")
        (span,) = parse_ints(req.args[1], 1, "number of blocks", positive=True)
        return start, span  # type: ignore[return-value]

    async def handle_get_blocks(self, req: InstanceRequest) -> web.StreamResponse:
        (bx, by, bz), span = self._block_span(req)
        req.limits.check_in_memory(span * self.blocks.codec.block_nbytes)
        bs = self.block_size
        box = Box((bx * bs[0], by * bs[1], bz * bs[2]), (span * bs[0], bs[1], bs[2]))
        body = await asyncio.to_thread(self._read_blocks_concatenated, req.ctx, box, span)
        return octet_response(body)

    async def handle_post_blocks(self, req: InstanceRequest) -> web.StreamResponse:
        (bx, by, bz), span = self._block_span(req)
        nbytes = self.blocks.codec.block_nbytes
        body = await req.body()
        if len(body) != span * nbytes:
            raise BadRequest(f"body holds {len(body)} bytes, but {span} blocks need {span * nbytes}")
        # the span as one box (blocks side by side along x), written like a raw POST, so extents
        # and pyramid levels follow (DVID leaves extents alone here)
        blocks = np.frombuffer(body, self.fmt.dtype).reshape((span, *self.blocks.codec.block_shape))
        data = np.concatenate(list(blocks), axis=2)
        bs = self.block_size
        box = Box((bx * bs[0], by * bs[1], bz * bs[2]), (span * bs[0], bs[1], bs[2]))
        await asyncio.to_thread(self.write, req.ctx, box, data)
        return web.Response()

    @staticmethod
    def _block_compression(req: InstanceRequest) -> str:
        compression = req.query.get("compression", "")
        if compression not in ("", "jpeg", "uncompressed", "lz4"):
            raise BadRequest(
                f'compression must be "", jpeg or uncompressed for block streams, got "{compression}"'
            )
        return compression

    def aligned_box(self, req: InstanceRequest) -> Box:
        """The block-aligned box ``<size>/<offset>`` that block streams take, or a 400."""
        if len(req.args) < 2:
            raise BadRequest(f"expect {req.endpoint}/<size>/<offset> (a block-aligned box)")
        box = parse_subvolume("0_1_2", req.args[0], req.args[1]).box
        if not box.is_aligned(self.block_size):
            raise BadRequest(f"{req.endpoint} needs a box aligned to the block size {list(self.block_size)}")
        return box

    async def handle_subvolblocks(self, req: InstanceRequest) -> web.StreamResponse:
        box = self.aligned_box(req)
        compression = self._block_compression(req)
        inst, ctx = self._target(req)
        req.limits.check_voxels(box.voxels)
        first, last = box.block_range(inst.block_size)

        def pieces():
            for coord, stored in inst.blocks.iter_stored(ctx, first, last):
                yield frame_block(coord, inst._block_payload(stored, compression))

        return await stream_pieces(req, "application/octet-stream", pieces())

    async def handle_specificblocks(self, req: InstanceRequest) -> web.StreamResponse:
        coords = parse_block_list(req.query.get("blocks", ""))
        compression = self._block_compression(req)
        inst, ctx = self._target(req)
        prefetch = req.query_bool("prefetch")

        def pieces():
            for coord in coords:
                stored = ctx.get(inst.blocks.tkey(*coord))
                if stored is not None and not prefetch:
                    yield frame_block(coord, inst._block_payload(stored, compression))

        return await stream_pieces(req, "application/octet-stream", pieces())

    async def handle_pyramid(self, req: InstanceRequest) -> web.StreamResponse:
        levels = req.query_int("levels")
        if levels is None or not 1 <= levels <= 16:
            raise BadRequest("pyramid needs ?levels=N with N between 1 and 16")
        with self.job("pyramid", f"pyramid levels 1-{levels} at {req.uuid[:8]}", "levels", levels) as job:
            await asyncio.to_thread(self.build_pyramid, req.context_for, levels, req.uuid, None, job)
        self.meta.properties["pyramid_levels"] = max(levels, self.pyramid_levels)
        self.save()
        return json_response({"levels": self.pyramid_levels})
