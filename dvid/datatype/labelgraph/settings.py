"""labelgraph's creation settings: none beyond the common ones (Versioned, Compression, Tags)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class LabelGraphSettings(BaseModel):
    """No type-specific settings; ``Compression`` (common to all types) applies to property values."""

    model_config = ConfigDict(extra="ignore")
