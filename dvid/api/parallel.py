"""Moving many pieces at once: a thread pool, one HTTP session per thread, a progress bar when slow."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, TypeVar

from tqdm.auto import tqdm

if TYPE_CHECKING:
    from dvid.api.server import TypedClient

T = TypeVar("T")

#: A transfer shows its progress bar once it has taken this long (``progress=None``).
PROGRESS_DELAY_S = 2.0


def run_pieces(
    pieces: Sequence[T],
    work: Callable[[TypedClient, T], int],
    *,
    client: TypedClient,
    workers: int,
    progress: bool | None,
    total_bytes: int,
    desc: str,
) -> None:
    """Call ``work(client, piece)`` for every piece (it returns the bytes it moved), ``workers`` at
    a time, each thread with its own session (a twin of ``client``). The first error stops the
    pieces not yet started and is raised. ``progress``: True always shows a bar, False never, None
    once the transfer takes more than :data:`PROGRESS_DELAY_S`."""
    bar = tqdm(
        total=total_bytes,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=desc,
        delay=0 if progress else PROGRESS_DELAY_S,
        disable=progress is False,
        leave=False,
    )
    try:
        if len(pieces) <= 1 or workers <= 1:
            for piece in pieces:
                bar.update(work(client, piece))
            return
        _in_threads(pieces, work, client, min(workers, len(pieces)), bar)
    finally:
        bar.close()


def _in_threads(
    pieces: Sequence[T], work: Callable[[TypedClient, T], int], client: TypedClient, workers: int, bar: tqdm
) -> None:
    local = threading.local()
    clients: list[TypedClient] = []
    lock = threading.Lock()

    def run(piece: T) -> None:
        own = getattr(local, "client", None)
        if own is None:
            own = local.client = client.twin()
            with lock:
                clients.append(own)
        moved = work(own, piece)
        with lock:
            bar.update(moved)

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dvid-api")
    try:
        futures = [pool.submit(run, piece) for piece in pieces]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            error = future.exception()
            if error is not None:
                raise error
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for c in clients:
            c.close()
