"""labelmap's type keys (DVID's classes where DVID has one; see docs/architecture.md, Storage).

| class | payload | value |
|---|---|---|
| 24  | none | version extents (as the image types) |
| 186 | scale u8 + ZYX block index | enveloped compressed label Block (gzip by default) |
| 187 | label u64 BE | LZ4-enveloped ``LabelIndex`` protobuf of a body |
| 190 | supervoxel u64 BE | the body it maps to, u64 LE (dvid; DVID keeps this in its mutation log) |
| 191 | version UUID (32 ASCII) + mutation id u64 BE | one mutation-log record (JSON) |
| 192 | version UUID (16 bytes) | the mapping's epoch at a version (8 random bytes) |
| 193 | none | where a conversion from a labelblk stands at a version (dvid; JSON, see ``ingest.py``) |
| 240 | label u64 BE + (2^64 - 1 - mutation id) u64 BE | a body's label index before an edit ("": none) |
| 237 | none | max label of a version, u64 LE |
| 238 | none | max label of the repo (at the root), u64 LE |
| 239 | none | next label to hand out (repo root), u64 LE |
| 241 | none | ceiling of handed-out labels (repo root), u64 LE |
"""

from __future__ import annotations

from dvid.storage import keys

BLOCK_CLASS = 186
INDEX_CLASS = 187
MAPPING_CLASS = 190
MUTATION_LOG_CLASS = 191
MAPPING_EPOCH_CLASS = 192
INGEST_CLASS = 193
INDEX_SNAPSHOT_CLASS = 240
MAXLABEL_CLASS = 237
REPO_MAXLABEL_CLASS = 238
NEXTLABEL_CLASS = 239
NEXTLABEL_CEILING_CLASS = 241

MAXLABEL_TKEY = keys.tkey(MAXLABEL_CLASS)
REPO_MAXLABEL_TKEY = keys.tkey(REPO_MAXLABEL_CLASS)
NEXTLABEL_TKEY = keys.tkey(NEXTLABEL_CLASS)
NEXTLABEL_CEILING_TKEY = keys.tkey(NEXTLABEL_CEILING_CLASS)
INGEST_TKEY = keys.tkey(INGEST_CLASS)


def block_prefix(scale: int) -> bytes:
    """What precedes the ZYX block index in the tkeys of the blocks of one scale."""
    return keys.tkey(BLOCK_CLASS, bytes((scale,)))


def snapshot_tkey(label: int, mutation_id: int) -> bytes:
    """The key of a body's label index as it was before edit ``mutation_id`` (newest first)."""
    return keys.tkey(
        INDEX_SNAPSHOT_CLASS, label.to_bytes(8, "big") + (2**64 - 1 - mutation_id).to_bytes(8, "big")
    )
