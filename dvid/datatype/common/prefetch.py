"""Streamed responses produced ahead of the network: a worker thread runs a synchronous generator
and hands chunks to the event loop through a bounded queue, so reading the next chunk overlaps
sending the last one while the memory held stays bounded (``depth`` chunks of about ``chunk`` bytes).

The thread is a thread of its own, not one of the default executor's: a long download must not hold
one of the few threads every other request's storage work runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from aiohttp import web

from dvid.datatype.common.request import InstanceRequest
from dvid.datatype.common.streaming import STREAM_CHUNK, BodyStream, cut_short, take_pieces

#: Chunks produced ahead of the one being sent.
DEPTH = 4
#: How often a producer blocked on a full queue checks whether the response was abandoned.
_POLL_S = 0.5

# (chunk, last, error): the error of the producer ends the stream
_Item = tuple[bytes, bool, BaseException | None]


class _Producer(threading.Thread):
    def __init__(self, pieces: Iterator[bytes], chunk: int, depth: int) -> None:
        super().__init__(name="dvid-prefetch", daemon=True)
        self.pieces = pieces
        self.chunk = chunk
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[_Item] = asyncio.Queue(depth)
        self.abandoned = threading.Event()

    def _put(self, item: _Item) -> bool:
        """Queue ``item``, waiting for room; False once the response is abandoned."""
        future = asyncio.run_coroutine_threadsafe(self.queue.put(item), self.loop)
        while True:
            try:
                future.result(_POLL_S)
                return True
            except TimeoutError:
                if self.abandoned.is_set():
                    future.cancel()
                    return False

    def run(self) -> None:
        try:
            done = False
            while not done and not self.abandoned.is_set():
                parts, done = take_pieces(self.pieces, self.chunk)
                chunk = b"".join(parts)
                if not self._put((chunk, done, None)):
                    return
        except Exception as exc:
            if not self.abandoned.is_set():
                self._put((b"", True, exc))
        finally:
            close = getattr(self.pieces, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()

    def abandon(self) -> None:
        """Stop producing and free the queue (a producer waiting on it sees the flag)."""
        self.abandoned.set()
        while not self.queue.empty():
            self.queue.get_nowait()


async def stream_prefetched(
    req: InstanceRequest,
    content_type: str,
    pieces: Iterator[bytes],
    *,
    chunk: int = STREAM_CHUNK,
    depth: int = DEPTH,
) -> web.StreamResponse:
    """Answer with the bytes ``pieces`` yields, produced in a worker thread up to ``depth`` chunks ahead.

    As :func:`~dvid.datatype.common.streaming.stream_pieces`: an error raised before the first chunk
    is ready gets its own status; an answer of one chunk goes out with a Content-Length; an error
    after the response began closes the connection before the end of the body, so the client sees a
    truncated transfer, never a short but well-formed answer.
    """
    producer = _Producer(pieces, chunk, depth)
    producer.start()
    try:
        data, done, error = await producer.queue.get()
        if error is not None:
            raise error
        if done:
            return web.Response(body=data, content_type=content_type)
        resp = BodyStream()
        resp.content_type = content_type
        await resp.prepare(req.request)
        if resp.headers_only:
            await resp.write_eof()
            return resp
        try:
            while True:
                await resp.write(data)
                if done:
                    break
                data, done, error = await producer.queue.get()
                if error is not None:
                    raise error
        except ConnectionResetError:  # the client went away
            raise
        except Exception as exc:
            return cut_short(req, resp, exc)
        await resp.write_eof()
        return resp
    finally:
        producer.abandon()
