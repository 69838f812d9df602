"""The state of a labelmap: supervoxel blocks per scale, the body mapping, label indexes, label
counters, and the one path blocks are committed by (indexes, max labels and listeners with them).

A labelmap is a labelblk whose blocks hold *supervoxel* ids in DVID's compressed Block format, under
one key space per scale. Reads see *bodies*: each block's label table goes through the version's
supervoxel -> body mapping before it is expanded (``view``), unless ``supervoxels=true``. Scales
1..MaxDownresLevel are views of the same instance (``at_scale``), so the image types' pyramid code
keeps them current.
"""

from __future__ import annotations

import copy
import logging
import threading
from typing import Any

import numpy as np

from dvid.dag.ancestry import Ancestry
from dvid.datatype.base import InstanceMeta
from dvid.datatype.common import envelope, sync
from dvid.datatype.common.blockstore import EXTENTS_TKEY, BlockStore, WritePlan
from dvid.datatype.common.geometry import Box, Point
from dvid.datatype.common.maxlabels import raise_max_labels
from dvid.datatype.common.maxlabels import stored_u64 as u64
from dvid.datatype.common.sync import BlockChange
from dvid.datatype.imageblk.settings import _extents_value, _grow
from dvid.datatype.labelblk import LabelBlk
from dvid.datatype.labelmap import codec, tkeys
from dvid.datatype.labelmap.blocks import LabelBlockCodec, TableMap, gunzip_block, scale_store
from dvid.datatype.labelmap.labelindex import IndexStore, LabelIndex, pack_block_coords
from dvid.datatype.labelmap.mapping import Mapping, local_uuid
from dvid.datatype.labelmap.settings import LabelMapSettings
from dvid.datatype.labelmap.tkeys import MAXLABEL_TKEY, REPO_MAXLABEL_TKEY
from dvid.errors import BadRequest
from dvid.storage import keys
from dvid.storage.versioned import DataContext, VersionedBatch

log = logging.getLogger("dvid.labelmap")

#: Largest scale a request may name (the key holds one byte).
MAX_SCALE = 255


class LabelMapCore(LabelBlk):
    """A labelmap's state and model; the HTTP layer is :class:`~dvid.datatype.labelmap.handlers.LabelMap`."""

    Settings = LabelMapSettings
    default_compression = "gzip"
    settings: LabelMapSettings

    def __init__(self, meta: InstanceMeta, *args: Any, **kwargs: Any) -> None:
        super().__init__(meta, *args, **kwargs)
        #: the scale this object reads and writes (views of other scales are shallow copies)
        self.scale = 0
        #: whether reads through this object see supervoxels (True) or bodies
        self.supervoxels = True
        #: whether labels_at maps what the blocks hold to bodies (the instance itself, not its views)
        self.body_labels_at = True
        self.blocks: BlockStore = scale_store(self.block_size, self.compression, 0)
        self.mapping = Mapping(version_uuid=self.version_uuid)
        self.indexes = IndexStore()
        #: serializes the label counters (max labels, next label)
        self.label_lock = threading.Lock()

    # ---- views -------------------------------------------------------------------------------
    @property
    def label_codec(self) -> LabelBlockCodec:
        codec_ = self.blocks.codec
        assert isinstance(codec_, LabelBlockCodec)
        return codec_

    def at_scale(self, scale: int) -> LabelMapCore:
        """This labelmap reading and writing the supervoxel blocks of ``scale``."""
        if not 0 <= scale <= MAX_SCALE:
            raise BadRequest(f"scale must be between 0 and {MAX_SCALE}, got {scale}")
        if scale == self.scale and self.supervoxels:
            return self
        return self._twin(scale, None)

    def view(self, ctx: DataContext, scale: int = 0, supervoxels: bool = False) -> LabelMapCore:
        """This labelmap read at ``scale``, as bodies at ``ctx``'s version unless ``supervoxels``."""
        if not 0 <= scale <= MAX_SCALE:
            raise BadRequest(f"scale must be between 0 and {MAX_SCALE}, got {scale}")
        return self._twin(scale, None if supervoxels else self.table_map(ctx))

    def _twin(self, scale: int, table_map: TableMap | None) -> LabelMapCore:
        twin = copy.copy(self)
        twin.scale = scale
        twin.supervoxels = table_map is None
        twin.body_labels_at = False
        twin.blocks = scale_store(self.block_size, self.compression, scale, table_map)
        return twin

    def describe_change(
        self, tk: bytes, change: str, old: bytes | None, new: bytes | None
    ) -> list[dict[str, Any]]:
        """Supervoxel blocks (with their scale), bodies whose label index changed, and supervoxels
        whose body changed; counters, logs and snapshots are not listed."""
        if tk[0] == tkeys.BLOCK_CLASS and len(tk) == 15:
            return [{"change": change, "scale": tk[2], "block": list(keys.zyx_from_bytes(tk, 3))}]
        if tk[0] == tkeys.INDEX_CLASS and len(tk) == 10:
            return [{"change": change, "body": int.from_bytes(tk[2:], "big")}]
        if tk[0] == tkeys.MAPPING_CLASS and len(tk) == 10:
            return [{"change": change, "supervoxel": int.from_bytes(tk[2:], "big")}]
        return []

    def version_uuid(self, version: int) -> str:
        """The UUID of a version of this instance's repo (a stand-in outside a repo)."""
        if self.repo_access is None:
            return local_uuid(version)
        return self.repo_access.version_uuid(version)

    def table_map(self, ctx: DataContext) -> TableMap:
        """Supervoxel ids -> body ids at ``ctx``'s version, for arrays of ids."""
        return self.mapping.view(ctx).lookup

    def labels_at(self, ctx: Any, points: np.ndarray) -> np.ndarray:
        """The labels at (n, 3) x, y, z points: through a view, what it reads; through the instance
        itself (syncs: annotation asks it), the bodies at ``ctx``'s version."""
        labels = super().labels_at(ctx, points)
        if self.body_labels_at:
            labels = self.mapping.lookup(ctx, labels)
        return labels

    def stored_labels_at(self, ctx: DataContext, points: np.ndarray) -> np.ndarray:
        """The supervoxels at (n, 3) x, y, z points of scale 0."""
        return self.view(ctx, 0, supervoxels=True).labels_at(ctx, points)

    def check_indexed(self, what: str) -> None:
        if not self.settings.IndexedLabels:
            raise BadRequest(
                f"{what} needs label indexes, and labelmap {self.name!r} has IndexedLabels false"
            )

    # ---- info --------------------------------------------------------------------------------
    def values_info(self) -> list[dict[str, str]]:
        return [{"DataType": "uint64", "Label": "labelmap"}]

    def info(self) -> dict[str, Any]:
        ext = self.instance_extents()
        return {
            "Base": self.base_info(),
            "Extended": self.extended_info(),
            "Extents": {"MinPoint": list(ext[0]) if ext else None, "MaxPoint": list(ext[1]) if ext else None},
        }

    def extended_info(self) -> dict[str, Any]:
        info = super().extended_info()
        info["IndexedLabels"] = self.settings.IndexedLabels
        info["CountLabels"] = self.settings.CountLabels
        info["MaxDownresLevel"] = self.settings.MaxDownresLevel
        info["MaxRepoLabel"] = self.repo_max_label()
        return info

    # ---- the pyramid: scales of this instance ------------------------------------------------
    @property
    def pyramid_levels(self) -> int:
        return self.settings.MaxDownresLevel

    def level_instance(self, level: int) -> LabelMapCore:
        return self.at_scale(level)

    def _ensure_level(self, level: int, node_uuid: str) -> LabelMapCore:
        return self.at_scale(level)

    def _grow_instance_extents(self, box: Box) -> None:
        if self.scale == 0:  # extents are those of scale 0
            super()._grow_instance_extents(box)

    # ---- label counters ----------------------------------------------------------------------
    def repo_max_label(self) -> int:
        if self.repo_access is None:
            return 0
        return u64(self.context(self.repo_access.root_ancestry()).get(REPO_MAXLABEL_TKEY))

    def raise_maxlabel(self, batch: VersionedBatch, ancestry: Ancestry, label: int) -> None:
        """Raise the version's and the repo's max label to ``label`` in ``batch``, which holds the
        label lock until it is committed or abandoned."""
        batch.hold(self.label_lock)
        ctx, root = self.context_at(ancestry), self.root_context(ancestry)
        raise_max_labels(batch, ctx, root, MAXLABEL_TKEY, REPO_MAXLABEL_TKEY, label)

    def raise_written_maxlabel(
        self, batch: VersionedBatch, ctx: DataContext, written: list[BlockChange]
    ) -> None:
        """Raise the max labels to the largest supervoxel of the blocks written."""
        top = 0
        for _, _, after in written:
            table = codec.label_table(self.label_codec.block_bytes(after))
            if len(table):
                top = max(top, int(table.max()))
        if top:
            self.raise_maxlabel(batch, ctx.ancestry, top)

    def new_mutation_id(self) -> int:
        """The repo's next mutation id (0 outside a repo)."""
        return self.repo_access.new_mutation_id() if self.repo_access is not None else 0

    # ---- extents -----------------------------------------------------------------------------
    def blocks_box(self, coords: list[Point]) -> Box:
        """The box covering whole blocks ``coords``."""
        bs = np.array(self.block_size, dtype=np.int64)
        arr = np.array(coords, dtype=np.int64).reshape(-1, 3)
        lo, hi = arr.min(axis=0) * bs, (arr.max(axis=0) + 1) * bs
        return Box(tuple(lo.tolist()), tuple((hi - lo).tolist()))

    def grow_version_extents(self, batch: VersionedBatch, ctx: DataContext, box: Box) -> None:
        """Grow the extents stored at ``ctx``'s version to cover ``box``, in ``batch``."""
        old = self.version_extents(ctx)
        new = _grow(old, box)
        if new != old:
            batch.put(EXTENTS_TKEY, _extents_value(*new))

    # ---- commits: blocks with their indexes, max labels and listeners --------------------------
    def commit_blocks(
        self,
        ctx: DataContext,
        data: np.ndarray,
        plan: WritePlan,
        *,
        also: Any = None,
    ) -> None:
        changes = self._notifier(ctx) if self.scale == 0 else None
        self.blocks.commit_write(ctx, data, plan, self.write_lock, also=also, changes=changes)

    def _notifier(self, ctx: DataContext) -> Any:
        """What a commit of scale-0 blocks at ``ctx``'s version does in its batch: index the
        supervoxels written, raise the max labels, and tell the block listeners (annotation) with
        blocks decoded as bodies."""
        listeners = sync.block_listeners(self)

        def notify(batch: VersionedBatch, written: list[BlockChange]) -> None:
            self.index_written(batch, ctx, written)
            if not listeners:
                return
            # the mapping as of now, under the write lock: an edit committed while this write
            # waited for the lock is seen
            body_codec = self.label_codec.mapped(self.table_map(ctx))
            for listener in listeners:
                listener.blocks_changed(batch, ctx.ancestry, written, body_codec.decode)

        return notify

    def index_written(
        self,
        batch: VersionedBatch,
        ctx: DataContext,
        written: list[BlockChange],
        bodies: dict[int, int] | None = None,
        mod: tuple[int, Any] | None = None,
    ) -> None:
        """Apply to the label indexes the supervoxel counts that ``written`` changes, and raise the
        max labels to the largest supervoxel written. ``bodies`` maps supervoxels to bodies ahead of
        the stored mapping (new supervoxels of a split, mapped in the same batch); ``mod`` (mutation
        id, ModInfo) marks the indexes changed as last modified by an edit."""
        blocks, svs, deltas = self.count_changes(written)
        new_max = int(svs[deltas > 0].max()) if np.any(deltas > 0) else 0
        if new_max:
            self.raise_maxlabel(batch, ctx.ancestry, new_max)
        if not self.settings.IndexedLabels or not len(svs):
            return
        owners = self.mapping.lookup(ctx, svs)
        if bodies:
            for i, sv in enumerate(svs.tolist()):
                if sv in bodies:
                    owners[i] = bodies[sv]
        self.apply_index_deltas(batch, ctx, owners, blocks, svs, deltas, mod)

    def apply_index_deltas(
        self,
        batch: VersionedBatch,
        ctx: DataContext,
        owners: np.ndarray,
        blocks: np.ndarray,
        svs: np.ndarray,
        deltas: np.ndarray,
        mod: tuple[int, Any] | None = None,
    ) -> None:
        """Add signed voxel counts per (block, supervoxel) to the indexes of the owning bodies."""
        keep = owners != 0
        owners, blocks, svs, deltas = owners[keep], blocks[keep], svs[keep], deltas[keep]
        order = np.argsort(owners, kind="stable")
        owners, blocks, svs, deltas = owners[order], blocks[order], svs[order], deltas[order]
        bodies, starts = np.unique(owners, return_index=True)
        ends = [*starts[1:].tolist(), len(owners)]
        found = self.indexes.get_many(ctx, bodies.tolist())
        for body, index, lo, hi in zip(bodies.tolist(), found, starts.tolist(), ends, strict=True):
            base = index if index is not None else LabelIndex.empty(body)
            try:
                result = base.with_counts(blocks[lo:hi], svs[lo:hi], deltas[lo:hi])
            except ValueError as exc:  # blocks stored without indexing (ingest-supervoxels, noindexing)
                log.warning(
                    "label index of body %d in %r was out of date (%s); counts clamped", body, self.name, exc
                )
                result = base.with_counts(blocks[lo:hi], svs[lo:hi], deltas[lo:hi], clamp=True)
            if mod is not None:
                mutid, info = mod
                result = result.with_mod(mutid, info.time, info.user, info.app)
            self.indexes.put(batch, result)

    def count_changes(self, written: list[BlockChange]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(packed block keys, supervoxels, signed voxel count changes), one row per (block, sv)
        whose count changed, label 0 left out."""
        block_col: list[np.ndarray] = []
        sv_col: list[np.ndarray] = []
        delta_col: list[np.ndarray] = []
        label_codec = self.label_codec
        for coord, before, after in written:
            if before == after:
                continue
            key = int(pack_block_coords(np.array([coord], dtype=np.int64))[0])
            for stored, sign in ((before, -1), (after, 1)):
                if stored is None:
                    continue
                labels, counts = codec.label_counts(label_codec.block_bytes(stored))
                block_col.append(np.full(len(labels), key, dtype=np.uint64))
                sv_col.append(labels)
                delta_col.append(sign * counts.astype(np.int64))
        if not sv_col:
            empty = np.zeros(0, dtype=np.uint64)
            return empty, empty, np.zeros(0, dtype=np.int64)
        blocks = np.concatenate(block_col)
        svs = np.concatenate(sv_col).astype(np.uint64)
        deltas = np.concatenate(delta_col)
        pairs = np.stack([blocks, svs], axis=1)
        uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
        summed = np.bincount(inverse.reshape(-1), weights=deltas, minlength=len(uniq)).astype(np.int64)
        keep = (summed != 0) & (uniq[:, 1] != 0)
        return uniq[keep, 0], uniq[keep, 1], summed[keep]

    def store_blocks(
        self, ctx: DataContext, frames: list[tuple[Point, bytes]], index: bool, derived: bool
    ) -> list[Point]:
        """Check and store posted gzip'd Blocks (at this view's scale) in one atomic batch."""
        label_codec = self.label_codec
        values: dict[Point, bytes] = {}
        for coord, payload in frames:
            raw = gunzip_block(payload, coord)
            label_codec.check_block(raw, f"block {list(coord)}")
            if (
                self.compression.format == envelope.GZIP
                and self.compression.checksum == envelope.CHECKSUM_NONE
            ):
                values[coord] = envelope.Header(envelope.GZIP).to_bytes() + bytes(payload)
            else:
                values[coord] = label_codec.envelope(raw)
        coords = list(values)
        box = self.blocks_box(coords)
        if derived:
            self._grow_instance_extents(box)
        with self.write_lock:
            written: list[BlockChange] = []
            for coord, value in values.items():
                before = ctx.get(self.blocks.tkey(*coord)) if (index or derived) else None
                written.append((coord, before, value))

            def also(batch: Any) -> None:
                if derived:
                    self.grow_version_extents(batch, ctx, box)

            notify = self._notifier(ctx) if index else None
            if not index and derived:

                def notify(batch: Any, changes: list[BlockChange]) -> None:
                    self.raise_written_maxlabel(batch, ctx, changes)

            self.blocks.commit_changes(ctx, written, also=also, changes=notify)
        return coords
