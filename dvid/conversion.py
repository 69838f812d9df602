"""``dvid labelmap from-labelblk``: build a labelmap from a labelblk of the same repo, over HTTP.

The server does the work (``POST <labelmap>/ingest-labelblk``, see the labelmap help): each request
converts a bounded number of blocks and answers where the conversion stands, which the server also
records with the data. This side creates the labelmap if it is missing (the labelblk's block and
voxel sizes), repeats the requests until the conversion is complete, and shows a progress bar per
phase (the blocks, then each pyramid scale). Stopped at any point, the same command continues where
the server stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dvid.client import DVIDClient


class ConversionError(Exception):
    """The conversion cannot start: a missing or mismatched instance (the message says which)."""


@dataclass
class Target:
    """The labelmap to fill: whether this run created it, and its pyramid depth."""

    created: bool
    max_downres: int


def _instances(client: DVIDClient, uuid: str) -> dict[str, Any]:
    return client.repo_info(uuid).get("DataInstances") or {}


def _type_name(info: dict[str, Any]) -> str:
    return (info.get("Base") or {}).get("TypeName", "?")


def pyramid_levels(instances: dict[str, Any], labelblk: str) -> int:
    """How many pyramid levels (``NAME_1``, ``NAME_2``, ... labelblks) ``labelblk`` has."""
    level = 0
    while _type_name(instances.get(f"{labelblk}_{level + 1}", {})) == "labelblk":
        level += 1
    return level


def prepare(client: DVIDClient, uuid: str, labelblk: str, labelmap: str, max_downres: int | None) -> Target:
    """Check the labelblk and create the labelmap if missing (with ``max_downres`` levels, default as
    many as the labelblk's pyramid has); raises ConversionError for what would make the server
    refuse."""
    instances = _instances(client, uuid)
    source = instances.get(labelblk)
    if source is None:
        raise ConversionError(f"no data instance {labelblk!r} at version {uuid}")
    if _type_name(source) != "labelblk":
        raise ConversionError(f"{labelblk!r} is a {_type_name(source)}, not a labelblk")
    existing = instances.get(labelmap)
    if existing is not None:
        if _type_name(existing) != "labelmap":
            raise ConversionError(f"{labelmap!r} exists and is a {_type_name(existing)}, not a labelmap")
        levels = int((existing.get("Extended") or {}).get("MaxDownresLevel", 0))
        if max_downres is not None and max_downres != levels:
            raise ConversionError(
                f"labelmap {labelmap!r} exists with MaxDownresLevel {levels}, not {max_downres}"
                " (leave out --max-downres, or convert into a new labelmap)"
            )
        return Target(created=False, max_downres=levels)
    levels = pyramid_levels(instances, labelblk) if max_downres is None else max_downres
    ext = source.get("Extended") or {}
    base = source.get("Base") or {}
    settings = {
        "BlockSize": ",".join(str(v) for v in ext.get("BlockSize", [64, 64, 64])),
        "VoxelSize": ",".join(str(v) for v in ext.get("VoxelSize", [8, 8, 8])),
        "VoxelUnits": ",".join(str(v) for v in ext.get("VoxelUnits", ["nanometers"] * 3)),
        "MaxDownresLevel": str(levels),
        "versioned": "true" if base.get("Versioned", True) else "false",
    }
    client.new_instance(uuid, "labelmap", labelmap, settings)
    return Target(created=True, max_downres=levels)


class Bars:
    """A tqdm bar per phase of the conversion (shown only on a terminal unless ``enabled``)."""

    def __init__(self, labelmap: str, enabled: bool | None = None) -> None:
        self.labelmap = labelmap
        self.enabled = enabled
        self.bar: Any = None
        self.phase: tuple[str, int] | None = None

    def show(self, progress: dict[str, Any]) -> None:
        phase = (progress["phase"], progress["scale"])
        if phase != self.phase:
            self.close()
            self.phase = phase
            if progress["complete"]:
                return
            from tqdm import tqdm

            what = "blocks" if progress["phase"] == "blocks" else f"scale {progress['scale']}"
            self.bar = tqdm(
                total=progress["total"],
                desc=f"{self.labelmap} {what}",
                unit="block",
                disable=None if self.enabled is None else not self.enabled,
                dynamic_ncols=True,
            )
        if self.bar is not None:
            self.bar.update(progress["done"] - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def convert(
    client: DVIDClient,
    uuid: str,
    labelblk: str,
    labelmap: str,
    *,
    step: int | None = None,
    restart: bool = False,
    bars: Bars | None = None,
) -> dict[str, Any]:
    """Run (or continue) the conversion to its end; returns the final progress."""
    bars = bars or Bars(labelmap, enabled=False)
    try:
        progress = client.ingest_labelblk(uuid, labelmap, labelblk, blocks=step, restart=restart)
        bars.show(progress)
        while not progress["complete"]:
            progress = client.ingest_labelblk(uuid, labelmap, labelblk, blocks=step)
            bars.show(progress)
    finally:
        bars.close()
    return progress


__all__ = ["Bars", "ConversionError", "Target", "convert", "prepare", "pyramid_levels"]
