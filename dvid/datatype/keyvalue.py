"""The ``keyvalue`` datatype: versioned string keys holding arbitrary byte values.

Wire-compatible with DVID's ``datatype/keyvalue`` (type version 0.2). The module reads top to
bottom: the help text served at ``/api/help/keyvalue``; the key codec (tkey class 0xB1,
``B1 01 <utf-8 key> 00``); pure helpers for byte ranges, batch requests and the three batch output
formats (protobuf, JSON, tar); the model methods (synchronous, each taking a
:class:`~dvid.storage.versioned.DataContext`); and the short async HTTP handlers.

Values are stored in DVID's value envelope (:mod:`dvid.datatype.common.envelope`) with the
instance's compression; reads accept every envelope DVID writes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from google.protobuf.message import DecodeError

from dvid.datatype.base import Datatype, Route
from dvid.datatype.common import envelope, jsonio, kvproto
from dvid.datatype.common.numbers import parse_decimal
from dvid.datatype.common.request import InstanceRequest, octet_response
from dvid.datatype.common.route import BINARY, KEY, Param, flag, query
from dvid.datatype.common.route import JSON as JSON_MEDIA
from dvid.datatype.common.route import TAR as TAR_MEDIA
from dvid.datatype.common.streaming import stream_pieces
from dvid.datatype.registry import register
from dvid.errors import BadRequest, NotFound, RangeNotSatisfiable
from dvid.storage import keys as storage_keys
from dvid.storage.versioned import DataContext

log = logging.getLogger("dvid.datatype.keyvalue")

HELP_TEXT = """\
API for datatype "keyvalue"
===========================

A keyvalue instance maps string keys to arbitrary byte values, versioned like all DVID data:
a value written at a version is seen by that version and its descendants until they overwrite
or delete it. An unversioned instance (created with "Versioned": "false") keeps one value per
key for the whole repo and may be written even at committed versions.

Keys are non-empty strings; they are case-sensitive, ordered byte-wise by their UTF-8 encoding,
and may contain any character except NUL (spaces, '%', braces, control characters and Unicode are
fine). In a URL a key is one path segment: percent-encode it (a '/' must be sent as %2F). Keys
written with POST /keyvalues are not URL-restricted.

Values are stored with the instance's compression (default LZ4) and returned exactly as
written. An empty value is a value: the key exists and reads back as zero bytes.

Errors are plain text "<message> (<path>)." with status 400 for bad input, 404 for an unknown
repo, version, instance or key, 405 for a method the endpoint does not take (and for writes to a
read-only server), 409 for a write to a committed version of a versioned instance and for a read
that meets two different values of a key at a merge that was not resolved, 413 for a body above
the server's size limit, 416 for an unsatisfiable Range header.

Instance creation
-----------------

POST /api/repo/{uuid}/instance
    {"typename": "keyvalue", "dataname": "<name>", "Versioned": "true", "Compression": "lz4",
     "Checksum": "none", "Tags": "k1=v1,k2=v2"}

    Compression: none, snappy, lz4 (default) or gzip[:level 1-9]; Checksum: none or crc32.
    All settings are optional strings.

Common endpoints
----------------

GET  <api URL>/node/{uuid}/{data name}/help
    This help text.

GET  <api URL>/node/{uuid}/{data name}/info
    JSON {"Base": {...instance description...}, "Extended": {}}.

GET  <api URL>/node/{uuid}/{data name}/tags
POST <api URL>/node/{uuid}/{data name}/tags[?replace=true]
    Read ({"Tags": {...}}) or merge a JSON object of string tags into the instance's tags;
    replace=true replaces the whole set.

Single keys
-----------

GET  <api URL>/node/{uuid}/{data name}/key/{key}[?byte_start=S&byte_end=E]
    The value as application/octet-stream, with "Accept-Ranges: bytes". 404 with
    'Key "<key>" not found' if the key is absent at this version. An empty key (".../key/")
    is a 400.

    byte_start, byte_end: an inclusive byte range of the value, decimal. Both are required, must
        satisfy start <= end and lie inside the value; otherwise 400. Answered with 200 and the
        slice.

    A "Range: bytes=..." header asks for one range the HTTP way; it may not be combined with
    byte_start/byte_end (400). Forms: "bytes=S-E" (E is clamped to the last byte),
    "bytes=S-" (to the end), "bytes=-N" (the last N bytes). A satisfiable range is answered
    with 206, "Content-Range: bytes S-E/LENGTH" and the slice; a range starting at or past the
    end of the value, a suffix of 0 bytes, or any range on an empty value is a 416 with
    "Content-Range: bytes */LENGTH". Headers that are not a single well-formed byte range
    (other units, several ranges, non-numeric or reversed bounds) are ignored and the whole
    value is returned with 200.

HEAD <api URL>/node/{uuid}/{data name}/key/{key}
    200 with "Accept-Ranges: bytes" and the value's Content-Length if the key exists, else 404.
    No body.

POST <api URL>/node/{uuid}/{data name}/key/{key}
    Stores the request body, verbatim, as the key's value at this version (an empty body stores
    an empty value). 200 with an empty body. 409 at a committed version of a versioned instance.

DELETE <api URL>/node/{uuid}/{data name}/key/{key}
    Deletes the key at this version; ancestor versions keep their values. 200 even if the key
    did not exist. 409 at a committed version of a versioned instance.

Listing keys
------------

GET <api URL>/node/{uuid}/{data name}/keys
    JSON array of every key at this version, in key order; [] if there are none.

GET <api URL>/node/{uuid}/{data name}/keyrange/{key1}/{key2}
    JSON array of the keys with key1 <= key <= key2 (byte order, both ends inclusive; keys that
    merely start with key2 are after it). Both bounds are required (400 otherwise).

Batches of values
-----------------

GET <api URL>/node/{uuid}/{data name}/keyrangevalues/{key1}/{key2}
        [?json=true|tar=true|jsontar=true][&check=true]
    The keys in the inclusive range [key1, key2] with their values, in key order, in one of the
    output formats below (protobuf unless json or tar is asked for).

GET <api URL>/node/{uuid}/{data name}/keyvalues[?json=true|tar=true|jsontar=true][&check=true]
    The values of the keys named in the request body, in request order (repeats allowed).
    Missing keys are not errors: they come back with an empty value ({} in JSON).

    Request body:
      * protobuf output (default): a serialized Keys message. Its "keys" are answered first,
        then its "key_ranges" (each asks for the inclusive bytes byte_start..byte_end of a key's
        value).
      * json or tar output: a JSON array, either of key strings
            ["key1", "key2"]
        or of objects, each with a key and optionally an inclusive byte range
            [{"key": "key1", "byte_start": 5, "byte_end": 12}, {"key": "key2"}]
        (both byte_start and byte_end or neither).

    Byte ranges are checked before anything is sent: a range with start > end, or one that does
    not lie inside an existing value, is a 400; a range on a missing (or empty) value gives an
    empty value. In JSON output a ranged slice must itself be valid JSON (400 otherwise).
    Asking for both tar and json output is a 400. An empty key or a malformed body is a 400.

POST <api URL>/node/{uuid}/{data name}/keyvalues
    Stores every key-value pair of the serialized KeyValues message in the body at this version,
    all in one atomic write: either every pair is stored or none is. Malformed protobuf or an
    empty key is a 400 and stores nothing. 200 with an empty body.

Output formats
--------------

protobuf (default; Content-Type application/octet-stream): a serialized KeyValues message.
    The messages (proto3, package "proto"):

        message KeyValue  { string key = 1; bytes value = 2; }
        message KeyRange  { string key = 1; uint64 byte_start = 2; uint64 byte_end = 3; }
        message Keys      { repeated string keys = 1; repeated KeyRange key_ranges = 2; }
        message KeyValues { repeated KeyValue kvs = 1; }

json=true (Content-Type application/json): one JSON object mapping each key to its value,
    inserted verbatim, so values should be JSON documents:
        {"key1":<value1 bytes>,"key2":<value2 bytes>}
    An empty or missing value is written as {}. With check=true every value is first checked to
    be valid JSON; a value that is not ends the response early (the connection is closed before
    the body is complete, or a 400 if nothing had been sent yet).

tar=true or jsontar=true (Content-Type application/tar): a tar archive with one regular file
    (mode 0755) per key, named by the key and holding its value; missing keys give empty files.

Large outputs are streamed. If reading fails after the response has begun, the connection is
closed before the body is complete, so clients see a truncated transfer rather than a short
but well-formed answer.
"""

# ---- key codec -------------------------------------------------------------------------------

KEY_CLASS = 0xB1
#: Below and above every key of the class.
MIN_TKEY = storage_keys.min_tkey(KEY_CLASS)
MAX_TKEY = storage_keys.max_tkey(KEY_CLASS)


def _key_bytes(key: str) -> bytes:
    try:
        raw = key.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"key {key!r} is not valid Unicode text") from None
    if b"\x00" in raw:
        raise BadRequest(f"key {key!r} contains a NUL byte, which keyvalue keys cannot hold")
    return raw


def encode_key(key: str) -> bytes:
    """The tkey of ``key``: ``B1 01 <utf-8 key> 00``. Empty keys and keys with NUL are a 400."""
    if not key:
        raise BadRequest("keyvalue keys must be non-empty strings")
    return storage_keys.tkey(KEY_CLASS, _key_bytes(key) + b"\x00")


def encode_bound(key: str) -> bytes:
    """A range bound: like :func:`encode_key` but an empty string (below every key) is allowed."""
    return storage_keys.tkey(KEY_CLASS, _key_bytes(key) + b"\x00")


def decode_key(tk: bytes) -> str:
    """The key string inside a tkey (invalid UTF-8 from foreign stores is replaced, not fatal)."""
    if len(tk) < 3 or tk[0] != KEY_CLASS or tk[1] != 0x01 or tk[-1] != 0:
        raise ValueError(f"not a keyvalue tkey: {tk!r}")
    return tk[2:-1].decode("utf-8", "replace")


# ---- byte ranges -----------------------------------------------------------------------------

MAX_U64 = 2**64 - 1


def _parse_u64(text: str) -> int | None:
    n = parse_decimal(text, signed=False)
    return n if n is not None and n <= MAX_U64 else None


def parse_query_range(byte_start: str | None, byte_end: str | None) -> tuple[int, int] | None:
    """The ``byte_start``/``byte_end`` query range (inclusive), None if neither is given.

    Strict: both are required, decimal unsigned, ``start <= end``; otherwise 400.
    """
    if not byte_start and not byte_end:
        return None
    if not byte_start or not byte_end:
        raise BadRequest("byte_start and byte_end must be given together")
    start, end = _parse_u64(byte_start), _parse_u64(byte_end)
    if start is None:
        raise BadRequest(f"byte_start must be a non-negative integer, got {byte_start!r}")
    if end is None:
        raise BadRequest(f"byte_end must be a non-negative integer, got {byte_end!r}")
    if start > end:
        raise BadRequest(f"byte_start ({start}) is after byte_end ({end})")
    return start, end


def check_range_inside(start: int, end: int, length: int, what: str = "value") -> None:
    """400 unless the inclusive range ``start..end`` lies inside a value of ``length`` bytes."""
    if start >= length or end >= length:
        raise BadRequest(f"byte range {start}-{end} is outside the {length}-byte {what}")


def parse_range_header(header: str, length: int) -> tuple[int, int] | None:
    """A single ``Range: bytes=...`` header against a value of ``length`` bytes.

    Returns the inclusive range to send (end clamped), None if the header is to be ignored
    (not a single well-formed byte range), or raises RangeNotSatisfiable (416).
    """
    header = header.strip()
    if not header.startswith("bytes="):
        return None
    spec = header[len("bytes=") :].strip()
    if not spec or "," in spec or "-" not in spec:
        return None
    first, _, last = spec.partition("-")
    first, last = first.strip(), last.strip()
    if not first and not last:
        return None
    start = _parse_u64(first) if first else None
    end = _parse_u64(last) if last else None
    if (first and start is None) or (last and end is None):
        return None
    if start is not None and end is not None and start > end:
        return None
    if length == 0:
        raise RangeNotSatisfiable(f"range {spec!r} is not satisfiable: the value is empty", length=0)
    if start is None:  # suffix: the last N bytes
        assert end is not None
        if end == 0:
            raise RangeNotSatisfiable(f"range {spec!r} asks for no bytes", length=length)
        return length - min(end, length), length - 1
    if start >= length:
        raise RangeNotSatisfiable(
            f"range {spec!r} starts at or past the end of the {length}-byte value", length=length
        )
    return start, length - 1 if end is None else min(end, length - 1)


# ---- batch requests --------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyRequest:
    """One entry of a batch read: a key and optionally an inclusive byte range of its value."""

    key: str
    tk: bytes
    start: int | None = None
    end: int | None = None

    @property
    def ranged(self) -> bool:
        return self.start is not None


def _ranged_request(key: str, start: int, end: int) -> KeyRequest:
    if start > end:
        raise BadRequest(f"byte range of key {key!r}: byte_start ({start}) is after byte_end ({end})")
    return KeyRequest(key, encode_key(key), start, end)


def parse_keys_protobuf(body: bytes) -> list[KeyRequest]:
    """A protobuf ``Keys`` request: its ``keys`` first, then its ``key_ranges``."""
    msg = kvproto.Keys()
    try:
        msg.ParseFromString(body)
    except DecodeError as exc:
        raise BadRequest(f"could not parse the request body as a protobuf Keys message: {exc}") from None
    requests = [KeyRequest(key, encode_key(key)) for key in msg.keys]
    requests.extend(_ranged_request(r.key, r.byte_start, r.byte_end) for r in msg.key_ranges)
    return requests


_KEY_LIST_SHAPE = 'a JSON array of key strings or of {"key", "byte_start", "byte_end"} objects'


def _json_offset(obj: dict, name: str, key: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_U64:
        raise BadRequest(f"{name} of key {key!r} must be a non-negative integer, got {value!r}")
    return value


def parse_keys_json(body: bytes) -> list[KeyRequest]:
    """A JSON key list: strings, or objects with ``key`` and an optional byte range."""
    items = jsonio.loads(body, what="key list")
    if not isinstance(items, list):
        raise BadRequest(f"the request body must be {_KEY_LIST_SHAPE}")
    requests = []
    for item in items:
        if isinstance(item, str):
            requests.append(KeyRequest(item, encode_key(item)))
            continue
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise BadRequest(f"the request body must be {_KEY_LIST_SHAPE}; got an item {item!r:.100}")
        key = item["key"]
        start, end = _json_offset(item, "byte_start", key), _json_offset(item, "byte_end", key)
        if (start is None) != (end is None):
            raise BadRequest(f"key {key!r}: give both byte_start and byte_end, or neither")
        if start is None or end is None:
            requests.append(KeyRequest(key, encode_key(key)))
        else:
            requests.append(_ranged_request(key, start, end))
    return requests


# ---- output formats --------------------------------------------------------------------------

PROTOBUF, JSON, TAR = "protobuf", "json", "tar"
CONTENT_TYPES = {PROTOBUF: "application/octet-stream", JSON: "application/json", TAR: "application/tar"}


def _is_json(value: bytes) -> bool:
    def no_constants(name: str) -> None:
        raise ValueError(name)

    try:
        json.loads(value, parse_constant=no_constants)
    except (ValueError, UnicodeDecodeError):
        return False
    return True


class _ProtobufOut:
    """A ``KeyValues`` message, written one ``kvs`` field at a time (repeated fields concatenate)."""

    def begin(self) -> Iterable[bytes]:
        return ()

    def entry(self, key: str, value: bytes | None) -> Iterable[bytes]:
        return kvproto.encode_kvs_entry(key, value or b"")

    def end(self) -> Iterable[bytes]:
        return ()


class _JsonOut:
    """DVID's concatenated JSON object: ``{"k":<raw value>,...}`` with ``{}`` for empty values."""

    def __init__(self, check: bool) -> None:
        self.check = check
        self.first = True

    def begin(self) -> Iterable[bytes]:
        return (b"{",)

    def entry(self, key: str, value: bytes | None) -> Iterable[bytes]:
        if not value:
            value = b"{}"
        elif self.check and not _is_json(value):
            raise BadRequest(f"value of key {key!r} is not valid JSON")
        sep = b"" if self.first else b","
        self.first = False
        return (sep + jsonio.dumps(key) + b":", value)

    def end(self) -> Iterable[bytes]:
        return (b"}",)


class _TarOut:
    """A tar archive, one regular file (mode 0755) per key; ends with two zero blocks, no padding."""

    def begin(self) -> Iterable[bytes]:
        return ()

    def entry(self, key: str, value: bytes | None) -> Iterable[bytes]:
        value = value or b""
        info = tarfile.TarInfo(key)
        info.size = len(value)
        info.mode = 0o755
        info.type = tarfile.REGTYPE
        pad = -len(value) % tarfile.BLOCKSIZE
        header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")
        return (header, value, b"\0" * pad) if pad else (header, value)

    def end(self) -> Iterable[bytes]:
        return (b"\0" * (2 * tarfile.BLOCKSIZE),)


def output_writer(fmt: str, check: bool = False) -> _ProtobufOut | _JsonOut | _TarOut:
    if fmt == JSON:
        return _JsonOut(check)
    if fmt == TAR:
        return _TarOut()
    return _ProtobufOut()


# ---- streaming helpers -----------------------------------------------------------------------

#: Single values up to this size are read and written on the event loop (see the key handlers).
INLINE_BYTES = 64 << 10


# ---- route parameters ------------------------------------------------------------------------

KEY1 = Param("key1", description="The first key of the range (inclusive; may be any string)", example="a")
KEY2 = Param("key2", description="The last key of the range (inclusive)", example="z")
BYTE_START = query(
    "byte_start", "integer", "First byte of an inclusive range (with byte_end)", minimum=0, maximum=MAX_U64
)
BYTE_END = query(
    "byte_end", "integer", "Last byte of an inclusive range (with byte_start)", minimum=0, maximum=MAX_U64
)
OUTPUT_QUERY = (
    flag("json", "Answer one JSON object mapping each key to its value (values should be JSON)"),
    flag("tar", "Answer a tar archive, one file per key"),
    flag("jsontar", "As tar"),
    flag("check", "With json: check every value is valid JSON"),
)
BATCH_OUTPUT = (BINARY, JSON_MEDIA, TAR_MEDIA)

# ---- the datatype ----------------------------------------------------------------------------


@register
class KeyValue(Datatype):
    """String keys to byte values, versioned."""

    type_name = "keyvalue"
    type_url = "github.com/janelia-flyem/dvid/datatype/keyvalue"
    type_version = "0.2"
    help_text = HELP_TEXT

    routes = (
        Route(
            "key", ("GET",), "handle_get_key", mutates=False, summary="A key's value (or a byte range of it)",
            args=(KEY,), query=(BYTE_START, BYTE_END), produces=(BINARY,), statuses=(206, 416),
        ),
        Route(
            "key", ("HEAD",), "handle_head_key", mutates=False,
            summary="Whether the key exists, with its value's length", args=(KEY,), produces=(BINARY,),
        ),
        Route(
            "key", ("POST",), "handle_post_key", mutates=True, summary="Store the body as the key's value",
            args=(KEY,), consumes=(BINARY,), produces=(),
        ),
        Route(
            "key", ("DELETE",), "handle_delete_key", mutates=True, summary="Delete the key at this version",
            args=(KEY,), produces=(),
        ),
        Route("keys", ("GET", "HEAD"), "handle_keys", mutates=False, summary="Every key, in key order"),
        Route(
            "keyrange", ("GET", "HEAD"), "handle_keyrange", mutates=False,
            summary="The keys from key1 to key2 (inclusive)", args=(KEY1, KEY2),
        ),
        Route(
            "keyrangevalues", ("GET", "HEAD"), "handle_keyrangevalues", mutates=False,
            summary="The keys from key1 to key2 (inclusive) with their values", args=(KEY1, KEY2),
            query=OUTPUT_QUERY, produces=BATCH_OUTPUT,
        ),
        Route(
            "keyvalues", ("GET", "HEAD"), "handle_get_keyvalues", mutates=False,
            summary="The values of the keys the body lists (protobuf Keys, or JSON with json/tar)",
            query=OUTPUT_QUERY, consumes=(BINARY, JSON_MEDIA), produces=BATCH_OUTPUT,
        ),
        Route(
            "keyvalues", ("POST",), "handle_post_keyvalues", mutates=True,
            summary="Store the pairs of a protobuf KeyValues message, atomically",
            consumes=(BINARY,), produces=(),
        ),
    )  # fmt: skip

    # ---- model: single keys ------------------------------------------------------------------
    def describe_change(
        self, tk: bytes, change: str, old: bytes | None, new: bytes | None
    ) -> list[dict[str, Any]]:
        """A key by its name, with the sizes of its old and new values."""
        if len(tk) < 3 or tk[0] != KEY_CLASS:
            return super().describe_change(tk, change, old, new)
        return [{"change": change, "key": decode_key(tk),
                 "old_bytes": None if old is None else envelope.payload_length(old),
                 "new_bytes": None if new is None else envelope.payload_length(new)}]  # fmt: skip

    def get_value(self, ctx: DataContext, key: str) -> bytes | None:
        """The value of ``key`` at the context's version, or None if absent."""
        return self._read(ctx, encode_key(key))

    @staticmethod
    def _read(ctx: DataContext, tk: bytes) -> bytes | None:
        stored = ctx.get(tk)
        return None if stored is None else envelope.deserialize(stored)

    def value_length(self, ctx: DataContext, key: str) -> int | None:
        """The length of the value of ``key``, or None if absent."""
        stored = ctx.get(encode_key(key))
        return None if stored is None else envelope.payload_length(stored)

    def put_value(self, ctx: DataContext, key: str, value: bytes) -> None:
        ctx.put(encode_key(key), envelope.serialize(value, self.compression))

    def delete_value(self, ctx: DataContext, key: str) -> None:
        """Hide ``key`` from this version on; harmless if it does not exist."""
        ctx.delete(encode_key(key))

    # ---- model: many keys --------------------------------------------------------------------
    def put_values(self, ctx: DataContext, items: Iterable[tuple[str, bytes]]) -> int:
        """Store every pair in one atomic batch; all keys are checked before anything is written."""
        encoded = [(encode_key(key), value) for key, value in items]
        with ctx.batch() as batch:
            for tk, value in encoded:
                batch.put(tk, envelope.serialize(value, self.compression))
        return len(encoded)

    def get_values(self, ctx: DataContext, keys: Iterable[str]) -> list[bytes | None]:
        return [self.get_value(ctx, key) for key in keys]

    def iter_keys(self, ctx: DataContext, first: str | None = None, last: str | None = None) -> Iterator[str]:
        """Keys with ``first <= key <= last`` (all keys if the bounds are None), in key order."""
        begin = MIN_TKEY if first is None else encode_bound(first)
        end = MAX_TKEY if last is None else encode_bound(last)
        for tk in ctx.keys(begin, end):
            yield decode_key(tk)

    def iter_range(self, ctx: DataContext, first: str, last: str) -> Iterator[tuple[str, bytes]]:
        """``(key, value)`` for the keys with ``first <= key <= last``, in key order."""
        for tk, stored in ctx.range(encode_bound(first), encode_bound(last)):
            yield decode_key(tk), envelope.deserialize(stored)

    def format_requests(
        self, ctx: DataContext, requests: list[KeyRequest], fmt: str, check: bool = False
    ) -> Iterator[bytes]:
        """A batch read as output pieces: ranges are resolved and checked before the first piece."""
        sliced: dict[int, bytes] = {}
        for i, r in enumerate(requests):
            if r.start is None or r.end is None:
                continue
            value = self._read(ctx, r.tk) or b""
            if value:
                check_range_inside(r.start, r.end, len(value), f"value of key {r.key!r}")
                value = value[r.start : r.end + 1]
                if fmt == JSON and not _is_json(value):
                    raise BadRequest(f"bytes {r.start}-{r.end} of key {r.key!r} are not valid JSON")
            sliced[i] = value
        out = output_writer(fmt, check)
        yield from out.begin()
        for i, r in enumerate(requests):
            yield from out.entry(r.key, sliced[i] if i in sliced else self._read(ctx, r.tk))
        yield from out.end()

    def format_range(
        self, ctx: DataContext, first: str, last: str, fmt: str, check: bool = False
    ) -> Iterator[bytes]:
        """The keys in ``[first, last]`` with their values, in key order, as output pieces."""
        out = output_writer(fmt, check)
        yield from out.begin()
        for key, value in self.iter_range(ctx, first, last):
            yield from out.entry(key, value)
        yield from out.end()

    def format_keys(
        self, ctx: DataContext, first: str | None = None, last: str | None = None
    ) -> Iterator[bytes]:
        """A JSON array of the keys in ``[first, last]`` (all if None), as output pieces."""
        sep = b"["
        for key in self.iter_keys(ctx, first, last):
            yield sep + jsonio.dumps(key)
            sep = b","
        yield b"[]" if sep == b"[" else b"]"

    # ---- handlers: single keys ---------------------------------------------------------------
    @staticmethod
    async def _stored(req: InstanceRequest, key: str) -> bytes | None:
        # A single-key read is one short LevelDB scan (microseconds for a cached key): req.small
        # runs it on the loop unless the store is remote. Large values decompress in a thread.
        return await req.small(req.ctx.get, encode_key(key))

    async def handle_get_key(self, req: InstanceRequest) -> web.StreamResponse:
        key = req.arg(0, "key string")
        stored = await self._stored(req, key)
        if stored is None:
            raise NotFound(f'Key "{key}" not found')
        if len(stored) <= INLINE_BYTES:
            value = envelope.deserialize(stored)
        else:
            value = await asyncio.to_thread(envelope.deserialize, stored)
        headers = {"Accept-Ranges": "bytes"}
        query_range = parse_query_range(req.query.get("byte_start"), req.query.get("byte_end"))
        range_header = req.request.headers.get("Range")
        if query_range is not None:
            if range_header:
                raise BadRequest(
                    "give a byte range either as byte_start/byte_end or as a Range header, not both"
                )
            start, end = query_range
            check_range_inside(start, end, len(value))
            return octet_response(value[start : end + 1], headers=headers)
        if range_header:
            header_range = parse_range_header(range_header, len(value))
            if header_range is not None:
                start, end = header_range
                headers["Content-Range"] = f"bytes {start}-{end}/{len(value)}"
                return octet_response(value[start : end + 1], status=206, headers=headers)
        return octet_response(value, headers=headers)

    async def handle_head_key(self, req: InstanceRequest) -> web.StreamResponse:
        key = req.arg(0, "key string")
        stored = await self._stored(req, key)
        if stored is None:
            raise NotFound(f'Key "{key}" not found')
        if len(stored) <= INLINE_BYTES:
            length = envelope.payload_length(stored)
        else:  # gzip and snappy envelopes must be decompressed to learn the length
            length = await asyncio.to_thread(envelope.payload_length, stored)
        return web.Response(
            headers={"Accept-Ranges": "bytes", "Content-Length": str(length)},
            content_type="application/octet-stream",
        )

    async def handle_post_key(self, req: InstanceRequest) -> web.StreamResponse:
        key = req.arg(0, "key string")
        encode_key(key)  # a bad key is refused before the body is read
        value = await req.body()
        # Small values: compressing and writing one key takes microseconds, less than a thread hop.
        if len(value) <= INLINE_BYTES:
            await req.small(self.put_value, req.ctx, key, value)
        else:
            await asyncio.to_thread(self.put_value, req.ctx, key, value)
        return web.Response()

    async def handle_delete_key(self, req: InstanceRequest) -> web.StreamResponse:
        key = req.arg(0, "key string")
        await req.small(self.delete_value, req.ctx, key)  # one tiny batch write
        return web.Response()

    # ---- handlers: listings and batches ------------------------------------------------------
    @staticmethod
    def _range_args(req: InstanceRequest) -> tuple[str, str]:
        if len(req.args) < 2:
            raise BadRequest(f"expect a beginning and an end key to follow '{req.endpoint}' endpoint")
        first, last = req.args[0], req.args[1]
        encode_bound(first)  # bad bounds are a 400 before anything streams
        encode_bound(last)
        return first, last

    @staticmethod
    def _output_format(req: InstanceRequest) -> str:
        tar = req.query_bool("tar") or req.query_bool("jsontar")
        as_json = req.query_bool("json")
        if tar and as_json:
            raise BadRequest("can only specify tar or json output, not both")
        return TAR if tar else JSON if as_json else PROTOBUF

    async def handle_keys(self, req: InstanceRequest) -> web.StreamResponse:
        return await stream_pieces(req, "application/json", self.format_keys(req.ctx))

    async def handle_keyrange(self, req: InstanceRequest) -> web.StreamResponse:
        first, last = self._range_args(req)
        return await stream_pieces(req, "application/json", self.format_keys(req.ctx, first, last))

    async def handle_keyrangevalues(self, req: InstanceRequest) -> web.StreamResponse:
        first, last = self._range_args(req)
        fmt = self._output_format(req)
        pieces = self.format_range(req.ctx, first, last, fmt, req.query_bool("check"))
        return await stream_pieces(req, CONTENT_TYPES[fmt], pieces)

    async def handle_get_keyvalues(self, req: InstanceRequest) -> web.StreamResponse:
        fmt = self._output_format(req)
        check = req.query_bool("check")
        body = await req.body()
        parse = parse_keys_protobuf if fmt == PROTOBUF else parse_keys_json
        requests = parse(body) if len(body) <= INLINE_BYTES else await asyncio.to_thread(parse, body)
        return await stream_pieces(
            req, CONTENT_TYPES[fmt], self.format_requests(req.ctx, requests, fmt, check)
        )

    async def handle_post_keyvalues(self, req: InstanceRequest) -> web.StreamResponse:
        body = await req.body()
        await asyncio.to_thread(self._post_keyvalues, req.ctx, body)
        return web.Response()

    def _post_keyvalues(self, ctx: DataContext, body: bytes) -> int:
        msg = kvproto.KeyValues()
        try:
            msg.ParseFromString(body)
        except DecodeError as exc:
            raise BadRequest(
                f"could not parse the request body as a protobuf KeyValues message: {exc}"
            ) from None
        return self.put_values(ctx, ((kv.key, kv.value) for kv in msg.kvs))
