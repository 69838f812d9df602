"""The registered annotation datatype: its routes and their HTTP handlers over the model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from dvid.datatype.base import Route
from dvid.datatype.common import elements as el
from dvid.datatype.common import jsonio, sync
from dvid.datatype.common.elements import Element, Pos
from dvid.datatype.common.gcpause import gc_paused
from dvid.datatype.common.geometry import Box, Point, parse_ints
from dvid.datatype.common.request import InstanceRequest, json_bytes_response, json_response
from dvid.datatype.common.route import (
    BODY_LABEL,
    JSON,
    OFFSET,
    POINT,
    SIZE3,
    THROTTLE_QUERY,
    Param,
    flag,
)
from dvid.datatype.common.streaming import stream_pieces
from dvid.datatype.registry import register
from dvid.errors import BadRequest, NotFound
from dvid.storage.versioned import DataContext

from .help import HELP, KAFKALOG, MOVE_FROM, MOVE_TO, RELATIONSHIPS
from .index import I32_MAX, I32_MIN, label_tkey, tag_tkey
from .model import AnnotationModel

MAX_LABEL = 2**64 - 1


def parse_label(text: str) -> int:
    try:
        label = int(text)
    except ValueError:
        raise BadRequest(f"label must be a decimal unsigned 64-bit integer, got {text!r}") from None
    if not 0 <= label <= MAX_LABEL:
        raise BadRequest(f"label must be a decimal unsigned 64-bit integer, got {text!r}")
    if label == 0:
        raise BadRequest("Label 0 is protected background value and cannot be used for query.")
    return label


def _loads(body: bytes, what: str = "request body") -> Any:
    """JSON of a request body: 400 (never a 500) for malformed, too deeply nested or non-Unicode text."""
    return jsonio.loads(body, what=what)


def _loads_object(body: bytes) -> dict[str, Any]:
    obj = _loads(body)
    if not isinstance(obj, dict):
        raise BadRequest(f"Malformed JSON request body: expected an object, got {type(obj).__name__}")
    return obj


def _check_index_value(label: int, value: str) -> None:
    """A label index value of POST labels must be what readers of the index can decode: a JSON array
    (or null) of elements (Rels, if any, are ignored)."""
    what = f"label {label} value"
    raw = value.encode()
    try:
        items = json.loads(raw) if value.strip() else None
    except (ValueError, RecursionError):
        raise BadRequest(f"{what} must be a string holding a JSON array of elements") from None
    if items is not None and not isinstance(items, list):
        raise BadRequest(f"{what} must be a string holding a JSON array of elements")
    jsonio.check_unicode(value, items, what)
    el.parse_stored(items or [], f"{what} element", with_rels=False)


def _point(text: str, what: str) -> Pos:
    return parse_ints(text, 3, what)  # type: ignore[return-value]


@register
class Annotation(AnnotationModel):
    """The registered ``annotation`` datatype: the model served over HTTP."""

    type_name = "annotation"
    type_url = "github.com/janelia-flyem/dvid/datatype/annotation"
    type_version = "0.1"
    help_text = HELP
    sync_requires = (sync.LabelProvider,)
    listens = (sync.BlockListener, sync.BodyListener)
    routes = (
        Route("elements", ("GET",), "handle_get_elements", mutates=False, heavy=True,
              summary="The elements in a box (null if none)", args=(SIZE3, OFFSET), query=(THROTTLE_QUERY,),
              statuses=(413,)),
        Route("elements", ("POST",), "handle_post_elements",
              summary="Add or replace elements (JSON array)", query=(KAFKALOG,), consumes=(JSON,),
              produces=()),
        Route("blocks", ("GET",), "handle_get_blocks", mutates=False, heavy=True,
              summary="The stored elements of every block in the box's block range", args=(SIZE3, OFFSET),
              query=(THROTTLE_QUERY,)),
        Route("blocks", ("POST",), "handle_post_blocks",
              summary="Replace the elements of blocks ({\"bx,by,bz\": [elements]})", query=(KAFKALOG,),
              consumes=(JSON,), produces=()),
        Route("all-elements", ("GET",), "handle_all_elements", mutates=False, heavy=True,
              summary="As blocks, over every block", query=(THROTTLE_QUERY,)),
        Route("scan", ("GET",), "handle_scan", mutates=False, heavy=True,
              summary="How many blocks are stored (and empty)",
              query=(flag("keysOnly", "Count keys only"), flag("byCoord", "Accepted and ignored"),
                     THROTTLE_QUERY)),
        Route("label", ("GET",), "handle_label", mutates=False,
              summary="The elements at voxels of the label", args=(BODY_LABEL,), query=(RELATIONSHIPS,)),
        Route("labels", ("POST",), "handle_post_labels",
              summary="Store label index entries verbatim ({\"label\": \"[elements]\"})",
              consumes=(JSON,), produces=()),
        Route("tag", ("GET",), "handle_tag", mutates=False, summary="The elements carrying a tag",
              args=(Param("tag", description="A tag (exact match)", example="t1"),), query=(RELATIONSHIPS,)),
        Route("roi", ("GET",), "handle_roi", mutates=False, heavy=True,
              summary="The elements in the blocks of a roi instance",
              args=(Param("roi", description="A roi instance's name, optionally ,<uuid> to read it there"),),
              query=(THROTTLE_QUERY,), statuses=(413,)),
        Route("element", ("DELETE",), "handle_delete_element", summary="Delete the element at a point",
              args=(POINT,), query=(KAFKALOG,), produces=()),
        Route("move", ("POST",), "handle_move", summary="Move the element at a point to another",
              args=(MOVE_FROM, MOVE_TO), query=(KAFKALOG,), produces=()),
        Route("reload", ("POST",), "handle_reload", heavy=True,
              summary="Rebuild the label and tag indexes from the blocks",
              query=(flag("check", "Accepted and ignored"), flag("inmemory", "Accepted and ignored"),
                     THROTTLE_QUERY)),
    )  # fmt: skip

    # ---- handlers ----------------------------------------------------------------------------
    async def handle_post_sync(self, req: InstanceRequest) -> web.StreamResponse:
        resp = await super().handle_post_sync(req)
        # the label source behind a synced labelvol joins the syncs: its block writes carry every
        # label change, labelvol's edits included
        extra = []
        for inst in self._synced():
            if isinstance(inst, sync.LabelProvider):
                src = inst.label_source()
                uuid = src.meta.data_uuid if src is not None else None
                if uuid is not None and uuid not in self.meta.syncs and uuid not in extra:
                    extra.append(uuid)
        if extra:
            self.meta.syncs = [*self.meta.syncs, *extra]
            self.save()
        return resp

    def _check_not_bulk(self, req: InstanceRequest) -> None:
        if self._bulk:
            raise BadRequest(
                f'cannot run {req.method} commands while "{self.name}" instance is undergoing bulk update'
            )

    def _box(self, req: InstanceRequest) -> Box:
        if len(req.args) < 2:
            raise BadRequest(f"expect {req.endpoint}/<size nx_ny_nz>/<offset x_y_z>")
        size = parse_ints(req.args[0], 3, "size", positive=True)
        offset = parse_ints(req.args[1], 3, "offset")
        return Box(offset, size)  # type: ignore[arg-type]

    async def handle_get_elements(self, req: InstanceRequest) -> web.StreamResponse:
        box = self._box(req)
        limit = req.limits.max_bytes_in_memory
        body = await asyncio.to_thread(self.elements_in_box, req.ctx, box, limit)
        return json_bytes_response(body)

    async def handle_post_elements(self, req: InstanceRequest) -> web.StreamResponse:
        self._check_not_bulk(req)
        body = await req.body()
        ctx, ancestry = req.ctx, req.ancestry

        def run() -> None:  # all of it off the event loop: parsing 10,000s of elements takes a while
            with gc_paused():
                self.post_elements(ctx, ancestry, el.parse_elements(_loads(body)))

        await asyncio.to_thread(run)
        return web.Response()

    def _stream_blocks(self, req: InstanceRequest, blocks: Iterator[tuple[Point, bytes]]):
        def pieces() -> Iterator[bytes]:
            yield b"{"
            sep = b""
            for (x, y, z), value in blocks:
                if not value:
                    continue
                yield b'%s"%d,%d,%d":%s' % (sep, x, y, z, value)
                sep = b","
            yield b"}"

        return stream_pieces(req, "application/json", pieces())

    async def handle_get_blocks(self, req: InstanceRequest) -> web.StreamResponse:
        box = self._box(req)
        first, last = box.block_range(self.block_size())
        scan_all = self.meta.tags.get("ScanAllForBlocks", "").lower() == "true"
        return await self._stream_blocks(req, self.iter_blocks(req.ctx, first, last, scan_all=scan_all))

    async def handle_all_elements(self, req: InstanceRequest) -> web.StreamResponse:
        if any(req.args):
            raise BadRequest("all-elements takes no further path segments")
        return await self._stream_blocks(req, self.iter_all_blocks(req.ctx))

    async def handle_post_blocks(self, req: InstanceRequest) -> web.StreamResponse:
        self._check_not_bulk(req)
        body = _loads_object(await req.body())

        def parse() -> dict[Point, list[Element]]:
            blocks: dict[Point, list[Element]] = {}
            for k, items in body.items():
                parts = k.split(",")
                try:
                    coord = tuple(int(p.strip()) for p in parts)
                except ValueError:
                    coord = ()
                if len(coord) != 3 or any(not I32_MIN <= c <= I32_MAX for c in coord):
                    raise BadRequest(f'block key "{k}" is not "bx,by,bz" (3 integers)')
                blocks[coord] = el.parse_elements(items, f"block {k} element")
            return blocks

        blocks = await asyncio.to_thread(parse)
        await asyncio.to_thread(self.post_blocks, req.ctx, req.ancestry, blocks)
        return web.Response()

    async def handle_scan(self, req: InstanceRequest) -> web.StreamResponse:
        keys_only = req.query_bool("keysOnly")
        req.query_bool("byCoord")
        return json_response(await asyncio.to_thread(self.scan, req.ctx, keys_only))

    @staticmethod
    def _rel_mode(req: InstanceRequest) -> str:
        value = req.query.get("relationships", "").strip().lower()
        if value == "verbose":
            return "verbose"
        return "true" if value and req.query_bool("relationships") else ""

    def _roi_context(self, req: InstanceRequest, spec: str) -> tuple[Any, DataContext]:
        """The ROI named by ``name`` (read at the request's version) or ``name,uuid``."""
        parts = spec.split(",")
        if len(parts) > 2:
            raise BadRequest(f'roi spec must be "name" or "name,uuid", got "{spec}"')
        if self.repo_access is None:
            raise BadRequest("roi queries need the repo of this instance")
        try:
            roi = self.repo_access.sibling(parts[0])
        except NotFound:
            raise BadRequest(f'no roi instance "{parts[0]}" in this repo') from None
        if roi.type_name != "roi":
            raise BadRequest(f"data {parts[0]!r} is of type {roi.type_name}, not roi")
        if tuple(roi.block_size) != self.block_size():  # type: ignore[attr-defined]
            raise BadRequest(
                f"roi {parts[0]!r} has BlockSize {list(roi.block_size)} but annotation {self.name!r}"  # type: ignore[attr-defined]
                f" uses {list(self.block_size())}: they must be equal"
            )
        if len(parts) == 1 or not roi.versioned:
            return roi, req.context_for(roi)
        return roi, roi.context(self.repo_access.version_ancestry(parts[1]))

    async def handle_roi(self, req: InstanceRequest) -> web.StreamResponse:
        roi, roi_ctx = self._roi_context(req, req.arg(0, "a roi name[,uuid]"))
        limit = req.limits.max_bytes_in_memory

        def run() -> bytes:
            return self.elements_in_roi(req.ctx, roi.get_spans(roi_ctx), limit)

        return json_bytes_response(await asyncio.to_thread(run))

    async def handle_label(self, req: InstanceRequest) -> web.StreamResponse:
        label = parse_label(req.arg(0, "a label"))
        mode = self._rel_mode(req)
        body = await asyncio.to_thread(self.index_json, req.ctx, label_tkey(label), f"label {label}", mode)
        return json_bytes_response(body)

    async def handle_tag(self, req: InstanceRequest) -> web.StreamResponse:
        tag = req.arg(0, "a tag")
        if "\x00" in tag:
            raise BadRequest("tags cannot contain NUL")
        mode = self._rel_mode(req)
        body = await asyncio.to_thread(self.index_json, req.ctx, tag_tkey(tag), f"tag {tag!r}", mode)
        return json_bytes_response(body)

    async def handle_post_labels(self, req: InstanceRequest) -> web.StreamResponse:
        self._check_not_bulk(req)
        if any(req.args):
            raise BadRequest("labels takes no further path segments")
        body = _loads_object(await req.body())
        values: dict[int, bytes] = {}
        for k, v in body.items():
            try:
                label = int(k)
            except ValueError:
                raise BadRequest(f"label {k!r} is not an unsigned 64-bit integer") from None
            if not 0 <= label <= MAX_LABEL:
                raise BadRequest(f"label {k!r} is not an unsigned 64-bit integer")
            if not isinstance(v, str):
                raise BadRequest(f"label {k}: the value must be a string holding a JSON array")
            if label:
                _check_index_value(label, v)
                values[label] = v.encode()
        await asyncio.to_thread(self.post_labels, req.ctx, values)
        return web.Response()

    async def handle_delete_element(self, req: InstanceRequest) -> web.StreamResponse:
        self._check_not_bulk(req)
        pos = _point(req.arg(0, "a point x_y_z"), "point")
        await asyncio.to_thread(self.delete_element, req.ctx, req.ancestry, pos)
        return web.Response()

    async def handle_move(self, req: InstanceRequest) -> web.StreamResponse:
        self._check_not_bulk(req)
        frm = _point(req.arg(0, "a from point x_y_z"), "from point")
        to = _point(req.arg(1, "a to point x_y_z"), "to point")
        await asyncio.to_thread(self.move_element, req.ctx, req.ancestry, frm, to)
        return web.Response()

    async def handle_reload(self, req: InstanceRequest) -> web.StreamResponse:
        self._check_not_bulk(req)
        req.query_bool("check")
        req.query_bool("inmemory", True)
        with self.job("reload", f"relabelling the elements from the synced labels at {req.uuid[:8]}"):
            result = await asyncio.to_thread(self.reload, req.ctx, req.ancestry)
        return json_response(result)
