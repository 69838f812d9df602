"""Vertex locks and transaction ids for ``propertytransaction`` and ``weight``.

A client reads a vertex's properties with a *read* lock, which hands it the vertex's current
transaction id; it writes them with a *write* lock, which needs that id and hands out a fresh one,
so a write based on a stale read fails instead of overwriting a newer value (optimistic locking).

Locks are held only while a request runs, in memory: after a restart nothing is locked. The ids
are persistent (unlike DVID's, which a restart reset): the counter and each vertex's current id
are stored as data of the instance at the repo's root version, one value per instance whatever
the version (tkey class ``04``: ``04 00`` the last id handed out, ``04 01 | vertex u64 BE`` a
vertex's id), written before the ids are answered. So an id held from before a restart still
works, and no id is ever handed out twice. Ids are per server: a server sharing a PostgreSQL store
with another keeps its own counter in memory once loaded, so only one server should serve
propertytransaction for an instance.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from dvid.errors import Conflict
from dvid.storage.versioned import DataContext, VersionedBatch

COUNTER_TKEY = b"\x04\x00"
_VERTEX_ID_PREFIX = b"\x04\x01"
_U64LE = struct.Struct("<Q")
_U64BE = struct.Struct(">Q")


def vertex_id_tkey(vid: int) -> bytes:
    return _VERTEX_ID_PREFIX + _U64BE.pack(vid)


@dataclass
class Locked:
    """What a lock request got: the vertices it now holds with their (possibly new) transaction
    ids, and those it could not lock (first those locked by another request, then outdated ones)."""

    held: list[tuple[int, int]] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)

    @property
    def vertices(self) -> set[int]:
        return {v for v, _ in self.held}


class Transactions:
    """One instance's vertex locks (in memory) and transaction ids (persisted)."""

    def __init__(self, wait_seconds: float = 10.0) -> None:
        #: How long ``weight`` waits for vertices another request holds, before a 409.
        self.wait_seconds = wait_seconds
        self._cond = threading.Condition()
        self._locked: set[int] = set()
        self._ids: dict[int, int] = {}
        self._counter: int | None = None

    # ---- persistent ids (call with the condition held) -------------------------------------------
    def _load(self, ctx: DataContext, vertices: Iterable[int]) -> None:
        if self._counter is None:
            stored = ctx.get(COUNTER_TKEY)
            self._counter = _U64LE.unpack(stored)[0] if stored else 0
        todo = [v for v in vertices if v not in self._ids]
        for vid, value in zip(todo, ctx.get_many(vertex_id_tkey(v) for v in todo), strict=True):
            self._ids[vid] = _U64LE.unpack(value)[0] if value else 0

    def _fresh(self, vid: int, batch: VersionedBatch) -> int:
        assert self._counter is not None
        self._counter += 1
        self._ids[vid] = self._counter
        batch.put(vertex_id_tkey(vid), _U64LE.pack(self._counter))
        batch.put(COUNTER_TKEY, _U64LE.pack(self._counter))
        return self._counter

    @contextmanager
    def _undone_on_failure(self, out: Locked) -> Iterator[None]:
        """If the ids cannot be stored, the request holds nothing and the cache is reloaded."""
        try:
            yield
        except BaseException:
            self._locked.difference_update(out.vertices)
            self._ids.clear()
            self._counter = None
            raise

    # ---- locking -------------------------------------------------------------------------------
    def lock_read(self, ctx: DataContext, vertices: list[int]) -> Locked:
        """Lock the vertices no other request holds, each with its id (a new one for a vertex that
        never had one); the others fail. ``ctx`` is where ids are kept (the repo root)."""
        out = Locked()
        with self._cond, self._undone_on_failure(out), ctx.batch() as batch:
            self._load(ctx, vertices)
            for vid in vertices:
                if vid in self._locked:
                    out.failed.append(vid)
                    continue
                self._locked.add(vid)
                out.held.append((vid, self._ids[vid] or self._fresh(vid, batch)))
        return out

    def lock_write(self, ctx: DataContext, vertices: list[tuple[int, int]]) -> Locked:
        """Lock each vertex whose id the client holds is its current one, giving it a new id; the
        others fail: those another request holds first, then those whose id is outdated (or that
        never had one)."""
        out = Locked()
        busy: list[int] = []
        outdated: list[int] = []
        with self._cond, self._undone_on_failure(out), ctx.batch() as batch:
            self._load(ctx, (v for v, _ in vertices))
            for vid, held in vertices:
                if vid in self._locked:
                    (outdated if held else busy).append(vid)
                elif held == 0 or self._ids[vid] != held:
                    outdated.append(vid)
                else:
                    self._locked.add(vid)
                    out.held.append((vid, self._fresh(vid, batch)))
        out.failed = busy + outdated
        return out

    def lock_waiting(self, ctx: DataContext, vertices: list[int]) -> Locked:
        """Read-lock every vertex at once, waiting up to ``wait_seconds`` while other requests hold
        some of them; 409 if they are still held then."""
        wanted = set(vertices)
        with self._cond:
            if not self._cond.wait_for(lambda: not (wanted & self._locked), self.wait_seconds):
                held = sorted(wanted & self._locked)
                shown = ", ".join(map(str, held[:10])) + (" ..." if len(held) > 10 else "")
                raise Conflict(
                    f"vertices {shown} stayed locked by other requests for {self.wait_seconds:g} s;"
                    " retry later"
                )
            return self.lock_read(ctx, vertices)

    def release(self, vertices: Iterable[int]) -> None:
        """Unlock what a request held and wake the requests waiting for it."""
        with self._cond:
            self._locked.difference_update(vertices)
            self._cond.notify_all()

    def current_id(self, ctx: DataContext, vid: int) -> int:
        """A vertex's transaction id (0: none yet)."""
        with self._cond:
            self._load(ctx, (vid,))
            return self._ids[vid]
