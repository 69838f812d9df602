"""Reading request bodies: the one place that handles ``Content-Encoding`` and body-level errors.

The server runs aiohttp with ``auto_decompress=False`` (see ``dvid.server.app.RUNNER_OPTIONS``), so
a body arrives as sent and is decoded here, strictly and within the server's body limit:

- ``identity`` (or no header): passed through.
- ``gzip`` (one or more members) and ``deflate`` (zlib-wrapped, or raw as some clients send it):
  inflated in bounded steps, so a small body cannot inflate past the limit (413); a stream that
  is corrupt, cut short or followed by junk is a 400 naming the encoding.
- anything else: 415 before a byte is read, with the accepted encodings named.

Every handler reads through :func:`read_body` or :func:`iter_body`; none touches
``request.content`` or ``request.read()`` itself.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

from aiohttp import web

from dvid.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

#: Accepted ``Content-Encoding`` values of request bodies.
ACCEPTED_ENCODINGS = ("identity", "gzip", "x-gzip", "deflate")
_INFLATE_STEP = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"


def body_encoding(request: web.Request) -> str:
    """The body's ``Content-Encoding`` (lower case, ``identity`` if none); 415 if not accepted."""
    raw = request.headers.get("Content-Encoding")
    encoding = (raw or "").strip().lower() or "identity"
    if encoding not in ACCEPTED_ENCODINGS:
        raise UnsupportedMediaType(
            f"request bodies in Content-Encoding {raw!r} are not accepted; use one of:"
            f" {', '.join(ACCEPTED_ENCODINGS)}"
        )
    return encoding


def decoded_length(request: web.Request) -> int | None:
    """The body's length once decoded, when the headers tell it (not for an encoded body)."""
    return request.content_length if body_encoding(request) == "identity" else None


class _Inflater:
    """Strict, bounded inflation of a gzip or deflate stream fed in pieces."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.encoding = encoding
        self.limit = limit
        self.produced = 0
        self._decomp: zlib._Decompress | None = None

    def _start(self, first: bytes) -> zlib._Decompress:
        if self.encoding == "deflate":
            # RFC 1950 zlib header (CM = 8), else a raw RFC 1951 stream as some clients send.
            return zlib.decompressobj(zlib.MAX_WBITS if first[0] & 0x0F == 8 else -zlib.MAX_WBITS)
        return zlib.decompressobj(16 + zlib.MAX_WBITS)

    def _bad(self, detail: str) -> BadRequest:
        return BadRequest(f"the request body is not valid Content-Encoding: {self.encoding} ({detail})")

    def feed(self, data: bytes) -> list[bytes]:
        """The decoded pieces of ``data``; 400 if it is not the encoding, 413 past the limit."""
        out: list[bytes] = []
        while data:
            if self._decomp is None:
                self._decomp = self._start(data)
            elif self._decomp.eof:
                if self.encoding == "deflate" or not GZIP_MAGIC.startswith(data[:2]):
                    raise self._bad("data after the end of the compressed stream")
                self._decomp = self._start(data)  # the next gzip member
            try:
                piece = self._decomp.decompress(data, _INFLATE_STEP)
                while True:
                    self._count(piece)
                    out.append(piece)
                    tail = self._decomp.unconsumed_tail
                    if not tail:
                        break
                    piece = self._decomp.decompress(tail, _INFLATE_STEP)
            except zlib.error as exc:
                raise self._bad(str(exc)) from None
            data = self._decomp.unused_data
        return out

    def _count(self, piece: bytes) -> None:
        self.produced += len(piece)
        if self.produced > self.limit:
            raise PayloadTooLarge(
                f"the request body inflates past the limit of {self.limit} bytes"
                " (server setting max_body_bytes)"
            )

    def finish(self) -> None:
        """400 unless the stream ended exactly at a complete member."""
        if self._decomp is None:
            raise self._bad("the body is empty")
        if not self._decomp.eof:
            raise self._bad("the compressed stream is cut short")


async def decode_chunks(chunks: AsyncIterator[bytes], encoding: str, limit: int) -> AsyncIterator[bytes]:
    """The decoded pieces of a body that arrives as ``chunks`` in ``encoding``; at most ``limit``
    decoded bytes in all (413 beyond), 400 if the chunks are not a complete stream of the encoding."""
    if encoding == "identity":
        received = 0
        async for chunk in chunks:
            received += len(chunk)
            if received > limit:
                raise PayloadTooLarge(
                    f"the request body is over the limit of {limit} bytes (server setting max_body_bytes)"
                )
            yield chunk
        return
    inflater = _Inflater(encoding, limit)
    async for chunk in chunks:
        for piece in inflater.feed(chunk):
            yield piece
    inflater.finish()


async def iter_body(request: web.Request, limit: int) -> AsyncIterator[bytes]:
    """The request body's pieces as they arrive, decoded; at most ``limit`` bytes in all."""
    try:
        async for piece in decode_chunks(request.content.iter_any(), body_encoding(request), limit):
            yield piece
    except web.RequestPayloadError as exc:
        cause = exc.__cause__ or exc
        raise BadRequest(f"the request body could not be read: {getattr(cause, 'message', cause)}") from None


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, decoded; at most ``limit`` bytes (413 beyond)."""
    if body_encoding(request) == "identity":
        length = request.content_length
        if length is not None and length > limit:
            raise PayloadTooLarge(f"request body of {length} bytes exceeds the limit of {limit} bytes")
    return b"".join([piece async for piece in iter_body(request, limit)])
