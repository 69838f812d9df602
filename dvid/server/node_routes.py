"""Node-level endpoints (``/api/node/{uuid}/{action}``) and dispatch to data instances."""

from __future__ import annotations

import asyncio

from aiohttp import web

from dvid.dag.dag import Node
from dvid.datatype.common import jsonio
from dvid.datatype.common.request import InstanceRequest, json_response, parse_bool
from dvid.errors import BadRequest, Conflict, MethodNotAllowed, NotFound
from dvid.repos import Repo
from dvid.server.paths import path_parts
from dvid.server.repo_routes import _string_field, _string_list
from dvid.server.state import ServerState, state_of

routes = web.RouteTableDef()

#: Node actions that may be POSTed even to a committed version.
ALLOWED_ON_LOCKED = frozenset({"branch", "newversion", "tag"})
_READ_WRITE = ("GET", "HEAD", "POST")
#: Node actions and the methods each accepts.
NODE_ACTIONS: dict[str, tuple[str, ...]] = {
    "note": _READ_WRITE,
    "log": _READ_WRITE,
    "commit": _READ_WRITE,
    "status": ("GET", "HEAD"),
    "newversion": ("POST",),
    "branch": ("POST",),
    "tag": ("POST",),
}


def _may_write_locked(state: ServerState, request: web.Request) -> bool:
    return state.fullwrite or state.is_admin(request)


@routes.route("*", "/api/node/{rest:.*}")
async def node_dispatch(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    parts = path_parts(request, "/api/node/")
    if not parts or not parts[0]:
        raise BadRequest("a version UUID must follow /api/node/")
    repo, node = state.manager.resolve(parts[0])
    if len(parts) < 2 or not parts[1]:
        raise NotFound(f"expected /api/node/{{uuid}}/{{action or data name}}, got /api/node/{parts[0]}")
    name = parts[1]
    if len(parts) == 2 and name in NODE_ACTIONS:
        return await node_action(state, request, repo, node, name)
    return await instance_dispatch(state, request, repo, node, name, parts[2:])


async def node_action(
    state: ServerState, request: web.Request, repo: Repo, node: Node, action: str
) -> web.StreamResponse:
    method = request.method
    manager = state.manager
    if method not in NODE_ACTIONS[action]:
        allowed = NODE_ACTIONS[action]
        raise MethodNotAllowed(f"{method} is not supported on /api/node/{{uuid}}/{action}", allowed=allowed)
    if method in ("GET", "HEAD"):
        if action == "note":
            return json_response({"note": node.note})
        if action == "log":
            return json_response({"log": list(node.log)})
        return json_response({"Locked": node.locked})  # status, commit
    if node.locked and action not in ALLOWED_ON_LOCKED and not _may_write_locked(state, request):
        raise Conflict(f"Cannot do {method} on locked node {node.uuid}")
    raw = await request.read()
    if action == "commit":
        body = jsonio.loads_object(raw)
        messages = _string_list(body, "log") if "log" in body else []
        await asyncio.to_thread(manager.commit, repo, node, _string_field(body, "note"), messages)
        return json_response({"committed": node.uuid})
    body = jsonio.loads_object(raw, allow_empty=action in ("newversion",))
    if action == "note":
        await asyncio.to_thread(_set_note, state, repo, node, _string_field(body, "note", required=True))
        return web.Response()
    if action == "log":
        await asyncio.to_thread(_add_node_log, state, repo, node, _string_list(body, "log"))
        return web.Response()
    note = _string_field(body, "note")
    if action == "newversion":
        child = await asyncio.to_thread(manager.new_version, repo, node, note, body.get("uuid"))
    elif action == "branch":
        child = await asyncio.to_thread(
            manager.branch, repo, node, _string_field(body, "branch", required=True), note, body.get("uuid")
        )
    else:  # tag
        child = await asyncio.to_thread(
            manager.tag, repo, node, _string_field(body, "tag", required=True), note
        )
    return json_response({"child": child.uuid})


def _set_note(state: ServerState, repo: Repo, node: Node, note: str) -> None:
    repo.dag.set_note(node.version, note)
    state.manager.save(repo)


def _add_node_log(state: ServerState, repo: Repo, node: Node, messages: list[str]) -> None:
    repo.dag.add_log(node.version, messages)
    state.manager.save(repo)


async def instance_dispatch(
    state: ServerState, request: web.Request, repo: Repo, node: Node, name: str, rest: list[str]
) -> web.StreamResponse:
    """Route ``/api/node/{uuid}/{name}/{endpoint}/...`` to the instance's handler."""
    instance = repo.instance(name)
    if not rest or not rest[0]:
        raise NotFound(f"expected an endpoint after data instance {name!r}, e.g. .../{name}/help")
    endpoint, args = rest[0], rest[1:]
    found = instance.find_route(endpoint, request.method)
    if found is None:
        help_url = f"/api/help/{instance.type_name}"
        raise NotFound(f'Bad API call ({request.path}) for data "{name}".  See API help at {help_url}')
    if isinstance(found, dict):
        raise MethodNotAllowed(
            f"endpoint {endpoint!r} of {instance.type_name} does not support {request.method}"
            f" (allowed: {', '.join(sorted(found))})",
            allowed=tuple(sorted(found)),
        )
    route = found
    locked = instance.versioned and node.locked
    if locked and route.is_mutation(request.method) and not _may_write_locked(state, request):
        raise Conflict(f'Cannot do {request.method} on endpoint "{endpoint}" of locked node {node.uuid}')
    ancestry = repo.dag.ancestry(node.version)
    root_ancestry = repo.dag.ancestry(repo.dag.root_version)
    ctx = instance.context(ancestry if instance.versioned else root_ancestry)
    ireq = InstanceRequest(
        request, node, ctx, endpoint, args, user=request.query.get("u", ""),
        ancestry=ancestry, root_ancestry=root_ancestry, limits=state.limits,
    )  # fmt: skip
    handler = instance.handler_for(route)
    if route.heavy and parse_bool(request.query.get("throttle"), "throttle"):
        async with state.throttle():
            return await handler(ireq)
    return await handler(ireq)
