"""DVID's byte layout of keys.

Metadata keys: ``0x00 | tkey``. Data keys:
``0x01 | instance_id u32be | tkey | version_id u32be | client_id u32be | mark``, with mark ``0x03``
for a value and ``0x4F`` for a tombstone. A tkey is ``class | 0x01 | payload`` and every payload
encoding within a class is prefix-free (fixed width or terminated), so all versions of one tkey
sit together and before any other tkey.
"""

from __future__ import annotations

import struct

from dvid.errors import BadRequest

METADATA_PREFIX = b"\x00"
DATA_PREFIX = b"\x01"
BLOB_PREFIX = b"\x02"  # content-addressed blobs: 0x02 | FNV-128 of the value (DVID's blobstore)

MARK_DATA = 0x03
MARK_TOMBSTONE = 0x4F

#: Bytes after the tkey in a data key: version (4), client (4), mark (1).
SUFFIX_LEN = 9
#: Bytes before the tkey in a data key: prefix (1), instance id (4).
HEAD_LEN = 5

_U32 = struct.Struct(">I")
_SUFFIX = struct.Struct(">IIB")
_ZYX = struct.Struct(">III")

MAX_U32 = 0xFFFFFFFF


def tkey(cls: int, payload: bytes = b"") -> bytes:
    """A type-specific key: ``class | 0x01 | payload``."""
    return bytes((cls, 0x01)) + payload


def min_tkey(cls: int) -> bytes:
    """Below every standard tkey of ``cls``."""
    return bytes((cls, 0x00))


def max_tkey(cls: int) -> bytes:
    """Above every standard tkey of ``cls``."""
    return bytes((cls, 0xFF))


def instance_prefix(instance_id: int) -> bytes:
    return DATA_PREFIX + _U32.pack(instance_id)


def data_key(instance_id: int, tk: bytes, version: int, *, tombstone: bool = False, client: int = 0) -> bytes:
    mark = MARK_TOMBSTONE if tombstone else MARK_DATA
    return DATA_PREFIX + _U32.pack(instance_id) + tk + _SUFFIX.pack(version, client, mark)


def min_version_key(instance_id: int, tk: bytes) -> bytes:
    """Lowest full key of any version of ``tk`` (inclusive bound)."""
    return DATA_PREFIX + _U32.pack(instance_id) + tk + b"\x00" * SUFFIX_LEN


def max_version_key(instance_id: int, tk: bytes) -> bytes:
    """Highest full key of any version of ``tk`` (inclusive bound)."""
    return DATA_PREFIX + _U32.pack(instance_id) + tk + b"\xff" * SUFFIX_LEN


def versions_stop(instance_id: int, tk: bytes) -> bytes:
    """Exclusive upper bound of all versions of ``tk``: just past ``max_version_key``."""
    return max_version_key(instance_id, tk) + b"\x00"


def tkey_of(key: bytes) -> bytes:
    """The tkey inside a full data key."""
    return key[HEAD_LEN:-SUFFIX_LEN]


def version_of(key: bytes) -> int:
    return _U32.unpack_from(key, len(key) - SUFFIX_LEN)[0]


def instance_of(key: bytes) -> int:
    return _U32.unpack_from(key, 1)[0]


def is_tombstone(key: bytes) -> bool:
    return key[-1] == MARK_TOMBSTONE


def with_ids(key: bytes, instance_id: int, version: int) -> bytes:
    """The same data key re-tagged with another instance and version id (client id reset to 0)."""
    return (
        DATA_PREFIX + _U32.pack(instance_id) + key[HEAD_LEN:-SUFFIX_LEN] + _SUFFIX.pack(version, 0, key[-1])
    )


def portable_key(key: bytes) -> bytes:
    """A data key without the ids local to one server (instance, version, client): ``tkey | mark``,
    the form a transfer stream carries."""
    return key[HEAD_LEN:-SUFFIX_LEN] + key[-1:]


def from_portable_key(pk: bytes, instance_id: int, version: int) -> bytes:
    """The data key of a portable key under local ids (client id 0).

    ValueError if its last byte is no mark (value or tombstone).
    """
    if not pk or pk[-1] not in (MARK_DATA, MARK_TOMBSTONE):
        raise ValueError("key without a valid mark byte")
    return DATA_PREFIX + _U32.pack(instance_id) + pk[:-1] + _SUFFIX.pack(version, 0, pk[-1])


def blob_key(digest: bytes) -> bytes:
    """The key of a blob by its 16-byte FNV-128 digest."""
    return BLOB_PREFIX + digest


def metadata_key(cls: int, payload: bytes = b"") -> bytes:
    return METADATA_PREFIX + tkey(cls, payload)


def u32be(value: int) -> bytes:
    return _U32.pack(value)


def zyx_bytes(x: int, y: int, z: int) -> bytes:
    """Block coordinate as DVID's IndexZYX: z, y, x each ``u32be(coord + 2**31)`` (sign bit flipped).

    A coordinate outside the 32-bit range is a 400: wrapped, it would name another block.
    """
    try:
        return _ZYX.pack(z + 0x80000000, y + 0x80000000, x + 0x80000000)
    except struct.error:
        raise BadRequest(f"block coordinate ({x}, {y}, {z}) is outside the 32-bit range") from None


def zyx_from_bytes(b: bytes, offset: int = 0) -> tuple[int, int, int]:
    """Inverse of :func:`zyx_bytes`: returns ``(x, y, z)``."""
    z, y, x = _ZYX.unpack_from(b, offset)
    return x - 0x80000000, y - 0x80000000, z - 0x80000000
