"""The registered ``labelgraph`` datatype: its routes and HTTP handlers.

Handlers parse the request, run the graph's storage work in a thread (:mod:`graph`, one
:class:`~dvid.datatype.labelgraph.graph.GraphEdit` per request, stored in one batch under the
instance's write lock) and format the answer (:mod:`wire`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from dvid.datatype.base import Datatype, InstanceMeta
from dvid.datatype.common import sync
from dvid.datatype.common.numbers import parse_decimal
from dvid.datatype.common.request import InstanceRequest, json_bytes_response, octet_response
from dvid.datatype.common.route import BINARY, JSON, Param, Route, flag
from dvid.datatype.common.streaming import stream_pieces
from dvid.datatype.labelgraph import graph, records
from dvid.datatype.labelgraph.bodysync import BodyEditSource, BodySync
from dvid.datatype.labelgraph.help import HELP
from dvid.datatype.labelgraph.records import MAX_ID, check_property_name
from dvid.datatype.labelgraph.settings import LabelGraphSettings
from dvid.datatype.labelgraph.transactions import Locked, Transactions
from dvid.datatype.labelgraph.wire import (
    MAX_TRANSACTION_VERTICES,
    LabelGraphIn,
    TransactionRequest,
    graph_json,
    parse_graph,
    parse_transaction_request,
    transaction_response,
)
from dvid.datatype.registry import register
from dvid.errors import BadRequest
from dvid.storage.versioned import DataContext

VERTEX = Param("vertex", "integer", "A vertex id (unsigned 64-bit)", minimum=0, maximum=MAX_ID, example="1")
PROPERTY_SECOND = Param(
    "name_or_vertex2",
    description="The property name of a vertex, or an edge's second vertex (then the name follows)",
    example="foo",
)
PROPERTY_NAME = Param("name", description="An edge property's name", required=False, example="bar")
KIND = Param("kind", description="Whose property: vertices or edges", enum=("vertices", "edges"))
NAME = Param("name", description="The property name", example="foo")
NOHISTORY = Param("option", description="Accepted and ignored", enum=("nohistory",), required=False)
UNSAFE = flag("unsafe", "Skip the schema's structural checks of the body")
BUSY = "Server busy with bulk transaction"


def parse_vertex(text: str, what: str = "vertex id") -> int:
    vid = parse_decimal(text, signed=False)
    if vid is None or vid > MAX_ID:
        raise BadRequest(f"{what} must be an unsigned 64-bit integer, got {text!r}")
    return vid


def _no_more_args(req: InstanceRequest, allowed: int = 0) -> None:
    extra = [a for a in req.args[allowed:] if a]
    if extra:
        raise BadRequest(f"unknown path {'/'.join(extra)!r} after '{req.endpoint}'")


def _vertex_items(g: LabelGraphIn) -> list[tuple[int, float]]:
    return [(v.Id, v.Weight) for v in g.Vertices]


def _edge_items(g: LabelGraphIn) -> list[tuple[int, int, float]]:
    return [(e.Id1, e.Id2, e.Weight) for e in g.Edges]


@register
class LabelGraph(BodySync, Datatype):
    """An undirected weighted graph of labels with vertex and edge properties, versioned."""

    type_name = "labelgraph"
    type_url = "github.com/janelia-flyem/dvid/datatype/labelgraph"
    type_version = "0.1"
    help_text = HELP
    Settings = LabelGraphSettings
    sync_requires = (BodyEditSource,)
    listens = (sync.BodyListener,)

    def describe_change(
        self, tk: bytes, change: str, old: bytes | None, new: bytes | None
    ) -> list[dict[str, Any]]:
        """A vertex, an edge, or a property of one (transaction ids are not listed)."""
        what = records.describe_tkey(tk)
        return [] if what is None else [{"change": change, **what}]

    routes = (
        Route("subgraph", ("GET",), "handle_get_subgraph", mutates=False,
              summary="The whole graph, or the body's vertices with their edges", query=(UNSAFE,),
              consumes=(JSON,)),
        Route("subgraph", ("POST",), "handle_post_subgraph",
              summary="Add vertices and edges (existing ones keep neighbours and properties)",
              query=(UNSAFE,), consumes=(JSON,), produces=()),
        Route("subgraph", ("DELETE",), "handle_delete_subgraph",
              summary="Delete the body's vertices and edges, or the whole graph without a body",
              query=(UNSAFE,), consumes=(JSON,), produces=()),
        Route("neighbors", ("GET",), "handle_neighbors", mutates=False,
              summary="A vertex, its neighbours and the edges between them", args=(VERTEX,)),
        Route("merge", ("POST",), "handle_merge", summary="Merge the body's vertices into the last one",
              args=(NOHISTORY,), consumes=(JSON,), produces=()),
        Route("undomerge", ("POST",), "handle_undomerge", mutates=False, summary="Not implemented (400)",
              produces=()),
        Route("weight", ("POST",), "handle_weight", summary="Add to vertex and edge weights",
              consumes=(JSON,), produces=(), statuses=(409,)),
        Route("property", ("GET",), "handle_get_property", mutates=False,
              summary="A vertex's or an edge's property value (empty if none)",
              args=(VERTEX, PROPERTY_SECOND, PROPERTY_NAME), produces=(BINARY,)),
        Route("property", ("POST",), "handle_post_property",
              summary="Store a vertex's or an edge's property value",
              args=(VERTEX, PROPERTY_SECOND, PROPERTY_NAME), consumes=(BINARY,), produces=()),
        Route("property", ("DELETE",), "handle_delete_property",
              summary="Delete a vertex's or an edge's property",
              args=(VERTEX, PROPERTY_SECOND, PROPERTY_NAME), produces=()),
        Route("propertytransaction", ("GET",), "handle_get_transaction", mutates=False,
              summary="Read-lock vertices and read one property of them or their edges",
              args=(KIND, NAME), consumes=(BINARY,), produces=(BINARY,)),
        Route("propertytransaction", ("POST",), "handle_post_transaction",
              summary="Write-lock vertices and write one property of them or their edges",
              args=(KIND, NAME), consumes=(BINARY,), produces=(BINARY,)),
    )  # fmt: skip

    def __init__(self, meta: InstanceMeta, *args: Any, **kwargs: Any) -> None:
        super().__init__(meta, *args, **kwargs)
        #: Held by every graph edit from its first read until its batch is stored.
        self.write_lock = threading.Lock()
        #: Held by a running subgraph call; another one meanwhile is refused (DVID's busy flag).
        self.bulk_lock = threading.Lock()
        self.transactions = Transactions()

    def info(self) -> dict[str, Any]:
        return {"Base": self.base_info()}

    # ---- model ---------------------------------------------------------------------------------
    def edit(self, ctx: DataContext, change: Callable[[graph.GraphEdit], object]) -> None:
        """Apply ``change`` to the graph at ``ctx``'s version and store it in one batch."""
        with self.write_lock:
            edit = graph.GraphEdit(ctx, self.compression)
            change(edit)
            if edit.changed:
                with ctx.batch() as batch:
                    edit.write(batch)

    def delete_everything(self, ctx: DataContext) -> int:
        with self.write_lock, ctx.batch() as batch:
            return graph.delete_all(ctx, batch)

    @contextmanager
    def _bulk(self) -> Iterator[None]:
        if not self.bulk_lock.acquire(blocking=False):
            raise BadRequest(BUSY)
        try:
            yield
        finally:
            self.bulk_lock.release()

    def _ids_context(self, req: InstanceRequest) -> DataContext:
        """Where transaction ids are kept: the repo root, for every version."""
        return self.root_context(req.ancestry)

    # ---- subgraph ------------------------------------------------------------------------------
    async def handle_get_subgraph(self, req: InstanceRequest) -> web.StreamResponse:
        _no_more_args(req)
        checked = not req.query_bool("unsafe")
        with self._bulk():
            body = await req.body()
            g = await asyncio.to_thread(parse_graph, body, checked=checked, empty_ok=True)
            if g.Vertices:
                ids = [v.Id for v in g.Vertices]
                vertices, edges = await asyncio.to_thread(graph.subgraph_of, req.ctx, ids)
                return json_bytes_response(b"".join(graph_json(vertices, edges)))
            pieces = graph_json(graph.all_vertices(req.ctx), graph.all_edges(req.ctx))
            return await stream_pieces(req, JSON, pieces)

    async def handle_post_subgraph(self, req: InstanceRequest) -> web.StreamResponse:
        _no_more_args(req)
        checked = not req.query_bool("unsafe")
        with self._bulk():
            body = await req.body()
            g = await asyncio.to_thread(parse_graph, body, checked=checked)
            vertices, edges = _vertex_items(g), _edge_items(g)
            await asyncio.to_thread(self.edit, req.ctx, lambda e: graph.add_graph(e, vertices, edges))
        return web.Response()

    async def handle_delete_subgraph(self, req: InstanceRequest) -> web.StreamResponse:
        _no_more_args(req)
        checked = not req.query_bool("unsafe")
        with self._bulk():
            body = await req.body()
            if not body.strip():
                await asyncio.to_thread(self.delete_everything, req.ctx)
                return web.Response()
            g = await asyncio.to_thread(parse_graph, body, checked=checked)
            vertices = [v.Id for v in g.Vertices]
            edges = [(e.Id1, e.Id2) for e in g.Edges]
            await asyncio.to_thread(self.edit, req.ctx, lambda e: graph.delete_graph(e, vertices, edges))
        return web.Response()

    # ---- neighbors, merge, weight --------------------------------------------------------------
    async def handle_neighbors(self, req: InstanceRequest) -> web.StreamResponse:
        _no_more_args(req, 1)
        text = req.args[0] if req.args else ""
        vid = parse_decimal(text, signed=False)
        if vid is None or vid > MAX_ID:
            raise BadRequest(f"Vertex number not provided: {text!r} is not an unsigned 64-bit integer")
        vertices, edges = await asyncio.to_thread(graph.neighborhood, req.ctx, vid)
        out = graph_json(vertices, edges, transactions="null", empty_edges="null")
        return json_bytes_response(b"".join(out))

    async def handle_merge(self, req: InstanceRequest) -> web.StreamResponse:
        _no_more_args(req, 1)
        if req.args and req.args[0] not in ("", "nohistory"):
            raise BadRequest(f"unknown merge option {req.args[0]!r} (only 'nohistory')")
        g = await asyncio.to_thread(parse_graph, await req.body())
        ids = [v.Id for v in g.Vertices]
        if len(set(ids)) < 2:
            raise BadRequest("Must specify at least two vertices for merging")
        keep = ids[-1]
        keep_weight = g.Vertices[-1].Weight
        overrides = {e.Id1 if e.Id2 == keep else e.Id2: e.Weight for e in g.Edges if keep in (e.Id1, e.Id2)}
        await asyncio.to_thread(self.edit, req.ctx, lambda e: graph.merge(e, ids, keep_weight, overrides))
        return web.Response()

    async def handle_undomerge(self, req: InstanceRequest) -> web.StreamResponse:
        raise BadRequest("undomerge not yet implemented")

    async def handle_weight(self, req: InstanceRequest) -> web.StreamResponse:
        _no_more_args(req)
        g = await asyncio.to_thread(parse_graph, await req.body())
        vertices, edges = _vertex_items(g), _edge_items(g)
        named = list(dict.fromkeys([v for v, _ in vertices] + [x for a, b, _ in edges for x in (a, b)]))
        if len(named) > MAX_TRANSACTION_VERTICES:
            raise BadRequest(
                f"weight names {len(named)} vertices; at most {MAX_TRANSACTION_VERTICES} per request"
            )
        await asyncio.to_thread(self._add_weights, req, named, vertices, edges)
        return web.Response()

    def _add_weights(
        self,
        req: InstanceRequest,
        named: list[int],
        vertices: list[tuple[int, float]],
        edges: list[tuple[int, int, float]],
    ) -> None:
        locked = self.transactions.lock_waiting(self._ids_context(req), named)
        try:
            self.edit(req.ctx, lambda e: graph.add_weights(e, vertices, edges))
        finally:
            self.transactions.release(locked.vertices)

    # ---- properties ----------------------------------------------------------------------------
    @staticmethod
    def _property_target(req: InstanceRequest) -> tuple[tuple[int, ...], str]:
        parts = list(req.args)
        while parts and parts[-1] == "":
            parts.pop()
        if len(parts) not in (2, 3):
            raise BadRequest("Incorrect number of parameters specified for handling properties")
        ids = tuple(parse_vertex(p) for p in parts[:-1])
        if len(ids) == 2 and ids[0] == ids[1]:
            raise BadRequest(f"edge {ids[0]}-{ids[1]} would join a vertex to itself")
        name = parts[-1]
        check_property_name(name)
        return ids, name

    async def handle_get_property(self, req: InstanceRequest) -> web.StreamResponse:
        ids, name = self._property_target(req)
        (value,) = await asyncio.to_thread(graph.get_properties, req.ctx, [ids], name)
        return octet_response(value)

    async def handle_post_property(self, req: InstanceRequest) -> web.StreamResponse:
        ids, name = self._property_target(req)
        value = await req.body()
        await asyncio.to_thread(self.edit, req.ctx, lambda e: graph.set_property(e, ids, name, value))
        return web.Response()

    async def handle_delete_property(self, req: InstanceRequest) -> web.StreamResponse:
        ids, name = self._property_target(req)
        await asyncio.to_thread(self.edit, req.ctx, lambda e: graph.delete_property(e, ids, name))
        return web.Response()

    # ---- propertytransaction -------------------------------------------------------------------
    async def _transaction(self, req: InstanceRequest, *, write: bool) -> tuple[TransactionRequest, str]:
        kind = req.arg(0, "'vertices' or 'edges'")
        if kind not in ("vertices", "edges"):
            raise BadRequest(f"propertytransaction is for 'vertices' or 'edges', not {kind!r}")
        name = req.arg(1, "a property name")
        check_property_name(name)
        _no_more_args(req, 2)
        body = await req.body()
        tr = await asyncio.to_thread(
            parse_transaction_request, body, edges=kind == "edges", with_values=write
        )
        return tr, name

    async def handle_get_transaction(self, req: InstanceRequest) -> web.StreamResponse:
        tr, name = await self._transaction(req, write=False)
        return octet_response(await asyncio.to_thread(self._read_properties, req, tr, name))

    async def handle_post_transaction(self, req: InstanceRequest) -> web.StreamResponse:
        tr, name = await self._transaction(req, write=True)
        return octet_response(await asyncio.to_thread(self._write_properties, req, tr, name))

    def _read_properties(self, req: InstanceRequest, tr: TransactionRequest, name: str) -> bytes:
        locked = self.transactions.lock_read(self._ids_context(req), [v for v, _ in tr.vertices])
        try:
            readable = self._entries_held(tr, locked)
            values = graph.get_properties(req.ctx, [ids for ids, _ in readable], name)
            found = [(ids, value) for (ids, _), value in zip(readable, values, strict=True)]
            return transaction_response(locked.held, locked.failed, found)
        finally:
            self.transactions.release(locked.vertices)

    def _write_properties(self, req: InstanceRequest, tr: TransactionRequest, name: str) -> bytes:
        locked = self.transactions.lock_write(self._ids_context(req), tr.vertices)
        try:
            writable = [(ids, value) for ids, value in self._entries_held(tr, locked) if value]

            def store(edit: graph.GraphEdit) -> None:
                for ids, value in writable:
                    graph.set_property(edit, ids, name, value)

            self.edit(req.ctx, store)
            return transaction_response(locked.held, locked.failed)
        finally:
            self.transactions.release(locked.vertices)

    @staticmethod
    def _entries_held(tr: TransactionRequest, locked: Locked) -> list[tuple[tuple[int, ...], bytes]]:
        held = locked.vertices
        return [(ids, value) for ids, value in tr.entries if all(i in held for i in ids)]
