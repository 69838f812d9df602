"""The ``roi`` datatype: a region of interest as runs of blocks, versioned.

Wire-compatible with DVID's ``datatype/roi`` (type version 0.1). An ROI is a set of blocks (the
instance's BlockSize, default 32^3) stored as x-runs ("spans") ``[z, y, x0, x1]`` in block
coordinates, one key per span: tkey class 90, ``5A 01 | ZYX(x0, y, z) | u32be(x1 - x0 + 1)``,
empty value. Membership is per block: a voxel is inside iff its block (floor division) is
covered by a span.

The module reads top to bottom: help text; key codec; the model (sync methods over a
:class:`~dvid.storage.versioned.DataContext`; the span math is in :mod:`dvid.datatype.common.spans`);
:class:`RoiFilter`, which image types use for ``?roi=`` masking; and the async handlers.
"""

from __future__ import annotations

import asyncio
import json
import struct
import threading
from typing import Any

import numpy as np
from aiohttp import web
from pydantic import BaseModel, ConfigDict, field_validator

from dvid.datatype.base import Datatype, InstanceMeta, Route
from dvid.datatype.common.geometry import Point, parse_dims, parse_ints
from dvid.datatype.common.request import InstanceRequest, json_bytes_response, octet_response
from dvid.datatype.common.route import BINARY, JSON, OFFSET, SIZE3, Param, flag
from dvid.datatype.common.spans import (
    MAX_I32,
    MIN_I32,
    SpanIndex,
    canonical_spans,
    parse_points,
    parse_spans,
    partition,
    spans_json,
    voxel_mask,
)
from dvid.datatype.registry import register
from dvid.errors import BadRequest, NotFound
from dvid.storage import keys
from dvid.storage.versioned import DataContext

HELP = """\
API for datatype "roi"
======================

A region of interest (ROI): a set of blocks, stored as runs of blocks along x ("spans")
[z, y, x0, x1] in block coordinates, x0 and x1 inclusive. Block coordinates are voxel coordinates
floor-divided by the instance's BlockSize (default 32,32,32), so a voxel is inside the ROI iff
its block is covered by a span; there is no detail below a block. ROIs are versioned: a change
at a version is seen there and in its descendants, never in its ancestors.

Instance creation
-----------------

POST /api/repo/{uuid}/instance
    {"typename": "roi", "dataname": "<name>", "BlockSize": "32,32,32", "Versioned": "true"}

    BlockSize: three positive integers "x,y,z" (default 32,32,32); anything else is a 400.

Endpoints (under /api/node/{uuid}/{data name})
---------------------------------------------

GET  help                    This text.
GET  info                    {"Base": {...}, "Extended": {"BlockSize": [x,y,z], "MinZ": .., "MaxZ": ..}}.
                             MinZ/MaxZ: the block z range of the last POSTed spans (instance-wide,
                             not per version; 2147483647/-2147483648 after a DELETE); used by
                             partition.

GET  roi                     The spans at this version as JSON [[z,y,x0,x1], ...], sorted by z,
                             then y, then x0 (then run length); [] if none.
POST roi                     Replace the ROI at this version with the spans of the JSON body
                             [[z,y,x0,x1], ...] (4 integers each, 32-bit, x0 <= x1). The spans are
                             stored as given, not merged: unsorted input comes back sorted, exact
                             duplicates collapse, overlapping runs are kept separately. The body
                             is checked before anything is written (a malformed body, a span with
                             x1 < x0, a coordinate outside 32 bits or a span of 2^32 blocks, whose
                             length the key cannot hold, is a 400 that leaves the ROI untouched),
                             and the replacement is one atomic write. null or []
                             empties the ROI.
DELETE roi                   Empty the ROI at this version (ancestors keep theirs); resets MinZ/MaxZ.

POST ptquery                 Body: JSON voxel points [[x,y,z], ...]. Answer: JSON [true, false, ...],
                             one per point in the same order: whether the point's block is in the
                             ROI. Read-only: allowed at committed versions. A body that is not a
                             list of 3-integer points is a 400. (GET ptquery is a 400.)

GET  mask/0_1_2/<size>/<offset>
                             application/octet-stream: nx*ny*nz bytes in ZYX order (x fastest), 1
                             for voxels inside the ROI and 0 outside, for the box of <size> nx_ny_nz
                             at <offset> x_y_z (negative offsets use floor division). Only the 3-D
                             shape 0_1_2 is served (other shapes are a 400).

GET  partition?batchsize=N[&optimized=true]
                             Subvolumes of about N^3 blocks covering the ROI, as DVID computes
                             them (batchsize is required, positive and below 2^32; more
                             subvolumes than the server would hold in memory is a 413). JSON,
                             indented by 4:
                               {"NumTotalBlocks", "NumActiveBlocks", "NumSubvolumes",
                                "ROI": {"MinChunk": [x,y,z], "MaxChunk": [x,y,z]},
                                "Subvolumes": [{"MinPoint", "MaxPoint", "MinChunk", "MaxChunk",
                                                "TotalBlocks", "ActiveBlocks"}, ...]}
                             Simple (default): layers of N block planes in z (from MinZ/MaxZ,
                             centred), rows of N in y and columns of N in x centred on the active
                             blocks of each row; only subvolumes with active blocks are listed but
                             every one counts in the totals. optimized=true (or on): layers, rows
                             and columns start at the minimum and absorb the remainder one block at
                             a time, and a column is cut at its longest gap of inactive blocks (the
                             part before the gap extends the previous subvolume, whose MaxPoint
                             DVID then sets to the first voxel of its last block). ROI.MinChunk and
                             MaxChunk start at 0 in x and y (DVID's behaviour) and carry MinZ/MaxZ.

ROI masking of image data: GET raw/isotropic (and labelblk pseudocolor) of uint8blk, labelblk and
the other image types take ?roi=<roi name>: blocks outside the ROI read as the instance's
background (0), or with &attenuation=n (1..7, uint8blk only) have their voxels shifted right by
n bits. POST raw/0_1_2/...?roi=<roi name> writes only the blocks inside the ROI. The ROI is read
at the request's version and must have the image's BlockSize (400 otherwise).

Errors: plain text "<message> (<path>)." with 400 for bad input, 404 for an unknown repo,
version or instance, 405 for a method an endpoint does not take, 409 for a write at a committed
version of a versioned instance.
"""

# ---- key codec -------------------------------------------------------------------------------

KEY_CLASS = 90
MIN_TKEY = keys.min_tkey(KEY_CLASS)
MAX_TKEY = keys.max_tkey(KEY_CLASS)
_U32 = struct.Struct(">I")
_BIAS = 1 << 31


def span_tkey(z: int, y: int, x0: int, x1: int) -> bytes:
    """``5A 01 | ZYX(x0, y, z) | u32be(x1 - x0 + 1)``."""
    return keys.tkey(KEY_CLASS, keys.zyx_bytes(x0, y, z) + _U32.pack(x1 - x0 + 1))


def span_tkeys(spans: np.ndarray) -> list[bytes]:
    """The tkeys of many spans at once (an (n, 4) array of [z, y, x0, x1])."""
    if not len(spans):
        return []
    s = np.asarray(spans, dtype=np.int64)
    words = np.empty((len(s), 4), dtype=">u4")
    words[:, 0] = (s[:, 0] + _BIAS).astype(np.uint32)
    words[:, 1] = (s[:, 1] + _BIAS).astype(np.uint32)
    words[:, 2] = (s[:, 2] + _BIAS).astype(np.uint32)
    words[:, 3] = (s[:, 3] - s[:, 2] + 1).astype(np.uint32)
    raw = words.tobytes()
    head = bytes((KEY_CLASS, 0x01))
    return [head + raw[i : i + 16] for i in range(0, len(raw), 16)]


def decode_span_tkeys(tks: list[bytes]) -> np.ndarray:
    """The (n, 4) int64 array [z, y, x0, x1] of span tkeys (in their order)."""
    if not tks:
        return np.zeros((0, 4), np.int64)
    words = np.frombuffer(b"".join(tk[2:18] for tk in tks), dtype=">u4").reshape(-1, 4).astype(np.int64)
    out = np.empty_like(words)
    out[:, :3] = words[:, :3] - _BIAS
    out[:, 3] = out[:, 2] + words[:, 3] - 1
    return out


def _z_bounds(z0: int, z1: int) -> tuple[bytes, bytes]:
    """tkey bounds of every span with block z in [z0, z1]."""
    lo = keys.tkey(KEY_CLASS, keys.zyx_bytes(MIN_I32, MIN_I32, z0) + _U32.pack(0))
    hi = keys.tkey(KEY_CLASS, keys.zyx_bytes(MAX_I32, MAX_I32, z1) + _U32.pack(keys.MAX_U32))
    return lo, hi


# ---- settings --------------------------------------------------------------------------------


class RoiSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    BlockSize: tuple[int, int, int] = (32, 32, 32)

    @field_validator("BlockSize", mode="before")
    @classmethod
    def _triple(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = value.replace(" ", "").replace("_", ",").split(",")
            if len(parts) != 3:
                raise ValueError(f"BlockSize must be 3d (x,y,z), not {len(parts)}d")
            return tuple(int(v) for v in parts)
        return value

    @field_validator("BlockSize")
    @classmethod
    def _positive(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        if any(v <= 0 for v in value):
            raise ValueError("every BlockSize dimension must be positive")
        return value


# ---- the datatype ----------------------------------------------------------------------------


MASK_DIMS = Param(
    "dims",
    description="0_1_2: only 3-D masks are served",
    pattern="0[_,]1[_,]2|[xX][yY][zZ]|[vV][oO][lL]",
    example="0_1_2",
)
BATCHSIZE = Param("batchsize", "integer", "Subvolume edge in blocks", minimum=1, maximum=2**32 - 1)


@register
class Roi(Datatype):
    """Runs of blocks; ptquery, mask, partition; masks image reads and writes."""

    type_name = "roi"
    type_url = "github.com/janelia-flyem/dvid/datatype/roi"
    type_version = "0.1"
    help_text = HELP
    Settings = RoiSettings
    routes = (
        Route("roi", ("GET", "HEAD"), "handle_get_roi", mutates=False,
              summary="The spans [[z,y,x0,x1], ...] at this version"),
        Route("roi", ("POST",), "handle_post_roi", summary="Replace the ROI with the body's spans",
              consumes=(JSON,), produces=()),
        Route("roi", ("DELETE",), "handle_delete_roi", summary="Empty the ROI at this version", produces=()),
        Route("ptquery", ("POST",), "handle_ptquery", mutates=False,
              summary="Whether each point of the body ([[x,y,z], ...]) is in the ROI", consumes=(JSON,)),
        Route("ptquery", ("GET",), "handle_get_ptquery", mutates=False,
              summary="Always a 400: ptquery takes a POST", produces=()),
        Route("mask", ("GET", "HEAD"), "handle_mask", mutates=False,
              summary="1 for the voxels of a box inside the ROI, 0 outside",
              args=(MASK_DIMS, SIZE3, OFFSET), produces=(BINARY,), statuses=(413,)),
        Route("partition", ("GET", "HEAD"), "handle_partition", mutates=False,
              summary="Subvolumes of about batchsize^3 blocks covering the ROI",
              query=(BATCHSIZE, flag("optimized", "Cut columns at their longest gap")), statuses=(413,)),
    )  # fmt: skip

    settings: RoiSettings

    def __init__(self, meta: InstanceMeta, *args: Any, **kwargs: Any) -> None:
        super().__init__(meta, *args, **kwargs)
        self.write_lock = threading.Lock()

    @property
    def block_size(self) -> Point:
        return tuple(self.settings.BlockSize)  # type: ignore[return-value]

    @property
    def min_z(self) -> int:
        return int(self.meta.properties.get("MinZ", MAX_I32))

    @property
    def max_z(self) -> int:
        return int(self.meta.properties.get("MaxZ", MIN_I32))

    def extended_info(self) -> dict[str, Any]:
        return {"BlockSize": list(self.block_size), "MinZ": self.min_z, "MaxZ": self.max_z}

    # ---- model -------------------------------------------------------------------------------
    def get_spans(self, ctx: DataContext, z0: int | None = None, z1: int | None = None) -> np.ndarray:
        """The spans visible at ``ctx`` (all, or those with block z in [z0, z1]) in key order."""
        if z0 is None or z1 is None:
            lo, hi = MIN_TKEY, MAX_TKEY
        else:
            lo, hi = _z_bounds(z0, z1)
        return decode_span_tkeys([tk for tk, _ in ctx.range(lo, hi, keys_only=True)])

    def index(self, ctx: DataContext, z0: int | None = None, z1: int | None = None) -> SpanIndex:
        return SpanIndex(self.get_spans(ctx, z0, z1))

    def put_spans(self, ctx: DataContext, spans: np.ndarray) -> int:
        """Replace the ROI at ``ctx``'s version by ``spans`` (validated), atomically; returns how many
        distinct spans it now holds. Only the difference is written: tombstones for old spans that
        are gone, puts for new ones."""
        new = canonical_spans(spans)
        new_keys = span_tkeys(new)
        with self.write_lock:
            old = set(ctx.keys(MIN_TKEY, MAX_TKEY))
            wanted = set(new_keys)
            with ctx.batch() as batch:
                for tk in old - wanted:
                    batch.delete(tk)
                for tk in new_keys:
                    if tk not in old:
                        batch.put(tk, b"")
            if len(new):
                self.meta.properties["MinZ"] = int(new[:, 0].min())
                self.meta.properties["MaxZ"] = int(new[:, 0].max())
            else:
                self.meta.properties["MinZ"], self.meta.properties["MaxZ"] = MAX_I32, MIN_I32
            self.save()
        return len(new)

    def delete_spans(self, ctx: DataContext) -> int:
        """Empty the ROI at ``ctx``'s version (tombstones); resets MinZ/MaxZ."""
        with self.write_lock:
            n = ctx.delete_range(MIN_TKEY, MAX_TKEY)
            self.meta.properties["MinZ"], self.meta.properties["MaxZ"] = MAX_I32, MIN_I32
            self.save()
        return n

    def point_query(self, ctx: DataContext, points: np.ndarray) -> np.ndarray:
        """Whether each voxel point (x, y, z) is in the ROI at ``ctx`` (bool array, same order)."""
        if not len(points):
            return np.zeros(0, bool)
        return self.index(ctx).contains_points(points, self.block_size)

    def mask(self, ctx: DataContext, offset: Point, size: Point) -> np.ndarray:
        """The uint8 (nz, ny, nx) mask of the box: 1 inside the ROI."""
        bz = self.block_size[2]
        z0, z1 = offset[2] // bz, (offset[2] + size[2] - 1) // bz
        return voxel_mask(self.index(ctx, z0, z1), offset, size, self.block_size)

    def partition(
        self, ctx: DataContext, batch: int, optimized: bool, max_subvolumes: int | None = None
    ) -> dict[str, Any]:
        spans = self.get_spans(ctx)
        return partition(spans, self.block_size, self.min_z, self.max_z, batch, optimized, max_subvolumes)

    # ---- handlers ----------------------------------------------------------------------------
    async def handle_get_roi(self, req: InstanceRequest) -> web.StreamResponse:
        spans = await asyncio.to_thread(self.get_spans, req.ctx)
        return json_bytes_response(spans_json(spans))

    async def handle_post_roi(self, req: InstanceRequest) -> web.StreamResponse:
        body = await req.body()
        spans = await asyncio.to_thread(parse_spans, body)
        await asyncio.to_thread(self.put_spans, req.ctx, spans)
        return web.Response()

    async def handle_delete_roi(self, req: InstanceRequest) -> web.StreamResponse:
        await asyncio.to_thread(self.delete_spans, req.ctx)
        return web.Response()

    async def handle_ptquery(self, req: InstanceRequest) -> web.StreamResponse:
        body = await req.body()

        def run() -> bytes:
            inside = self.point_query(req.ctx, parse_points(body))
            return b"[" + b",".join(np.where(inside, b"true", b"false").tolist()) + b"]"

        return json_bytes_response(await asyncio.to_thread(run))

    async def handle_get_ptquery(self, req: InstanceRequest) -> web.StreamResponse:
        raise BadRequest("ptquery requires POST with a JSON list of points [[x, y, z], ...]")

    async def handle_mask(self, req: InstanceRequest) -> web.StreamResponse:
        if len(req.args) < 3:
            raise BadRequest("mask must be followed by shape/size/offset, e.g. mask/0_1_2/64_64_64/0_0_0")
        if len(parse_dims(req.args[0])) != 3:
            raise BadRequest("only 3d masks (shape 0_1_2) are supported")
        size = parse_ints(req.args[1], 3, "size", positive=True)
        offset = parse_ints(req.args[2], 3, "offset")
        voxels = size[0] * size[1] * size[2]
        req.limits.check_voxels(voxels)
        req.limits.check_in_memory(voxels, "mask")
        mask = await asyncio.to_thread(self.mask, req.ctx, offset, size)  # type: ignore[arg-type]
        return octet_response(memoryview(np.ascontiguousarray(mask)).cast("B"))  # type: ignore[arg-type]

    async def handle_partition(self, req: InstanceRequest) -> web.StreamResponse:
        text = req.query.get("batchsize", "")
        try:
            batch = int(text)
        except ValueError:
            raise BadRequest(f"Error reading batchsize query string: {text!r} is not an integer") from None
        optimized = req.query_bool("optimized")
        # a subvolume is about 500 bytes of indented JSON
        cap = max(1, req.limits.max_bytes_in_memory // 512)
        result = await asyncio.to_thread(self.partition, req.ctx, batch, optimized, cap)
        return json_bytes_response(json.dumps(result, indent=4).encode())


# ---- ROI masking of other types --------------------------------------------------------------


class RoiFilter:
    """An ROI read at one version, for ``?roi=`` on image reads and writes (block granularity)."""

    def __init__(self, index: SpanIndex, block_size: Point, attenuation: int = 0) -> None:
        self.index = index
        self.block_size = block_size
        self.attenuation = attenuation

    @classmethod
    def from_request(cls, req: InstanceRequest, image: Any, *, for_write: bool = False) -> RoiFilter | None:
        """The filter asked for by ``?roi=<name>[&attenuation=n]``, or None without ``roi``.

        The ROI is the instance of that name in the image's repo, read at the request's version;
        its BlockSize must equal the image's. ``attenuation`` (1..7) is for uint8 reads only.
        """
        name = req.query.get("roi", "")
        if not name:
            return None
        if image.repo_access is None:
            raise BadRequest("roi masking needs the repo of this instance")
        try:
            roi = image.repo_access.sibling(name)
        except NotFound:  # a bad query parameter, not a missing resource of the URL path
            raise BadRequest(f"roi={name!r}: there is no data instance {name!r} in this repo") from None
        if not isinstance(roi, Roi):
            raise BadRequest(f"data {name!r} is of type {roi.type_name}, not roi")
        if tuple(roi.block_size) != tuple(image.block_size):
            raise BadRequest(
                f"roi {name!r} has BlockSize {list(roi.block_size)} but {image.type_name} {image.name!r}"
                f" has {list(image.block_size)}: they must be equal to mask"
            )
        attenuation = 0
        text = req.query.get("attenuation", "")
        if text and not for_write:
            try:
                attenuation = int(text)
            except ValueError:
                attenuation = -1
            if not 1 <= attenuation <= 7:
                raise BadRequest(f"attenuation must be an integer from 1 to 7, got {text!r}")
            if getattr(image, "voxel_kind", "") != "uint8":
                raise BadRequest("attenuation is only possible for uint8 data")
        return cls(roi.index(req.context_for(roi)), roi.block_size, attenuation)

    def blocks_inside(self, coords: list[Point]) -> np.ndarray:
        """Whether each block coordinate (x, y, z) is in the ROI."""
        if not coords:
            return np.zeros(0, bool)
        c = np.asarray(coords, dtype=np.int64).reshape(-1, 3)
        return self.index.contains(c[:, 0], c[:, 1], c[:, 2])

    def filter_plan(self, plan: Any) -> Any:
        """A block write plan (``WritePlan``) without the blocks outside the ROI."""
        from dvid.datatype.common.blockstore import WritePlan

        keep_enc = self.blocks_inside([c for c, _ in plan.encoded])
        keep_part = self.blocks_inside([c for c, _, _ in plan.partial])
        return WritePlan(
            [e for e, k in zip(plan.encoded, keep_enc, strict=True) if k],
            [p for p, k in zip(plan.partial, keep_part, strict=True) if k],
        )

    def masked_store(self, blocks: Any) -> Any:
        """A read-only view of a BlockStore whose reads mask the blocks outside the ROI."""
        from dvid.datatype.common.blockstore import BlockStore

        roi = self

        class MaskedBlockStore(BlockStore):
            def read_into(self, ctx: DataContext, box: Any, out: np.ndarray) -> None:
                super().read_into(ctx, box, out)
                roi.mask_volume(out, box, self.background)

        masked = MaskedBlockStore(blocks.codec, blocks.background, blocks.tkey_prefix)
        return masked

    def mask_volume(self, out: np.ndarray, box: Any, background: int) -> None:
        """Blank (or attenuate) in place the parts of ``out`` (the box's array) outside the ROI."""
        first, last = box.block_range(self.block_size)
        grid = self.index.block_grid(first, last)
        if grid.all():
            return
        bs = self.block_size
        for bz, by, bx in zip(*np.nonzero(~grid), strict=True):
            coord = (first[0] + int(bx), first[1] + int(by), first[2] + int(bz))
            sl = []
            for axis in (2, 1, 0):
                lo = max(coord[axis] * bs[axis], box.offset[axis]) - box.offset[axis]
                hi = min((coord[axis] + 1) * bs[axis], box.offset[axis] + box.size[axis]) - box.offset[axis]
                sl.append(slice(lo, hi))
            region = tuple(sl)
            if self.attenuation:
                out[region] >>= self.attenuation
            else:
                out[region] = background
