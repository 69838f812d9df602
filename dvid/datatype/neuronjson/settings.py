"""neuronjson's creation settings: none of its own (``Versioned`` and ``Tags`` are every type's)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class NeuronJSONSettings(BaseModel):
    """Annotations are stored as compact JSON, uncompressed; nothing to choose."""

    model_config = ConfigDict(extra="ignore")
