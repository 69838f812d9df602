"""Server-level endpoints: ``/api/help``, ``/api/heartbeat``, ``/api/load``, ``/api/server/*``."""

from __future__ import annotations

import html
import os
import socket
import threading
import time
from datetime import datetime

from aiohttp import web

from dvid import DVID_API_VERSION, __version__
from dvid.datatype import registry
from dvid.datatype.common.request import json_response, text_response
from dvid.errors import NotFound
from dvid.server.help import GENERAL_HELP
from dvid.server.state import state_of

DATASTORE_VERSION = "0.11.0"
routes = web.RouteTableDef()


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


@routes.get("/api/server/info")
async def get_server_info(request: web.Request) -> web.StreamResponse:
    return json_response(server_info(request))


@routes.get("/api/server/note")
async def get_server_note(request: web.Request) -> web.StreamResponse:
    return text_response(state_of(request).config.server.note)


@routes.get("/api/server/types")
async def get_server_types(request: web.Request) -> web.StreamResponse:
    return json_response(state_of(request).manager.types_in_use())


@routes.get("/api/server/compiled-types")
async def get_compiled_types(request: web.Request) -> web.StreamResponse:
    return json_response({name: cls.type_url for name, cls in registry.all_types().items()})


@routes.get("/api/heartbeat")
async def heartbeat(request: web.Request) -> web.StreamResponse:
    return text_response("OK")


@routes.get("/api/load")
async def load(request: web.Request) -> web.StreamResponse:
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


@routes.get("/api/help")
@routes.get("/api/help/")
async def general_help(request: web.Request) -> web.StreamResponse:
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


@routes.get("/api/help/{typename}")
async def type_help(request: web.Request) -> web.StreamResponse:
    name = request.match_info["typename"]
    if name not in registry.all_types():
        raise NotFound(f'Data type "{name}" is not supported by current DVID server')
    return text_response(registry.get_type(name).help_text)
