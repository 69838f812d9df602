"""Response bodies of the batch reads: JSON arrays of records, and the keyvalue-style formats of
``keyvalues`` and ``keyrangevalues`` (protobuf ``KeyValues``, a JSON object, a tar archive)."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

from dvid.datatype.common import jsonio
from dvid.datatype.keyvalue import JSON, PROTOBUF, TAR, output_writer
from dvid.datatype.neuronjson.selection import Selection
from dvid.datatype.neuronjson.values import Record, dumps

__all__ = ["JSON", "PROTOBUF", "TAR", "gzipped", "id_array", "keyed_entries", "record_array"]


def record_array(
    records: Iterable[tuple[int, Record]], selection: Selection, *, drop_bare: bool
) -> Iterator[bytes]:
    """``[obj,obj,...]`` of the selected records. With ``drop_bare``, a record whose selection holds
    nothing but ``bodyid`` is left out (``all``), unless ``bodyid`` was asked for by name."""
    drop_bare = drop_bare and not selection.wants_bodyid_only()
    sep = b"["
    for _, record in records:
        chosen = selection.apply(record)
        if drop_bare and len(chosen) <= 1 and set(chosen) <= {"bodyid"}:
            continue
        yield sep + dumps(chosen)
        sep = b","
    yield b"[]" if sep == b"[" else b"]"


def id_array(ids: Iterable[int]) -> Iterator[bytes]:
    """``[1000,2000,...]``."""
    sep = b"["
    for i in ids:
        yield sep + str(i).encode()
        sep = b","
    yield b"[]" if sep == b"[" else b"]"


def keyed_entries(
    entries: Iterable[tuple[str, Record | bytes | None]], fmt: str, selection: Selection
) -> Iterator[bytes]:
    """Keys with their records (a metadata document as bytes; None: missing) in ``fmt``: protobuf
    and tar give a missing key an empty value, JSON leaves it out."""
    out = output_writer(PROTOBUF if fmt == PROTOBUF else TAR) if fmt != JSON else None
    if out is None:
        yield b"{"
        sep = b""
        for key, value in entries:
            if value is None:
                continue
            payload = _payload(value, selection)
            yield sep + jsonio.dumps(key) + b":" + payload
            sep = b","
        yield b"}"
        return
    yield from out.begin()
    for key, value in entries:
        yield from out.entry(key, _payload(value, selection))
    yield from out.end()


def _payload(value: Record | bytes | None, selection: Selection) -> bytes:
    if value is None:
        return b""
    return value if isinstance(value, bytes) else dumps(selection.apply(value))


def gzipped(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """``pieces`` compressed as one gzip stream."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for piece in pieces:
        out = compressor.compress(piece)
        if out:
            yield out
    yield compressor.flush()
