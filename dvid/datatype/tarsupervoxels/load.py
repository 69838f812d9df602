"""``POST load``: a tar of ``<supervoxel>.<extension>`` files, parsed as it arrives.

The request body is read on the event loop and handed, chunk by chunk, to a worker thread that
parses it with :mod:`tarfile` in stream mode (``r|``): nothing but the entry being read and the
batch being stored is held in memory. Each name is checked as its entry is reached; entries are
stored in batches (each batch atomic), and when an entry is refused the valid entries before it are
stored before the 400 is answered: the same outcome as DVID, which stores each entry as it goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import tarfile
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from dvid.errors import BadRequest

T = TypeVar("T")

#: A stored batch holds at most this many bytes of blobs, or this many entries.
BATCH_BYTES = 32 << 20
BATCH_ENTRIES = 1000
#: tarfile's stream buffer: the size of its reads from the body.
READ_SIZE = 1 << 20
#: The longest wait for the next piece of the body before the load fails.
STALL_TIMEOUT_S = 300.0
_NAME = re.compile(r"([0-9]{1,20})\.(.+)", re.DOTALL)
MAX_U64 = 2**64 - 1


def entry_supervoxel(n: int, name: str, extension: str) -> int:
    """The supervoxel of the ``n``-th (1-based) entry's name ``<supervoxel>.<extension>``; 400 with
    DVID's messages if the name is not one or the extension is not the instance's."""
    match = _NAME.fullmatch(name)
    if match is None or int(match.group(1)) > MAX_U64:
        raise BadRequest(f"file {n} name is invalid, expect supervoxel+ext: {name}")
    if match.group(2) != extension:
        raise BadRequest(f'file {n} name has bad extension (expect "{extension}"): {name}')
    supervoxel = int(match.group(1))
    if supervoxel == 0:
        raise BadRequest("supervoxel 0 is reserved and cannot have data saved under 0 id")
    return supervoxel


class BodyReader:
    """A blocking, file-like view (``read``) of a request body, for a worker thread: each read
    that needs more bytes fetches the next decoded piece from the event loop."""

    def __init__(self, chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._chunks = chunks
        self._loop = loop
        self._buffer = memoryview(b"")
        self._eof = False
        self.received = 0

    async def _next(self) -> bytes | None:
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            return None

    def read(self, size: int = -1) -> bytes:
        """At most ``size`` bytes (all that is left if negative); ``b""`` only at the end."""
        while not self._buffer and not self._eof:
            future = asyncio.run_coroutine_threadsafe(self._next(), self._loop)
            try:
                piece = future.result(STALL_TIMEOUT_S)
            except TimeoutError:
                future.cancel()
                raise BadRequest(f"the request body stalled for {STALL_TIMEOUT_S:.0f} s") from None
            if piece is None:
                self._eof = True
            else:
                self.received += len(piece)
                self._buffer = memoryview(piece)
        if size < 0:
            rest = [bytes(self._buffer)]
            self._buffer = memoryview(b"")
            while (piece := self.read(READ_SIZE)) != b"":
                rest.append(piece)
            return b"".join(rest)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return bytes(out)


Store = Callable[[list[tuple[int, bytes]]], None]


def load_archive(reader: BodyReader, extension: str, store: Store) -> int:
    """Parse the tar ``reader`` delivers and ``store`` its entries in batches; returns how many were
    stored. An empty body is an empty archive. A refused or unreadable entry is a 400, after the
    entries before it were stored."""
    pending: list[tuple[int, bytes]] = []
    pending_bytes = stored = 0
    try:
        with tarfile.open(fileobj=reader, mode="r|", bufsize=READ_SIZE) as archive:  # type: ignore[call-overload]
            for n, member in enumerate(archive, 1):
                supervoxel = entry_supervoxel(n, member.name, extension)
                content = archive.extractfile(member) if member.isreg() else None
                if content is None:
                    raise BadRequest(f"file {n} is not a regular file: {member.name}")
                data = content.read()
                pending.append((supervoxel, data))
                pending_bytes += len(data)
                if pending_bytes >= BATCH_BYTES or len(pending) >= BATCH_ENTRIES:
                    store(pending)
                    stored += len(pending)
                    pending, pending_bytes = [], 0
    except (tarfile.TarError, BadRequest) as exc:
        if pending:  # the valid entries before the refused one are kept, as in DVID
            store(pending)
        if isinstance(exc, BadRequest):
            raise
        if reader.received == 0 and stored == 0 and not pending:
            return 0  # an empty body: an empty archive
        raise BadRequest(f"the load body is not a valid tar archive: {exc}") from None
    if pending:
        store(pending)
        stored += len(pending)
    return stored


async def in_own_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` in a thread of its own (not the default executor's: a load waits on the network
    and must not hold one of the threads every request's storage work shares)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not future.done():
            future.set_result(value) if ok else future.set_exception(value)

    def run() -> None:
        outcome: tuple[bool, Any]
        try:
            outcome = (True, fn(*args))
        except BaseException as exc:  # handed to the awaiting handler
            outcome = (False, exc)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits any more
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name="dvid-load", daemon=True).start()
    return await future
