"""labelmap's proofreading edits: ``merge``, ``cleave``, ``split-supervoxel``, ``split`` and
``renumber``, each atomic (label indexes, mapping, blocks, mutation log and synced instances in one
batch), each with a mutation id, and the endpoints that read their log: ``mutations``,
``mutations-range``, ``history``, ``lastmod`` and ``supervoxel-splits``.

Merges, cleaves and renumbers change the mapping and the label indexes only; splits rewrite the
supervoxel voxels of the blocks they cut (and the pyramid above them unless ``downres=false``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np
from aiohttp import web

from dvid.datatype.common import jsonio, rle, sync
from dvid.datatype.common.numbers import label_list, parse_label
from dvid.datatype.common.request import InstanceRequest, json_response
from dvid.datatype.common.sync import BlockChange
from dvid.datatype.labelmap import mutationlog
from dvid.datatype.labelmap.bodies import LabelMapBodies
from dvid.datatype.labelmap.labelindex import LabelIndex, unpack_block_keys
from dvid.datatype.labelmap.mutationlog import ModInfo
from dvid.datatype.labelmap.tkeys import snapshot_tkey
from dvid.errors import BadRequest
from dvid.storage.versioned import DataContext, VersionedBatch

#: Block pieces a split's runs may cut into (a bound on the work one request can ask for).
MAX_SPLIT_PIECES = 1 << 22


class LabelMapMutations(LabelMapBodies):
    """Edits and their log over :class:`LabelMapBodies`."""

    # ---- common steps --------------------------------------------------------------------------
    def _mod(self, req: InstanceRequest) -> ModInfo:
        return ModInfo.now(req.query.get("u", ""), req.query.get("app", ""))

    def _existing(self, ctx: DataContext, label: int, what: str) -> LabelIndex:
        index = self.indexes.get(ctx, label)
        if index is None or index.is_empty:
            raise BadRequest(f"{what} {label} has no voxels (no label index)")
        return index

    def _commit_edit(
        self,
        ctx: DataContext,
        write: Callable[[VersionedBatch], None],
        log: tuple[str, int, ModInfo, dict[str, Any]],
        changed: list[int],
    ) -> None:
        """Run ``write`` and append the log record, in one batch, with the label indexes of the
        bodies ``changed`` as they were before (``index?mutid=`` reads them). The mapping's cache
        follows the batch when it is stored."""
        version_uuid = self._version_uuid(ctx)
        action, mutid, mod, fields = log
        record = mutationlog.record_bytes(action, mutid, version_uuid, mod, fields)
        before = self.indexes.stored_many(ctx, changed)
        with ctx.batch() as batch:
            for label, stored in zip(changed, before, strict=True):
                batch.put(snapshot_tkey(label, mutid), stored or b"")
            write(batch)
            mutationlog.append(batch, version_uuid, mutid, record)

    def _version_uuid(self, ctx: DataContext) -> str:
        if self.repo_access is None:
            return ""
        return self.repo_access.version_uuid(ctx.version)

    # ---- merge ---------------------------------------------------------------------------------
    def merge(self, ctx: DataContext, target: int, merged: list[int], mutid: int, mod: ModInfo) -> None:
        """Make the bodies ``merged`` part of ``target``."""
        with self.write_lock:
            target_index = self._existing(ctx, target, "merge target label")
            others = [self._existing(ctx, label, "merged label") for label in merged]
            moved = np.unique(np.concatenate([o.supervoxels() for o in others]))
            result = target_index.merged(*others, label=target).with_mod(mutid, mod.time, mod.user, mod.app)

            def write(batch: VersionedBatch) -> None:
                self.indexes.put(batch, result)
                for label in merged:
                    self.indexes.delete(batch, label)
                self.mapping.set(ctx, batch, moved, np.full(len(moved), target, dtype=np.uint64))
                for listener in sync.body_listeners(self):
                    listener.bodies_merged(batch, ctx.ancestry, target, merged)

            self._commit_edit(
                ctx,
                write,
                ("merge-complete", mutid, mod, {"Target": target, "Labels": merged}),
                [target, *merged],
            )

    async def handle_merge(self, req: InstanceRequest) -> web.StreamResponse:
        self.check_indexed("merge")
        mutid = self.new_mutation_id()  # DVID allocates it before validating
        try:
            body = jsonio.loads(await req.body())
        except BadRequest as exc:
            raise BadRequest(f"Bad merge op JSON: {exc}") from None
        labels = label_list(body, "merge body")
        if len(labels) < 2:
            raise BadRequest(f"invalid merge tuple {labels}, need at least target and to-merge labels")
        if 0 in labels:
            raise BadRequest(f"merge tuple {labels} cannot contain background label 0")
        target, merged = labels[0], list(dict.fromkeys(labels[1:]))
        if target in merged:
            raise BadRequest(f"cannot merge label {target} into itself")
        await asyncio.to_thread(self.merge, req.ctx, target, merged, mutid, self._mod(req))
        return json_response({"MutationID": mutid})

    # ---- cleave --------------------------------------------------------------------------------
    def cleave(
        self, ctx: DataContext, body: int, svs: list[int], new_label: int, mutid: int, mod: ModInfo
    ) -> tuple[int, int]:
        """Move the supervoxels ``svs`` of ``body`` to the new body ``new_label``; returns the voxel
        counts (cleaved, remaining)."""
        with self.write_lock:
            index = self._existing(ctx, body, "cleave label")
            wanted = np.unique(np.array(svs, dtype=np.uint64))
            held = index.supervoxels()
            missing = wanted[~np.isin(wanted, held)]
            if len(missing):
                raise BadRequest(f"cannot cleave supervoxels {missing.tolist()}: not in body {body}")
            if len(wanted) == len(held):
                raise BadRequest(f"cleaving every supervoxel of body {body} would leave it empty")
            remain, taken = index.split(wanted)
            remain = remain.with_mod(mutid, mod.time, mod.user, mod.app)
            taken = taken.relabeled(new_label).with_mod(mutid, mod.time, mod.user, mod.app)
            moved = self._points_in(ctx, wanted)

            def write(batch: VersionedBatch) -> None:
                self.indexes.put(batch, remain)
                self.indexes.put(batch, taken)
                self.mapping.set(ctx, batch, wanted, np.full(len(wanted), new_label, dtype=np.uint64))
                for listener in sync.body_listeners(self):
                    listener.body_cleaved(batch, ctx.ancestry, body, new_label, moved)
                self.raise_maxlabel(batch, ctx.ancestry, new_label)

            sizes = (taken.num_voxels(), remain.num_voxels())
            fields = {
                "OrigLabel": body, "CleavedLabel": new_label, "CleavedSupervoxels": svs,
                "CleavedSize": sizes[0], "RemainSize": sizes[1],
            }  # fmt: skip
            self._commit_edit(ctx, write, ("cleave-complete", mutid, mod, fields), [body, new_label])
            return sizes

    def _points_in(self, ctx: DataContext, svs: np.ndarray) -> sync.PointsIn:
        """Which points lie in the supervoxels ``svs`` (read from the stored blocks)."""
        stored = self.at_scale(0)

        def inside(points: np.ndarray) -> np.ndarray:
            return np.isin(stored.stored_labels_at(ctx, points), svs)

        return inside

    async def handle_cleave(self, req: InstanceRequest) -> web.StreamResponse:
        self.check_indexed("cleave")
        body_label = parse_label(req.arg(0, "the body to cleave"), what="cleave label")
        mutid = self.new_mutation_id()
        new_label, _ = await asyncio.to_thread(self.reserve_labels, req.ancestry, 1)
        raw = await req.body()
        if not raw.strip():
            raise BadRequest("no cleave supervoxels JSON was POSTed")
        svs = label_list(jsonio.loads(raw), "cleave body", allow_zero=False)
        if not svs:
            raise BadRequest("no cleave supervoxels JSON was POSTed")
        await asyncio.to_thread(self.cleave, req.ctx, body_label, svs, new_label, mutid, self._mod(req))
        return json_response({"CleavedLabel": new_label, "MutationID": mutid})

    # ---- renumber ------------------------------------------------------------------------------
    def renumber(self, ctx: DataContext, new: int, old: int, mutid: int, mod: ModInfo) -> None:
        """Give body ``old`` the id ``new`` (which must have no voxels)."""
        with self.write_lock:
            existing = self.indexes.get(ctx, new)
            if existing is not None and not existing.is_empty:
                raise BadRequest(
                    f"Error on merge: target label for renumber ({new}) already exists in mapping"
                )
            index = self._existing(ctx, old, "renumbered label")
            result = index.relabeled(new).with_mod(mutid, mod.time, mod.user, mod.app)
            moved = index.supervoxels()

            def write(batch: VersionedBatch) -> None:
                self.indexes.put(batch, result)
                self.indexes.delete(batch, old)
                self.mapping.set(ctx, batch, moved, np.full(len(moved), new, dtype=np.uint64))
                for listener in sync.body_listeners(self):
                    listener.bodies_merged(batch, ctx.ancestry, new, [old])
                self.raise_maxlabel(batch, ctx.ancestry, new)

            self._commit_edit(
                ctx, write, ("renumber-complete", mutid, mod, {"NewLabel": new, "OrigLabel": old}), [old, new]
            )

    async def handle_renumber(self, req: InstanceRequest) -> web.StreamResponse:
        self.check_indexed("renumber")
        try:
            labels = label_list(jsonio.loads(await req.body()), "renumber body", allow_zero=False)
        except BadRequest:
            raise BadRequest(
                "Bad renumber op JSON, must be even list of numbers [new1, old1, new2, old2, ...]"
            ) from None
        if len(labels) % 2:
            raise BadRequest(
                "Bad renumber op JSON, must be even list of numbers [new1, old1, new2, old2, ...]"
            )
        mod = self._mod(req)
        for new, old in zip(labels[::2], labels[1::2], strict=True):
            mutid = self.new_mutation_id()
            await asyncio.to_thread(self.renumber, req.ctx, new, old, mutid, mod)
        return web.Response()

    # ---- split-supervoxel ----------------------------------------------------------------------
    def split_supervoxel(
        self,
        ctx: DataContext,
        sv: int,
        runs: np.ndarray,
        ids: tuple[int, int],
        mutid: int,
        mod: ModInfo,
        downres: bool,
    ) -> tuple[int, int, int]:
        """Rewrite supervoxel ``sv``: the voxels the runs cover become ``ids[0]`` (split), the rest
        ``ids[1]`` (remain); both stay in its body, ``sv`` is retired (mapped to 0). Returns (body,
        split size, remain size)."""
        split_id, remain_id = ids
        with self.write_lock:
            body = int(self.mapping.lookup(ctx, np.array([sv], dtype=np.uint64))[0])
            index = self.indexes.get(ctx, body) if body else None
            if index is None or sv not in set(index.supervoxels().tolist()):
                raise BadRequest(f"supervoxel {sv} has no voxels")
            written, sizes = self._split_blocks(
                ctx, index.restricted(np.array([sv], dtype=np.uint64)), sv, runs, ids
            )
            svs = np.array([split_id, remain_id, sv], dtype=np.uint64)
            bodies = np.array([body, body, 0], dtype=np.uint64)
            store = self.at_scale(0)

            def write(batch: VersionedBatch) -> None:
                for coord, _, value in written:
                    batch.put(store.blocks.tkey(*coord), value)
                self.index_written(
                    batch, ctx, written, bodies={split_id: body, remain_id: body}, mod=(mutid, mod)
                )
                self.raise_maxlabel(batch, ctx.ancestry, max(ids))
                self.mapping.set(ctx, batch, svs, bodies)

            fields = {
                "Supervoxel": sv, "Body": body, "SplitSupervoxel": split_id, "RemainSupervoxel": remain_id,
                "Split": "", "SplitSize": sizes[0], "RemainSize": sizes[1],
            }  # fmt: skip
            self._commit_edit(ctx, write, ("split-supervoxel-complete", mutid, mod, fields), [body])
        if downres:
            self.update_pyramid_blocks(ctx, [coord for coord, _, _ in written])
        return body, sizes[0], sizes[1]

    def _split_blocks(
        self, ctx: DataContext, sv_index: LabelIndex, sv: int, runs: np.ndarray, ids: tuple[int, int]
    ) -> tuple[list[BlockChange], tuple[int, int]]:
        """The blocks of ``sv`` rewritten by a split along ``runs``, and the (split, remain) sizes.
        400 if the runs cover a voxel outside the supervoxel or none of it."""
        store = self.at_scale(0)
        bs = self.block_size
        shape = (bs[2], bs[1], bs[0])
        coords = [tuple(c) for c in unpack_block_keys(np.unique(sv_index.blocks)).tolist()]
        if rle.block_pieces(runs, bs) > MAX_SPLIT_PIECES:
            raise BadRequest(f"the split runs cut into more than {MAX_SPLIT_PIECES} block pieces")
        pieces = rle.split_runs_by_block(runs, bs) if len(runs) else {}
        known = set(coords)
        outside = [c for c in pieces if c not in known]
        if outside:
            raise BadRequest(f"the split runs cover voxels outside supervoxel {sv} (blocks {outside[:5]})")
        written: list[BlockChange] = []
        split_total = remain_total = 0
        for coord in coords:
            stored = ctx.get(store.blocks.tkey(*coord))
            if stored is None:
                raise BadRequest(
                    f"block {list(coord)} of supervoxel {sv} is missing: the label index is stale"
                )
            block = store.label_codec.decode(stored)
            in_sv = block == sv
            block_runs = pieces.get(coord)
            if block_runs is not None:
                origin = (coord[0] * bs[0], coord[1] * bs[1], coord[2] * bs[2])
                mask = rle.runs_mask_in_block(block_runs, origin, shape)
            else:
                mask = np.zeros(block.shape, dtype=bool)
            if np.any(mask & ~in_sv):
                raise BadRequest(
                    f"the split runs cover voxels outside supervoxel {sv} in block {list(coord)}"
                )
            out = block.copy()
            split_here = mask & in_sv
            out[split_here] = ids[0]
            out[in_sv & ~mask] = ids[1]
            split_total += int(np.count_nonzero(split_here))
            remain_total += int(np.count_nonzero(in_sv)) - int(np.count_nonzero(split_here))
            written.append((coord, stored, store.label_codec.encode(out)))
        if split_total == 0:
            raise BadRequest(f"the split runs cover no voxel of supervoxel {sv}")
        return written, (split_total, remain_total)

    async def handle_split_supervoxel(self, req: InstanceRequest) -> web.StreamResponse:
        self.check_indexed("split-supervoxel")
        sv = parse_label(req.arg(0, "the supervoxel to split"), what="supervoxel")
        runs = parse_runs(await req.body())
        split_text, remain_text = req.query.get("split", ""), req.query.get("remain", "")
        if bool(split_text) != bool(remain_text):
            raise BadRequest("give both split and remain ids, or neither")
        mutid = self.new_mutation_id()
        if split_text:
            ids = (parse_label(split_text, what="split"), parse_label(remain_text, what="remain"))
            if ids[0] == ids[1] or sv in ids:
                raise BadRequest(f"split and remain ids must differ from each other and from {sv}")
        else:
            start, _ = await asyncio.to_thread(self.reserve_labels, req.ancestry, 2)
            ids = (start, start + 1)
        downres = req.query_bool("downres", True)
        await asyncio.to_thread(self.split_supervoxel, req.ctx, sv, runs, ids, mutid, self._mod(req), downres)
        return json_response({"SplitSupervoxel": ids[0], "RemainSupervoxel": ids[1], "MutationID": mutid})


def parse_runs(body: bytes) -> np.ndarray:
    """The runs (x, y, z, length) of a legacy sparsevol body (split payloads)."""
    try:
        runs = rle.decode_sparsevol(body)
    except (ValueError, BadRequest) as exc:
        raise BadRequest(f"the split body is not a sparse volume (legacy RLE): {exc}") from None
    if len(runs) and (np.any(runs[:, 3] <= 0)):
        raise BadRequest("split runs must have positive lengths")
    return runs
