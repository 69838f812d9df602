"""Decoded layers of label blocks, kept for the next plane: a viewer stepping through XY (or XZ,
YZ) planes reads, plane after plane, the same 8-voxel-thick layer of sub-blocks of each block
(8 planes per layer). The first plane of a layer decodes it once, as indices into the block's label
table; the next seven take their voxels from it, mapped through whatever table the read uses
(supervoxels, or bodies at the read's version).

Entries are keyed by the block's stored bytes (content-addressed: a block written again is a new
key, so nothing can be stale) and the layer, and evicted least recently used past a byte budget.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from dvid.datatype.labelmap import codec

SUB = 8
#: Bytes of decoded layers kept per process (a 1024^2 plane of 64^3 blocks: 16-32 MiB per layer).
BUDGET_BYTES = 128 << 20

Region = tuple[slice, slice, slice]


def thin_axis(region: Region, shape: tuple[int, ...]) -> int | None:
    """The axis along which ``region`` (a box of a block of ``shape``) lies inside one 8-voxel layer
    of sub-blocks, preferring the thinnest; None if it lies in no single layer."""
    best = None
    for axis, (sl, n) in enumerate(zip(region, shape, strict=True)):
        start, stop, _ = sl.indices(n)
        in_one_layer = stop > start and start // SUB == (stop - 1) // SUB
        if in_one_layer and (best is None or stop - start < best[1]):
            best = (axis, stop - start)
    return None if best is None else best[0]


class SlabCache:
    """Decoded layers as (label table, table indices), least recently used out past ``budget`` bytes."""

    def __init__(self, budget: int = BUDGET_BYTES) -> None:
        self.budget = budget
        self._entries: OrderedDict[tuple[bytes, int, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def layer(
        self, stored: bytes, raw_of: Callable[[], bytes], axis: int, index: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(label table, indices of the layer ``index`` along ``axis``), decoded from ``raw_of()`` (the
        Block's bytes) on a miss."""
        key = (stored, axis, index)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return found
            self.misses += 1
        raw = raw_of()
        labels = codec.label_table(raw)
        shape = codec.block_shape(raw)
        region = [slice(None)] * 3
        region[axis] = slice(index * SUB, min((index + 1) * SUB, shape[axis]))
        identity = np.arange(labels.size, dtype=np.uint64)
        indices = codec.decode_region(raw, tuple(region), identity)  # type: ignore[arg-type]
        small = indices.astype(np.uint16 if labels.size <= 1 << 16 else np.uint32)
        entry = (labels, small)
        size = small.nbytes + labels.nbytes + len(stored)
        with self._lock:
            if key not in self._entries:
                self._entries[key] = entry
                self._bytes += size
                while self._bytes > self.budget and len(self._entries) > 1:
                    (old_stored, _, _), (old_labels, old_small) = self._entries.popitem(last=False)
                    self._bytes -= old_small.nbytes + old_labels.nbytes + len(old_stored)
        return entry


SLABS = SlabCache()
