"""labelgraph following a labelmap's body merges (``POST sync {"sync": "<labelmap>"}``).

The labelmap calls :meth:`BodySync.bodies_merged` inside the batch of its merge (and renumber):
the vertices of the merged bodies that exist are merged into the target body's vertex, created
if missing, as ``merge`` does; the graph's write lock is held until the labelmap's batch is
stored. Cleaves and splits change nothing: a graph cannot know how a vertex's weight, edges and
properties divide between the two bodies.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from dvid.dag.ancestry import Ancestry
from dvid.datatype.common import sync
from dvid.datatype.common.envelope import Compression
from dvid.datatype.labelgraph import graph
from dvid.storage.versioned import DataContext, VersionedBatch


@runtime_checkable
class BodyEditSource(Protocol):
    """An instance whose bodies are merged, cleaved and renumbered without touching voxels (labelmap);
    it calls its ``sync.BodyListener`` instances with those edits."""

    def merge(self, *args: Any, **kwargs: Any) -> None: ...

    def cleave(self, *args: Any, **kwargs: Any) -> Any: ...

    def renumber(self, *args: Any, **kwargs: Any) -> None: ...


class BodySync:
    """The ``sync.BodyListener`` hooks of a labelgraph."""

    write_lock: threading.Lock
    compression: Compression
    if TYPE_CHECKING:  # Datatype's

        def context_at(self, ancestry: Ancestry) -> DataContext: ...

    def bodies_merged(
        self, batch: VersionedBatch, ancestry: Ancestry, target: int, merged: list[int]
    ) -> None:
        ctx = self.context_at(ancestry)
        with sync.joined_batch(batch, ctx) as out:
            out.hold(self.write_lock)  # until the labelmap's batch is stored
            edit = graph.GraphEdit(ctx, self.compression)
            present = [b for b in dict.fromkeys(merged) if b != target and edit.vertex(b) is not None]
            if not present:
                return
            if edit.vertex(target) is None:
                graph.set_vertex(edit, target, 0.0)
            graph.merge(edit, [*present, target], 0.0, {})
            edit.write(out)

    def body_cleaved(
        self, batch: VersionedBatch, ancestry: Ancestry, body: int, cleaved: int, moved: sync.PointsIn
    ) -> None:
        """Nothing: see the module's docstring."""
