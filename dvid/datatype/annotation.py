"""The ``annotation`` datatype: point annotations (synapses, notes) indexed by block, label and tag.

Wire-compatible with DVID's ``datatype/annotation`` (type version 0.1; spec
annotation-roi-keyvalue.md §3). Three denormalized keyspaces, all values raw compact JSON:

- class 72 ``48 01 <ZYX block>``: the elements (with relationships) whose Pos lies in the block —
  the source of truth;
- class 71 ``47 01 <u64 BE label>``: the ElementNRs of the elements whose voxel has that label in
  the synced label volume (label 0 is never indexed);
- class 70 ``46 01 <tag> 00``: the ElementNRs carrying that tag.

Every mutation updates the three in ONE atomic batch at the request's version. Label changes of the
synced ``labelblk`` (voxel writes, and labelvol merges, splits and area deletes, which rewrite the
labelblk's blocks) reach :meth:`Annotation.blocks_changed` inside the labelblk's own batch. Per-label
element counts changes are passed on, in the same batch, to the ``sync.CountListener`` instances syncing
from this one (labelsz); see dvid.datatype.common.sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np
from aiohttp import web

from dvid.dag.ancestry import Ancestry
from dvid.datatype.base import Datatype, InstanceMeta, Route
from dvid.datatype.common import elements as el
from dvid.datatype.common import jsonio, sync
from dvid.datatype.common.elements import Element, Pos
from dvid.datatype.common.geometry import Box, Point, parse_ints
from dvid.datatype.common.request import InstanceRequest, json_bytes_response, json_response
from dvid.datatype.common.route import (
    BODY_LABEL,
    JSON,
    OFFSET,
    POINT,
    SIZE3,
    THROTTLE_QUERY,
    Param,
    flag,
    query,
)
from dvid.datatype.common.streaming import stream_pieces
from dvid.datatype.common.sync import BlockChange, LabelSource
from dvid.datatype.registry import register
from dvid.errors import BadRequest, NotFound, PayloadTooLarge
from dvid.storage import keys
from dvid.storage.versioned import DataContext, VersionedBatch

HELP = """\
API for datatype "annotation"
=============================

Point annotations ("elements": synapse T-bars and PSDs, gap junctions, notes) at integer voxel
positions, each with a Kind, string Tags, string-valued properties and relationships to other
elements. Elements are indexed three ways, kept consistent in one atomic write per request and
versioned like all data (an edit at a version changes that version only):
  * by block (the source of truth): block size = the BlockSize of the synced label instance, else
    64x64x64 (set the sync BEFORE posting elements: block keys depend on it);
  * by label: the body label at each element's position in the synced labelblk, kept right through
    voxel writes, labelvol merges, splits and area deletes (label 0 is not indexed);
  * by tag.

Element JSON (field order as output; Prop keys sorted):
    {"Pos": [x, y, z], "Kind": "PreSyn", "Tags": ["tag1"], "Prop": {"key": "value"},
     "Rels": [{"Rel": "PreSynTo", "To": [x, y, z]}]}
    Pos      required, 3 integers (int32).
    Kind     Unknown (default), PostSyn, PreSyn, Gap or Note.
    Tags     array of non-empty strings (indexed; exact-match queries).
    Prop     object of string -> string (not indexed).
    Rels     array of {"Rel": UnknownRelationship | PostSynTo | PreSynTo | ConvergentTo | GroupedWith,
             "To": [x, y, z]}. Relationships are not made reciprocal: post both directions. A "To"
             with no element there is accepted (as DVID).
    Field names match case-insensitively; unknown fields are ignored. Absent Tags/Prop/Rels are
    written [] / {} / [] for new elements and null where DVID keeps the raw value (elements replacing
    one at the same Pos, POST blocks, label index entries).

Instance creation
-----------------

POST /api/repo/{uuid}/instance
    {"typename": "annotation", "dataname": "synapses", "Versioned": "true", "Tags": "k=v"}
    No type-specific settings.

Paths below are under /api/node/{uuid}/{data name}.

GET  help                     This text.
GET  info                     {"Base": {...}, "Extended": {}}.
GET  tags; POST tags[?replace=true]
                              The instance's string tags. Tag ScanAllForBlocks=true makes GET blocks
                              scan whole z slabs instead of block rows.
POST sync[?replace=true]      Body {"sync": "name1,name2"}: the label instance (labelblk or labelvol)
                              whose labels index the elements. A labelvol is resolved to the labelblk
                              it syncs from, which is then added to the syncs too (the labelblk's
                              block writes are what keep the label index right). Elements posted
                              before the sync are not label-indexed: POST reload afterwards.
                              replace=true replaces the syncs ("" clears them). 404 unknown instance,
                              400 another type.

POST elements[?kafkalog=off]  Body: JSON array of elements ([] is fine). An element at the Pos of an
                              existing one replaces it (Kind, Tags, Prop, Rels; tags it lost are
                              unindexed); otherwise it is added. Two elements with the same Pos in
                              one body: the last wins. Label of each element: the synced labelblk's
                              voxel at Pos. The whole body is validated first: any bad element (no or
                              bad Pos, unknown Kind or Rel, non-string Prop value, empty tag, bad
                              Rels) is a 400 naming it and nothing is written. kafkalog is ignored.
GET  elements/<size>/<offset> The elements (with Rels) whose Pos lies in the box (size nx_ny_nz,
                              offset x_y_z), blocks in z, y, x order, stored order within a block.
                              No elements: null (as DVID).
GET  blocks/<size>/<offset>   {"bx,by,bz": [elements as stored], ...} for every stored block in the
                              box's block range (no per-point filtering), in z, y, x order; blocks
                              emptied by deletes come as []; nothing: {}. Streamed.
POST blocks[?kafkalog=off]    Body {"bx,by,bz": [elements], ...}: each block's list is replaced as
                              given (stored as posted: absent Tags/Prop/Rels stay null; points are
                              not checked to lie in their block). Unlike DVID, which leaves the
                              indexes alone until a reload, the label and tag indexes follow in the
                              same atomic write. Elements are validated (400, nothing written).
GET  all-elements             As GET blocks over every block. Extra path segments: 400.
GET  scan[?keysOnly=true][&byCoord=true]
                              {"num kv pairs": blocks stored, "num empty blocks": blocks holding []
                              (0 with keysOnly)}.

GET  label/<label>[?relationships=true|verbose]
                              The elements whose position has <label>: ElementNRs (no Rels) by
                              default, [] if none. relationships=true: the full elements from their
                              blocks (with Rels). verbose: each element with "Rels" entries
                              {"Rel", "To", "Kind", "Tags", "Prop"} carrying the partner's Kind, Tags
                              and Prop (omitted when empty or the partner is missing). Label 0 or a
                              non-integer label: 400.
POST labels                   Body {"<label>": "<JSON array string>", ...}: each string is stored as
                              that label's index verbatim (label 0 skipped), as DVID, once it has
                              been checked to be a JSON array (or null) of elements (else a 400
                              and nothing is written).
GET  tag/<tag>[?relationships=true|verbose]
                              As label/, for the elements carrying <tag> (exact match). Unknown: [].

DELETE element/<x_y_z>[?kafkalog=off]
                              Removes the element at the point from its block, the label and tag
                              indexes, and drops relationships pointing at it from the elements of
                              its block and of the blocks of its own relationships' partners. 400 if
                              there is no element there.
POST move/<from x_y_z>/<to x_y_z>[?kafkalog=off]
                              Moves the element: its Pos, block, label index entry (the label at the
                              new position; Pos is rewritten even if the label does not change, unlike
                              DVID) and tag entries, and relationships pointing at it in its old and
                              new block and its partners' blocks. 400 if there is no element at
                              <from>, or there already is one at <to>.
POST reload[?check=true][&inmemory=false]
                              Rebuilds the label and tag indexes from the blocks at this version (for
                              elements posted before a sync, or after POST blocks/labels), moving
                              elements found in the wrong block for the current block size. Only keys
                              that differ are written, stale ones are deleted; counts listeners get
                              the differences. Done when the reply comes (unlike DVID, which answers
                              first); other POSTs to the instance get a 400 meanwhile. The options
                              are accepted and ignored.

GET  roi/<name>[,<uuid>]      Every element (with Rels) stored in the blocks covered by the roi
                              instance <name> (read at this version, or at <uuid>), in span order;
                              null if none. The roi's BlockSize must equal this instance's block
                              size (400 otherwise); an unknown roi or a spec with more than one
                              comma: 400.

Not implemented: the RPC delete-all, Kafka logging.

Errors: plain text "<message> (<path>)."; 400 bad input (nothing is written), 404 unknown instance,
405 a method an endpoint does not take, 409 a write to a committed version, 413 a response above the
server's in-memory limit.
"""

KAFKALOG = query("kafkalog", description="Accepted and ignored (no Kafka logging)")
RELATIONSHIPS = query(
    "relationships",
    description="true: the full elements with Rels; verbose: Rels carry the partners' Kind, Tags and Prop",
    enum=("true", "false", "on", "off", "1", "0", "verbose"),
)

MOVE_FROM = replace(POINT, name="from", description="The element's voxel x_y_z", example="40_5_5")
MOVE_TO = replace(POINT, name="to", description="Where it goes, x_y_z", example="41_6_6")

BLOCK_CLASS = 72
LABEL_CLASS = 71
TAG_CLASS = 70
DEFAULT_BLOCK_SIZE: Point = (64, 64, 64)
MAX_LABEL = 2**64 - 1
MAX_ROWS = 4096  # block rows above which a box read scans whole z slabs instead
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1
_BLOCK_TK_LEN = 14


# ---- cyclic GC pauses ------------------------------------------------------------------------

_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False
_gc_paused_since = 0.0
_GC_MAX_PAUSE_S = 5.0


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic GC off while a request decodes and indexes 10,000s of elements.

    Every container of the parsed body stays alive to the end of the request, so each young
    collection would traverse them again and each full one the whole heap (about a third of a big
    POST's CPU time); reference counting frees it all anyway. Process-wide, so counted: the GC is
    back on (if it was) when the last pauser leaves, and pauses that overlap for longer than
    ``_GC_MAX_PAUSE_S`` run a young collection so garbage cycles cannot pile up.
    """
    global _gc_pausers, _gc_was_enabled, _gc_paused_since
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            _gc_paused_since = time.monotonic()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0:
                if _gc_was_enabled:
                    gc.enable()
            elif _gc_was_enabled and time.monotonic() - _gc_paused_since > _GC_MAX_PAUSE_S:
                _gc_paused_since = time.monotonic()
                gc.collect(1)


# ---- key codec -------------------------------------------------------------------------------


def block_tkey(bx: int, by: int, bz: int) -> bytes:
    return keys.tkey(BLOCK_CLASS, keys.zyx_bytes(bx, by, bz))


def block_of_tkey(tk: bytes) -> Point:
    return keys.zyx_from_bytes(tk, 2)


def label_tkey(label: int) -> bytes:
    return keys.tkey(LABEL_CLASS, struct.pack(">Q", label))


def tag_tkey(tag: str) -> bytes:
    return keys.tkey(TAG_CLASS, tag.encode("utf-8") + b"\x00")


def _block_of(pos: Pos | list[int], bs: Point) -> Point:
    return (pos[0] // bs[0], pos[1] // bs[1], pos[2] // bs[2])


def parse_label(text: str) -> int:
    try:
        label = int(text)
    except ValueError:
        raise BadRequest(f"label must be a decimal unsigned 64-bit integer, got {text!r}") from None
    if not 0 <= label <= MAX_LABEL:
        raise BadRequest(f"label must be a decimal unsigned 64-bit integer, got {text!r}")
    if label == 0:
        raise BadRequest("Label 0 is protected background value and cannot be used for query.")
    return label


def _loads(body: bytes, what: str = "request body") -> Any:
    """JSON of a request body: 400 (never a 500) for malformed, too deeply nested or non-Unicode text."""
    return jsonio.loads(body, what=what)


def _loads_object(body: bytes) -> dict[str, Any]:
    obj = _loads(body)
    if not isinstance(obj, dict):
        raise BadRequest(f"Malformed JSON request body: expected an object, got {type(obj).__name__}")
    return obj


def _check_index_value(label: int, value: str) -> None:
    """A label index value of POST labels must be what readers of the index can decode: a JSON array
    (or null) of elements (Rels, if any, are ignored)."""
    what = f"label {label} value"
    raw = value.encode()
    try:
        items = json.loads(raw) if value.strip() else None
    except (ValueError, RecursionError):
        raise BadRequest(f"{what} must be a string holding a JSON array of elements") from None
    if items is not None and not isinstance(items, list):
        raise BadRequest(f"{what} must be a string holding a JSON array of elements")
    jsonio.check_unicode(value, items, what)
    el.parse_stored(items or [], f"{what} element", with_rels=False)


def _point(text: str, what: str) -> Pos:
    return parse_ints(text, 3, what)  # type: ignore[return-value]


# ---- one request's edit of the three indexes -------------------------------------------------


class _ListEdit:
    """Pending changes to one index key's element list: removals, renames, replace-or-appends."""

    __slots__ = ("append", "put", "remove", "rename")

    def __init__(self) -> None:
        self.remove: set[Pos] = set()
        self.put: dict[Pos, Element] = {}
        self.rename: dict[Pos, list[int]] = {}
        self.append: list[bytes] = []  # JSON of entries of elements new to the instance: no lookup

    def only_appends(self) -> bool:
        return not (self.remove or self.put or self.rename)

    def apply(self, items: list[Element]) -> list[Element]:
        out = []
        for e in items:
            p = el.pos_of(e)
            if p in self.remove:
                continue
            if p in self.rename:
                e = {**e, "Pos": self.rename[p]}
                p = el.pos_of(e)
            out.append(e)
        if self.put:
            where = {el.pos_of(e): i for i, e in enumerate(out)}
            for p, e in self.put.items():
                i = where.get(p)
                if i is None:
                    where[p] = len(out)
                    out.append(e)
                else:
                    out[i] = e
        if self.append:
            out.extend(el.loads_list(b"[" + b",".join(self.append) + b"]", "appended entries"))
        return out


class IndexEdit:
    """The changes of one mutation to blocks, label and tag lists, written in one batch.

    Blocks are loaded on first use and edited in place (``touch`` marks them for writing); label and
    tag lists are read and rewritten once each at :meth:`write`.
    """

    def __init__(self, ctx: DataContext) -> None:
        self.ctx = ctx
        self.blocks: dict[Point, list[Element]] = {}
        self.dirty: set[Point] = set()
        self.labels: dict[int, _ListEdit] = {}
        self.tags: dict[str, _ListEdit] = {}
        self.deltas: Counter[tuple[str, int]] = Counter()
        self.spliced: dict[Point, bytes] = {}  # block values written as given (appends to raw JSON)

    def load(self, coords: list[Point]) -> None:
        todo = [c for c in coords if c not in self.blocks]
        values = read_blocks(self.ctx, todo)
        for c in todo:
            self.blocks[c] = el.loads_list(values.get(c), f"block {c}")

    def block(self, coord: Point) -> list[Element]:
        if coord not in self.blocks:
            self.load([coord])
        return self.blocks[coord]

    def touch(self, coord: Point) -> None:
        self.dirty.add(coord)

    def _label(self, label: int) -> _ListEdit:
        edit = self.labels.get(label)
        if edit is None:
            edit = self.labels[label] = _ListEdit()
        return edit

    def _tag(self, tag: str) -> _ListEdit:
        edit = self.tags.get(tag)
        if edit is None:
            edit = self.tags[tag] = _ListEdit()
        return edit

    def label_add_new(self, label: int, nr_jsons: list[bytes]) -> None:
        """Appends the JSON of the ElementNRs of elements new to the instance (no lookup needed)."""
        self._label(label).append.extend(nr_jsons)

    def tag_add_new(self, tag: str, nr_jsons: list[bytes]) -> None:
        self._tag(tag).append.extend(nr_jsons)

    def label_put(self, label: int, nr: Element) -> None:
        self._label(label).put[el.pos_of(nr)] = nr

    def label_del(self, label: int, pos: Pos) -> None:
        e = self._label(label)
        e.put.pop(pos, None)
        e.remove.add(pos)

    def label_rename(self, label: int, old: Pos, new: list[int]) -> None:
        self._label(label).rename[old] = new

    def tag_put(self, tag: str, nr: Element) -> None:
        self._tag(tag).put[el.pos_of(nr)] = nr

    def tag_del(self, tag: str, pos: Pos) -> None:
        e = self._tag(tag)
        e.put.pop(pos, None)
        e.remove.add(pos)

    def tag_rename(self, tag: str, old: Pos, new: list[int]) -> None:
        self._tag(tag).rename[old] = new

    def write(self, batch: VersionedBatch) -> None:
        for coord in sorted(self.dirty, key=lambda c: (c[2], c[1], c[0])):
            batch.put(block_tkey(*coord), el.dumps(self.blocks[coord]))
        for coord, spliced in self.spliced.items():
            batch.put(block_tkey(*coord), spliced)
        self._write_index(batch, {label_tkey(k): (k, e) for k, e in self.labels.items()})
        self._write_index(batch, {tag_tkey(k): (k, e) for k, e in self.tags.items()})

    def _write_index(self, batch: VersionedBatch, edits: dict[bytes, tuple[int | str, Any]]) -> None:
        """Write the edited label or tag index keys (``tkey: (label or tag, its edit)``)."""
        if not edits:
            return
        tks = list(edits)
        for tk, value in zip(tks, self.ctx.get_many(tks), strict=True):
            k, edit = edits[tk]
            if edit.only_appends():
                batch.put(tk, _spliced(value, edit.append))
            else:
                batch.put(tk, el.dumps(edit.apply(el.loads_list(value, f"index {k!r}"))))

    def nonzero_deltas(self) -> dict[tuple[str, int], int]:
        return {k: v for k, v in self.deltas.items() if v}


def _spliced(value: bytes | None, new: list[bytes]) -> bytes:
    """A stored JSON array with the JSON items ``new`` appended, without decoding what is stored."""
    head = value.rstrip() if value else b""
    items = b",".join(new)
    if head in (b"", b"[]", b"null"):
        return b"[" + items + b"]"
    if not head.endswith(b"]"):
        return el.dumps(el.loads_list(value, "list") + el.loads_list(b"[" + items + b"]", "list"))
    return head[:-1] + b"," + items + b"]"


def read_blocks(ctx: DataContext, coords: list[Point]) -> dict[Point, bytes]:
    """The stored values of the blocks ``coords`` (absent ones left out): one range scan per block
    row where the wanted blocks are dense in it, single reads otherwise."""
    rows: dict[tuple[int, int], list[int]] = {}
    for x, y, z in coords:
        rows.setdefault((y, z), []).append(x)
    out: dict[Point, bytes] = {}
    for (by, bz), xs in rows.items():
        lo, hi = min(xs), max(xs)
        if len(xs) == 1 or hi - lo + 1 > 2 * len(xs) + 8:
            for bx in xs:
                value = ctx.get(block_tkey(bx, by, bz))
                if value is not None:
                    out[(bx, by, bz)] = value
            continue
        wanted = set(xs)
        for tk, value in ctx.range(block_tkey(lo, by, bz), block_tkey(hi, by, bz)):
            if len(tk) == _BLOCK_TK_LEN:
                c = block_of_tkey(tk)
                if c[0] in wanted:
                    out[c] = value
    return out


def _normalized(items: list[Any]) -> list[tuple]:
    """An index list compared as DVID's reload check does: order, tag order and null vs empty aside."""
    out = []
    for e in items:
        if not isinstance(e, dict):
            return [("?", repr(items))]
        out.append(
            (
                tuple(e.get("Pos") or ()),
                e.get("Kind") or "Unknown",
                tuple(sorted(e.get("Tags") or ())),
                tuple(sorted((e.get("Prop") or {}).items())),
            )
        )
    return sorted(out)


def _strip_rels(items: list[Element], target: list[int]) -> bool:
    """Drop relationships pointing at ``target`` from the elements; True if any was dropped."""
    changed = False
    for e in items:
        rels = e.get("Rels")
        if rels and any(r["To"] == target for r in rels):
            e["Rels"] = [r for r in rels if r["To"] != target]
            changed = True
    return changed


def _retarget_rels(items: list[Element], old: list[int], new: list[int]) -> bool:
    changed = False
    for e in items:
        for r in e.get("Rels") or ():
            if r["To"] == old:
                r["To"] = list(new)
                changed = True
    return changed


@register
class Annotation(Datatype):
    type_name = "annotation"
    type_url = "github.com/janelia-flyem/dvid/datatype/annotation"
    type_version = "0.1"
    help_text = HELP
    sync_requires = (sync.LabelProvider,)
    listens = (sync.BlockListener,)
    routes = (
        Route("elements", ("GET",), "handle_get_elements", mutates=False, heavy=True,
              summary="The elements in a box (null if none)", args=(SIZE3, OFFSET), query=(THROTTLE_QUERY,),
              statuses=(413,)),
        Route("elements", ("POST",), "handle_post_elements",
              summary="Add or replace elements (JSON array)", query=(KAFKALOG,), consumes=(JSON,),
              produces=()),
        Route("blocks", ("GET",), "handle_get_blocks", mutates=False, heavy=True,
              summary="The stored elements of every block in the box's block range", args=(SIZE3, OFFSET),
              query=(THROTTLE_QUERY,)),
        Route("blocks", ("POST",), "handle_post_blocks",
              summary="Replace the elements of blocks ({\"bx,by,bz\": [elements]})", query=(KAFKALOG,),
              consumes=(JSON,), produces=()),
        Route("all-elements", ("GET",), "handle_all_elements", mutates=False, heavy=True,
              summary="As blocks, over every block", query=(THROTTLE_QUERY,)),
        Route("scan", ("GET",), "handle_scan", mutates=False, heavy=True,
              summary="How many blocks are stored (and empty)",
              query=(flag("keysOnly", "Count keys only"), flag("byCoord", "Accepted and ignored"),
                     THROTTLE_QUERY)),
        Route("label", ("GET",), "handle_label", mutates=False,
              summary="The elements at voxels of the label", args=(BODY_LABEL,), query=(RELATIONSHIPS,)),
        Route("labels", ("POST",), "handle_post_labels",
              summary="Store label index entries verbatim ({\"label\": \"[elements]\"})",
              consumes=(JSON,), produces=()),
        Route("tag", ("GET",), "handle_tag", mutates=False, summary="The elements carrying a tag",
              args=(Param("tag", description="A tag (exact match)", example="t1"),), query=(RELATIONSHIPS,)),
        Route("roi", ("GET",), "handle_roi", mutates=False, heavy=True,
              summary="The elements in the blocks of a roi instance",
              args=(Param("roi", description="A roi instance's name, optionally ,<uuid> to read it there"),),
              query=(THROTTLE_QUERY,), statuses=(413,)),
        Route("element", ("DELETE",), "handle_delete_element", summary="Delete the element at a point",
              args=(POINT,), query=(KAFKALOG,), produces=()),
        Route("move", ("POST",), "handle_move", summary="Move the element at a point to another",
              args=(MOVE_FROM, MOVE_TO), query=(KAFKALOG,), produces=()),
        Route("reload", ("POST",), "handle_reload", heavy=True,
              summary="Rebuild the label and tag indexes from the blocks",
              query=(flag("check", "Accepted and ignored"), flag("inmemory", "Accepted and ignored"),
                     THROTTLE_QUERY)),
    )  # fmt: skip

    def __init__(self, meta: InstanceMeta, *args: Any, **kwargs: Any) -> None:
        super().__init__(meta, *args, **kwargs)
        self._lock = threading.Lock()
        self._bulk = False

    # ---- syncs and the label source ----------------------------------------------------------
    def _synced(self) -> list[Datatype]:
        if self.repo_access is None or not self.meta.syncs:
            return []
        by_uuid = {s.meta.data_uuid: s for s in self.repo_access.siblings()}
        return [by_uuid[u] for u in self.meta.syncs if u in by_uuid]

    def label_source(self) -> LabelSource | None:
        """The labelblk whose voxels give the elements' labels: that of the first synced instance
        that leads to one (a labelblk, or a labelvol's labelblk); None if not synced to labels."""
        for inst in self._synced():
            if isinstance(inst, sync.LabelProvider):
                src = inst.label_source()
                if src is not None:
                    return src
        return None

    def block_size(self) -> Point:
        """Block size of the block index: the synced label instance's, else 64^3."""
        src = self.label_source()
        return tuple(src.block_size) if src is not None else DEFAULT_BLOCK_SIZE  # type: ignore[return-value]

    async def handle_post_sync(self, req: InstanceRequest) -> web.StreamResponse:
        resp = await super().handle_post_sync(req)
        # the label source behind a synced labelvol joins the syncs: its block writes carry every
        # label change, labelvol's edits included
        extra = []
        for inst in self._synced():
            if isinstance(inst, sync.LabelProvider):
                src = inst.label_source()
                uuid = src.meta.data_uuid if src is not None else None
                if uuid is not None and uuid not in self.meta.syncs and uuid not in extra:
                    extra.append(uuid)
        if extra:
            self.meta.syncs = [*self.meta.syncs, *extra]
            self.save()
        return resp

    def _notify(self, batch: VersionedBatch, ancestry: Ancestry, deltas: dict[tuple[str, int], int]) -> None:
        if not deltas:
            return
        for listener in sync.count_listeners(self):
            listener.annotation_counts_changed(batch, ancestry, deltas)

    @contextlib.contextmanager
    def _mutation(self, src: LabelSource | None) -> Iterator[None]:
        """Serialize a mutation with label writes (the label source's write lock) and with other
        mutations of this instance (lock order: label source, then this instance)."""
        outer = src.write_lock if src is not None else contextlib.nullcontext()
        with outer, self._lock:
            yield

    def _labels_at(
        self, src: LabelSource | None, ancestry: Ancestry, points: list[list[int]] | np.ndarray
    ) -> np.ndarray:
        pts = np.asarray(points, dtype=np.int64).reshape(-1, 3)
        if src is None:
            return np.zeros(len(pts), dtype=np.uint64)
        return src.labels_at(src.context_at(ancestry), pts)

    def _commit(self, ctx: DataContext, ancestry: Ancestry, edit: IndexEdit) -> None:
        with ctx.batch() as batch:
            edit.write(batch)
            self._notify(batch, ancestry, edit.nonzero_deltas())

    # ---- model: writes -----------------------------------------------------------------------
    def post_elements(self, ctx: DataContext, ancestry: Ancestry, elements: list[Element]) -> None:
        """Add or replace elements (validated, canonical form), updating all indexes in one batch."""
        if not elements:
            return
        src = self.label_source()
        bs = self.block_size()
        pos_list = [e["Pos"] for e in elements]
        positions = np.array(pos_list, dtype=np.int64).reshape(-1, 3)
        coords = list(map(tuple, (positions // np.array(bs, dtype=np.int64)).tolist()))
        # how each Pos appears in stored compact JSON: only ever as an element's Pos (inside strings
        # quotes are escaped, Prop values are strings, relationships have "To")
        pos_json = [b'"Pos":[%d,%d,%d]' % (p[0], p[1], p[2]) for p in pos_list]
        distinct = len(set(pos_json)) == len(pos_json)
        with self._mutation(src):
            labels = self._labels_at(src, ancestry, positions).tolist()
            edit = IndexEdit(ctx)
            deltas = edit.deltas
            indexed = src is not None
            groups: dict[Point, list[int]] = {}
            for i, c in enumerate(coords):
                g = groups.get(c)
                if g is None:
                    groups[c] = [i]
                else:
                    g.append(i)
            raws = read_blocks(ctx, list(groups))
            fresh: list[tuple[Point, list[int]]] = []
            touched: list[tuple[Point, list[int]]] = []
            for coord, idxs in groups.items():
                raw = raws.get(coord)
                ps = [pos_json[i] for i in idxs] if raw or not distinct else ()
                if (distinct or len(set(ps)) == len(ps)) and not (raw and any(map(raw.__contains__, ps))):
                    fresh.append((coord, idxs))
                else:
                    touched.append((coord, idxs))
            # blocks getting only new positions: the elements' JSON (one encoder call for all) is
            # appended to the stored bytes, and their ElementNRs' to the label and tag lists, grouped
            # per key; nothing stored is decoded
            order = [i for _, idxs in fresh for i in idxs]
            encoded = el.dumps_filled([elements[i] for i in order])
            fulls = [full for full, _ in encoded]
            start = 0
            for coord, idxs in fresh:
                edit.spliced[coord] = _spliced(raws.get(coord), fulls[start : start + len(idxs)])
                start += len(idxs)
            by_tag: dict[str, list[bytes]] = {}
            by_label: dict[int, list[bytes]] = {}
            for i, (_, nr_json) in zip(order, encoded, strict=True):
                e = elements[i]
                tags = e["Tags"]
                if tags:
                    for tag in tags:
                        lst = by_tag.get(tag)
                        if lst is None:
                            by_tag[tag] = [nr_json]
                        else:
                            lst.append(nr_json)
                label = labels[i]
                if label and indexed:
                    if tags is None or e["Prop"] is None:  # the label index keeps the nulls
                        nr_json = el.dumps(el.no_rels(e))
                    lst = by_label.get(label)
                    if lst is None:
                        by_label[label] = [nr_json]
                    else:
                        lst.append(nr_json)
            for tag, items in by_tag.items():
                edit.tag_add_new(tag, items)
            for label, items in by_label.items():
                edit.label_add_new(label, items)
            deltas.update((elements[i]["Kind"], labels[i]) for i in order)
            for coord, idxs in touched:
                raw = raws.get(coord)
                blk = edit.blocks[coord] = el.loads_list(raw, f"block {coord}")
                index: dict[Pos, int] = {}
                for i, old in enumerate(blk):
                    index.setdefault(el.pos_of(old), i)
                for i in idxs:
                    e, label = elements[i], labels[i]
                    p = el.pos_of(e)
                    j = index.get(p)
                    if j is None:
                        index[p] = len(blk)
                        blk.append(el.filled(e))
                    else:
                        old = blk[j]
                        blk[j] = e
                        for tag in set(old.get("Tags") or ()) - set(e["Tags"] or ()):
                            edit.tag_del(tag, p)
                        deltas[(old.get("Kind", "Unknown"), label)] -= 1
                    if e["Tags"]:
                        nr = el.no_rels(el.filled(e))
                        for tag in e["Tags"]:
                            edit.tag_put(tag, nr)
                    if label and indexed:
                        edit.label_put(label, el.no_rels(e))
                    deltas[(e["Kind"], label)] += 1
                edit.touch(coord)
            self._commit(ctx, ancestry, edit)

    def post_blocks(self, ctx: DataContext, ancestry: Ancestry, blocks: dict[Point, list[Element]]) -> None:
        """Replace block lists as given (elements validated, stored without DVID's copy, so absent
        fields stay null). Unlike DVID, the label and tag indexes and counts follow in the same batch
        (the elements the blocks held are unindexed, the new ones indexed), so no reload is needed."""
        src = self.label_source()
        with self._mutation(src):
            edit = IndexEdit(ctx)
            edit.load(list(blocks))
            old_all = [e for c in blocks for e in edit.blocks[c]]
            new_all = [e for items in blocks.values() for e in items]
            labels = self._labels_at(src, ancestry, [e["Pos"] for e in old_all + new_all]).tolist()
            n_old = len(old_all)
            for i, (e, label) in enumerate(zip(old_all + new_all, labels, strict=True)):
                p = el.pos_of(e)
                kind = e.get("Kind", "Unknown")
                if i < n_old:
                    for tag in e.get("Tags") or ():
                        edit.tag_del(tag, p)
                    if label and src is not None:
                        edit.label_del(label, p)
                    edit.deltas[(kind, label)] -= 1
                else:
                    if e["Tags"]:
                        nr = el.no_rels(el.filled(e))
                        for tag in e["Tags"]:
                            edit.tag_put(tag, nr)
                    if label and src is not None:
                        edit.label_put(label, el.no_rels(e))
                    edit.deltas[(kind, label)] += 1
            for coord, items in blocks.items():
                edit.blocks[coord] = items
                edit.touch(coord)
            self._commit(ctx, ancestry, edit)

    def post_labels(self, ctx: DataContext, values: dict[int, bytes]) -> None:
        with self._lock, ctx.batch() as batch:
            for label, value in values.items():
                batch.put(label_tkey(label), value)

    def delete_element(self, ctx: DataContext, ancestry: Ancestry, pos: Pos) -> None:
        src = self.label_source()
        bs = self.block_size()
        target = list(pos)
        with self._mutation(src):
            edit = IndexEdit(ctx)
            coord = _block_of(pos, bs)
            blk = edit.block(coord)
            i = next((i for i, e in enumerate(blk) if e["Pos"] == target), None)
            if i is None:
                raise BadRequest(f"Did not find element {list(pos)} in datastore")
            gone = blk.pop(i)
            _strip_rels(blk, target)
            edit.touch(coord)
            for r in gone.get("Rels") or ():
                other = _block_of(r["To"], bs)
                if other != coord and _strip_rels(edit.block(other), target):
                    edit.touch(other)
            label = int(self._labels_at(src, ancestry, [target])[0])
            if label and src is not None:
                edit.label_del(label, pos)
            for tag in gone.get("Tags") or ():
                edit.tag_del(tag, pos)
            edit.deltas[(gone.get("Kind", "Unknown"), label)] -= 1
            self._commit(ctx, ancestry, edit)

    def move_element(self, ctx: DataContext, ancestry: Ancestry, frm: Pos, to: Pos) -> None:
        src = self.label_source()
        bs = self.block_size()
        old_p, new_p = list(frm), list(to)
        with self._mutation(src):
            edit = IndexEdit(ctx)
            fc, tc = _block_of(frm, bs), _block_of(to, bs)
            edit.load(list(dict.fromkeys([fc, tc])))
            fblk = edit.blocks[fc]
            i = next((i for i, e in enumerate(fblk) if e["Pos"] == old_p), None)
            if i is None:
                raise BadRequest(f"Did not find moved element {old_p} in datastore")
            if frm == to:
                return
            tblk = edit.blocks[tc]
            if any(e["Pos"] == new_p for e in tblk):
                raise BadRequest(f"cannot move element {old_p} to {new_p}: an element is already there")
            e = fblk[i]
            e["Pos"] = list(new_p)
            _retarget_rels(fblk, old_p, new_p)
            edit.touch(fc)
            if tc != fc:
                fblk.pop(i)
                _retarget_rels(tblk, old_p, new_p)
                tblk.append(e)
                edit.touch(tc)
            for r in e.get("Rels") or ():
                other = _block_of(r["To"], bs)
                if other not in (fc, tc) and _retarget_rels(edit.block(other), old_p, new_p):
                    edit.touch(other)
            lf, lt = (int(v) for v in self._labels_at(src, ancestry, [old_p, new_p]))
            if src is not None:
                if lf == lt:
                    if lf:
                        edit.label_rename(lf, frm, new_p)
                else:
                    if lf:
                        edit.label_del(lf, frm)
                    if lt:
                        edit.label_put(lt, el.no_rels(e))
            kind = e.get("Kind", "Unknown")
            edit.deltas[(kind, lf)] -= 1
            edit.deltas[(kind, lt)] += 1
            for tag in e.get("Tags") or ():
                edit.tag_rename(tag, frm, new_p)
            self._commit(ctx, ancestry, edit)

    # ---- sync: label changes of the synced labelblk ------------------------------------------
    def blocks_changed(
        self,
        batch: VersionedBatch,
        ancestry: Ancestry,
        written: list[BlockChange],
        decode: Callable[[bytes], np.ndarray],
    ) -> None:
        """Move the elements of relabelled voxels between label index keys (called by the labelblk
        under its write lock, inside its batch, for voxel writes and labelvol edits alike)."""
        ctx = self.context_at(ancestry)
        bs = np.array(self.block_size(), dtype=np.int64)
        with self._lock, sync.joined_batch(batch, ctx) as out:
            edit = IndexEdit(ctx)
            for coord, old, new in written:
                if old == new:
                    continue
                new_block = decode(new)
                lbs = np.array(new_block.shape[::-1], dtype=np.int64)
                lo = np.array(coord, dtype=np.int64) * lbs
                hi = lo + lbs
                a0, a1 = lo // bs, (hi - 1) // bs
                acoords = [
                    (x, y, z)
                    for z in range(a0[2], a1[2] + 1)
                    for y in range(a0[1], a1[1] + 1)
                    for x in range(a0[0], a1[0] + 1)
                ]
                edit.load(acoords)
                inside = [
                    e
                    for c in acoords
                    for e in edit.blocks[c]
                    if lo[0] <= e["Pos"][0] < hi[0]
                    and lo[1] <= e["Pos"][1] < hi[1]
                    and lo[2] <= e["Pos"][2] < hi[2]
                ]
                if not inside:
                    continue
                local = np.array([e["Pos"] for e in inside], dtype=np.int64) - lo
                after = new_block[local[:, 2], local[:, 1], local[:, 0]].tolist()
                if old is None:
                    before = [0] * len(inside)
                else:
                    before = decode(old)[local[:, 2], local[:, 1], local[:, 0]].tolist()
                for e, lb, la in zip(inside, before, after, strict=True):
                    if lb == la:
                        continue
                    p = el.pos_of(e)
                    if lb:
                        edit.label_del(lb, p)
                    if la:
                        edit.label_put(la, el.no_rels(e))
                    kind = e.get("Kind", "Unknown")
                    edit.deltas[(kind, lb)] -= 1
                    edit.deltas[(kind, la)] += 1
            if edit.labels:
                edit.write(out)
                self._notify(out, ancestry, edit.nonzero_deltas())

    # ---- reload ------------------------------------------------------------------------------
    def reload(self, ctx: DataContext, ancestry: Ancestry) -> dict[str, int]:
        """Rebuild the label and tag indexes (and misplaced block entries) from the blocks."""
        src = self.label_source()
        bs = self.block_size()
        if self._bulk:
            raise BadRequest(
                f'cannot run POST commands while "{self.name}" instance is undergoing bulk update'
            )
        self._bulk = True
        try:
            with self._mutation(src):
                old_counts = self.label_kind_counts(ctx)
                original: dict[Point, list[Element]] = {}
                placed: dict[Point, list[Element]] = {}
                for tk, value in ctx.range(keys.min_tkey(BLOCK_CLASS), keys.max_tkey(BLOCK_CLASS)):
                    if len(tk) != _BLOCK_TK_LEN:
                        continue
                    coord = block_of_tkey(tk)
                    original[coord] = el.loads_list(value, f"block {coord}")
                    placed.setdefault(coord, [])
                    for e in original[coord]:
                        placed.setdefault(_block_of(e["Pos"], bs), []).append(e)
                with ctx.batch() as batch:
                    moved = 0
                    for coord, block_items in placed.items():
                        if block_items != original.get(coord):
                            batch.put(block_tkey(*coord), el.dumps(block_items))
                            moved += 1
                    everything = [e for block_items in placed.values() for e in block_items]
                    labels = self._labels_at(src, ancestry, [e["Pos"] for e in everything]).tolist()
                    by_label: dict[int, list[Element]] = {}
                    by_tag: dict[str, list[Element]] = {}
                    new_counts: Counter[tuple[str, int]] = Counter()
                    for e, label in zip(everything, labels, strict=True):
                        new_counts[(e.get("Kind", "Unknown"), label)] += 1
                        if label and src is not None:
                            by_label.setdefault(label, []).append(el.no_rels(e))
                        if e.get("Tags"):
                            nr = el.no_rels(el.filled(e))
                            for tag in e["Tags"]:
                                by_tag.setdefault(tag, []).append(nr)
                    rewritten = 0
                    for cls, wanted in (
                        (LABEL_CLASS, {label_tkey(k): v for k, v in by_label.items()}),
                        (TAG_CLASS, {tag_tkey(k): v for k, v in by_tag.items()}),
                    ):
                        for tk, value in ctx.range(keys.min_tkey(cls), keys.max_tkey(cls)):
                            items = wanted.pop(tk) if tk in wanted else None
                            if items is None:
                                batch.delete(tk)
                                rewritten += 1
                            elif _normalized(items) != _normalized(el.loads_list(value, "index")):
                                batch.put(tk, el.dumps(items))
                                rewritten += 1
                        for tk, items in wanted.items():
                            batch.put(tk, el.dumps(items))
                            rewritten += 1
                    deltas = Counter(new_counts)
                    deltas.subtract(old_counts)
                    self._notify(batch, ancestry, {k: v for k, v in deltas.items() if v})
        finally:
            self._bulk = False
        return {"elements": len(everything), "blocks moved": moved, "index keys written": rewritten}

    # ---- model: reads ------------------------------------------------------------------------
    def label_kind_counts(self, ctx: DataContext) -> dict[tuple[str, int], int]:
        """The number of elements of each (Kind, label) at a version, label 0 (not indexed, or no
        label source) included: per-kind totals from the blocks minus the labelled ones."""
        totals: Counter[str] = Counter()
        for tk, value in ctx.range(keys.min_tkey(BLOCK_CLASS), keys.max_tkey(BLOCK_CLASS)):
            if len(tk) == _BLOCK_TK_LEN:
                totals.update(e.get("Kind", "Unknown") for e in el.loads_list(value, "block"))
        counts: Counter[tuple[str, int]] = Counter()
        for tk, value in ctx.range(keys.min_tkey(LABEL_CLASS), keys.max_tkey(LABEL_CLASS)):
            if len(tk) != 10:
                continue
            label = struct.unpack_from(">Q", tk, 2)[0]
            for e in el.loads_list(value, f"label {label}"):
                kind = e.get("Kind", "Unknown") if isinstance(e, dict) else "Unknown"
                counts[(kind, label)] += 1
        labelled: Counter[str] = Counter()
        for (kind, _), n in counts.items():
            labelled[kind] += n
        for kind, n in totals.items():
            if n > labelled[kind]:
                counts[(kind, 0)] = n - labelled[kind]
        return {k: v for k, v in counts.items() if v}

    def iter_blocks(
        self, ctx: DataContext, first: Point, last: Point, *, scan_all: bool = False
    ) -> Iterator[tuple[Point, bytes]]:
        """Stored ``(block coord, value)`` in the block range, in (z, y, x) order."""
        rows = (last[1] - first[1] + 1) * (last[2] - first[2] + 1)
        if scan_all or rows > MAX_ROWS:
            lo = block_tkey(_I32_MIN, _I32_MIN, first[2])
            hi = block_tkey(_I32_MAX, _I32_MAX, last[2])
            for tk, value in ctx.range(lo, hi):
                if len(tk) == _BLOCK_TK_LEN:
                    c = block_of_tkey(tk)
                    if first[0] <= c[0] <= last[0] and first[1] <= c[1] <= last[1]:
                        yield c, value
            return
        for bz in range(first[2], last[2] + 1):
            for by in range(first[1], last[1] + 1):
                for tk, value in ctx.range(block_tkey(first[0], by, bz), block_tkey(last[0], by, bz)):
                    if len(tk) == _BLOCK_TK_LEN:
                        yield block_of_tkey(tk), value

    def iter_all_blocks(self, ctx: DataContext) -> Iterator[tuple[Point, bytes]]:
        for tk, value in ctx.range(keys.min_tkey(BLOCK_CLASS), keys.max_tkey(BLOCK_CLASS)):
            if len(tk) == _BLOCK_TK_LEN:
                yield block_of_tkey(tk), value

    def elements_in_box(self, ctx: DataContext, box: Box, limit: int | None = None) -> bytes:
        """The JSON array of the elements inside ``box`` (``null`` if none)."""
        bs = self.block_size()
        first, last = box.block_range(bs)
        lo, hi = box.offset, box.end
        parts: list[bytes] = []
        size = 0
        for coord, value in self.iter_blocks(ctx, first, last):
            b0 = (coord[0] * bs[0], coord[1] * bs[1], coord[2] * bs[2])
            whole = all(lo[a] <= b0[a] and b0[a] + bs[a] <= hi[a] for a in range(3))
            if whole:
                inner = value.strip()[1:-1].strip()
            else:
                keep = [
                    e
                    for e in el.loads_list(value, f"block {coord}")
                    if lo[0] <= e["Pos"][0] < hi[0]
                    and lo[1] <= e["Pos"][1] < hi[1]
                    and lo[2] <= e["Pos"][2] < hi[2]
                ]
                inner = el.dumps_items(keep)
            if inner:
                parts.append(inner)
                size += len(inner) + 1
                if limit is not None and size > limit:
                    raise PayloadTooLarge(
                        f"elements response would exceed the server limit of {limit} bytes built in memory;"
                        " request a smaller box"
                    )
        if not parts:
            return b"null"
        return b"[" + b",".join(parts) + b"]"

    def elements_in_roi(self, ctx: DataContext, spans: np.ndarray, limit: int | None = None) -> bytes:
        """The JSON array of every element stored in the blocks the ROI spans cover, in span order."""
        parts: list[bytes] = []
        size = 0
        for z, y, x0, x1 in spans.tolist():
            for tk, value in ctx.range(block_tkey(x0, y, z), block_tkey(x1, y, z)):
                inner = value.strip()[1:-1].strip() if len(tk) == _BLOCK_TK_LEN else b""
                if inner:
                    parts.append(inner)
                    size += len(inner) + 1
                    if limit is not None and size > limit:
                        raise PayloadTooLarge(
                            f"roi response would exceed the server limit of {limit} bytes built in memory"
                        )
        return b"[" + b",".join(parts) + b"]" if parts else b"null"

    def _full_elements(self, ctx: DataContext, nrs: list[Element]) -> list[Element | None]:
        """For each ElementNR, the element with its Pos in its block (None if not there)."""
        bs = self.block_size()
        edit = IndexEdit(ctx)
        coords = [_block_of(e["Pos"], bs) for e in nrs]
        edit.load(list(dict.fromkeys(coords)))
        where: dict[Point, dict[Pos, Element]] = {}
        out: list[Element | None] = []
        for e, c in zip(nrs, coords, strict=True):
            m = where.get(c)
            if m is None:
                m = where[c] = {}
                for b in edit.blocks[c]:
                    m.setdefault(el.pos_of(b), b)
            out.append(m.get(el.pos_of(e)))
        return out

    def index_json(self, ctx: DataContext, tk: bytes, what: str, mode: str) -> bytes:
        """A label or tag index list: ElementNRs, full elements, or verbose relationships."""
        raw = el.loads_list(ctx.get(tk), what)
        nrs = el.parse_stored(raw, f"stored {what} element", with_rels=False)
        if mode == "":
            return el.dumps(nrs)
        full = self._full_elements(ctx, nrs)
        if mode == "true":
            return el.dumps([f for f in full if f is not None])
        partners_of = [r["To"] for f in full if f is not None for r in f.get("Rels") or ()]
        partners = self._full_elements(ctx, [{"Pos": p} for p in partners_of])
        info = {tuple(p): f for p, f in zip(partners_of, partners, strict=True)}
        out = []
        for nr, f in zip(nrs, full, strict=True):
            rels = []
            for r in (f.get("Rels") or ()) if f is not None else ():
                rel: dict[str, Any] = {"Rel": r["Rel"], "To": r["To"]}
                partner = info.get(tuple(r["To"]))
                if partner is not None:
                    if partner.get("Kind", "Unknown") != "Unknown":
                        rel["Kind"] = partner["Kind"]
                    if partner.get("Tags"):
                        rel["Tags"] = partner["Tags"]
                    if partner.get("Prop"):
                        rel["Prop"] = partner["Prop"]
                rels.append(rel)
            out.append({**nr, "Rels": rels})
        return el.dumps(out)

    def scan(self, ctx: DataContext, keys_only: bool) -> dict[str, int]:
        n = empty = 0
        for tk, value in ctx.range(
            keys.min_tkey(BLOCK_CLASS), keys.max_tkey(BLOCK_CLASS), keys_only=keys_only
        ):
            if len(tk) != _BLOCK_TK_LEN:
                continue
            n += 1
            if not keys_only and el.is_empty_list_value(value):
                empty += 1
        return {"num kv pairs": n, "num empty blocks": empty}

    # ---- handlers ----------------------------------------------------------------------------
    def _check_not_bulk(self, req: InstanceRequest) -> None:
        if self._bulk:
            raise BadRequest(
                f'cannot run {req.method} commands while "{self.name}" instance is undergoing bulk update'
            )

    def _box(self, req: InstanceRequest) -> Box:
        if len(req.args) < 2:
            raise BadRequest(f"expect {req.endpoint}/<size nx_ny_nz>/<offset x_y_z>")
        size = parse_ints(req.args[0], 3, "size", positive=True)
        offset = parse_ints(req.args[1], 3, "offset")
        return Box(offset, size)  # type: ignore[arg-type]

    async def handle_get_elements(self, req: InstanceRequest) -> web.StreamResponse:
        box = self._box(req)
        limit = req.limits.max_bytes_in_memory
        body = await asyncio.to_thread(self.elements_in_box, req.ctx, box, limit)
        return json_bytes_response(body)

    async def handle_post_elements(self, req: InstanceRequest) -> web.StreamResponse:
        self._check_not_bulk(req)
        body = await req.body()
        ctx, ancestry = req.ctx, req.ancestry

        def run() -> None:  # all of it off the event loop: parsing 10,000s of elements takes a while
            with gc_paused():
                self.post_elements(ctx, ancestry, el.parse_elements(_loads(body)))

        await asyncio.to_thread(run)
        return web.Response()

    def _stream_blocks(self, req: InstanceRequest, blocks: Iterator[tuple[Point, bytes]]):
        def pieces() -> Iterator[bytes]:
            yield b"{"
            sep = b""
            for (x, y, z), value in blocks:
                if not value:
                    continue
                yield b'%s"%d,%d,%d":%s' % (sep, x, y, z, value)
                sep = b","
            yield b"}"

        return stream_pieces(req, "application/json", pieces())

    async def handle_get_blocks(self, req: InstanceRequest) -> web.StreamResponse:
        box = self._box(req)
        first, last = box.block_range(self.block_size())
        scan_all = self.meta.tags.get("ScanAllForBlocks", "").lower() == "true"
        return await self._stream_blocks(req, self.iter_blocks(req.ctx, first, last, scan_all=scan_all))

    async def handle_all_elements(self, req: InstanceRequest) -> web.StreamResponse:
        if any(req.args):
            raise BadRequest("all-elements takes no further path segments")
        return await self._stream_blocks(req, self.iter_all_blocks(req.ctx))

    async def handle_post_blocks(self, req: InstanceRequest) -> web.StreamResponse:
        self._check_not_bulk(req)
        body = _loads_object(await req.body())

        def parse() -> dict[Point, list[Element]]:
            blocks: dict[Point, list[Element]] = {}
            for k, items in body.items():
                parts = k.split(",")
                try:
                    coord = tuple(int(p.strip()) for p in parts)
                except ValueError:
                    coord = ()
                if len(coord) != 3 or any(not _I32_MIN <= c <= _I32_MAX for c in coord):
                    raise BadRequest(f'block key "{k}" is not "bx,by,bz" (3 integers)')
                blocks[coord] = el.parse_elements(items, f"block {k} element")
            return blocks

        blocks = await asyncio.to_thread(parse)
        await asyncio.to_thread(self.post_blocks, req.ctx, req.ancestry, blocks)
        return web.Response()

    async def handle_scan(self, req: InstanceRequest) -> web.StreamResponse:
        keys_only = req.query_bool("keysOnly")
        req.query_bool("byCoord")
        return json_response(await asyncio.to_thread(self.scan, req.ctx, keys_only))

    @staticmethod
    def _rel_mode(req: InstanceRequest) -> str:
        value = req.query.get("relationships", "").strip().lower()
        if value == "verbose":
            return "verbose"
        return "true" if value and req.query_bool("relationships") else ""

    def _roi_context(self, req: InstanceRequest, spec: str) -> tuple[Any, DataContext]:
        """The ROI named by ``name`` (read at the request's version) or ``name,uuid``."""
        parts = spec.split(",")
        if len(parts) > 2:
            raise BadRequest(f'roi spec must be "name" or "name,uuid", got "{spec}"')
        if self.repo_access is None:
            raise BadRequest("roi queries need the repo of this instance")
        try:
            roi = self.repo_access.sibling(parts[0])
        except NotFound:
            raise BadRequest(f'no roi instance "{parts[0]}" in this repo') from None
        if roi.type_name != "roi":
            raise BadRequest(f"data {parts[0]!r} is of type {roi.type_name}, not roi")
        if tuple(roi.block_size) != self.block_size():  # type: ignore[attr-defined]
            raise BadRequest(
                f"roi {parts[0]!r} has BlockSize {list(roi.block_size)} but annotation {self.name!r}"  # type: ignore[attr-defined]
                f" uses {list(self.block_size())}: they must be equal"
            )
        if len(parts) == 1 or not roi.versioned:
            return roi, req.context_for(roi)
        return roi, roi.context(self.repo_access.version_ancestry(parts[1]))

    async def handle_roi(self, req: InstanceRequest) -> web.StreamResponse:
        roi, roi_ctx = self._roi_context(req, req.arg(0, "a roi name[,uuid]"))
        limit = req.limits.max_bytes_in_memory

        def run() -> bytes:
            return self.elements_in_roi(req.ctx, roi.get_spans(roi_ctx), limit)

        return json_bytes_response(await asyncio.to_thread(run))

    async def handle_label(self, req: InstanceRequest) -> web.StreamResponse:
        label = parse_label(req.arg(0, "a label"))
        mode = self._rel_mode(req)
        body = await asyncio.to_thread(self.index_json, req.ctx, label_tkey(label), f"label {label}", mode)
        return json_bytes_response(body)

    async def handle_tag(self, req: InstanceRequest) -> web.StreamResponse:
        tag = req.arg(0, "a tag")
        if "\x00" in tag:
            raise BadRequest("tags cannot contain NUL")
        mode = self._rel_mode(req)
        body = await asyncio.to_thread(self.index_json, req.ctx, tag_tkey(tag), f"tag {tag!r}", mode)
        return json_bytes_response(body)

    async def handle_post_labels(self, req: InstanceRequest) -> web.StreamResponse:
        self._check_not_bulk(req)
        if any(req.args):
            raise BadRequest("labels takes no further path segments")
        body = _loads_object(await req.body())
        values: dict[int, bytes] = {}
        for k, v in body.items():
            try:
                label = int(k)
            except ValueError:
                raise BadRequest(f"label {k!r} is not an unsigned 64-bit integer") from None
            if not 0 <= label <= MAX_LABEL:
                raise BadRequest(f"label {k!r} is not an unsigned 64-bit integer")
            if not isinstance(v, str):
                raise BadRequest(f"label {k}: the value must be a string holding a JSON array")
            if label:
                _check_index_value(label, v)
                values[label] = v.encode()
        await asyncio.to_thread(self.post_labels, req.ctx, values)
        return web.Response()

    async def handle_delete_element(self, req: InstanceRequest) -> web.StreamResponse:
        self._check_not_bulk(req)
        pos = _point(req.arg(0, "a point x_y_z"), "point")
        await asyncio.to_thread(self.delete_element, req.ctx, req.ancestry, pos)
        return web.Response()

    async def handle_move(self, req: InstanceRequest) -> web.StreamResponse:
        self._check_not_bulk(req)
        frm = _point(req.arg(0, "a from point x_y_z"), "from point")
        to = _point(req.arg(1, "a to point x_y_z"), "to point")
        await asyncio.to_thread(self.move_element, req.ctx, req.ancestry, frm, to)
        return web.Response()

    async def handle_reload(self, req: InstanceRequest) -> web.StreamResponse:
        self._check_not_bulk(req)
        req.query_bool("check")
        req.query_bool("inmemory", True)
        result = await asyncio.to_thread(self.reload, req.ctx, req.ancestry)
        return json_response(result)
