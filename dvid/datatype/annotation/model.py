"""The annotation model: writes, the label sync hook and reload, with no HTTP in them."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np

from dvid.dag.ancestry import Ancestry
from dvid.datatype.base import InstanceMeta
from dvid.datatype.common import elements as el
from dvid.datatype.common import sync
from dvid.datatype.common.elements import Element, Pos
from dvid.datatype.common.geometry import Point
from dvid.datatype.common.sync import BlockChange, Decode, LabelSource
from dvid.errors import BadRequest
from dvid.storage import keys
from dvid.storage.versioned import DataContext, VersionedBatch

from .index import (
    BLOCK_CLASS,
    BLOCK_TKEY_LEN,
    LABEL_CLASS,
    TAG_CLASS,
    IndexEdit,
    block_of,
    block_of_tkey,
    block_tkey,
    json_appended,
    label_tkey,
    normalized_index,
    read_blocks,
    retarget_rels,
    strip_rels,
    tag_tkey,
)
from .reads import AnnotationReads


class AnnotationModel(AnnotationReads):
    """An annotation instance's writes (each one atomic batch over the three indexes), the hook that
    keeps the label index right through label changes, and reload; the HTTP layer is
    :class:`~.handlers.Annotation`."""

    def __init__(self, meta: InstanceMeta, *args: Any, **kwargs: Any) -> None:
        super().__init__(meta, *args, **kwargs)
        self._lock = threading.Lock()
        self._bulk = False

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
                edit.spliced[coord] = json_appended(raws.get(coord), fulls[start : start + len(idxs)])
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
            coord = block_of(pos, bs)
            blk = edit.block(coord)
            i = next((i for i, e in enumerate(blk) if e["Pos"] == target), None)
            if i is None:
                raise BadRequest(f"Did not find element {list(pos)} in datastore")
            gone = blk.pop(i)
            strip_rels(blk, target)
            edit.touch(coord)
            for r in gone.get("Rels") or ():
                other = block_of(r["To"], bs)
                if other != coord and strip_rels(edit.block(other), target):
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
            fc, tc = block_of(frm, bs), block_of(to, bs)
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
            retarget_rels(fblk, old_p, new_p)
            edit.touch(fc)
            if tc != fc:
                fblk.pop(i)
                retarget_rels(tblk, old_p, new_p)
                tblk.append(e)
                edit.touch(tc)
            for r in e.get("Rels") or ():
                other = block_of(r["To"], bs)
                if other not in (fc, tc) and retarget_rels(edit.block(other), old_p, new_p):
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
        decode: Decode,
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

    # ---- sync: body merges and cleaves of the synced labelmap --------------------------------
    def bodies_merged(
        self, batch: VersionedBatch, ancestry: Ancestry, target: int, merged: list[int]
    ) -> None:
        """Move the label index entries of the bodies ``merged`` to ``target`` (called by the
        labelmap under its write lock, inside its batch): their keys are deleted, their entries
        replace-or-append into the target's."""
        ctx = self.context_at(ancestry)
        with self._lock, sync.joined_batch(batch, ctx) as out:
            labels = [label for label in dict.fromkeys(merged) if label and label != target]
            values = ctx.get_many([label_tkey(label) for label in labels])
            edit = IndexEdit(ctx)
            for label, value in zip(labels, values, strict=True):
                if value is None:
                    continue
                for e in el.loads_list(value, f"label {label}"):
                    edit.label_put(target, e)
                    kind = e.get("Kind", "Unknown")
                    edit.deltas[(kind, label)] -= 1
                    edit.deltas[(kind, target)] += 1
                out.delete(label_tkey(label))
            if edit.labels:
                edit.write(out)
            self._notify(out, ancestry, edit.nonzero_deltas())

    def body_cleaved(
        self, batch: VersionedBatch, ancestry: Ancestry, body: int, cleaved: int, moved: sync.PointsIn
    ) -> None:
        """Move the label index entries of ``body`` whose positions ``moved`` marks to the new body
        ``cleaved`` (a labelmap cleave or body split, inside its batch); the body's key is rewritten,
        or deleted when nothing is left."""
        ctx = self.context_at(ancestry)
        with self._lock, sync.joined_batch(batch, ctx) as out:
            entries = el.loads_list(ctx.get(label_tkey(body)), f"label {body}")
            if not entries:
                return
            mask = moved(np.array([e["Pos"] for e in entries], dtype=np.int64).reshape(-1, 3)).tolist()
            going = [e for e, m in zip(entries, mask, strict=True) if m]
            if not going:
                return
            staying = [e for e, m in zip(entries, mask, strict=True) if not m]
            if staying:
                out.put(label_tkey(body), el.dumps(staying))
            else:
                out.delete(label_tkey(body))
            edit = IndexEdit(ctx)
            for e in going:
                edit.label_put(cleaved, e)
                kind = e.get("Kind", "Unknown")
                edit.deltas[(kind, body)] -= 1
                edit.deltas[(kind, cleaved)] += 1
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
                    if len(tk) != BLOCK_TKEY_LEN:
                        continue
                    coord = block_of_tkey(tk)
                    original[coord] = el.loads_list(value, f"block {coord}")
                    placed.setdefault(coord, [])
                    for e in original[coord]:
                        placed.setdefault(block_of(e["Pos"], bs), []).append(e)
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
                            elif normalized_index(items) != normalized_index(el.loads_list(value, "index")):
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
