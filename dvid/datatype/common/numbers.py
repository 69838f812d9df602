"""Decimal integers in request paths, queries and settings: strict, and safe from ``int()``'s limit.

``int()`` is lenient (spaces, underscores, non-ASCII digits) and raises ValueError for a string of
more than 4300 digits, and for some characters ``str.isdigit`` accepts (``"²"``); a parser that
checked the characters first and called ``int()`` after let that ValueError out as a 500.
:func:`parse_decimal` accepts what DVID's Go parsers accept, ASCII digits after an optional sign,
and never converts more digits than a 64-bit integer has.
"""

from __future__ import annotations

import re
from typing import Any

from dvid.errors import BadRequest

_DECIMAL = re.compile(r"[+-]?[0-9]+")
#: Every 64-bit integer has at most this many significant digits.
MAX_DIGITS = 20
#: What a longer number parses to (with its sign): beyond every 64-bit range.
OUT_OF_RANGE = 10**MAX_DIGITS


def parse_decimal(text: str, *, signed: bool = True) -> int | None:
    """``text`` as a decimal integer, or None if it is not one (``signed=False``: no sign allowed).

    A number of more than :data:`MAX_DIGITS` significant digits comes back as ``±OUT_OF_RANGE``,
    which every caller's range check refuses.
    """
    if not _DECIMAL.fullmatch(text) or (not signed and not text[0].isdigit()):
        return None
    if len(text.lstrip("+-").lstrip("0")) > MAX_DIGITS:
        return -OUT_OF_RANGE if text[0] == "-" else OUT_OF_RANGE
    return int(text)


MAX_LABEL = 2**64 - 1


def parse_label(text: str, *, what: str = "label", allow_zero: bool = False) -> int:
    """A 64-bit label from a path segment or query value: a decimal unsigned integer, not 0 unless
    ``allow_zero`` (400 otherwise)."""
    label = parse_decimal(text.strip(), signed=False) if text.strip() else None
    if label is None or label > MAX_LABEL:
        raise BadRequest(f"{what} must be a decimal unsigned 64-bit integer, got {text!r}")
    if label == 0 and not allow_zero:
        raise BadRequest(f"{what} 0 is background and cannot be used here")
    return label


def label_list(
    body: Any, what: str = "labels", *, allow_zero: bool = True, limit: int | None = None
) -> list[int]:
    """A JSON list of 64-bit labels (400 if it is anything else)."""
    if not isinstance(body, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_LABEL for v in body
    ):
        raise BadRequest(f"{what} must be a JSON list of unsigned 64-bit integers")
    if not allow_zero and 0 in body:
        raise BadRequest(f"{what} cannot contain background label 0")
    if limit is not None and len(body) > limit:
        raise BadRequest(f"{what}: at most {limit} labels per request, got {len(body)}")
    return body
