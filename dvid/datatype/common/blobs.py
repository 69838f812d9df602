"""DVID's blobstore: content-addressed, unversioned values, named by the FNV-128 of their bytes.

``POST <instance>/blobstore`` stores a body and answers its reference, the URL-safe base64 (with
padding, 24 characters) of the 16-byte FNV-1 128-bit hash (Go's ``hash/fnv.New128``); ``GET
<instance>/blobstore/<ref>`` gives the bytes back. A blob lives in the store holding the instance, under
key ``0x02 | hash``, outside every instance's keys, so it is shared by all instances of that store.
"""

from __future__ import annotations

import base64
import binascii

from dvid.errors import BadRequest, DVIDError, NotFound
from dvid.storage import keys
from dvid.storage.engine import Engine

_FNV128_OFFSET = 0x6C62272E07BB014262B821756295C58D
_FNV128_PRIME = 0x0000000001000000000000000000013B
_MASK128 = (1 << 128) - 1

#: The largest blob accepted (hashing is byte-serial).
MAX_BLOB_BYTES = 16 << 20


def fnv128(data: bytes | memoryview) -> bytes:
    """FNV-1 (multiply, then xor) over 128 bits, big-endian, as Go's ``fnv.New128().Sum(nil)``.

    A byte-serial hash, about 3 MB/s in CPython (run off the event loop): blobs are mutation records
    and small payloads, at most :data:`MAX_BLOB_BYTES`."""
    h = _FNV128_OFFSET
    for byte in bytes(data):
        h = ((h * _FNV128_PRIME) & _MASK128) ^ byte
    return h.to_bytes(16, "big")


def reference(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).decode()


def digest_of(ref: str) -> bytes:
    try:
        digest = base64.urlsafe_b64decode(ref.encode())
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 16:
        raise BadRequest(f"blob reference {ref!r} is not the base64 of a 16-byte FNV-128 hash")
    return digest


def check_size(nbytes: int | None) -> None:
    if nbytes is not None and nbytes > MAX_BLOB_BYTES:
        raise DVIDError(f"a blob may hold at most {MAX_BLOB_BYTES} bytes, got {nbytes}", status=413)


def put_blob(engine: Engine, value: bytes) -> str:
    """Store ``value`` (idempotent: same bytes, same key) and return its reference."""
    check_size(len(value))
    digest = fnv128(value)
    engine.put(keys.blob_key(digest), value)
    return reference(digest)


def get_blob(engine: Engine, ref: str) -> bytes:
    value = engine.get(keys.blob_key(digest_of(ref)))
    if value is None:
        raise NotFound(f'Reference "{ref}" not found')
    return value
