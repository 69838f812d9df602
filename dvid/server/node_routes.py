"""Node-level endpoints (``/api/node/{uuid}/{action}``) and dispatch to data instances."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from dvid.dag.dag import Node
from dvid.datatype.common import jsonio
from dvid.datatype.common.request import InstanceRequest, json_response, parse_bool
from dvid.datatype.common.route import JSON, Param
from dvid.errors import Conflict, MethodNotAllowed, NotFound
from dvid.repo import Repo
from dvid.server.metrics import set_route_label
from dvid.server.repo_routes import DATANAME, UUID, _string_field, _string_list
from dvid.server.routing import ANY_METHOD, ApiRoute, PathValues
from dvid.server.state import ServerState, body_of, state_of


def _may_write_locked(state: ServerState, request: web.Request) -> bool:
    return state.fullwrite or state.is_admin(request)


def _node(request: web.Request, path: PathValues) -> tuple[ServerState, Repo, Node]:
    state = state_of(request)
    repo, node = state.manager.resolve(path["uuid"])
    return state, repo, node


async def _writable_node_body(
    request: web.Request, path: PathValues, *, allow_empty: bool = False, on_locked: bool = False
) -> tuple[ServerState, Repo, Node, dict[str, Any]]:
    """The node of a node-action POST and its JSON body; 409 on a committed node unless allowed."""
    state, repo, node = _node(request, path)
    if node.locked and not on_locked and not _may_write_locked(state, request):
        raise Conflict(f"Cannot do {request.method} on locked node {node.uuid}")
    body = jsonio.loads_object(await body_of(request), allow_empty=allow_empty)
    return state, repo, node, body


async def get_note(request: web.Request, path: PathValues) -> web.StreamResponse:
    return json_response({"note": _node(request, path)[2].note})


async def post_note(request: web.Request, path: PathValues) -> web.StreamResponse:
    state, repo, node, body = await _writable_node_body(request, path)
    await asyncio.to_thread(_set_note, state, repo, node, _string_field(body, "note", required=True))
    return web.Response()


async def get_log(request: web.Request, path: PathValues) -> web.StreamResponse:
    return json_response({"log": list(_node(request, path)[2].log)})


async def post_log(request: web.Request, path: PathValues) -> web.StreamResponse:
    state, repo, node, body = await _writable_node_body(request, path)
    await asyncio.to_thread(_add_node_log, state, repo, node, _string_list(body, "log"))
    return web.Response()


async def get_status(request: web.Request, path: PathValues) -> web.StreamResponse:
    return json_response({"Locked": _node(request, path)[2].locked})


async def commit(request: web.Request, path: PathValues) -> web.StreamResponse:
    state, repo, node, body = await _writable_node_body(request, path)
    messages = _string_list(body, "log") if "log" in body else []
    await asyncio.to_thread(state.manager.commit, repo, node, _string_field(body, "note"), messages)
    return json_response({"committed": node.uuid})


async def newversion(request: web.Request, path: PathValues) -> web.StreamResponse:
    state, repo, node, body = await _writable_node_body(request, path, allow_empty=True, on_locked=True)
    note = _string_field(body, "note")
    child = await asyncio.to_thread(state.manager.new_version, repo, node, note, body.get("uuid"))
    return json_response({"child": child.uuid})


async def branch(request: web.Request, path: PathValues) -> web.StreamResponse:
    state, repo, node, body = await _writable_node_body(request, path, on_locked=True)
    name, note = _string_field(body, "branch", required=True), _string_field(body, "note")
    child = await asyncio.to_thread(state.manager.branch, repo, node, name, note, body.get("uuid"))
    return json_response({"child": child.uuid})


async def tag(request: web.Request, path: PathValues) -> web.StreamResponse:
    state, repo, node, body = await _writable_node_body(request, path, on_locked=True)
    name, note = _string_field(body, "tag", required=True), _string_field(body, "note")
    child = await asyncio.to_thread(state.manager.tag, repo, node, name, note)
    return json_response({"child": child.uuid})


def _set_note(state: ServerState, repo: Repo, node: Node, note: str) -> None:
    repo.dag.set_note(node.version, note)
    state.manager.save(repo)


def _add_node_log(state: ServerState, repo: Repo, node: Node, messages: list[str]) -> None:
    repo.dag.add_log(node.version, messages)
    state.manager.save(repo)


async def instance_without_endpoint(request: web.Request, path: PathValues) -> web.StreamResponse:
    """``/api/node/{uuid}/{dataname}`` alone: the version and instance must exist, then a 404."""
    _, repo, _ = _node(request, path)
    name = path["dataname"]
    instance = repo.instance(name)
    raise NotFound(
        f"expected an endpoint after data instance {name!r}, e.g. .../{name}/help"
        f" (see /api/help/{instance.type_name})"
    )


async def instance_dispatch(request: web.Request, path: PathValues) -> web.StreamResponse:
    """Route ``/api/node/{uuid}/{dataname}/{endpoint}/...`` to the instance's handler."""
    state, repo, node = _node(request, path)
    name = path["dataname"]
    instance = repo.instance(name)
    endpoint, args = path.rest[0], path.rest[1:]
    found = instance.find_route(endpoint, request.method)
    if found is None:
        raise NotFound(
            f'Bad API call for data "{name}": no endpoint {endpoint!r}.  See /api/help/{instance.type_name}'
        )
    if isinstance(found, dict):
        raise MethodNotAllowed(
            f"endpoint {endpoint!r} of {instance.type_name} does not support {request.method}"
            f" (allowed: {', '.join(sorted(found))})",
            allowed=tuple(sorted(found)),
        )
    route = found
    set_route_label(request, f"{instance.type_name}/{route.endpoint}")
    locked = instance.versioned and node.locked
    if locked and route.is_mutation(request.method) and not _may_write_locked(state, request):
        raise Conflict(f'Cannot do {request.method} on endpoint "{endpoint}" of locked node {node.uuid}')
    ancestry = repo.dag.ancestry(node.version)
    ctx = instance.context_at(ancestry)
    ireq = InstanceRequest(
        request, node, ctx, endpoint, args, ancestry, user=request.query.get("u", ""), limits=state.limits,
    )  # fmt: skip
    handler = instance.handler_for(route)
    if route.heavy and parse_bool(request.query.get("throttle"), "throttle"):
        async with state.throttle():
            return await handler(ireq)
    return await handler(ireq)


ENDPOINT = Param("endpoint", description="The datatype endpoint and its arguments (see /api/help/{type})")

routes = (
    ApiRoute("/api/node/{uuid}/note", ("GET", "HEAD"), get_note, "The version's note", params=(UUID,)),
    ApiRoute("/api/node/{uuid}/note", ("POST",), post_note, "Set the version's note", params=(UUID,),
             consumes=(JSON,), produces=()),
    ApiRoute("/api/node/{uuid}/log", ("GET", "HEAD"), get_log, "The version's log", params=(UUID,)),
    ApiRoute("/api/node/{uuid}/log", ("POST",), post_log, "Append to the version's log", params=(UUID,),
             consumes=(JSON,), produces=()),
    ApiRoute("/api/node/{uuid}/status", ("GET", "HEAD"), get_status, "Whether the version is committed",
             params=(UUID,)),
    # DVID answers GET .../commit like .../status
    ApiRoute("/api/node/{uuid}/commit", ("GET", "HEAD"), get_status, "Whether the version is committed",
             params=(UUID,)),
    ApiRoute("/api/node/{uuid}/commit", ("POST",), commit, "Commit (lock) the version", params=(UUID,),
             consumes=(JSON,)),
    ApiRoute("/api/node/{uuid}/newversion", ("POST",), newversion, "A new open child version",
             params=(UUID,), consumes=(JSON,)),
    ApiRoute("/api/node/{uuid}/branch", ("POST",), branch, "A new branch from the version", params=(UUID,),
             consumes=(JSON,)),
    ApiRoute("/api/node/{uuid}/tag", ("POST",), tag, "A committed, tagged child of a committed version",
             params=(UUID,), consumes=(JSON,)),
    ApiRoute("/api/node/{uuid}/{dataname}", (ANY_METHOD,), instance_without_endpoint,
             "Not an endpoint: a data instance's endpoints follow its name", params=(UUID, DATANAME)),
    ApiRoute("/api/node/{uuid}/{dataname}/{endpoint...}", (ANY_METHOD,),
             instance_dispatch, "A data instance's endpoint (see /api/openapi.json and /api/help/{type})",
             params=(UUID, DATANAME, ENDPOINT)),
)  # fmt: skip
