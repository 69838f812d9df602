"""Syncs between instances: what a sync source offers, what a listener is called with, and who
listens to whom.

An instance ``B`` syncs from ``A`` when ``A``'s data UUID is in ``B.meta.syncs`` (``POST
B/sync {"sync": "A"}``). The sync is checked when it is made: ``A`` must satisfy one of the
protocols in ``type(B).sync_requires`` (else a 400). ``A`` then calls ``B`` on every change, with
the hooks of the listener protocols ``type(B).listens`` declares (checked when the class is
defined), inside ``A``'s own atomic write batch:

- a :class:`LabelSource` (labelblk, labelmap) calls its :class:`BlockListener` instances (labelvol's
  runs, annotation's label index) with every label block it writes, for voxel writes and label edits
  alike (:meth:`LabelSource.edit_blocks`);
- a labelmap calls its :class:`BodyListener` instances (annotation) with its body merges and cleaves,
  which change the mapping, not the voxels;
- a :class:`CountSource` (annotation) calls its :class:`CountListener` instances (labelsz) with the
  change of element counts per (kind, label).

A listener writes into the source's batch (:func:`joined_batch`), so the source's data and
everything derived from it are stored together or not at all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from dvid.dag.ancestry import Ancestry
from dvid.storage.versioned import DataContext, VersionedBatch

if TYPE_CHECKING:
    from dvid.datatype.base import Datatype, InstanceMeta

Point = tuple[int, int, int]
#: A block written: (block coordinate, stored value before or None, new stored value).
BlockChange = tuple[Point, "bytes | None", bytes]
Decode = Callable[[bytes], np.ndarray]


class BlockListener(Protocol):
    """Keeps data derived from a label source's blocks."""

    def blocks_changed(
        self, batch: VersionedBatch, ancestry: Ancestry, written: list[BlockChange], decode: Decode
    ) -> None:
        """Called under the source's write lock inside the batch that stores ``written``."""
        ...


#: Which of (N, 3) x, y, z points lie in a set of supervoxels (a cleave's or split's moved part).
PointsIn = Callable[[np.ndarray], np.ndarray]


class BodyListener(Protocol):
    """Keeps data keyed by body of a labelmap, whose merges and cleaves change no voxel."""

    def bodies_merged(
        self, batch: VersionedBatch, ancestry: Ancestry, target: int, merged: list[int]
    ) -> None:
        """Called inside the labelmap's batch: the bodies ``merged`` are now part of ``target``."""
        ...

    def body_cleaved(
        self, batch: VersionedBatch, ancestry: Ancestry, body: int, cleaved: int, moved: PointsIn
    ) -> None:
        """Called inside the labelmap's batch: the voxels of ``body`` at the points ``moved`` marks
        now belong to the new body ``cleaved`` (a cleave, or a split of the body)."""
        ...


class CountListener(Protocol):
    """Keeps per-label counts of a count source's elements."""

    def annotation_counts_changed(
        self, batch: VersionedBatch, ancestry: Ancestry, deltas: dict[tuple[str, int], int]
    ) -> None:
        """Called inside the source's write batch: ``deltas`` maps (element kind, label) to the
        signed change of the number of such elements."""
        ...


@runtime_checkable
class LabelSource(Protocol):
    """Label voxels in blocks (labelblk): what listeners and label-editing instances may use."""

    write_lock: threading.Lock
    meta: InstanceMeta

    @property
    def block_size(self) -> Point: ...

    def context_at(self, ancestry: Ancestry) -> DataContext: ...

    def labels_at(self, ctx: DataContext, points: np.ndarray) -> np.ndarray:
        """The labels at (N, 3) x, y, z points."""
        ...

    def decode_block(self, value: bytes) -> np.ndarray:
        """A stored block's voxels, z, y, x."""
        ...

    def edit_blocks(
        self,
        ctx: DataContext,
        find_blocks: Callable[[DataContext], list[Point]],
        relabel: Callable[[Point, np.ndarray], np.ndarray | None],
    ) -> list[Point]:
        """Rewrite blocks under the write lock through the one commit-and-notify path."""
        ...

    def update_pyramid_blocks(self, ctx: DataContext, coords: list[Point]) -> None:
        """Recompute the pyramid levels above the given level-0 blocks."""
        ...


@runtime_checkable
class LabelProvider(Protocol):
    """An instance that leads to a label source: a labelblk itself, or a labelvol's labelblk."""

    def label_source(self) -> LabelSource | None: ...


@runtime_checkable
class LabelEditor(Protocol):
    """Edits a label source's blocks through it (labelvol: merge, split)."""

    def synced_labelblk(self) -> LabelSource: ...


@runtime_checkable
class SupervoxelSource(Protocol):
    """Knows which supervoxels make up each body at a version (labelmap, from its label indexes)."""

    def context_at(self, ancestry: Ancestry) -> DataContext: ...

    def body_supervoxels(self, ctx: DataContext, body: int) -> np.ndarray:
        """The body's supervoxels, ascending and unique (uint64; empty if it has none)."""
        ...


@runtime_checkable
class CountSource(Protocol):
    """Elements with kinds at labelled positions (annotation)."""

    def label_kind_counts(self, ctx: DataContext) -> dict[tuple[str, int], int]:
        """Every (element kind, label) with its number of elements at ``ctx``'s version."""
        ...


#: How a sync target of each protocol is named in errors.
ROLES: dict[type, str] = {
    LabelSource: "a label volume (labelblk)",
    LabelProvider: "a label volume or sparse volumes (labelblk, labelvol)",
    LabelEditor: "sparse volumes (labelvol)",
    CountSource: "an annotation",
    SupervoxelSource: "a labelmap",
}


def block_listeners(source: Datatype) -> list[BlockListener]:
    """The instances that sync from ``source`` and listen to its blocks."""
    return _listeners(source, BlockListener)


def body_listeners(source: Datatype) -> list[BodyListener]:
    """The instances that sync from ``source`` and follow its body merges and cleaves."""
    return _listeners(source, BodyListener)


def count_listeners(source: Datatype) -> list[CountListener]:
    """The instances that sync from ``source`` and listen to its element counts."""
    return _listeners(source, CountListener)


def _listeners(source: Datatype, protocol: type) -> list[Any]:
    if source.repo_access is None:
        return []
    uuid = source.meta.data_uuid
    return [
        inst
        for inst in source.repo_access.siblings()
        if inst is not source and uuid in inst.meta.syncs and protocol in type(inst).listens
    ]


def check_listener_class(cls: type) -> None:
    """At class creation: a class that declares it listens with a protocol implements its hooks."""
    for protocol in getattr(cls, "listens", ()):
        for hook in (n for n in vars(protocol) if not n.startswith("_") and callable(vars(protocol)[n])):
            if not callable(getattr(cls, hook, None)):
                raise TypeError(f"{cls.__name__} listens with {protocol.__name__} but has no {hook}()")


def satisfies(target: Any, protocols: tuple[type, ...]) -> bool:
    return any(isinstance(target, p) for p in protocols)


@contextmanager
def joined_batch(batch: VersionedBatch, ctx: DataContext) -> Iterator[VersionedBatch]:
    """The source's ``batch`` seen as a batch of the listener's ``ctx``; if the listener lives on
    another storage engine, which cannot share a transaction, a batch of its own committed right
    after (documented in docs/architecture.md: the one case where a crash can split the two)."""
    try:
        out = batch.for_context(ctx)
    except ValueError:
        with ctx.batch() as own:
            yield own
        return
    yield out
