"""DVID's value envelope (``dvid.SerializeData``): one header byte, optional CRC32, payload.

Header bits 7-5 give the compression (0 none, 1 snappy, 2 gzip, 4 lz4, 5 jpeg), bits 4-3 the
checksum (0 none, 1 CRC32, never with gzip). With CRC32, bytes 1-4 hold the little-endian IEEE
CRC32 of the payload. LZ4 payloads are a 4-byte little-endian original size plus an LZ4 block
(size 0 means raw bytes follow, a legacy form). An empty value serializes to empty bytes.
"""

from __future__ import annotations

import gzip
import re
import struct
import zlib
from dataclasses import dataclass
from typing import NamedTuple

import cramjam
import lz4.block

from dvid.errors import BadRequest

NONE, SNAPPY, GZIP, LZ4, JPEG = 0, 1, 2, 4, 5
CHECKSUM_NONE, CHECKSUM_CRC32 = 0, 1

_FORMAT_NAMES = {
    NONE: "No compression",
    SNAPPY: "Go Snappy compression",
    GZIP: "gzip compression",
    LZ4: "LZ4 compression",
    JPEG: "jpeg compression",
}
_SETTING_NAMES = {"none": NONE, "snappy": SNAPPY, "lz4": LZ4, "gzip": GZIP, "jpeg": JPEG}
_SETTING = re.compile(r"^(?P<name>[a-z0-9]+)(?::(?P<level>-?\d+))?$")


@dataclass(frozen=True)
class Compression:
    """How an instance serializes its stored values."""

    format: int = LZ4
    level: int = -1
    checksum: int = CHECKSUM_NONE

    @classmethod
    def parse(cls, setting: str | None, checksum: str | None = None, *, jpeg_level: int = 32) -> Compression:
        """From the ``Compression`` and ``Checksum`` creation settings (case-insensitive)."""
        fmt, level = LZ4, -1
        if setting:
            m = _SETTING.match(setting.strip().lower())
            if not m or m.group("name") not in _SETTING_NAMES:
                raise BadRequest(f"Illegal compression specified: {setting}")
            fmt = _SETTING_NAMES[m.group("name")]
            if fmt == GZIP:
                level = int(m.group("level")) if m.group("level") else -1
                if level != -1 and not 1 <= level <= 9:
                    raise BadRequest(f"Illegal gzip compression level {level}: use 1-9")
            elif fmt == JPEG:
                level = jpeg_level
            elif m.group("level"):
                raise BadRequest(f"Illegal compression specified: {setting} takes no level")
        cs = CHECKSUM_NONE
        if checksum:
            name = checksum.strip().lower()
            if name == "crc32":
                cs = CHECKSUM_CRC32
            elif name != "none":
                raise BadRequest(f"Illegal checksum specified: {checksum} (use none or crc32)")
        if fmt == GZIP:
            cs = CHECKSUM_NONE
        return cls(fmt, level, cs)

    def describe(self) -> str:
        """As DVID's instance info shows it, e.g. ``"LZ4 compression, level -1"``."""
        return f"{_FORMAT_NAMES[self.format]}, level {self.level}"

    def describe_checksum(self) -> str:
        return "CRC32 checksum" if self.checksum == CHECKSUM_CRC32 else "No checksum"

    def to_record(self) -> list[int]:
        return [self.format, self.level, self.checksum]

    @classmethod
    def from_record(cls, record: list[int]) -> Compression:
        return cls(*record)


class Header(NamedTuple):
    """The first byte of a stored value: its compression format and checksum kind."""

    format: int
    checksum: int = CHECKSUM_NONE

    @property
    def size(self) -> int:
        """Bytes before the payload: the header byte, and the CRC32 if there is one."""
        return 5 if self.checksum == CHECKSUM_CRC32 else 1

    def to_bytes(self) -> bytes:
        return bytes((((self.format & 7) << 5) | ((self.checksum & 3) << 3),))


def read_header(value: bytes) -> Header:
    """The header of a non-empty stored value."""
    return Header(value[0] >> 5, (value[0] >> 3) & 3)


def payload(value: bytes) -> bytes:
    """A stored value without its header and CRC32 (not checked): the bytes as compressed."""
    return value[read_header(value).size :] if value else b""


def payload_length(value: bytes) -> int:
    """The length of the value inside an envelope, cheaply where the envelope records it
    (uncompressed, LZ4); otherwise by unwrapping it."""
    if not value:
        return 0
    head = read_header(value)
    if head.format == NONE:
        return len(value) - head.size
    if head.format == LZ4 and len(value) >= head.size + 4:
        size = struct.unpack_from("<I", value, head.size)[0]
        return size if size else len(value) - head.size - 4
    return len(deserialize(value))


def serialize(data: bytes | memoryview, compression: Compression = Compression()) -> bytes:
    """Wrap raw bytes in DVID's envelope."""
    if len(data) == 0:
        return b""
    fmt = compression.format
    if fmt == LZ4:
        payload = lz4.block.compress(data, store_size=True)
    elif fmt == NONE:
        payload = bytes(data)
    elif fmt == GZIP:
        level = 6 if compression.level == -1 else compression.level
        payload = gzip.compress(bytes(data), compresslevel=level, mtime=0)
    elif fmt == SNAPPY:
        payload = bytes(cramjam.snappy.compress_raw(bytes(data)))
    else:
        raise BadRequest("jpeg compression applies only to image blocks, not to generic values")
    checksum = compression.checksum if fmt != GZIP else CHECKSUM_NONE
    header = Header(fmt, checksum).to_bytes()
    if checksum == CHECKSUM_CRC32:
        return header + struct.pack("<I", zlib.crc32(payload)) + payload
    return header + payload


def deserialize(value: bytes) -> bytes:
    """Unwrap any envelope DVID writes (none, snappy, gzip, lz4; optional CRC32)."""
    if not value:
        return b""
    fmt, checksum = read_header(value)
    body = memoryview(value)[1:]
    if checksum == CHECKSUM_CRC32:
        if len(body) < 4:
            raise ValueError("stored value is too short for its CRC32")
        (expected,) = struct.unpack_from("<I", body)
        body = body[4:]
        if zlib.crc32(body) != expected:
            raise ValueError("stored value failed its CRC32 check")
    elif checksum != CHECKSUM_NONE:
        raise ValueError(f"unknown checksum type {checksum} in value header")
    if fmt == LZ4:
        if len(body) >= 4 and struct.unpack_from("<I", body)[0] == 0:
            return bytes(body[4:])
        return lz4.block.decompress(body)
    if fmt == NONE:
        return bytes(body)
    if fmt == GZIP:
        return gzip.decompress(body)
    if fmt == SNAPPY:
        return bytes(cramjam.snappy.decompress_raw(bytes(body)))
    raise ValueError(f"cannot deserialize a value with compression format {fmt}")
