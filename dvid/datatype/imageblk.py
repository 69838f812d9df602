"""The imageblk family: uint8blk (grayscale), uint16blk, uint32blk, uint64blk, float32blk, rgba8blk.

One implementation with the voxel type as a parameter. Volumes are stored as blocks (see
``common/blockstore.py``); reads of any box are assembled with numpy and streamed slab by slab;
writes of any box (aligned or not) are atomic per request. ``NAME_1``, ``NAME_2``, ... hold the
2x-downsampled levels of ``NAME`` (neuroglancer's convention), built and kept current by
``POST .../pyramid``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gzip
import json
import math
import os
import threading
import zlib
from collections.abc import Callable
from typing import Any, ClassVar, cast

import cramjam
import lz4.block
import numpy as np
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dvid.datatype.base import Datatype, InstanceMeta, Route
from dvid.datatype.common import envelope, jsonio, sync
from dvid.datatype.common.blockstore import (
    EXTENTS_TKEY,
    BlockCodec,
    BlockStore,
    WritePlan,
    block_tkey,
    frame_block,
)
from dvid.datatype.common.buffers import VOLUME_BUFFERS
from dvid.datatype.common.geometry import Box, Point, parse_block_list, parse_ints, parse_subvolume
from dvid.datatype.common.request import InstanceRequest, json_response, octet_response
from dvid.datatype.common.route import (
    BINARY,
    BLOCK_COORD,
    DIMS,
    IMAGE_FORMAT,
    IMAGES,
    INT32,
    JSON,
    OFFSET,
    SIZE,
    SIZE3,
    THROTTLE_QUERY,
    Param,
    flag,
    query,
)
from dvid.datatype.common.streaming import BodyStream, stream_pieces
from dvid.datatype.common.sync import BlockChange
from dvid.datatype.common.voxels import VOXEL_FORMATS
from dvid.datatype.registry import register
from dvid.errors import BadRequest, NotFound
from dvid.storage.versioned import DataContext, VersionedBatch

HELP_TEMPLATE = """\
{type_name}: blocks of {kind} voxels{kind_note}
{underline}

A 3-D volume stored as blocks (BlockSize, default 32x32x32) with DVID's key layout. Coordinates
are voxels (x, y, z); bodies are packed little-endian voxels in ZYX order (x fastest). Every
read of a region never written returns the Background value. Writes at a version store only the
blocks they touch; reads at any version see exactly that version's history.

Creation (POST /api/repo/{{uuid}}/instance), settings are strings:
    {{"typename": "{type_name}", "dataname": "grayscale",
     "BlockSize": "64,64,64",      block size in voxels (default 32,32,32)
     "VoxelSize": "8,8,8",         physical size of a voxel (floats; default 8,8,8)
     "VoxelUnits": "nanometers",   one unit, or three separated by commas
     "Background": "0",            value of voxels never written (default 0)
     "Compression": "lz4",         block storage: lz4 (default), none, gzip, gzip:N{jpeg_setting}
     "Versioned": "true"}}

Paths below are under /api/node/{{uuid}}/{{dataname}}. Geometry strings:
    <dims>    0_1 (xy), 0_2 (xz), 1_2 (yz) for slices; 0_1_2 for volumes
    <size>    nx_ny for slices, nx_ny_nz for volumes (positive)
    <offset>  x_y_z of the first voxel (may be negative)

GET  help                     This text.
GET  info                     {{"Base": ..., "Extended": {{"Values": [{{"DataType", "Label"}}],
                              "Interpolable", "BlockSize", "VoxelSize", "VoxelUnits", "MinPoint",
                              "MaxPoint", "MinIndex", "MaxIndex", "Background", "GridStore",
                              "ScaleLevel"}}, "Extents": {{"MinPoint", "MaxPoint"}}}}. Extents are
                              inclusive voxel coordinates that grow with every write.
GET  metadata                 {{"Axes": [{{"Label", "Resolution", "Units", "Size", "Offset"}} x3],
                              "Properties": <Extended>}} (application/vnd.dvid-nd-data+json).
GET  extents                  {{"MinPoint": [x,y,z], "MaxPoint": [x,y,z]}} written at this version
                              (null before any write).
POST extents                  Body {{"MinPoint": [x,y,z], "MaxPoint": [x,y,z]}} (32-bit integers):
                              replace the extents.
POST resolution               Body [x, y, z] (finite positive numbers): replace VoxelSize.
GET  rawkey?x=&y=&z=          {{"Key": "<hex>"}}: the storage key of the block holding that voxel.

GET  raw/<dims>/<size>/<offset>[/<format>]
                              A slice as an image, or a volume as raw bytes. Slices: format png
                              (default), jpg or jpg:<quality> (default 80), tif, bmp; a volume
                              answers application/octet-stream of nx*ny*nz*{bpv} bytes, streamed,
                              or with /jpg one gray JPEG nx wide and ny*nz tall (uint8 only).
                              Query: scale=N reads level N of the pyramid (instance NAME_N);
                              compression=lz4 (a bare LZ4 block) or gzip compresses a volume;
                              throttle=true (503 while the server runs its maximum of throttled
                              requests); roi=<name>[&attenuation=n] masks (roi help).
GET  isotropic/<dims>/<size>/<offset>[/<format>]
                              As raw; a slice across axes of different voxel sizes is resampled so
                              its pixels are square.
POST raw/0_1_2/<size>/<offset>
                              Store a volume: the body is exactly nx*ny*nz*{bpv} bytes. Any offset and
                              size: partially covered blocks are merged with what is stored. The
                              write is atomic; extents grow; pyramid levels are updated. With
                              compression=lz4 (a bare LZ4 block) or gzip the body is compressed.
GET  blocks/<bx_by_bz>/<n>    n whole blocks along +x from block (bx, by, bz), uncompressed and
                              concatenated (missing blocks are Background).
POST blocks/<bx_by_bz>/<n>    Store n whole uncompressed blocks along +x.
GET  subvolblocks/<size>/<offset>[?compression=]
                              The stored blocks of a block-aligned box in (z, y, x) order, each
                              framed as int32 bx, by, bz, int32 length, then the payload: the stored
                              block without its 1-byte header (lz4: uint32 size + LZ4 block; jpeg:
                              a JPEG image). compression=uncompressed sends raw voxels;
                              compression=jpeg requires JPEG storage. Missing blocks are omitted.
GET  specificblocks?blocks=x1,y1,z1,x2,y2,z2,...[&compression=][&prefetch=true]
                              The listed blocks, framed as above, in the order asked; prefetch reads
                              them and sends nothing.
POST pyramid?levels=N         Build levels 1..N (instances NAME_1 ... NAME_N, created with VoxelSize
                              doubled per level) by 2x2x2 mean (floor) of the level below, above
                              every block stored at this version, and keep them current: later
                              writes to NAME update the affected blocks of every level. Returns
                              {{"levels": N}}.

Errors: 400 malformed geometry, sizes, bodies or options; 404 unknown pyramid level; 409 write
to a committed version; 413 a request over the server's voxel limit (setting max_request_voxels)
or, for responses built in memory (images, block lists), over max_body_bytes.
"""


class ImageSettings(BaseModel):
    """Creation settings of the imageblk family (string values in DVID's JSON)."""

    model_config = ConfigDict(extra="ignore")

    BlockSize: tuple[int, int, int] = (32, 32, 32)
    VoxelSize: tuple[float, float, float] = (8.0, 8.0, 8.0)
    VoxelUnits: tuple[str, str, str] = ("nanometers", "nanometers", "nanometers")
    Background: int = Field(0, ge=0)
    MinPoint: tuple[int, int, int] | None = None
    MaxPoint: tuple[int, int, int] | None = None
    GridStore: str = ""
    ScaleLevel: int = 0

    @field_validator("BlockSize", "MinPoint", "MaxPoint", mode="before")
    @classmethod
    def _int_triple(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(int(v) for v in value.replace(" ", "").replace("_", ",").split(","))
        return value

    @field_validator("BlockSize")
    @classmethod
    def _positive(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        if any(v <= 0 or v > 4096 for v in value):
            raise ValueError("every BlockSize dimension must be between 1 and 4096")
        return value

    @field_validator("VoxelSize", mode="before")
    @classmethod
    def _float_triple(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(float(v) for v in value.replace(" ", "").split(","))
        return value

    @field_validator("VoxelSize")
    @classmethod
    def _finite_positive(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if not all(math.isfinite(v) and v > 0 for v in value):
            raise ValueError("every VoxelSize dimension must be a finite positive number")
        return value

    @field_validator("VoxelUnits", mode="before")
    @classmethod
    def _units(cls, value: Any) -> Any:
        if isinstance(value, str):
            units = [u.strip() for u in value.split(",")]
            return tuple(units * 3) if len(units) == 1 else tuple(units)
        return value

    @field_validator("Background", "ScaleLevel", mode="before")
    @classmethod
    def _int(cls, value: Any) -> Any:
        return int(value) if isinstance(value, str) else value


def _extents_from(raw: bytes | None) -> tuple[Point, Point] | None:
    """Extents stored as DVID does: a 0x00 envelope byte then JSON {"MinPoint", "MaxPoint"}."""
    if not raw:
        return None
    obj = json.loads(envelope.deserialize(raw))
    return tuple(obj["MinPoint"]), tuple(obj["MaxPoint"])


def _extents_value(lo: Point, hi: Point) -> bytes:
    body = jsonio.dumps({"MinPoint": list(lo), "MaxPoint": list(hi)})
    return envelope.serialize(body, envelope.Compression(envelope.NONE))


def _grow(extents: tuple[Point, Point] | None, box: Box) -> tuple[Point, Point]:
    lo = box.offset
    hi = tuple(e - 1 for e in box.end)
    if extents is None:
        return lo, hi  # type: ignore[return-value]
    return (
        tuple(min(a, b) for a, b in zip(extents[0], lo, strict=True)),  # type: ignore[return-value]
        tuple(max(a, b) for a, b in zip(extents[1], hi, strict=True)),
    )


ND_JSON = "application/vnd.dvid-nd-data+json"
VOLUME_DIMS = Param(
    "dims", description="0_1_2 (xyz, vol): a volume, the only shape a write takes",
    pattern="0[_,]1[_,]2|[xX][yY][zZ]|[vV][oO][lL]", example="0_1_2",
)  # fmt: skip
VOXELS_ARGS = (DIMS, SIZE, OFFSET, IMAGE_FORMAT)
#: A volume as raw voxels (or compressed, or a JPEG stack), a slice as an image.
VOXEL_OUTPUT = (BINARY, *IMAGES)
SCALE = query("scale", "integer", "Read level N of the pyramid (instance NAME_N)", minimum=0)
ROI_QUERY = query("roi", description="Name of a roi instance of the repo whose blocks mask the voxels")
READ_QUERY = (
    SCALE,
    query("compression", description="A volume's wire compression", enum=("lz4", "gzip")),
    ROI_QUERY,
    query("attenuation", "integer", "With roi (uint8 only): shift voxels outside right by n bits",
          minimum=1, maximum=7),
    THROTTLE_QUERY,
)  # fmt: skip
WRITE_QUERY = (
    query("compression", description="The body's compression", enum=("lz4", "gzip")),
    query("roi", description="Name of a roi instance: only the blocks inside it are written"),
    THROTTLE_QUERY,
)
RAWKEY_QUERY = tuple(
    Param(axis, "integer", f"The voxel's {axis}", minimum=-(2**31), maximum=2**31 - 1) for axis in "xyz"
)
SPAN = Param("n", "integer", "Number of blocks along x", minimum=1, maximum=2**31 - 1, example="1")
BLOCK_COMPRESSION = query(
    "compression", description="Block payloads: as stored (default), uncompressed, jpeg or lz4",
    enum=("", "uncompressed", "jpeg", "lz4"),
)  # fmt: skip
SPECIFIC_QUERY = (
    query("blocks", description="Block coordinates x1,y1,z1,x2,y2,z2,...",
          pattern=rf"({INT32}(,{INT32})*)?"),
    BLOCK_COMPRESSION,
    flag("prefetch", "Read the blocks and send nothing"),
    SCALE,
    THROTTLE_QUERY,
)  # fmt: skip


class ImageBlk(Datatype):
    """Shared implementation; subclasses fix the voxel kind."""

    voxel_kind: ClassVar[str]
    interpolable: ClassVar[bool] = True
    #: ``?compression=`` values a raw volume GET can answer with.
    output_compressions: ClassVar[tuple[str, ...]] = ("lz4", "gzip")
    Settings = ImageSettings
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
              query=READ_QUERY, produces=VOXEL_OUTPUT),
        Route("raw", ("POST",), "handle_post_raw", heavy=True, summary="Store a volume of voxels",
              args=(VOLUME_DIMS, SIZE3, OFFSET), query=WRITE_QUERY, consumes=(BINARY,), produces=()),
        Route("isotropic", ("GET", "HEAD"), "handle_get_isotropic", mutates=False, heavy=True,
              summary="As raw, slices resampled to square pixels", args=VOXELS_ARGS,
              query=READ_QUERY, produces=VOXEL_OUTPUT),
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

    settings: ImageSettings

    def __init__(self, meta: InstanceMeta, *args: Any, **kwargs: Any) -> None:
        super().__init__(meta, *args, **kwargs)
        self.fmt = VOXEL_FORMATS[self.voxel_kind]
        block_size = tuple(self.settings.BlockSize)
        codec = BlockCodec(self.fmt, block_size, self.compression)  # type: ignore[arg-type]
        self.blocks = BlockStore(codec, self.settings.Background)
        self.write_lock = threading.Lock()
        self.extents_lock = threading.Lock()
        # held by a pyramid update of this level from reading the level below to writing here, so a
        # slower concurrent update cannot overwrite a newer one with blocks computed from older data
        self.pyramid_lock = threading.Lock()

    @classmethod
    def validate_settings(cls, settings: dict[str, Any]) -> dict[str, Any]:
        validated = super().validate_settings(settings)
        compression = str(settings.get("compression", "")).lower()
        if compression.startswith("jpeg"):
            if cls.voxel_kind != "uint8":
                raise BadRequest(f"jpeg compression is only possible for uint8blk, not {cls.type_name}")
            if validated["BlockSize"][0] > 127:
                raise BadRequest(
                    "jpeg compression needs BlockSize x of at most 127 (DVID stores it in a byte)"
                )
        return validated

    @property
    def block_size(self) -> Point:
        return self.blocks.block_size

    # ---- info --------------------------------------------------------------------------------
    def values_info(self) -> list[dict[str, str]]:
        if self.fmt.channels == 4:
            return [{"DataType": "uint8", "Label": c} for c in ("red", "green", "blue", "alpha")]
        return [{"DataType": self.voxel_kind, "Label": self.voxel_kind}]

    def instance_extents(self) -> tuple[Point, Point] | None:
        ext = self.meta.properties.get("extents")
        if ext is None:
            s = self.settings
            if s.MinPoint is not None and s.MaxPoint is not None:
                return tuple(s.MinPoint), tuple(s.MaxPoint)  # type: ignore[return-value]
            return None
        return tuple(ext[0]), tuple(ext[1])

    def extended_info(self) -> dict[str, Any]:
        s = self.settings
        ext = self.instance_extents()
        min_index = max_index = None
        if ext is not None:
            min_index = [c // b for c, b in zip(ext[0], self.block_size, strict=True)]
            max_index = [c // b for c, b in zip(ext[1], self.block_size, strict=True)]
        return {
            "Values": self.values_info(),
            "Interpolable": self.interpolable,
            "BlockSize": list(s.BlockSize),
            "VoxelSize": list(s.VoxelSize),
            "VoxelUnits": list(s.VoxelUnits),
            "MinPoint": list(ext[0]) if ext else None,
            "MaxPoint": list(ext[1]) if ext else None,
            "MinIndex": min_index,
            "MaxIndex": max_index,
            "Background": s.Background,
            "GridStore": s.GridStore,
            "ScaleLevel": s.ScaleLevel,
        }

    def info(self) -> dict[str, Any]:
        ext = self.instance_extents()
        return {
            **super().info(),
            "Extents": {"MinPoint": list(ext[0]) if ext else None, "MaxPoint": list(ext[1]) if ext else None},
        }

    # ---- model: reads and writes (sync, numpy in/out) ----------------------------------------
    def version_extents(self, ctx: DataContext) -> tuple[Point, Point] | None:
        return _extents_from(ctx.get(EXTENTS_TKEY))

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

    def commit_blocks(
        self,
        ctx: DataContext,
        data: np.ndarray,
        plan: WritePlan,
        *,
        also: Callable[[VersionedBatch], None] | None = None,
    ) -> None:
        """Write a plan's blocks under the write lock in one atomic batch, together with what the
        block listeners (labelvol's runs and max label, annotation's label index) derive from them."""
        self.blocks.commit_write(ctx, data, plan, self.write_lock, also=also, changes=self._notifier(ctx))

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
                stored = ctx.get(block_tkey(*coord))
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

    def _notifier(self, ctx: DataContext) -> Callable[[VersionedBatch, list[BlockChange]], None] | None:
        """The call that tells this instance's block listeners about blocks written at ``ctx``'s
        version, inside the batch that stores them (None without listeners)."""
        block_listeners = sync.block_listeners(self)
        if not block_listeners:
            return None

        def notify(batch: VersionedBatch, written: list[BlockChange]) -> None:
            for listener in block_listeners:
                listener.blocks_changed(batch, ctx.ancestry, written, self.decode_block)

        return notify

    def decode_block(self, value: bytes) -> np.ndarray:
        """A stored block's voxels (z, y, x)."""
        return self.blocks.codec.decode(value)

    def _grow_instance_extents(self, box: Box) -> None:
        with self.extents_lock:  # concurrent writers must not lose each other's growth
            old = self.instance_extents()
            new = _grow(old, box)
            if new != old:
                self.meta.properties["extents"] = [list(new[0]), list(new[1])]
                self.save()

    # ---- pyramid -----------------------------------------------------------------------------
    @property
    def pyramid_levels(self) -> int:
        return int(self.meta.properties.get("pyramid_levels", 0))

    def level_instance(self, level: int) -> ImageBlk:
        if level == 0:
            return self
        if self.repo_access is None:
            raise NotFound("pyramid levels need the repo")
        inst = self.repo_access.sibling(f"{self.name}_{level}")
        if not isinstance(inst, ImageBlk):
            raise BadRequest(f"instance {inst.name!r} is not an image volume")
        return inst

    def build_pyramid(self, ctx_for: Any, levels: int, node_uuid: str, box: Box | None = None) -> None:
        """Create (if needed) and fill levels 1..levels from this volume: over ``box`` (just written),
        else above every block stored at this version. Never over the extents' box: extents may
        span billions of empty blocks (a build over them never ended and took all memory)."""
        src: ImageBlk = self
        src_ctx = ctx_for(self)
        if box is None:
            coords = self.blocks.stored_coords(src_ctx)
            if len(coords):
                for level in range(1, levels + 1):
                    self._ensure_level(level, node_uuid)
                self._downsample_blocks(ctx_for, coords, levels)
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
            src, src_ctx, region = (
                dst,
                dst_ctx,
                Box(lo, (hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2])),
            )

    def downsample(self, vol: np.ndarray) -> np.ndarray:
        """One pyramid step: 2x2x2 mean with floor (label types override with a mode)."""
        from dvid.datatype.common.downsample import downsample_2x

        return downsample_2x(vol, self.voxel_kind)

    def compressed_volume_response(self, vol: np.ndarray, wire: str) -> web.Response:
        """A raw volume answered with ``?compression=`` (lz4 or gzip; label types add more)."""
        return octet_response(compress_wire(vol.data.cast("B"), wire))

    def _ensure_level(self, level: int, node_uuid: str) -> ImageBlk:
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
        assert isinstance(inst, ImageBlk)
        return inst

    def update_pyramid(self, ctx: DataContext, box: Box) -> None:
        """After a write to level 0, recompute the affected blocks of every pyramid level."""
        levels = self.pyramid_levels
        if levels and self.repo_access is not None:
            with contextlib.suppress(NotFound):  # a level deleted since the pyramid was built
                self.build_pyramid(self._sibling_ctx_factory(ctx), levels, "", box)

    def downsample_from(self, src: ImageBlk, src_ctx: DataContext, ctx: DataContext, box: Box) -> None:
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

    def _downsample_blocks(self, ctx_for: Any, coords: np.ndarray, levels: int) -> None:
        """Recompute, at every level 1..levels, the blocks above the level-0 blocks ``coords``."""
        src: ImageBlk = self
        src_ctx = ctx_for(self)
        current = coords
        for level in range(1, levels + 1):
            dst = self.level_instance(level)
            dst_ctx = ctx_for(dst)
            current = np.unique(np.floor_divide(current, 2), axis=0)
            for dst_box in _block_row_boxes(current, dst.block_size):
                dst.downsample_from(src, src_ctx, dst_ctx, dst_box)
            src, src_ctx = dst, dst_ctx

    def _sibling_ctx_factory(self, ctx: DataContext) -> Any:
        def ctx_for(inst: Datatype) -> DataContext:
            if inst is self:
                return ctx
            return inst.context(ctx.ancestry)

        return ctx_for

    # ---- handlers ----------------------------------------------------------------------------
    def _target(self, req: InstanceRequest) -> tuple[ImageBlk, DataContext]:
        scale = req.query_int("scale", 0) or 0
        if scale < 0:
            raise BadRequest(f"scale must be 0 or positive, got {scale}")
        inst = self.level_instance(scale) if scale else self
        return inst, (req.ctx if inst is self else req.context_for(inst))

    def _roi_filter(self, req: InstanceRequest, *, for_write: bool = False) -> Any:
        """The ``?roi=<name>[&attenuation=n]`` filter of a request (None without ``roi``)."""
        from dvid.datatype.roi import RoiFilter

        return RoiFilter.from_request(req, self, for_write=for_write)

    def _masked(self, req: InstanceRequest, inst: ImageBlk) -> ImageBlk:
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

        key = keys.data_key(self.meta.instance_id, block_tkey(*coord), req.ctx.version)
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
        if sub.is_3d:
            if fmt_text:
                fmt = imageio.parse_image_format(fmt_text)
                if fmt.kind != "jpeg" or inst.voxel_kind != "uint8":
                    raise BadRequest("a volume can be sent as raw bytes or, for uint8, as /jpg")
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

    def _read_blocks_concatenated(self, ctx: DataContext, box: Box, span: int) -> bytes:
        row = self.blocks.read_box(ctx, box)  # (bz, by, span*bx)
        bx = self.block_size[0]
        parts = [np.ascontiguousarray(row[:, :, i * bx : (i + 1) * bx]) for i in range(span)]
        return b"".join(p.tobytes() for p in parts)

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

    def _block_payload(self, stored: bytes, compression: str) -> bytes:
        codec = self.blocks.codec
        if compression == "uncompressed":
            return codec.decode(stored).tobytes()
        if compression == "jpeg" and not codec.is_jpeg:
            raise BadRequest("compression=jpeg needs an instance stored with jpeg compression")
        return envelope.payload(stored)

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
                stored = ctx.get(block_tkey(*coord))
                if stored is not None and not prefetch:
                    yield frame_block(coord, inst._block_payload(stored, compression))

        return await stream_pieces(req, "application/octet-stream", pieces())

    async def handle_pyramid(self, req: InstanceRequest) -> web.StreamResponse:
        levels = req.query_int("levels")
        if levels is None or not 1 <= levels <= 16:
            raise BadRequest("pyramid needs ?levels=N with N between 1 and 16")
        await asyncio.to_thread(self.build_pyramid, req.context_for, levels, req.uuid)
        self.meta.properties["pyramid_levels"] = max(levels, self.pyramid_levels)
        self.save()
        return json_response({"levels": self.pyramid_levels})


INPUT_COMPRESSIONS = ("lz4", "gzip")
#: Blocks at least this large are encoded while the rest of a raw POST body still arrives.
OVERLAP_MIN_BLOCK_BYTES = 1 << 20


def wire_compression(req: InstanceRequest, allowed: tuple[str, ...]) -> str:
    """``?compression=`` on raw volume GET/POST: "" (none) or one of ``allowed`` (``lz4`` is a bare
    LZ4 block, as DVID's label types use it)."""
    value = req.query.get("compression", "")
    if value and value not in allowed:
        raise BadRequest(f'compression for raw volumes must be one of {", ".join(allowed)}, got "{value}"')
    return value


def compress_wire(raw: memoryview, wire: str) -> bytes:
    if wire == "lz4":
        return lz4.block.compress(raw, store_size=False)
    return gzip.compress(raw, compresslevel=1)


def lz4_decompress_into(body: bytes, out: np.ndarray) -> None:
    """Inflate an lz4 block (no size prefix, as DVID's clients send) into exactly ``out``, or refuse it."""
    try:
        written = cramjam.lz4.decompress_block_into(body, cast(Any, out))  # a writable buffer
    except cramjam.DecompressionError as exc:
        raise BadRequest(f"body is not valid lz4 data for {out.nbytes} bytes: {exc}") from None
    if written != out.nbytes:
        raise BadRequest(f"lz4 body inflates to {written} bytes, expected {out.nbytes}")


def gunzip_body(body: bytes, expected: int) -> bytes:
    """Inflate a gzip POST body to exactly ``expected`` bytes, or refuse it."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        raw = inflater.decompress(body, expected + 1)  # a gzip bomb stops one byte past the size
    except zlib.error as exc:
        raise BadRequest(f"body is not valid gzip data: {exc}") from None
    if len(raw) > expected:
        raise BadRequest(f"gzip body inflates to more than the {expected} bytes expected")
    if not inflater.eof:
        raise BadRequest("gzip body is truncated")
    if len(raw) != expected:
        raise BadRequest(f"gzip body inflates to {len(raw)} bytes, expected {expected}")
    return raw


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


def _plane(vol: np.ndarray, dims: tuple[int, ...]) -> np.ndarray:
    """The 2-D (rows, columns) plane of a one-voxel-thick read: xy -> (y, x), xz -> (z, x), yz -> (z, y)."""
    if dims == (0, 1):
        return vol[0]
    if dims == (0, 2):
        return vol[:, 0]
    return vol[:, :, 0]


def _compression_setting(c: envelope.Compression) -> str:
    names = {envelope.NONE: "none", envelope.SNAPPY: "snappy", envelope.LZ4: "lz4", envelope.JPEG: "jpeg"}
    if c.format == envelope.GZIP:
        return "gzip" if c.level == -1 else f"gzip:{c.level}"
    return names[c.format]


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


def _make(type_name: str, kind: str, url_file: str, version: str, note: str = "") -> type[ImageBlk]:
    bpv = VOXEL_FORMATS[kind].bytes_per_voxel
    cls = type(
        f"{kind.capitalize()}Blk",
        (ImageBlk,),
        {
            "type_name": type_name,
            "type_url": f"github.com/janelia-flyem/dvid/datatype/imageblk/{url_file}",
            "type_version": version,
            "voxel_kind": kind,
            "help_text": HELP_TEMPLATE.format(
                type_name=type_name,
                kind=kind,
                kind_note=note,
                underline="=" * (len(type_name) + len(kind) + len(note) + 12),
                bpv=bpv,
                jpeg_setting=", jpeg (lossy)" if kind == "uint8" else "",
            ),
        },
    )
    return register(cls)  # type: ignore[return-value]


Uint8Blk = _make("uint8blk", "uint8", "uint8.go", "0.2", " (grayscale)")
Uint16Blk = _make("uint16blk", "uint16", "uint16.go", "0.1")
Uint32Blk = _make("uint32blk", "uint32", "uint32.go", "0.1")
Uint64Blk = _make("uint64blk", "uint64", "uint64.go", "0.1")
Float32Blk = _make("float32blk", "float32", "float32.go", "0.1")
Rgba8Blk = _make("rgba8blk", "rgba8", "rgba8.go", "0.2")
