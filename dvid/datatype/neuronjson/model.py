"""The annotations of a neuronjson instance at a version: synchronous reads and writes (no aiohttp),
used by the HTTP handlers, tests and benchmarks.

Single records and key lists read the store; listings, ranges, ``all``, ``query``, ``fields`` and
``fieldtimes`` read the version's in-memory index (:mod:`.index`), built on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from jsonschema.protocols import Validator

from dvid.datatype.common.epoch import local_uuid
from dvid.datatype.neuronjson import keys
from dvid.datatype.neuronjson.index import IndexCache, VersionIndex, parse_stored
from dvid.datatype.neuronjson.merge import WriteMode, check_body, merge
from dvid.datatype.neuronjson.query import Query
from dvid.datatype.neuronjson.schema import compile_schema, validate
from dvid.datatype.neuronjson.values import Record, loads_record
from dvid.errors import BadRequest
from dvid.storage.versioned import DataContext


@dataclass(frozen=True)
class Write:
    """One annotation to write: the key it was addressed by and the request body."""

    key: str
    body: bytes


class Annotations:
    """Records of one instance, with the cache of its per-version indexes."""

    def __init__(self, max_versions: int = 4, version_uuid: Callable[[int], str] = local_uuid) -> None:
        self.cache = IndexCache(max_versions, version_uuid)

    # ---- metadata documents (schema, schema_batch, json_schema) -----------------------------------
    @staticmethod
    def get_meta(ctx: DataContext, name: str) -> bytes | None:
        return ctx.get(keys.META_TKEYS[name])

    @staticmethod
    def put_meta(ctx: DataContext, name: str, value: bytes) -> None:
        ctx.put(keys.META_TKEYS[name], value)

    @staticmethod
    def delete_meta(ctx: DataContext, name: str) -> None:
        ctx.delete(keys.META_TKEYS[name])

    # ---- single records ---------------------------------------------------------------------------
    @staticmethod
    def get(ctx: DataContext, body_id: int) -> Record | None:
        value = ctx.get(keys.annotation_tkey(body_id))
        return None if value is None else parse_stored(value)

    @staticmethod
    def get_many(ctx: DataContext, body_ids: Sequence[int]) -> list[Record | None]:
        values = ctx.get_many([keys.annotation_tkey(i) for i in body_ids])
        return [None if v is None else parse_stored(v) for v in values]

    def delete(self, ctx: DataContext, body_id: int) -> None:
        with self.cache.lock:
            self.cache.write(ctx, [(body_id, None)])

    def post(self, ctx: DataContext, writes: Sequence[Write], mode: WriteMode) -> None:
        """Write annotations in order, as one batch. The first bad one is a 400 raised after the
        ones before it are stored (as DVID, which writes them one by one)."""
        with self.cache.lock:
            validator = compile_schema(ctx.get(keys.META_TKEYS["json_schema"]))
            index = self.cache.current(ctx)
            merged: dict[int, Record] = {}
            documents: dict[bytes, bytes] = {}
            error: BadRequest | None = None
            for write in writes:
                if write.key in keys.META_KEYS:
                    documents[keys.META_TKEYS[write.key]] = write.body
                    continue
                try:
                    body_id, record = self._prepare(ctx, write, validator, index, merged, mode)
                except BadRequest as exc:
                    error = exc
                    break
                merged[body_id] = record
            if merged or documents:
                self.cache.write(ctx, merged.items(), documents.items())
            if error is not None:
                raise error

    def _prepare(
        self,
        ctx: DataContext,
        write: Write,
        validator: Validator | None,
        index: VersionIndex | None,
        merged: dict[int, Record],
        mode: WriteMode,
    ) -> tuple[int, Record]:
        """The record to store for one write (400 if the write is refused)."""
        body_id = keys.parse_body_id(write.key)
        if body_id == 0:
            raise BadRequest("body id 0 is reserved and so cannot be stored")
        body = validate(validator, loads_record(write.body))
        check_body(body, body_id)
        orig: Record | None
        if body_id in merged:
            orig = merged[body_id]
        elif index is not None:
            orig = index.records.get(body_id)
        else:
            orig = self.get(ctx, body_id)
        return body_id, merge(orig, body, mode)

    # ---- indexed reads ----------------------------------------------------------------------------
    def ids(self, ctx: DataContext, first: int = 0, last: int = keys.MAX_ID) -> list[int]:
        """Body ids with ``first <= id <= last``, ascending."""
        with self.cache.lock:
            return self.cache.index(ctx).ids_between(first, last)

    def records(self, ctx: DataContext, first: int = 0, last: int = keys.MAX_ID) -> list[tuple[int, Record]]:
        """``(id, record)`` with ``first <= id <= last``, ascending."""
        with self.cache.lock:
            index = self.cache.index(ctx)
            return [(i, index.records[i]) for i in index.ids_between(first, last)]

    def query(self, ctx: DataContext, query: Query) -> list[tuple[int, Record]]:
        """The matching records, ascending (a body-id query: in the order asked)."""
        with self.cache.lock:
            index = self.cache.index(ctx)
            return [(i, index.records[i]) for i in index.evaluate(query)]

    def field_counts(self, ctx: DataContext) -> dict[str, int]:
        """How many records hold each field (``*_user``/``*_time`` included), sorted by name."""
        with self.cache.lock:
            counts = self.cache.index(ctx).counts
            return {f: counts[f] for f in sorted(counts) if counts[f] > 0}

    def field_times(self, ctx: DataContext) -> dict[str, str]:
        """The latest ``<field>_time`` of each field, sorted by name."""
        with self.cache.lock:
            times = self.cache.index(ctx).times
            return {f: times[f] for f in sorted(times)}
