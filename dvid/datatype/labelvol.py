"""labelvol: sparse volumes, i.e. for every label the runs of its voxels, block by block.

Kept in step with a ``labelblk`` it syncs from: every write of label blocks recomputes the runs of
the blocks written and raises the max labels, in the same atomic batch as the blocks (a
``sync.BlockListener``, see dvid.datatype.common.sync), so both instances agree at the version the
write was made in, and ``nextlabel`` never hands out a label in use, whenever the server stops.

Storage (spec image-label.md §3.1): tkey class 227 = label (u64 BE) + ZYX block index, value = the
label's runs in that block (16 bytes each, no header); class 228 = the max label of a version (u64 LE,
read through the version's ancestry); class 229 at the root version = the repo-wide max label, which
``nextlabel`` reservations also raise.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from aiohttp import web

from dvid.dag.ancestry import Ancestry
from dvid.datatype.base import Datatype, InstanceMeta, Route
from dvid.datatype.common import rle, sync
from dvid.datatype.common.blockstore import BLOCK_CLASS, block_coord
from dvid.datatype.common.bounds import BOUNDS_QUERY, Bounds
from dvid.datatype.common.geometry import Box, Point, parse_ints
from dvid.datatype.common.maxlabels import raise_max_labels, stored_u64
from dvid.datatype.common.request import InstanceRequest, json_response, octet_response
from dvid.datatype.common.route import (
    BINARY,
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
from dvid.datatype.common.sync import BlockChange, Decode, LabelSource
from dvid.datatype.common.wire import compress_wire
from dvid.datatype.imageblk import ImageSettings
from dvid.datatype.registry import register
from dvid.errors import BadRequest, NotFound, PayloadTooLarge
from dvid.storage import keys
from dvid.storage.versioned import DataContext, VersionedBatch

RUNS_CLASS = 227
MAXLABEL_CLASS = 228
REPO_MAXLABEL_CLASS = 229
MAXLABEL_TKEY = keys.tkey(MAXLABEL_CLASS)
REPO_MAXLABEL_TKEY = keys.tkey(REPO_MAXLABEL_CLASS)
MAX_LABEL = 2**64 - 1
MAX_RESERVE = 2**32  # labels one nextlabel POST may reserve
MAX_SPLIT_BLOCKS = 1_000_000  # blocks one split body may cross, or one split-coarse body list
RESYNC_BATCH_BLOCKS = 256  # label blocks whose runs one resync batch writes
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1

HELP = """\
labelvol: sparse volumes (the voxels of each label as runs)
===========================================================

For every label, the runs of its voxels: a run is one row of x-consecutive voxels (x, y, z, length),
stored per (label, block) under DVID's key layout. A labelvol is normally synced to a labelblk of
the same BlockSize: every write to the labelblk (raw or blocks POST) recomputes the runs of the
blocks written and raises maxlabel and nextlabel, atomically with the write and at the same version,
so the two always agree, even after a crash. Label 0 (background) is never indexed. Reads at a
version see exactly that version's history.

Creation (POST /api/repo/{uuid}/instance), settings are strings:
    {"typename": "labelvol", "dataname": "bodies",
     "BlockSize": "64,64,64",      must equal the synced labelblk's (default 64,64,64, as labelblk)
     "VoxelSize": "8,8,8",
     "VoxelUnits": "nanometers"}

Setting up the sync (DVID needs both directions; this server derives the runs from the first):
    POST /api/node/{uuid}/bodies/sync          {"sync": "segmentation"}
    POST /api/node/{uuid}/segmentation/sync    {"sync": "bodies"}
Blocks written to the labelblk before the sync are not indexed until POST resync.

Paths below are under /api/node/{uuid}/{dataname}. <label> is a decimal uint64 other than 0.

GET  help                     This text.
GET  info                     {"Base": ..., "Extended": {"BlockSize", "VoxelSize", "VoxelUnits",
                              "MaxRepoLabel"}}; Base.Syncs names the synced instances.
POST sync[?replace=true]      Body {"sync": "name1,name2"}: receive changes from these labelblk
                              instances (added to the current syncs, or replacing them; with
                              replace=true, "" clears them). 404 unknown instance; 400 an instance
                              of another type or with a different BlockSize.
GET  sparsevol/<label>[?minx=&maxx=&miny=&maxy=&minz=&maxz=&exact=&compression=]
                              The label's voxels in DVID's legacy sparsevol format: bytes 0-3
                              = 0, 3, 0, 0 (binary payload, 3 dimensions, runs along x, reserved),
                              u32 voxel count (written as 0, as DVID), u32 number of runs, then per
                              run int32 x, y, z, length (little-endian). Runs are sorted by (z, y, x)
                              and coalesced (a run may cross block edges; unlike DVID's, which come
                              block by block). The optional bounds are inclusive voxel coordinates;
                              with exact=true (default) runs are clipped to them, with exact=false
                              whole blocks touching the bounds are returned. compression=lz4 sends
                              a bare LZ4 block of the payload, compression=gzip a gzip stream.
                              404 (empty body) if the label has no voxels (within the bounds).
HEAD sparsevol/<label>[?bounds]
                              200 if the label has voxels (in blocks meeting the bounds), 204 if
                              not; no body (what neuclease and libdvid expect).
GET  sparsevol-by-point/<x_y_z>[?bounds...]
                              The sparsevol of the label at that voxel of the synced labelblk. 400
                              without a synced labelblk; 404 if the voxel is background (0).
GET  sparsevol-coarse/<label> The blocks holding the label, in the same layout as sparsevol but
                              with runs of block coordinates (int32 bx, by, bz, number of blocks
                              along x). 404 if the label has no voxels.
GET  maxlabel                 {"maxlabel": N}: the largest label written at this version or any
                              ancestor of it (0 if none). Unlike DVID, a child version without
                              writes of its own answers its parent's value instead of an error.
GET  nextlabel                {"nextlabel": N}: one more than the largest label written or reserved
                              in the repo (any version).
POST nextlabel/<k>            Reserve k new labels: {"start": a, "end": b} with b - a + 1 = k. The
                              reservation is persisted, so no label is handed out twice.
POST resync                   Rebuild this instance's runs at this version from every block of the
                              synced labelblk visible at this version: for data written to the
                              labelblk before the sync existed, or to repair. Runs that differ are
                              rewritten and runs of labels no longer in a block (or of blocks not in
                              the labelblk) are deleted, at this version only (ancestors keep theirs);
                              unchanged runs are left alone, so a second resync changes nothing.
                              maxlabel and nextlabel are raised to the largest label seen. Done under
                              the labelblk's write lock (its writes and edits wait), block by block:
                              the runs of each group of up to 256 blocks go in one atomic batch (with
                              maxlabel and nextlabel raised to the largest label seen so far), so a
                              resync that fails midway leaves the groups done rebuilt and the rest as
                              they were (POST resync again to finish). Reply {"blocks": n label blocks
                              read, "labels": m distinct labels other than 0 found}. 400 without a
                              synced labelblk.

Edits (need the synced labelblk; each rewrites the labelblk's voxels and this instance's runs in the
blocks touched, under the labelblk's write lock in ONE atomic batch, so on any error nothing changes;
they apply at the request's version only and are done when the reply is sent, unlike DVID's):
POST merge                    Body JSON [toLabel, fromLabel1, ...]: at least 2 distinct labels other
                              than 0. Every voxel of the from-labels becomes toLabel. 400 malformed
                              body; 404 (naming it) a label without voxels at this version.
                              Reply {"label": toLabel, "merged": [from...], "blocks": n rewritten}.
POST split/<label>[?splitlabel=N]
                              Body: a legacy sparsevol payload (format above; runs may overlap and
                              need not be sorted). Its voxels, all of which must have <label> now
                              (else 400 naming a voxel, nothing changed), get a new label: N if given
                              (400 if N is in use at this version), else one reserved as by POST
                              nextlabel/1 (and not reused if the split then fails). Reply
                              {"label": new}. maxlabel and nextlabel follow. 413 if the runs hold
                              more voxels than max_request_voxels or cross more than 1,000,000 blocks.
POST split-coarse/<label>[?splitlabel=N]
                              Body: block spans in the sparsevol-coarse layout. Every voxel of <label>
                              in those blocks gets the new label (chosen as for split). 404 if the
                              label has no voxels; 413 a body listing more than 1,000,000 blocks.
                              Reply {"label": new}.
DELETE area/<label>/<size>/<offset>
                              The voxels of <label> inside the box (nx_ny_nz, x_y_z; any alignment)
                              become 0 in the labelblk, and its runs there go. Reply {"blocks": n}.

Not implemented yet (404, as any unknown endpoint): the instance-config PUT. Writes to a
labelblk's pyramid levels (NAME_1 ...) do not feed labelvols (edits do update the levels).

Errors: 400 label 0 or a malformed label, point, bound, option or edit body; 404 unknown instance
or label without voxels; 409 a write (merge, split, split-coarse, area, resync) to a committed
version.
"""


SPARSEVOL_QUERY = (
    *BOUNDS_QUERY,
    flag("exact", "Clip runs to the bounds (default true); false: whole blocks touching them"),
    query("compression", description="Payload compression", enum=("lz4", "gzip")),
    THROTTLE_QUERY,
)
RESERVE_COUNT = Param(
    "count", "integer", "Number of labels to reserve", minimum=1, maximum=MAX_RESERVE, example="1"
)
SPLIT_LABEL = query(
    "splitlabel", "integer", "The new label (default: a reserved one)", minimum=1, maximum=MAX_LABEL
)


class LabelVolSettings(ImageSettings):
    """labelvol creation settings: BlockSize, VoxelSize, VoxelUnits (the image settings' parsing)."""

    BlockSize: tuple[int, int, int] = (64, 64, 64)


def runs_tkey(label: int, bx: int, by: int, bz: int) -> bytes:
    return keys.tkey(RUNS_CLASS, struct.pack(">Q", label) + keys.zyx_bytes(bx, by, bz))


def runs_tkey_coord(tk: bytes) -> Point:
    """The (x, y, z) block coordinate of a class-227 tkey."""
    return keys.zyx_from_bytes(tk, 10)


def parse_label(text: str) -> int:
    try:
        label = int(text)
    except ValueError:
        raise BadRequest(f"label must be a decimal unsigned 64-bit integer, got {text!r}") from None
    if label == 0:
        raise BadRequest("label 0 is background and has no sparse volume")
    if not 0 < label <= MAX_LABEL:
        raise BadRequest(f"label must be between 1 and 2^64-1, got {text!r}")
    return label


@register
class LabelVol(Datatype):
    type_name = "labelvol"
    type_url = "github.com/janelia-flyem/dvid/datatype/labelvol"
    type_version = "0.1"
    help_text = HELP
    Settings = LabelVolSettings
    sync_requires = (sync.LabelSource,)
    listens = (sync.BlockListener,)
    routes = (
        Route("sparsevol", ("GET",), "handle_sparsevol", mutates=False, heavy=True,
              summary="The label's voxels as runs (legacy sparsevol format)", args=(BODY_LABEL,),
              query=SPARSEVOL_QUERY, produces=(BINARY,), empty_statuses=(404,)),
        Route("sparsevol", ("HEAD",), "handle_sparsevol", mutates=False, heavy=True,
              summary="200 if the label has voxels (within the bounds), 204 if not", args=(BODY_LABEL,),
              query=(*BOUNDS_QUERY, THROTTLE_QUERY), produces=(), statuses=(204,)),
        Route("sparsevol-by-point", ("GET",), "handle_sparsevol_by_point", mutates=False, heavy=True,
              summary="The sparsevol of the label at a voxel of the synced labelblk", args=(POINT,),
              query=SPARSEVOL_QUERY, produces=(BINARY,), empty_statuses=(404,)),
        Route("sparsevol-coarse", ("GET",), "handle_sparsevol_coarse", mutates=False,
              summary="The blocks holding the label, as runs of blocks", args=(BODY_LABEL,),
              produces=(BINARY,), empty_statuses=(404,)),
        Route("maxlabel", ("GET",), "handle_maxlabel", mutates=False,
              summary="The largest label written at this version or its ancestors"),
        Route("nextlabel", ("GET",), "handle_get_nextlabel", mutates=False,
              summary="One more than the largest label written or reserved in the repo"),
        # a repo-wide reservation, not version data: allowed on committed versions too
        Route("nextlabel", ("POST",), "handle_post_nextlabel", mutates=False,
              summary="Reserve new labels", args=(RESERVE_COUNT,)),
        Route("merge", ("POST",), "handle_merge", heavy=True,
              summary="Merge labels: body [toLabel, fromLabel1, ...]", consumes=(JSON,)),
        Route("split", ("POST",), "handle_split", heavy=True,
              summary="Give the voxels of a sparsevol body a new label", args=(BODY_LABEL,),
              query=(SPLIT_LABEL,), consumes=(BINARY,)),
        Route("split-coarse", ("POST",), "handle_split_coarse", heavy=True,
              summary="Give the label's voxels in the body's blocks a new label", args=(BODY_LABEL,),
              query=(SPLIT_LABEL,), consumes=(BINARY,)),
        Route("area", ("DELETE",), "handle_delete_area", heavy=True,
              summary="Erase the label's voxels inside a box", args=(BODY_LABEL, SIZE3, OFFSET)),
        Route("resync", ("POST",), "handle_resync", heavy=True,
              summary="Rebuild the runs at this version from the synced labelblk"),
    )  # fmt: skip

    settings: LabelVolSettings

    def __init__(self, meta: InstanceMeta, *args: Any, **kwargs: Any) -> None:
        super().__init__(meta, *args, **kwargs)
        self.maxlabel_lock = threading.Lock()

    @property
    def block_size(self) -> Point:
        return tuple(self.settings.BlockSize)  # type: ignore[return-value]

    # ---- info --------------------------------------------------------------------------------
    def extended_info(self) -> dict[str, Any]:
        s = self.settings
        repo_max = 0
        if self.repo_access is not None:
            repo_max = stored_u64(self.context(self.repo_access.root_ancestry()).get(REPO_MAXLABEL_TKEY))
        return {
            "BlockSize": list(s.BlockSize),
            "VoxelSize": list(s.VoxelSize),
            "VoxelUnits": list(s.VoxelUnits),
            "MaxRepoLabel": repo_max,
        }

    # ---- syncs -------------------------------------------------------------------------------
    def check_sync_target(self, target: Datatype) -> None:
        other = tuple(getattr(target, "block_size", ()))
        if other != self.block_size:
            raise BadRequest(
                f"labelvol {self.name!r} has BlockSize {list(self.block_size)} but labelblk"
                f" {target.name!r} has {list(other)}: they must be equal to sync"
            )

    def synced_labelblk(self) -> LabelSource:
        """The label source (labelblk) this instance syncs from (400 if none)."""
        if self.repo_access is not None:
            for inst in self.repo_access.siblings():
                if inst.meta.data_uuid in self.meta.syncs and isinstance(inst, LabelSource):
                    return inst
        raise BadRequest(f"labelvol {self.name!r} is not synced to a labelblk")

    def label_source(self) -> LabelSource | None:
        """The labelblk whose voxels these sparse volumes index (sync.LabelProvider)."""
        try:
            return self.synced_labelblk()
        except BadRequest:
            return None

    def blocks_changed(
        self,
        batch: VersionedBatch,
        ancestry: Ancestry,
        written: list[BlockChange],
        decode: Decode,
    ) -> None:
        """Recompute the runs of the label blocks just written (called by the labelblk under its write
        lock, inside its batch): labels gone from a block lose their key there, changed or new ones
        get their runs, unchanged ones are left alone; maxlabel is raised in the same batch."""
        ctx = self.context_at(ancestry)
        bs = self.block_size
        max_label = 0
        with sync.joined_batch(batch, ctx) as out:
            for coord, old, new in written:
                if old == new:
                    continue
                origin = (coord[0] * bs[0], coord[1] * bs[1], coord[2] * bs[2])
                before: dict[int, bytes] = {}
                if old is not None:
                    labels, runs, offsets = rle.block_runs_by_label(decode(old), origin)
                    for i, label in enumerate(labels.tolist()):
                        before[label] = rle.runs_to_bytes(runs[offsets[i] : offsets[i + 1]])
                labels, runs, offsets = rle.block_runs_by_label(decode(new), origin)
                for i, label in enumerate(labels.tolist()):
                    value = rle.runs_to_bytes(runs[offsets[i] : offsets[i + 1]])
                    if before.pop(label, None) != value:
                        out.put(runs_tkey(label, *coord), value)
                for label in before:
                    out.delete(runs_tkey(label, *coord))
                if len(labels):
                    max_label = max(max_label, int(labels[-1]))
            if max_label:
                self.raise_maxlabel(out, ancestry, max_label)

    def commit_raising_maxlabel(self, batch: VersionedBatch, ancestry: Ancestry, label: int) -> None:
        """Commit a batch of this instance with the max labels raised to ``label`` (if not 0)."""
        with batch:  # commits; on an error, releases the max label lock instead
            if label:
                self.raise_maxlabel(batch, ancestry, label)

    def raise_maxlabel(self, batch: VersionedBatch, ancestry: Ancestry, label: int) -> None:
        """Raise the version's and the repo's max label to ``label`` in ``batch`` (a batch of this
        instance), which holds the max label lock until it is committed or abandoned (so use it in
        a ``with``): the labels a write brings and the counters that keep ``nextlabel`` above them
        are stored together."""
        batch.hold(self.maxlabel_lock)
        ctx, root = self.context_at(ancestry), self.root_context(ancestry)
        raise_max_labels(batch, ctx, root, MAXLABEL_TKEY, REPO_MAXLABEL_TKEY, label)

    def reserve_labels(self, ancestry: Ancestry, count: int) -> tuple[int, int]:
        """Hand out ``count`` labels above every label written or reserved so far (persisted)."""
        with self.maxlabel_lock:
            root = self.root_context(ancestry)
            start = stored_u64(root.get(REPO_MAXLABEL_TKEY)) + 1
            end = start + count - 1
            if end > MAX_LABEL:
                raise BadRequest(f"cannot reserve {count} labels: the labels above {start - 1} run out")
            root.put(REPO_MAXLABEL_TKEY, struct.pack("<Q", end))
            return start, end

    # ---- resync --------------------------------------------------------------------------------
    def resync(self, ancestry: Ancestry) -> tuple[int, int]:
        """Rebuild this instance's runs at a version from the synced labelblk's blocks visible there.

        Under the labelblk's write lock. Every visible run key is indexed by block first (keys only);
        then block by block the labels' runs are recomputed: changed or new runs are put, unchanged
        ones left alone, indexed labels the block no longer holds are tombstoned, and after the last
        block so is every key of a block the labelblk does not hold. Writes are committed in atomic
        batches of ``RESYNC_BATCH_BLOCKS`` blocks (documented in the help text). Returns (number of
        label blocks read, number of distinct non-zero labels found); each batch raises maxlabel to the
        largest label seen so far.
        """
        labelblk = self.synced_labelblk()
        lb_ctx = labelblk.context_at(ancestry)
        ctx = self.context_at(ancestry)
        decode = labelblk.decode_block
        bs = self.block_size
        n_blocks, max_label = 0, 0
        seen: set[int] = set()
        with labelblk.write_lock:
            indexed: dict[Point, set[int]] = {}
            for tk in ctx.keys(keys.min_tkey(RUNS_CLASS), keys.max_tkey(RUNS_CLASS)):
                if len(tk) == 22:
                    label = struct.unpack_from(">Q", tk, 2)[0]
                    indexed.setdefault(runs_tkey_coord(tk), set()).add(label)
            batch, pending = ctx.batch(), 0
            for tk, stored in lb_ctx.range(keys.min_tkey(BLOCK_CLASS), keys.max_tkey(BLOCK_CLASS)):
                if len(tk) != 14:  # not a block key
                    continue
                coord = block_coord(tk)
                origin = (coord[0] * bs[0], coord[1] * bs[1], coord[2] * bs[2])
                labels, runs, offsets = rle.block_runs_by_label(decode(stored), origin)
                old = indexed.pop(coord, set())
                for i, label in enumerate(labels.tolist()):
                    value = rle.runs_to_bytes(runs[offsets[i] : offsets[i + 1]])
                    key = runs_tkey(label, *coord)
                    if label in old:
                        old.discard(label)
                        if ctx.get(key) == value:
                            continue
                    batch.put(key, value)
                for label in old:
                    batch.delete(runs_tkey(label, *coord))
                if len(labels):
                    seen.update(labels.tolist())
                    max_label = max(max_label, int(labels[-1]))
                n_blocks += 1
                pending += 1
                if pending >= RESYNC_BATCH_BLOCKS:
                    self.commit_raising_maxlabel(batch, ancestry, max_label)
                    batch, pending = ctx.batch(), 0
            for coord, old in indexed.items():  # runs of blocks the labelblk does not hold
                for label in old:
                    batch.delete(runs_tkey(label, *coord))
                pending += 1
                if pending >= RESYNC_BATCH_BLOCKS:
                    batch.commit()
                    batch, pending = ctx.batch(), 0
            self.commit_raising_maxlabel(batch, ancestry, max_label)
        return n_blocks, len(seen)

    # ---- edits: merge, split, area delete ----------------------------------------------------
    def edit_blocks(
        self,
        ancestry: Ancestry,
        find_blocks: Callable[[DataContext, DataContext], list[Point]],
        relabel: Callable[[Point, np.ndarray], np.ndarray | None],
    ) -> int:
        """Rewrite label blocks of the synced labelblk, through its one commit-and-notify path: the
        new blocks and what every listener (this instance's runs included) derives from them go into
        one batch, so an error leaves everything as it was.

        ``find_blocks(labelblk ctx, own ctx)`` lists the blocks to edit (it may validate and raise),
        ``relabel(coord, block)`` returns the new block (or None if unchanged; it may raise, e.g.
        for runs outside a body). Returns the number of blocks rewritten.
        """
        labelblk = self.synced_labelblk()
        own = self.context_at(ancestry)
        edited = labelblk.edit_blocks(
            labelblk.context_at(ancestry), lambda lb_ctx: find_blocks(lb_ctx, own), relabel
        )
        return len(edited)

    def merge(self, ancestry: Ancestry, target: int, merged: list[int]) -> int:
        """Relabel every voxel of the ``merged`` labels as ``target`` (all must exist: else 404)."""
        lookup = np.array(merged, dtype=np.uint64)

        def find_blocks(_: DataContext, ctx: DataContext) -> list[Point]:
            for label in (target, *merged):
                if not self.has_label(ctx, label):
                    raise NotFound(f"label {label} has no voxels in {self.name!r} at this version")
            coords = np.concatenate([self.label_blocks(ctx, label) for label in merged])
            return [tuple(c) for c in np.unique(coords[:, ::-1], axis=0)[:, ::-1].tolist()]

        def relabel(_: Point, block: np.ndarray) -> np.ndarray | None:
            hit = np.isin(block, lookup)
            if not hit.any():
                return None
            out = block.copy()
            out[hit] = target
            return out

        return self.edit_blocks(ancestry, find_blocks, relabel)

    def _check_split_label(self, ctx: DataContext, label: int, new_label: int) -> None:
        if new_label == label:
            raise BadRequest(f"splitlabel {new_label} is the label being split")
        if self.has_label(ctx, new_label):
            raise BadRequest(f"splitlabel {new_label} is already in use at this version")

    def split(self, ancestry: Ancestry, label: int, new_label: int, runs: np.ndarray) -> int:
        """Give the voxels of ``runs`` (all of which must have ``label``) the label ``new_label``."""
        bs = self.block_size
        by_block = rle.split_runs_by_block(runs, bs)
        shape = (bs[2], bs[1], bs[0])

        def find_blocks(_: DataContext, ctx: DataContext) -> list[Point]:
            self._check_split_label(ctx, label, new_label)
            return list(by_block)

        def relabel(coord: Point, block: np.ndarray) -> np.ndarray | None:
            origin = (coord[0] * bs[0], coord[1] * bs[1], coord[2] * bs[2])
            mask = rle.runs_mask_in_block(by_block[coord], origin, shape)
            if (block[mask] != label).any():
                z, y, x = (int(v[0]) for v in np.nonzero(mask & (block != label)))
                raise BadRequest(
                    f"split runs include voxel {(origin[0] + x, origin[1] + y, origin[2] + z)}"
                    f" which is not part of label {label}"
                )
            out = block.copy()
            out[mask] = new_label
            return out

        return self.edit_blocks(ancestry, find_blocks, relabel)

    def split_coarse(self, ancestry: Ancestry, label: int, new_label: int, blocks: np.ndarray) -> int:
        """Give every voxel of ``label`` inside the listed blocks the label ``new_label``."""
        wanted = {tuple(c) for c in blocks.tolist()}

        def find_blocks(_: DataContext, ctx: DataContext) -> list[Point]:
            self._check_split_label(ctx, label, new_label)
            if not self.has_label(ctx, label):
                raise NotFound(f"label {label} has no voxels in {self.name!r} at this version")
            return [c for c in map(tuple, self.label_blocks(ctx, label).tolist()) if c in wanted]

        def relabel(_: Point, block: np.ndarray) -> np.ndarray | None:
            hit = block == label
            if not hit.any():
                return None
            out = block.copy()
            out[hit] = new_label
            return out

        return self.edit_blocks(ancestry, find_blocks, relabel)

    def delete_area(self, ancestry: Ancestry, label: int, box: Box) -> int:
        """Set the voxels of ``label`` inside ``box`` to 0 (background)."""
        bs = self.block_size
        first, last = box.block_range(bs)
        lo = np.array(box.offset, dtype=np.int64)
        hi = lo + np.array(box.size, dtype=np.int64)

        def find_blocks(_: DataContext, ctx: DataContext) -> list[Point]:
            coords = self.label_blocks(ctx, label)
            inside = ((coords >= np.array(first)) & (coords <= np.array(last))).all(axis=1)
            return [tuple(c) for c in coords[inside].tolist()]

        def relabel(coord: Point, block: np.ndarray) -> np.ndarray | None:
            b0 = np.array(coord, dtype=np.int64) * np.array(bs)
            a, b = np.maximum(lo, b0) - b0, np.minimum(hi, b0 + np.array(bs)) - b0
            region = (slice(a[2], b[2]), slice(a[1], b[1]), slice(a[0], b[0]))
            hit = block[region] == label
            if not hit.any():
                return None
            out = block.copy()
            out[region][hit] = 0
            return out

        return self.edit_blocks(ancestry, find_blocks, relabel)

    # ---- reads -------------------------------------------------------------------------------
    def _label_range(self, label: int, bounds: Bounds | None) -> tuple[bytes, bytes]:
        lo_z, hi_z = bounds.block_limits(2) if bounds is not None else (_I32_MIN, _I32_MAX)
        lo = runs_tkey(label, _I32_MIN, _I32_MIN, lo_z)
        hi = runs_tkey(label, _I32_MAX, _I32_MAX, hi_z)
        return lo, hi

    def has_label(self, ctx: DataContext, label: int, bounds: Bounds | None = None) -> bool:
        for tk in ctx.keys(*self._label_range(label, bounds)):
            if bounds is None or bounds.block_inside(runs_tkey_coord(tk)):
                return True
        return False

    def label_blocks(self, ctx: DataContext, label: int) -> np.ndarray:
        """The (bx, by, bz) blocks holding the label, (n, 3) int32 in (z, y, x) order."""
        coords = [runs_tkey_coord(tk) for tk in ctx.keys(*self._label_range(label, None))]
        return np.array(coords, dtype=np.int32).reshape(-1, 3)

    def label_runs(self, ctx: DataContext, label: int, bounds: Bounds | None = None, exact: bool = True):
        """The label's runs sorted by (z, y, x) and coalesced, within the bounds (clipped if exact)."""
        parts = []
        for tk, value in ctx.range(*self._label_range(label, bounds)):
            if bounds is None or bounds.block_inside(runs_tkey_coord(tk)):
                parts.append(rle.runs_from_bytes(value))
        if not parts:
            return rle.empty_runs()
        runs = rle.merge_runs(np.concatenate(parts))
        if exact and bounds is not None and bounds.any:
            runs = rle.clip_runs(runs, **bounds.values)
        return runs

    # ---- handlers ----------------------------------------------------------------------------
    def _bounds(self, req: InstanceRequest) -> Bounds:
        return Bounds.from_query(req, self.block_size)

    @staticmethod
    def _output_compression(req: InstanceRequest) -> str:
        compression = req.query.get("compression", "")
        if compression not in ("", "lz4", "gzip"):
            raise BadRequest(f'compression for sparsevol must be lz4 or gzip, got "{compression}"')
        return compression

    async def _sparsevol_response(self, req: InstanceRequest, label: int) -> web.StreamResponse:
        bounds = self._bounds(req)
        exact = req.query_bool("exact", True)
        compression = self._output_compression(req)

        def build() -> bytes | None:
            runs = self.label_runs(req.ctx, label, bounds, exact)
            if not len(runs):
                return None
            body = rle.encode_sparsevol(runs)
            return compress_wire(memoryview(body), compression) if compression else body

        body = await asyncio.to_thread(build)
        if body is None:
            return web.Response(status=404)
        return octet_response(body)

    async def handle_sparsevol(self, req: InstanceRequest) -> web.StreamResponse:
        label = parse_label(req.arg(0, "a label"))
        if req.method == "HEAD":
            bounds = self._bounds(req)
            found = await asyncio.to_thread(self.has_label, req.ctx, label, bounds)
            return web.Response(status=200 if found else 204)
        return await self._sparsevol_response(req, label)

    async def handle_sparsevol_by_point(self, req: InstanceRequest) -> web.StreamResponse:
        point = np.array([parse_ints(req.arg(0, "a point x_y_z"), 3, "point")], dtype=np.int64)
        labelblk = self.synced_labelblk()
        (label,) = await asyncio.to_thread(labelblk.labels_at, req.context_for(labelblk), point)
        if int(label) == 0:
            raise NotFound(f"no label at point {tuple(int(v) for v in point[0])} (background)")
        return await self._sparsevol_response(req, int(label))

    async def handle_sparsevol_coarse(self, req: InstanceRequest) -> web.StreamResponse:
        label = parse_label(req.arg(0, "a label"))
        coords = await asyncio.to_thread(self.label_blocks, req.ctx, label)
        if not len(coords):
            return web.Response(status=404)
        return octet_response(rle.encode_sparsevol_coarse(coords))

    async def handle_maxlabel(self, req: InstanceRequest) -> web.StreamResponse:
        return json_response({"maxlabel": stored_u64(await req.small(req.ctx.get, MAXLABEL_TKEY))})

    async def handle_get_nextlabel(self, req: InstanceRequest) -> web.StreamResponse:
        return json_response(
            {"nextlabel": stored_u64(self.root_context(req.ancestry).get(REPO_MAXLABEL_TKEY)) + 1}
        )

    async def handle_post_nextlabel(self, req: InstanceRequest) -> web.StreamResponse:
        text = req.arg(0, "the number of labels to reserve")
        try:
            count = int(text)
        except ValueError:
            raise BadRequest(f"nextlabel/<count> needs a positive integer, got {text!r}") from None
        if not 0 < count <= MAX_RESERVE:
            raise BadRequest(f"nextlabel can reserve 1 to {MAX_RESERVE} labels at once, not {count}")
        start, end = await asyncio.to_thread(self.reserve_labels, req.ancestry, count)
        return json_response({"start": start, "end": end})

    @staticmethod
    def _merge_labels(body: Any) -> list[int]:
        if not isinstance(body, list) or len(body) < 2:
            raise BadRequest("merge needs a JSON list [toLabel, fromLabel1, ...] of at least 2 labels")
        labels = []
        for v in body:
            if not isinstance(v, int) or isinstance(v, bool) or not 0 < v <= MAX_LABEL:
                raise BadRequest(f"merge labels must be integers between 1 and 2^64-1, got {v!r}")
            labels.append(v)
        if len(set(labels)) != len(labels):
            raise BadRequest(f"merge labels must be distinct, got {labels}")
        return labels

    async def handle_merge(self, req: InstanceRequest) -> web.StreamResponse:
        target, *merged = self._merge_labels(await req.json())
        count = await asyncio.to_thread(self.merge, req.ancestry, target, merged)
        return json_response({"label": target, "merged": merged, "blocks": count})

    def _split_label(self, req: InstanceRequest) -> int | None:
        text = req.query.get("splitlabel")
        return None if text is None or text == "" else parse_label(text)

    async def _do_split(self, req: InstanceRequest, label: int, edit: Callable[[int], int]) -> web.Response:
        given = self._split_label(req)
        if given is None:
            new_label, _ = await asyncio.to_thread(self.reserve_labels, req.ancestry, 1)
        else:
            new_label = given
        await asyncio.to_thread(edit, new_label)
        return json_response({"label": new_label})

    async def handle_split(self, req: InstanceRequest) -> web.StreamResponse:
        label = parse_label(req.arg(0, "a label"))
        runs = rle.decode_sparsevol(await req.body())
        if not len(runs):
            raise BadRequest("split body holds no runs")
        # Bounded before the runs are cut at block edges: one run of 2^31 voxels is 67 million
        # pieces (it took minutes and gigabytes; fuzz, issue 11).
        req.limits.check_voxels(int(np.maximum(runs[:, 3].astype(np.int64), 0).sum()))
        pieces = rle.block_pieces(runs, self.block_size)
        if pieces > MAX_SPLIT_BLOCKS:
            raise PayloadTooLarge(f"split body's runs cross {pieces} blocks, more than {MAX_SPLIT_BLOCKS}")
        ancestry = req.ancestry
        return await self._do_split(req, label, lambda new: self.split(ancestry, label, new, runs))

    async def handle_split_coarse(self, req: InstanceRequest) -> web.StreamResponse:
        label = parse_label(req.arg(0, "a label"))
        runs = rle.decode_sparsevol(await req.body())
        if not len(runs):
            raise BadRequest("split-coarse body holds no block spans")
        total = int(runs[:, 3].astype(np.int64).sum())
        if total > MAX_SPLIT_BLOCKS:
            raise PayloadTooLarge(f"split-coarse body lists {total} blocks, more than {MAX_SPLIT_BLOCKS}")
        blocks = rle.coarse_runs_to_blocks(runs)
        ancestry = req.ancestry
        return await self._do_split(req, label, lambda new: self.split_coarse(ancestry, label, new, blocks))

    async def handle_delete_area(self, req: InstanceRequest) -> web.StreamResponse:
        label = parse_label(req.arg(0, "a label"))
        size = parse_ints(req.arg(1, "a size nx_ny_nz"), 3, "size", positive=True)
        offset = parse_ints(req.arg(2, "an offset x_y_z"), 3, "offset")
        box = Box(offset, size)  # type: ignore[arg-type]
        count = await asyncio.to_thread(self.delete_area, req.ancestry, label, box)
        return json_response({"blocks": count})

    async def handle_resync(self, req: InstanceRequest) -> web.StreamResponse:
        self.synced_labelblk()  # 400 before any work
        with self.job("resync", f"rebuilding the sparse volumes from labelblk at {req.uuid[:8]}"):
            blocks, labels = await asyncio.to_thread(self.resync, req.ancestry)
        return json_response({"blocks": blocks, "labels": labels})
