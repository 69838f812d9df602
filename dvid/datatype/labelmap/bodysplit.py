"""labelmap's ``split/<body>``: cut a body along an arbitrary sparse volume (served only when the
server's AllowLabelmapSplit is on, as in DVID).

The voxels the runs cover become a new body. A supervoxel they cover whole moves to it as it is; one
they cut is rewritten into two new supervoxels, the covered part in the new body and the rest in the
old one, and is retired (mapped to 0). One atomic batch: blocks, both label indexes, the mapping,
the mutation log and synced instances; the pyramid follows.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from aiohttp import web

from dvid.datatype.common import rle, sync
from dvid.datatype.common.numbers import parse_label
from dvid.datatype.common.request import InstanceRequest, json_response
from dvid.datatype.common.sync import BlockChange
from dvid.datatype.labelmap.labelindex import unpack_block_keys
from dvid.datatype.labelmap.mutationlog import ModInfo
from dvid.datatype.labelmap.mutations import MAX_SPLIT_PIECES, LabelMapMutations, parse_runs
from dvid.errors import BadRequest
from dvid.storage.versioned import DataContext, VersionedBatch


class LabelMapBodySplit(LabelMapMutations):
    """``split/<body>`` over :class:`LabelMapMutations`."""

    async def handle_split(self, req: InstanceRequest) -> web.StreamResponse:
        if not req.limits.allow_labelmap_split:
            raise BadRequest("Split endpoint deactivated in this DVID server's configuration.")
        self.check_indexed("split")
        body = parse_label(req.arg(0, "the body to split"))
        runs = parse_runs(await req.body())
        if not len(runs):
            raise BadRequest("the split body holds no runs")
        mutid = self.new_mutation_id()
        new_label, _ = await asyncio.to_thread(self.reserve_labels, req.ancestry, 1)
        await asyncio.to_thread(self.split_body, req, body, runs, new_label, mutid, self._mod(req))
        return json_response({"label": new_label, "MutationID": mutid})

    def split_body(
        self, req: InstanceRequest, body: int, runs: np.ndarray, new_label: int, mutid: int, mod: ModInfo
    ) -> None:
        ctx = req.ctx
        bs = self.block_size
        shape = (bs[2], bs[1], bs[0])
        if rle.block_pieces(runs, bs) > MAX_SPLIT_PIECES:
            raise BadRequest(f"the split runs cut into more than {MAX_SPLIT_PIECES} block pieces")
        pieces = rle.split_runs_by_block(runs, bs)
        store = self.at_scale(0)
        with self.write_lock:
            index = self._existing(ctx, body, "split label")
            body_svs = index.supervoxels()
            body_blocks = {tuple(c) for c in unpack_block_keys(np.unique(index.blocks)).tolist()}
            outside = [c for c in pieces if c not in body_blocks]
            if outside:
                raise BadRequest(f"the split runs cover voxels outside body {body} (blocks {outside[:5]})")
            # voxels of each supervoxel the runs cover
            covered: dict[int, int] = {}
            decoded: dict[tuple[int, int, int], tuple[bytes, np.ndarray, np.ndarray]] = {}
            for coord, block_runs in pieces.items():
                stored = ctx.get(store.blocks.tkey(*coord))
                if stored is None:
                    raise BadRequest(
                        f"block {list(coord)} of body {body} is missing: the label index is stale"
                    )
                block = store.label_codec.decode(stored)
                origin = (coord[0] * bs[0], coord[1] * bs[1], coord[2] * bs[2])
                mask = rle.runs_mask_in_block(block_runs, origin, shape)
                hit = block[mask]
                if not np.all(np.isin(hit, body_svs)):
                    raise BadRequest(
                        f"the split runs cover voxels outside body {body} in block {list(coord)}"
                    )
                decoded[coord] = (stored, block, mask)
                labels, counts = np.unique(hit, return_counts=True)
                for sv, n in zip(labels.tolist(), counts.tolist(), strict=True):
                    covered[sv] = covered.get(sv, 0) + n
            svs, sizes = index.sv_sizes()
            size_of = dict(zip(svs.tolist(), sizes.tolist(), strict=True))
            whole = [sv for sv, n in covered.items() if n == size_of[sv]]
            if len(whole) == len(body_svs):
                raise BadRequest(f"the split covers all of body {body}: nothing would remain")
            cut = sorted(sv for sv, n in covered.items() if n < size_of[sv])
            first_new = self.reserve_labels(ctx.ancestry, 2 * len(cut))[0] if cut else 0
            new_ids = {sv: (first_new + 2 * i, first_new + 2 * i + 1) for i, sv in enumerate(cut)}
            written = self._rewrite_cut(ctx, index, decoded, new_ids)
            blocks, changed, deltas = self.count_changes(written)
            owner_of = {split: new_label for split, _ in new_ids.values()}
            owner_of.update({remain: body for _, remain in new_ids.values()})
            owner_of.update(dict.fromkeys(cut, body))
            owners = np.array([owner_of.get(int(sv), body) for sv in changed.tolist()], dtype=np.uint64)
            remain_index, taken = index.split(np.array(whole, dtype=np.uint64))
            taken = taken.relabeled(new_label)
            mine = owners == body
            remain_index = remain_index.with_counts(blocks[mine], changed[mine], deltas[mine])
            taken = taken.with_counts(blocks[~mine], changed[~mine], deltas[~mine])
            in_runs = _points_in_runs(pieces, bs)
            in_whole = self._points_in(ctx, np.array(whole, dtype=np.uint64))

            def moved(points: np.ndarray) -> np.ndarray:
                return in_runs(points) | in_whole(points)

            map_svs = [*whole, *cut, *(p for pair in new_ids.values() for p in pair)]
            map_bodies = [new_label] * len(whole) + [0] * len(cut)
            map_bodies += [b for _ in new_ids.values() for b in (new_label, body)]

            def write(batch: VersionedBatch) -> None:
                for coord, _, value in written:
                    batch.put(store.blocks.tkey(*coord), value)
                self.indexes.put(batch, remain_index.with_mod(mutid, mod.time, mod.user, mod.app))
                self.indexes.put(batch, taken.with_mod(mutid, mod.time, mod.user, mod.app))
                top = max([new_label, *(p for pair in new_ids.values() for p in pair)])
                self.raise_maxlabel(batch, ctx.ancestry, top)
                for listener in sync.body_listeners(self):
                    listener.body_cleaved(batch, ctx.ancestry, body, new_label, moved)
                svs_arr, bodies_arr = (
                    np.array(map_svs, dtype=np.uint64),
                    np.array(map_bodies, dtype=np.uint64),
                )
                self.mapping.set(ctx, batch, svs_arr, bodies_arr)

            fields = {
                "Target": body, "NewLabel": new_label, "Split": "",
                "SVSplits": {str(sv): {"Split": s, "Remain": r} for sv, (s, r) in new_ids.items()},
            }  # fmt: skip
            self._commit_edit(ctx, write, ("split-complete", mutid, mod, fields), [body, new_label])
        self.update_pyramid_blocks(ctx, [coord for coord, _, _ in written])

    def _rewrite_cut(
        self,
        ctx: DataContext,
        index: Any,
        decoded: dict[tuple[int, int, int], tuple[bytes, np.ndarray, np.ndarray]],
        new_ids: dict[int, tuple[int, int]],
    ) -> list[BlockChange]:
        """Every block of the cut supervoxels rewritten: covered voxels to their split id, the rest
        to their remain id."""
        if not new_ids:
            return []
        store = self.at_scale(0)
        cut = np.array(sorted(new_ids), dtype=np.uint64)
        keys = np.unique(index.restricted(cut).blocks)
        written: list[BlockChange] = []
        for coord in (tuple(c) for c in unpack_block_keys(keys).tolist()):
            if coord in decoded:
                stored, block, mask = decoded[coord]
            else:
                found = ctx.get(store.blocks.tkey(*coord))
                if found is None:
                    raise BadRequest(f"block {list(coord)} is missing: the label index is stale")
                stored = found
                block, mask = store.label_codec.decode(stored), None
            out = block.copy()
            for sv, (split_id, remain_id) in new_ids.items():
                in_sv = block == sv
                if mask is not None:
                    out[in_sv & mask] = split_id
                    out[in_sv & ~mask] = remain_id
                else:
                    out[in_sv] = remain_id
            written.append((coord, stored, store.label_codec.encode(out)))
        return written


def _points_in_runs(
    pieces: dict[tuple[int, int, int], np.ndarray], block_size: tuple[int, int, int]
) -> sync.PointsIn:
    """Which (N, 3) x, y, z points the runs (cut by block: ``pieces``) cover: one block mask per
    block the points fall in."""
    bs = np.array(block_size, dtype=np.int64)
    shape = (block_size[2], block_size[1], block_size[0])

    def inside(points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.int64).reshape(-1, 3)
        out = np.zeros(len(p), dtype=bool)
        coords = p // bs
        for coord in {tuple(c) for c in coords.tolist()}:
            block_runs = pieces.get(coord)
            if block_runs is None:
                continue
            origin = tuple(int(v) for v in np.array(coord) * bs)
            mask = rle.runs_mask_in_block(block_runs, origin, shape)  # type: ignore[arg-type]
            sel = np.all(coords == coord, axis=1)
            local = p[sel] - np.array(origin)
            out[sel] = mask[local[:, 2], local[:, 1], local[:, 0]]
        return out

    return inside
