"""In-memory engine: the reference implementation, for tests and ``--engine memory``."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from sortedcontainers import SortedDict

from dvid.storage.engine import DELETED, Engine, QueuedWriteBatch


class MemoryEngine(Engine):
    """A sorted dict behind a lock; scans iterate over a snapshot of the keys in range."""

    name = "memory"

    def __init__(self) -> None:
        self._data: SortedDict = SortedDict()
        self._lock = threading.Lock()
        self._closed = False

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        with self._lock:
            self._data[bytes(key)] = bytes(value)

    def delete(self, key: bytes) -> None:
        with self._lock:
            self._data.pop(key, None)

    def scan(
        self, start: bytes, stop: bytes | None, *, keys_only: bool = False, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        with self._lock:
            keys = list(self._data.irange(start, stop, inclusive=(True, False), reverse=reverse))
            data = self._data
            snapshot = [(k, b"") for k in keys] if keys_only else [(k, data[k]) for k in keys]
        return iter(snapshot)

    def batch(self) -> QueuedWriteBatch:
        return QueuedWriteBatch(self._apply)

    def _apply(self, ops: dict[bytes, object]) -> None:
        with self._lock:
            for k, v in ops.items():
                if v is DELETED:
                    self._data.pop(k, None)
                else:
                    self._data[k] = v

    def close(self) -> None:
        self._closed = True

    def describe(self) -> str:
        return "memory"
