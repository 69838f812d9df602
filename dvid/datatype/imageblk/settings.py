"""Creation settings of the imageblk family, and the volume extents as DVID stores them."""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dvid.datatype.common import envelope, jsonio
from dvid.datatype.common.geometry import Box, Point


class ImageSettings(BaseModel):
    """Creation settings of the imageblk family (string values in DVID's JSON)."""

    model_config = ConfigDict(extra="ignore")

    BlockSize: tuple[int, int, int] = (32, 32, 32)
    VoxelSize: tuple[float, float, float] = (8.0, 8.0, 8.0)
    VoxelUnits: tuple[str, str, str] = ("nanometers", "nanometers", "nanometers")
    Background: int = Field(0, ge=0)
    MinPoint: tuple[int, int, int] | None = None
    MaxPoint: tuple[int, int, int] | None = None
    GridStore: str = ""
    ScaleLevel: int = 0

    @field_validator("BlockSize", "MinPoint", "MaxPoint", mode="before")
    @classmethod
    def _int_triple(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(int(v) for v in value.replace(" ", "").replace("_", ",").split(","))
        return value

    @field_validator("BlockSize")
    @classmethod
    def _positive(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        if any(v <= 0 or v > 4096 for v in value):
            raise ValueError("every BlockSize dimension must be between 1 and 4096")
        return value

    @field_validator("VoxelSize", mode="before")
    @classmethod
    def _float_triple(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(float(v) for v in value.replace(" ", "").split(","))
        return value

    @field_validator("VoxelSize")
    @classmethod
    def _finite_positive(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if not all(math.isfinite(v) and v > 0 for v in value):
            raise ValueError("every VoxelSize dimension must be a finite positive number")
        return value

    @field_validator("VoxelUnits", mode="before")
    @classmethod
    def _units(cls, value: Any) -> Any:
        if isinstance(value, str):
            units = [u.strip() for u in value.split(",")]
            return tuple(units * 3) if len(units) == 1 else tuple(units)
        return value

    @field_validator("Background", "ScaleLevel", mode="before")
    @classmethod
    def _int(cls, value: Any) -> Any:
        return int(value) if isinstance(value, str) else value


def _extents_from(raw: bytes | None) -> tuple[Point, Point] | None:
    """Extents stored as DVID does: a 0x00 envelope byte then JSON {"MinPoint", "MaxPoint"}."""
    if not raw:
        return None
    obj = json.loads(envelope.deserialize(raw))
    return tuple(obj["MinPoint"]), tuple(obj["MaxPoint"])


def _extents_value(lo: Point, hi: Point) -> bytes:
    body = jsonio.dumps({"MinPoint": list(lo), "MaxPoint": list(hi)})
    return envelope.serialize(body, envelope.Compression(envelope.NONE))


def _grow(extents: tuple[Point, Point] | None, box: Box) -> tuple[Point, Point]:
    lo = box.offset
    hi = tuple(e - 1 for e in box.end)
    if extents is None:
        return lo, hi  # type: ignore[return-value]
    return (
        tuple(min(a, b) for a, b in zip(extents[0], lo, strict=True)),  # type: ignore[return-value]
        tuple(max(a, b) for a, b in zip(extents[1], hi, strict=True)),
    )


def _compression_setting(c: envelope.Compression) -> str:
    """The ``Compression`` setting that gives stored blocks compression ``c`` (lz4, gzip:N ...)."""
    names = {envelope.NONE: "none", envelope.SNAPPY: "snappy", envelope.LZ4: "lz4", envelope.JPEG: "jpeg"}
    if c.format == envelope.GZIP:
        return "gzip" if c.level == -1 else f"gzip:{c.level}"
    return names[c.format]
