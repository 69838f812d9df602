"""Repo-level endpoints: ``/api/repos``, ``/api/repos/info`` and ``/api/repo/{uuid}/...``."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from dvid.dag.dag import Node
from dvid.datatype.common import jsonio
from dvid.datatype.common.request import json_response, parse_bool, text_response
from dvid.errors import BadRequest, Conflict, Forbidden, MethodNotAllowed, NotFound
from dvid.repos import Repo
from dvid.server.paths import path_parts
from dvid.server.state import ServerState, state_of

routes = web.RouteTableDef()


def _string_field(body: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = body.get(name)
    if value is None:
        if required:
            raise BadRequest(f"request body requires a '{name}' string")
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"'{name}' must be a string, not {type(value).__name__}")
    return value


def _string_list(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"request body requires '{name}' as a list of strings")
    return value


def _parents(state: ServerState, body: dict[str, Any], action: str) -> tuple[Repo, list[Node]]:
    """The versions a merge or resolve names in ``parents`` (at least two), and their repo."""
    resolved = [state.manager.resolve(p) for p in _string_list(body, "parents")]
    if len(resolved) < 2:
        raise BadRequest(f"{action} requires at least two parents in 'parents'")
    return resolved[0][0], [node for _, node in resolved]


def require_admin(state: ServerState, request: web.Request, action: str) -> None:
    """Deletes and renames need the admin token (config admin_token or env DVID_ADMIN_TOKEN)."""
    if not state.config.server.effective_admin_token():
        raise Forbidden(
            f"{action} requires the admin token, and this server has none: start it with"
            " DVID_ADMIN_TOKEN set (or admin_token in [server]) and pass ?admintoken=<token>"
        )
    if not state.is_admin(request):
        raise Forbidden(f"{action} requires the admin token: pass ?admintoken=<token>")


def require_imsure(request: web.Request) -> None:
    if not parse_bool(request.query.get("imsure"), "imsure"):
        raise BadRequest("deletion needs ?imsure=true to confirm")


@routes.post("/api/repos")
async def new_repo(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    body = jsonio.loads_object(await request.read(), allow_empty=True)
    lowered = {k.lower(): v for k, v in body.items()}
    for key, value in lowered.items():
        if not isinstance(value, str):
            raise BadRequest(f"Setting for '{key}' was not a string")
    repo = await asyncio.to_thread(
        state.manager.new_repo,
        lowered.get("alias", ""),
        lowered.get("description", ""),
        lowered.get("root") or None,
        lowered.get("passcode", ""),
    )
    return json_response({"root": repo.root_uuid})


@routes.get("/api/repos/info")
async def repos_info(request: web.Request) -> web.StreamResponse:
    manager = state_of(request).manager
    return json_response({repo.root_uuid: manager.repo_info(repo) for repo in manager.iter_repos()})


@routes.route("*", "/api/repo/{rest:.*}")
async def repo_dispatch(request: web.Request) -> web.StreamResponse:
    """Everything under ``/api/repo/{uuid}``."""
    state = state_of(request)
    parts = path_parts(request, "/api/repo/")
    if not parts or not parts[0]:
        raise BadRequest("a repo UUID must follow /api/repo/")
    repo, node = state.manager.resolve(parts[0])
    method = request.method
    manager = state.manager
    if len(parts) == 1:
        if method in ("GET", "HEAD"):
            return text_response(f"Repo available with root UUID {repo.root_uuid}")
        if method == "DELETE":
            require_admin(state, request, "deleting a repo")
            require_imsure(request)
            await asyncio.to_thread(manager.delete_repo, repo)
            return text_response(f"Deleted repo {repo.root_uuid} and started deleting its data")
        raise MethodNotAllowed(f"{method} is not supported on /api/repo/{{uuid}}")
    action, args = parts[1], parts[2:]

    if method == "DELETE" and not args:
        require_admin(state, request, "deleting a data instance")
        require_imsure(request)
        await asyncio.to_thread(manager.delete_instance, repo, action)
        return text_response(f"Deleted data instance {action!r} from repo {repo.root_uuid}")

    if action == "info":
        if method in ("GET", "HEAD"):
            return json_response(manager.repo_info(repo))
        if method == "POST":
            body = jsonio.loads_object(await request.read())
            lowered = {k.lower(): v for k, v in body.items()}
            await asyncio.to_thread(
                manager.set_repo_info, repo, lowered.get("alias"), lowered.get("description")
            )
            return web.Response()
    elif action == "instance" and method == "POST":
        if node.locked and not (state.fullwrite or state.is_admin(request)):
            raise Conflict(f"New data instance cannot be created on locked node {node.uuid}")
        config = jsonio.loads_object(await request.read())
        inst = await asyncio.to_thread(manager.new_instance, repo, node, config)
        return json_response({"result": f"Added {inst.name} [{inst.type_name}] to node {node.uuid}"})
    elif action == "log":
        if method in ("GET", "HEAD"):
            return json_response({"log": list(repo.log)})
        if method == "POST":
            body = jsonio.loads_object(await request.read())
            await asyncio.to_thread(manager.add_repo_log, repo, _string_list(body, "log"))
            return web.Response()
    elif action == "branch-versions" and method in ("GET", "HEAD"):
        if not args:
            raise BadRequest("expect a branch name to follow 'branch-versions'")
        return json_response(repo.dag.branch_versions(args[0]))
    elif action == "merge" and method == "POST":
        body = jsonio.loads_object(await request.read())
        merge_type = _string_field(body, "mergeType")
        if merge_type != "conflict-free":
            raise BadRequest("'mergeType' must be 'conflict-free' at this time")
        target, parents = _parents(state, body, "merge")
        child = await asyncio.to_thread(
            manager.merge, target, parents, _string_field(body, "note"), body.get("uuid")
        )
        return json_response({"child": child.uuid})
    elif action == "resolve" and method == "POST":
        body = jsonio.loads_object(await request.read())
        target, parents = _parents(state, body, "resolve")
        child = await asyncio.to_thread(
            manager.resolve_merge, target, _string_list(body, "data"), parents, _string_field(body, "note")
        )
        return json_response({"child": child.uuid})
    elif action == "rename" and method == "POST":
        require_admin(state, request, "renaming a data instance")
        body = jsonio.loads_object(await request.read())
        old = _string_field(body, "dataname", required=True)
        new = _string_field(body, "newname", required=True)
        await asyncio.to_thread(manager.rename_instance, repo, old, new)
        return text_response(f"Renamed data instance {old!r} to {new!r}")
    else:
        if action in ("info", "instance", "log", "branch-versions", "merge", "resolve", "rename"):
            raise MethodNotAllowed(f"{method} is not supported on /api/repo/{{uuid}}/{action}")
        raise NotFound(f"unknown repo endpoint {action!r}")
    raise MethodNotAllowed(f"{method} is not supported on /api/repo/{{uuid}}/{action}")
