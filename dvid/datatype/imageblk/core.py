"""The state of one image volume: settings, block store and locks, info and extents, and the one
path its blocks are committed by (with what block listeners derive from them)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from dvid.datatype.base import Datatype, InstanceMeta
from dvid.datatype.common import sync
from dvid.datatype.common.blockstore import EXTENTS_TKEY, BlockCodec, BlockStore, WritePlan
from dvid.datatype.common.geometry import Box, Point
from dvid.datatype.common.sync import BlockChange
from dvid.datatype.common.voxels import VOXEL_FORMATS
from dvid.datatype.imageblk.settings import ImageSettings, _extents_from, _grow
from dvid.errors import BadRequest
from dvid.storage.versioned import DataContext, VersionedBatch


class ImageCore(Datatype):
    """An image volume's state and metadata; the layers in ``read.py``, ``pyramid.py``, ``write.py``
    and ``handlers.py`` build on it, in that order, up to :class:`ImageBlk`."""

    voxel_kind: ClassVar[str]
    interpolable: ClassVar[bool] = True
    Settings = ImageSettings

    settings: ImageSettings

    def __init__(self, meta: InstanceMeta, *args: Any, **kwargs: Any) -> None:
        super().__init__(meta, *args, **kwargs)
        self.fmt = VOXEL_FORMATS[self.voxel_kind]
        block_size = tuple(self.settings.BlockSize)
        codec = BlockCodec(self.fmt, block_size, self.compression)  # type: ignore[arg-type]
        self.blocks = BlockStore(codec, self.settings.Background)
        self.write_lock = threading.Lock()
        self.extents_lock = threading.Lock()
        # held by a pyramid update of this level from reading the level below to writing here, so a
        # slower concurrent update cannot overwrite a newer one with blocks computed from older data
        self.pyramid_lock = threading.Lock()

    @classmethod
    def validate_settings(cls, settings: dict[str, Any]) -> dict[str, Any]:
        validated = super().validate_settings(settings)
        compression = str(settings.get("compression", "")).lower()
        if compression.startswith("jpeg"):
            if cls.voxel_kind != "uint8":
                raise BadRequest(f"jpeg compression is only possible for uint8blk, not {cls.type_name}")
            if validated["BlockSize"][0] > 127:
                raise BadRequest(
                    "jpeg compression needs BlockSize x of at most 127 (DVID stores it in a byte)"
                )
        return validated

    @property
    def block_size(self) -> Point:
        return self.blocks.block_size

    diff_compares_values = False  # a block written again is "touched"; blocks are not read twice

    def describe_change(
        self, tk: bytes, change: str, old: bytes | None, new: bytes | None
    ) -> list[dict[str, Any]]:
        """A block by its coordinate; the extents and other bookkeeping keys are not listed."""
        prefix = self.blocks.tkey_prefix
        if tk.startswith(prefix) and len(tk) == len(prefix) + 12:
            return [{"change": change, "block": list(self.blocks.coord_of(tk))}]
        return []

    # ---- info --------------------------------------------------------------------------------
    def values_info(self) -> list[dict[str, str]]:
        if self.fmt.channels == 4:
            return [{"DataType": "uint8", "Label": c} for c in ("red", "green", "blue", "alpha")]
        return [{"DataType": self.voxel_kind, "Label": self.voxel_kind}]

    def instance_extents(self) -> tuple[Point, Point] | None:
        ext = self.meta.properties.get("extents")
        if ext is None:
            s = self.settings
            if s.MinPoint is not None and s.MaxPoint is not None:
                return tuple(s.MinPoint), tuple(s.MaxPoint)  # type: ignore[return-value]
            return None
        return tuple(ext[0]), tuple(ext[1])

    def extended_info(self) -> dict[str, Any]:
        s = self.settings
        ext = self.instance_extents()
        min_index = max_index = None
        if ext is not None:
            min_index = [c // b for c, b in zip(ext[0], self.block_size, strict=True)]
            max_index = [c // b for c, b in zip(ext[1], self.block_size, strict=True)]
        return {
            "Values": self.values_info(),
            "Interpolable": self.interpolable,
            "BlockSize": list(s.BlockSize),
            "VoxelSize": list(s.VoxelSize),
            "VoxelUnits": list(s.VoxelUnits),
            "MinPoint": list(ext[0]) if ext else None,
            "MaxPoint": list(ext[1]) if ext else None,
            "MinIndex": min_index,
            "MaxIndex": max_index,
            "Background": s.Background,
            "GridStore": s.GridStore,
            "ScaleLevel": s.ScaleLevel,
        }

    def info(self) -> dict[str, Any]:
        ext = self.instance_extents()
        return {
            **super().info(),
            "Extents": {"MinPoint": list(ext[0]) if ext else None, "MaxPoint": list(ext[1]) if ext else None},
        }

    # ---- extents and block commits ----------------------------------------------------------
    def version_extents(self, ctx: DataContext) -> tuple[Point, Point] | None:
        return _extents_from(ctx.get(EXTENTS_TKEY))

    def commit_blocks(
        self,
        ctx: DataContext,
        data: np.ndarray,
        plan: WritePlan,
        *,
        also: Callable[[VersionedBatch], None] | None = None,
    ) -> None:
        """Write a plan's blocks under the write lock in one atomic batch, together with what the
        block listeners (labelvol's runs and max label, annotation's label index) derive from them."""
        self.blocks.commit_write(ctx, data, plan, self.write_lock, also=also, changes=self._notifier(ctx))

    def _notifier(self, ctx: DataContext) -> Callable[[VersionedBatch, list[BlockChange]], None] | None:
        """The call that tells this instance's block listeners about blocks written at ``ctx``'s
        version, inside the batch that stores them (None without listeners)."""
        block_listeners = sync.block_listeners(self)
        if not block_listeners:
            return None

        def notify(batch: VersionedBatch, written: list[BlockChange]) -> None:
            for listener in block_listeners:
                listener.blocks_changed(batch, ctx.ancestry, written, self.decode_block)

        return notify

    def decode_block(self, value: bytes) -> np.ndarray:
        """A stored block's voxels (z, y, x)."""
        return self.blocks.codec.decode(value)

    def _grow_instance_extents(self, box: Box) -> None:
        with self.extents_lock:  # concurrent writers must not lose each other's growth
            old = self.instance_extents()
            new = _grow(old, box)
            if new != old:
                self.meta.properties["extents"] = [list(new[0]), list(new[1])]
                self.save()
