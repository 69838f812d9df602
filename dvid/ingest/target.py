"""The data instance an ingest writes or an export reads: its type, voxel dtype, block size, extents.

Ingest and export handle the voxel types with a ``raw/0_1_2`` volume endpoint: the imageblk family
(``uint8blk`` ... ``float32blk``, ``rgba8blk``), ``labelblk`` and ``labelmap``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dvid.client import DVIDClient, DVIDClientError
from dvid.ingest import IngestError

#: Type name -> (little-endian dtype of one channel, channels per voxel).
VOXEL_TYPES: dict[str, tuple[str, int]] = {
    "uint8blk": ("<u1", 1),
    "uint16blk": ("<u2", 1),
    "uint32blk": ("<u4", 1),
    "uint64blk": ("<u8", 1),
    "float32blk": ("<f4", 1),
    "rgba8blk": ("<u1", 4),
    "labelblk": ("<u8", 1),
    "labelmap": ("<u8", 1),
}
LABEL_TYPES = ("labelblk", "labelmap")


@dataclass(frozen=True)
class Target:
    """One voxel instance at one version."""

    uuid: str
    name: str
    typename: str
    dtype: np.dtype
    channels: int
    block_size: tuple[int, int, int]  # x, y, z
    max_downres: int  # labelmap's MaxDownresLevel (0 for the other types)

    @property
    def is_labels(self) -> bool:
        return self.typename in LABEL_TYPES

    @property
    def voxel_bytes(self) -> int:
        return self.dtype.itemsize * self.channels


def describe(client: DVIDClient, uuid: str, name: str) -> Target:
    """The instance ``name`` at ``uuid``; IngestError if missing or not a voxel type."""
    try:
        info = client.instance_info(uuid, name)
    except DVIDClientError as exc:
        if exc.status in (400, 404):
            raise IngestError(f"no data instance {name!r} at version {uuid}: {exc.message}") from None
        raise
    typename = (info.get("Base") or {}).get("TypeName", "?")
    if typename not in VOXEL_TYPES:
        raise IngestError(f"{name!r} is a {typename}; ingest and export handle {', '.join(VOXEL_TYPES)}")
    ext = info.get("Extended") or {}
    dtype, channels = VOXEL_TYPES[typename]
    bx, by, bz = (int(v) for v in ext.get("BlockSize") or (64, 64, 64))
    return Target(
        uuid, name, typename, np.dtype(dtype), channels, (bx, by, bz), int(ext.get("MaxDownresLevel", 0))
    )


def create(client: DVIDClient, uuid: str, name: str, typename: str, settings: Mapping[str, str]) -> None:
    """Create instance ``name`` of ``typename`` with creation ``settings``."""
    if typename not in VOXEL_TYPES:
        raise IngestError(f"cannot create a {typename}: choose one of {', '.join(VOXEL_TYPES)}")
    client.new_instance(uuid, typename, name, settings)


def exists(client: DVIDClient, uuid: str, name: str) -> bool:
    instances = client.repo_info(uuid).get("DataInstances") or {}
    return name in instances


def conversion(source_dtype: np.dtype, source_shape: tuple[int, ...], target: Target) -> np.dtype | None:
    """The dtype to cast the source's voxels to (None: send them as they are).

    Only lossless casts are made (``numpy.can_cast(..., "safe")``: uint8 into uint16blk, uint32 labels
    into a labelmap); anything else, and a channel count the instance does not have, is an IngestError.
    """
    channels = source_shape[3] if len(source_shape) > 3 else 1
    if channels != target.channels:
        raise IngestError(
            f"the source has {channels} channel(s) per voxel; {target.typename} {target.name!r} has"
            f" {target.channels}"
        )
    if source_dtype == target.dtype:
        return None
    if np.can_cast(source_dtype, target.dtype, "safe"):
        return target.dtype
    raise IngestError(
        f"the source's voxels are {source_dtype.name}, {target.typename} {target.name!r} holds"
        f" {target.dtype.name}: only lossless conversions are made (convert the source, or ingest into"
        " an instance of the matching type)"
    )


def extents(client: DVIDClient, target: Target) -> tuple[tuple[int, int, int], tuple[int, int, int]] | None:
    """The inclusive (min, max) voxel coordinates (x, y, z) written, or None if nothing is: at the
    target's version (``GET extents``), or over all versions where the type has no such endpoint
    (labelmap: the extents in its info)."""
    try:
        answer: Any = client.instance_request("GET", target.uuid, target.name, "extents").json()
    except DVIDClientError as exc:
        if exc.status != 405:
            raise
        info = client.instance_info(target.uuid, target.name)
        answer = info.get("Extents") or info.get("Extended") or {}
    if not answer or answer.get("MinPoint") is None:
        return None
    lo, hi = answer["MinPoint"], answer["MaxPoint"]
    return (int(lo[0]), int(lo[1]), int(lo[2])), (int(hi[0]), int(hi[1]), int(hi[2]))


__all__ = ["LABEL_TYPES", "VOXEL_TYPES", "Target", "conversion", "create", "describe", "exists", "extents"]
