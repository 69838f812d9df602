"""Building a labelmap from a labelblk of the same repo: ``POST ingest-labelblk?source=NAME``, resumable.

A labelblk's blocks are plain uint64 blocks. A conversion reads them at the request's version in key
order (z, y, x), encodes each as a compressed label Block and stores them through labelmap's one
commit path for blocks (label indexes, max labels, block listeners) with the extents, in atomic
batches of :data:`BATCH_BLOCKS`. Then it computes scales 1..MaxDownresLevel, one row of parent blocks
at a time (each parent from its 2x2x2 children, as every pyramid update does).

Each request does a bounded step (``blocks=N`` source or parent blocks) and answers the progress. A
marker key at the version (tkey class 193, JSON) says where the conversion stands: written in the
batch of each block batch, and after each pyramid step (recomputing a parent row is harmless). So the
next request continues where the last one stopped, whether it ended normally, was cut off, or the
server stopped; ``restart=true`` starts over (stored blocks are replaced and their counts moved, so a
repeat converges to the same state).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from itertools import islice
from typing import Any

import numpy as np
from aiohttp import web

from dvid.datatype.common.blockstore import BlockStore
from dvid.datatype.common.geometry import Point
from dvid.datatype.common.request import InstanceRequest, json_response
from dvid.datatype.imageblk.pyramid import _block_row_boxes
from dvid.datatype.labelblk import LabelBlk
from dvid.datatype.labelmap.core import LabelMapCore
from dvid.datatype.labelmap.tkeys import INGEST_TKEY
from dvid.errors import BadRequest, Conflict, NotFound
from dvid.storage.versioned import DataContext

#: Source blocks stored per atomic batch (one marker update each).
BATCH_BLOCKS = 64
#: Blocks one request converts by default, and at most.
DEFAULT_STEP_BLOCKS = 512
MAX_STEP_BLOCKS = 1 << 16
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1
_ENCODERS = max(1, min(4, os.cpu_count() or 1))

BLOCKS, PYRAMID, COMPLETE = "blocks", "pyramid", "complete"


@dataclass
class IngestState:
    """Where a conversion stands (the marker's content).

    ``cursor``: in the blocks phase the last source block stored (x, y, z), None before the first;
    in the pyramid phase the next row of parent blocks of ``scale`` to compute, (y, z). ``rows``: the
    (y min, y max, z min, z max) of the parent rows of ``scale``.
    """

    source: str
    source_uuid: str
    phase: str = BLOCKS
    scale: int = 0
    cursor: list[int] | None = None
    done: int = 0
    total: int = 0
    source_blocks: int = 0
    rows: list[int] | None = None

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_bytes(cls, value: bytes) -> IngestState:
        return cls(**json.loads(value))

    @property
    def complete(self) -> bool:
        return self.phase == COMPLETE


class LabelMapIngest(LabelMapCore):
    """The conversion of a labelblk into this labelmap, over :class:`LabelMapCore`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: held by the one conversion step running on this instance
        self.ingest_lock = threading.Lock()

    # ---- the source -------------------------------------------------------------------------------
    def ingest_source(self, name: str) -> LabelBlk:
        """The labelblk ``name`` of this repo, if its blocks fit this labelmap's (else 400/404)."""
        if self.repo_access is None:
            raise BadRequest("ingest-labelblk needs the labelmap's repo")
        source = self.repo_access.sibling(name)
        if not isinstance(source, LabelBlk) or isinstance(source, LabelMapCore):
            raise BadRequest(f"ingest-labelblk reads a labelblk, and {name!r} is a {source.type_name}")
        if tuple(source.block_size) != tuple(self.block_size):
            raise BadRequest(
                f"labelblk {name!r} has BlockSize {list(source.block_size)} and labelmap {self.name!r}"
                f" {list(self.block_size)}: they must be equal"
            )
        return source

    # ---- the marker -------------------------------------------------------------------------------
    def ingest_state(self, ctx: DataContext) -> IngestState | None:
        """The conversion recorded at ``ctx``'s version, if any."""
        value = ctx.get(INGEST_TKEY)
        return IngestState.from_bytes(value) if value else None

    def ingest_progress(self, state: IngestState) -> dict[str, Any]:
        """The progress a request answers."""
        return {
            "source": state.source,
            "phase": state.phase,
            "scale": state.scale,
            "done": state.done,
            "total": state.total,
            "source_blocks": state.source_blocks,
            "max_downres": self.settings.MaxDownresLevel,
            "complete": state.complete,
        }

    # ---- handlers ---------------------------------------------------------------------------------
    async def handle_ingest_labelblk(self, req: InstanceRequest) -> web.StreamResponse:
        name = req.query.get("source", "")
        if not name:
            raise BadRequest("ingest-labelblk needs source=<the labelblk instance to convert>")
        budget = req.query_int("blocks", DEFAULT_STEP_BLOCKS)
        if budget is None or not 1 <= budget <= MAX_STEP_BLOCKS:
            raise BadRequest(f"blocks must be between 1 and {MAX_STEP_BLOCKS}, got {budget}")
        restart = req.query_bool("restart")
        self.new_mutation_id()
        with self.job("ingest-labelblk", f"a step of the conversion of labelblk {name!r}", "blocks") as job:
            state = await asyncio.to_thread(self.ingest_labelblk, req.ctx, name, budget, restart)
            job.set_total(state.total)
            job.done = state.done
        return json_response(self.ingest_progress(state))

    async def handle_get_ingest_labelblk(self, req: InstanceRequest) -> web.StreamResponse:
        state = await req.small(self.ingest_state, req.ctx)
        if state is None:
            raise NotFound(f"labelmap {self.name!r} holds no conversion from a labelblk at this version")
        return json_response(self.ingest_progress(state))

    # ---- one step ----------------------------------------------------------------------------------
    def ingest_labelblk(self, ctx: DataContext, name: str, budget: int, restart: bool = False) -> IngestState:
        """Convert up to ``budget`` more blocks of labelblk ``name`` at ``ctx``'s version (source blocks,
        then pyramid blocks), continuing the recorded conversion; returns where it then stands."""
        if not self.ingest_lock.acquire(blocking=False):
            raise Conflict(f"labelmap {self.name!r} is running a conversion step already")
        try:
            source = self.ingest_source(name)
            state = None if restart else self.ingest_state(ctx)
            if (
                state is not None
                and not state.complete
                and (state.source != name or state.source_uuid != source.meta.data_uuid)
            ):
                raise Conflict(
                    f"labelmap {self.name!r} is being built from labelblk {state.source!r} ({state.phase},"
                    f" {state.done} of {state.total}): finish that, or start over with restart=true"
                )
            if state is None or (state.complete and state.source != name):
                state = self._new_conversion(ctx, source)
            src_ctx = source.context_at(ctx.ancestry)
            while budget > 0 and not state.complete:
                if state.phase == BLOCKS:
                    budget -= self._convert_batch(ctx, source, src_ctx, state, min(budget, BATCH_BLOCKS))
                else:
                    budget -= self._downres_rows(ctx, state, budget)
            return state
        finally:
            self.ingest_lock.release()

    def _new_conversion(self, ctx: DataContext, source: LabelBlk) -> IngestState:
        src_ctx = source.context_at(ctx.ancestry)
        lo, hi = _whole_range(source.blocks)
        total = sum(1 for _ in src_ctx.keys(lo, hi))
        state = IngestState(source.name, source.meta.data_uuid, total=total, source_blocks=total)
        if total == 0:
            self._start_level(ctx, state, 1)
        ctx.put(INGEST_TKEY, state.to_bytes())
        return state

    # ---- blocks --------------------------------------------------------------------------------------
    def _convert_batch(
        self, ctx: DataContext, source: LabelBlk, src_ctx: DataContext, state: IngestState, count: int
    ) -> int:
        """Store the next ``count`` source blocks after the cursor in one batch with the marker;
        returns how many there were (fewer: the blocks phase is over, and the pyramid begins)."""
        lo, hi = _whole_range(source.blocks)
        after = source.blocks.tkey(*state.cursor) if state.cursor is not None else None
        rows = src_ctx.range(after or lo, hi)
        found = [(source.blocks.coord_of(tk), v) for tk, v in islice(rows, count + 1) if tk != after][:count]
        if found:
            self._store_converted(ctx, source, found, state)
        if len(found) < count:
            self._start_level(ctx, state, 1)
            ctx.put(INGEST_TKEY, state.to_bytes())
        return max(len(found), 1)

    def _store_converted(
        self, ctx: DataContext, source: LabelBlk, found: list[tuple[Point, bytes]], state: IngestState
    ) -> None:
        label_codec, decode = self.label_codec, source.blocks.codec.decode
        with ThreadPoolExecutor(_ENCODERS) as pool:
            values = list(pool.map(lambda item: label_codec.encode(decode(item[1])), found))
        coords = [coord for coord, _ in found]
        box = self.blocks_box(coords)
        self._grow_instance_extents(box)  # first: whenever the server stops, they cover every block
        state.cursor = list(coords[-1])
        state.done += len(found)
        marker = state.to_bytes()

        def also(batch: Any) -> None:
            self.grow_version_extents(batch, ctx, box)
            batch.put(INGEST_TKEY, marker)

        with self.write_lock:
            written = [
                (coord, ctx.get(self.blocks.tkey(*coord)), value)
                for coord, value in zip(coords, values, strict=True)
            ]
            self.blocks.commit_changes(ctx, written, also=also, changes=self._notifier(ctx))

    # ---- the pyramid ------------------------------------------------------------------------------------
    def _start_level(self, ctx: DataContext, state: IngestState, level: int) -> None:
        """Point ``state`` at the first row of scale ``level``'s blocks (complete past the last)."""
        state.cursor, state.done, state.total, state.rows = None, 0, 0, None
        if level > self.settings.MaxDownresLevel:
            state.phase, state.scale = COMPLETE, 0
            return
        state.phase, state.scale = PYRAMID, level
        parents = np.unique(np.floor_divide(self.at_scale(level - 1).blocks.stored_coords(ctx), 2), axis=0)
        state.total = len(parents)
        if not len(parents):
            self._start_level(ctx, state, level + 1)
            return
        (_, y0, z0), (_, y1, z1) = parents.min(axis=0).tolist(), parents.max(axis=0).tolist()
        state.rows = [y0, y1, z0, z1]
        state.cursor = [y0, z0]

    def _downres_rows(self, ctx: DataContext, state: IngestState, budget: int) -> int:
        """Compute rows of parent blocks of ``state.scale`` from the cursor on until ``budget`` blocks
        are done or the scale is; returns the blocks computed (at least 1, so steps end)."""
        level = state.scale
        src, dst = self.at_scale(level - 1), self.at_scale(level)
        assert state.rows is not None and state.cursor is not None
        y0, y1, _, z1 = state.rows
        py, pz = state.cursor
        done = 0
        while pz <= z1 and done < budget:
            xs = self._parent_xs(src.blocks, ctx, py, pz)
            if len(xs):
                coords = np.stack([xs, np.full(len(xs), py), np.full(len(xs), pz)], axis=1)
                for box in _block_row_boxes(coords, dst.block_size):
                    dst.downsample_from(src, ctx, ctx, box)
                done += len(xs)
            py, pz = (py + 1, pz) if py < y1 else (y0, pz + 1)
        state.cursor = [py, pz]
        state.done += done
        if pz > z1:
            self._start_level(ctx, state, level + 1)
        ctx.put(INGEST_TKEY, state.to_bytes())
        return max(done, 1)

    @staticmethod
    def _parent_xs(blocks: BlockStore, ctx: DataContext, py: int, pz: int) -> np.ndarray:
        """The x of the parent blocks in row (py, pz) of the scale above ``blocks``."""
        xs: list[int] = []
        for z in (2 * pz, 2 * pz + 1):
            lo, hi = blocks.tkey(_I32_MIN, 2 * py, z), blocks.tkey(_I32_MAX, 2 * py + 1, z)
            xs += [blocks.coord_of(tk)[0] for tk in ctx.keys(lo, hi)]
        return np.unique(np.floor_divide(np.array(xs, dtype=np.int64), 2))


def _whole_range(blocks: BlockStore) -> tuple[bytes, bytes]:
    return blocks.tkey(_I32_MIN, _I32_MIN, _I32_MIN), blocks.tkey(_I32_MAX, _I32_MAX, _I32_MAX)
