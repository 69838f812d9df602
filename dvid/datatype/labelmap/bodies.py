"""labelmap's body bookkeeping endpoints: label counters (``maxlabel``, ``nextlabel``,
``set-nextlabel``), the mapping (``mapping``, ``mappings``, ``map-stats``), label indexes
(``index``, ``indices``, ``indices-compressed``) and what they answer (``supervoxels``, ``size``,
``sizes``, ``supervoxel-sizes``, ``listlabels``, ``existing-labels``)."""

from __future__ import annotations

import asyncio
import hashlib
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
from aiohttp import web

from dvid.dag.ancestry import Ancestry
from dvid.datatype.common import jsonio
from dvid.datatype.common.numbers import MAX_LABEL, label_list, parse_decimal, parse_label
from dvid.datatype.common.request import InstanceRequest, json_bytes_response, json_response, octet_response
from dvid.datatype.common.streaming import stream_pieces
from dvid.datatype.labelmap import proto
from dvid.datatype.labelmap.core import LabelMapCore, u64
from dvid.datatype.labelmap.labelindex import LabelIndex, decode_stored, index_tkey
from dvid.datatype.labelmap.tkeys import (
    MAXLABEL_TKEY,
    NEXTLABEL_CEILING_TKEY,
    NEXTLABEL_TKEY,
    REPO_MAXLABEL_TKEY,
    snapshot_tkey,
)
from dvid.errors import BadRequest, NotFound
from dvid.storage.versioned import DataContext

#: Labels one ``nextlabel`` POST may reserve.
MAX_RESERVE = 2**32
#: Labels one ``indices`` GET may ask for (DVID's limit).
MAX_INDICES = 50_000
#: The largest label ``POST maxlabel`` may set (DVID's cap).
MAX_POSTED_MAXLABEL = 2**48


class LabelMapBodies(LabelMapCore):
    """Counters, mapping and label-index endpoints over :class:`LabelMapCore`."""

    # ---- label counters ------------------------------------------------------------------------
    def next_label(self, ancestry: Ancestry) -> int:
        """The label ``nextlabel`` hands out next: the one set by ``set-nextlabel``, else one more than
        the largest label written or reserved in the repo or written at this version. (The repo's
        is kept at the root, which a transfer of later versions does not send again: a version
        received that way brings its own max label, which the receiver's root may not know.)"""
        root = self.root_context(ancestry)
        stored = u64(root.get(NEXTLABEL_TKEY))
        if stored:
            return stored
        version_max = u64(self.context_at(ancestry).get(MAXLABEL_TKEY))
        return max(u64(root.get(REPO_MAXLABEL_TKEY)), version_max) + 1

    def reserve_labels(self, ancestry: Ancestry, count: int) -> tuple[int, int]:
        """Hand out ``count`` new labels (persisted, never handed out twice): ``(first, last)``."""
        with self.label_lock:
            root = self.root_context(ancestry)
            start = self.next_label(ancestry)
            end = start + count - 1
            ceiling = u64(root.get(NEXTLABEL_CEILING_TKEY))
            if ceiling and end > ceiling:
                raise BadRequest(f"cannot reserve {count} labels from {start}: the ceiling is {ceiling}")
            if end > MAX_LABEL:
                raise BadRequest(f"cannot reserve {count} labels: the labels above {start - 1} run out")
            with root.batch() as batch:
                if u64(root.get(NEXTLABEL_TKEY)):
                    batch.put(NEXTLABEL_TKEY, struct.pack("<Q", end + 1))
                if end > u64(root.get(REPO_MAXLABEL_TKEY)):
                    batch.put(REPO_MAXLABEL_TKEY, struct.pack("<Q", end))
            return start, end

    def set_next_label(self, ancestry: Ancestry, label: int, ceiling: int) -> None:
        with self.label_lock:
            root = self.root_context(ancestry)
            with root.batch() as batch:
                batch.put(NEXTLABEL_TKEY, struct.pack("<Q", label))
                batch.put(NEXTLABEL_CEILING_TKEY, struct.pack("<Q", ceiling))

    async def handle_maxlabel(self, req: InstanceRequest) -> web.StreamResponse:
        return json_response({"maxlabel": u64(await req.small(req.ctx.get, MAXLABEL_TKEY))})

    async def handle_post_maxlabel(self, req: InstanceRequest) -> web.StreamResponse:
        label = parse_label(req.arg(0, "the max label"), what="maxlabel")
        if label > MAX_POSTED_MAXLABEL:
            raise BadRequest(f"maxlabel can be set to at most 2^48, not {label}")

        def store() -> None:
            with req.ctx.batch() as batch:
                self.raise_maxlabel(batch, req.ancestry, label)

        await asyncio.to_thread(store)
        return web.Response()

    async def handle_get_nextlabel(self, req: InstanceRequest) -> web.StreamResponse:
        return json_response({"nextlabel": await req.small(self.next_label, req.ancestry)})

    async def handle_post_nextlabel(self, req: InstanceRequest) -> web.StreamResponse:
        text = req.arg(0, "the number of labels to reserve")
        count = parse_decimal(text, signed=False)
        if count is None or not 0 < count <= MAX_RESERVE:
            raise BadRequest(f"nextlabel/<count> reserves 1 to {MAX_RESERVE} labels, got {text!r}")
        start, end = await asyncio.to_thread(self.reserve_labels, req.ancestry, count)
        return json_response({"start": start, "end": end})

    async def handle_set_nextlabel(self, req: InstanceRequest) -> web.StreamResponse:
        label = parse_label(req.arg(0, "the next label"), what="next label", allow_zero=True)
        ceiling_text = req.query.get("ceiling", "")
        ceiling = parse_label(ceiling_text, what="ceiling", allow_zero=True) if ceiling_text else 0
        if ceiling and label > ceiling:
            raise BadRequest(f"the next label {label} is above the ceiling {ceiling}")
        await asyncio.to_thread(self.set_next_label, req.ancestry, label, ceiling)
        return web.Response()

    # ---- the mapping ---------------------------------------------------------------------------
    def mapped_existing(self, ctx: DataContext, svs: np.ndarray) -> np.ndarray:
        """The bodies of supervoxels, 0 for those no body's index holds (unknown or retired)."""
        bodies = self.mapping.lookup(ctx, svs)
        out = bodies.copy()
        for body in np.unique(bodies[bodies != 0]).tolist():
            index = self.indexes.get(ctx, body)
            sel = bodies == body
            known = index.supervoxels() if index is not None else np.zeros(0, dtype=np.uint64)
            out[sel & ~np.isin(svs, known)] = 0
        return out

    async def handle_mapping(self, req: InstanceRequest) -> web.StreamResponse:
        svs = np.array(label_list(jsonio.loads(await req.body()), "mapping body"), dtype=np.uint64)
        if req.query_bool("nolookup"):
            bodies = await asyncio.to_thread(self.mapping.lookup, req.ctx, svs)
        else:
            self.check_indexed("mapping without nolookup=true")
            bodies = await asyncio.to_thread(self.mapped_existing, req.ctx, svs)
        return json_bytes_response(_json_ints(bodies))

    async def handle_get_mappings(self, req: InstanceRequest) -> web.StreamResponse:
        binary = req.query.get("format", "") == "binary"
        svs, bodies = await asyncio.to_thread(self.mapping.assignments, req.ctx)

        def pieces() -> Iterator[bytes]:
            step = 1 << 16
            for i in range(0, len(svs), step):
                a, b = svs[i : i + step], bodies[i : i + step]
                if binary:
                    yield np.stack([a, b], axis=1).astype("<u8").tobytes()
                else:
                    yield "".join(f"{s} {t}\n" for s, t in zip(a.tolist(), b.tolist(), strict=True)).encode()

        content_type = "application/octet-stream" if binary else "text/plain"
        return await stream_pieces(req, content_type, pieces())

    async def handle_post_mappings(self, req: InstanceRequest) -> web.StreamResponse:
        ops = proto.MappingOps()
        try:
            ops.ParseFromString(await req.body())
        except Exception as exc:  # protobuf's DecodeError and friends
            raise BadRequest(f"mappings body is not a MappingOps protobuf: {exc}") from None
        originals = [np.array(op.original, dtype=np.uint64) for op in ops.mappings]
        svs = np.concatenate(originals) if originals else np.zeros(0, dtype=np.uint64)
        bodies = np.concatenate(
            [np.full(len(o), op.mapped, dtype=np.uint64)
             for o, op in zip(originals, ops.mappings, strict=True)]
        ) if originals else np.zeros(0, dtype=np.uint64)  # fmt: skip
        if len(svs) and not svs.all():
            raise BadRequest("mappings: supervoxel 0 (background) cannot be mapped")
        await asyncio.to_thread(self.store_mapping, req.ctx, svs, bodies)
        return web.Response()

    def store_mapping(self, ctx: DataContext, svs: np.ndarray, bodies: np.ndarray) -> None:
        """Assign supervoxels to bodies at ``ctx``'s version (later pairs win)."""
        with self.write_lock, ctx.batch() as batch:
            self.mapping.set(ctx, batch, svs, bodies)

    async def handle_map_stats(self, req: InstanceRequest) -> web.StreamResponse:
        svs, bodies = await asyncio.to_thread(self.mapping.assignments, req.ctx)
        return json_response({
            "MapEntries": len(svs),
            "Bodies": len(np.unique(bodies[bodies != 0])),
            "Retired": int(np.count_nonzero(bodies == 0)),
        })  # fmt: skip

    # ---- label indexes -------------------------------------------------------------------------
    def body_index(self, ctx: DataContext, label: int, supervoxels: bool = False) -> LabelIndex | None:
        """The index of body ``label``, or, with ``supervoxels``, of the one supervoxel (its body's
        index restricted to it); None if it has no voxels."""
        if not supervoxels:
            index = self.indexes.get(ctx, label)
        else:
            body = int(self.mapping.lookup(ctx, np.array([label], dtype=np.uint64))[0])
            index = self.indexes.get(ctx, body) if body else None
            if index is not None:
                index = index.restricted(np.array([label], dtype=np.uint64))
        return None if index is None or index.is_empty else index

    def body_supervoxels(self, ctx: DataContext, body: int) -> np.ndarray:
        """The supervoxels of ``body`` per its label index, ascending (empty if it has no voxels):
        what a ``SupervoxelSource`` answers (tarsupervoxels)."""
        index = self.body_index(ctx, body)
        return np.empty(0, dtype=np.uint64) if index is None else index.supervoxels()

    def _indexed_body(self, req: InstanceRequest, what: str) -> tuple[int, LabelIndex]:
        self.check_indexed(what)
        label = parse_label(req.arg(0, "a label"))
        index = self.body_index(req.ctx, label, req.query_bool("supervoxels"))
        if index is None:
            kind = "supervoxel" if req.query_bool("supervoxels") else "label"
            raise NotFound(f"{kind} {label} has no voxels")
        return label, index

    def index_as_of(self, ctx: DataContext, label: int, mutid: int | None) -> LabelIndex | None:
        """A body's index now, or as it was after edit ``mutid`` (from the snapshot kept by the
        first edit after it that changed the body)."""
        if mutid is not None:
            later = list(ctx.range(snapshot_tkey(label, 2**64 - 1), snapshot_tkey(label, mutid + 1)))
            if later:
                stored = later[-1][1]
                return decode_stored(stored) if stored else None
        return self.indexes.get(ctx, label)

    async def handle_index_version(self, req: InstanceRequest) -> web.StreamResponse:
        self.check_indexed("index-version")
        label = parse_label(req.arg(0, "a label"))
        version = await req.small(req.ctx.version_of, index_tkey(label))
        if version is None or self.repo_access is None:
            raise NotFound(f"label {label} has no index")
        return web.Response(text=self.repo_access.version_uuid(version), content_type="text/plain")

    async def handle_get_index(self, req: InstanceRequest) -> web.StreamResponse:
        self.check_indexed("index")
        label = parse_label(req.arg(0, "a label"))
        mutid_text = req.query.get("mutid", "")
        mutid = parse_label(mutid_text, what="mutid", allow_zero=True) if mutid_text else None
        index = await asyncio.to_thread(self.index_as_of, req.ctx, label, mutid)
        if index is None or index.is_empty:
            raise NotFound(f"label {label} has no index")
        if req.query_bool("metadata-only"):
            return json_response({
                "num_voxels": index.num_voxels(),
                "last_mutid": index.last_mutid,
                "last_mod_time": index.last_mod_time,
                "last_mod_user": index.last_mod_user,
                "last_mod_app": index.last_mod_app,
            })  # fmt: skip
        return octet_response(await asyncio.to_thread(index.to_bytes))

    async def handle_post_index(self, req: InstanceRequest) -> web.StreamResponse:
        self.check_indexed("index")
        label = parse_label(req.arg(0, "a label"))
        index = _parse_index(await req.body()).relabeled(label)
        await asyncio.to_thread(self.store_indexes, req.ctx, [index])
        return web.Response()

    def store_indexes(self, ctx: DataContext, indexes: list[LabelIndex]) -> None:
        """Store posted indexes as they are (an empty one deletes), raising the max labels to the
        largest supervoxel they hold."""
        with self.write_lock, ctx.batch() as batch:
            top = 0
            for index in indexes:
                self.indexes.put(batch, index)
                svs = index.supervoxels()
                top = max(top, index.label, int(svs.max()) if len(svs) else 0)
            if top:
                self.raise_maxlabel(batch, ctx.ancestry, top)

    async def handle_get_indices(self, req: InstanceRequest) -> web.StreamResponse:
        self.check_indexed("indices")
        labels = label_list(jsonio.loads(await req.body()), "indices body", limit=MAX_INDICES)

        def build() -> bytes:
            out = proto.LabelIndices()
            for label, index in zip(labels, self.indexes.get_many(req.ctx, labels), strict=True):
                msg = out.indices.add()
                if index is not None:
                    msg.CopyFrom(index.to_message())
                msg.label = label
            return out.SerializeToString()

        return octet_response(await asyncio.to_thread(build))

    async def handle_post_indices(self, req: InstanceRequest) -> web.StreamResponse:
        self.check_indexed("indices")
        body = await req.body()
        msg = proto.LabelIndices()
        try:
            msg.ParseFromString(body)
        except Exception as exc:
            raise BadRequest(f"indices body is not a LabelIndices protobuf: {exc}") from None
        indexes = [LabelIndex.from_message(m) for m in msg.indices]
        if any(index.label == 0 for index in indexes):
            raise BadRequest("indices: every LabelIndex needs a non-zero label")
        await asyncio.to_thread(self.store_indexes, req.ctx, indexes)
        return web.Response()

    async def handle_indices_compressed(self, req: InstanceRequest) -> web.StreamResponse:
        self.check_indexed("indices-compressed")
        labels = label_list(jsonio.loads(await req.body()), "indices-compressed body", limit=MAX_INDICES)

        def pieces() -> Iterator[bytes]:
            for label in labels:
                stored = self.indexes.stored(req.ctx, label) or b""
                yield struct.pack("<QQ", len(stored), label) + stored

        return await stream_pieces(req, "application/octet-stream", pieces())

    # ---- what the indexes answer ---------------------------------------------------------------
    async def handle_supervoxels(self, req: InstanceRequest) -> web.StreamResponse:
        _, index = await asyncio.to_thread(self._indexed_body, req, "supervoxels")
        return json_bytes_response(_json_ints(index.supervoxels()))

    async def handle_supervoxel_sizes(self, req: InstanceRequest) -> web.StreamResponse:
        _, index = await asyncio.to_thread(self._indexed_body, req, "supervoxel-sizes")
        svs, sizes = index.sv_sizes()
        return json_bytes_response(
            b'{"supervoxels":' + _json_ints(svs) + b',"sizes":' + _json_ints(sizes) + b"}"
        )

    async def handle_size(self, req: InstanceRequest) -> web.StreamResponse:
        _, index = await asyncio.to_thread(self._indexed_body, req, "size")
        return json_response({"voxels": index.num_voxels()})

    async def handle_sizes(self, req: InstanceRequest) -> web.StreamResponse:
        self.check_indexed("sizes")
        body = await req.body()
        expected_hash = req.query.get("hash")
        if expected_hash and hashlib.md5(body).hexdigest() != expected_hash.lower():
            raise BadRequest("the request body's MD5 does not match the hash parameter")
        labels = label_list(jsonio.loads(body), "sizes body")
        supervoxels = req.query_bool("supervoxels")

        def sizes() -> list[int]:
            out = []
            for label in labels:
                index = self.body_index(req.ctx, label, supervoxels) if label else None
                out.append(index.num_voxels() if index is not None else 0)
            return out

        return json_bytes_response(_json_ints(await asyncio.to_thread(sizes)))

    async def handle_listlabels(self, req: InstanceRequest) -> web.StreamResponse:
        self.check_indexed("listlabels")
        start = _query_label(req, "start", 0)
        number = _query_label(req, "number", 0)
        with_sizes = req.query_bool("sizes")

        def pieces() -> Iterator[bytes]:
            chunk: list[int] = []
            for sent, label in enumerate(self.indexes.labels(req.ctx, start)):
                if number and sent >= number:
                    break
                chunk.append(label)
                if with_sizes:
                    index = self.indexes.get(req.ctx, label)
                    chunk.append(index.num_voxels() if index is not None else 0)
                if len(chunk) >= 8192:
                    yield np.array(chunk, dtype="<u8").tobytes()
                    chunk = []
            if chunk:
                yield np.array(chunk, dtype="<u8").tobytes()

        return await stream_pieces(req, "application/octet-stream", pieces())

    async def handle_existing_labels(self, req: InstanceRequest) -> web.StreamResponse:
        self.check_indexed("existing-labels")

        def pieces() -> Iterator[bytes]:
            first = True
            yield b"["
            for label in self.indexes.labels(req.ctx, 0):
                yield (b"" if first else b",") + str(label).encode()
                first = False
            yield b"]"

        return await stream_pieces(req, "application/json", pieces())


def _json_ints(values: Any) -> bytes:
    return b"[" + b",".join(str(int(v)).encode() for v in np.asarray(values).tolist()) + b"]"


def _query_label(req: InstanceRequest, name: str, default: int) -> int:
    text = req.query.get(name, "")
    return parse_label(text, what=name, allow_zero=True) if text else default


def _parse_index(body: bytes) -> LabelIndex:
    try:
        return LabelIndex.from_bytes(body)
    except Exception as exc:
        raise BadRequest(f"index body is not a LabelIndex protobuf: {exc}") from None
