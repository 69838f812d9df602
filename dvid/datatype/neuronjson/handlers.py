"""The ``neuronjson`` datatype: its route table and the HTTP handlers (parse, call the model in a
thread, format). Spec: more-types.md §5."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from google.protobuf.message import DecodeError

from dvid.datatype.base import Datatype, InstanceMeta
from dvid.datatype.common import kvproto
from dvid.datatype.common.request import InstanceRequest, json_response
from dvid.datatype.common.route import BINARY, JSON, TAR, Param, Route, flag, query
from dvid.datatype.common.streaming import stream_pieces
from dvid.datatype.keyvalue import CONTENT_TYPES
from dvid.datatype.neuronjson import keys, output
from dvid.datatype.neuronjson.help import HELP_TEXT
from dvid.datatype.neuronjson.merge import WriteMode, now_rfc3339, parse_conditional
from dvid.datatype.neuronjson.model import Annotations, Write
from dvid.datatype.neuronjson.query import parse_query
from dvid.datatype.neuronjson.selection import Selection
from dvid.datatype.neuronjson.settings import NeuronJSONSettings
from dvid.datatype.neuronjson.values import Record, dumps
from dvid.datatype.registry import register
from dvid.errors import BadRequest, NotFound

BODY_KEY = Param("key", description='A body id (decimal u64), or "schema" / "schema_batch"', example="1000")
FIRST = Param("first", description="The first body id of the range (inclusive)", example="0")
LAST = Param("last", description="The last body id of the range (inclusive)", example="5000")
SELECT = (
    query("show", description="user, time or all: also return the *_user / *_time fields"),
    query("fields", description="Comma-separated fields to return (bodyid always comes along)"),
)
WRITE = (
    query("u", description="The user recorded in the *_user stamps (required)"),
    flag("replace", "Replace the stored object instead of merging into it"),
    query("conditional", description="Comma-separated fields that keep their stored value if they have one"),
    query("conditionals", description="Older name of conditional (used when conditional is empty)"),
)
OUTPUT = (
    flag("json", "Answer a JSON object mapping each body id to its annotation"),
    flag("tar", "Answer a tar archive, one file per body id"),
    flag("jsontar", "As tar"),
    flag("check", "Accepted; values are always valid JSON"),
)
BATCH_OUTPUT = (BINARY, JSON, TAR)
DOCUMENTS = ("json_schema", "schema", "schema_batch")
#: Bodies below this size are parsed on the event loop.
INLINE_BYTES = 16 << 10


def _document_routes(name: str) -> tuple[Route, ...]:
    return (
        Route(name, ("GET", "HEAD"), "handle_get_document", mutates=False,
              summary=f"The stored {name} document", produces=(JSON,)),
        Route(name, ("POST",), "handle_post_document", mutates=True,
              summary=f"Store the body as the {name} document", consumes=(JSON,), produces=()),
        Route(name, ("DELETE",), "handle_delete_document", mutates=True,
              summary=f"Delete the {name} document", produces=()),
    )  # fmt: skip


@register
class NeuronJSON(Datatype):
    """Per-body JSON annotations with field stamps and queries."""

    type_name = "neuronjson"
    type_url = "github.com/janelia-flyem/dvid/datatype/neuronjson"
    type_version = "0.1"
    help_text = HELP_TEXT
    Settings = NeuronJSONSettings

    routes = (
        Route("key", ("GET",), "handle_get_key", mutates=False, summary="A body's annotation",
              args=(BODY_KEY,), query=SELECT),
        Route("key", ("HEAD",), "handle_head_key", mutates=False, summary="Whether a body has an annotation",
              args=(BODY_KEY,), produces=()),
        Route("key", ("POST",), "handle_post_key", mutates=True,
              summary="Write a body's annotation (merged into the stored one)", args=(BODY_KEY,), query=WRITE,
              consumes=(JSON,), produces=()),
        Route("key", ("DELETE",), "handle_delete_key", mutates=True, summary="Delete a body's annotation",
              args=(BODY_KEY,), produces=()),
        Route("keys", ("GET", "HEAD"), "handle_keys", mutates=False, summary="Every body id, ascending"),
        Route("keyrange", ("GET", "HEAD"), "handle_keyrange", mutates=False,
              summary="The body ids from first to last (inclusive)", args=(FIRST, LAST)),
        Route("keyrangevalues", ("GET", "HEAD"), "handle_keyrangevalues", mutates=False,
              summary="The annotations of the ids from first to last", args=(FIRST, LAST),
              query=(*OUTPUT, *SELECT), produces=BATCH_OUTPUT),
        Route("keyvalues", ("GET", "HEAD"), "handle_get_keyvalues", mutates=False,
              summary="The annotations of the ids the body lists", query=(*OUTPUT, *SELECT),
              consumes=(BINARY, JSON), produces=BATCH_OUTPUT),
        Route("keyvalues", ("POST",), "handle_post_keyvalues", mutates=True,
              summary="Write the annotations of a protobuf KeyValues message", query=WRITE,
              consumes=(BINARY,), produces=()),
        Route("all", ("GET", "HEAD"), "handle_all", mutates=False, summary="Every annotation, ascending",
              query=SELECT),
        Route("fields", ("GET", "HEAD"), "handle_fields", mutates=False,
              summary="The fields annotations hold", query=(flag("counts", "Answer each field's count"),)),
        Route("fieldtimes", ("GET", "HEAD"), "handle_fieldtimes", mutates=False,
              summary="The latest time stamp of each field"),
        Route("query", ("GET", "HEAD", "POST"), "handle_query", mutates=False,
              summary="The annotations matching the query in the body",
              query=(flag("onlyid", "Answer the matching body ids only"), *SELECT), consumes=(JSON,)),
        *(route for name in DOCUMENTS for route in _document_routes(name)),
    )  # fmt: skip

    def __init__(self, meta: InstanceMeta, *args: Any, **kwargs: Any) -> None:
        super().__init__(meta, *args, **kwargs)
        access = self.repo_access
        self.annotations = Annotations(version_uuid=access.version_uuid) if access else Annotations()

    # ---- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _selection(req: InstanceRequest) -> Selection:
        return Selection.parse(req.query.get("show"), req.query.get("fields"))

    @staticmethod
    def _write_mode(req: InstanceRequest) -> WriteMode:
        user = req.query.get("u", "")
        if not user:
            raise BadRequest("cannot alter neuronjson data without a valid user")
        conditional = parse_conditional(req.query.get("conditional"), req.query.get("conditionals"))
        return WriteMode(user, now_rfc3339(), req.query_bool("replace"), conditional)

    @staticmethod
    def _output_format(req: InstanceRequest) -> str:
        tar = req.query_bool("tar") or req.query_bool("jsontar")
        as_json = req.query_bool("json")
        req.query_bool("check")  # validated, nothing to check
        if tar and as_json:
            raise BadRequest("can only specify tar or json output, not both")
        return output.TAR if tar else output.JSON if as_json else output.PROTOBUF

    @staticmethod
    def _range(req: InstanceRequest) -> tuple[int, int]:
        if len(req.args) < 2 or not req.args[0] or not req.args[1]:
            raise BadRequest(f"expect a beginning and an end body id to follow '{req.endpoint}' endpoint")
        return keys.parse_bound(req.args[0]), keys.parse_bound(req.args[1])

    # ---- single annotations -------------------------------------------------------------------
    async def handle_get_key(self, req: InstanceRequest) -> web.StreamResponse:
        key = req.arg(0, "a body id")
        if key in keys.META_KEYS:
            return await self._get_document(req, key)
        body_id = keys.parse_body_id(key)
        selection = self._selection(req)
        record = await req.small(self.annotations.get, req.ctx, body_id)
        if record is None:
            raise NotFound(f'Key "{key}" not found')
        return web.Response(body=dumps(selection.apply(record)), content_type="application/json")

    async def handle_head_key(self, req: InstanceRequest) -> web.StreamResponse:
        key = req.arg(0, "a body id")
        tk = keys.META_TKEYS[key] if key in keys.META_KEYS else keys.annotation_tkey(keys.parse_body_id(key))
        if not await req.small(req.ctx.exists, tk):
            raise NotFound(f'Key "{key}" not found')
        return web.Response()

    async def handle_post_key(self, req: InstanceRequest) -> web.StreamResponse:
        key = req.arg(0, "a body id")
        mode = self._write_mode(req)
        if key not in keys.META_KEYS:
            body_id = keys.parse_body_id(key)
            if body_id == 0:
                raise BadRequest("body id 0 is reserved and so cannot be stored")
        body = await req.body()
        await asyncio.to_thread(self.annotations.post, req.ctx, [Write(key, body)], mode)
        return web.Response()

    async def handle_delete_key(self, req: InstanceRequest) -> web.StreamResponse:
        key = req.arg(0, "a body id")
        if key in keys.META_KEYS:
            await req.small(self.annotations.delete_meta, req.ctx, key)
        else:
            await asyncio.to_thread(self.annotations.delete, req.ctx, keys.parse_body_id(key))
        return web.Response()

    # ---- listings and batches ---------------------------------------------------------------
    async def handle_keys(self, req: InstanceRequest) -> web.StreamResponse:
        ids = await asyncio.to_thread(self.annotations.ids, req.ctx)
        return await stream_pieces(req, "application/json", _key_array(ids))

    async def handle_keyrange(self, req: InstanceRequest) -> web.StreamResponse:
        first, last = self._range(req)
        ids = await asyncio.to_thread(self.annotations.ids, req.ctx, first, last)
        return await stream_pieces(req, "application/json", _key_array(ids))

    async def handle_keyrangevalues(self, req: InstanceRequest) -> web.StreamResponse:
        first, last = self._range(req)
        fmt, selection = self._output_format(req), self._selection(req)
        records = await asyncio.to_thread(self.annotations.records, req.ctx, first, last)
        entries = ((str(i), r) for i, r in records)
        return await stream_pieces(req, CONTENT_TYPES[fmt], output.keyed_entries(entries, fmt, selection))

    async def handle_get_keyvalues(self, req: InstanceRequest) -> web.StreamResponse:
        fmt, selection = self._output_format(req), self._selection(req)
        body = await req.body()
        requested = _requested_keys(body, fmt, self.name)
        ids = [keys.parse_body_id(k) for k in requested if k not in keys.META_KEYS]
        found = dict(zip(ids, await asyncio.to_thread(self.annotations.get_many, req.ctx, ids), strict=True))
        docs = {
            k: await req.small(self.annotations.get_meta, req.ctx, k)
            for k in requested
            if k in keys.META_KEYS
        }
        entries: list[tuple[str, Record | bytes | None]] = [
            (k, docs[k] if k in docs else found[keys.parse_body_id(k)]) for k in requested
        ]
        return await stream_pieces(req, CONTENT_TYPES[fmt], output.keyed_entries(entries, fmt, selection))

    async def handle_post_keyvalues(self, req: InstanceRequest) -> web.StreamResponse:
        mode = self._write_mode(req)
        body = await req.body()
        msg = kvproto.KeyValues()
        try:
            msg.ParseFromString(body)
        except DecodeError as exc:
            raise BadRequest(
                f"could not parse the request body as a protobuf KeyValues message: {exc}"
            ) from None
        writes = [Write(kv.key, kv.value) for kv in msg.kvs]
        await asyncio.to_thread(self.annotations.post, req.ctx, writes, mode)
        return web.Response()

    async def handle_all(self, req: InstanceRequest) -> web.StreamResponse:
        selection = self._selection(req)
        records = await asyncio.to_thread(self.annotations.records, req.ctx)
        pieces: Iterator[bytes] = output.record_array(records, selection, drop_bare=True)
        headers = None
        if "gzip" in req.request.headers.get("Accept-Encoding", "").lower():
            pieces, headers = output.gzipped(pieces), {"Content-Encoding": "gzip"}
        return await stream_pieces(req, "application/json", pieces, headers=headers)

    async def handle_fields(self, req: InstanceRequest) -> web.StreamResponse:
        counts = await asyncio.to_thread(self.annotations.field_counts, req.ctx)
        return json_response(counts if req.query_bool("counts") else list(counts))

    async def handle_fieldtimes(self, req: InstanceRequest) -> web.StreamResponse:
        return json_response(await asyncio.to_thread(self.annotations.field_times, req.ctx))

    async def handle_query(self, req: InstanceRequest) -> web.StreamResponse:
        selection, only_ids = self._selection(req), req.query_bool("onlyid")
        body = await req.body()
        parsed = (
            parse_query(body) if len(body) <= INLINE_BYTES else await asyncio.to_thread(parse_query, body)
        )
        records = await asyncio.to_thread(self.annotations.query, req.ctx, parsed)
        if only_ids and parsed.body_ids is None:
            pieces = output.id_array(i for i, _ in records)
        else:
            pieces = output.record_array(records, selection, drop_bare=False)
        return await stream_pieces(req, "application/json", pieces)

    # ---- metadata documents -----------------------------------------------------------------
    async def _get_document(self, req: InstanceRequest, name: str) -> web.StreamResponse:
        value = await req.small(self.annotations.get_meta, req.ctx, name)
        if value is None:
            raise NotFound(f"no {name} document stored for neuronjson data {self.name!r}")
        return web.Response(body=value, content_type="application/json")

    async def handle_get_document(self, req: InstanceRequest) -> web.StreamResponse:
        return await self._get_document(req, req.endpoint)

    async def handle_post_document(self, req: InstanceRequest) -> web.StreamResponse:
        value = await req.body()
        await req.small(self.annotations.put_meta, req.ctx, req.endpoint, value)
        return web.Response()

    async def handle_delete_document(self, req: InstanceRequest) -> web.StreamResponse:
        await req.small(self.annotations.delete_meta, req.ctx, req.endpoint)
        return web.Response()


def _key_array(ids: list[int]) -> Iterator[bytes]:
    """``["1000","2000",...]``."""
    sep = b"["
    for i in ids:
        yield b'%s"%d"' % (sep, i)
        sep = b","
    yield b"[]" if sep == b"[" else b"]"


def _requested_keys(body: bytes, fmt: str, name: str) -> list[str]:
    """The keys a ``keyvalues`` GET lists, all checked (400 before anything is sent)."""
    problem = f'GET /keyvalues on {{}} keys, data "{name}"'
    if fmt == output.PROTOBUF:
        msg = kvproto.Keys()
        try:
            msg.ParseFromString(body)
        except DecodeError as exc:
            raise BadRequest(f"{problem.format('?')}: not a protobuf Keys message: {exc}") from None
        requested = list(msg.keys)
    else:
        try:
            items = json.loads(body) if body.strip() else None
        except ValueError as exc:
            raise BadRequest(f"{problem.format('?')}: the body is not a JSON array of keys: {exc}") from None
        if not isinstance(items, list):
            raise BadRequest(f"{problem.format('?')}: the body must be a JSON array of keys")
        requested = []
        for item in items:
            if isinstance(item, str):
                requested.append(item)
            elif fmt == output.JSON and isinstance(item, int) and not isinstance(item, bool):
                requested.append(str(item))
            else:
                kind = "strings" if fmt == output.TAR else "integers or strings"
                raise BadRequest(f"{problem.format(len(items))}: keys must be {kind}, got {item!r:.60}")
    for key in requested:
        if key not in keys.META_KEYS:
            try:
                keys.parse_body_id(key)
            except BadRequest as exc:
                raise BadRequest(f"{problem.format(len(requested))}: {exc}") from None
    return requested
