"""Path segments and query values, valid and mangled, by the kind of thing they name.

A *kind* (``uuid``, ``label``, ``size``, ``key`` ...) is what a path or query parameter holds.
:func:`kind_of` reads it off a declared :class:`~dvid.datatype.common.route.Param` (its name, type,
enum or pattern); :func:`valid` makes a value of a kind that the server should accept, and
:func:`mangled` one it should refuse (huge, negative, non-numeric, wrong arity, bad percent
escapes, non-UTF-8, very long, ``..`` ...). Values are raw bytes as they go on the request line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from bench.fuzzing.draw import Draw, chance, choice, weighted
from dvid.datatype.common.request import FALSE_WORDS, TRUE_WORDS
from dvid.datatype.common.route import Param

BOOL_WORDS = tuple(sorted(TRUE_WORDS | FALSE_WORDS))

#: Numbers that break parsers: 64-bit edges and beyond, negative, non-numeric, float, unicode digits.
BAD_NUMBERS = (
    "-1", "-2147483649", "2147483648", "4294967296", str(2**63), str(2**63 - 1), str(2**64 - 1),
    str(2**64), str(2**64 + 1), "-" + str(2**63 + 1), "9" * 40, "1.5", "1e9", "-0", "+1", "0x10",
    "nan", "inf", "abc", "", " 1", "1 ", "1_000", "\u0661\u0662", "\uff11", "\u00b2", "0" * 30 + "1",
    "9" * 4400, "-" + "1" * 5000,
)  # fmt: skip
SMALL = (0, 1, 2, 3, 4, 5, 8, 10, 16, 31, 32, 33, 63, 64, 65, 100, 127, 128)
DIMS = ("0_1_2", "0_1", "0_2", "1_2", "xy", "xz", "yz", "xyz", "vol")
BAD_DIMS = ("0_1_2_3", "2_1", "0", "0_0", "3_4", "x", "zz", "0,1,2", "0_1_", "_", "XY", "0__1")
FORMATS = ("", "png", "jpg", "jpg:50", "jpeg", "nd", "raw", "tiff", "gif", "jpg:-1", "jpg:101", "png:9")
ELEMENT_KINDS = ("PreSyn", "PostSyn", "Gap", "Note", "AllSyn", "Unknown", "presyn", "")
COMPRESSIONS = ("", "lz4", "gzip", "jpeg", "uncompressed", "zstd", "snappy", "LZ4", "gzip ", "none")
WORDS = ("x", "master", "info", "help", "null", "true", "0", "-", "a b", "é", "日本", "🦀", "*", "~1")
#: Percent-escapes and bytes that have broken URL handling somewhere.
ODD_SEGMENTS = (
    b"", b".", b"..", b"%2e%2e", b"%2F", b"a%2Fb", b"%00", b"a%00b", b"%ff", b"%fe%ff", b"%zz", b"%",
    b"%f", b"%C0%AF", b"%e2%82", b"%ED%A0%80", b"\xff", b"\xc3\x28", b"%0d%0a", b"%20", b"+", b";x=1",
    b"a\tb", b"%u0041", b"%25", b"%%", b"\xe2\x80\xae",
)  # fmt: skip

#: Query parameter names any dvid handler reads, with the kind of value each expects.
QUERY_KINDS = {
    "u": "word", "app": "word", "throttle": "bool", "replace": "bool", "imsure": "bool",
    "compression": "compression", "scale": "int", "hash": "hash", "byte_start": "int",
    "byte_end": "int", "json": "bool", "tar": "bool", "jsontar": "bool", "check": "bool",
    "minx": "int", "maxx": "int", "miny": "int", "maxy": "int", "minz": "int", "maxz": "int",
    "exact": "bool", "splitlabel": "label", "levels": "int", "batchsize": "int", "optimized": "bool",
    "blocks": "blocklist", "prefetch": "bool", "keysOnly": "bool", "byCoord": "bool",
    "relationships": "relationships", "kafkalog": "bool", "inmemory": "bool", "offset": "int",
    "n": "int", "x": "int", "y": "int", "z": "int", "roi": "roiref", "admintoken": "word",
    "interpolation": "bool", "supervoxels": "bool", "format": "format", "mutid": "int", "bounds": "bool",
}  # fmt: skip


@dataclass(frozen=True)
class Names:
    """The names a populated server answers to, for valid values."""

    uuids: tuple[str, ...]  # full UUIDs of existing versions, the fuzzed one first
    instances: tuple[str, ...]
    types: tuple[str, ...]
    keys: tuple[str, ...]
    labels: tuple[int, ...]
    branches: tuple[str, ...] = ("master",)
    #: Voxel coordinates where something is (annotation elements), as (x, y, z).
    points: tuple[tuple[int, int, int], ...] = ()


def kind_of(param: Param) -> str:
    """The kind of value a declared parameter holds."""
    name = param.name.lower()
    by_name = {
        "uuid": "uuid", "dataname": "dataname", "name": "dataname", "typename": "typename",
        "branch": "branch", "dims": "dims", "size": "size", "offset": "offset", "format": "format",
        "index": "elementkind", "kind": "elementkind", "roi": "roiref", "tag": "tag",
        "n": "int", "k": "int", "t": "int", "levels": "int",
    }  # fmt: skip
    if param.enum:
        return "enum"
    if name in by_name:
        return by_name[name]
    if "key" in name:
        return "key"
    if "label" in name:
        return "label"
    if name in ("block", "point", "coord", "from", "to", "start", "end") or "coord" in name:
        return "coord"
    if param.type == "boolean":
        return "bool"
    if param.type == "integer":
        return "int"
    if param.type == "number":
        return "float"
    return QUERY_KINDS.get(param.name, "pattern" if param.pattern else "word")


#: Valid coordinates far from the data: a request there must not scan the space in between.
FAR = (2**31 - 1, -(2**31) + 1, 2**31 - 64, -(2**31) + 64, 2**30, 10**9, 1 << 20, -(1 << 20))


def _number(draw: Draw, lo: int = -70, hi: int = 200) -> int:
    return weighted(
        draw,
        (
            (12, choice(draw, SMALL)),
            (6, draw.integer(lo, hi)),
            (2, -choice(draw, SMALL)),
            (1, choice(draw, FAR)),
        ),
    )


def _geometry(draw: Draw, count: int, *, positive: bool) -> str:
    """Sizes (``positive``) or offsets: small numbers, or multiples of 32 (block-aligned)."""
    if chance(draw, 35):
        steps = range(1, 4) if positive else range(-2, 4)
        return "_".join(str(32 * choice(draw, steps)) for _ in range(count))
    parts = []
    for _ in range(count):
        n = _number(draw)
        parts.append(str(max(n, 1) if positive else n))
    return "_".join(parts)


def _bad_geometry(draw: Draw, count: int) -> str:
    """A geometry string with wrong arity, separators or numbers."""
    arity = weighted(draw, ((3, count), (1, count - 1), (1, count + 1), (1, 0), (1, 7)))
    parts = [
        choice(draw, BAD_NUMBERS) if chance(draw, 40) else str(choice(draw, SMALL)) for _ in range(arity)
    ]
    return choice(draw, ("_", ",", "x", "__", " ", "_-")).join(parts)


def valid(draw: Draw, kind: str, names: Names, param: Param | None = None) -> str:
    """A value of ``kind`` that the server should accept (as text, before percent-encoding)."""
    if param is not None and param.enum:
        return choice(draw, param.enum)
    match kind:
        case "uuid":
            return weighted(
                draw, ((8, names.uuids[0]), (2, choice(draw, names.uuids)), (2, _uuid_ref(draw, names)))
            )
        case "dataname":
            return choice(draw, names.instances)
        case "typename":
            return choice(draw, names.types)
        case "branch":
            return choice(draw, names.branches)
        case "key":
            return choice(draw, names.keys)
        case "label":
            return str(weighted(draw, ((5, choice(draw, names.labels)), (1, draw.integer(0, 2**64 - 1)))))
        case "dims":
            return choice(draw, DIMS)
        case "size":
            return _geometry(draw, weighted(draw, ((4, 3), (1, 2))), positive=True)
        case "coord" if names.points and chance(draw, 40):
            return "_".join(map(str, choice(draw, names.points)))
        case "offset" | "coord":
            return _geometry(draw, 3, positive=False)
        case "bool":
            return choice(draw, BOOL_WORDS)
        case "int":
            lo = param.minimum if param is not None and param.minimum is not None else 0
            hi = param.maximum if param is not None and param.maximum is not None else 100
            return str(draw.integer(lo, min(hi, lo + 1000)))
        case "float":
            return choice(draw, ("0", "1.5", "4", "-2.25", "8e0"))
        case "format":
            return choice(draw, FORMATS[:7])
        case "compression":
            return choice(draw, COMPRESSIONS[:5])
        case "elementkind":
            return choice(draw, ELEMENT_KINDS[:5])
        case "tag":
            return choice(draw, ("t0", "t1", "x"))
        case "relationships":
            return choice(draw, ("true", "false", "verbose"))
        case "hash":
            return choice(draw, ("d41d8cd98f00b204e9800998ecf8427e", "0" * 32))
        case "blocklist":
            return ",".join(str(draw.integer(-2, 3)) for _ in range(3 * draw.integer(1, 3)))
        case "roiref":
            roi = next((n for n in names.instances if "roi" in n or "region" in n), names.instances[0])
            return weighted(draw, ((3, roi), (1, f"{roi},{names.uuids[0]}")))
        case "pattern" if param is not None and param.pattern:
            return _matching(draw, param.pattern, names)
    return choice(draw, WORDS)


def _uuid_ref(draw: Draw, names: Names) -> str:
    """A UUID written another way: a prefix, a branch reference."""
    uuid = choice(draw, names.uuids)
    branch = choice(draw, names.branches)
    return choice(draw, (uuid[: draw.integer(4, 31)], f":{branch}", f"{uuid}:{branch}", f":{branch}~1"))


_SAMPLE_KINDS = ("label", "size", "offset", "dims", "bool", "format", "key", "dataname", "word", "int")


def _matching(draw: Draw, pattern: str, names: Names) -> str:
    """A value matching a declared pattern: tried from every kind's values, else a word."""
    regex = re.compile(pattern)
    for _ in range(12):
        candidate = valid(draw, choice(draw, _SAMPLE_KINDS), names)
        if regex.fullmatch(candidate):
            return candidate
    return choice(draw, WORDS)


def mangled(draw: Draw, kind: str, names: Names) -> bytes:
    """A value of ``kind`` gone wrong, as raw request-line bytes."""
    how = weighted(draw, ((5, "typed"), (3, "odd"), (2, "other"), (1, "long"), (2, "splice")))
    if how == "odd":
        return choice(draw, ODD_SEGMENTS)
    if how == "long":
        return (choice(draw, ("9", "a", "%41", "_1", "é")) * draw.integer(300, 9000)).encode()
    if how == "other":
        return encode(valid(draw, choice(draw, _SAMPLE_KINDS), names))
    if how == "splice":
        base = encode(valid(draw, kind, names))
        at = draw.integer(0, len(base))
        return base[:at] + choice(draw, ODD_SEGMENTS) + base[at:]
    match kind:
        case "size":
            return encode(_bad_geometry(draw, 3))
        case "offset" | "coord":
            return encode(_bad_geometry(draw, 3))
        case "dims":
            return encode(choice(draw, BAD_DIMS))
        case "label" | "int" | "float":
            return encode(choice(draw, BAD_NUMBERS))
        case "uuid":
            return encode(choice(draw, _BAD_UUIDS) if chance(draw, 70) else _uuid_ref(draw, names) + "~x")
        case "bool":
            return encode(choice(draw, ("maybe", "2", "-1", "yes", "TRUE ", "t", "nil")))
        case "compression":
            return encode(choice(draw, COMPRESSIONS[5:]))
        case "format":
            return encode(choice(draw, FORMATS[7:]))
        case "blocklist":
            return encode(choice(draw, ("1,2", "a,b,c", "1,,2", ",", "1,2,3,4", str(2**64) + ",0,0")))
    return encode(choice(draw, WORDS) + choice(draw, ("", "/", "%", "..")))


_BAD_UUIDS = (
    "0" * 32, "f" * 32, "zz", "a", "0", ":", "::", ":nobranch", "master~3", ":master~3", ":master~-1",
    ":master~999999999999999999999", "~", "1~1", "g" * 32, "0" * 33, "%3A", ":master~0x1", ":~1",
)  # fmt: skip


def encode(text: str) -> bytes:
    """Percent-encode a valid value for a path segment or query value."""
    return quote(text, safe="").encode("ascii")


def segment(draw: Draw, kind: str, names: Names, param: Param | None = None, *, mangle: int = 15) -> bytes:
    """A path segment: valid, or mangled ``mangle`` percent of the time."""
    if chance(draw, mangle):
        return mangled(draw, kind, names)
    return encode(valid(draw, kind, names, param))


#: Path shapes tried after an endpoint that declares no ``args``.
GENERIC_SHAPES: tuple[tuple[str, ...], ...] = (
    (), ("label",), ("coord",), ("key",), ("key", "key"), ("dims", "size", "offset"),
    ("dims", "size", "offset", "format"), ("size", "offset"), ("label", "size", "offset"),
    ("coord", "int"), ("coord", "coord"), ("int", "elementkind"), ("label", "elementkind"),
    ("word",), ("int",), ("dataname",), ("roiref",),
)  # fmt: skip
