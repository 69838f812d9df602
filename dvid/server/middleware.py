"""The request middleware: CORS preflight, request limits, read-only mode, error mapping, access log.

One middleware does all of it, since every extra middleware layer costs a coroutine per request
on the hot path; each concern is a small function below.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from dvid.errors import DVIDError, MethodNotAllowed, RangeNotSatisfiable
from dvid.server.state import ServerState, state_of

log = logging.getLogger("dvid.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WRITE_GUARDED_PREFIXES = ("/api/repo", "/api/node")


def error_response(
    request: web.Request, status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
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


def response_for_exception(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The error response for an exception a handler raised; a 500 means a bug and is logged.

    Once a streamed response has begun, the exception can only end the connection: re-raised.
    """
    if _response_started(request) or isinstance(exc, ConnectionResetError):
        raise exc
    if isinstance(exc, DVIDError):
        headers = None
        if isinstance(exc, RangeNotSatisfiable):
            headers = {"Content-Range": f"bytes */{exc.length}"}
        elif isinstance(exc, MethodNotAllowed):
            headers = {"Allow": ", ".join(exc.allowed)}
        return error_response(request, exc.status, exc.message, headers)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        return _http_error_response(request, exc)
    log.error("internal error on %s %s", request.method, request.path_qs, exc_info=exc)
    return error_response(request, 500, f"internal server error: {type(exc).__name__}: {exc}")


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


def check_limits(state: ServerState, request: web.Request) -> None:
    """Refuse oversized bodies before reading them, and writes on a read-only server."""
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


def preflight_response(request: web.Request) -> web.Response:
    """The answer to a CORS preflight (OPTIONS) request, for any path."""
    return web.Response(
        headers={
            "Allow": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
            "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers", "*"),
            "Access-Control-Max-Age": "86400",
        }
    )


@web.middleware
async def request_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request passes here: limits, the handler, error mapping, load tally and access log."""
    state = state_of(request)
    start = time.perf_counter()
    state.load.active += 1
    response: web.StreamResponse | None = None
    try:
        if request.method == "OPTIONS":
            response = preflight_response(request)
        else:
            try:
                check_limits(state, request)
                response = await handler(request)
            except Exception as exc:
                response = response_for_exception(request, exc)
        return response
    finally:
        state.load.active -= 1
        state.load.add("GET requests" if request.method in ("GET", "HEAD") else "PUT requests")
        if state.access_log is not None:
            status, size = (0, 0) if response is None else (response.status, _body_size(response))
            ms = (time.perf_counter() - start) * 1000
            state.access_log.record(
                request.method, request.path, status, size, ms, request.query.get("u", "")
            )


def _body_size(response: web.StreamResponse) -> int:
    if response.prepared:
        return response.body_length
    body = getattr(response, "body", None)
    return len(body) if isinstance(body, bytes | bytearray) else 0


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
