"""The graph's storage operations: vertices, edges and their properties, read at a version, and the
edits (add, weight increments, merge, delete), each applied to a :class:`GraphEdit` and stored in
one atomic batch.

The graph is kept consistent: an edge exists exactly when each of its vertices lists the other as
a neighbour, and a property exists only on an existing vertex or edge, named in its record. Edits
that would break this (an edge to a missing vertex) are refused before anything is written; an
edit that meets a graph already broken (stored by DVID, whose ``subgraph`` POST could reset a
vertex's neighbours) is refused with a 400 naming the inconsistency rather than guessing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from dvid.datatype.common import envelope
from dvid.datatype.common.envelope import Compression
from dvid.datatype.labelgraph import records as rec
from dvid.datatype.labelgraph.records import Edge, Vertex
from dvid.errors import BadRequest
from dvid.storage.versioned import DataContext, VersionedBatch

#: From this many ids on, vertices (or edges) are read with one range scan instead of one get each.
SCAN_FROM = 256


class GraphEdit:
    """Vertices, edges and properties read from a version and changed in memory; :meth:`write`
    puts every change into one batch. Reads see the edit's own changes."""

    def __init__(self, ctx: DataContext, compression: Compression) -> None:
        self.ctx = ctx
        self.compression = compression
        self._vertices: dict[int, Vertex | None] = {}
        self._edges: dict[tuple[int, int], Edge | None] = {}
        self._changed_vertices: set[int] = set()
        self._changed_edges: set[tuple[int, int]] = set()
        self._properties: dict[bytes, bytes | None] = {}  # tkey -> stored value, None: deleted

    # ---- reads ---------------------------------------------------------------------------------
    def prefetch_vertices(self, ids: Iterable[int]) -> None:
        """Read many vertices at once (one range scan when there are many)."""
        todo = {v for v in ids if v not in self._vertices}
        if len(todo) < SCAN_FROM:
            return
        for vid in todo:
            self._vertices[vid] = None
        begin, end = rec.vertex_tkey(min(todo)), rec.vertex_tkey(max(todo))
        for tk, value in self.ctx.range(begin, end):
            vid = rec.vertex_id_of(tk)
            if vid in todo:
                self._vertices[vid] = rec.decode_vertex(value)

    def prefetch_edges(self, pairs: Iterable[tuple[int, int]]) -> None:
        todo = {rec.edge_ends(a, b) for a, b in pairs} - self._edges.keys()
        if len(todo) < SCAN_FROM:
            return
        for pair in todo:
            self._edges[pair] = None
        first = min(a for a, _ in todo)
        last = max(a for a, _ in todo)
        for tk, value in self.ctx.range(rec.edge_tkey(first, first), rec.edge_tkey(last, rec.MAX_ID)):
            pair = rec.edge_ids_of(tk)
            if pair in todo:
                self._edges[pair] = rec.decode_edge(value)

    def vertex(self, vid: int) -> Vertex | None:
        if vid not in self._vertices:
            stored = self.ctx.get(rec.vertex_tkey(vid))
            self._vertices[vid] = None if stored is None else rec.decode_vertex(stored)
        return self._vertices[vid]

    def edge(self, a: int, b: int) -> Edge | None:
        pair = rec.edge_ends(a, b)
        if pair not in self._edges:
            stored = self.ctx.get(rec.edge_tkey(*pair))
            self._edges[pair] = None if stored is None else rec.decode_edge(stored)
        return self._edges[pair]

    def existing_vertex(self, vid: int, doing: str) -> Vertex:
        v = self.vertex(vid)
        if v is None:
            raise BadRequest(f"{doing}: vertex {vid} does not exist")
        return v

    # ---- changes -------------------------------------------------------------------------------
    def put_vertex(self, v: Vertex) -> None:
        self._vertices[v.id] = v
        self._changed_vertices.add(v.id)

    def put_edge(self, e: Edge) -> None:
        self._edges[(e.v1, e.v2)] = e
        self._changed_edges.add((e.v1, e.v2))

    def put_property(self, tk: bytes, value: bytes) -> None:
        self._properties[tk] = envelope.serialize(value, self.compression)

    def drop_properties(self, begin: bytes, end: bytes) -> None:
        """Delete every property with a tkey in ``[begin, end]``: stored ones and this edit's."""
        for tk in self.ctx.keys(begin, end):
            self._properties[tk] = None
        for tk in [k for k in self._properties if begin <= k <= end]:
            self._properties[tk] = None

    def drop_vertex_record(self, vid: int) -> None:
        self._vertices[vid] = None
        self._changed_vertices.add(vid)
        self.drop_properties(*rec.vertex_properties_range(vid))

    def drop_edge_record(self, a: int, b: int) -> None:
        pair = rec.edge_ends(a, b)
        self._edges[pair] = None
        self._changed_edges.add(pair)
        self.drop_properties(*rec.edge_properties_range(*pair))

    def write(self, batch: VersionedBatch) -> None:
        """Put every change into ``batch``."""
        for vid in self._changed_vertices:
            v = self._vertices[vid]
            if v is None:
                batch.delete(rec.vertex_tkey(vid))
            else:
                batch.put(rec.vertex_tkey(vid), rec.encode_vertex(v))
        for pair in self._changed_edges:
            e = self._edges[pair]
            if e is None:
                batch.delete(rec.edge_tkey(*pair))
            else:
                batch.put(rec.edge_tkey(*pair), rec.encode_edge(e))
        for tk, value in self._properties.items():
            if value is None:
                batch.delete(tk)
            else:
                batch.put(tk, value)

    @property
    def changed(self) -> bool:
        return bool(self._changed_vertices or self._changed_edges or self._properties)


# ---- edits ---------------------------------------------------------------------------------------


def set_vertex(edit: GraphEdit, vid: int, weight: float, *, increment: bool = False) -> Vertex:
    """Create a vertex or set (or add to) the weight of an existing one; its neighbours and
    properties stay."""
    v = edit.vertex(vid)
    if v is None:
        v = Vertex(vid, weight)
    else:
        v.weight = v.weight + weight if increment else weight
    edit.put_vertex(v)
    return v


def set_edge(edit: GraphEdit, a: int, b: int, weight: float, *, increment: bool = False) -> Edge:
    """Create an edge between two existing vertices or set (or add to) its weight; its properties
    stay. 400 if a vertex is missing."""
    doing = f"Failed to add edge {a}-{b}"
    va, vb = edit.existing_vertex(a, doing), edit.existing_vertex(b, doing)
    e = edit.edge(a, b)
    if e is None:
        e = Edge(*rec.edge_ends(a, b), weight)
    else:
        e.weight = e.weight + weight if increment else weight
    for v, other in ((va, b), (vb, a)):
        if other not in v.neighbors:
            v.neighbors[other] = None
            edit.put_vertex(v)
    edit.put_edge(e)
    return e


def remove_edge(edit: GraphEdit, a: int, b: int, *, missing_ok: bool = True) -> None:
    """Delete an edge with its properties and the neighbour entries that name it. An edge one of
    whose vertices does not list the other is a 400 (inconsistent graph); a missing edge is skipped
    unless ``missing_ok`` is false."""
    e = edit.edge(a, b)
    va, vb = edit.vertex(a), edit.vertex(b)
    listed = [v is not None and other in v.neighbors for v, other in ((va, b), (vb, a))]
    if e is None and not any(listed):
        if missing_ok:
            return
        raise BadRequest(f"edge {a}-{b} does not exist")
    for v, other, ok in ((va, b, listed[0]), (vb, a, listed[1])):
        if v is not None and not ok:
            raise BadRequest(
                f"cannot delete edge {a}-{b}: vertex {v.id} does not list {other} as a neighbour"
                " (the stored graph is inconsistent)"
            )
    for v, other in ((va, b), (vb, a)):
        if v is not None:
            del v.neighbors[other]
            edit.put_vertex(v)
    edit.drop_edge_record(a, b)


def remove_vertex(edit: GraphEdit, vid: int) -> None:
    """Delete a vertex with its properties, its edges and theirs; a missing vertex is skipped."""
    v = edit.vertex(vid)
    if v is None:
        return
    for other in list(v.neighbors):
        remove_edge(edit, vid, other)
    edit.drop_vertex_record(vid)


def _check_edge_ends(
    edit: GraphEdit, vertices: Sequence[tuple[int, float]], edges: Sequence[tuple[int, int, float]]
) -> None:
    """400 unless every edge's vertices exist, stored or among ``vertices`` (read in bulk)."""
    edit.prefetch_vertices([v for v, _ in vertices] + [x for a, b, _ in edges for x in (a, b)])
    edit.prefetch_edges((a, b) for a, b, _ in edges)
    posted = {v for v, _ in vertices}
    for a, b, _ in edges:
        for x in (a, b):
            if x not in posted and edit.vertex(x) is None:
                raise BadRequest(
                    f"Failed to add edge {a}-{b}: vertex {x} does not exist (nothing was stored)"
                )


def add_graph(
    edit: GraphEdit, vertices: Sequence[tuple[int, float]], edges: Sequence[tuple[int, int, float]]
) -> None:
    """``subgraph`` POST: set the weight of each vertex (created if new; an existing one keeps its
    neighbours and properties), then create or set each edge. Every edge's vertices must exist,
    stored or in ``vertices``; otherwise 400, before anything is changed."""
    _check_edge_ends(edit, vertices, edges)
    for vid, weight in vertices:
        set_vertex(edit, vid, weight)
    for a, b, weight in edges:
        set_edge(edit, a, b, weight)


def add_weights(
    edit: GraphEdit, vertices: Sequence[tuple[int, float]], edges: Sequence[tuple[int, int, float]]
) -> None:
    """``weight`` POST: add to the weight of each vertex and edge, creating those missing (an
    edge's vertices must exist, stored or in ``vertices``: 400 before anything is changed)."""
    _check_edge_ends(edit, vertices, edges)
    for vid, weight in vertices:
        set_vertex(edit, vid, weight, increment=True)
    for a, b, weight in edges:
        set_edge(edit, a, b, weight, increment=True)


def delete_graph(edit: GraphEdit, vertices: Iterable[int], edges: Iterable[tuple[int, int]]) -> None:
    """``subgraph`` DELETE with a body: each listed vertex (with its edges and properties), then
    each listed edge; missing ones are skipped."""
    for vid in vertices:
        remove_vertex(edit, vid)
    for a, b in edges:
        remove_edge(edit, a, b)


def merge(edit: GraphEdit, ids: Sequence[int], keep_weight: float, overrides: dict[int, float]) -> None:
    """Merge the vertices ``ids`` into the last one, ``keep``.

    Keep's weight becomes the sum of their weights (or ``keep_weight`` if not 0); each vertex
    outside ``ids`` adjacent to any of them gets one edge to keep, weighing the sum of the edges it
    had to them, or ``overrides[n]`` if given. The other vertices are deleted with their edges and
    properties (those of keep's own edges to outside vertices stay).
    """
    keep = ids[-1]
    ordered = [v for v in dict.fromkeys(ids) if v != keep] + [keep]
    if len(ordered) < 2:
        raise BadRequest("Must specify at least two vertices for merging")
    doing = "Failed to merge"
    found = [edit.existing_vertex(v, doing) for v in ordered]
    total = sum(v.weight for v in found)
    acc: dict[int, float] = {}
    for v in found:
        for n in v.neighbors:
            e = edit.edge(v.id, n)
            acc[n] = acc.get(n, 0.0) + (e.weight if e is not None else 0.0)
    for n, w in overrides.items():
        if n in acc:
            acc[n] = w
    members = set(ordered)
    for vid in ordered[:-1]:
        remove_vertex(edit, vid)
    for n, w in acc.items():
        if n not in members:
            set_edge(edit, keep, n, w)
    set_vertex(edit, keep, keep_weight if keep_weight != 0 else total)


def delete_all(ctx: DataContext, batch: VersionedBatch) -> int:
    """``subgraph`` DELETE without a body: every vertex, edge and property at this version."""
    count = 0
    for tk in ctx.keys(rec.GRAPH_BEGIN, rec.GRAPH_END):
        batch.delete(tk)
        count += 1
    return count


# ---- properties ----------------------------------------------------------------------------------


def set_property(edit: GraphEdit, ids: tuple[int, ...], name: str, value: bytes) -> bool:
    """Store a property of a vertex (one id) or an edge (two); False, storing nothing, if the vertex
    or edge does not exist (DVID's silent no-op)."""
    if len(ids) == 1:
        v = edit.vertex(ids[0])
        if v is None:
            return False
        tk = rec.vertex_property_tkey(ids[0], name)
        if name not in v.properties:
            v.properties[name] = None
            edit.put_vertex(v)
    else:
        e = edit.edge(*ids)
        if e is None:
            return False
        tk = rec.edge_property_tkey(ids[0], ids[1], name)
        if name not in e.properties:
            e.properties[name] = None
            edit.put_edge(e)
    edit.put_property(tk, value)
    return True


def delete_property(edit: GraphEdit, ids: tuple[int, ...], name: str) -> None:
    if len(ids) == 1:
        tk = rec.vertex_property_tkey(ids[0], name)
        owner_v = edit.vertex(ids[0])
        if owner_v is not None and name in owner_v.properties:
            del owner_v.properties[name]
            edit.put_vertex(owner_v)
    else:
        tk = rec.edge_property_tkey(ids[0], ids[1], name)
        owner_e = edit.edge(*ids)
        if owner_e is not None and name in owner_e.properties:
            del owner_e.properties[name]
            edit.put_edge(owner_e)
    edit.drop_properties(tk, tk)


def property_tkey(ids: tuple[int, ...], name: str) -> bytes:
    if len(ids) == 1:
        return rec.vertex_property_tkey(ids[0], name)
    return rec.edge_property_tkey(ids[0], ids[1], name)


def get_properties(ctx: DataContext, ids_list: Sequence[tuple[int, ...]], name: str) -> list[bytes]:
    """The values of one property of several vertices or edges (empty where there is none)."""
    stored = ctx.get_many(property_tkey(ids, name) for ids in ids_list)
    return [envelope.deserialize(s) if s else b"" for s in stored]


# ---- reads ---------------------------------------------------------------------------------------


def all_vertices(ctx: DataContext) -> Iterator[tuple[int, float]]:
    """Every vertex, ``(id, weight)`` in id order."""
    for tk, value in ctx.range(rec.vertex_tkey(0), rec.vertex_tkey(rec.MAX_ID)):
        yield rec.vertex_id_of(tk), rec.vertex_weight(value)


def all_edges(ctx: DataContext) -> Iterator[tuple[int, int, float]]:
    """Every edge, ``(min id, max id, weight)`` in id order."""
    for tk, value in ctx.range(rec.edge_tkey(0, 0), rec.edge_tkey(rec.MAX_ID, rec.MAX_ID)):
        a, b = rec.edge_ids_of(tk)
        yield a, b, rec.edge_weight(value)


def subgraph_of(
    ctx: DataContext, ids: Sequence[int]
) -> tuple[list[tuple[int, float]], list[tuple[int, int, float]]]:
    """The listed vertices (400 if one is missing) and every edge incident to them, each once: for
    each vertex in order, its edges to the vertices not listed before it."""
    edit = GraphEdit(ctx, Compression())
    vertices: list[tuple[int, float]] = []
    edges: list[tuple[int, int, float]] = []
    used: set[int] = set()
    for vid in ids:
        v = edit.vertex(vid)
        if v is None:
            raise BadRequest(f"Failed to retrieve vertix {vid}: Vertex data empty")
        vertices.append((vid, v.weight))
        used.add(vid)
        for n in v.neighbors:
            if n in used:
                continue
            e = edit.edge(vid, n)
            if e is not None:
                edges.append((e.v1, e.v2, e.weight))
    return vertices, edges


def neighborhood(ctx: DataContext, vid: int) -> tuple[list[tuple[int, float]], list[tuple[int, int, float]]]:
    """A vertex and its neighbours (in neighbour order), and the edges between them and it."""
    edit = GraphEdit(ctx, Compression())
    center = edit.vertex(vid)
    if center is None:
        raise BadRequest(f"Failed to retrieve vertex {vid}: Vertex data empty")
    vertices = [(vid, center.weight)]
    edges: list[tuple[int, int, float]] = []
    for n in center.neighbors:
        v, e = edit.vertex(n), edit.edge(vid, n)
        if v is None or e is None:
            raise BadRequest(
                f"vertex {vid} lists {n} as a neighbour, but {'vertex' if v is None else 'edge'} is"
                " missing (the stored graph is inconsistent)"
            )
        vertices.append((n, v.weight))
        edges.append((e.v1, e.v2, e.weight))
    return vertices, edges
