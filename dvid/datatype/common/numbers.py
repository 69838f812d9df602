"""Decimal integers in request paths, queries and settings: strict, and safe from ``int()``'s limit.

``int()`` is lenient (spaces, underscores, non-ASCII digits) and raises ValueError for a string of
more than 4300 digits, and for some characters ``str.isdigit`` accepts (``"²"``); a parser that
checked the characters first and called ``int()`` after let that ValueError out as a 500.
:func:`parse_decimal` accepts what DVID's Go parsers accept, ASCII digits after an optional sign,
and never converts more digits than a 64-bit integer has.
"""

from __future__ import annotations

import re

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
