"""Repo-level endpoints: ``/api/repos``, ``/api/repos/info`` and ``/api/repo/{uuid}/...``."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from dvid.dag.dag import Node
from dvid.datatype.common import jsonio
from dvid.datatype.common.request import json_response, parse_bool, text_response
from dvid.datatype.common.route import JSON, TEXT, Param, flag, query
from dvid.errors import BadRequest, Conflict, Forbidden
from dvid.repo import Repo
from dvid.server.routing import ApiRoute, PathValues
from dvid.server.state import ServerState, body_of, state_of


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
            f"{action} requires the admin token, and this server has none: start the server with"
            " DVID_ADMIN_TOKEN set (or admin_token in its [server] configuration)"
        )
    given = request.query.get("admintoken")
    if given is None:
        raise Forbidden(
            f"{action} requires the admin token: pass ?admintoken=<token>"
            " (the dvid command: --admin-token TOKEN or DVID_ADMIN_TOKEN)"
        )
    if not state.is_admin(request):
        raise Forbidden(f"{action} requires the admin token, and the token given is wrong")


def require_imsure(request: web.Request) -> None:
    if not parse_bool(request.query.get("imsure"), "imsure"):
        raise BadRequest("deletion needs ?imsure=true to confirm")


async def new_repo(request: web.Request, path: PathValues) -> web.StreamResponse:
    state = state_of(request)
    body = jsonio.loads_object(await body_of(request), allow_empty=True)
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


async def repos_info(request: web.Request, path: PathValues) -> web.StreamResponse:
    manager = state_of(request).manager
    return json_response({repo.root_uuid: manager.repo_info(repo) for repo in manager.iter_repos()})


def _repo(request: web.Request, path: PathValues) -> tuple[ServerState, Repo, Node]:
    state = state_of(request)
    repo, node = state.manager.resolve(path["uuid"])
    return state, repo, node


async def repo_exists(request: web.Request, path: PathValues) -> web.StreamResponse:
    _, repo, _ = _repo(request, path)
    return text_response(f"Repo available with root UUID {repo.root_uuid}")


async def delete_repo(request: web.Request, path: PathValues) -> web.StreamResponse:
    state, repo, _ = _repo(request, path)
    require_admin(state, request, "deleting a repo")
    require_imsure(request)
    await asyncio.to_thread(state.manager.delete_repo, repo)
    return text_response(f"Deleted repo {repo.root_uuid} and started deleting its data")


async def delete_instance(request: web.Request, path: PathValues) -> web.StreamResponse:
    state, repo, _ = _repo(request, path)
    name = path["dataname"]
    require_admin(state, request, "deleting a data instance")
    require_imsure(request)
    await asyncio.to_thread(state.manager.delete_instance, repo, name)
    return text_response(f"Deleted data instance {name!r} from repo {repo.root_uuid}")


async def get_repo_info(request: web.Request, path: PathValues) -> web.StreamResponse:
    state, repo, _ = _repo(request, path)
    return json_response(state.manager.repo_info(repo))


async def post_repo_info(request: web.Request, path: PathValues) -> web.StreamResponse:
    state, repo, _ = _repo(request, path)
    body = jsonio.loads_object(await body_of(request))
    lowered = {k.lower(): v for k, v in body.items()}
    await asyncio.to_thread(
        state.manager.set_repo_info, repo, lowered.get("alias"), lowered.get("description")
    )
    return web.Response()


async def new_instance(request: web.Request, path: PathValues) -> web.StreamResponse:
    state, repo, node = _repo(request, path)
    if node.locked and not (state.fullwrite or state.is_admin(request)):
        raise Conflict(
            f"New data instance cannot be created on locked node {node.uuid}: instances are added at"
            " open versions (POST .../node/{uuid}/newversion makes one)"
        )
    config = jsonio.loads_object(await body_of(request))
    inst = await asyncio.to_thread(state.manager.new_instance, repo, node, config)
    return json_response({"result": f"Added {inst.name} [{inst.type_name}] to node {node.uuid}"})


async def get_repo_log(request: web.Request, path: PathValues) -> web.StreamResponse:
    _, repo, _ = _repo(request, path)
    return json_response({"log": list(repo.log)})


async def post_repo_log(request: web.Request, path: PathValues) -> web.StreamResponse:
    state, repo, _ = _repo(request, path)
    body = jsonio.loads_object(await body_of(request))
    await asyncio.to_thread(state.manager.add_repo_log, repo, _string_list(body, "log"))
    return web.Response()


async def branch_versions(request: web.Request, path: PathValues) -> web.StreamResponse:
    _, repo, _ = _repo(request, path)
    return json_response(repo.dag.branch_versions(path["branch"]))


async def merge(request: web.Request, path: PathValues) -> web.StreamResponse:
    state, _, _ = _repo(request, path)
    body = jsonio.loads_object(await body_of(request))
    merge_type = _string_field(body, "mergeType")
    if merge_type != "conflict-free":
        raise BadRequest("'mergeType' must be 'conflict-free' at this time")
    target, parents = _parents(state, body, "merge")
    child = await asyncio.to_thread(
        state.manager.merge, target, parents, _string_field(body, "note"), body.get("uuid")
    )
    return json_response({"child": child.uuid})


async def resolve(request: web.Request, path: PathValues) -> web.StreamResponse:
    state, _, _ = _repo(request, path)
    body = jsonio.loads_object(await body_of(request))
    target, parents = _parents(state, body, "resolve")
    child = await asyncio.to_thread(
        state.manager.resolve_merge, target, _string_list(body, "data"), parents, _string_field(body, "note")
    )
    return json_response({"child": child.uuid})


async def rename(request: web.Request, path: PathValues) -> web.StreamResponse:
    state, repo, _ = _repo(request, path)
    require_admin(state, request, "renaming a data instance")
    body = jsonio.loads_object(await body_of(request))
    old = _string_field(body, "dataname", required=True)
    new = _string_field(body, "newname", required=True)
    await asyncio.to_thread(state.manager.rename_instance, repo, old, new)
    return text_response(f"Renamed data instance {old!r} to {new!r}")


UUID = Param(
    "uuid",
    description="A version: a UUID or unique prefix, 'uuid:branch', ':branch' or 'branch~N'",
    pattern=r"[0-9a-fA-F]{0,32}(:[^/~]*)?(~[0-9]+)?",
)
DATANAME = Param("dataname", description="A data instance's name")
BRANCH = Param("branch", description="A branch name", example="master")
ADMIN_TOKEN = query("admintoken", description="The server's admin token")
IMSURE = flag("imsure", "Confirms a deletion")

routes = (
    ApiRoute("/api/repos", ("POST",), new_repo, "Create a repo; answers {\"root\": uuid}", consumes=(JSON,)),
    ApiRoute("/api/repos/info", ("GET", "HEAD"), repos_info, "Every repo's info by root UUID"),
    ApiRoute("/api/repo/{uuid}", ("GET", "HEAD"), repo_exists, "Whether the repo exists", params=(UUID,),
             produces=(TEXT,)),
    ApiRoute("/api/repo/{uuid}", ("DELETE",), delete_repo, "Delete a repo and its data (admin)",
             params=(UUID,), query=(ADMIN_TOKEN, IMSURE), produces=(TEXT,), statuses=(403,)),
    ApiRoute("/api/repo/{uuid}/{dataname}", ("DELETE",), delete_instance, "Delete a data instance (admin)",
             params=(UUID, DATANAME), query=(ADMIN_TOKEN, IMSURE), produces=(TEXT,), statuses=(403,)),
    ApiRoute("/api/repo/{uuid}/info", ("GET", "HEAD"), get_repo_info, "The repo, its DAG and instances",
             params=(UUID,)),
    ApiRoute("/api/repo/{uuid}/info", ("POST",), post_repo_info, "Set the alias and description",
             params=(UUID,), consumes=(JSON,), produces=()),
    ApiRoute("/api/repo/{uuid}/instance", ("POST",), new_instance,
             "Create a data instance at an open version", params=(UUID,), consumes=(JSON,)),
    ApiRoute("/api/repo/{uuid}/log", ("GET", "HEAD"), get_repo_log, "The repo's log", params=(UUID,)),
    ApiRoute("/api/repo/{uuid}/log", ("POST",), post_repo_log, "Append to the repo's log", params=(UUID,),
             consumes=(JSON,), produces=()),
    ApiRoute("/api/repo/{uuid}/branch-versions/{branch}", ("GET", "HEAD"), branch_versions,
             "The versions of a branch, head first", params=(UUID, BRANCH)),
    ApiRoute("/api/repo/{uuid}/merge", ("POST",), merge, "Merge committed versions into a new child",
             params=(UUID,), consumes=(JSON,)),
    ApiRoute("/api/repo/{uuid}/resolve", ("POST",), resolve, "Merge where earlier parents win conflicts",
             params=(UUID,), consumes=(JSON,)),
    ApiRoute("/api/repo/{uuid}/rename", ("POST",), rename, "Rename a data instance (admin)",
             params=(UUID,), query=(ADMIN_TOKEN,), consumes=(JSON,), produces=(TEXT,), statuses=(403,)),
)  # fmt: skip
