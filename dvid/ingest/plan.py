"""Slabs and the checkpoint: how an ingest is cut into writes, and which of them are done.

A *slab* is a box of the source whose target box starts and ends on the instance's block grid (or at
the edge of the volume), so no two slabs share a block and they can be written in any order, in
parallel, and written again after an interruption without harm. Slabs are ``slab_depth`` planes deep
(a multiple of the block depth) and span the whole plane unless that would exceed ``max_bytes``; then
they are cut along y, and if a row of blocks is still too big, along x.

The *checkpoint* is a file of JSON lines: a header with the ingest's key (the source's files with
their sizes and modification times, the target server, version and instance, and the slab geometry),
then one line per finished slab with the digest of the bytes sent. A restarted ingest with the same
key skips the slabs listed; a line cut short by a kill is ignored. Its default place is under
``$XDG_CACHE_HOME/dvid/ingest/`` (``~/.cache``), named by a hash of the key, so the same command
finds it and a different one never does.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dvid.ingest import IngestError

CHECKPOINT_FORMAT = 1


@dataclass(frozen=True)
class Slab:
    """Source box ``[z0:z1, y0:y1, x0:x1]``, written at the target at ``offset + (x0, y0, z0)``."""

    index: int
    z0: int
    z1: int
    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def size_xyz(self) -> tuple[int, int, int]:
        return self.x1 - self.x0, self.y1 - self.y0, self.z1 - self.z0

    @property
    def voxels(self) -> int:
        nx, ny, nz = self.size_xyz
        return nx * ny * nz

    def target_offset(self, offset: tuple[int, int, int]) -> tuple[int, int, int]:
        return offset[0] + self.x0, offset[1] + self.y0, offset[2] + self.z0


def _cuts(start: int, length: int, step: int | None) -> list[tuple[int, int]]:
    """``[0, length)`` cut where ``start + i`` is a multiple of ``step`` (None: not cut)."""
    if step is None:
        return [(0, length)]
    out, lo = [], 0
    while lo < length:
        hi = min(length, lo + step - (start + lo) % step)
        out.append((lo, hi))
        lo = hi
    return out


def plan_slabs(
    shape_zyx: tuple[int, int, int],
    offset_xyz: tuple[int, int, int],
    block_xyz: tuple[int, int, int],
    *,
    slab_depth: int,
    voxel_bytes: int,
    max_bytes: int,
) -> list[Slab]:
    """The slabs of a source of ``shape_zyx`` written at ``offset_xyz`` into blocks of ``block_xyz``."""
    nz, ny, nx = shape_zyx
    bx, by, bz = block_xyz
    if slab_depth <= 0 or slab_depth % bz:
        raise IngestError(f"the slab depth {slab_depth} is not a multiple of the block depth {bz}")
    row_bytes = (nx + 2 * bx) * by * slab_depth * voxel_bytes  # a row of blocks across the plane
    y_step: int | None = None
    x_step: int | None = None
    if row_bytes * (ny // by + 2) > max_bytes:
        y_step = max(1, max_bytes // row_bytes) * by
        if row_bytes > max_bytes:
            x_step = max(1, max_bytes // (bx * by * slab_depth * voxel_bytes)) * bx
    slabs: list[Slab] = []
    for z0, z1 in _cuts(offset_xyz[2], nz, slab_depth):
        for y0, y1 in _cuts(offset_xyz[1], ny, y_step):
            for x0, x1 in _cuts(offset_xyz[0], nx, x_step):
                slabs.append(Slab(len(slabs), z0, z1, y0, y1, x0, x1))
    return slabs


def default_checkpoint_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dvid" / "ingest"


def key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


class Checkpoint:
    """The finished slabs of one ingest, appended as they finish (see the module doc)."""

    def __init__(self, path: Path, key: dict[str, Any]) -> None:
        self.path = path
        self.key = key
        self.done: dict[int, str] = {}
        self._file: Any = None

    @classmethod
    def for_key(cls, key: dict[str, Any], path: Path | None = None) -> Checkpoint:
        return cls(path or default_checkpoint_dir() / f"{key_digest(key)}.jsonl", key)

    def load(self) -> dict[int, str]:
        """Read the slabs already done (none if the file does not exist); IngestError if the file
        belongs to another ingest."""
        self.done = {}
        if not self.path.exists():
            return self.done
        lines = iter(self.path.read_text().splitlines())
        header = _parse(next(lines, ""))
        if header is None or header.get("dvid-ingest-checkpoint") != CHECKPOINT_FORMAT:
            raise IngestError(f"{self.path} is not a dvid ingest checkpoint")
        if header.get("key") != self.key:
            raise IngestError(
                f"the checkpoint {self.path} belongs to another ingest (other source files, target or"
                " slab geometry): remove it, or give another --checkpoint"
            )
        for line in lines:
            record = _parse(line)
            if record is not None and "slab" in record:
                self.done[int(record["slab"])] = str(record["sha256"])
        return self.done

    def restart(self) -> None:
        """Forget the finished slabs."""
        self.path.unlink(missing_ok=True)
        self.done = {}

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())
        if fresh:
            self._write({"dvid-ingest-checkpoint": CHECKPOINT_FORMAT, "key": self.key})
        elif not self.path.read_text().endswith("\n"):
            self._file.write("\n")  # a line cut short by a kill ends here

    def record(self, index: int, digest: str) -> None:
        """Mark slab ``index`` done (flushed and synced before returning)."""
        self.done[index] = digest
        self._write({"slab": index, "sha256": digest})

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, sort_keys=True) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __iter__(self) -> Iterator[int]:
        return iter(self.done)


def _parse(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


__all__ = ["Checkpoint", "Slab", "default_checkpoint_dir", "key_digest", "plan_slabs"]
