"""The annotation reads: where the label index comes from, block size, and everything read back."""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np

from dvid.datatype.base import Datatype
from dvid.datatype.common import elements as el
from dvid.datatype.common import sync
from dvid.datatype.common.elements import Element, Pos
from dvid.datatype.common.geometry import Box, Point
from dvid.datatype.common.sync import LabelSource
from dvid.errors import PayloadTooLarge
from dvid.storage import keys
from dvid.storage.versioned import DataContext

from .index import (
    BLOCK_CLASS,
    BLOCK_TKEY_LEN,
    I32_MAX,
    I32_MIN,
    LABEL_CLASS,
    IndexEdit,
    block_of,
    block_of_tkey,
    block_tkey,
)

DEFAULT_BLOCK_SIZE: Point = (64, 64, 64)
MAX_ROWS = 4096  # block rows above which a box read scans whole z slabs instead


class AnnotationReads(Datatype):
    """An annotation instance's label source and block size, and its reads of the three indexes."""

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

    # ---- diffs -------------------------------------------------------------------------------
    def describe_change(
        self, tk: bytes, change: str, old: bytes | None, new: bytes | None
    ) -> list[dict[str, Any]]:
        """Elements added, changed (kind, tags, properties or relationships) or deleted, from the
        block index; the label and tag indexes only derive from it and are not listed."""
        if tk[0] != BLOCK_CLASS or len(tk) != BLOCK_TKEY_LEN:
            return []
        where = f"block {block_of_tkey(tk)}"
        before = {tuple(e["Pos"]): e for e in el.loads_list(old, where) if isinstance(e, dict) and "Pos" in e}
        after = {tuple(e["Pos"]): e for e in el.loads_list(new, where) if isinstance(e, dict) and "Pos" in e}
        entries = []
        for pos in sorted(before.keys() | after.keys(), key=lambda p: (p[2], p[1], p[0])):
            was, now = before.get(pos), after.get(pos)
            if was == now:
                continue
            kind = "added" if was is None else "deleted" if now is None else "changed"
            entries.append({"change": kind, "pos": list(pos), "element": now if now is not None else was})
        return entries

    # ---- reads -------------------------------------------------------------------------------
    def label_kind_counts(self, ctx: DataContext) -> dict[tuple[str, int], int]:
        """The number of elements of each (Kind, label) at a version, label 0 (not indexed, or no
        label source) included: per-kind totals from the blocks minus the labelled ones."""
        totals: Counter[str] = Counter()
        for tk, value in ctx.range(keys.min_tkey(BLOCK_CLASS), keys.max_tkey(BLOCK_CLASS)):
            if len(tk) == BLOCK_TKEY_LEN:
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
            lo = block_tkey(I32_MIN, I32_MIN, first[2])
            hi = block_tkey(I32_MAX, I32_MAX, last[2])
            for tk, value in ctx.range(lo, hi):
                if len(tk) == BLOCK_TKEY_LEN:
                    c = block_of_tkey(tk)
                    if first[0] <= c[0] <= last[0] and first[1] <= c[1] <= last[1]:
                        yield c, value
            return
        for bz in range(first[2], last[2] + 1):
            for by in range(first[1], last[1] + 1):
                for tk, value in ctx.range(block_tkey(first[0], by, bz), block_tkey(last[0], by, bz)):
                    if len(tk) == BLOCK_TKEY_LEN:
                        yield block_of_tkey(tk), value

    def iter_all_blocks(self, ctx: DataContext) -> Iterator[tuple[Point, bytes]]:
        for tk, value in ctx.range(keys.min_tkey(BLOCK_CLASS), keys.max_tkey(BLOCK_CLASS)):
            if len(tk) == BLOCK_TKEY_LEN:
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
                inner = value.strip()[1:-1].strip() if len(tk) == BLOCK_TKEY_LEN else b""
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
        coords = [block_of(e["Pos"], bs) for e in nrs]
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
            if len(tk) != BLOCK_TKEY_LEN:
                continue
            n += 1
            if not keys_only and el.is_empty_list_value(value):
                empty += 1
        return {"num kv pairs": n, "num empty blocks": empty}
