"""Middleware: error mapping, request limits, read-only mode, CORS and the access log."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from dvid.errors import DVIDError, MethodNotAllowed, RangeNotSatisfiable
from dvid.server.state import state_of

log = logging.getLogger("dvid.server")
access_log = logging.getLogger("dvid.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WRITE_GUARDED_PREFIXES = ("/api/repo", "/api/node")


def error_response(request: web.Request, status: int, message: str, headers: dict[str, str] | None = None):
    """DVID's error body: ``"<message> (<path>).\\n"`` as plain text."""
    return web.Response(
        status=status,
        text=f"{message} ({request.path}).\n",
        content_type="text/plain",
        headers=headers,
    )


def _response_started(request: web.Request) -> bool:
    """Whether a streamed response has already sent its headers (no error status is possible then)."""
    writer = request.writer
    return writer is not None and writer.output_size > 0


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn exceptions into responses; a 500 means a bug in dvid and is logged with its traceback.

    Once a streamed response has begun, an exception can only end the connection: it propagates.
    """
    try:
        return await handler(request)
    except Exception as exc:
        if _response_started(request) or isinstance(exc, ConnectionResetError):
            raise
        if isinstance(exc, DVIDError):
            return _dvid_error_response(request, exc)
        if isinstance(exc, web.HTTPException):
            if exc.status < 400:
                raise
            return _http_error_response(request, exc)
        log.exception("internal error on %s %s", request.method, request.path_qs)  # a bug in dvid
        return error_response(request, 500, f"internal server error: {type(exc).__name__}: {exc}")


def _dvid_error_response(request: web.Request, exc: DVIDError) -> web.Response:
    headers = None
    if isinstance(exc, RangeNotSatisfiable):
        headers = {"Content-Range": f"bytes */{exc.length}"}
    elif isinstance(exc, MethodNotAllowed):
        headers = {"Allow": ", ".join(exc.allowed)}
    return error_response(request, exc.status, exc.message, headers)


def _http_error_response(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own errors (unknown route, body over the limit) in dvid's error format."""
    message = exc.text or exc.reason
    if exc.status == 404 and message.startswith("404"):
        message = f"Could not find the URL: {request.path}"
    elif exc.status == 413:
        limit = state_of(request).config.server.max_body_bytes
        message = f"request body is too large: the limit is {limit} bytes ({message})"
    elif message.startswith(f"{exc.status}: "):
        message = message[len(f"{exc.status}: ") :]
    headers = dict(exc.headers) if exc.status == 405 else None
    return error_response(request, exc.status, message.strip(), headers)


@web.middleware
async def limits_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse oversized bodies before reading them, and writes on a read-only server."""
    state = state_of(request)
    limit = state.config.server.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise DVIDError(
            f"request body of {request.content_length} bytes exceeds the limit of {limit} bytes"
            " (server setting max_body_bytes)",
            status=413,
        )
    if (
        state.readonly
        and request.method not in READ_METHODS
        and request.path.startswith(WRITE_GUARDED_PREFIXES)
        and not state.is_admin(request)
    ):
        raise MethodNotAllowed("Server in read-only mode and will only accept GET and HEAD requests")
    return await handler(request)


@web.middleware
async def access_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One line per request: method, path, status, bytes sent, milliseconds, user."""
    state = state_of(request)
    start = time.perf_counter()
    state.load.active += 1
    status = 500
    size = 0
    try:
        response = await handler(request)
        status = response.status
        size = response.body_length if response.prepared else len(getattr(response, "body", b"") or b"")
        return response
    finally:
        state.load.active -= 1
        state.load.add("GET requests" if request.method in ("GET", "HEAD") else "PUT requests")
        if state.config.server.access_log and access_log.isEnabledFor(logging.INFO):
            ms = (time.perf_counter() - start) * 1000
            user = request.query.get("u", "")
            access_log.info(
                "%s %s %d %d %.1fms%s",
                request.method,
                request.path,
                status,
                size,
                ms,
                f" u={user}" if user else "",
            )


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: CORS headers on every response, streamed ones included."""
    domains = state_of(request).config.server.cors_domains
    if "*" in domains:
        response.headers["Access-Control-Allow-Origin"] = "*"
    else:
        origin = request.headers.get("Origin")
        if origin and origin in domains:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"


@web.middleware
async def preflight_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer CORS preflight (OPTIONS) requests for any path."""
    if request.method == "OPTIONS":
        return web.Response(
            headers={
                "Allow": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
                "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
                "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers", "*"),
                "Access-Control-Max-Age": "86400",
            }
        )
    return await handler(request)
