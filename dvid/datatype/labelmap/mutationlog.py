"""labelmap's mutation log: one JSON record per completed edit, kept per version, as DVID serves it
from ``mutations``, ``mutations-range`` and ``history``; and the time stamps DVID writes.

Records are stored in the instance's versioned store under tkey class 191 + the UUID of the version
the edit ran at + the mutation id (big-endian), so a version's records read back in the order they
were made, the records travel with their version on push and pull, and a version never sees its
ancestors' (``mutations`` lists one version's records, as DVID).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dvid.datatype.labelmap.tkeys import MUTATION_LOG_CLASS
from dvid.storage import keys
from dvid.storage.versioned import DataContext, VersionedBatch

_START = time.monotonic()


def go_timestamp(now: datetime | None = None) -> str:
    """The time as Go's ``time.Now().String()`` prints it, which DVID puts in its records:
    ``2021-02-14 00:58:02.708146297 -0500 EST m=+12.345678901`` (local zone, monotonic suffix)."""
    now = (now or datetime.now()).astimezone()
    nanos = now.microsecond * 1000
    zone = now.strftime("%z")
    name = now.tzname() or zone
    return f"{now:%Y-%m-%d %H:%M:%S}.{nanos:09d} {zone} {name} m=+{time.monotonic() - _START:.9f}"


def rfc3339_now() -> str:
    """Local time in RFC 3339 to the second, as Go's ``time.RFC3339`` (``Z`` for UTC)."""
    text = datetime.now().astimezone().isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


@dataclass(frozen=True)
class ModInfo:
    """Who made an edit and when (DVID's ``u=`` and ``app=``, and the time it ran)."""

    user: str = ""
    app: str = ""
    time: str = ""

    @classmethod
    def now(cls, user: str, app: str) -> ModInfo:
        return cls(user, app, rfc3339_now())


def log_prefix(version_uuid: str) -> bytes:
    return keys.tkey(MUTATION_LOG_CLASS, version_uuid.encode("ascii"))


def log_tkey(version_uuid: str, mutation_id: int) -> bytes:
    return log_prefix(version_uuid) + mutation_id.to_bytes(8, "big")


def record_bytes(
    action: str, mutation_id: int, version_uuid: str, mod: ModInfo, fields: dict[str, Any]
) -> bytes:
    """A record as DVID writes it: compact JSON with sorted keys; ``User`` and ``App`` only when set."""
    record: dict[str, Any] = {
        "Action": action,
        "MutationID": mutation_id,
        "Timestamp": go_timestamp(),
        "UUID": version_uuid,
        **fields,
    }
    if mod.user:
        record["User"] = mod.user
    if mod.app:
        record["App"] = mod.app
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def append(batch: VersionedBatch, version_uuid: str, mutation_id: int, record: bytes) -> None:
    """Add a record to a version's log, in the batch that makes the edit."""
    batch.put(log_tkey(version_uuid, mutation_id), record)


def records(ctx: DataContext, version_uuid: str) -> list[bytes]:
    """The records of the edits made at one version, oldest first (``ctx`` at that version or a
    descendant)."""
    prefix = log_prefix(version_uuid)
    return [value for _, value in ctx.range(prefix, prefix + b"\xff" * 8)]
