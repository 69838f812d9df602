"""Annotation values: parsing, type-strict equality, and JSON output as Go's ``json.Marshal`` writes
a map (spec §5.3).

Integers stay Python ints (64-bit ids exact, never floated). Output is compact with object keys
sorted; floats are printed as Go does: shortest round-trip digits, an exponent only when
``|f| < 1e-6`` or ``|f| >= 1e21`` (``1e-7``, ``1e+21``), integral floats without a fraction
(``3.0`` -> ``3``); ``<``, ``>``, ``&``, U+2028 and U+2029 escaped.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from dvid.datatype.common import jsonio
from dvid.errors import BadRequest

Record = dict[str, Any]

_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def go_float(value: float) -> str:
    """``value`` as Go's encoding/json prints a float64."""
    digits = Decimal(repr(value))  # the shortest digits that read back as ``value``
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        return format(digits, "e")  # 1e-7, 1.5e+21: Go's exponents carry no padding zero either
    text = format(digits, "f")
    return text[:-2] if text.endswith(".0") else text


def has_float(value: Any) -> bool:
    """Whether ``value`` holds a float anywhere (JSON values: exact types, no subclasses)."""
    kind = type(value)
    if kind is float:
        return True
    if kind is dict:
        items: Any = value.values()
    elif kind is list:
        items = value
    else:
        return False
    for item in items:
        item_kind = type(item)
        if item_kind is float or ((item_kind is dict or item_kind is list) and has_float(item)):
            return True
    return False


def _encode_slow(value: Any, out: list[str]) -> None:
    if isinstance(value, float):
        out.append(go_float(value))
    elif isinstance(value, dict):
        out.append("{")
        for i, key in enumerate(sorted(value)):
            if i:
                out.append(",")
            out.append(_ENCODER.encode(key))
            out.append(":")
            _encode_slow(value[key], out)
        out.append("}")
    elif isinstance(value, list):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode_slow(item, out)
        out.append("]")
    else:
        out.append(_ENCODER.encode(value))


def dumps(value: Any) -> bytes:
    """Compact JSON of ``value`` as Go's ``json.Marshal`` writes a map: keys sorted, Go floats."""
    if not has_float(value):
        text = _ENCODER.encode(value)
    else:
        parts: list[str] = []
        _encode_slow(value, parts)
        text = "".join(parts)
    if "<" in text or ">" in text or "&" in text or "\u2028" in text or "\u2029" in text:
        text = text.translate(_GO_ESCAPES)
    return text.encode()


def loads_record(body: bytes | str, what: str = "neuronjson data") -> Record:
    """A JSON object from a request body or the store (BadRequest if it is not one)."""
    obj = jsonio.loads(body, what=what)
    if not isinstance(obj, dict):
        raise BadRequest(f"{what} must be a JSON object, got {type(obj).__name__}")
    return obj


def same(a: Any, b: Any) -> bool:
    """Deep equality as DVID's typed values compare: an int never equals a float or a bool."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


META_SUFFIXES = ("_user", "_time")


def is_meta(field: str) -> bool:
    """``*_user`` and ``*_time`` fields: who set a field and when (hidden unless ``show`` asks)."""
    return field.endswith(META_SUFFIXES)
