"""VersionedStore: copy-on-write versions over an Engine, with DVID's read semantics.

This is the only code that knows about versions and tombstones. A write at version V touches
only keys tagged V; a read at V takes, among the stored versions of a key, the one nearest V in
V's ancestry. Below a merge, the visible versions are the stored versions of V's ancestry that
no other stored version in it descends from; a tombstone there hides the ancestors it shadows,
and two different live versions are a conflict (as DVID).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from dvid.dag.ancestry import Ancestry
from dvid.errors import VersionConflict
from dvid.storage import keys
from dvid.storage.engine import Engine, WriteBatch, prefix_successor

# version -> (is_tombstone, value)
_Found = dict[int, tuple[bool, bytes]]


def resolve_version(found: _Found, ancestry: Ancestry) -> int | None:
    """The version whose value is visible at ``ancestry.version`` among ``found``.

    None if the key is absent or deleted there.
    """
    order = ancestry.order
    if ancestry.linear:
        best_rank = None
        best = None
        for v in found:
            rank = order.get(v)
            if rank is not None and (best_rank is None or rank < best_rank):
                best_rank, best = rank, v
        if best is None or found[best][0]:
            return None
        return best
    candidates = [v for v in found if v in order]
    if not candidates:
        return None
    shadowed: set[int] = set()
    for v in candidates:
        shadowed |= ancestry.ancestors_of(v)
    live = [v for v in candidates if v not in shadowed and not found[v][0]]
    if not live:
        return None
    if len(live) > 1:
        raise VersionConflict(
            f"found different values for a key among the parents of a merge: versions {sorted(live)};"
            " resolve the merge first"
        )
    return live[0]


def resolve(found: _Found, ancestry: Ancestry) -> bytes | None:
    """The value visible at ``ancestry.version`` among ``found``, or None if absent or deleted."""
    v = resolve_version(found, ancestry)
    return None if v is None else found[v][1]


def _group_versions(scan: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[bytes, _Found]]:
    """Raw data keys in key order, grouped by tkey: ``(tkey, {version: (is_tombstone, value)})``."""
    current: bytes | None = None
    found: _Found = {}
    for k, v in scan:
        tk = keys.tkey_of(k)
        if tk != current:
            if current is not None:
                yield current, found
            current, found = tk, {}
        found[keys.version_of(k)] = (keys.is_tombstone(k), v)
    if current is not None:
        yield current, found


class Holdable(Protocol):
    """What a batch can hold until it is done: a lock, or anything acquired and released like one."""

    def acquire(self) -> object: ...

    def release(self) -> None: ...


class VersionedBatch:
    """Versioned puts and deletes applied in one atomic engine batch."""

    def __init__(
        self, ctx: DataContext, engine_batch: WriteBatch | None = None, held: list[Holdable] | None = None
    ) -> None:
        self._ctx = ctx
        self._wb: WriteBatch = engine_batch if engine_batch is not None else ctx.engine.batch()
        self._held: list[Holdable] = held if held is not None else []

    def hold(self, lock: Holdable) -> None:
        """Acquire ``lock`` until the batch is committed or abandoned (at the end of its ``with``):
        for a read-modify-write (a counter) whose new value must be stored before anyone reads it
        again. A lock the batch already holds is not taken twice."""
        if not any(h is lock for h in self._held):
            lock.acquire()
            self._held.append(lock)

    def _release(self) -> None:
        while self._held:
            self._held.pop().release()

    def put(self, tk: bytes, value: bytes) -> None:
        iid, ver = self._ctx.instance_id, self._ctx.version
        self._wb.delete(keys.data_key(iid, tk, ver, tombstone=True))
        self._wb.put(keys.data_key(iid, tk, ver), value)

    def delete(self, tk: bytes) -> None:
        iid, ver = self._ctx.instance_id, self._ctx.version
        self._wb.delete(keys.data_key(iid, tk, ver))
        self._wb.put(keys.data_key(iid, tk, ver, tombstone=True), b"")

    def commit(self) -> None:
        try:
            self._wb.commit()
        finally:
            self._release()

    def for_context(self, ctx: DataContext) -> VersionedBatch:
        """A batch writing ``ctx``'s keys into this same atomic engine batch (same engine only);
        locks it holds are released with this batch's."""
        if ctx.engine is not self._ctx.engine:
            raise ValueError("a shared batch needs both contexts on one storage engine")
        return VersionedBatch(ctx, self._wb, self._held)

    def __enter__(self) -> VersionedBatch:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self._release()


class DataContext:
    """One data instance seen at one version: the view a datatype reads and writes through."""

    def __init__(self, engine: Engine, instance_id: int, ancestry: Ancestry) -> None:
        self.engine = engine
        self.instance_id = instance_id
        self.ancestry = ancestry

    @property
    def version(self) -> int:
        return self.ancestry.version

    # ---- reads -------------------------------------------------------------------------------
    def _versions(self, tk: bytes) -> _Found:
        iid = self.instance_id
        found: _Found = {}
        for k, v in self.engine.scan(keys.min_version_key(iid, tk), keys.versions_stop(iid, tk)):
            if keys.tkey_of(k) != tk:  # a longer tkey that starts with tk's bytes
                continue
            found[keys.version_of(k)] = (keys.is_tombstone(k), v)
        return found

    @property
    def remote(self) -> bool:
        """Whether reads and writes are network round trips (see ``Engine.remote``)."""
        return self.engine.remote

    def get(self, tk: bytes) -> bytes | None:
        """The value of ``tk`` visible at this version, or None."""
        return resolve(self._versions(tk), self.ancestry)

    def version_of(self, tk: bytes) -> int | None:
        """The version whose value of ``tk`` is visible at this version (None if none is)."""
        return resolve_version(self._versions(tk), self.ancestry)

    def exists(self, tk: bytes) -> bool:
        return self.get(tk) is not None

    def get_many(self, tks: Iterable[bytes]) -> list[bytes | None]:
        """The values of several tkeys visible here, in order (None where absent or deleted), in one
        batched engine read (:meth:`ranges`: one query on postgres). The caller bounds the batch."""
        return [rows[0][1] if rows else None for rows in self.ranges([(tk, tk) for tk in tks])]

    def exist_many(self, tks: Iterable[bytes]) -> list[bool]:
        """Whether each tkey has a value visible here (an empty value counts), values unread."""
        return [bool(rows) for rows in self.ranges([(tk, tk) for tk in tks], keys_only=True)]

    def range(self, begin: bytes, end: bytes, *, keys_only: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """Visible ``(tkey, value)`` pairs with ``begin <= tkey <= end``, in tkey order.

        With ``keys_only`` values are not read and come back as ``b""``.
        """
        iid = self.instance_id
        start, stop = keys.min_version_key(iid, begin), keys.versions_stop(iid, end)
        yield from self._visible(self.engine.scan(start, stop, keys_only=keys_only), end)

    def ranges(
        self, bounds: list[tuple[bytes, bytes]], *, keys_only: bool = False
    ) -> Iterator[list[tuple[bytes, bytes]]]:
        """:meth:`range` for several ``(begin, end)`` tkey ranges, one list per range (one query for
        all on engines that charge a round trip per query; see ``Engine.scan_ranges``)."""
        iid = self.instance_id
        scans = self.engine.scan_ranges(
            [(keys.min_version_key(iid, begin), keys.versions_stop(iid, end)) for begin, end in bounds],
            keys_only=keys_only,
        )
        for rows, (_, end) in zip(scans, bounds, strict=True):
            yield list(self._visible(iter(rows), end))

    def _visible(self, scan: Iterator[tuple[bytes, bytes]], end: bytes) -> Iterator[tuple[bytes, bytes]]:
        for tk, found in _group_versions(scan):
            if tk > end:  # a longer tkey that starts with end's bytes sorts inside the scan
                continue
            value = resolve(found, self.ancestry)
            if value is not None:
                yield tk, value

    def _all_keys(self) -> Iterator[tuple[bytes, bytes]]:
        """Every stored key of the instance as ``(key, key)``: grouped by :func:`_group_versions`,
        each version's own stored key comes back where its value would."""
        prefix = keys.instance_prefix(self.instance_id)
        return ((k, k) for k, _ in self.engine.scan(prefix, prefix_successor(prefix), keys_only=True))

    def visible_versions(self) -> Iterator[tuple[bytes, int]]:
        """``(tkey, version holding its visible value)`` for every key of the instance visible here."""
        for tk, found in _group_versions(self._all_keys()):
            v = resolve_version(found, self.ancestry)
            if v is not None:
                yield tk, v

    def visible_keys(self) -> Iterator[bytes]:
        """The stored data keys holding the values visible here (tombstones dropped), in key order:
        the state of the instance at this version, to copy it elsewhere."""
        for _, found in _group_versions(self._all_keys()):
            v = resolve_version(found, self.ancestry)
            if v is not None:
                yield found[v][1]

    def differences(self, other: Ancestry) -> Iterator[tuple[bytes, bytes | None, bytes | None]]:
        """``(tkey, stored key visible at other, stored key visible here)`` for every tkey whose
        visible value comes from a different stored version at ``other`` than here (None: absent
        or deleted there), in tkey order. One key-only scan of the instance; values are not read
        (a key rewritten with the same bytes is listed: compare the values to tell). A key whose
        value is in conflict below a merge at either end raises VersionConflict."""
        for tk, found in _group_versions(self._all_keys()):
            there = resolve(found, other)
            here = resolve(found, self.ancestry)
            if there != here:
                yield tk, there, here

    def keys(self, begin: bytes, end: bytes) -> Iterator[bytes]:
        """Visible tkeys with ``begin <= tkey <= end``, in order."""
        for tk, _ in self.range(begin, end, keys_only=True):
            yield tk

    # ---- writes ------------------------------------------------------------------------------
    def batch(self) -> VersionedBatch:
        return VersionedBatch(self)

    def put(self, tk: bytes, value: bytes) -> None:
        with self.batch() as b:
            b.put(tk, value)

    def delete(self, tk: bytes) -> None:
        """Hide ``tk`` from this version on (a tombstone); ancestors keep their values."""
        with self.batch() as b:
            b.delete(tk)

    def delete_range(self, begin: bytes, end: bytes) -> int:
        """Tombstone every key visible in ``[begin, end]``; returns how many."""
        tks = list(self.keys(begin, end))
        with self.batch() as b:
            for tk in tks:
                b.delete(tk)
        return len(tks)


class VersionedStore:
    """Hands out DataContexts over one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def context(self, instance_id: int, ancestry: Ancestry) -> DataContext:
        return DataContext(self.engine, instance_id, ancestry)

    def delete_instance(self, instance_id: int) -> int:
        """Physically remove every key of an instance, all versions and tombstones."""
        prefix = keys.instance_prefix(instance_id)
        return self.engine.delete_range(prefix, prefix_successor(prefix))

    # ---- stored keys, for transfers ------------------------------------------------------------
    def version_keys(self, instance_id: int, version: int) -> Iterator[bytes]:
        """The stored data keys of an instance written at ``version`` (values and tombstones)."""
        prefix = keys.instance_prefix(instance_id)
        for k, _ in self.engine.scan(prefix, prefix_successor(prefix), keys_only=True):
            if keys.version_of(k) == version:
                yield k

    def put_portable(self, instance_id: int, version: int, pairs: Iterable[tuple[bytes, bytes]]) -> None:
        """Store ``(portable key, value)`` pairs (see :func:`keys.portable_key`) under an instance
        and version id, in one atomic batch; ValueError (nothing stored) for a key without a mark."""
        with self.engine.batch() as wb:
            for pk, value in pairs:
                wb.put(keys.from_portable_key(pk, instance_id, version), value)

    def copy_version(self, instance_id: int, source: int, target: int) -> int:
        """Copy every key an instance holds at version ``source`` to version ``target``; returns how many."""
        prefix = keys.instance_prefix(instance_id)
        copied = 0
        with self.engine.batch() as wb:
            for k, v in self.engine.scan(prefix, prefix_successor(prefix)):
                if keys.version_of(k) == source:
                    wb.put(keys.with_ids(k, instance_id, target), v)
                    copied += 1
        return copied

    def delete_versions(self, instance_id: int, versions: set[int], batch_size: int = 10_000) -> int:
        """Physically remove every key of an instance at the given versions; returns how many."""
        prefix = keys.instance_prefix(instance_id)
        doomed = [
            k
            for k, _ in self.engine.scan(prefix, prefix_successor(prefix), keys_only=True)
            if keys.version_of(k) in versions
        ]
        for start in range(0, len(doomed), batch_size):
            with self.engine.batch() as wb:
                for k in doomed[start : start + batch_size]:
                    wb.delete(k)
        return len(doomed)
