"""The versioned supervoxel -> body mapping of a labelmap instance (spec §4.5).

Each version holds assignments ``sv -> body``, inherited from its ancestors as every versioned value
(the nearest wins); an id without one maps to itself, and body 0 means retired (a split supervoxel, a
renumbered id). One key per assigned supervoxel: tkey class 190 + sv (u64 BE) -> body (u64 LE, 8 bytes,
no envelope). An assignment ``sv -> sv`` is stored as written and reads as no assignment.

Reads map every block's label table through the mapping, so :class:`Mapping` keeps, per version, the
visible assignments as sorted numpy arrays (one range scan builds them) plus a small sorted overlay of
the changes made since, folded into the arrays when it grows. Every mapping write batch at version V
also rewrites V's *epoch*: tkey class 192 + V's UUID (16 bytes) -> 8 random bytes. A version's cache
is valid while the epochs visible there (those of the versions in its ancestry that wrote the
mapping) are unchanged, which one keys scan per read checks. So a server sharing the store
(PostgreSQL scale-out) sees another's writes, a write to a version that has children
(``--fullwrite``) reaches its descendants' caches, and a merge version sees both parents' epochs
without a conflict. The epoch is keyed by the version's UUID, not its server-local id, because keys
travel between servers with push and pull: a pulled version's epoch key must not meet the key of
another version that has the same local id here (it would hide that version's epoch, and two such
keys under a merge are a conflict that stops caching there and a flattened transfer of it).

Writes: ``mapping.set(ctx, batch, svs, bodies)`` puts the keys and the new epoch in the caller's batch
(a batch of ``ctx``) and has the batch hold the mapping's write lock (``VersionedBatch.hold``) until it
is committed or abandoned, so this Mapping's writers are serialized from ``set`` to commit, one
``set`` per batch. When the batch lets go of the lock, the Mapping reads the epochs back: if they are
what ``set`` read plus the batch's own, the write is stored and nothing else intervened, and the cache
of that version takes the change in place; otherwise the cache is left alone and is rebuilt at the
next read. A failed commit cannot leave a stale cache, and the caller has nothing to call after
committing.

Costs and limits: the epoch scan reads one key per version that wrote the mapping, on any branch
(about 1 µs each on LevelDB), so its cost grows with the repo's history. A rebuild scans every
assignment visible at the version (figures in the report of the bench script). Two servers writing one
version at the same moment may leave one of them unaware of the other's write until the next write or
rebuild there (DVID has no cross-server locking of label edits either).
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dvid.datatype.common import epoch
from dvid.datatype.common.epoch import Epochs, local_uuid, with_epoch
from dvid.datatype.labelmap.tkeys import MAPPING_CLASS, MAPPING_EPOCH_CLASS
from dvid.storage import keys
from dvid.storage.versioned import DataContext, VersionedBatch

__all__ = [
    "EPOCH_CLASS",
    "MAPPING_CLASS",
    "Mapping",
    "MappingView",
    "epoch_tkey",
    "local_uuid",
    "mapping_tkey",
]

#: tkey classes (see tkeys.py): one supervoxel's assignment (sv u64 BE -> body u64 LE), and a
#: version's mapping epoch (version UUID -> 8 random bytes, rewritten by every mapping write).
EPOCH_CLASS = MAPPING_EPOCH_CLASS

_SV = struct.Struct(">Q")
_BODY = struct.Struct("<Q")
_U64 = np.uint64
_EMPTY = np.zeros(0, _U64)
_EMPTY.flags.writeable = False
_FIRST, _LAST = keys.tkey(MAPPING_CLASS, _SV.pack(0)), keys.tkey(MAPPING_CLASS, _SV.pack(2**64 - 1))

#: Overlay entries folded into the sorted arrays once there are more than this, or than 1/64 of the rows.
_OVERLAY_MIN = 4096


def epoch_tkey(version_uuid: str) -> bytes:
    """``192 | 0x01 | UUID (16 bytes)``: the epoch written by mapping writes at the version."""
    return epoch.epoch_tkey(EPOCH_CLASS, version_uuid)


def _epochs(ctx: DataContext) -> Epochs | None:
    """The mapping epochs visible at ``ctx`` (see :func:`dvid.datatype.common.epoch.read_epochs`)."""
    return epoch.read_epochs(ctx, EPOCH_CLASS)


def mapping_tkey(sv: int) -> bytes:
    """``190 | 0x01 | sv u64 BE``."""
    return keys.tkey(MAPPING_CLASS, _SV.pack(sv))


def _u64(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=_U64).reshape(-1)


def _last_wins(svs: np.ndarray, bodies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique svs, each with the last body given for it."""
    order = np.argsort(svs, kind="stable")
    svs, bodies = svs[order], bodies[order]
    last = np.r_[svs[1:] != svs[:-1], True] if len(svs) else np.zeros(0, bool)
    return svs[last], bodies[last]


def _lookup_sorted(table: np.ndarray, values: np.ndarray, svs: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = values[j]`` where ``table[j] == svs[i]`` (``table`` sorted, unique)."""
    at = np.searchsorted(table, svs)
    at[at == len(table)] = 0
    hit = table[at] == svs
    out[hit] = values[at[hit]]


@dataclass(frozen=True, eq=False)
class MappingView:
    """The mapping visible at one version, as it was when read: sorted ``svs`` -> ``bodies`` plus an
    ``overlay`` (sorted, may hold identity rows that cancel an older assignment) that wins over them.
    Immutable; take one per request and map any number of label tables through it."""

    version: int
    epochs: Epochs | None
    svs: np.ndarray = field(repr=False)
    bodies: np.ndarray = field(repr=False)
    overlay_svs: np.ndarray = field(default_factory=lambda: _EMPTY, repr=False)
    overlay_bodies: np.ndarray = field(default_factory=lambda: _EMPTY, repr=False)

    def lookup(self, svs: Any) -> np.ndarray:
        """The body of each supervoxel (uint64, same shape): itself when unassigned, 0 when retired."""
        ids = np.asarray(svs, dtype=_U64)
        flat = ids.reshape(-1)
        out = flat.copy()
        if len(self.svs):
            _lookup_sorted(self.svs, self.bodies, flat, out)
        if len(self.overlay_svs):
            _lookup_sorted(self.overlay_svs, self.overlay_bodies, flat, out)
        return out.reshape(ids.shape)

    def assignments(self) -> tuple[np.ndarray, np.ndarray]:
        """Every assignment other than identity, ``(svs, bodies)`` sorted by sv."""
        svs, bodies = self._folded()
        return svs.copy(), bodies.copy()

    def __len__(self) -> int:
        """Rows held (assignments plus overlay entries)."""
        return len(self.svs) + len(self.overlay_svs)

    def _folded(self) -> tuple[np.ndarray, np.ndarray]:
        """Arrays and overlay as one sorted table without identity rows."""
        if not len(self.overlay_svs):
            return self.svs, self.bodies
        svs, bodies = _last_wins(
            np.concatenate([self.svs, self.overlay_svs]), np.concatenate([self.bodies, self.overlay_bodies])
        )
        keep = svs != bodies
        return svs[keep], bodies[keep]

    def changed(self, svs: np.ndarray, bodies: np.ndarray, epochs: Epochs) -> MappingView:
        """This view with assignments added (sorted unique ``svs``), under new epochs."""
        osvs, obodies = _last_wins(
            np.concatenate([self.overlay_svs, svs]), np.concatenate([self.overlay_bodies, bodies])
        )
        view = MappingView(self.version, epochs, self.svs, self.bodies, _frozen(osvs), _frozen(obodies))
        if len(osvs) > max(_OVERLAY_MIN, len(self.svs) // 64):
            return view.compacted()
        return view

    def compacted(self) -> MappingView:
        svs, bodies = self._folded()
        return MappingView(self.version, self.epochs, _frozen(svs), _frozen(bodies))


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@dataclass(eq=False)
class _Pending:
    """Assignments put in a batch by :meth:`Mapping.set`: ``epoch`` is the epoch the batch writes at
    ``epoch_key``, ``base`` the epochs visible when ``set`` ran under the write lock."""

    ctx: DataContext
    epoch_key: bytes
    svs: np.ndarray
    bodies: np.ndarray
    epoch: bytes
    base: Epochs | None = None


class _WriteHold:
    """What :meth:`Mapping.set` has its batch hold (``VersionedBatch.hold`` calls ``acquire`` and
    ``release``): the mapping's write lock, and on release the write's effect on the caches."""

    def __init__(self, mapping: Mapping, pending: _Pending) -> None:
        self._mapping = mapping
        self._pending = pending

    def acquire(self) -> None:
        self._mapping._write_lock.acquire()
        self._mapping._writer = threading.get_ident()

    def release(self) -> None:
        try:
            self._mapping._released(self._pending)
        finally:
            self._mapping._writer = None
            self._mapping._write_lock.release()


class Mapping:
    """The sv -> body mapping of one labelmap instance, cached per version (thread-safe).

    ``max_versions`` caches are kept (least recently used dropped); one costs 16 bytes per assignment.
    ``version_uuid`` gives the UUID of a version id (the epoch's key); outside a repo, :func:`local_uuid`.
    """

    def __init__(self, max_versions: int = 4, version_uuid: Callable[[int], str] = local_uuid) -> None:
        self.max_versions = max_versions
        self.version_uuid = version_uuid
        self._views: dict[int, MappingView] = {}
        self._used: dict[int, float] = {}
        self._lock = threading.Lock()  # guards _views and _building
        self._building: dict[int, threading.Lock] = {}
        self._write_lock = threading.Lock()
        self._writer: int | None = None  # the thread holding _write_lock

    # ---- reads ----------------------------------------------------------------------------------

    def view(self, ctx: DataContext) -> MappingView:
        """The mapping visible at ``ctx``'s version, current as of this call (one scan of the epochs)."""
        version = ctx.version
        epochs = _epochs(ctx)
        view = self._views.get(version)
        if view is None or epochs is None or view.epochs != epochs:
            view = self._rebuilt(ctx, epochs)
        self._used[version] = time.monotonic()
        return view

    def lookup(self, ctx: DataContext, svs: Any) -> np.ndarray:
        """The body of each supervoxel at ``ctx``'s version: itself when unassigned, 0 when retired."""
        return self.view(ctx).lookup(svs)

    bodies_of = lookup

    def lookup_one(self, ctx: DataContext, sv: int) -> int:
        return int(self.view(ctx).lookup(np.array([sv], _U64))[0])

    def assignments(self, ctx: DataContext) -> tuple[np.ndarray, np.ndarray]:
        """Every non-identity assignment visible at ``ctx``'s version, ``(svs, bodies)`` sorted by sv."""
        return self.view(ctx).assignments()

    def _rebuilt(self, ctx: DataContext, epochs: Epochs | None) -> MappingView:
        version = ctx.version
        with self._lock:
            building = self._building.setdefault(version, threading.Lock())
        with building:
            view = self._views.get(version)
            if view is not None and epochs is not None and view.epochs == epochs:  # built meanwhile
                return view
            view = self._scan(ctx)
            if view.epochs is not None:
                with self._lock:
                    self._views[version] = view
                    self._used[version] = time.monotonic()
                    self._evict(keep=version)
            return view

    @staticmethod
    def _scan(ctx: DataContext) -> MappingView:
        """The assignments visible at ``ctx``, read after the epochs (so a write committed in between
        makes the view newer than its epochs, never older)."""
        epochs = _epochs(ctx)
        rows = list(ctx.range(_FIRST, _LAST))
        tkeys = np.frombuffer(b"".join(tk for tk, _ in rows), np.uint8).reshape(-1, len(_FIRST))
        svs = tkeys[:, 2:].copy().view(">u8").reshape(-1).astype(_U64)
        values = b"".join(v for _, v in rows)
        if len(values) != 8 * len(rows):
            raise ValueError("a stored supervoxel assignment is not 8 bytes long")
        bodies = np.frombuffer(values, "<u8").astype(_U64)
        keep = svs != bodies
        return MappingView(ctx.version, epochs, _frozen(svs[keep]), _frozen(bodies[keep]))

    def _evict(self, keep: int) -> None:
        while len(self._views) > self.max_versions:
            oldest = min((v for v in self._views if v != keep), key=lambda v: self._used.get(v, 0.0))
            self._drop(oldest)

    def _drop(self, version: int) -> None:
        self._views.pop(version, None)
        self._used.pop(version, None)

    # ---- writes ---------------------------------------------------------------------------------

    def set(self, ctx: DataContext, batch: VersionedBatch, svs: Any, bodies: Any) -> None:
        """Put ``svs[i] -> bodies[i]`` (the last one given for an sv wins) and a new epoch in ``batch``,
        a batch of ``ctx``; the cache follows when the batch commits.

        The batch holds the mapping's write lock until it is committed or abandoned (in this thread).
        ValueError for supervoxel 0 (background maps to itself), lengths that differ, or a second
        ``set`` before the first one's batch is done.
        """
        s, b = _u64(svs), _u64(bodies)
        if len(s) != len(b):
            raise ValueError("svs and bodies must have the same length")
        if len(s) and not s.all():
            raise ValueError("supervoxel 0 (background) cannot be assigned a body")
        if self._writer == threading.get_ident():
            raise ValueError("one mapping write per batch: pass every assignment to one set()")
        s, b = _last_wins(s, b)
        pending = _Pending(
            ctx, epoch_tkey(self.version_uuid(ctx.version)), _frozen(s), _frozen(b), epoch.new_epoch()
        )
        items = [
            (mapping_tkey(sv), _BODY.pack(body)) for sv, body in zip(s.tolist(), b.tolist(), strict=True)
        ]
        batch.hold(_WriteHold(self, pending))
        pending.base = _epochs(ctx)  # under the write lock: no writer of ours commits meanwhile
        for tk, value in items:
            batch.put(tk, value)
        batch.put(pending.epoch_key, pending.epoch)

    def _released(self, pending: _Pending) -> None:
        """The batch of a write let go of the write lock, committed or not: if it was stored and nothing
        else changed since ``set`` read the epochs, the version's cache takes the change in place.
        Never raises (this runs inside the batch's commit)."""
        ctx = pending.ctx
        try:
            after = _epochs(ctx)
        except Exception:
            return
        expected = with_epoch(pending.base, pending.epoch_key, pending.epoch)
        if after is None or after != expected:  # not stored, or another server wrote too
            return
        with self._lock:
            view = self._views.get(ctx.version)
            if view is not None and view.epochs == pending.base:
                try:
                    self._views[ctx.version] = view.changed(pending.svs, pending.bodies, after)
                except Exception:
                    self._drop(ctx.version)

    def clear(self) -> None:
        """Drop every cached version."""
        with self._lock:
            self._views.clear()
            self._used.clear()
