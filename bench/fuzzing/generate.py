"""Fuzz requests built from the server's live route tables.

Every request starts from a declared route: a server/repo/node :class:`~dvid.server.routing.ApiRoute`
of :func:`dvid.server.app.api_router`, or a datatype :class:`~dvid.datatype.common.route.Route` of
an instance of the populated repo. Its method is one the route serves, another one, or an odd one;
its path parameters and query come from the route's declared ``params``/``args``/``query`` (or,
where a route declares no ``args``, from :data:`~bench.fuzzing.values.GENERIC_SHAPES`), each value
valid or mangled; its body follows ``consumes`` (JSON, binary, DVID payloads) and may be encoded
(gzip, deflate, lz4, lying about its size) and framed with a length or chunked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from bench.fuzzing import bodies
from bench.fuzzing.draw import Draw, chance, choice, weighted
from bench.fuzzing.helpshapes import HelpShape, help_shapes
from bench.fuzzing.seeds import Seed
from bench.fuzzing.values import (
    DIMS,
    GENERIC_SHAPES,
    ODD_SEGMENTS,
    QUERY_KINDS,
    Names,
    encode,
    kind_of,
    mangled,
    segment,
)
from dvid.datatype.common.route import BINARY, JSON, Param, Route
from dvid.datatype.common.route import query as query_param
from dvid.datatype.registry import all_types
from dvid.server.routing import ANY_METHOD, ApiRoute

STANDARD_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE")
ODD_METHODS = ("PATCH", "TRACE", "OPTIONS", "PROPFIND", "MKCOL", "SEARCH", "LOCK", "FUZZ", "get", "G3T")
_SIZE = re.compile(rb"[0-9]{1,7}(_[0-9]{1,7}){1,2}")


@dataclass(frozen=True)
class FuzzRequest:
    """One request as it goes on the wire: method, raw request target, headers, framed body."""

    method: str
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""  # as framed: chunked framing included when the headers say so
    version: bytes = b"HTTP/1.1"

    def wire(self) -> bytes:
        head = b"%s %s %s\r\n" % (self.method.encode("latin-1"), self.target, self.version)
        head += b"".join(b"%s: %s\r\n" % (k, v) for k, v in self.headers)
        return head + b"\r\n" + self.body

    def describe(self, body_prefix: int = 160) -> str:
        """The request in full but for a long body's tail: for failure reports."""
        headers = "; ".join(f"{k.decode('latin-1')}: {v.decode('latin-1')[:80]}" for k, v in self.headers)
        target = self.target if len(self.target) <= 600 else self.target[:600] + b"..."
        body = self.body[:body_prefix]
        more = f" ... ({len(self.body)} bytes)" if len(self.body) > body_prefix else ""
        return (
            f"{self.method} {target!r} {self.version.decode()}\n  headers: {headers}\n  body: {body!r}{more}"
        )


@dataclass(frozen=True)
class Target:
    """What the fuzzer aims at: the populated repo's names and instances, and the server's routes.

    ``names.uuids[0]`` is the open version being fuzzed; ``committed`` are versions that must
    refuse writes (the canaries live there). A POST .../commit never names the open version, so
    the fuzz keeps a writable version.
    """

    names: Names
    instance_types: Mapping[str, str]
    committed: tuple[str, ...]
    api_routes: tuple[ApiRoute, ...] = field(default=())
    #: Real payloads the server produced (a transfer stream, block streams, sparsevols ...), sent
    #: back as bodies, mostly mutated.
    samples: Mapping[str, bytes] = field(default_factory=dict)
    #: Valid requests sent mutated (:mod:`bench.fuzzing.seeds`).
    seeds: tuple[Seed, ...] = ()

    @cached_property
    def plain_api_routes(self) -> tuple[ApiRoute, ...]:
        """The server's routes but for the instance dispatch (drawn separately)."""
        return tuple(r for r in self.api_routes if not r.has_rest)

    @cached_property
    def all_endpoints(self) -> tuple[str, ...]:
        return tuple(sorted({ep for cls in all_types().values() for ep in cls.route_table}))


def build_request(draw: Draw, target: Target) -> FuzzRequest:
    """One fuzz request (see the module docstring)."""
    where = weighted(
        draw,
        (
            (55, "instance"),
            (25 if target.plain_api_routes else 0, "api"),
            (4, "junk"),
            (20 if target.seeds else 0, "seed"),
        ),
    )
    if where == "seed":
        return _seeded(draw, target)
    if where == "instance":
        method, segments, route_query, consumes, voxels = _instance_parts(draw, target)
    elif where == "api":
        method, segments, route_query, consumes = _api_parts(draw, target)
        voxels = None
    else:
        method = _method(draw, ("GET",))
        segments = [b"api", *(mangled(draw, "word", target.names) for _ in range(draw.integer(0, 4)))]
        if chance(draw, 30):
            segments = [mangled(draw, "word", target.names)]
        route_query, consumes, voxels = (), (), None
    payload = _payload(draw, target, method, consumes, voxels)
    query = _query(draw, target, route_query, payload.query)
    return _assemble(draw, method, segments, query, payload)


# ---- methods and paths ------------------------------------------------------------------------------
def _method(draw: Draw, served: tuple[str, ...]) -> str:
    served = tuple(m for m in served if m != ANY_METHOD) or STANDARD_METHODS
    return weighted(
        draw,
        ((16, choice(draw, served)), (3, choice(draw, STANDARD_METHODS)), (1, choice(draw, ODD_METHODS))),
    )


def _api_parts(draw: Draw, target: Target) -> tuple[str, list[bytes], tuple[Param, ...], tuple[str, ...]]:
    route = choice(draw, target.plain_api_routes)
    method = _method(draw, route.methods)
    params = {p.name: p for p in route.params}
    protect = method == "POST" and route.segments[-1] == "commit"
    segments: list[bytes] = []
    for seg in route.segments:
        if not (seg.startswith("{") and seg.endswith("}")):
            segments.append(seg.encode() if chance(draw, 97) else seg.upper().encode())
            continue
        param = params[seg[1:-1]]
        kind = kind_of(param)
        if kind == "uuid" and protect:
            segments.append(
                choice(draw, target.committed).encode()
                if chance(draw, 60)
                else mangled(draw, kind, target.names)
            )
        else:
            segments.append(segment(draw, kind, target.names, param))
    if chance(draw, 5):
        segments.append(mangled(draw, "word", target.names))
    return method, segments, route.query, route.consumes


def _instance_parts(
    draw: Draw, target: Target
) -> tuple[str, list[bytes], tuple[Param, ...], tuple[str, ...], int | None]:
    names = target.names
    uuid = segment(draw, "uuid", names, mangle=8)
    if chance(draw, 92):
        name = choice(draw, names.instances)
        name_seg = encode(name)
    else:
        name = ""
        name_seg = mangled(draw, "dataname", names)
    type_name = target.instance_types.get(name) or choice(draw, tuple(all_types()))
    table = all_types()[type_name].route_table
    endpoint = choice(draw, tuple(table)) if chance(draw, 93) else choice(draw, target.all_endpoints)
    by_method = table.get(endpoint, {})
    endpoint_seg = encode(endpoint) if chance(draw, 97) else mangled(draw, "word", names)
    method = _method(draw, tuple(by_method))
    route = by_method.get(method) or next(iter(by_method.values()), None)
    args, help_query = _route_args(draw, names, route, help_shapes(type_name).get(endpoint, ()), method)
    segments = [b"api", b"node", uuid, name_seg, endpoint_seg, *args]
    query = (*(route.query if route is not None else ()), *help_query)
    consumes = route.consumes if route is not None else ()
    return method, segments, query, consumes, _voxels(args)


def _route_args(
    draw: Draw, names: Names, route: Route | None, shapes: tuple[HelpShape, ...], method: str
) -> tuple[list[bytes], tuple[Param, ...]]:
    """The path segments after an endpoint and query parameters to draw from: from the route's
    declared ``args``, else from its help text's shapes, else a generic shape."""
    declared: tuple[Param, ...] = route.args if route is not None else ()
    help_query: tuple[Param, ...] = ()
    if not declared and shapes and chance(draw, 85):
        shape = choice(draw, [s for s in shapes if s.method == method] or shapes)
        declared = shape.args
        help_query = tuple(query_param(name) for name in shape.query)
        if not declared:
            return _extra_segment(draw, names, []), help_query
    if not declared:
        return [segment(draw, kind, names) for kind in choice(draw, GENERIC_SHAPES)], ()
    args: list[bytes] = []
    for param in declared:
        if not param.required and chance(draw, 30):
            break
        args.append(segment(draw, kind_of(param), names, param))
    if args and chance(draw, 5):
        del args[draw.integer(0, len(args) - 1)]
    return _extra_segment(draw, names, args), help_query


def _extra_segment(draw: Draw, names: Names, args: list[bytes]) -> list[bytes]:
    if chance(draw, 5):
        args.append(mangled(draw, "word", names))
    return args


def _voxels(args: list[bytes]) -> int | None:
    """The voxel count of the first size-like argument (a volume body is drawn to match it)."""
    for arg in args:
        if arg.decode("latin-1") not in DIMS and _SIZE.fullmatch(arg):
            n = 1
            for part in arg.split(b"_"):
                n *= int(part)
            return n
    return None


# ---- query ------------------------------------------------------------------------------------------
def _query(
    draw: Draw,
    target: Target,
    declared: tuple[Param, ...],
    extra: tuple[tuple[bytes, bytes], ...],
    base: tuple[tuple[bytes, bytes | None], ...] = (),
) -> bytes:
    names = target.names
    pairs: list[tuple[bytes, bytes | None]] = list(base)
    for param in declared:
        if chance(draw, 50):
            kind = kind_of(param)
            pairs.append((param.name.encode(), segment(draw, kind, names, param, mangle=30)))
    for _ in range(weighted(draw, ((5, 0), (3, 1), (1, 3)))):
        name = choice(draw, tuple(QUERY_KINDS))
        pairs.append((name.encode(), segment(draw, QUERY_KINDS[name], names, mangle=40)))
    if chance(draw, 20):
        pairs.append((b"u", b"fuzz"))
    pairs.extend(extra)
    if chance(draw, 8):
        pairs.insert(draw.integer(0, len(pairs)), choice(draw, _ODD_PAIRS))
    text = b"&".join(k if v is None else k + b"=" + v for k, v in pairs)
    if chance(draw, 3):
        text += choice(draw, (b"&", b"&&", b"#frag", b"?", b"%"))
    return text


_ODD_PAIRS: tuple[tuple[bytes, bytes | None], ...] = (
    (b"throttle", None), (b"", b"1"), (b"%ff", b"1"), (b"compression", b"%ff"), (b"scale", b"%zz"),
    (b"a%00b", b"c"), (b"=", b"="), (b"compression", b"lz4&compression=gzip"), (b"u", b"\xff\xfe"),
    (b"x" * 5000, b"1"), (b"scale", b"-1"), (b"throttle", b"maybe"), (b"compression", b"zstd"),
)  # fmt: skip


# ---- seeds ------------------------------------------------------------------------------------------
def _seeded(draw: Draw, target: Target) -> FuzzRequest:
    """A seed request with up to two things changed: a path segment, the method, the body."""
    names = target.names
    seed = choice(draw, target.seeds)
    path, _, query_text = seed.path.partition("?")
    if path.startswith("/api/"):
        path = path.replace("{root}", target.committed[0])
        segments = [
            segment(draw, "uuid", names, mangle=5) if s == "{uuid}" else s.encode()
            for s in path[1:].split("/")
        ]
    else:
        segments = [
            b"api",
            b"node",
            segment(draw, "uuid", names, mangle=5),
            *(s.encode() for s in path.split("/")),
        ]
    method, data = seed.method, seed.body.replace(b"{root}", target.committed[0].encode())
    for _ in range(weighted(draw, ((2, 0), (5, 1), (2, 2)))):
        how = choice(draw, ("segment", "method", "body", "body", "query"))
        if how == "segment" and len(segments) > 3:
            at = draw.integer(3, len(segments) - 1)
            segments[at] = mangled(draw, choice(draw, ("size", "offset", "label", "coord", "word")), names)
        elif how == "method":
            method = _method(draw, STANDARD_METHODS)
        elif how == "body":
            data = (
                bodies.mutated(draw, data)
                if data and chance(draw, 70)
                else bodies.binary_body(draw, None, {})
            )
        elif how == "query":
            query_text += (
                "&" + choice(draw, tuple(QUERY_KINDS)) + "=" + choice(draw, ("", "1", "-1", "x", "%ff"))
            )
    base = tuple(
        (k.encode(), v.encode()) for k, _, v in (p.partition("=") for p in query_text.split("&") if p)
    )
    payload = bodies.encode(draw, data) if data else bodies.Payload(b"")
    query = (
        _query(draw, target, (), payload.query, base)
        if chance(draw, 30)
        else b"&".join(b"%s=%s" % kv for kv in (*base, *payload.query))
    )
    return _assemble(draw, method, segments, query, payload)


# ---- body, framing and headers -------------------------------------------------------------------
def _payload(
    draw: Draw, target: Target, method: str, consumes: tuple[str, ...], voxels: int | None
) -> bodies.Payload:
    reads_body = method in ("POST", "PUT", "PATCH")
    if not reads_body and chance(draw, 75):
        return bodies.Payload(b"")
    if JSON in consumes:
        kind = weighted(draw, ((7, "json"), (2, "binary"), (1, "empty")))
    elif BINARY in consumes:
        kind = weighted(draw, ((1, "json"), (7, "binary"), (1, "empty")))
    else:
        kind = weighted(draw, ((5, "json"), (5, "binary"), (1, "empty")))
    if kind == "json":
        data = bodies.json_body(draw, target.names)
    elif kind == "binary":
        data = bodies.binary_body(draw, voxels, target.samples)
    else:
        data = b""
    return bodies.encode(draw, data)


def _assemble(
    draw: Draw, method: str, segments: list[bytes], query: bytes, payload: bodies.Payload
) -> FuzzRequest:
    path = b"/" + b"/".join(segments)
    how = weighted(
        draw,
        ((40, "plain"), (1, "slash"), (1, "double"), (1, "dots"), (1, "absolute"), (1, "long"), (1, "odd")),
    )
    if how == "slash":
        path += b"/"
    elif how == "double":
        path = path.replace(b"/", b"//", draw.integer(1, 3))
    elif how == "dots":
        path = b"/api/../" + path.lstrip(b"/") if chance(draw, 50) else path + b"/./.."
    elif how == "absolute":
        path = b"http://fuzz.invalid" + path
    elif how == "long":
        path += b"/" + b"a" * draw.integer(8000, 20000)
    elif how == "odd":
        path = choice(
            draw, (b"*", b"api", b"/", b"/api", b"//", b"/api/%", *(b"/api/" + s for s in ODD_SEGMENTS))
        )
    target = path + b"?" + query if query else path
    headers: list[tuple[bytes, bytes]] = [(b"Host", b"127.0.0.1")]
    headers.extend(payload.headers)
    if chance(draw, 10):
        headers.append(choice(draw, _ODD_HEADERS))
    body, framing = _frame(draw, method, payload.data)
    headers.extend(framing)
    version = b"HTTP/1.1" if chance(draw, 98) else b"HTTP/1.0"
    return FuzzRequest(method, target, tuple(headers), body, version)


_ODD_HEADERS = (
    (b"Content-Type", b"application/json"), (b"Content-Type", b"application/x-www-form-urlencoded"),
    (b"Content-Type", b"multipart/form-data; boundary=x"), (b"Content-Type", b"\xff"),
    (b"Origin", b"http://fuzz.invalid"), (b"Range", b"bytes=5-1"), (b"Range", b"bytes=0-"),
    (b"Accept-Encoding", b"gzip, br"), (b"X-Forwarded-For", b"1.2.3.4"), (b"Authorization", b"Bearer x"),
    (b"Connection", b"close"), (b"Connection", b"upgrade"), (b"Upgrade", b"websocket"),
    (b"X-Long", b"x" * 9000), (b"Expect", b"100-continue"), (b"Access-Control-Request-Headers", b"x"),
)  # fmt: skip


def _frame(draw: Draw, method: str, data: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The body as sent and its framing headers: a length, chunked (sometimes malformed), or none.

    Every framing is complete: the server never has to wait for bytes that will not come.
    """
    if not data and method not in ("POST", "PUT", "PATCH") and chance(draw, 80):
        return b"", []
    how = weighted(draw, ((40, "length"), (4, "chunked"), (1, "bad chunk size"), (1, "huge chunk size")))
    if how == "length":
        return data, [(b"Content-Length", str(len(data)).encode())]
    te = [(b"Transfer-Encoding", b"chunked")]
    if how == "bad chunk size":
        return b"zz\r\n" + data + b"\r\n0\r\n\r\n", te
    if how == "huge chunk size":
        return b"f" * 20 + b"\r\n" + data[:16] + b"\r\n0\r\n\r\n", te
    pieces = []
    at = 0
    while at < len(data):
        left = len(data) - at
        step = draw.integer(max(1, left // 4), left)
        pieces.append(b"%x\r\n%s\r\n" % (step, data[at : at + step]))
        at += step
    return b"".join(pieces) + b"0\r\n\r\n", te
