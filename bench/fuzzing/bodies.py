"""Request bodies: random bytes, JSON (valid, truncated, valid but wrong), DVID payloads of wrong
sizes, and the encodings that wrap them (``Content-Encoding`` gzip/deflate, ``?compression=gzip|lz4``)
truthful or lying about what they hold.
"""

from __future__ import annotations

import functools
import gzip
import json
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import lz4.block

from bench.fuzzing.draw import Draw, chance, choice, weighted
from bench.fuzzing.values import FAR, SMALL, Names

#: JSON field names dvid reads somewhere (node actions, instance creation, elements, transfers ...).
JSON_FIELDS = (
    "note", "log", "branch", "tag", "uuid", "typename", "dataname", "versioned", "BlockSize", "VoxelSize",
    "MinPoint", "MaxPoint", "Pos", "Kind", "Tags", "Prop", "Rels", "Rel", "To", "parents", "mergeType",
    "data", "have", "flatten", "alias", "description", "root", "passcode", "newname", "sync", "Compression",
    "Label", "Labels", "Extents", "Checksum", "x", "y", "z", "",
)  # fmt: skip
HUGE_JSON_NUMBERS = (
    "18446744073709551617", "-9223372036854775809", "1e400", "-1e400", "1.5", "NaN", "Infinity",
    "-Infinity", "1E2", "0.000001", "123456789012345678901234567890", "9" * 4400,
)  # fmt: skip
ELEMENT_KINDS = ("PreSyn", "PostSyn", "Gap", "Note", "Unknown", "", "presyn")
RELS = ("PreSynTo", "PostSynTo", "GroupedWith", "BindsTo", "ConvergentTo", "Bogus")


@dataclass(frozen=True)
class Payload:
    """A body before framing: bytes, plus headers and query parameters the encoding needs."""

    data: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()
    query: tuple[tuple[bytes, bytes], ...] = ()


# ---- JSON -------------------------------------------------------------------------------------
def json_number(draw: Draw) -> str:
    return weighted(
        draw,
        (
            (6, str(choice(draw, SMALL))),
            (2, str(draw.integer(-(2**31), 2**31))),
            (1, str(choice(draw, FAR))),
            (2, choice(draw, HUGE_JSON_NUMBERS)),
            (1, str(-choice(draw, SMALL))),
        ),
    )


def json_string(draw: Draw, names: Names) -> str:
    text = weighted(
        draw,
        (
            (3, json.dumps(choice(draw, (*names.instances, *names.keys, *ELEMENT_KINDS, "", "x")))),
            (1, json.dumps(choice(draw, names.uuids))),
            (1, '"\\ud800"'),
            (1, '"a\\udfff"'),
            (1, '"\\u0000"'),
            (1, json.dumps("é日本🦀" * draw.integer(1, 3), ensure_ascii=False)),
            (1, json.dumps("x" * draw.integer(100, 5000))),
        ),
    )
    return text


def point(draw: Draw) -> str:
    if chance(draw, 15):
        return choice(draw, ("null", '"1,2,3"', "[]", "{}", '["a","b","c"]', "[1,[2],3]", "7"))
    n = weighted(draw, ((8, 3), (1, 2), (1, 4)))
    return "[" + ",".join(json_number(draw) for _ in range(n)) + "]"


def element(draw: Draw) -> str:
    fields = [f'"Pos":{point(draw)}', f'"Kind":"{choice(draw, ELEMENT_KINDS)}"']
    if chance(draw, 40):
        rels = ",".join(
            f'{{"Rel":"{choice(draw, RELS)}","To":{point(draw)}}}' for _ in range(draw.integer(0, 3))
        )
        fields.append(f'"Rels":[{rels}]')
    if chance(draw, 20):
        fields.append(choice(draw, ('"Tags":["a","b"]', '"Prop":{"a":"b"}', '"Tags":"x"', '"Prop":[1]')))
    if chance(draw, 10):
        del fields[draw.integer(0, len(fields) - 1)]
    return "{" + ",".join(fields) + "}"


def json_value(draw: Draw, names: Names, depth: int = 3) -> str:
    """Any JSON text: atoms, arrays and objects with dvid's field names, nested up to ``depth``."""
    options: list[tuple[int, str]] = [
        (3, "atom"), (2, "string"), (1 if depth <= 0 else 2, "array"), (0 if depth <= 0 else 3, "object"),
    ]  # fmt: skip
    what = weighted(draw, options)
    if what == "atom":
        return choice(draw, ("null", "true", "false", json_number(draw), "[]", "{}"))
    if what == "string":
        return json_string(draw, names)
    if what == "array":
        return "[" + ",".join(json_value(draw, names, depth - 1) for _ in range(draw.integer(0, 4))) + "]"
    items = []
    for _ in range(draw.integer(0, 4)):
        key = json.dumps(choice(draw, JSON_FIELDS)) if chance(draw, 85) else json_string(draw, names)
        items.append(f"{key}:{json_value(draw, names, depth - 1)}")
    return "{" + ",".join(items) + "}"


def dvid_json(draw: Draw, names: Names) -> str:
    """JSON shaped like a dvid request body, with its numbers and strings drawn wild."""
    n = draw.integer(0, 4)
    s = functools.partial(json_string, draw, names)
    shapes = (
        lambda: "[" + ",".join(element(draw) for _ in range(n)) + "]",
        lambda: "[" + ",".join(point(draw) for _ in range(n)) + "]",
        lambda: "[" + ",".join(point(draw).replace("]", f",{json_number(draw)}]") for _ in range(n)) + "]",
        lambda: "[" + ",".join(json_number(draw) for _ in range(n)) + "]",
        lambda: f'{{"sync":{s()}}}',
        lambda: f'{{"sync":"{",".join(choice(draw, names.instances) for _ in range(n + 1))}"}}',
        lambda: "[" + ",".join(str(choice(draw, names.labels)) for _ in range(n + 1)) + "]",
        lambda: point(draw),
        lambda: "[" + ",".join(f"[{x},{y},{z}]" for x, y, z in names.points[:n + 1]) + "]",
        lambda: f'{{"note":{s()},"log":[{s()}]}}',
        lambda: f'{{"branch":{s()},"uuid":{s()}}}',
        lambda: f'{{"typename":{s()},"dataname":{s()},"BlockSize":"{json_number(draw)},8,8"}}',
        lambda: f'{{"MinPoint":{point(draw)},"MaxPoint":{point(draw)}}}',
        lambda: f'{{"mergeType":"conflict-free","parents":[{s()},{s()}],"data":[{s()}]}}',
        lambda: f'{{"{json_number(draw)},0,0":[{element(draw)}]}}',
        lambda: f'{{"{choice(draw, names.labels)}":"[{element(draw).replace(chr(34), chr(92) + chr(34))}]"}}',
        lambda: f'{{"have":{json_value(draw, names, 1)},"data":[{s()}],"flatten":{json_number(draw)}}}',
        lambda: f'{{"dataname":{s()},"newname":{s()}}}',
        lambda: f'{{"k":{s()},"v":{json_value(draw, names, 1)}}}',
    )  # fmt: skip
    return choice(draw, shapes)()


def json_body(draw: Draw, names: Names) -> bytes:
    """Valid JSON, valid but wrong, truncated, deeply nested, or not quite JSON."""
    text = dvid_json(draw, names) if chance(draw, 60) else json_value(draw, names)
    how = weighted(draw, ((10, "as is"), (2, "truncated"), (1, "deep"), (1, "junk after"), (1, "bom")))
    if how == "truncated":
        return text.encode()[: draw.integer(0, max(0, len(text.encode()) - 1))]
    if how == "deep":
        depth = choice(draw, (100, 1000, 5000, 100_000))
        opener, closer = choice(draw, (("[", "]"), ('{"a":', "}")))
        return (opener * depth + "1" + closer * (depth if chance(draw, 50) else 0)).encode()
    if how == "junk after":
        return text.encode() + choice(draw, (b"x", b" {}", b"\x00", b"\xff"))
    if how == "bom":
        return b"\xef\xbb\xbf" + text.encode()
    return text.encode()


# ---- binary payloads ----------------------------------------------------------------------------
def volume_bytes(draw: Draw, voxels: int | None) -> bytes:
    """A volume body for ``voxels`` voxels of 1, 2, 4 or 8 bytes, sometimes a few bytes off."""
    if voxels is None or voxels > 1 << 21:
        voxels = choice(draw, (1, 64, 32**3))
    n = voxels * choice(draw, (1, 2, 4, 8))
    n += weighted(draw, ((6, 0), (1, -1), (1, 1), (1, -n // 2), (1, n)))
    return bytes(max(n, 0)) if chance(draw, 50) else draw.raw_bytes(max(n, 0), max(n, 0))


def sparsevol_bytes(draw: Draw) -> bytes:
    """DVID's legacy RLE: 8-byte header, voxel and span counts, spans (x, y, z, length) as int32."""
    spans = draw.integer(0, 4)
    declared = weighted(draw, ((5, spans), (1, spans + 1), (1, 2**32 - 1)))
    header = bytes([choice(draw, (0, 1)), choice(draw, (3, 2, 4)), 0, 0])
    body = header + struct.pack("<II", draw.integer(0, 2**32 - 1), declared)
    for _ in range(spans):
        fields = [draw.integer(-70, 200) for _ in range(3)]
        fields.append(weighted(draw, ((5, draw.integer(1, 64)), (1, 0), (1, -5), (1, 2**31 - 1))))
        body += struct.pack("<iiii", *fields)
    return body[: len(body) - draw.integer(0, 3)] if chance(draw, 15) else body


#: u32/i32 values that break length and coordinate fields.
EDGE_WORDS = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 0x10000)


def mutated(draw: Draw, data: bytes) -> bytes:
    """``data`` with a few mutations: bytes flipped, a 32-bit word set to an edge value, cut short,
    a slice repeated or dropped, junk appended."""
    out = bytearray(data)
    for _ in range(draw.integer(1, 3)):
        how = choice(draw, ("flip", "word", "cut", "repeat", "drop", "append"))
        at = draw.integer(0, max(0, len(out) - 1))
        if how == "flip" and out:
            out[at] ^= 1 << draw.integer(0, 7)
        elif how == "word" and len(out) >= 4:
            at = min(at, len(out) - 4)
            out[at : at + 4] = struct.pack(choice(draw, ("<I", ">I")), choice(draw, EDGE_WORDS))
        elif how == "cut":
            del out[at:]
        elif how == "repeat":
            out[at:at] = out[at : at + draw.integer(1, 64)]
        elif how == "drop":
            del out[at : at + draw.integer(1, 64)]
        else:
            out += draw.raw_bytes(1, 32)
    return bytes(out)


def binary_body(draw: Draw, voxels: int | None, samples: Mapping[str, bytes]) -> bytes:
    """Random bytes, a volume, a sparsevol, a real payload (mutated, mostly), or nothing."""
    sample = 3 if samples else 0
    how = weighted(draw, ((3, "random"), (3, "volume"), (2, "sparsevol"), (sample, "sample"), (1, "empty")))
    if how == "sample":
        data = samples[choice(draw, sorted(samples))]
        return mutated(draw, data) if chance(draw, 80) else data
    if how == "random":
        return draw.raw_bytes(0, weighted(draw, ((5, 64), (2, 4096), (1, 300_000))))
    if how == "volume":
        return volume_bytes(draw, voxels)
    if how == "sparsevol":
        return sparsevol_bytes(draw)
    return b""


# ---- encodings ----------------------------------------------------------------------------------
@functools.cache
def gzip_bomb(inflated: int) -> bytes:
    """A small gzip member that inflates to ``inflated`` zero bytes."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    parts = [comp.compress(zeros) for _ in range(inflated >> 20)]
    parts.append(comp.flush())
    return b"".join(parts)


def lying_gzip(draw: Draw, data: bytes) -> bytes:
    """A gzip member that is truncated, has a wrong size or CRC trailer, junk after it, or is a bomb."""
    packed = gzip.compress(data, compresslevel=1)
    how = choice(draw, ("truncated", "isize", "crc", "junk", "two members", "bomb", "header only"))
    if how == "truncated":
        return packed[: draw.integer(0, len(packed) - 1)]
    if how == "isize":
        return packed[:-4] + struct.pack("<I", (len(data) + draw.integer(1, 2**31)) % 2**32)
    if how == "crc":
        return packed[:-8] + struct.pack("<I", draw.integer(0, 2**32 - 1)) + packed[-4:]
    if how == "junk":
        return packed + draw.raw_bytes(1, 16)
    if how == "two members":
        return packed + gzip.compress(data[: len(data) // 2])
    if how == "bomb":
        return gzip_bomb(choice(draw, (8 << 20, 128 << 20)))
    return packed[:10]


def lz4_block(draw: Draw, data: bytes) -> bytes:
    """A bare lz4 block of ``data``; or one that lies: a size prefix, cut short, of other data."""
    how = weighted(draw, ((4, "plain"), (1, "size prefix"), (1, "truncated"), (1, "random"), (1, "other")))
    if how == "size prefix":
        return lz4.block.compress(data, store_size=True)
    if how == "truncated":
        packed = lz4.block.compress(data, store_size=False)
        return packed[: draw.integer(0, max(0, len(packed) - 1))]
    if how == "random":
        return draw.raw_bytes(0, 64)
    if how == "other":
        return lz4.block.compress(data + bytes(draw.integer(1, 5000)), store_size=False)
    return lz4.block.compress(data, store_size=False)


def encode(draw: Draw, data: bytes) -> Payload:
    """``data`` as sent: as is, or under a Content-Encoding, or a ``?compression=`` wire format."""
    how = weighted(
        draw,
        (
            (30, "identity"), (3, "gzip"), (2, "gzip lies"), (1, "deflate"), (1, "raw deflate"),
            (2, "other encoding"), (3, "query gzip"), (3, "query lz4"), (1, "both gzip"),
        ),
    )  # fmt: skip
    ce = b"Content-Encoding"
    if how == "identity":
        return Payload(data, ((ce, b"identity"),) if chance(draw, 5) else ())
    if how == "gzip":
        return Payload(
            gzip.compress(data, compresslevel=1), ((ce, choice(draw, (b"gzip", b"x-gzip", b"GZIP"))),)
        )
    if how == "gzip lies":
        return Payload(lying_gzip(draw, data), ((ce, b"gzip"),))
    if how == "deflate":
        return Payload(zlib.compress(data, 1), ((ce, b"deflate"),))
    if how == "raw deflate":
        comp = zlib.compressobj(1, zlib.DEFLATED, -15)
        return Payload(comp.compress(data) + comp.flush(), ((ce, b"deflate"),))
    if how == "other encoding":
        value = choice(
            draw, (b"br", b"zstd", b"compress", b"gzip, gzip", b"gzip, identity", b"", b"*", b"lz4")
        )
        return Payload(data, ((ce, value),))
    if how == "query gzip":
        packed = lying_gzip(draw, data) if chance(draw, 40) else gzip.compress(data, compresslevel=1)
        return Payload(packed, query=((b"compression", b"gzip"),))
    if how == "query lz4":
        return Payload(lz4_block(draw, data), query=((b"compression", b"lz4"),))
    inner = gzip.compress(data, compresslevel=1)
    return Payload(gzip.compress(inner, compresslevel=1), ((ce, b"gzip"),), ((b"compression", b"gzip"),))
