"""The annotation datatype's keys and one mutation's edit of its three indexes (blocks, labels, tags)."""

from __future__ import annotations

import struct
from collections import Counter
from typing import Any

from dvid.datatype.common import elements as el
from dvid.datatype.common.elements import Element, Pos
from dvid.datatype.common.geometry import Point
from dvid.storage import keys
from dvid.storage.versioned import DataContext, VersionedBatch

BLOCK_CLASS = 72
LABEL_CLASS = 71
TAG_CLASS = 70
I32_MIN, I32_MAX = -(2**31), 2**31 - 1
BLOCK_TKEY_LEN = 14


# ---- key codec -------------------------------------------------------------------------------


def block_tkey(bx: int, by: int, bz: int) -> bytes:
    return keys.tkey(BLOCK_CLASS, keys.zyx_bytes(bx, by, bz))


def block_of_tkey(tk: bytes) -> Point:
    return keys.zyx_from_bytes(tk, 2)


def label_tkey(label: int) -> bytes:
    return keys.tkey(LABEL_CLASS, struct.pack(">Q", label))


def tag_tkey(tag: str) -> bytes:
    return keys.tkey(TAG_CLASS, tag.encode("utf-8") + b"\x00")


def block_of(pos: Pos | list[int], bs: Point) -> Point:
    return (pos[0] // bs[0], pos[1] // bs[1], pos[2] // bs[2])


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
                batch.put(tk, json_appended(value, edit.append))
            else:
                batch.put(tk, el.dumps(edit.apply(el.loads_list(value, f"index {k!r}"))))

    def nonzero_deltas(self) -> dict[tuple[str, int], int]:
        return {k: v for k, v in self.deltas.items() if v}


def json_appended(value: bytes | None, new: list[bytes]) -> bytes:
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
            if len(tk) == BLOCK_TKEY_LEN:
                c = block_of_tkey(tk)
                if c[0] in wanted:
                    out[c] = value
    return out


def normalized_index(items: list[Any]) -> list[tuple]:
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


def strip_rels(items: list[Element], target: list[int]) -> bool:
    """Drop relationships pointing at ``target`` from the elements; True if any was dropped."""
    changed = False
    for e in items:
        rels = e.get("Rels")
        if rels and any(r["To"] == target for r in rels):
            e["Rels"] = [r for r in rels if r["To"] != target]
            changed = True
    return changed


def retarget_rels(items: list[Element], old: list[int], new: list[int]) -> bool:
    changed = False
    for e in items:
        for r in e.get("Rels") or ():
            if r["To"] == old:
                r["To"] = list(new)
                changed = True
    return changed
