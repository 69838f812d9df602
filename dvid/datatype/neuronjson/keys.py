"""neuronjson's type keys and body-id parsing (spec §5.2).

| class | payload | value |
|---|---|---|
| 179 | ASCII body id + ``0x00`` | the annotation, compact JSON with sorted keys (no envelope) |
| 180 | none | ``schema`` (NeuTu/neu3 schema), bytes as POSTed |
| 181 | none | ``schema_batch``, bytes as POSTed |
| 182 | none | ``json_schema`` (validation schema), bytes as POSTed |
| 183 | version UUID (16 bytes) | the index epoch of a version (dvid; see ``common/epoch.py``) |
"""

from __future__ import annotations

from dvid.datatype.common.numbers import parse_decimal
from dvid.errors import BadRequest
from dvid.storage import keys

ANNOTATION_CLASS = 179
SCHEMA_CLASS = 180
SCHEMA_BATCH_CLASS = 181
JSON_SCHEMA_CLASS = 182
EPOCH_CLASS = 183

MAX_ID = 2**64 - 1
FIRST_TKEY = keys.min_tkey(ANNOTATION_CLASS)
LAST_TKEY = keys.max_tkey(ANNOTATION_CLASS)

#: The metadata documents, by endpoint (and by the key names ``key/schema``, ``key/schema_batch``).
META_TKEYS = {
    "schema": keys.tkey(SCHEMA_CLASS),
    "schema_batch": keys.tkey(SCHEMA_BATCH_CLASS),
    "json_schema": keys.tkey(JSON_SCHEMA_CLASS),
}
#: Keys of ``key/...`` that name a metadata document instead of a body.
META_KEYS = ("schema", "schema_batch")


def annotation_tkey(body_id: int) -> bytes:
    """``179 | 0x01 | decimal id | 0x00``."""
    return keys.tkey(ANNOTATION_CLASS, str(body_id).encode("ascii") + b"\x00")


def decode_tkey(tk: bytes) -> int | None:
    """The body id of an annotation tkey, None if the key is not a decimal u64 (foreign data)."""
    if len(tk) < 4 or tk[-1] != 0:
        return None
    n = parse_decimal(tk[2:-1].decode("ascii", "replace"), signed=False)
    return n if n is not None and n <= MAX_ID else None


def parse_body_id(text: str) -> int:
    """A body id in a path or key list: a decimal u64, else 400."""
    n = parse_decimal(text, signed=False) if text.isascii() else None
    if n is None or n > MAX_ID:
        raise BadRequest(f"key {text!r} is not a body id (an unsigned 64-bit decimal integer)")
    return n


def parse_bound(text: str) -> int:
    """A ``keyrange`` bound, as DVID reads them: a bound starting above ``'9'`` is the largest id,
    one starting below ``'0'`` is 0, anything else must be a whole u64."""
    if not text:
        raise BadRequest("keyrange bounds must not be empty")
    if text[0] > "9":
        return MAX_ID
    if text[0] < "0":
        return 0
    return parse_body_id(text)
