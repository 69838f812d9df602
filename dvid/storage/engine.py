"""The Engine interface: a synchronous, ordered bytes -> bytes store with atomic batches.

Every engine (memory, leveldb, postgres) implements this interface and passes the same
contract test suite. Keys order bytewise (as LevelDB's default comparator). Engines are safe to
call from several threads at once.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from types import TracebackType


class WriteBatch(abc.ABC):
    """Puts and deletes applied together, atomically, by ``commit`` (or on leaving a ``with``)."""

    @abc.abstractmethod
    def put(self, key: bytes, value: bytes) -> None: ...

    @abc.abstractmethod
    def delete(self, key: bytes) -> None: ...

    @abc.abstractmethod
    def commit(self) -> None:
        """Apply every queued operation at once; later operations win over earlier ones on a key."""

    def __enter__(self) -> WriteBatch:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.commit()


#: The value a :class:`QueuedWriteBatch` records for a deleted key.
DELETED = object()


class QueuedWriteBatch(WriteBatch):
    """A batch that queues its operations (the last one per key wins) and hands them, as one dict
    of key -> value or :data:`DELETED`, to ``apply`` on commit: for engines without batches of
    their own (memory, postgres)."""

    def __init__(self, apply: Callable[[dict[bytes, object]], None]) -> None:
        self._apply = apply
        self._ops: dict[bytes, object] = {}

    def put(self, key: bytes, value: bytes) -> None:
        self._ops[bytes(key)] = bytes(value)

    def delete(self, key: bytes) -> None:
        self._ops[bytes(key)] = DELETED

    def commit(self) -> None:
        ops, self._ops = self._ops, {}
        if ops:
            self._apply(ops)


class Engine(abc.ABC):
    """An ordered key-value store of bytes."""

    #: Short engine name reported in server info ("memory", "leveldb", ...).
    name: str = "engine"
    #: Every operation is a network round trip (postgres): never call it on the event loop, where
    #: small local reads are otherwise cheaper than a hop to a worker thread.
    remote: bool = False

    @abc.abstractmethod
    def get(self, key: bytes) -> bytes | None:
        """The value stored at ``key``, or None."""

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        """Values for several keys, in order; engines may override with a faster batched read."""
        return [self.get(k) for k in keys]

    @abc.abstractmethod
    def put(self, key: bytes, value: bytes) -> None: ...

    @abc.abstractmethod
    def delete(self, key: bytes) -> None:
        """Remove ``key``; removing an absent key is not an error."""

    @abc.abstractmethod
    def scan(
        self, start: bytes, stop: bytes | None, *, keys_only: bool = False, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Pairs with ``start <= key < stop`` in key order (``stop=None``: to the end).

        With ``keys_only`` the values are ``b""``. The iterator reads a consistent snapshot.
        """

    def scan_ranges(
        self, ranges: list[tuple[bytes, bytes]], *, keys_only: bool = False
    ) -> Iterator[list[tuple[bytes, bytes]]]:
        """The pairs of several bounded ranges ``[start, stop)``, one list per range in key order:
        for reads whose size the caller has already bounded (a box of blocks). Here each range is
        scanned when the caller reaches it; engines with a round trip per query (postgres) override
        this with one query for all. With ``keys_only`` the values are ``b""``."""
        for start, stop in ranges:
            yield list(self.scan(start, stop, keys_only=keys_only))

    @abc.abstractmethod
    def batch(self) -> WriteBatch:
        """A new atomic write batch."""

    def delete_range(self, start: bytes, stop: bytes | None, *, chunk: int = 10_000) -> int:
        """Physically remove every key in ``[start, stop)``, in batches; returns how many were removed."""
        removed = 0
        while True:
            keys = [k for k, _ in _take(self.scan(start, stop, keys_only=True), chunk)]
            if not keys:
                return removed
            with self.batch() as wb:
                for k in keys:
                    wb.delete(k)
            removed += len(keys)
            start = keys[-1] + b"\x00"

    @abc.abstractmethod
    def close(self) -> None: ...

    def describe(self) -> str:
        """Human-readable location, e.g. ``leveldb @ /data/db``."""
        return self.name


def _take(it: Iterator[tuple[bytes, bytes]], n: int) -> list[tuple[bytes, bytes]]:
    out = []
    for pair in it:
        out.append(pair)
        if len(out) >= n:
            break
    return out


def prefix_successor(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None if there is none)."""
    p = bytearray(prefix)
    while p:
        if p[-1] != 0xFF:
            p[-1] += 1
            return bytes(p)
        p.pop()
    return None
