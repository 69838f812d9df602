"""labelblk: 64-bit label volumes (segmentation) in plain blocks.

The image machinery of ``imageblk`` with uint64 voxels, 64^3 blocks by default, label-specific
reads (a label at a point, labels at many points, pseudocolor slices, neuroglancer's
compressed_segmentation), the framed ``blocks`` stream, and a mode-based pyramid.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from typing import Any, ClassVar

import lz4.block
import numpy as np
from aiohttp import web

from dvid.datatype.base import Route
from dvid.datatype.common import envelope, jsonio, sync
from dvid.datatype.common.blockstore import frame_block
from dvid.datatype.common.cutout import HELP as CUTOUT_HELP
from dvid.datatype.common.geometry import parse_ints, parse_subvolume
from dvid.datatype.common.request import InstanceRequest, json_bytes_response, json_response
from dvid.datatype.common.route import (
    BINARY,
    DIMS,
    IMAGE_FORMAT,
    IMAGES,
    JSON,
    OFFSET,
    POINT,
    SIZE,
    SIZE3,
    THROTTLE_QUERY,
    query,
)
from dvid.datatype.common.streaming import stream_pieces
from dvid.datatype.imageblk import ROI_QUERY, SCALE, ImageBlk, ImageSettings, _plane
from dvid.datatype.registry import register
from dvid.errors import BadRequest
from dvid.storage.versioned import DataContext

HELP = (
    """\
labelblk: 64-bit label volumes (segmentation)
=============================================

A volume of uint64 labels stored as blocks (BlockSize, default 64x64x64), LZ4-compressed, with
DVID's key layout. Label 0 is background. Voxel bodies are packed little-endian uint64 in ZYX
order (x fastest). Reads of regions never written return 0. Writes at a version store only the
blocks they touch.

Creation (POST /api/repo/{uuid}/instance), settings are strings:
    {"typename": "labelblk", "dataname": "segmentation",
     "BlockSize": "64,64,64",      block size in voxels (default 64,64,64)
     "VoxelSize": "8,8,8",         physical voxel size (floats)
     "VoxelUnits": "nanometers",
     "Compression": "lz4"}         block storage: lz4 (default), none, gzip, gzip:N

Paths below are under /api/node/{uuid}/{dataname}; geometry strings as for uint8blk
(<dims> 0_1/0_2/1_2/0_1_2, <size> nx_ny[_nz], <offset> x_y_z).

GET  help, info, metadata, extents; POST extents, resolution     As for uint8blk (info carries
                              Values [{"DataType": "uint64", "Label": "labelblk"}] and
                              Interpolable false).
GET  label/<x_y_z>            {"Label": N}: the label at a voxel (0 where nothing was written).
GET  labels[?hash=<md5>]      Request body: JSON [[x,y,z], ...]. Answer: [N, ...] in the same
                              order. With hash, the body's hex MD5 must match.
GET  raw/<dims>/<size>/<offset>[/<format>]
                              A 2-D slice as an image (PNG default: 16-bit RGBA whose sample bytes
                              are the little-endian uint64 labels), or a 3-D volume. Volume query
                              compression: "" raw uint64 (streamed); lz4 (a bare LZ4 block); gzip;
                              google (neuroglancer compressed_segmentation, sizes multiples of 8);
                              googlegzip (the same gzipped, sent with Content-Encoding: gzip, as
                              neuroglancer asks). scale=N reads pyramid level N (NAME_N).
                              throttle=true as for uint8blk. roi=<name> masks: blocks outside
                              the ROI read as 0 (see the roi help). format=npz|hdf5|tiff|blosc
                              (or Accept) answers a volume as a file (Cutout formats below).
GET  isotropic/<dims>/<size>/<offset>[/<format>]
                              As raw; slices resampled by nearest neighbour to square pixels.
GET  pseudocolor/<dims>/<size>/<offset>[/<format>]
                              A 2-D slice colored per label (MurmurHash3 of the label bytes: the
                              top three hash bytes are R, G, B), PNG by default.
POST raw/0_1_2/<size>/<offset>[?compression=lz4|gzip]
                              Store labels: nx*ny*nz*8 bytes (or their lz4 block / gzip stream).
                              Any offset and size; atomic; extents grow; pyramid levels follow.
                              roi=<name>: only the blocks inside the ROI are written.
GET  blocks/<size>/<offset>[?compression=lz4|uncompressed]
                              The stored blocks of a block-aligned box in (z, y, x) order, each
                              framed as int32 bx, by, bz, int32 length, then a bare LZ4 block
                              (default) or the raw labels. Missing blocks are omitted.
GET  specificblocks?blocks=x1,y1,z1,...[&compression=]
                              Listed blocks, framed as for uint8blk's (stored payload by default).
GET  subvolblocks/<size>/<offset>[?compression=]
                              As for uint8blk.
POST sync[?replace=true]      Body {"sync": "name1,name2"}: labelvol instances (same BlockSize)
                              this one receives changes from (replace=true replaces the list; ""
                              clears it). For a labelvol to index this volume, POST the sync on
                              the labelvol naming this instance (see the labelvol help).
POST pyramid?levels=N         Build levels 1..N (NAME_1 ...): each voxel of a level is the most
                              frequent non-zero label of its 2x2x2 cube below (ties: the smaller
                              label; 0 only if all eight are 0). Later writes keep them current.

"""
    + CUTOUT_HELP
    + """
Errors: 400 malformed geometry, bodies, points or options (google output needs sizes that are
multiples of 8); 404 unknown pyramid level; 406 an Accept header a volume read cannot answer; 409
write to a committed version; 413 over the voxel limit (max_request_voxels) or, for responses
built in memory, over max_body_bytes.
"""
)


LABEL_COMPRESSION = query(
    "compression",
    description="A volume's wire compression: lz4, gzip, google (neuroglancer compressed_segmentation)"
    " or googlegzip (the same, gzipped)",
    enum=("lz4", "gzip", "google", "googlegzip"),
)
HASH_QUERY = query("hash", description="The hex MD5 the body must have", pattern="[0-9a-fA-F]{32}")
LABEL_BLOCK_COMPRESSION = query(
    "compression",
    description="Block payloads: lz4 (default) or uncompressed",
    enum=("", "lz4", "uncompressed"),
)


def _label_route(route: Route) -> Route:
    """An image route as labelblk serves it: volume reads also offer the google encodings."""
    if route.endpoint in ("raw", "isotropic") and "GET" in route.methods:
        query = tuple(LABEL_COMPRESSION if q.name == "compression" else q for q in route.query)
        return dataclasses.replace(route, query=query)
    return route


class LabelSettings(ImageSettings):
    """labelblk creation settings: those of the image types, with 64^3 blocks by default."""

    BlockSize: tuple[int, int, int] = (64, 64, 64)


def _points(body: Any) -> np.ndarray:
    """Validate a JSON list of [x, y, z] integer points into an (n, 3) int64 array."""
    if not isinstance(body, list) or not all(
        isinstance(p, list) and len(p) == 3 and all(isinstance(c, int) and not isinstance(c, bool) for c in p)
        for p in body
    ):
        raise BadRequest("labels needs a JSON list of [x, y, z] integer points in the request body")
    return np.array(body, dtype=np.int64).reshape(-1, 3)


@register
class LabelBlk(ImageBlk):
    type_name = "labelblk"
    type_url = "github.com/janelia-flyem/dvid/datatype/labelblk"
    type_version = "0.1"
    voxel_kind = "uint64"
    interpolable = False
    help_text = HELP
    Settings = LabelSettings
    sync_requires: ClassVar[tuple[type, ...]] = (sync.LabelEditor,)
    output_compressions: ClassVar[tuple[str, ...]] = ("lz4", "gzip", "google", "googlegzip")
    routes = (
        *(_label_route(r) for r in ImageBlk.routes if r.endpoint != "blocks"),
        Route("blocks", ("GET",), "handle_label_blocks", mutates=False, heavy=True,
              summary="The stored blocks of a block-aligned box, framed, as bare LZ4 blocks or raw labels",
              args=(SIZE3, OFFSET), query=(LABEL_BLOCK_COMPRESSION, SCALE, THROTTLE_QUERY),
              produces=(BINARY,)),
        Route("label", ("GET", "HEAD"), "handle_label", mutates=False, summary="The label at a voxel",
              args=(POINT,), query=(SCALE,)),
        Route("labels", ("GET",), "handle_labels", mutates=False,
              summary="The labels at the voxels the body lists ([[x,y,z], ...])",
              query=(HASH_QUERY, SCALE),
              consumes=(JSON,)),
        Route("pseudocolor", ("GET", "HEAD"), "handle_pseudocolor", mutates=False,
              summary="A slice colored per label", args=(DIMS, SIZE, OFFSET, IMAGE_FORMAT),
              query=(SCALE, ROI_QUERY), produces=IMAGES, statuses=(413,)),
    )  # fmt: skip

    def values_info(self) -> list[dict[str, str]]:
        return [{"DataType": "uint64", "Label": "labelblk"}]

    def label_source(self) -> LabelBlk:
        """A labelblk is its own label source (see dvid.datatype.common.sync.LabelProvider)."""
        return self

    def check_sync_target(self, target: Any) -> None:
        other = tuple(getattr(target, "block_size", ()))
        if other != self.block_size:
            raise BadRequest(
                f"labelblk {self.name!r} has BlockSize {list(self.block_size)} but {target.type_name}"
                f" {target.name!r} has {list(other)}: they must be equal to sync"
            )

    def info(self) -> dict[str, Any]:
        """DVID's labelblk info has no top-level Extents (Extended carries MinPoint/MaxPoint)."""
        return {"Base": self.base_info(), "Extended": self.extended_info()}

    def downsample(self, vol: np.ndarray) -> np.ndarray:
        from dvid.datatype.common.labels import downsample_labels_2x

        return downsample_labels_2x(vol)

    def compressed_volume_response(self, vol: np.ndarray, wire: str) -> web.Response:
        if wire == "google":
            from dvid.datatype.common.labels import encode_google

            return web.Response(body=encode_google(vol), content_type="application/octet-stream")
        if wire == "googlegzip":
            from dvid.datatype.common.labels import encode_googlegzip

            return web.Response(
                body=encode_googlegzip(vol),
                content_type="application/octet-stream",
                headers={"Content-Encoding": "gzip"},
            )
        return super().compressed_volume_response(vol, wire)

    # ---- model -------------------------------------------------------------------------------
    def labels_at(self, ctx: Any, points: np.ndarray) -> np.ndarray:
        """The labels at (n, 3) voxel points: each distinct block read once (one range read per block
        row where they are dense in it), vectorized lookups."""
        out = np.zeros(len(points), dtype=np.uint64)
        if not len(points):
            return out
        bs = np.array(self.block_size, dtype=np.int64)
        blocks = points // bs
        uniq, inverse = np.unique(blocks, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        local = points - blocks * bs
        order = np.argsort(inverse, kind="stable")  # the points of block i: order[bounds[i]:bounds[i + 1]]
        bounds = np.searchsorted(inverse[order], np.arange(len(uniq) + 1)).tolist()
        rows: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for i, (bx, by, bz) in enumerate(uniq.tolist()):
            rows.setdefault((by, bz), []).append((bx, i))
        for (by, bz), row in rows.items():
            lo, hi = row[0][0], row[-1][0]  # uniq is sorted: x ascends within a row
            if len(row) > 1 and hi - lo + 1 <= 2 * len(row) + 8:
                stored_row = self.blocks.read_row(ctx, lo, hi, by, bz)
                values = [(i, stored_row.get(bx)) for bx, i in row]
            else:
                values = [(i, ctx.get(self.blocks.tkey(bx, by, bz))) for bx, i in row]
            for i, stored in values:
                if stored is None:
                    continue
                sel = order[bounds[i] : bounds[i + 1]]
                out[sel] = self.blocks.codec.values_at(stored, local[sel][:, ::-1])
        return out

    # ---- handlers ----------------------------------------------------------------------------
    def _label_target(self, req: InstanceRequest) -> tuple[LabelBlk, DataContext]:
        """The level (``?scale=``) a label read goes to: a labelblk too."""
        inst, ctx = self._target(req)
        assert isinstance(inst, LabelBlk)
        return inst, ctx

    async def handle_label(self, req: InstanceRequest) -> web.StreamResponse:
        point = np.array([parse_ints(req.arg(0, "a point x_y_z"), 3, "point")], dtype=np.int64)
        inst, ctx = self._label_target(req)
        (label,) = inst.labels_at(ctx, point)
        return json_response({"Label": int(label)})

    async def handle_labels(self, req: InstanceRequest) -> web.StreamResponse:
        body = await req.body()
        expected_hash = req.query.get("hash")
        if expected_hash and hashlib.md5(body).hexdigest() != expected_hash.lower():
            raise BadRequest("the request body's MD5 does not match the hash parameter")
        points = _points(jsonio.loads(body))
        inst, ctx = self._label_target(req)
        labels = await asyncio.to_thread(inst.labels_at, ctx, points)
        return json_bytes_response(b"[" + b",".join(str(int(v)).encode() for v in labels) + b"]")

    async def handle_pseudocolor(self, req: InstanceRequest) -> web.StreamResponse:
        from dvid.datatype.common import imageio
        from dvid.datatype.common.labels import pseudocolor

        if len(req.args) < 3:
            raise BadRequest("expect pseudocolor/<dims>/<size>/<offset>[/<format>]")
        sub = parse_subvolume(req.args[0], req.args[1], req.args[2])
        if sub.is_3d:
            raise BadRequest("pseudocolor gives 2-D images: use dims 0_1, 0_2 or 1_2")
        fmt = imageio.parse_image_format(req.args[3] if len(req.args) > 3 else None)
        inst, ctx = self._target(req)
        inst = self._masked(req, inst)
        req.limits.check_in_memory(sub.box.voxels * 8)

        def render() -> bytes:
            plane = _plane(inst.blocks.read_box(ctx, sub.box), sub.dims)
            return imageio.encode_slice(pseudocolor(plane), "rgba8", fmt)

        return web.Response(body=await asyncio.to_thread(render), content_type=fmt.content_type)

    async def handle_label_blocks(self, req: InstanceRequest) -> web.StreamResponse:
        box = self.aligned_box(req)
        compression = req.query.get("compression", "lz4") or "lz4"
        if compression not in ("lz4", "uncompressed"):
            raise BadRequest(f'compression for label blocks must be lz4 or uncompressed, got "{compression}"')
        inst, ctx = self._target(req)
        req.limits.check_voxels(box.voxels)
        first, last = box.block_range(inst.block_size)
        codec = inst.blocks.codec

        def payload(stored: bytes) -> bytes:
            if compression == "uncompressed":
                return codec.decode(stored).tobytes()
            if envelope.read_header(stored) == (envelope.LZ4, envelope.CHECKSUM_NONE):
                return envelope.payload(stored)[4:]  # an lz4 block after its size: what is sent
            return lz4.block.compress(codec.decode(stored), store_size=False)

        def pieces():
            for coord, stored in inst.blocks.iter_stored(ctx, first, last):
                yield frame_block(coord, payload(stored))

        return await stream_pieces(req, "application/octet-stream", pieces())
