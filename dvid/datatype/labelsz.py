"""The ``labelsz`` datatype: ranked counts of annotation elements per body label.

Wire-compatible with DVID's ``datatype/labelsz``. A labelsz syncs to one ``annotation`` instance
(``POST sync {"sync": "<annotation>"}``); the annotation calls :meth:`LabelSz.annotation_counts_changed`
inside its own atomic write batch with the net change of each (element kind, label), so the
counts change atomically with the annotations.

Store (raw values, no envelope), per index type t (1 PostSyn, 2 PreSyn, 3 Gap, 4 Note, 5 AllSyn):

- class 98: ``62 01 | t | label u64be`` -> ``u32le count``;
- class 97: ``61 01 | t | u32be(0xFFFFFFFF - count) | label u64be`` -> empty: the ranking index,
  ascending key order = descending count, ties by ascending label, so ``top/N`` and
  ``threshold/T`` are short forward scans.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, field_validator

from dvid.dag.ancestry import Ancestry
from dvid.datatype.base import Datatype, InstanceMeta, Route
from dvid.datatype.common import jsonio, sync
from dvid.datatype.common.numbers import parse_decimal
from dvid.datatype.common.request import InstanceRequest, json_response
from dvid.datatype.common.route import JSON, LABEL, Param, query
from dvid.datatype.registry import register
from dvid.errors import BadRequest
from dvid.storage import keys
from dvid.storage.versioned import DataContext, VersionedBatch

HELP = """\
API for datatype "labelsz"
==========================

Ranked counts of annotation elements (synapses, notes, ...) per body label, kept current from an
annotation instance. Each index type counts elements of some kinds: PostSyn, PreSyn, Gap, Note,
and AllSyn (PreSyn + PostSyn + Gap). Label 0 (background) is never counted. Counts are versioned
like the annotations they follow.

Instance creation
-----------------

POST /api/repo/{uuid}/instance
    {"typename": "labelsz", "dataname": "<name>"}

    Then subscribe it to an annotation instance (the counts follow every later change):
    POST <api URL>/node/{uuid}/<name>/sync  {"sync": "<annotation name>"}
    and, if the annotation already has elements, POST <api URL>/node/{uuid}/<name>/reload.

    The setting ROI="<roi name>,<uuid>" (counting only elements inside an ROI) is checked (one
    comma) but not supported yet: such an instance is refused with a 400.

Endpoints (under /api/node/{uuid}/{data name}); <index> is PostSyn, PreSyn, Gap, Note or AllSyn
------------------------------------------------------------------------------------------------

GET  help                    This text.
GET  info                    {"Base": {...}, "Extended": {"StaticROI": ""}}.
POST sync[?replace=true]     Body {"sync": "<annotation name>"}: the annotation to follow.

GET  count/<label>/<index>   {"Label": L, "<index>": N}; N is 0 for a label without elements.
GET  counts/<index>          Request body: a JSON array of labels [L1, L2, ...]. Answer:
                             [{"Label": L1, "<index>": N1}, ...] in the same order.
GET  top/<N>/<index>         The N labels with the largest counts, largest first (ties: smaller
                             label first): [{"Label": L, "Size": N}, ...]; top/0 is [].
GET  threshold/<T>/<index>[?offset=k&n=m]
                             The labels with count >= T in the same order, starting at rank k
                             (0-based, default 0), at most m (default 10000):
                             [{"Label": L, "Size": N}, ...].
POST reload                  Rebuild every count at this version from the synced annotation's
                             label index (a full recount; AllSyn there counts every kind, as DVID's
                             reload does). Answers when done.

Errors: plain text "<message> (<path>)." with 400 for an unknown index type, a malformed label,
number or body, or a reload without a synced annotation; 404 for an unknown repo, version or
instance; 409 for a write at a committed version.
"""

# ---- index types and key codec ---------------------------------------------------------------

POSTSYN, PRESYN, GAP, NOTE, ALLSYN, VOXELS = 1, 2, 3, 4, 5, 6
INDEX_TYPES = {"PostSyn": POSTSYN, "PreSyn": PRESYN, "Gap": GAP, "Note": NOTE, "AllSyn": ALLSYN}
#: Annotation element kinds -> the index type counting them (AllSyn is added for synaptic kinds).
KIND_INDEX = {"PostSyn": POSTSYN, "PreSyn": PRESYN, "Gap": GAP, "Note": NOTE}
SYNAPTIC = frozenset({"PostSyn", "PreSyn", "Gap"})

COUNT_CLASS = 98
RANK_CLASS = 97
MAX_U32 = 0xFFFFFFFF
MAX_U64 = 2**64 - 1
_TL = struct.Struct(">BQ")
_TCL = struct.Struct(">BIQ")
_LE32 = struct.Struct("<I")


def count_tkey(index: int, label: int) -> bytes:
    return keys.tkey(COUNT_CLASS, _TL.pack(index, label))


def rank_tkey(index: int, count: int, label: int) -> bytes:
    return keys.tkey(RANK_CLASS, _TCL.pack(index, MAX_U32 - count, label))


def decode_rank_tkey(tk: bytes) -> tuple[int, int, int]:
    """``(index, count, label)`` of a class-97 tkey."""
    index, inv, label = _TCL.unpack_from(tk, 2)
    return index, MAX_U32 - inv, label


def parse_index(text: str) -> int:
    if text == "Voxels":
        raise BadRequest("labelsz index type Voxels is not implemented (as in DVID)")
    try:
        return INDEX_TYPES[text]
    except KeyError:
        names = ", ".join(INDEX_TYPES)
        raise BadRequest(f"unknown labelsz index type {text!r}: use one of {names}") from None


def index_name(index: int) -> str:
    return next(name for name, i in INDEX_TYPES.items() if i == index)


def _parse_u64(text: str, what: str) -> int:
    value = parse_decimal(text, signed=False)
    if value is None or value > MAX_U64:
        raise BadRequest(f"{what} must be an unsigned 64-bit integer, got {text[:100]!r}")
    return value


# ---- route parameters ----------------------------------------------------------------------

INDEX = Param("index", description="The index type", enum=tuple(INDEX_TYPES), example="PreSyn")
TOP_N = Param("n", "integer", "How many labels", minimum=0, maximum=MAX_U64, example="10")
THRESHOLD = Param("threshold", "integer", "Least count", minimum=0, maximum=MAX_U64, example="1")


# ---- settings --------------------------------------------------------------------------------


class LabelSzSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ROI: str = ""

    @field_validator("ROI")
    @classmethod
    def _spec(cls, value: str) -> str:
        if value and value.count(",") != 1:
            raise ValueError('ROI must be "<roi name>,<uuid>" (exactly one comma)')
        if value:
            raise ValueError("ROI-restricted labelsz counts are not supported yet")
        return value


# ---- the datatype ----------------------------------------------------------------------------


@register
class LabelSz(Datatype):
    """Counts of annotation elements per label, with a ranking index."""

    type_name = "labelsz"
    type_url = "github.com/janelia-flyem/dvid/datatype/labelsz"
    type_version = "0.1"
    help_text = HELP
    Settings = LabelSzSettings
    sync_requires = (sync.CountSource,)
    listens = (sync.CountListener,)
    routes = (
        Route("count", ("GET", "HEAD"), "handle_count", mutates=False,
              summary="A label's count of one index type", args=(LABEL, INDEX)),
        Route("counts", ("GET",), "handle_counts", mutates=False,
              summary="The counts of the labels the body lists ([L1, L2, ...])", args=(INDEX,),
              consumes=(JSON,)),
        Route("top", ("GET", "HEAD"), "handle_top", mutates=False,
              summary="The N labels with the largest counts", args=(TOP_N, INDEX)),
        Route("threshold", ("GET", "HEAD"), "handle_threshold", mutates=False,
              summary="The labels with at least T elements, by rank", args=(THRESHOLD, INDEX),
              query=(query("offset", "integer", "First rank (0-based)", minimum=0),
                     query("n", "integer", "Most labels answered (default 10000)", minimum=0))),
        Route("reload", ("POST",), "handle_reload", summary="Recount from the synced annotation",
              produces=()),
    )  # fmt: skip

    settings: LabelSzSettings

    def __init__(self, meta: InstanceMeta, *args: Any, **kwargs: Any) -> None:
        super().__init__(meta, *args, **kwargs)
        self.lock = threading.Lock()

    def extended_info(self) -> dict[str, Any]:
        return {"StaticROI": self.settings.ROI}

    def check_sync_target(self, target: Datatype) -> None:
        others = [u for u in self.meta.syncs if u != target.meta.data_uuid]
        if others:
            raise BadRequest(f"labelsz {self.name!r} already syncs with an annotation (use replace=true)")

    # ---- model: counts -----------------------------------------------------------------------
    def get_count(self, ctx: DataContext, index: int, label: int) -> int:
        value = ctx.get(count_tkey(index, label))
        return _LE32.unpack(value)[0] if value and len(value) == 4 else 0

    def ranked(self, ctx: DataContext, index: int, min_count: int = 0) -> Iterator[tuple[int, int]]:
        """``(label, count)`` with count >= ``min_count``, largest count first, ties by label."""
        lo = keys.tkey(RANK_CLASS, _TCL.pack(index, 0, 0))
        hi = keys.tkey(RANK_CLASS, _TCL.pack(index, MAX_U32 - max(0, min(min_count, MAX_U32)), MAX_U64))
        for tk, _ in ctx.range(lo, hi, keys_only=True):
            _, count, label = decode_rank_tkey(tk)
            yield label, count

    def top(self, ctx: DataContext, index: int, n: int) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        if n <= 0:
            return out
        for item in self.ranked(ctx, index):
            out.append(item)
            if len(out) >= n:
                break
        return out

    def threshold(self, ctx: DataContext, index: int, t: int, offset: int, n: int) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        if n <= 0:
            return out
        for i, item in enumerate(self.ranked(ctx, index, t)):
            if i < offset:
                continue
            out.append(item)
            if len(out) >= n:
                break
        return out

    @staticmethod
    def index_deltas(deltas: dict[tuple[str, int], int], *, allsyn_kinds: frozenset[str] = SYNAPTIC):
        """Per (index type, label) net changes of element-kind deltas; label 0 and unknown kinds are
        ignored; AllSyn gets the changes of ``allsyn_kinds``."""
        out: dict[tuple[int, int], int] = {}
        for (kind, label), d in deltas.items():
            if not d or label == 0:
                continue
            index = KIND_INDEX.get(kind)
            if index is not None:
                out[index, label] = out.get((index, label), 0) + d
            if kind in allsyn_kinds:
                out[ALLSYN, label] = out.get((ALLSYN, label), 0) + d
        return {k: v for k, v in out.items() if v}

    def _apply(self, ctx: DataContext, batch: VersionedBatch, changes: dict[tuple[int, int], int]) -> None:
        """Write the new counts and rank keys of ``changes`` (reading the current ones at ``ctx``)."""
        for (index, label), d in sorted(changes.items()):
            old = self.get_count(ctx, index, label)
            new = min(MAX_U32, max(0, old + d))
            if new == old:
                continue
            if old:
                batch.delete(rank_tkey(index, old, label))
            if new:
                batch.put(count_tkey(index, label), _LE32.pack(new))
                batch.put(rank_tkey(index, new, label), b"")
            else:
                batch.delete(count_tkey(index, label))

    def annotation_counts_changed(
        self, batch: VersionedBatch, ancestry: Ancestry, deltas: dict[tuple[str, int], int]
    ) -> None:
        """Sync hook called by an annotation inside its atomic write batch: ``deltas`` maps
        (element kind, label) to the signed change of the number of such elements."""
        changes = self.index_deltas(deltas)
        if not changes:
            return
        ctx = self.context_at(ancestry)
        with self.lock, sync.joined_batch(batch, ctx) as out:
            self._apply(ctx, out, changes)

    def synced_annotation(self) -> sync.CountSource:
        if self.repo_access is not None:
            for inst in self.repo_access.siblings():
                if inst.meta.data_uuid in self.meta.syncs and isinstance(inst, sync.CountSource):
                    return inst
        raise BadRequest(f"labelsz {self.name!r} is not synced to an annotation instance")

    def reload(self, ctx: DataContext, counts: dict[tuple[str, int], int]) -> int:
        """Replace every count at ``ctx``'s version by ``counts`` (full (kind, label) counts); AllSyn
        counts every kind, as DVID's reload. Returns how many (index, label) counts are stored."""
        every_kind = frozenset(k for k, _ in counts)
        target = self.index_deltas(counts, allsyn_kinds=every_kind)
        with self.lock:
            current: dict[bytes, bytes] = dict(
                ctx.range(keys.min_tkey(RANK_CLASS), keys.max_tkey(COUNT_CLASS))
            )
            wanted: dict[bytes, bytes] = {}
            for (index, label), n in target.items():
                n = min(MAX_U32, n)
                if n > 0:
                    wanted[count_tkey(index, label)] = _LE32.pack(n)
                    wanted[rank_tkey(index, n, label)] = b""
            with ctx.batch() as batch:
                for tk in current.keys() - wanted.keys():
                    batch.delete(tk)
                for tk, v in wanted.items():
                    if current.get(tk) != v:
                        batch.put(tk, v)
        return len(wanted) // 2

    # ---- handlers ----------------------------------------------------------------------------
    async def handle_count(self, req: InstanceRequest) -> web.StreamResponse:
        label = _parse_u64(req.arg(0, "a label"), "label")
        index = parse_index(req.arg(1, "an index type"))
        count = await req.small(self.get_count, req.ctx, index, label)
        return json_response({"Label": label, index_name(index): count})

    async def handle_counts(self, req: InstanceRequest) -> web.StreamResponse:
        index = parse_index(req.arg(0, "an index type"))
        labels = jsonio.loads(await req.body(), what="label list")
        if not isinstance(labels, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_U64 for v in labels
        ):
            raise BadRequest("counts needs a JSON array of unsigned integer labels in the request body")
        name = index_name(index)

        def run() -> list[dict[str, int]]:
            return [{"Label": label, name: self.get_count(req.ctx, index, label)} for label in labels]

        return json_response(await asyncio.to_thread(run))

    async def handle_top(self, req: InstanceRequest) -> web.StreamResponse:
        n = _parse_u64(req.arg(0, "a number of labels"), "N")
        index = parse_index(req.arg(1, "an index type"))
        found = await asyncio.to_thread(self.top, req.ctx, index, n)
        return json_response([{"Label": label, "Size": count} for label, count in found])

    async def handle_threshold(self, req: InstanceRequest) -> web.StreamResponse:
        t = _parse_u64(req.arg(0, "a threshold count"), "threshold")
        index = parse_index(req.arg(1, "an index type"))
        offset = req.query_int("offset", 0) or 0
        n = req.query_int("n", 10000)
        if offset < 0 or n is None or n < 0:
            raise BadRequest("offset and n must be non-negative integers")
        found = await asyncio.to_thread(self.threshold, req.ctx, index, t, offset, n)
        return json_response([{"Label": label, "Size": count} for label, count in found])

    async def handle_reload(self, req: InstanceRequest) -> web.StreamResponse:
        annotation = self.synced_annotation()
        actx = req.context_for(annotation)
        with self.job("reload", f"recounting the annotations by label at {req.uuid[:8]}"):
            counts = await asyncio.to_thread(annotation.label_kind_counts, actx)
            await asyncio.to_thread(self.reload, req.ctx, counts)
        return web.Response()
