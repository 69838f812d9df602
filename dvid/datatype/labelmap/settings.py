"""labelmap's creation settings."""

from __future__ import annotations

from pydantic import Field, field_validator

from dvid.datatype.labelblk import LabelSettings


class LabelMapSettings(LabelSettings):
    """Those of labelblk, plus label indexing and the pyramid depth (DVID's names)."""

    #: Keep a label index per body (needed by sparsevol, merge, cleave, split and friends).
    IndexedLabels: bool = True
    #: Accepted for DVID's creation JSON; labelmap counts voxels in its label index anyway.
    CountLabels: bool = True
    #: Scales 1..MaxDownresLevel hold the 2x downsampled levels (mode of non-zero labels).
    MaxDownresLevel: int = Field(0, ge=0, le=255)

    @field_validator("BlockSize")
    @classmethod
    def _multiple_of_16(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        if any(v % 16 or v > 1024 for v in value):
            raise ValueError("every labelmap BlockSize dimension must be a multiple of 16, at most 1024")
        return value
