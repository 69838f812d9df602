"""``--verify``: read every slab back from the server and compare its digest with the digest of the
bytes that were sent (recorded in the checkpoint, so slabs written by an earlier, interrupted run are
checked too). labelmap slabs are read as supervoxels, the ids that were written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dvid.client import DVIDClientError
from dvid.ingest import IngestError
from dvid.ingest.plan import Slab
from dvid.ingest.target import Target
from dvid.ingest.writer import ThreadClients, bounded_map, digest, raw_geometry


@dataclass(frozen=True)
class Mismatch:
    slab: Slab
    where: str  # "<size> at <offset>"

    def __str__(self) -> str:
        return f"slab {self.slab.index} ({self.where})"


def read_params(target: Target) -> dict[str, str]:
    """Query parameters that read back exactly what a raw POST stored."""
    return {"supervoxels": "true"} if target.typename == "labelmap" else {}


def verify_slabs(
    clients: ThreadClients,
    target: Target,
    offset: tuple[int, int, int],
    slabs: list[Slab],
    digests: dict[int, str],
    *,
    workers: int,
    progress: Any,
) -> list[Mismatch]:
    """The slabs whose stored voxels differ from what was sent (or that were never recorded)."""
    params = read_params(target)

    def check(slab: Slab) -> Mismatch | None:
        size, where = raw_geometry(slab, offset)
        try:
            r = clients.get().instance_request(
                "GET", target.uuid, target.name, "raw", "0_1_2", size, where, params=params, timeout=None
            )
        except DVIDClientError as exc:
            raise IngestError(f"reading back slab {slab.index} ({size} at {where}) failed: {exc}") from None
        progress.update(len(r.content))
        if digests.get(slab.index) != digest(r.content):
            return Mismatch(slab, f"{size} at {where}")
        return None

    bad = [m for m in bounded_map(check, slabs, workers) if m is not None]
    return sorted(bad, key=lambda m: m.slab.index)


__all__ = ["Mismatch", "read_params", "verify_slabs"]
