"""Creation settings of a tarsupervoxels instance, and the key of each supervoxel's blob."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from dvid.errors import BadRequest
from dvid.storage import keys

#: tkey class of the blobs: ``0x85 | 0x01 | "<supervoxel>.<extension>"`` (DVID's).
KEY_CLASS = 133
#: An extension: 1-64 printable ASCII characters, no space or '/' (a tar entry name is at most 100
#: bytes in USTAR: 20 digits, a dot and the extension fit).
EXTENSION = re.compile(r"[!-.0-~]{1,64}")
MISSING_EXTENSION = "tarsupervoxels instances must have Extension set in the configuration"


class TarSupervoxelsSettings(BaseModel):
    """``Extension``: the file extension of every blob (``drc``, ``ngmesh``, ``obj``, ``dat``...)."""

    model_config = ConfigDict(extra="ignore")

    Extension: str

    @field_validator("Extension")
    @classmethod
    def _extension(cls, value: str) -> str:
        if not EXTENSION.fullmatch(value):
            raise ValueError(
                "must be 1 to 64 printable ASCII characters without spaces or '/', e.g. drc, ngmesh, obj"
            )
        return value


def require_extension(settings: dict[str, Any]) -> None:
    """DVID's 400 when the creation settings (keys lower-cased) name no Extension."""
    if not settings.get("extension"):
        raise BadRequest(MISSING_EXTENSION)


def blob_tkey(supervoxel: int, extension: str) -> bytes:
    """The tkey of a supervoxel's blob: ``85 01 "<supervoxel>.<extension>"`` (no terminator)."""
    return keys.tkey(KEY_CLASS, f"{supervoxel}.{extension}".encode("ascii"))


def check_extension(value: Any) -> str:
    """A new Extension from ``POST info`` (400 if it is not one)."""
    if not isinstance(value, str) or not EXTENSION.fullmatch(value):
        raise BadRequest(
            f"Extension must be 1 to 64 printable ASCII characters without spaces or '/', got {value!r}"
        )
    return value
