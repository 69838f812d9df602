"""Voxel blocks in the versioned store: codec, reads assembled into numpy arrays, and writes.

A volume is a grid of blocks (DVID's BlockSize, default 32^3), each stored under tkey class 23
with its ZYX block index, as one enveloped value (lz4 by default; JPEG for uint8 on request).
Reads fetch one x-row of blocks per range scan and copy each block into the output with one
numpy slice assignment; writes split the input the same way. Blocks never written read as the
instance's background value.
"""

from __future__ import annotations

import itertools
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from dvid.datatype.common import envelope
from dvid.datatype.common.envelope import Compression
from dvid.datatype.common.geometry import Box, Point, iter_block_rows
from dvid.datatype.common.sync import BlockChange
from dvid.datatype.common.voxels import VoxelFormat
from dvid.storage import keys
from dvid.storage.versioned import DataContext, VersionedBatch

BLOCK_CLASS = 23
EXTENTS_CLASS = 24
EXTENTS_TKEY = keys.tkey(EXTENTS_CLASS)


_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1


BLOCK_TKEY_PREFIX = keys.tkey(BLOCK_CLASS)


def block_tkey(bx: int, by: int, bz: int) -> bytes:
    return BLOCK_TKEY_PREFIX + keys.zyx_bytes(bx, by, bz)


def block_coord(tk: bytes) -> Point:
    """The (x, y, z) block coordinate of a block tkey."""
    return keys.zyx_from_bytes(tk, 2)


class BlockCodec:
    """Encodes one block array to its stored value and back."""

    def __init__(self, fmt: VoxelFormat, block_size: Point, compression: Compression) -> None:
        self.fmt = fmt
        self.block_size = block_size
        self.compression = compression
        self.block_shape = fmt.array_shape((block_size[2], block_size[1], block_size[0]))
        self.block_nbytes = block_size[0] * block_size[1] * block_size[2] * fmt.bytes_per_voxel

    @property
    def is_jpeg(self) -> bool:
        return self.compression.format == envelope.JPEG

    def encode(self, block: np.ndarray) -> bytes:
        """The stored value of a block (any layout; made contiguous here)."""
        block = np.ascontiguousarray(block, dtype=self.fmt.dtype)
        if self.is_jpeg:
            from dvid.datatype.common.imageio import jpeg_encode_block

            return envelope.Header(envelope.JPEG).to_bytes() + jpeg_encode_block(block)
        return envelope.serialize(block.data.cast("B"), self.compression)

    def decode_into(self, stored: bytes, out: np.ndarray) -> None:
        """Decode a stored value into ``out`` (a view of the block's shape into a larger array)."""
        out[...] = self.decode(stored)

    def decode_part(self, stored: bytes, region: tuple[slice, ...]) -> np.ndarray:
        """``decode(stored)[region]``: codecs that can decode less than a whole block override it."""
        return self.decode(stored)[region]

    def decode(self, stored: bytes) -> np.ndarray:
        """The block array of a stored value (read-only)."""
        if stored and envelope.read_header(stored).format == envelope.JPEG:
            from dvid.datatype.common.imageio import jpeg_decode_block

            return jpeg_decode_block(envelope.payload(stored), self.block_shape)  # type: ignore[arg-type]
        raw = envelope.deserialize(stored)
        if len(raw) != self.block_nbytes:
            raise ValueError(f"stored block holds {len(raw)} bytes, expected {self.block_nbytes}")
        return np.frombuffer(raw, dtype=self.fmt.dtype).reshape(self.block_shape)

    def values_at(self, stored: bytes, local: np.ndarray) -> np.ndarray:
        """The voxels of a stored block at (n, 3) z, y, x positions inside it."""
        block = self.decode(stored)
        return block[local[:, 0], local[:, 1], local[:, 2]]


class _Overlaps:
    """Where a box meets each block it touches, computed once per box per axis.

    ``slices(coord)`` gives the (z, y, x) slices into the block and into the box's array.
    """

    def __init__(self, box: Box, block_size: Point) -> None:
        self.first, self.last = box.block_range(block_size)
        self._axes: list[dict[int, tuple[slice, slice]]] = []
        for axis in range(3):
            per_block = {}
            for b in range(self.first[axis], self.last[axis] + 1):
                b0 = b * block_size[axis]
                lo = max(b0, box.offset[axis])
                hi = min(b0 + block_size[axis], box.offset[axis] + box.size[axis])
                per_block[b] = (slice(lo - b0, hi - b0), slice(lo - box.offset[axis], hi - box.offset[axis]))
            self._axes.append(per_block)

    def slices(self, coord: Point) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
        x, y, z = self._axes[0][coord[0]], self._axes[1][coord[1]], self._axes[2][coord[2]]
        return (z[0], y[0], x[0]), (z[1], y[1], x[1])


def _covers_block(src: tuple[slice, ...], block_size: Point) -> bool:
    zyx = (block_size[2], block_size[1], block_size[0])
    return all(s.start == 0 and s.stop == n for s, n in zip(src, zyx, strict=True))


@dataclass
class WritePlan:
    """Blocks of a write: encoded whole blocks, and partial ones as (coord, block slices, data slices)."""

    encoded: list[tuple[Point, bytes]] = field(default_factory=list)
    partial: list[tuple[Point, tuple[slice, ...], tuple[slice, ...]]] = field(default_factory=list)

    def merge(self, other: WritePlan) -> WritePlan:
        self.encoded.extend(other.encoded)
        self.partial.extend(other.partial)
        return self


class BlockStore:
    """Reads and writes boxes of voxels as blocks of one instance. Thread-safe."""

    def __init__(
        self, codec: BlockCodec, background: int = 0, tkey_prefix: bytes = BLOCK_TKEY_PREFIX
    ) -> None:
        self.codec = codec
        self.background = background
        self.block_size = codec.block_size
        #: what precedes the ZYX block index in this store's block tkeys (labelmap adds its scale)
        self.tkey_prefix = tkey_prefix

    def tkey(self, bx: int, by: int, bz: int) -> bytes:
        """The tkey of a block of this store."""
        return self.tkey_prefix + keys.zyx_bytes(bx, by, bz)

    def coord_of(self, tk: bytes) -> Point:
        """The (x, y, z) block coordinate of one of this store's block tkeys."""
        return keys.zyx_from_bytes(tk, len(self.tkey_prefix))

    # ---- reads -------------------------------------------------------------------------------
    def read_row(self, ctx: DataContext, bx0: int, bx1: int, by: int, bz: int) -> dict[int, bytes]:
        """Stored values of the existing blocks ``bx0..bx1`` (inclusive) of one x-row, by x."""
        rows = ctx.range(self.tkey(bx0, by, bz), self.tkey(bx1, by, bz))
        return {self.coord_of(tk)[0]: value for tk, value in rows}

    def iter_stored(self, ctx: DataContext, first: Point, last: Point) -> Iterator[tuple[Point, bytes]]:
        """``(coord, stored value)`` of existing blocks in the block range, in (z, y, x) order."""
        for by, bz in iter_block_rows(first, last):
            for bx, value in sorted(self.read_row(ctx, first[0], last[0], by, bz).items()):
                yield (bx, by, bz), value

    def stored_coords(self, ctx: DataContext) -> np.ndarray:
        """The (x, y, z) coordinates of every block stored at the context's version, as an (n, 3)
        array: one key scan, whatever the extent the blocks are spread over."""
        lo, hi = self.tkey(_I32_MIN, _I32_MIN, _I32_MIN), self.tkey(_I32_MAX, _I32_MAX, _I32_MAX)
        return np.array([self.coord_of(tk) for tk in ctx.keys(lo, hi)], dtype=np.int64).reshape(-1, 3)

    def read_into(self, ctx: DataContext, box: Box, out: np.ndarray) -> None:
        """Fill ``out`` (the box's array) from the stored blocks; missing blocks give background."""
        overlaps = _Overlaps(box, self.block_size)
        first, last = overlaps.first, overlaps.last
        decode_part = self.codec.decode_part
        rows = list(iter_block_rows(first, last))
        stored_rows = ctx.ranges(
            [(self.tkey(first[0], by, bz), self.tkey(last[0], by, bz)) for by, bz in rows]
        )
        for (by, bz), stored_row in zip(rows, stored_rows, strict=True):
            found = {self.coord_of(tk)[0]: value for tk, value in stored_row}
            for bx in range(first[0], last[0] + 1):
                src, dst = overlaps.slices((bx, by, bz))
                stored = found.get(bx)
                if stored is None:
                    out[dst] = self.background
                elif _covers_block(src, self.block_size):
                    self.codec.decode_into(stored, out[dst])
                else:
                    out[dst] = decode_part(stored, src)

    def new_array(self, box: Box) -> np.ndarray:
        return np.empty(self.codec.fmt.array_shape(box.shape), dtype=self.codec.fmt.dtype)

    def read_box(self, ctx: DataContext, box: Box) -> np.ndarray:
        out = self.new_array(box)
        self.read_into(ctx, box, out)
        return out

    def slabs(self, box: Box) -> list[Box]:
        """The box cut along z at block boundaries, for streaming a large read slab by slab."""
        bz = self.block_size[2]
        z0, z1 = box.offset[2], box.offset[2] + box.size[2]
        cuts = [z0, *range((z0 // bz + 1) * bz, z1, bz), z1]
        x, y, _ = box.offset
        nx, ny, _ = box.size
        return [Box((x, y, a), (nx, ny, b - a)) for a, b in itertools.pairwise(cuts)]

    # ---- writes ------------------------------------------------------------------------------
    def plan_write(self, box: Box, data: np.ndarray, block_zs: range | None = None) -> WritePlan:
        """Encode the blocks ``box`` covers completely (in the block layers ``block_zs``, default all)
        and list the partially covered ones; safe to run for several layers at once in threads."""
        overlaps = _Overlaps(box, self.block_size)
        first, last = overlaps.first, overlaps.last
        plan = WritePlan()
        for bz in block_zs if block_zs is not None else range(first[2], last[2] + 1):
            for by in range(first[1], last[1] + 1):
                for bx in range(first[0], last[0] + 1):
                    coord = (bx, by, bz)
                    src, dst = overlaps.slices(coord)
                    if _covers_block(src, self.block_size):
                        plan.encoded.append((coord, self.codec.encode(data[dst])))
                    else:
                        plan.partial.append((coord, src, dst))
        return plan

    def commit_write(
        self,
        ctx: DataContext,
        data: np.ndarray,
        plan: WritePlan,
        lock: threading.Lock,
        *,
        also: Callable[[VersionedBatch], None] | None = None,
        changes: Callable[[VersionedBatch, list[BlockChange]], None] | None = None,
    ) -> list[Point]:
        """Merge the partial blocks of a plan with what is stored, under ``lock``, and store every
        block through :meth:`commit_changes`; returns the coordinates written."""
        encoded = list(plan.encoded)
        before: dict[Point, bytes | None] = {}
        with lock:
            if changes is not None:
                for coord, _ in encoded:
                    before[coord] = ctx.get(self.tkey(*coord))
            for coord, src, dst in plan.partial:
                stored = ctx.get(self.tkey(*coord))
                before[coord] = stored
                if stored is None:
                    block = np.full(self.codec.block_shape, self.background, dtype=self.codec.fmt.dtype)
                else:
                    block = self.codec.decode(stored).copy()
                block[src] = data[dst]
                encoded.append((coord, self.codec.encode(block)))
            self.commit_changes(
                ctx,
                [(coord, before.get(coord), value) for coord, value in encoded],
                also=also,
                changes=changes,
            )
        return [coord for coord, _ in encoded]

    def commit_changes(
        self,
        ctx: DataContext,
        written: list[BlockChange],
        *,
        also: Callable[[VersionedBatch], None] | None = None,
        changes: Callable[[VersionedBatch, list[BlockChange]], None] | None = None,
    ) -> None:
        """Store blocks in one atomic batch with whatever ``also`` adds and what ``changes`` (the
        sync listeners, see dvid.datatype.common.sync) derives from ``written``. The caller holds
        the instance's write lock, so the stored "before" values are still current."""
        with ctx.batch() as batch:
            for coord, _, value in written:
                batch.put(self.tkey(*coord), value)
            if also is not None:
                also(batch)
            if changes is not None:
                changes(batch, written)


def frame_block(coord: Point, payload: bytes) -> bytes:
    """One record of DVID's framed block stream: i32 x, y, z, i32 length, payload."""
    return struct.pack("<iiii", coord[0], coord[1], coord[2], len(payload)) + payload
