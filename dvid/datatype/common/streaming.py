"""Streamed responses: :class:`BodyStream` (headers alone to HEAD), and :func:`stream_pieces` for
bytes a synchronous generator produces, off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from aiohttp import web

from dvid.datatype.common.request import InstanceRequest
from dvid.errors import DVIDError

log = logging.getLogger("dvid.stream")

#: Bytes gathered per hop off the event loop while streaming a response.
STREAM_CHUNK = 1 << 20


class BodyStream(web.StreamResponse):
    """A streamed response that sends a HEAD request its headers alone.

    aiohttp leaves out the body of a plain ``Response`` to HEAD, but a ``StreamResponse`` writes
    whatever it is given; the client, expecting no body, reads those bytes as the start of the next
    response on its keep-alive connection. Producers check :attr:`headers_only` after ``prepare``
    and stop: nothing they wrote would be sent.
    """

    headers_only = False

    async def prepare(self, request: web.BaseRequest) -> Any:
        self.headers_only = request.method == "HEAD"
        return await super().prepare(request)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.headers_only:
            await super().write(data)


def take_pieces(pieces: Iterator[bytes], limit: int) -> tuple[list[bytes], bool]:
    """Pull pieces until at least ``limit`` bytes; ``(pieces, exhausted)``."""
    out: list[bytes] = []
    size = 0
    for piece in pieces:
        if piece:
            out.append(piece)
            size += len(piece)
            if size >= limit:
                return out, False
    return out, True


def _close_quietly(pieces: Iterator[bytes]) -> None:
    close = getattr(pieces, "close", None)
    if close is not None:
        with contextlib.suppress(ValueError):  # still running in a worker thread after a cancellation
            close()


async def stream_pieces(
    req: InstanceRequest,
    content_type: str,
    pieces: Iterator[bytes],
    chunk: int = STREAM_CHUNK,
    headers: Mapping[str, str] | None = None,
) -> web.StreamResponse:
    """Answer with the bytes a synchronous generator yields, produced off the event loop.

    The first chunk is produced before anything is sent, so errors found early (bad ranges,
    unresolved merges) get their proper status; an answer that fits in one chunk goes out as a
    plain response with Content-Length. Later failures close the connection mid-body, so the
    client sees an incomplete transfer rather than a well-formed but short answer. ``headers`` are
    added to the response (e.g. ``Content-Encoding`` of pieces already compressed).
    """
    try:
        parts, done = await asyncio.to_thread(take_pieces, pieces, chunk)
        if done:
            return web.Response(body=b"".join(parts), content_type=content_type, headers=headers)
        resp = BodyStream(headers=headers)
        resp.content_type = content_type
        await resp.prepare(req.request)
        if resp.headers_only:
            await resp.write_eof()
            return resp
        try:
            while True:
                for part in parts:
                    await resp.write(part)
                if done:
                    break
                parts, done = await asyncio.to_thread(take_pieces, pieces, chunk)
        except ConnectionResetError:  # the client went away
            raise
        except Exception as exc:
            return cut_short(req, resp, exc)
        await resp.write_eof()
        return resp
    finally:
        _close_quietly(pieces)


def cut_short(req: InstanceRequest, resp: web.StreamResponse, exc: Exception) -> web.StreamResponse:
    """End a streamed response that failed after it began. Its headers are gone, so no error
    status is possible any more: log, and close the connection before the final chunk so the
    client cannot mistake the partial body for a whole answer."""
    log.warning(
        "%s %s failed after the response began: %s",
        req.method,
        req.request.path,
        exc,
        exc_info=not isinstance(exc, DVIDError),
    )
    resp.force_close()
    transport = req.request.transport
    if transport is not None:
        transport.close()
    return resp
