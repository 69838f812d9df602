"""The max-label counters label types keep (labelvol, labelmap): the largest label written at a
version and in the whole repo, each a stored little-endian u64."""

from __future__ import annotations

import struct

from dvid.storage.versioned import DataContext, VersionedBatch


def stored_u64(value: bytes | None) -> int:
    """A stored little-endian u64 counter (0 when absent or malformed)."""
    return struct.unpack("<Q", value)[0] if value and len(value) == 8 else 0


def raise_max_labels(
    batch: VersionedBatch,
    version_ctx: DataContext,
    root_ctx: DataContext,
    version_tkey: bytes,
    repo_tkey: bytes,
    label: int,
) -> None:
    """Raise the version's counter (at ``version_ctx``) and the repo's (at ``root_ctx``) to
    ``label`` where they are lower, in ``batch``; the caller holds the counters' lock in it."""
    value = struct.pack("<Q", label)
    if label > stored_u64(version_ctx.get(version_tkey)):
        batch.for_context(version_ctx).put(version_tkey, value)
    if label > stored_u64(root_ctx.get(repo_tkey)):
        batch.for_context(root_ctx).put(repo_tkey, value)
