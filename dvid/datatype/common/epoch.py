"""Per-version *epochs*: how a cache of a version's data knows it is still current.

Every write batch of a cached kind of data at version V also rewrites V's epoch key: tkey
``class | 0x01 | V's UUID (16 bytes)`` -> 8 random bytes, versioned like any value. The epochs
visible at a version (one per version of its ancestry that wrote) are read with one short keys
scan; a cache built under epochs E is valid while the epochs read now are still E. So a server
sharing the store (PostgreSQL scale-out) sees another's writes, a write at a version with
descendants (an unversioned instance at the root) reaches their caches, and data that arrives by
push/pull carries its epochs with it. The epoch is keyed by the version's UUID, not its
server-local id, because keys travel between servers with push and pull.

Users: labelmap's mapping (``labelmap/mapping.py``, class 192) and neuronjson's in-memory
index (``neuronjson/index.py``, class 183).
"""

from __future__ import annotations

import os

from dvid.errors import VersionConflict
from dvid.storage import keys
from dvid.storage.versioned import DataContext

#: The epochs seen at a version, in tkey order: ``((epoch tkey, 8 random bytes), ...)``.
Epochs = tuple[tuple[bytes, bytes], ...]


def epoch_tkey(cls: int, version_uuid: str) -> bytes:
    """``cls | 0x01 | UUID (16 bytes)``: the epoch written by writes at the version."""
    try:
        raw = bytes.fromhex(version_uuid)
    except ValueError:
        raw = b""
    if len(raw) != 16:
        raise ValueError(f"a version UUID is 32 hexadecimal digits, not {version_uuid!r}")
    return keys.tkey(cls, raw)


def local_uuid(version: int) -> str:
    """The stand-in UUID of a version used outside a repo (tests, benchmarks)."""
    return f"{version:032x}"


def new_epoch() -> bytes:
    """A fresh epoch value (8 random bytes)."""
    return os.urandom(8)


def read_epochs(ctx: DataContext, cls: int) -> Epochs | None:
    """The epochs of class ``cls`` visible at ``ctx`` (one keys scan). None if two differ under a
    merge, which distinct version UUIDs rule out (a store edited by hand, say): then nothing may
    be cached."""
    try:
        return tuple(ctx.range(keys.min_tkey(cls), keys.max_tkey(cls)))
    except VersionConflict:
        return None


def with_epoch(epochs: Epochs | None, tk: bytes, epoch: bytes) -> Epochs | None:
    """``epochs`` after a write of ``epoch`` at ``tk``."""
    if epochs is None:
        return None
    return tuple(sorted({**dict(epochs), tk: epoch}.items()))
