"""labelmap's sparse volumes, computed from the label index and the supervoxel blocks: ``sparsevol``
(rles, srles and blocks formats, any scale, bounds), ``sparsevol-by-point``, ``sparsevol-size``,
``sparsevol-coarse``, ``sparsevols-coarse`` and ``proximity``."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator

import numpy as np
from aiohttp import web

from dvid.datatype.common import rle
from dvid.datatype.common.bounds import Bounds
from dvid.datatype.common.geometry import parse_ints
from dvid.datatype.common.numbers import parse_label
from dvid.datatype.common.request import InstanceRequest, json_bytes_response, json_response, octet_response
from dvid.datatype.common.streaming import stream_pieces
from dvid.datatype.common.wire import compress_wire
from dvid.datatype.labelmap.bodies import LabelMapBodies
from dvid.datatype.labelmap.labelindex import LabelIndex, unpack_block_keys
from dvid.errors import BadRequest, NotFound
from dvid.storage.versioned import DataContext

SPARSEVOL_FORMATS = ("rles", "srles", "blocks")
#: Blocks decoded per worker hop while a sparse volume streams.
BLOCKS_PER_PIECE = 16


class LabelMapSparsevol(LabelMapBodies):
    """Sparse-volume reads over :class:`LabelMapBodies`."""

    # ---- model ---------------------------------------------------------------------------------
    def label_blocks(self, index: LabelIndex, scale: int, bounds: Bounds | None) -> np.ndarray:
        """The (n, 3) x, y, z blocks at ``scale`` holding the index's voxels, sorted by z, y, x,
        within the bounds (block-granular)."""
        coords = unpack_block_keys(np.unique(index.blocks))
        if scale:
            coords = np.unique(coords >> scale, axis=0)
        if bounds is not None and bounds.any and len(coords):
            keep = np.ones(len(coords), dtype=bool)
            for axis in range(3):
                lo, hi = bounds.block_limits(axis)
                keep &= (coords[:, axis] >= lo) & (coords[:, axis] <= hi)
            coords = coords[keep]
        order = np.lexsort((coords[:, 0], coords[:, 1], coords[:, 2]))
        return coords[order]

    def body_runs(
        self, ctx: DataContext, index: LabelIndex, scale: int, coords: np.ndarray
    ) -> Iterator[np.ndarray]:
        """The runs of the index's supervoxels, block by block (coords as from label_blocks)."""
        store = self.at_scale(scale)
        svs = index.supervoxels()
        bs = self.block_size
        for coord in coords.tolist():
            stored = ctx.get(store.blocks.tkey(*coord))
            if stored is None:
                continue
            block = store.label_codec.decode(stored)
            mask = np.isin(block, svs)
            if mask.any():
                origin = (coord[0] * bs[0], coord[1] * bs[1], coord[2] * bs[2])
                yield _mask_runs(mask, origin)

    def _index_for(self, req: InstanceRequest, label: int) -> LabelIndex | None:
        self.check_indexed("sparsevol")
        return self.body_index(req.ctx, label, req.query_bool("supervoxels"))

    # ---- handlers ------------------------------------------------------------------------------
    def _scale(self, req: InstanceRequest) -> int:
        scale = req.query_int("scale", 0) or 0
        if not 0 <= scale <= 255:
            raise BadRequest(f"scale must be between 0 and 255, got {scale}")
        return scale

    async def handle_sparsevol(self, req: InstanceRequest) -> web.StreamResponse:
        label = parse_label(req.arg(0, "a label"))
        return await self._sparsevol(req, label)

    async def handle_sparsevol_by_point(self, req: InstanceRequest) -> web.StreamResponse:
        point = np.array([parse_ints(req.arg(0, "a point x_y_z"), 3, "point")], dtype=np.int64)
        inst = self.view(req.ctx, 0, req.query_bool("supervoxels"))
        (label,) = await asyncio.to_thread(inst.labels_at, req.ctx, point)
        if int(label) == 0:
            raise NotFound(f"no label at point {tuple(int(v) for v in point[0])} (background)")
        return await self._sparsevol(req, int(label))

    async def _sparsevol(self, req: InstanceRequest, label: int) -> web.StreamResponse:
        fmt = req.query.get("format", "rles") or "rles"
        if fmt not in SPARSEVOL_FORMATS:
            raise BadRequest(f'sparsevol format must be rles, srles or blocks, got "{fmt}"')
        compression = req.query.get("compression", "")
        if compression not in ("", "lz4", "gzip"):
            raise BadRequest(f'compression for sparsevol must be lz4 or gzip, got "{compression}"')
        scale = self._scale(req)
        bounds = Bounds.from_query(req, self.block_size)
        exact = req.query_bool("exact", True)
        index = await asyncio.to_thread(self._index_for, req, label)
        coords = self.label_blocks(index, scale, bounds) if index is not None else np.zeros((0, 3), np.int64)
        if req.method == "HEAD":
            return web.Response(status=200 if len(coords) else 204)
        if not len(coords):
            return web.Response(status=404)
        assert index is not None
        if fmt == "blocks":
            body = await asyncio.to_thread(self._blocks_format, req.ctx, index, label, scale, coords)
            return octet_response(body)

        def build() -> bytes:
            parts = list(self.body_runs(req.ctx, index, scale, coords))
            runs = rle.merge_runs(np.concatenate(parts)) if parts else rle.empty_runs()
            if exact and bounds.any:
                runs = rle.clip_runs(runs, **bounds.values)
            body = rle.encode_sparsevol(runs) if fmt == "rles" else runs.astype("<i4").tobytes()
            return compress_wire(memoryview(body), compression) if compression else body

        body = await asyncio.to_thread(build)
        return octet_response(body)

    def _blocks_format(
        self, ctx: DataContext, index: LabelIndex, label: int, scale: int, coords: np.ndarray
    ) -> bytes:
        """DVID's ``format=blocks``: header u32 gx, gy, gz, u64 label; per block i32 x0, y0, z0 and a
        flag (0 none, 1 all, 2 mixed); mixed blocks list per 8^3 sub-block a flag and, if mixed, a
        64-byte mask (z, y, x order, LSB first)."""
        store = self.at_scale(scale)
        svs = index.supervoxels()
        bs = self.block_size
        gx, gy, gz = bs[0] // 8, bs[1] // 8, bs[2] // 8
        out = [struct.pack("<IIIQ", gx, gy, gz, label)]
        for coord in coords.tolist():
            stored = ctx.get(store.blocks.tkey(*coord))
            if stored is None:
                continue
            mask = np.isin(store.label_codec.decode(stored), svs)
            origin = struct.pack("<iii", coord[0] * bs[0], coord[1] * bs[1], coord[2] * bs[2])
            if not mask.any():
                continue
            if mask.all():
                out.append(origin + b"\x01")
                continue
            sub = mask.reshape(gz, 8, gy, 8, gx, 8).transpose(0, 2, 4, 1, 3, 5).reshape(-1, 512)
            counts = sub.sum(axis=1)
            flags = np.where(counts == 0, 0, np.where(counts == 512, 1, 2)).astype(np.uint8)
            packed = np.packbits(sub, axis=1, bitorder="little")
            parts = [origin, b"\x02"]
            for i, flag in enumerate(flags.tolist()):
                parts.append(bytes((flag,)))
                if flag == 2:
                    parts.append(packed[i].tobytes())
            out.append(b"".join(parts))
        return b"".join(out)

    async def handle_sparsevol_size(self, req: InstanceRequest) -> web.StreamResponse:
        label = parse_label(req.arg(0, "a label"))
        index = await asyncio.to_thread(self._index_for, req, label)
        if index is None:
            raise NotFound(f"label {label} has no voxels")
        coords = unpack_block_keys(np.unique(index.blocks))
        bs = np.array(self.block_size)
        lo, hi = coords.min(axis=0) * bs, (coords.max(axis=0) + 1) * bs - 1
        return json_response({
            "voxels": index.num_voxels(), "numblocks": len(coords),
            "minvoxel": lo.tolist(), "maxvoxel": hi.tolist(),
        })  # fmt: skip

    async def handle_sparsevol_coarse(self, req: InstanceRequest) -> web.StreamResponse:
        label = parse_label(req.arg(0, "a label"))
        index = await asyncio.to_thread(self._index_for, req, label)
        bounds = Bounds.from_query(req, self.block_size)
        coords = self.label_blocks(index, 0, bounds) if index is not None else np.zeros((0, 3), np.int64)
        if not len(coords):
            return web.Response(status=404)
        return octet_response(rle.encode_sparsevol_coarse(coords.astype(np.int32)))

    async def handle_sparsevols_coarse(self, req: InstanceRequest) -> web.StreamResponse:
        self.check_indexed("sparsevols-coarse")
        if len(req.args) < 2:
            raise BadRequest("expect sparsevols-coarse/<begin label>/<end label>")
        begin = parse_label(req.args[0], what="begin label", allow_zero=True)
        end = parse_label(req.args[1], what="end label", allow_zero=True)
        if end < begin:
            raise BadRequest(f"the end label {end} is below the begin label {begin}")

        def pieces() -> Iterator[bytes]:
            for label in self.indexes.labels(req.ctx, begin, end):
                index = self.indexes.get(req.ctx, label)
                if index is None or index.is_empty:
                    continue
                spans = _coarse_spans(self.label_blocks(index, 0, None))
                yield struct.pack("<Qi", label, len(spans)) + spans.astype("<i4").tobytes()

        return await stream_pieces(req, "application/octet-stream", pieces())

    async def handle_proximity(self, req: InstanceRequest) -> web.StreamResponse:
        self.check_indexed("proximity")
        text = req.arg(0, "labels l1,l2,...")
        labels = [parse_label(t) for t in text.split(",") if t]
        if len(labels) < 2:
            raise BadRequest("proximity needs at least two labels: proximity/<target>,<l2>,...")
        if labels[0] in labels[1:]:
            raise BadRequest("the two supplied labels were identical")
        result = await asyncio.to_thread(self.proximity, req.ctx, labels)
        return json_bytes_response(result)

    def proximity(self, ctx: DataContext, labels: list[int]) -> bytes:
        """For each other label, every block it shares with the target (the first label) and the
        least Euclidean voxel distance between the two there (DVID leaves "Label" out when there
        is only one other label)."""
        target, others = labels[0], labels[1:]
        indexes = self.indexes.get_many(ctx, labels)
        if indexes[0] is None or indexes[0].is_empty:
            raise NotFound(f"label {target} has no voxels")
        target_index = indexes[0]
        target_blocks = {tuple(c) for c in unpack_block_keys(np.unique(target_index.blocks)).tolist()}
        store = self.at_scale(0)
        distance_maps: dict[tuple[int, ...], np.ndarray] = {}
        parts = []
        for label, index in zip(others, indexes[1:], strict=True):
            if index is None or index.is_empty:
                continue
            shared = target_blocks & {tuple(c) for c in unpack_block_keys(np.unique(index.blocks)).tolist()}
            for coord in sorted(shared, key=lambda c: c[::-1]):
                stored = ctx.get(store.blocks.tkey(*coord))
                if stored is None:
                    continue
                block = store.label_codec.decode(stored)
                if coord not in distance_maps:
                    distance_maps[coord] = squared_distance_map(np.isin(block, target_index.supervoxels()))
                near = distance_maps[coord][np.isin(block, index.supervoxels())]
                if not len(near):
                    continue
                label_part = f'"Label":{label},' if len(others) > 1 else ""
                d = float(np.sqrt(near.min()))
                parts.append(f'{{"Block":[{coord[0]},{coord[1]},{coord[2]}],{label_part}"Distance":{d:g}}}')
        return ("[" + ",".join(parts) + "]").encode()


def squared_distance_map(mask: np.ndarray) -> np.ndarray:
    """The squared Euclidean distance of every voxel to the nearest True voxel of ``mask`` (a
    separable exact transform: one vectorized lower envelope of parabolas per axis)."""
    big = float(sum(n * n for n in mask.shape)) + 1.0
    dist = np.where(mask, 0.0, big)
    for axis in range(3):
        d = np.moveaxis(dist, axis, -1)
        n = d.shape[-1]
        offsets = (np.arange(n)[:, None] - np.arange(n)[None, :]) ** 2  # (out x, source i)
        d = np.min(d[..., None, :] + offsets, axis=-1)
        dist = np.moveaxis(d, -1, axis)
    return dist


def _mask_runs(mask: np.ndarray, origin: tuple[int, int, int]) -> np.ndarray:
    """Runs (x, y, z, length) of the True voxels of a (nz, ny, nx) block mask at voxel ``origin``."""
    _, ny, nx = mask.shape
    rows = mask.reshape(-1, nx).astype(np.int8)
    padded = np.zeros((rows.shape[0], nx + 2), dtype=np.int8)
    padded[:, 1:-1] = rows
    diff = np.diff(padded, axis=1)
    row_s, start = np.nonzero(diff == 1)
    _, stop = np.nonzero(diff == -1)
    z, y = np.divmod(row_s, ny)
    return np.stack([start + origin[0], y + origin[1], z + origin[2], stop - start], axis=1).astype(np.int32)


def _coarse_spans(coords: np.ndarray) -> np.ndarray:
    """Runs of x-consecutive blocks (bx, by, bz, length) of coords sorted by z, y, x."""
    if not len(coords):
        return np.zeros((0, 4), dtype=np.int32)
    c = np.asarray(coords, dtype=np.int64)
    breaks = np.flatnonzero((np.diff(c[:, 0]) != 1) | (np.diff(c[:, 1]) != 0) | (np.diff(c[:, 2]) != 0))
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks + 1, [len(c)]))
    return np.stack([c[starts, 0], c[starts, 1], c[starts, 2], ends - starts], axis=1).astype(np.int32)
