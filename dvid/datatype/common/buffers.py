"""Reusable volume buffers for POST bodies.

A fresh 128 MiB numpy buffer costs ~30 ms of page faults before a byte lands in it (the allocator
maps large blocks anew every time), about as long as receiving it over loopback. Volume POSTs take
their receive buffer from this pool instead and give it back when the write is done, so a busy
server reuses a few warm buffers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

#: Buffers smaller than this are not worth pooling (allocation is cheap below the mmap threshold).
MIN_POOLED_BYTES = 8 << 20


class BufferPool:
    """Idle uint8 buffers kept for reuse, at most ``max_idle_bytes`` of them in all."""

    def __init__(self, max_idle_bytes: int = 512 << 20) -> None:
        self.max_idle_bytes = max_idle_bytes
        self._idle: list[np.ndarray] = []
        self._lock = threading.Lock()

    @property
    def idle_bytes(self) -> int:
        with self._lock:
            return sum(b.nbytes for b in self._idle)

    def _take(self, nbytes: int) -> np.ndarray | None:
        with self._lock:
            fitting = [i for i, b in enumerate(self._idle) if b.nbytes >= nbytes]
            if not fitting:
                return None
            best = min(fitting, key=lambda i: self._idle[i].nbytes)  # the smallest that fits
            return self._idle.pop(best)  # by index: arrays do not compare as list items

    def _give_back(self, buf: np.ndarray) -> None:
        with self._lock:
            self._idle.append(buf)
            self._idle.sort(key=lambda b: b.nbytes)
            while self._idle and sum(b.nbytes for b in self._idle) > self.max_idle_bytes:
                self._idle.pop(0)  # drop the smallest first: large ones save the most faulting

    @contextmanager
    def borrow(self, nbytes: int) -> Iterator[np.ndarray]:
        """A uint8 array of exactly ``nbytes`` (contents undefined) for the ``with`` block only:
        nothing may keep a view of it afterwards."""
        if nbytes < MIN_POOLED_BYTES or nbytes > self.max_idle_bytes:
            yield np.empty(nbytes, dtype=np.uint8)
            return
        buf = self._take(nbytes)
        if buf is None:
            buf = np.empty(nbytes, dtype=np.uint8)
        yield buf[:nbytes]
        # only after a clean exit: after an error or a cancellation a worker thread may still
        # be reading the buffer, so it is left to the garbage collector instead
        self._give_back(buf)


#: The server-wide pool of volume receive buffers.
VOLUME_BUFFERS = BufferPool()
