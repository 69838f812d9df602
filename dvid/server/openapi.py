"""The OpenAPI 3.1 description of the API, built from the route tables the server dispatches on.

``GET /api/openapi.json`` describes this server: its server, repo and node endpoints (the
:class:`~dvid.server.routing.ApiRoute` tables) and, for every data instance it holds, the routes
its type declares (:class:`~dvid.datatype.common.route.Route`) as paths that carry the instance's
literal name: ``/api/node/{uuid}/<name>/<endpoint>/{arg}...``, one path per number of arguments
where trailing arguments are optional. ``GET /api/help/{typename}/openapi.json`` describes one
datatype with ``{dataname}`` as a path parameter, for a client that has no instance yet.

Instances of one name in several repos share their paths (``{uuid}`` chooses the repo). If they
are of different types, each type's routes are added in type-name order; an operation that two
types both declare (same path and method, e.g. ``GET .../info``) is described by the first type
and lists every type in its description and tags, so no instance's endpoint is left out.

Responses: the route's success status (200, plus any 204/206 it declares) with its media types;
errors as ``text/plain`` with the statuses a route of its kind can answer (see
:func:`error_statuses`). The instance dispatch routes themselves (any method, ``{endpoint...}``)
are not operations: the instances' paths stand for them.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from dvid import __version__
from dvid.datatype import registry
from dvid.datatype.base import Datatype
from dvid.datatype.common import jsonio
from dvid.datatype.common.request import json_bytes_response
from dvid.datatype.common.route import JSON, MUTATING_METHODS, Param, Route
from dvid.errors import NotFound
from dvid.repos import RepoManager
from dvid.server.repo_routes import DATANAME, UUID
from dvid.server.routing import ANY_METHOD, ApiRoute, PathValues, Router
from dvid.server.state import ROUTER_KEY, state_of

OPENAPI_VERSION = "3.1.0"
TITLE = "dvid"
DESCRIPTION = (
    "dvid, a Python implementation of DVID's HTTP API (versioned image and label volumes, key-value"
    " stores, annotations and ROIs). Errors are plain text '<message> (<path>).'. Every path of a data"
    " instance is listed for each instance this server holds; /api/help/{typename}/openapi.json"
    " describes a datatype for any instance name, and /api/help/{typename} is its reference text."
)

ERRORS = {
    400: "Malformed input",
    403: "The admin token is needed",
    404: "Unknown repo, version, instance, key, label or route",
    405: "The server is read-only",
    406: "No answer of a media type the Accept header allows",
    409: "A write to a committed version, a name already taken, or an unresolved merge conflict",
    413: "Over the server's body, voxel or in-memory limit",
    415: "A Content-Encoding the server cannot decode",
    416: "The Range header cannot be satisfied",
    503: "The server already runs its maximum of throttled requests",
}
SUCCESS = {200: "OK", 204: "No content", 206: "Partial content (a byte range)"}
#: Where writes are refused on a read-only server (405) and may meet a committed version (409).
WRITE_GUARDED_PREFIXES = ("/api/repo", "/api/node")
#: Order of operations within a path item (the OpenAPI field names).
METHOD_ORDER = ("get", "head", "post", "put", "delete", "patch")


def schema(param: Param, *, in_path: bool = False) -> dict[str, Any]:
    """The JSON Schema of a parameter's value (patterns anchored, as OpenAPI matches them unanchored)."""
    out: dict[str, Any] = {"type": param.type}
    if param.enum is not None:
        out["enum"] = list(param.enum)
    if param.type == "string":
        if param.pattern is not None:
            out["pattern"] = f"^(?:{param.pattern})$"
        if in_path:
            out["minLength"] = 1  # an empty segment never matches a path parameter
    if param.minimum is not None:
        out["minimum"] = param.minimum
    if param.maximum is not None:
        out["maximum"] = param.maximum
    return out


def parameter(param: Param, location: str) -> dict[str, Any]:
    in_path = location == "path"
    out: dict[str, Any] = {"name": param.name, "in": location, "required": in_path or param.required}
    if param.description:
        out["description"] = param.description
    out["schema"] = schema(param, in_path=in_path)
    if param.example is not None:
        out["example"] = int(param.example) if param.type == "integer" else param.example
    return out


def body_schema(media_type: str) -> dict[str, Any]:
    return {} if media_type == JSON else {"type": "string", "format": "binary"}


def error_statuses(
    path: str, method: str, *, mutates: bool, has_params: bool, consumes: bool, heavy: bool
) -> set[int]:
    """The error statuses an operation can answer, from what it is: under /api/repo and /api/node a
    version or instance can be unknown or malformed (400, 404) and a write can meet a read-only
    server (405) or a committed version (409); a body can be malformed, too large or undecodable
    (400, 413, 415); parameters can be malformed (400); heavy routes have limits and a throttle."""
    statuses: set[int] = set()
    guarded = path.startswith(WRITE_GUARDED_PREFIXES)
    if guarded:
        statuses |= {400, 404}
    if guarded and method in MUTATING_METHODS:
        statuses.add(405)
    if guarded and mutates:
        statuses.add(409)
    if has_params:
        statuses.add(400)
    if consumes:
        statuses |= {400, 413, 415}
    if heavy:
        statuses |= {413, 503}
    return statuses


def responses(
    produces: Iterable[str], statuses: Iterable[int], summary: str, empty: Iterable[int] = ()
) -> dict[str, Any]:
    """The responses object: 200 and other successes with ``produces``, errors by reference to the
    plain-text error responses, and the ``empty`` statuses described with no content."""
    out: dict[str, Any] = {}
    empty = set(empty)
    for status in sorted({200, *statuses, *empty}):
        if status in empty:
            meaning = ERRORS.get(status) or SUCCESS[status]
            out[str(status)] = {"description": f"{meaning} (the body may be empty)"}
        elif status in ERRORS:
            out[str(status)] = {"$ref": f"#/components/responses/{status}"}
        else:
            item: dict[str, Any] = {"description": summary if status == 200 and summary else SUCCESS[status]}
            if status != 204 and produces:
                item["content"] = {mt: {} for mt in produces}
            out[str(status)] = item
    return out


@dataclass
class Operation:
    """One operation while the document is built; ``types`` are the datatypes serving it."""

    path: str
    method: str
    body: dict[str, Any]
    types: list[str]


def _operation_id(method: str, path: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", path.removeprefix("/api/")).strip("_")
    return f"{method.lower()}_{slug}"


def _operation(
    method: str,
    path: str,
    *,
    summary: str,
    path_params: Iterable[Param],
    query: Iterable[Param],
    consumes: tuple[str, ...],
    produces: tuple[str, ...],
    statuses: set[int],
    tags: list[str],
    empty: tuple[int, ...] = (),
) -> dict[str, Any]:
    params = [parameter(p, "path") for p in path_params] + [parameter(q, "query") for q in query]
    op: dict[str, Any] = {"tags": tags, "summary": summary, "operationId": _operation_id(method, path)}
    if params:
        op["parameters"] = params
    if consumes and method != "HEAD":
        op["requestBody"] = {"content": {mt: {"schema": body_schema(mt)} for mt in consumes}}
    op["responses"] = responses(produces, statuses, summary, empty)
    return op


def _server_tag(path: str) -> str:
    if "/transfer/" in path:
        return "transfer"
    if path.startswith(("/api/repo/", "/api/repos")):
        return "repo"
    if path.startswith("/api/node/"):
        return "node"
    return "server"


def api_route_operations(route: ApiRoute) -> Iterator[Operation]:
    """The operations of a server, repo or node route (none for an any-method dispatcher)."""
    if ANY_METHOD in route.methods or route.has_rest:
        return
    by_name = {p.name: p for p in route.params}
    names = [s[1:-1] for s in route.segments if s.startswith("{")]
    path_params = [by_name[n] for n in names]
    for method in route.methods:
        mutates = method in MUTATING_METHODS
        statuses = error_statuses(
            route.path, method, mutates=mutates, has_params=bool(route.query),
            consumes=bool(route.consumes), heavy=False,
        ) | set(route.statuses)  # fmt: skip
        body = _operation(
            method, route.path, summary=route.summary, path_params=path_params, query=route.query,
            consumes=route.consumes, produces=route.produces, statuses=statuses,
            tags=[_server_tag(route.path)],
        )  # fmt: skip
        yield Operation(route.path, method, body, [])


def route_arities(route: Route) -> range:
    """How many path arguments a route can be given: its required ones, up to all of them."""
    required = sum(1 for a in route.args if a.required)
    return range(required, len(route.args) + 1)


def datatype_operations(cls: type[Datatype], base: str, base_params: list[Param]) -> Iterator[Operation]:
    """The operations of every route of a datatype under ``base`` (``/api/node/{uuid}/<name>``)."""
    for route in cls.all_routes():
        for arity in route_arities(route):
            args = route.args[:arity]
            path = "/".join((base, route.endpoint, *(f"{{{a.name}}}" for a in args)))
            for method in route.methods:
                statuses = error_statuses(
                    path, method, mutates=route.is_mutation(method), has_params=bool(route.query),
                    consumes=bool(route.consumes), heavy=route.heavy,
                ) | set(route.statuses)  # fmt: skip
                body = _operation(
                    method, path, summary=route.summary, path_params=[*base_params, *args], query=route.query,
                    consumes=route.consumes, produces=route.produces, statuses=statuses, tags=[cls.type_name],
                    empty=route.empty_statuses,
                )  # fmt: skip
                yield Operation(path, method, body, [cls.type_name])


def _instance_segment(name: str) -> str:
    """An instance name as a literal path segment: percent-encoded, braces included."""
    return quote(name, safe="-._~!$&'()*+,;=:@")


def instance_types(manager: RepoManager) -> dict[str, dict[str, list[str]]]:
    """Instance name -> type name -> root UUIDs of the repos holding an instance of that name and type."""
    out: dict[str, dict[str, list[str]]] = {}
    for repo in manager.iter_repos():
        for name, inst in list(repo.instances.items()):
            out.setdefault(name, {}).setdefault(inst.type_name, []).append(repo.root_uuid)
    return out


def _components() -> dict[str, Any]:
    error = {"text/plain": {"schema": {"type": "string"}}}
    return {"responses": {str(s): {"description": d, "content": error} for s, d in ERRORS.items()}}


def _assemble(operations: Iterable[Operation], description: str) -> dict[str, Any]:
    """The document from operations; the first operation of a path and method wins, later ones add
    their types to its tags and description; operation ids made unique."""
    paths: dict[str, dict[str, Any]] = {}
    kept: dict[tuple[str, str], Operation] = {}
    for op in operations:
        key = (op.path, op.method)
        first = kept.get(key)
        if first is None:
            kept[key] = op
            paths.setdefault(op.path, {})[op.method.lower()] = op.body
        else:
            for t in op.types:
                if t not in first.types:
                    first.types.append(t)
                    first.body["tags"].append(t)
    seen: set[str] = set()
    for op in kept.values():
        if len(op.types) > 1:
            served = ", ".join(op.types)
            op.body["description"] = f"Served by instances of this name of the types: {served}."
        op_id = op.body["operationId"]
        n = 2
        while op.body["operationId"] in seen:
            op.body["operationId"] = f"{op_id}_{n}"
            n += 1
        seen.add(op.body["operationId"])
    ordered = {path: {m: item[m] for m in METHOD_ORDER if m in item} for path, item in paths.items()}
    tags = sorted({t for op in kept.values() for t in op.body["tags"]})
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": TITLE, "version": __version__, "description": description},
        "tags": [{"name": t} for t in tags],
        "paths": ordered,
        "components": _components(),
    }


def document(router: Router, manager: RepoManager) -> dict[str, Any]:
    """The description of this server: its route table and the instances it holds now."""

    def operations() -> Iterator[Operation]:
        for route in router.routes:
            yield from api_route_operations(route)
        for name, types in sorted(instance_types(manager).items()):
            base = f"/api/node/{{uuid}}/{_instance_segment(name)}"
            for type_name in sorted(types):
                for op in datatype_operations(registry.get_type(type_name), base, [UUID]):
                    repos = ", ".join(types[type_name])
                    op.body.setdefault("x-dvid-instance", {"name": name, "type": type_name, "repos": repos})
                    yield op

    return _assemble(operations(), DESCRIPTION)


def type_document(cls: type[Datatype]) -> dict[str, Any]:
    """The description of one datatype's routes, for any instance (``{dataname}``)."""
    base = "/api/node/{uuid}/{dataname}"
    description = f"The API of datatype {cls.type_name} ({cls.type_url}, version {cls.type_version})."
    return _assemble(datatype_operations(cls, base, [UUID, DATANAME]), description)


class DocumentCache:
    """The server's description as JSON bytes, rebuilt (in a worker thread) when the set of instances
    changes: building it takes tens of milliseconds for a few hundred operations, serving it from
    here a fraction of one."""

    def __init__(self) -> None:
        self._key: str | None = None
        self._body: bytes = b""
        self._lock = asyncio.Lock()

    async def get(self, router: Router, manager: RepoManager) -> bytes:
        async with self._lock:
            key = repr(sorted(instance_types(manager).items()))
            if key != self._key:
                self._body = await asyncio.to_thread(lambda: jsonio.dumps(document(router, manager)))
                self._key = key
            return self._body


OPENAPI_CACHE_KEY = web.AppKey("dvid_openapi_cache", DocumentCache)


@functools.cache
def type_document_json(type_name: str) -> bytes:
    return jsonio.dumps(type_document(registry.get_type(type_name)))


async def get_openapi(request: web.Request, path: PathValues) -> web.StreamResponse:
    cache = request.app[OPENAPI_CACHE_KEY]
    body = await cache.get(request.app[ROUTER_KEY], state_of(request).manager)
    return json_bytes_response(body)


async def get_type_openapi(request: web.Request, path: PathValues) -> web.StreamResponse:
    name = path["typename"]
    if name not in registry.all_types():
        raise NotFound(f'Data type "{name}" is not supported by current DVID server')
    return json_bytes_response(type_document_json(name))
