"""labelgraph's keys and stored records, byte for byte as DVID's graph store wrote them.

A labelgraph's tkey is DVID's raw "graph index", without the ``0x01`` byte other types put after
the class byte:

=================  ===========================================  ==========================================
object             tkey                                         value
=================  ===========================================  ==========================================
vertex             ``00 | id u64 BE``                           ``00`` + vertex record
edge               ``01 | min id u64 BE | max id u64 BE``       ``00`` + edge record
vertex property    ``02 | id u64 BE | name``                    the value in the instance's envelope
edge property      ``03 | min u64 BE | max u64 BE | name``      the value in the instance's envelope
=================  ===========================================  ==========================================

Records are little-endian: a vertex is ``u64 id, f64 weight, u64 n, n x u64 neighbour, u64 p,
p x (name + 00)``; an edge is ``u64 min, u64 max, f64 weight, u64 p, p x (name + 00)``. The leading
``00`` is DVID's value envelope with neither compression nor checksum.

Property names end their tkey unterminated (DVID's layout), so names hold no NUL byte; with no NUL
in a name, the keys of name ``a`` (all versions) sort before those of any longer name ``a...``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from dvid.datatype.common import envelope
from dvid.errors import BadRequest

VERTEX_CLASS, EDGE_CLASS, VERTEX_PROPERTY_CLASS, EDGE_PROPERTY_CLASS = 0, 1, 2, 3
#: Below and above every graph tkey (vertices, edges and their properties; not transaction state).
GRAPH_BEGIN = b"\x00"
GRAPH_END = b"\x03" + b"\xff" * 17
MAX_ID = 2**64 - 1
#: The envelope byte of a record: no compression, no checksum.
RECORD_HEADER = b"\x00"

_U64BE = struct.Struct(">Q")
_PAIR_BE = struct.Struct(">QQ")
_VERTEX_HEAD = struct.Struct("<QdQ")
_EDGE_HEAD = struct.Struct("<QQdQ")
_COUNT = struct.Struct("<Q")
_WEIGHT = struct.Struct("<d")


def edge_ends(a: int, b: int) -> tuple[int, int]:
    """An edge's vertices as stored: the smaller id first (edges are undirected)."""
    return (a, b) if a <= b else (b, a)


# ---- keys ----------------------------------------------------------------------------------------


def vertex_tkey(vid: int) -> bytes:
    return b"\x00" + _U64BE.pack(vid)


def edge_tkey(a: int, b: int) -> bytes:
    return b"\x01" + _PAIR_BE.pack(*edge_ends(a, b))


def check_property_name(name: str) -> bytes:
    """A property name as stored: non-empty UTF-8 without NUL (400 otherwise)."""
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"property name {name!r} is not valid Unicode") from None
    if not raw or b"\x00" in raw:
        raise BadRequest(f"property name {name!r} must be a non-empty string without NUL")
    return raw


def vertex_property_tkey(vid: int, name: str) -> bytes:
    return b"\x02" + _U64BE.pack(vid) + check_property_name(name)


def edge_property_tkey(a: int, b: int, name: str) -> bytes:
    return b"\x03" + _PAIR_BE.pack(*edge_ends(a, b)) + check_property_name(name)


def vertex_properties_range(vid: int) -> tuple[bytes, bytes]:
    """Inclusive tkey bounds of every property of a vertex (UTF-8 never holds 0xff)."""
    base = b"\x02" + _U64BE.pack(vid)
    return base, base + b"\xff"


def edge_properties_range(a: int, b: int) -> tuple[bytes, bytes]:
    base = b"\x03" + _PAIR_BE.pack(*edge_ends(a, b))
    return base, base + b"\xff"


def vertex_id_of(tk: bytes) -> int:
    return _U64BE.unpack_from(tk, 1)[0]


def edge_ids_of(tk: bytes) -> tuple[int, int]:
    return _PAIR_BE.unpack_from(tk, 1)


# ---- records -------------------------------------------------------------------------------------


@dataclass
class Vertex:
    """A vertex: its weight, neighbours in insertion order (a dict used as an ordered set) and the
    names of its properties."""

    id: int
    weight: float = 0.0
    neighbors: dict[int, None] = field(default_factory=dict)
    properties: dict[str, None] = field(default_factory=dict)


@dataclass
class Edge:
    """An undirected edge, ``v1 <= v2``."""

    v1: int
    v2: int
    weight: float = 0.0
    properties: dict[str, None] = field(default_factory=dict)

    def other(self, vid: int) -> int:
        return self.v2 if vid == self.v1 else self.v1


def _names_bytes(names: dict[str, None]) -> bytes:
    return _COUNT.pack(len(names)) + b"".join(n.encode("utf-8") + b"\x00" for n in names)


def _names_from(raw: bytes | memoryview, offset: int, what: str) -> dict[str, None]:
    (count,) = _COUNT.unpack_from(raw, offset)
    parts = bytes(raw[offset + 8 :]).split(b"\x00")
    if count > len(parts) - 1 or parts[count:] != [b""]:
        raise ValueError(f"{what}: property names do not match their count {count}")
    return dict.fromkeys(p.decode("utf-8", "replace") for p in parts[:count])


def encode_vertex(v: Vertex) -> bytes:
    n = len(v.neighbors)
    return b"".join(
        (
            RECORD_HEADER,
            _VERTEX_HEAD.pack(v.id, v.weight, n),
            struct.pack(f"<{n}Q", *v.neighbors),
            _names_bytes(v.properties),
        )
    )


def _record(value: bytes) -> bytes | memoryview:
    return memoryview(value)[1:] if value[:1] == RECORD_HEADER else envelope.deserialize(value)


def decode_vertex(value: bytes) -> Vertex:
    """A stored vertex (ValueError if the bytes are not one)."""
    raw = _record(value)
    try:
        vid, weight, n = _VERTEX_HEAD.unpack_from(raw)
        end = _VERTEX_HEAD.size + 8 * n
        if end + 8 > len(raw):
            raise ValueError("vertex record shorter than its neighbour count")
        neighbors = dict.fromkeys(struct.unpack_from(f"<{n}Q", raw, _VERTEX_HEAD.size))
        return Vertex(vid, weight, neighbors, _names_from(raw, end, f"vertex {vid}"))
    except struct.error as exc:
        raise ValueError(f"truncated vertex record: {exc}") from None


def vertex_weight(value: bytes) -> float:
    """Just the weight of a stored vertex (whole-graph reads decode no more)."""
    return _WEIGHT.unpack_from(_record(value), 8)[0]


def encode_edge(e: Edge) -> bytes:
    return (
        RECORD_HEADER
        + _EDGE_HEAD.pack(e.v1, e.v2, e.weight, len(e.properties))[:-8]
        + _names_bytes(e.properties)
    )


def decode_edge(value: bytes) -> Edge:
    raw = _record(value)
    try:
        v1, v2, weight, _ = _EDGE_HEAD.unpack_from(raw)
        return Edge(v1, v2, weight, _names_from(raw, 24, f"edge {v1}-{v2}"))
    except struct.error as exc:
        raise ValueError(f"truncated edge record: {exc}") from None


def edge_weight(value: bytes) -> float:
    return _WEIGHT.unpack_from(_record(value), 16)[0]


def describe_tkey(tk: bytes) -> dict[str, Any] | None:
    """What a graph tkey names, for diffs: a vertex, an edge or a property of either (None: not a
    graph key)."""
    kind, body = tk[:1], tk[1:]
    if kind == b"\x00" and len(body) == 8:
        return {"vertex": _U64BE.unpack(body)[0]}
    if kind == b"\x01" and len(body) == 16:
        return {"edge": list(_PAIR_BE.unpack(body))}
    if kind == b"\x02" and len(body) > 8:
        return {"vertex": _U64BE.unpack(body[:8])[0], "property": body[8:].decode("utf-8", "replace")}
    if kind == b"\x03" and len(body) > 16:
        return {"edge": list(_PAIR_BE.unpack(body[:16])), "property": body[16:].decode("utf-8", "replace")}
    return None
