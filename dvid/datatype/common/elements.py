"""Point annotations ("elements") as DVID's annotation datatype reads and writes them in JSON.

An element is a dict in DVID's field order ``{"Pos": [x, y, z], "Kind": str, "Tags": [str] | None,
"Prop": {str: str} | None, "Rels": [{"Rel": str, "To": [x, y, z]}] | None}``, ``None`` standing for
Go's ``null`` (an absent slice or map). ``ElementNR`` (no relationships) is the same without
``Rels``: what label and tag index keys hold. Prop keys are kept sorted (Go marshals maps sorted), so
``json.dumps`` of these dicts gives DVID's bytes (after Go's HTML-safe escapes, :func:`dumps`).
"""

from __future__ import annotations

import json
from typing import Any

from dvid.errors import BadRequest

KINDS = ("Unknown", "PostSyn", "PreSyn", "Gap", "Note")
KIND_SET = frozenset(KINDS)
RELS = frozenset({"UnknownRelationship", "PostSynTo", "PreSynTo", "ConvergentTo", "GroupedWith"})
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1

_FIELDS = ("Pos", "Kind", "Tags", "Prop", "Rels")
_NR_FIELDS = _FIELDS[:4]
_REL_FIELDS = ("Rel", "To")
_FIELD_OF = {f.lower(): f for f in _FIELDS}
_REL_FIELD_OF = {"rel": "Rel", "to": "To"}

Pos = tuple[int, int, int]
Element = dict[str, Any]

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_GO_UNSAFE = ("<", ">", "&", "\u2028", "\u2029")


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes, with Go's escapes of ``<``, ``>``, ``&``, U+2028 and U+2029."""
    text = _ENCODER.encode(obj)
    for ch in _GO_UNSAFE:
        if ch in text:
            text = (
                text.replace("<", "\\u003c")
                .replace(">", "\\u003e")
                .replace("&", "\\u0026")
                .replace("\u2028", "\\u2028")
                .replace("\u2029", "\\u2029")
            )
            break
    return text.encode()


def dumps_items(items: list[Any]) -> bytes:
    """The JSON array of ``items`` without its brackets (b"" if empty): for splicing arrays."""
    return dumps(items)[1:-1] if items else b""


def loads_list(value: bytes | None, what: str) -> list[Any]:
    """A stored JSON array (absent or empty value: ``[]``; ``null``: ``[]``)."""
    if not value:
        return []
    try:
        obj = json.loads(value)
    except ValueError:
        raise BadRequest(f"stored {what} is not valid JSON") from None
    if obj is None:
        return []
    if not isinstance(obj, list):
        raise BadRequest(f"stored {what} is not a JSON array")
    return obj


def _fail(where: str, msg: str) -> BadRequest:
    return BadRequest(f"{where}: {msg}")


def parse_point(value: Any, where: str) -> list[int]:
    """An ``[x, y, z]`` of integral JSON numbers within int32 (400 otherwise)."""
    if not isinstance(value, list) or len(value) != 3:
        raise _fail(where, f"a point must be a JSON array [x, y, z] of 3 integers, got {json.dumps(value)}")
    for c in value:
        if type(c) is not int or not _I32_MIN <= c <= _I32_MAX:
            raise _fail(where, f"point coordinates must be 32-bit integers, got {json.dumps(value)}")
    return value


def _fields(raw: Any, where: str, names: dict[str, str]) -> dict[str, Any]:
    """The recognized fields of a JSON object, matched case-insensitively as Go does."""
    if not isinstance(raw, dict):
        raise _fail(where, f"expected a JSON object, got {json.dumps(raw)[:80]}")
    out: dict[str, Any] = {}
    for k, v in raw.items():
        canon = names.get(k.lower())
        if canon is not None:
            out[canon] = v
    return out


def _fast_element(raw: Any, with_rels: bool) -> Element | None:
    """``raw`` itself if it is an element already in canonical form (exactly DVID's fields in DVID's
    order, all valid), Prop re-sorted if needed; None if the general path must look at it (which
    also gives the errors). The common case of a request, without a per-element copy."""
    if type(raw) is not dict or tuple(raw) != (_FIELDS if with_rels else _NR_FIELDS):
        return None
    pos = raw["Pos"]
    if type(pos) is not list or len(pos) != 3:
        return None
    for c in pos:
        if type(c) is not int or c < _I32_MIN or c > _I32_MAX:
            return None
    kind = raw["Kind"]
    if type(kind) is not str or kind not in KIND_SET:
        return None
    tags = raw["Tags"]
    if tags is not None:
        if type(tags) is not list:
            return None
        for t in tags:
            if type(t) is not str or not t or "\x00" in t:
                return None
    prop = raw["Prop"]
    if prop is not None:
        if type(prop) is not dict:
            return None
        for v in prop.values():
            if type(v) is not str:
                return None
        if len(prop) > 1:
            ks = list(prop)
            if ks != sorted(ks):
                raw["Prop"] = dict(sorted(prop.items()))
    if not with_rels:
        return raw
    rels = raw["Rels"]
    if rels is not None:
        if type(rels) is not list:
            return None
        for r in rels:
            if type(r) is not dict or tuple(r) != _REL_FIELDS:
                return None
            rel, to = r["Rel"], r["To"]
            if type(rel) is not str or rel not in RELS or type(to) is not list or len(to) != 3:
                return None
            for c in to:
                if type(c) is not int or c < _I32_MIN or c > _I32_MAX:
                    return None
    return raw


def parse_element(raw: Any, where: str, *, with_rels: bool = True) -> Element:
    """Validate one element of a request (or of a stored list) into canonical form.

    Pos is required (3 int32 coordinates); Kind defaults to "Unknown"; Tags, Prop and Rels may be
    absent or null (kept as None). Unknown fields are dropped. An element already in canonical form
    is returned as is (Prop re-sorted in place if needed), others as a new dict.
    """
    fast = _fast_element(raw, with_rels)
    if fast is not None:
        return fast
    f = _fields(raw, where, _FIELD_OF)
    if "Pos" not in f:
        raise _fail(where, "element has no Pos")
    pos = parse_point(f["Pos"], where + " Pos")
    kind = f.get("Kind", "Unknown")
    if kind is None:
        kind = "Unknown"
    if not isinstance(kind, str) or kind not in KIND_SET:
        raise _fail(where, f"unknown element Kind {json.dumps(kind)} (use {', '.join(KINDS)})")
    tags = f.get("Tags")
    if tags is not None:
        if not isinstance(tags, list):
            raise _fail(where, "Tags must be a JSON array of strings")
        for t in tags:
            if not isinstance(t, str) or not t or "\x00" in t:
                raise _fail(where, f"tags must be non-empty strings without NUL, got {json.dumps(t)}")
    prop = f.get("Prop")
    if prop is not None:
        if not isinstance(prop, dict):
            raise _fail(where, "Prop must be a JSON object of string values")
        for k, v in prop.items():
            if not isinstance(v, str):
                raise _fail(where, f"Prop values must be strings: {json.dumps(k)} is {json.dumps(v)}")
        if len(prop) > 1:
            prop = dict(sorted(prop.items()))
    el: Element = {"Pos": pos, "Kind": kind, "Tags": tags, "Prop": prop}
    if not with_rels:
        return el
    rels = f.get("Rels")
    if rels is not None:
        if not isinstance(rels, list):
            raise _fail(where, "Rels must be a JSON array of relationships")
        out = []
        for j, r in enumerate(rels):
            rf = _fields(r, f"{where} relationship {j}", _REL_FIELD_OF)
            rel = rf.get("Rel", "UnknownRelationship")
            if not isinstance(rel, str) or rel not in RELS:
                raise _fail(where, f"unknown relationship {json.dumps(rel)} (use {', '.join(sorted(RELS))})")
            if "To" not in rf:
                raise _fail(where, f"relationship {j} has no To point")
            out.append({"Rel": rel, "To": parse_point(rf["To"], f"{where} relationship {j} To")})
        rels = out
    el["Rels"] = rels
    return el


def parse_elements(body: Any, where: str = "element") -> list[Element]:
    if not isinstance(body, list):
        raise BadRequest("expected a JSON array of elements")
    out = []
    for i, raw in enumerate(body):
        e = _fast_element(raw, True)
        out.append(e if e is not None else parse_element(raw, f"{where} {i}"))
    return out


def parse_stored(items: list[Any], where: str, *, with_rels: bool = True) -> list[Element]:
    """:func:`parse_element` over a stored list (``where`` names each by its index)."""
    out = []
    for i, raw in enumerate(items):
        e = _fast_element(raw, with_rels)
        out.append(e if e is not None else parse_element(raw, f"{where} {i}", with_rels=with_rels))
    return out


def filled(el: Element) -> Element:
    """A deep copy with null Tags/Prop/Rels as ``[]``/``{}``/``[]`` (what DVID's element copy gives)."""
    out: Element = {
        "Pos": list(el["Pos"]),
        "Kind": el["Kind"],
        "Tags": list(el["Tags"] or ()),
        "Prop": dict(el["Prop"] or {}),
    }
    if "Rels" in el:
        out["Rels"] = [{"Rel": r["Rel"], "To": list(r["To"])} for r in el["Rels"] or ()]
    return out


def _filled_view(e: Element) -> Element:
    """``filled(e)`` for encoding only: ``e`` itself when nothing is null (no copy)."""
    if e["Tags"] is not None and e["Prop"] is not None and e.get("Rels", ()) is not None:
        return e
    return filled(e)


_ELEMENT_START = b',{"Pos":['
_RELS_FIELD = b',"Rels":['


def dumps_filled(elements: list[Element]) -> list[tuple[bytes, bytes]]:
    """For each element (canonical, with Rels), the JSON of its :func:`filled` form and of that
    form's ElementNR (the same bytes up to its Rels field), as :func:`dumps` gives them.

    One encoder call for all: the array's text is cut at each ``,{"Pos":[``, which only starts an
    element (inside a string a quote is escaped; Prop values are strings and Rels hold no Pos), and
    each element's ElementNR ends where its last field, ``,"Rels":[``, begins.
    """
    if not elements:
        return []
    views = [_filled_view(e) for e in elements]
    parts = dumps(views)[1:-1].split(_ELEMENT_START)
    if len(parts) == len(elements):
        fulls = [parts[0], *(b'{"Pos":[' + p for p in parts[1:])]
    else:  # cannot happen (see above); stay right if it does
        fulls = [dumps(v) for v in views]
    return [(full, full[: full.rindex(_RELS_FIELD)] + b"}") for full in fulls]


def no_rels(el: Element) -> Element:
    """The ElementNR of an element."""
    return {"Pos": el["Pos"], "Kind": el["Kind"], "Tags": el["Tags"], "Prop": el["Prop"]}


def pos_of(el: Element) -> Pos:
    p = el["Pos"]
    return (p[0], p[1], p[2])


def is_empty_list_value(value: bytes) -> bool:
    return value.strip() in (b"[]", b"null", b"")
