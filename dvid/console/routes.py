"""Serving the console: ``/`` redirects to ``/console/``, which serves ``static/index.html``; the
other files under ``/console/`` come from ``static/``. ``GET /api/server/console`` tells the pages
what the server is configured with (the neuroglancer URL, whether an admin token exists)."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from aiohttp import web

from dvid import __version__
from dvid.datatype.common.request import json_response
from dvid.errors import NotFound
from dvid.server.routing import ApiRoute, PathValues
from dvid.server.state import state_of

STATIC = Path(__file__).resolve().parent / "static"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}


async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console/")


def _static_file(name: str) -> Path:
    """The file of the console at ``name`` (a relative path inside ``static/``), or 404."""
    path = (STATIC / (name or "index.html")).resolve()
    if not path.is_relative_to(STATIC) or not path.is_file():
        raise NotFound(f"the console has no file {name!r}")
    return path


async def console_file(request: web.Request) -> web.StreamResponse:
    path = _static_file(request.match_info.get("name", ""))
    content_type = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    # the pages are small and change with the server: always revalidate (ETag from size and mtime)
    response = web.FileResponse(path, headers={"Cache-Control": "no-cache", "Content-Type": content_type})
    return response


async def console_config(request: web.Request, path: PathValues) -> web.StreamResponse:
    cfg = state_of(request).config.server
    return json_response(
        {
            "version": __version__,
            "neuroglancer_url": cfg.neuroglancer_url,
            "admin_token": bool(cfg.effective_admin_token()),
            "readonly": cfg.rwmode == "readonly",
        }
    )


def setup(app: web.Application) -> None:
    """Add the console's pages to the application (before the /api catch-all routes)."""
    app.router.add_get("/", root)
    app.router.add_get("/console", root)
    app.router.add_get("/console/", console_file)
    app.router.add_get("/console/{name:.+}", console_file)


routes = (
    ApiRoute("/api/server/console", ("GET", "HEAD"), console_config,
             "What the web console needs to know: version, neuroglancer URL, whether an admin token is set"),
)  # fmt: skip
