"""The request middleware: CORS preflight, request limits, read-only mode, error mapping, access log.

One middleware does all of it, since every extra middleware layer costs a coroutine per request
on the hot path; each concern is a small function below.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from dvid.datatype.common.body import ACCEPTED_ENCODINGS, body_encoding
from dvid.errors import DVIDError, MethodNotAllowed, RangeNotSatisfiable, UnsupportedMediaType
from dvid.server.metrics import route_label
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
    """The error response for an exception a handler raised; a 500 means a bug, logged with an id
    that its body carries. A client that went away gets nothing, and nothing is logged."""
    if isinstance(exc, ConnectionResetError):
        return _abandoned()
    if _response_started(request):
        # The status line is gone: the only way left to signal the failure is to cut the response.
        log_failure(request, exc, "after the response had started")
        if request.transport is not None:
            request.transport.close()
        return _abandoned()
    if isinstance(exc, DVIDError):
        headers = None
        if isinstance(exc, RangeNotSatisfiable):
            headers = {"Content-Range": f"bytes */{exc.length}"}
        elif isinstance(exc, MethodNotAllowed):
            headers = {"Allow": ", ".join(exc.allowed)}
        elif isinstance(exc, UnsupportedMediaType):
            headers = {"Accept-Encoding": ", ".join(ACCEPTED_ENCODINGS)}
        return error_response(request, exc.status, exc.message, headers)
    if isinstance(exc, web.RequestPayloadError):
        response = error_response(request, 400, _undecodable_body_message(request, exc))
        # The body's rest cannot be read: close the connection rather than let aiohttp drain it.
        response.force_close()
        request.content.feed_eof()
        return response
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        return _http_error_response(request, exc)
    request_id = log_failure(request, exc, "")
    return error_response(
        request,
        500,
        f"internal server error [request {request_id}]: {type(exc).__name__}: {exc};"
        " please report it with this request id",
        {"X-Request-Id": request_id},
    )


def log_failure(request: web.Request, exc: Exception, when: str) -> str:
    """Log a request that failed on the server's side (a bug) with a new request id; the id."""
    request_id = secrets.token_hex(6)
    log.error(
        "internal error [request %s] on %s %s%s",
        request_id, request.method, request.path_qs, f" {when}" if when else "", exc_info=exc,
    )  # fmt: skip
    return request_id


def _abandoned() -> web.Response:
    """The "response" to a request whose client is gone or whose response was cut: never sent, but
    the access log records it as 499 (nginx's "client closed request")."""
    return web.Response(status=499, reason="Client Closed Request")


def _undecodable_body_message(request: web.Request, exc: Exception) -> str:
    """The 400 message for a body aiohttp could not read: undecodable encoding or cut short."""
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    cause = exc.__cause__ or exc
    reason = getattr(cause, "message", None) or str(cause)
    if encoding not in ("", "identity"):
        return f"the request body is not valid Content-Encoding: {encoding} ({reason})"
    return f"the request body could not be read: {reason}"


def _http_error_response(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own errors (unknown route outside /api, body over the limit) in dvid's error format."""
    message = exc.text or exc.reason
    headers = None
    if exc.status == 404 and message.startswith("404"):
        message = "Could not find the URL; see /api/help for the API"
    elif exc.status == 413:
        limit = state_of(request).config.server.max_body_bytes
        message = f"request body is too large: the limit is {limit} bytes ({message})"
    elif isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = sorted(exc.allowed_methods)
        message = f"{request.method} is not supported on {request.path}; it accepts {', '.join(allowed)}"
        headers = {"Allow": ", ".join(allowed)}
    elif message.startswith(f"{exc.status}: "):
        message = message[len(f"{exc.status}: ") :]
    return error_response(request, exc.status, message.strip(), headers)


def check_limits(state: ServerState, request: web.Request) -> None:
    """Refuse oversized or undecodable bodies before reading them, and writes on a read-only server."""
    body_encoding(request)  # 415 before reading a body the server cannot decode
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
        status, size = (0, 0) if response is None else (response.status, _body_size(response))
        seconds = time.perf_counter() - start
        state.metrics.observe(request.method, route_label(request), status, seconds, size)
        if state.access_log is not None:
            state.access_log.record(
                request.method,
                logged_target(request),
                status,
                size,
                seconds * 1000,
                request.query.get("u", ""),
            )


_ADMIN_TOKEN_PARAM = re.compile(r"(?<![^&])admintoken=[^&]*")


def logged_target(request: web.Request) -> str:
    """The path and, as sent, the query string (``scale=1``, ``compression=googlegzip``: what a
    client asked for), with the admin token's value never written to the log."""
    query = request.rel_url.raw_query_string
    if not query:
        return request.path
    if "admintoken" in query:
        query = _ADMIN_TOKEN_PARAM.sub("admintoken=-", query)
    return f"{request.path}?{query}"


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
