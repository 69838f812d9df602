"""The ``query`` language (spec §5.5): parsing, and matching one record.

A query is a JSON object (every field condition must hold) or an array of them (any object may
match). A condition's value is an integer or a list of integers (any of them), a string or a list
of strings (any of them; ``"re/<regex>"`` is an unanchored regular-expression search), or
``"exists/0"`` / ``"exists/1"`` (the field is absent or null / present and not null). Anything else
(floats, booleans, objects, null, mixed lists) never matches.

On the record side, an integer or integral float or a list of integers gives integers, a string
or a list of strings gives strings; other values match no value condition. A condition holds when
any query value equals (or its regex finds) any record value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from dvid.datatype.common import jsonio
from dvid.datatype.neuronjson.values import Record
from dvid.errors import BadRequest

_NONE: tuple[()] = ()


def atoms(value: Any) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The integers and strings a record's field value offers to value conditions."""
    if isinstance(value, bool) or value is None:
        return _NONE, _NONE
    if isinstance(value, int):
        return (value,), _NONE
    if isinstance(value, str):
        return _NONE, (value,)
    if isinstance(value, float):
        return ((int(value),), _NONE) if value.is_integer() else (_NONE, _NONE)
    if isinstance(value, list) and value:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return tuple(value), _NONE
        if all(isinstance(v, str) for v in value):
            return _NONE, tuple(value)
    return _NONE, _NONE


@dataclass(frozen=True)
class Condition:
    """One field's condition. ``exists`` is None for a value condition."""

    field: str
    ints: frozenset[int] = frozenset()
    strings: frozenset[str] = frozenset()
    regexes: tuple[re.Pattern[str], ...] = ()
    exists: bool | None = None

    @property
    def never(self) -> bool:
        return self.exists is None and not (self.ints or self.strings or self.regexes)

    def matches_value(self, value: Any) -> bool:
        """Whether a record whose field holds ``value`` (None: absent or null) meets the condition."""
        if self.exists is not None:
            return (value is not None) == self.exists
        if value is None:
            return False
        ints, strings = atoms(value)
        if ints and any(i in self.ints for i in ints):
            return True
        if strings:
            if any(s in self.strings for s in strings):
                return True
            return any(rx.search(s) for rx in self.regexes for s in strings)
        return False

    def matches(self, record: Record) -> bool:
        return self.matches_value(record.get(self.field))


@dataclass(frozen=True)
class Query:
    """Alternatives (OR), each a conjunction (AND) of conditions."""

    alternatives: tuple[tuple[Condition, ...], ...]
    #: When every alternative asks only for body ids: those ids in the order given.
    body_ids: tuple[int, ...] | None = field(default=None)

    def matches(self, record: Record) -> bool:
        return any(all(c.matches(record) for c in conj) for conj in self.alternatives)


def _regex(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise BadRequest(f"query regular expression {text!r} does not compile: {exc}") from None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_condition(name: str, value: Any) -> Condition:
    """The condition a query object gives ``name``."""
    if _is_int(value):
        return Condition(name, ints=frozenset((value,)))
    if isinstance(value, str):
        if value.startswith("exists/"):
            return Condition(name, exists=value != "exists/0")
        if value.startswith("re/"):
            return Condition(name, regexes=(_regex(value[3:]),))
        return Condition(name, strings=frozenset((value,)))
    if isinstance(value, list) and value:
        if all(_is_int(v) for v in value):
            return Condition(name, ints=frozenset(value))
        if all(isinstance(v, str) for v in value):
            plain = frozenset(v for v in value if not v.startswith("re/"))
            regexes = tuple(_regex(v[3:]) for v in value if v.startswith("re/"))
            return Condition(name, strings=plain, regexes=regexes)
    return Condition(name)  # floats, booleans, objects, null, mixed lists: never match


def _body_ids(objects: list[dict[str, Any]]) -> tuple[int, ...] | None:
    ids: list[int] = []
    for obj in objects:
        if set(obj) != {"bodyid"}:
            return None
        value = obj["bodyid"]
        if _is_int(value):
            ids.append(value)
        elif isinstance(value, list) and value and all(_is_int(v) for v in value):
            ids.extend(value)
        else:
            return None
    return tuple(dict.fromkeys(ids))


def parse_query(body: bytes) -> Query:
    """A query from a request body (400 with DVID's messages if it is not one)."""
    try:
        parsed = jsonio.loads(body, what="query")
    except BadRequest:
        text = body.decode("utf-8", "replace")[:200]
        raise BadRequest(f"unable to parse JSON query: {text}") from None
    objects = parsed if isinstance(parsed, list) else [parsed]
    if not objects:
        raise BadRequest("no query provided")
    for obj in objects:
        if not isinstance(obj, dict):
            raise BadRequest(
                "unable to parse JSON query: expected an object or an array of objects,"
                f" got {type(obj).__name__}"
            )
    alternatives = tuple(tuple(parse_condition(k, v) for k, v in obj.items()) for obj in objects)
    return Query(alternatives, _body_ids(objects))
