"""The transfer stream: framed binary records carrying a repo's versions between servers.

Layout::

    MAGIC (8 bytes "DVIDXFR\\x00") | format u16be
    record*  = type u8 | length u32be | payload
    HEADER ("H", first)  msgpack: mode, repo, target, nodes, send, instances
    VERSION ("V")        msgpack {"node": i}: the key-values of header node i follow
    KVS ("K")            node u32be | instance u16be | entry*, entry = klen u32be | vlen u32be | key | value
    END ("E", last)      msgpack {"kvs": n, "digest": "crc32:<hex>"}: CRC-32 of every byte before it

Keys in KVS records are instance- and version-independent: the data key's tkey followed by its
one mark byte (value or tombstone); the receiver adds its own instance and version ids. ``node``
``0xFFFFFFFF`` means "the receiver's root version" (unversioned instances).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import Any

import msgpack

from dvid.errors import BadRequest

MAGIC = b"DVIDXFR\x00"
FORMAT = 1
PREAMBLE = MAGIC + struct.pack(">H", FORMAT)

HEADER = ord("H")
VERSION = ord("V")
KVS = ord("K")
END = ord("E")

ROOT_NODE = 0xFFFFFFFF
RECORD_HEAD = struct.Struct(">BI")
KVS_HEAD = struct.Struct(">IH")
ENTRY = struct.Struct(">II")
#: A KVS record is closed once its payload reaches this many bytes.
BATCH_BYTES = 4 << 20
#: Records larger than this (and than the receiver's max_body_bytes) are refused; a corrupt length
#: allocates nothing, since a payload is read as it arrives.
MAX_RECORD = 256 << 20


class StreamError(BadRequest):
    """A malformed, truncated or corrupt transfer stream (a 400 wherever it surfaces)."""


class Digest:
    """Running CRC-32 of the stream (C speed, GB/s: integrity against corruption and truncation)."""

    def __init__(self) -> None:
        self.crc = 0

    def update(self, data: bytes) -> None:
        self.crc = zlib.crc32(data, self.crc)

    def hexdigest(self) -> str:
        return f"crc32:{self.crc:08x}"


def new_digest() -> Digest:
    return Digest()


def record(rtype: int, payload: bytes) -> bytes:
    return RECORD_HEAD.pack(rtype, len(payload)) + payload


def packb(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def unpackb(data: bytes) -> Any:
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:
        raise StreamError(f"undecodable metadata record ({type(exc).__name__}: {exc})") from None


def encode_kvs(node: int, instance: int, pairs: list[tuple[bytes, bytes]]) -> bytes:
    """One KVS record (framing included) for ``(key, value)`` pairs."""
    parts = [b"", KVS_HEAD.pack(node, instance)]
    size = KVS_HEAD.size
    pack = ENTRY.pack
    for k, v in pairs:
        parts.append(pack(len(k), len(v)))
        parts.append(k)
        parts.append(v)
        size += ENTRY.size + len(k) + len(v)
    parts[0] = RECORD_HEAD.pack(KVS, size)
    return b"".join(parts)


def decode_kvs(payload: bytes) -> tuple[int, int, list[tuple[bytes, bytes]]]:
    """``(node, instance, [(key, value), ...])`` of a KVS payload."""
    if len(payload) < KVS_HEAD.size:
        raise StreamError("short KVS record")
    node, instance = KVS_HEAD.unpack_from(payload, 0)
    pos = KVS_HEAD.size
    end = len(payload)
    unpack = ENTRY.unpack_from
    mv = memoryview(payload)
    pairs = []
    while pos < end:
        if pos + 8 > end:
            raise StreamError("truncated KVS entry")
        kl, vl = unpack(payload, pos)
        pos += 8
        if pos + kl + vl > end:
            raise StreamError("truncated KVS entry")
        pairs.append((bytes(mv[pos : pos + kl]), bytes(mv[pos + kl : pos + kl + vl])))
        pos += kl + vl
    return node, instance, pairs


class Framer:
    """Builds the outgoing stream: records in order, with the running digest and the END record."""

    def __init__(self) -> None:
        self.digest = new_digest()
        self.kvs = 0
        self.bytes = 0

    def emit(self, data: bytes) -> bytes:
        self.digest.update(data)
        self.bytes += len(data)
        return data

    def preamble(self) -> bytes:
        return self.emit(PREAMBLE)

    def meta(self, rtype: int, obj: Any) -> bytes:
        return self.emit(record(rtype, packb(obj)))

    def kv_batches(self, node: int, instance: int, pairs: Iterator[tuple[bytes, bytes]]) -> Iterator[bytes]:
        """KVS records of about BATCH_BYTES each."""
        batch: list[tuple[bytes, bytes]] = []
        size = 0
        for k, v in pairs:
            batch.append((k, v))
            size += len(k) + len(v) + 8
            if size >= BATCH_BYTES:
                self.kvs += len(batch)
                yield self.emit(encode_kvs(node, instance, batch))
                batch, size = [], 0
        if batch:
            self.kvs += len(batch)
            yield self.emit(encode_kvs(node, instance, batch))

    def end(self) -> bytes:
        payload = packb({"kvs": self.kvs, "digest": self.digest.hexdigest()})
        return record(END, payload)


def check_preamble(data: bytes) -> None:
    if data[: len(MAGIC)] != MAGIC:
        raise StreamError("not a dvid transfer stream (bad magic)")
    (fmt,) = struct.unpack(">H", data[len(MAGIC) : len(PREAMBLE)])
    if fmt != FORMAT:
        raise StreamError(f"transfer stream format {fmt} is not supported (this server reads {FORMAT})")


class FrameWatcher:
    """Follows record boundaries in a byte stream seen in arbitrary chunks (for progress).

    ``feed(chunk)`` returns the record types whose heads were seen, and keeps ``header`` (the
    decoded HEADER record) once complete. Per-record work only, never per byte.
    """

    def __init__(self) -> None:
        self.pos = len(PREAMBLE)  # absolute offset of the next record head
        self.seen = 0  # bytes seen so far
        self._pending = b""  # bytes from self.pos on, kept while a head (or the header) is partial
        self.header: dict[str, Any] | None = None

    def feed(self, chunk: bytes) -> list[int]:
        types: list[int] = []
        start = self.seen
        self.seen += len(chunk)
        while self.pos < self.seen:
            data: Any = self._pending + chunk if self._pending else memoryview(chunk)[self.pos - start :]
            if len(data) < RECORD_HEAD.size:
                self._pending = bytes(data)
                return types
            rtype, length = RECORD_HEAD.unpack_from(data, 0)
            if self.header is None and rtype == HEADER:
                if len(data) < RECORD_HEAD.size + length:
                    self._pending = bytes(data)
                    return types
                self.header = unpackb(bytes(data[RECORD_HEAD.size : RECORD_HEAD.size + length]))
            types.append(rtype)
            self._pending = b""
            self.pos += RECORD_HEAD.size + length
        return types
