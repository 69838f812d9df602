"""Server-level endpoints: ``/api/help``, ``/api/heartbeat``, ``/api/load``, ``/api/server/*``."""

from __future__ import annotations

import asyncio
import html
import os
import socket
import threading
import time
from datetime import datetime

from aiohttp import web

from dvid import DVID_API_VERSION, __version__
from dvid.datatype import registry
from dvid.datatype.common.numbers import parse_decimal
from dvid.datatype.common.request import json_response, text_response
from dvid.datatype.common.route import TEXT, Param, query
from dvid.errors import BadRequest, NotFound
from dvid.server.help import GENERAL_HELP
from dvid.server.openapi import get_openapi, get_type_openapi
from dvid.server.repo_routes import ADMIN_TOKEN, require_admin
from dvid.server.routing import ApiRoute, PathValues
from dvid.server.state import state_of

DATASTORE_VERSION = "0.11.0"


def server_info(request: web.Request) -> dict[str, str]:
    """DVID's server info, every value a string, plus this server's own name and version."""
    state = state_of(request)
    cfg = state.config.server
    uptime = time.time() - state.started
    info = {
        "Cores": str(os.cpu_count() or 1),
        "Maximum Cores": str(
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        ),
        "Datastore Version": DATASTORE_VERSION,
        "DVID Version": DVID_API_VERSION,
        "Server": "dvid (Python)",
        "Server Version": __version__,
        "Storage backend": state.manager.stores.describe(),
        "Server time": datetime.now().astimezone().isoformat(),
        "Server uptime": f"{uptime:.0f}s",
        "RPC Address": "",
        "Host": socket.gethostname(),
        "Note": cfg.note,
        "TOML location": state.config.source,
        "Max Open Files": "1024",
    }
    if state.readonly:
        info["Mode"] = "read only"
    elif state.fullwrite:
        info["Mode"] = "allow writes on committed nodes"
    return info


async def get_server_info(request: web.Request, path: PathValues) -> web.StreamResponse:
    return json_response(server_info(request))


async def reload_metadata(request: web.Request, path: PathValues) -> web.StreamResponse:
    """Admin only, as in DVID: re-read the repos from the metadata store (another server may share it)."""
    state = state_of(request)
    require_admin(state, request, "reload-metadata")
    await asyncio.to_thread(state.manager.reload_metadata)
    return web.Response()


async def get_server_note(request: web.Request, path: PathValues) -> web.StreamResponse:
    return text_response(state_of(request).config.server.note)


async def get_server_types(request: web.Request, path: PathValues) -> web.StreamResponse:
    return json_response(state_of(request).manager.types_in_use())


async def get_compiled_types(request: web.Request, path: PathValues) -> web.StreamResponse:
    return json_response({name: cls.type_url for name, cls in registry.all_types().items()})


async def heartbeat(request: web.Request, path: PathValues) -> web.StreamResponse:
    return text_response("OK")


async def load(request: web.Request, path: PathValues) -> web.StreamResponse:
    state = state_of(request)
    rates = state.load.rates()
    return json_response(
        {
            "file bytes read": 0,
            "file bytes written": 0,
            "key bytes read": 0,
            "key bytes written": 0,
            "value bytes read": 0,
            "value bytes written": 0,
            "GET requests": rates.get("GET requests", 0),
            "PUT requests": rates.get("PUT requests", 0),
            "handlers active": state.load.active,
            "goroutines": threading.active_count(),
            "active CGo writes": 0,
            "pending log messages": 0,
        }
    )


async def get_activity(request: web.Request, path: PathValues) -> web.StreamResponse:
    """The live request rate and latency over the last ``window`` seconds (default 10, at most 60)."""
    state = state_of(request)
    text = request.query.get("window", "10")
    window = parse_decimal(text, signed=False)
    if window is None or not 1 <= window <= 60:
        raise BadRequest(f"window must be a whole number of seconds from 1 to 60, got {text!r}")
    summary = state.metrics.recent.summary(float(window))
    return json_response(
        {**summary, "in_flight": state.load.active, "uptime_seconds": round(time.time() - state.started, 1)}
    )


async def get_jobs(request: web.Request, path: PathValues) -> web.StreamResponse:
    """Running long jobs (pyramid builds, ingests, push and pull, deletions) and recently finished ones."""
    return json_response(state_of(request).manager.jobs.listing())


async def get_metrics(request: web.Request) -> web.StreamResponse:
    """``/metrics``: the server's metrics in Prometheus' text exposition format."""
    body, content_type = state_of(request).metrics.exposition(request.headers.get("Accept", ""))
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


async def general_help(request: web.Request, path: PathValues) -> web.StreamResponse:
    items = "\n".join(
        f'<li><a href="/api/help/{html.escape(name)}">{html.escape(name)}</a></li>'
        for name in registry.all_types()
    )
    page = (
        "<!DOCTYPE html>\n<html><head><title>dvid API</title></head><body>\n"
        f"<h1>dvid {html.escape(__version__)} HTTP API</h1>\n<pre>{html.escape(GENERAL_HELP)}</pre>\n"
        f"<h2>Datatypes</h2>\n<ul>\n{items}\n</ul>\n</body></html>\n"
    )
    return web.Response(text=page, content_type="text/html")


async def type_help(request: web.Request, path: PathValues) -> web.StreamResponse:
    name = path["typename"]
    if name not in registry.all_types():
        raise NotFound(f'Data type "{name}" is not supported by current DVID server')
    return text_response(registry.get_type(name).help_text)


TYPENAME = Param("typename", description="A datatype name", pattern=r"[A-Za-z0-9_-]+", example="uint8blk")
HTML = "text/html"

routes = (
    ApiRoute("/api/help", ("GET", "HEAD"), general_help, "The general API reference", produces=(HTML,)),
    ApiRoute("/api/help/{typename}", ("GET", "HEAD"), type_help, "A datatype's API reference",
             params=(TYPENAME,), produces=(TEXT,), statuses=(404,)),
    ApiRoute("/api/help/{typename}/openapi.json", ("GET", "HEAD"), get_type_openapi,
             "A datatype's OpenAPI description, for any instance name", params=(TYPENAME,),
             statuses=(404,)),
    ApiRoute("/api/openapi.json", ("GET", "HEAD"), get_openapi,
             "This server's OpenAPI 3.1 description, with the paths of every data instance"),
    ApiRoute("/api/heartbeat", ("GET", "HEAD"), heartbeat, "Answers OK while the server runs",
             produces=(TEXT,)),
    ApiRoute("/api/load", ("GET", "HEAD"), load, "Requests per second and handlers in flight"),
    ApiRoute("/api/server/info", ("GET", "HEAD"), get_server_info, "Server information"),
    ApiRoute("/api/server/reload-metadata", ("POST",), reload_metadata,
             "Read the repos again from the metadata store (admin)", query=(ADMIN_TOKEN,), produces=(),
             statuses=(403,)),
    ApiRoute("/api/server/note", ("GET", "HEAD"), get_server_note, "The server's configured note",
             produces=(TEXT,)),
    ApiRoute("/api/server/types", ("GET", "HEAD"), get_server_types, "Datatypes used by instances"),
    ApiRoute("/api/server/activity", ("GET", "HEAD"), get_activity,
             "Requests per second, latency p50/p99 (ms), errors and requests in flight, over a recent window",
             query=(query("window", "integer", "Seconds to summarise, 1-60 (default 10)"),)),
    ApiRoute("/api/server/jobs", ("GET", "HEAD"), get_jobs,
             "Long-running jobs (pyramid builds, ingests, push and pull, deletions) with their progress"),
    ApiRoute("/api/server/compiled-types", ("GET", "HEAD"), get_compiled_types,
             "Every datatype this server knows"),
)  # fmt: skip
