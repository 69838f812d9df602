"""Posting slabs in parallel: each worker thread reads a slab from the source, digests it and sends
it with ``POST raw/0_1_2/<size>/<offset>``; at most ``workers`` slabs are in memory at once.

Finished slabs are recorded in the checkpoint by the calling thread as they complete, in whatever
order they finish. A failed POST stops the submission of new slabs; those already finished stay
recorded, so running the same ingest again continues from there.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from dvid.client import DVIDClient, DVIDClientError
from dvid.ingest import IngestError
from dvid.ingest.plan import Checkpoint, Slab
from dvid.ingest.sources import VolumeSource
from dvid.ingest.target import Target

#: Test hook: the ingest process kills itself (SIGKILL) once this many slabs are checkpointed.
KILL_AFTER_ENV = "DVID_INGEST_KILL_AFTER"

T = TypeVar("T")
R = TypeVar("R")


def digest(data: np.ndarray | bytes) -> str:
    """The SHA-256 digest (hex) of an array's bytes as sent (C order, little-endian)."""
    view = data.data.cast("B") if isinstance(data, np.ndarray) else data
    return hashlib.sha256(view).hexdigest()


def raw_geometry(slab: Slab, offset: tuple[int, int, int]) -> tuple[str, str]:
    """The ``<size>`` and ``<offset>`` path segments of a slab's ``raw/0_1_2`` request."""
    size = "_".join(str(v) for v in slab.size_xyz)
    return size, "_".join(str(v) for v in slab.target_offset(offset))


class ThreadClients:
    """One DVIDClient (one HTTP session) per thread, built by ``factory``."""

    def __init__(self, factory: Callable[[], DVIDClient]) -> None:
        self.factory = factory
        self._local = threading.local()
        self._all: list[DVIDClient] = []
        self._lock = threading.Lock()

    def get(self) -> DVIDClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self.factory()
            with self._lock:
                self._all.append(client)
        return client

    def close(self) -> None:
        for client in self._all:
            client.close()


def bounded_map(
    fn: Callable[[T], R], items: Iterable[T], workers: int, *, ordered: bool = False
) -> Iterator[R]:
    """``fn`` over ``items`` on ``workers`` threads with at most ``workers`` items in flight (so at
    most that many results held): results as they finish, or in the order of ``items`` if
    ``ordered``. Stops submitting at the first error, which it raises."""
    pool = ThreadPoolExecutor(workers, thread_name_prefix="dvid-ingest")
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= workers:
                yield from _take(pending, ordered)
        while pending:
            yield from _take(pending, ordered)
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _take(pending: deque[Future[R]], ordered: bool) -> Iterator[R]:
    """The oldest result (``ordered``), or every result finished once one is."""
    if ordered:
        yield pending.popleft().result()
        return
    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
    for fut in finished:
        pending.remove(fut)
    for fut in finished:
        yield fut.result()


@dataclass
class WriteResult:
    written: int  # slabs posted by this run
    skipped: int  # slabs the checkpoint had
    bytes_written: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        return self.bytes_written / self.seconds / 1e6 if self.seconds > 0 else 0.0


def _kill_after() -> int | None:
    value = os.environ.get(KILL_AFTER_ENV)
    return int(value) if value else None


def write_slabs(
    clients: ThreadClients,
    source: VolumeSource,
    target: Target,
    offset: tuple[int, int, int],
    slabs: list[Slab],
    checkpoint: Checkpoint,
    *,
    cast: np.dtype | None,
    workers: int,
    progress: Any,
) -> WriteResult:
    """Post every slab the checkpoint lacks; ``progress`` is a tqdm-like bar counting bytes."""
    todo = [s for s in slabs if s.index not in checkpoint.done]
    kill_after = _kill_after()

    def send(slab: Slab) -> tuple[Slab, str, int]:
        arr = source.read(slab.z0, slab.z1, slab.y0, slab.y1, slab.x0, slab.x1)
        if cast is not None:
            arr = arr.astype(cast)
        size, where = raw_geometry(slab, offset)
        body = arr.data.cast("B")
        try:
            clients.get().instance_request(
                "POST", target.uuid, target.name, "raw", "0_1_2", size, where, data=body, timeout=None
            )
        except DVIDClientError as exc:
            raise IngestError(f"writing slab {slab.index} ({size} at {where}) failed: {exc}") from None
        return slab, digest(arr), arr.nbytes

    t0 = time.perf_counter()
    written = nbytes = 0
    checkpoint.open()
    try:
        for slab, dig, size in bounded_map(send, todo, workers):
            checkpoint.record(slab.index, dig)
            written += 1
            nbytes += size
            progress.update(size)
            if kill_after is not None and written >= kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
    finally:
        checkpoint.close()
    return WriteResult(written, len(slabs) - len(todo), nbytes, time.perf_counter() - t0)


__all__ = ["KILL_AFTER_ENV", "ThreadClients", "WriteResult", "bounded_map", "digest", "raw_geometry",
           "write_slabs"]  # fmt: skip
