"""JSON in and out, the way DVID's Go server writes it (compact; <, >, & escaped)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from dvid.errors import BadRequest

_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes with Go's HTML-safe escaping, so outputs match DVID byte for byte."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).translate(_GO_ESCAPES).encode()


class _NotANumber(ValueError):
    """``NaN``, ``Infinity`` or a number too large for a double: not JSON (Go's decoder refuses them)."""


def _refuse_constant(name: str) -> Any:
    raise _NotANumber(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NotANumber(text)
    return value


def loads(body: bytes | str, *, what: str = "request body") -> Any:
    """Parse JSON (strictly: no ``NaN``/``Infinity``, no number beyond a double's range) or raise
    BadRequest naming what was malformed."""
    if isinstance(body, bytes | bytearray | memoryview):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(f"Malformed JSON {what}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if not body.strip():
        raise BadRequest(f"Malformed JSON {what}: unexpected end of JSON input (empty body)")
    try:
        obj = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"Malformed JSON {what}: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise BadRequest(f"Malformed JSON {what}: nested too deeply") from None
    except _NotANumber as exc:
        raise BadRequest(f"Malformed JSON {what}: {str(exc)[:40]} is not a finite number") from None
    except ValueError:  # int()'s limit
        raise BadRequest(f"Malformed JSON {what}: a number of more than 4300 digits") from None
    check_unicode(body, obj, f"JSON {what}")
    return obj


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def check_unicode(body: str, obj: Any, what: str) -> None:
    """400 if the JSON ``obj`` parsed from ``body`` holds a string with a lone UTF-16 surrogate
    (``"\\ud800"`` decodes in Python but can be neither stored as UTF-8 nor echoed back). Only walks
    ``obj`` when ``body`` has a surrogate escape at all."""
    if not _SURROGATE_ESCAPE.search(body):
        return
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, str):
            strings: Any = (o,)
        elif isinstance(o, dict):
            strings = o.keys()
            stack.extend(o.values())
        elif isinstance(o, list):
            stack.extend(o)
            continue
        else:
            continue
        for text in strings:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise BadRequest(
                    f"{what} holds a string with a lone UTF-16 surrogate escape, not valid Unicode:"
                    f" {ascii(text)[:80]}"
                ) from None


def loads_object(
    body: bytes | str, *, what: str = "request body", allow_empty: bool = False
) -> dict[str, Any]:
    """Parse a JSON object (``{}`` for an empty body when ``allow_empty``)."""
    if allow_empty and not (body.strip() if isinstance(body, str) else bytes(body).strip()):
        return {}
    obj = loads(body, what=what)
    if not isinstance(obj, dict):
        raise BadRequest(f"Malformed JSON {what}: expected an object, got {type(obj).__name__}")
    return obj
