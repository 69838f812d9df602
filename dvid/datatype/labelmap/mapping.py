"""The versioned supervoxel -> body mapping of a labelmap instance (spec §4.5).

Each version holds assignments ``sv -> body``, inherited from its ancestors as every versioned value
(the nearest wins); an id without one maps to itself, and body 0 means retired (a split supervoxel, a
renumbered id). One key per assigned supervoxel: tkey class 190 + sv (u64 BE) -> body (u64 LE, 8 bytes,
no envelope). An assignment ``sv -> sv`` is stored as written and reads as no assignment.

Reads map every block's label table through the mapping, so :class:`Mapping` keeps, per version, the
visible assignments as sorted numpy arrays (one range scan builds them) plus a small sorted overlay of
the changes made since, folded into the arrays when it grows. A version's cache is valid while the
*epoch* visible there is unchanged: tkey class 192, 8 random bytes rewritten by every mapping write
batch, so a server sharing the store (PostgreSQL scale-out) sees another's writes: each read costs one
``ctx.get`` of the epoch, and a changed epoch rebuilds that version's cache.

Writes, the contract:

1. ``pending = mapping.set(ctx, batch, svs, bodies)`` puts the keys and a new epoch in the caller's
   batch (the batch of ``ctx``) and holds the mapping's write lock until the batch is committed or
   abandoned (so writers of this Mapping are serialized from ``set`` to commit);
2. the caller commits the batch;
3. only after a successful commit, ``mapping.applied(pending)`` updates the cache in place.

Nothing goes stale if step 3 is skipped or the commit fails: the cache is changed only by ``applied``,
and a cache whose epoch differs from the stored one is rebuilt. ``applied`` updates a version's cache
only if it was current just before this write (its epoch is the one ``set`` read); otherwise it drops
it. It also drops the caches of the version's descendants (a write to a version that has children,
possible with ``--fullwrite``): for those, calling ``applied`` is required.

Limits: with several servers, two writes at one version from different servers between one's ``set``
and its commit may leave the other server's cache unaware of the first (DVID has no cross-server
locking for label edits either); a write at a version with descendants is not seen by another server's
cache of a descendant that has an epoch of its own.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dvid.dag.ancestry import Ancestry
from dvid.storage import keys
from dvid.storage.versioned import DataContext, VersionedBatch

__all__ = ["EPOCH_CLASS", "MAPPING_CLASS", "Mapping", "MappingView", "PendingMapping", "mapping_tkey"]

#: tkey class of one supervoxel's assignment (sv u64 BE -> body u64 LE).
MAPPING_CLASS = 190
#: tkey class of a version's mapping epoch (8 random bytes, rewritten by every mapping write).
EPOCH_CLASS = 192

EPOCH_TKEY = keys.tkey(EPOCH_CLASS)
_SV = struct.Struct(">Q")
_BODY = struct.Struct("<Q")
_U64 = np.uint64
_EMPTY = np.zeros(0, _U64)
_EMPTY.flags.writeable = False
_FIRST, _LAST = keys.tkey(MAPPING_CLASS, _SV.pack(0)), keys.tkey(MAPPING_CLASS, _SV.pack(2**64 - 1))

#: Overlay entries folded into the sorted arrays once there are more than this, or than 1/64 of the rows.
_OVERLAY_MIN = 4096


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
    epoch: bytes | None
    ancestry: Ancestry
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

    def changed(self, svs: np.ndarray, bodies: np.ndarray, epoch: bytes) -> MappingView:
        """This view with assignments added (sorted unique ``svs``), under a new epoch."""
        osvs, obodies = _last_wins(
            np.concatenate([self.overlay_svs, svs]), np.concatenate([self.overlay_bodies, bodies])
        )
        view = MappingView(self.version, epoch, self.ancestry, self.svs, self.bodies, osvs, obodies)
        if len(osvs) > max(_OVERLAY_MIN, len(self.svs) // 64):
            return view.compacted()
        return view

    def compacted(self) -> MappingView:
        svs, bodies = self._folded()
        return MappingView(self.version, self.epoch, self.ancestry, _frozen(svs), _frozen(bodies))


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class PendingMapping:
    """Assignments put in a batch by :meth:`Mapping.set`, to pass to :meth:`Mapping.applied` once the
    batch has committed. ``epoch`` is the epoch the batch writes, ``base`` the one it replaces."""

    version: int
    svs: np.ndarray
    bodies: np.ndarray
    epoch: bytes
    base: bytes | None


class Mapping:
    """The sv -> body mapping of one labelmap instance, cached per version (thread-safe).

    ``max_versions`` caches are kept (least recently used dropped); one costs 16 bytes per assignment.
    """

    def __init__(self, max_versions: int = 4) -> None:
        self.max_versions = max_versions
        self._views: dict[int, MappingView] = {}
        self._used: dict[int, float] = {}
        self._lock = threading.Lock()  # guards _views and _building
        self._building: dict[int, threading.Lock] = {}
        self._write_lock = threading.Lock()

    # ---- reads ----------------------------------------------------------------------------------

    def view(self, ctx: DataContext) -> MappingView:
        """The mapping visible at ``ctx``'s version, current as of this call (one epoch read)."""
        version = ctx.version
        epoch = ctx.get(EPOCH_TKEY)
        view = self._views.get(version)
        if view is None or view.epoch != epoch:
            view = self._rebuilt(ctx, epoch)
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

    def _rebuilt(self, ctx: DataContext, epoch: bytes | None) -> MappingView:
        version = ctx.version
        with self._lock:
            building = self._building.setdefault(version, threading.Lock())
        with building:
            view = self._views.get(version)
            if view is not None and view.epoch == epoch:  # another thread built it meanwhile
                return view
            view = self._scan(ctx)
            with self._lock:
                self._views[version] = view
                self._used[version] = time.monotonic()
                self._evict(keep=version)
            return view

    @staticmethod
    def _scan(ctx: DataContext) -> MappingView:
        """The assignments visible at ``ctx``, read after the epoch (so a write committed in between
        makes the view newer than its epoch, never older)."""
        epoch = ctx.get(EPOCH_TKEY)
        rows = list(ctx.range(_FIRST, _LAST))
        svs = np.frombuffer(b"".join(tk for tk, _ in rows), np.uint8).reshape(-1, len(_FIRST))
        svs = svs[:, 2:].copy().view(">u8").reshape(-1).astype(_U64)
        values = b"".join(v for _, v in rows)
        if len(values) != 8 * len(rows):
            raise ValueError("a stored supervoxel assignment is not 8 bytes long")
        bodies = np.frombuffer(values, "<u8").astype(_U64)
        keep = svs != bodies
        return MappingView(ctx.version, epoch, ctx.ancestry, _frozen(svs[keep]), _frozen(bodies[keep]))

    def _evict(self, keep: int) -> None:
        while len(self._views) > self.max_versions:
            oldest = min((v for v in self._views if v != keep), key=lambda v: self._used.get(v, 0.0))
            self._drop(oldest)

    def _drop(self, version: int) -> None:
        self._views.pop(version, None)
        self._used.pop(version, None)

    # ---- writes ---------------------------------------------------------------------------------

    def set(self, ctx: DataContext, batch: VersionedBatch, svs: Any, bodies: Any) -> PendingMapping:
        """Put ``svs[i] -> bodies[i]`` (the last one given for an sv wins) and a new epoch in ``batch``,
        a batch of ``ctx``; pass the result to :meth:`applied` after the batch commits.

        Holds the mapping's write lock until the batch is committed or abandoned. ValueError for
        supervoxel 0 (background maps to itself) or lengths that differ.
        """
        s, b = _u64(svs), _u64(bodies)
        if len(s) != len(b):
            raise ValueError("svs and bodies must have the same length")
        if len(s) and not s.all():
            raise ValueError("supervoxel 0 (background) cannot be assigned a body")
        s, b = _last_wins(s, b)
        batch.hold(self._write_lock)
        base = ctx.get(EPOCH_TKEY)  # under the write lock: no writer of ours commits in between
        epoch = os.urandom(8)
        put, tkey, pack = batch.put, mapping_tkey, _BODY.pack
        for sv, body in zip(s.tolist(), b.tolist(), strict=True):
            put(tkey(sv), pack(body))
        put(EPOCH_TKEY, epoch)
        return PendingMapping(ctx.version, _frozen(s), _frozen(b), epoch, base)

    def applied(self, pending: PendingMapping) -> None:
        """Record in the cache a write whose batch has committed (see the module's contract)."""
        with self._lock:
            for version, other in list(self._views.items()):
                if version != pending.version and pending.version in other.ancestry.order:
                    self._drop(version)  # a descendant: it may see the change
            view = self._views.get(pending.version)
            if view is None:
                return
            if view.epoch != pending.base:
                self._drop(pending.version)
                return
            self._views[pending.version] = view.changed(pending.svs, pending.bodies, pending.epoch)

    def clear(self) -> None:
        """Drop every cached version."""
        with self._lock:
            self._views.clear()
            self._used.clear()
