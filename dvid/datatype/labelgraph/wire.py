"""labelgraph on the wire: the LabelGraph JSON (in, checked like DVID's schema; out, in Go's number
formatting) and the binary request and response of ``propertytransaction``."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dvid.datatype.common import jsonio
from dvid.datatype.labelgraph.records import MAX_ID
from dvid.errors import BadRequest

#: Most vertices one propertytransaction or weight request may name (DVID's limit).
MAX_TRANSACTION_VERTICES = 1000
SCHEMA_FAILED = "JSON did not pass validation"

# ---- LabelGraph JSON in --------------------------------------------------------------------------

U64 = Annotated[int, Field(strict=True, ge=0, le=MAX_ID)]
F64 = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class VertexIn(_Item):
    Id: U64
    Weight: F64 = 0.0


class EdgeIn(_Item):
    Id1: U64
    Id2: U64
    Weight: F64 = 0.0


class TransactionIn(_Item):
    Id: U64
    Trans: U64


class LabelGraphIn(BaseModel):
    """A LabelGraph as the schema demands it: ``Vertices`` and ``Edges`` required."""

    model_config = ConfigDict(extra="ignore")
    Transactions: list[TransactionIn] | None = None
    Vertices: list[VertexIn]
    Edges: list[EdgeIn]


class LabelGraphUnchecked(LabelGraphIn):
    """What ``?unsafe=true`` accepts: every list optional (ids and weights are still typed)."""

    Vertices: list[VertexIn] = []
    Edges: list[EdgeIn] = []


def _problems(exc: ValidationError) -> str:
    shown = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3]]
    more = exc.error_count() - len(shown)
    return "; ".join(shown) + (f" (and {more} more)" if more > 0 else "")


def parse_graph(body: bytes, *, checked: bool = True, empty_ok: bool = False) -> LabelGraphIn:
    """A LabelGraph request body. ``checked``: the schema's rules (both lists required, no repeated
    item), 400 ``JSON did not pass validation: ...``; unchecked (``unsafe=true``), only the types.
    An empty body is the empty graph when ``empty_ok``, else a 400."""
    if not body.strip():
        if empty_ok:
            return LabelGraphUnchecked()
        raise BadRequest("request body is empty: expected a LabelGraph JSON object")
    obj = jsonio.loads_object(body, what="LabelGraph")
    model = LabelGraphIn if checked else LabelGraphUnchecked
    try:
        graph = model.model_validate(obj)
    except ValidationError as exc:
        lead = SCHEMA_FAILED if checked else "LabelGraph JSON could not be decoded"
        raise BadRequest(f"{lead}: {_problems(exc)}") from None
    if checked:
        for name, items in (("Vertices", graph.Vertices), ("Edges", graph.Edges)):
            if len(set(items)) != len(items):
                raise BadRequest(f"{SCHEMA_FAILED}: {name} holds the same item twice")
    for e in graph.Edges:
        if e.Id1 == e.Id2:
            raise BadRequest(f"edge {e.Id1}-{e.Id2} joins a vertex to itself; an edge needs two vertices")
    return graph


# ---- LabelGraph JSON out -------------------------------------------------------------------------


def go_float(x: float) -> str:
    """A float64 as Go's encoding/json writes it: shortest digits, integral values without ``.0``,
    exponents only below 1e-6 or from 1e21 on (``1e-7``, ``1e+21``)."""
    r = repr(x)
    if "e" not in r and "n" not in r:
        return r[:-2] if r.endswith(".0") else r
    a = abs(x)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        mantissa, _, exp = r.partition("e")  # Python writes e-07 and e+21; Go e-7 and e+21
        return f"{mantissa}e-{exp[2:]}" if exp.startswith("-0") else r
    if math.isfinite(x) and x == int(x):
        return str(int(x))
    return format(Decimal(r), "f")


_CHUNK = 1 << 16


def _joined(items: Iterable[str]) -> Iterator[bytes]:
    """Comma-joined items, in pieces of about 64 KiB."""
    buf: list[str] = []
    size = 0
    first = True
    for item in items:
        if first:
            first = False
        else:
            buf.append(",")
        buf.append(item)
        size += len(item) + 1
        if size >= _CHUNK:
            yield "".join(buf).encode()
            buf, size = [], 0
    if buf:
        yield "".join(buf).encode()


def vertex_json(vid: int, weight: float) -> str:
    return f'{{"Id":{vid},"Weight":{go_float(weight)}}}'


def edge_json(a: int, b: int, weight: float) -> str:
    return f'{{"Id1":{a},"Id2":{b},"Weight":{go_float(weight)}}}'


def graph_json(
    vertices: Iterable[tuple[int, float]],
    edges: Iterable[tuple[int, int, float]],
    *,
    transactions: str = "[]",
    empty_edges: str = "[]",
) -> Iterator[bytes]:
    """A LabelGraph, key order Transactions, Vertices, Edges, as pieces to stream.

    ``transactions`` is the literal written for Transactions (DVID: ``[]`` from subgraph, ``null``
    from neighbors), ``empty_edges`` the one written when there is no edge.
    """
    yield f'{{"Transactions":{transactions},"Vertices":['.encode()
    yield from _joined(vertex_json(v, w) for v, w in vertices)
    yield b'],"Edges":'
    started = False
    for piece in _joined(edge_json(a, b, w) for a, b, w in edges):
        if not started:
            yield b"["
            started = True
        yield piece
    yield b"]}" if started else empty_edges.encode() + b"}"


# ---- propertytransaction binary ------------------------------------------------------------------

_U64LE = struct.Struct("<Q")


@dataclass(frozen=True)
class TransactionRequest:
    """A propertytransaction body: the vertices to lock, each with the transaction id the client
    holds (0 when it holds none), and the properties to read or write."""

    vertices: list[tuple[int, int]]
    #: Each entry's vertex ids (one for vertices, two for edges) and, for a POST, the value.
    entries: list[tuple[tuple[int, ...], bytes]]


class _Reader:
    def __init__(self, body: bytes) -> None:
        self.body = memoryview(body)
        self.at = 0

    def _short(self, what: str) -> BadRequest:
        return BadRequest(f"propertytransaction body ends inside {what} (byte {self.at} of {len(self.body)})")

    def u64(self, what: str) -> int:
        if self.at + 8 > len(self.body):
            raise self._short(what)
        (v,) = _U64LE.unpack_from(self.body, self.at)
        self.at += 8
        return v

    def u64s(self, n: int, what: str) -> tuple[int, ...]:
        if self.at + 8 * n > len(self.body):
            raise self._short(what)
        values = struct.unpack_from(f"<{n}Q", self.body, self.at)
        self.at += 8 * n
        return values

    def raw(self, n: int, what: str) -> bytes:
        if self.at + n > len(self.body):
            raise BadRequest(
                f"propertytransaction body ends inside {what}: {n} bytes announced,"
                f" {len(self.body) - self.at} left"
            )
        value = bytes(self.body[self.at : self.at + n])
        self.at += n
        return value


def parse_transaction_request(body: bytes, *, edges: bool, with_values: bool) -> TransactionRequest:
    """Read ``N, N x (vertex, transaction id), M, M entries`` (all u64 LE), an entry being
    ``id1 [id2 if edges]`` for a read and ``id1 [id2] size value`` for a write (400 for an empty
    body, more than 1000 vertices, a vertex listed twice, a length that does not add up)."""
    if not body:
        raise BadRequest("propertytransaction needs a body: N, N x (vertex id, transaction id), M, M entries")
    r = _Reader(body)
    n = r.u64("the vertex count")
    if n > MAX_TRANSACTION_VERTICES:
        raise BadRequest(f"propertytransaction locks at most {MAX_TRANSACTION_VERTICES} vertices, got {n}")
    flat = r.u64s(2 * n, "the vertex list")
    vertices = list(zip(flat[::2], flat[1::2], strict=True))
    seen: set[int] = set()
    for vid, _ in vertices:
        if vid in seen:
            raise BadRequest(f"vertex {vid} is listed twice in the propertytransaction")
        seen.add(vid)
    m = r.u64("the property count")
    width = 2 if edges else 1
    if m * 8 * width > len(body) - r.at:
        raise BadRequest(f"propertytransaction announces {m} properties but the body is too short for them")
    entries: list[tuple[tuple[int, ...], bytes]] = []
    for i in range(m):
        ids = r.u64s(width, f"property {i}")
        if edges and ids[0] == ids[1]:
            raise BadRequest(f"property {i} names edge {ids[0]}-{ids[1]}, which joins a vertex to itself")
        value = r.raw(r.u64(f"the size of property {i}"), f"property {i}") if with_values else b""
        entries.append((ids, value))
    if r.at != len(body):
        raise BadRequest(f"propertytransaction body has {len(body) - r.at} bytes after its last property")
    return TransactionRequest(vertices, entries)


def transaction_response(
    locked: list[tuple[int, int]],
    failed: list[int],
    properties: list[tuple[tuple[int, ...], bytes]] | None = None,
) -> bytes:
    """``L, L x (vertex, transaction id), F, F x vertex`` and, for a read, ``P, P x (ids, size,
    value)`` (all u64 LE)."""
    parts = [_U64LE.pack(len(locked))]
    parts.extend(struct.pack("<QQ", v, t) for v, t in locked)
    parts.append(_U64LE.pack(len(failed)))
    parts.append(struct.pack(f"<{len(failed)}Q", *failed))
    if properties is not None:
        parts.append(_U64LE.pack(len(properties)))
        for ids, value in properties:
            parts.append(struct.pack(f"<{len(ids)}QQ", *ids, len(value)))
            parts.append(value)
    return b"".join(parts)
