"""The in-memory index of the annotations of a version, and the cache of those indexes.

A :class:`VersionIndex` holds every record visible at one version, parsed once, with the field
counts (``fields``) and latest stamp times (``fieldtimes``). Per-field postings -- integer and
string value -> body ids, and the ids where the field is present and not null -- are built the
first time a query names the field and kept current by later writes. A query intersects the
postings of its conditions (a regex scans the field's distinct strings, not the records).

:class:`IndexCache` keeps the indexes of the last ``max_versions`` versions used (LRU). An index is
reused while the version's *epochs* (``common/epoch.py``, class 183) are those it was built under:
every write batch rewrites its version's epoch, so writes by another server sharing the store, and
versions that arrive by push/pull, are seen at the next read (which rebuilds the index). Writes made
here update the index in place when nothing else changed meanwhile.

Memory: records are Python dicts. Clio-like records (status, type, instance, soma_side, some
group/notes/position, each with its two stamps) take ~170 MiB per 100,000 annotations per cached
version, plus ~60 bytes per (record, value) posting of each field queried; loading 100,000 takes
~2.5 s (figures from ``python -m bench neuronjson``).
"""

from __future__ import annotations

import bisect
import json
import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dvid.datatype.common.epoch import Epochs, epoch_tkey, local_uuid, new_epoch, read_epochs, with_epoch
from dvid.datatype.neuronjson import keys
from dvid.datatype.neuronjson.query import Condition, Query, atoms
from dvid.datatype.neuronjson.values import Record, dumps
from dvid.storage.versioned import DataContext

log = logging.getLogger("dvid.datatype.neuronjson")

#: Below this many candidates, further conditions test the records instead of their postings.
_FILTER_BELOW = 2048


@dataclass(eq=False)
class FieldPostings:
    """One field's postings: value -> ids, and the ids where it is present and not null."""

    ints: dict[int, set[int]] = field(default_factory=dict)
    strings: dict[str, set[int]] = field(default_factory=dict)
    present: set[int] = field(default_factory=set)

    def add(self, body_id: int, value: object) -> None:
        if value is None:
            return
        self.present.add(body_id)
        ints, strings = atoms(value)
        for i in ints:
            self.ints.setdefault(i, set()).add(body_id)
        for s in strings:
            self.strings.setdefault(s, set()).add(body_id)

    def remove(self, body_id: int, value: object) -> None:
        if value is None:
            return
        self.present.discard(body_id)
        ints, strings = atoms(value)
        for i in ints:
            _discard(self.ints, i, body_id)
        for s in strings:
            _discard(self.strings, s, body_id)


def _discard(table: dict[Any, set[int]], value: object, body_id: int) -> None:
    ids = table.get(value)
    if ids is not None:
        ids.discard(body_id)
        if not ids:
            del table[value]


def parse_stored(value: bytes) -> Record | None:
    """A stored annotation, or None (logged) if it is not a JSON object."""
    try:
        record = json.loads(value)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


class VersionIndex:
    """Every annotation visible at one version, with field statistics and lazy postings."""

    def __init__(self, records: dict[int, Record], epochs: Epochs | None) -> None:
        self.records = records
        self.epochs = epochs
        self.counts: Counter[str] = Counter()
        self.times: dict[str, str] = {}
        self._postings: dict[str, FieldPostings] = {}
        self._sorted: list[int] | None = None
        for record in records.values():
            self.counts.update(record.keys())
            for f, v in record.items():
                if f.endswith("_time") and isinstance(v, str):
                    stem = f[: -len("_time")]
                    if v > self.times.get(stem, ""):
                        self.times[stem] = v

    @classmethod
    def load(cls, ctx: DataContext) -> VersionIndex:
        """Read every annotation at ``ctx`` (the epochs are read first, so a write committed during
        the scan leaves the index newer than its epochs, never older)."""
        epochs = read_epochs(ctx, keys.EPOCH_CLASS)
        records: dict[int, Record] = {}
        for tk, value in ctx.range(keys.FIRST_TKEY, keys.LAST_TKEY):
            body_id = keys.decode_tkey(tk)
            record = parse_stored(value) if body_id is not None else None
            if body_id is None or record is None:
                log.warning("neuronjson: skipping a stored key that is not an annotation: %r", tk)
                continue
            records[body_id] = record
        return cls(records, epochs)

    # ---- reads ----------------------------------------------------------------------------------
    def ids(self) -> list[int]:
        """Every body id, ascending."""
        if self._sorted is None:
            self._sorted = sorted(self.records)
        return self._sorted

    def ids_between(self, first: int, last: int) -> list[int]:
        """Body ids with ``first <= id <= last``, ascending."""
        ids = self.ids()
        return ids[bisect.bisect_left(ids, first) : bisect.bisect_right(ids, last)]

    def postings(self, name: str) -> FieldPostings:
        postings = self._postings.get(name)
        if postings is None:
            postings = FieldPostings()
            for body_id, record in self.records.items():
                postings.add(body_id, record.get(name))
            self._postings[name] = postings
        return postings

    def _candidates(self, cond: Condition) -> set[int]:
        if cond.never:
            return set()
        postings = self.postings(cond.field)
        if cond.exists is not None:
            return set(postings.present) if cond.exists else self.records.keys() - postings.present
        out: set[int] = set()
        for i in cond.ints:
            out.update(postings.ints.get(i, ()))
        for s in cond.strings:
            out.update(postings.strings.get(s, ()))
        for rx in cond.regexes:
            for s, ids in postings.strings.items():
                if rx.search(s):
                    out.update(ids)
        return out

    def _conjunction(self, conditions: tuple[Condition, ...]) -> set[int]:
        if not conditions:
            return set(self.records)
        # Value conditions first (usually selective); "absent" conditions last (usually not).
        ordered = sorted(conditions, key=lambda c: (c.exists is False, c.exists is True))
        result = self._candidates(ordered[0])
        for cond in ordered[1:]:
            if not result:
                break
            if len(result) < _FILTER_BELOW:
                records = self.records
                result = {i for i in result if cond.matches(records[i])}
            else:
                result &= self._candidates(cond)
        return result

    def evaluate(self, query: Query) -> list[int]:
        """The ids of the matching records, ascending (or, for a body-id query, in the order asked)."""
        if query.body_ids is not None:
            return [i for i in query.body_ids if i in self.records]
        found: set[int] = set()
        for conj in query.alternatives:
            found |= self._conjunction(conj)
        return sorted(found)

    # ---- writes ---------------------------------------------------------------------------------
    def put(self, body_id: int, record: Record | None) -> None:
        """Replace (or with None remove) one record, keeping statistics and postings current."""
        old = self.records.pop(body_id, None)
        if (old is None) != (record is None):
            self._sorted = None
        if old is not None:
            self.counts.subtract(old.keys())
            for name, postings in self._postings.items():
                postings.remove(body_id, old.get(name))
        if record is not None:
            self.records[body_id] = record
            self.counts.update(record.keys())
            for name, postings in self._postings.items():
                postings.add(body_id, record.get(name))
            for f, v in record.items():
                if f.endswith("_time") and isinstance(v, str) and (old is None or old.get(f) != v):
                    self.times[f[: -len("_time")]] = v
        if old is not None:
            self.counts = +self.counts  # drop fields no record holds any more


class IndexCache:
    """Indexes of the last ``max_versions`` versions read, each valid while its epochs hold.

    ``lock`` serializes index changes, queries and writes of the instance; records are replaced,
    never changed in place, so a caller may format records it took under the lock after leaving it.
    """

    def __init__(self, max_versions: int = 4, version_uuid: Callable[[int], str] = local_uuid) -> None:
        self.max_versions = max_versions
        self.version_uuid = version_uuid
        self.lock = threading.RLock()
        self._indexes: OrderedDict[int, VersionIndex] = OrderedDict()

    def index(self, ctx: DataContext) -> VersionIndex:
        """The index of ``ctx``'s version, current as of this call (call with ``lock`` held)."""
        epochs = read_epochs(ctx, keys.EPOCH_CLASS)
        index = self._indexes.get(ctx.version)
        if index is not None and epochs is not None and index.epochs == epochs:
            self._indexes.move_to_end(ctx.version)
            return index
        index = VersionIndex.load(ctx)
        if index.epochs is not None:
            self._indexes[ctx.version] = index
            self._indexes.move_to_end(ctx.version)
            while len(self._indexes) > self.max_versions:
                self._indexes.popitem(last=False)
        else:
            self._indexes.pop(ctx.version, None)
        return index

    def current(self, ctx: DataContext) -> VersionIndex | None:
        """The cached index of ``ctx``'s version if it is current, else None (nothing is loaded)."""
        index = self._indexes.get(ctx.version)
        if index is None or index.epochs is None or index.epochs != read_epochs(ctx, keys.EPOCH_CLASS):
            return None
        return index

    def write(
        self,
        ctx: DataContext,
        changes: Iterable[tuple[int, Record | None]],
        others: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        """Store records (None: delete) at ``ctx`` in one batch with a new epoch (and ``others``,
        more ``(tkey, value)`` pairs), and bring the cached index along if nothing else wrote
        meanwhile (call with ``lock`` held)."""
        changes = list(changes)
        base = read_epochs(ctx, keys.EPOCH_CLASS)
        epoch_key = epoch_tkey(keys.EPOCH_CLASS, self.version_uuid(ctx.version))
        epoch = new_epoch()
        with ctx.batch() as batch:
            for body_id, record in changes:
                tk = keys.annotation_tkey(body_id)
                if record is None:
                    batch.delete(tk)
                else:
                    batch.put(tk, dumps(record))
            for tk, value in others:
                batch.put(tk, value)
            batch.put(epoch_key, epoch)
        index = self._indexes.get(ctx.version)
        if index is None:
            return
        after = read_epochs(ctx, keys.EPOCH_CLASS)
        if base is None or index.epochs != base or after != with_epoch(base, epoch_key, epoch):
            self._indexes.pop(ctx.version, None)
            return
        for body_id, record in changes:
            index.put(body_id, record)
        index.epochs = after

    def clear(self) -> None:
        with self.lock:
            self._indexes.clear()
