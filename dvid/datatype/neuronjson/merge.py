"""The write rule of an annotation (spec §5.4, POST ``key``): checks of the body, then the merge with
the stored record that keeps ``<field>_user`` / ``<field>_time`` stamps current."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from dvid.datatype.neuronjson.values import Record, is_meta, same
from dvid.errors import BadRequest

#: Fields never stamped with a user and time.
UNSTAMPED = frozenset({"bodyid", "user"})


def now_rfc3339() -> str:
    """The server's local time as RFC 3339 with its offset, as DVID stamps ``*_time`` (``Z`` in UTC)."""
    text = datetime.now().astimezone().isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def check_body(body: Record, body_id: int) -> None:
    """The ``bodyid`` rules of a written annotation (400 with DVID's messages)."""
    if "bodyid" not in body:
        raise BadRequest("neuronjson data must have 'bodyid' field")
    value = body["bodyid"]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**64 - 1:
        raise BadRequest("neuronjson 'bodyid' field must be uint64")
    if value != body_id:
        raise BadRequest(f"neuronjson 'bodyid' field {value} must match key {body_id}")
    for meta in ("bodyid_user", "bodyid_time"):
        if meta in body:
            raise BadRequest(f"'{meta}' field not allowed")


@dataclass(frozen=True)
class WriteMode:
    """How a POST combines with the stored record: ``replace`` drops the fields the body lacks;
    ``conditional`` fields that already exist keep their value (ignored with ``replace``)."""

    user: str
    now: str
    replace: bool = False
    conditional: frozenset[str] = frozenset()


def parse_conditional(conditional: str | None, legacy: str | None) -> frozenset[str]:
    """``conditional=f1,f2`` (or the legacy ``conditionals``, used only when ``conditional`` is empty)."""
    text = conditional or legacy or ""
    return frozenset(f for f in (s.strip() for s in text.split(",")) if f)


def merge(orig: Record | None, body: Record, mode: WriteMode) -> Record:
    """The record stored after writing ``body`` over ``orig`` (None on a first write).

    * A ``null`` field deletes it; a deleted non-meta field ``f`` gets ``f_user``/``f_time``
      stamps unless the body gives them (``"f_user": null`` suppresses the user stamp).
    * A field is newly set when absent from ``orig`` or given a different value (type-strict);
      newly-set fields other than ``bodyid``, ``user`` and meta fields are stamped with the user
      and time, unless the body gives their ``f_user``/``f_time``.
    * Without ``replace`` every other stored field is kept, and ``conditional`` fields present in
      ``orig`` (even empty) keep their value and stamps. With ``replace`` only the body's fields
      remain; unchanged ones keep their stamps (or are stamped if they had none).
    """
    base = dict(orig or {})
    deleted = [f for f, v in body.items() if v is None]
    for f in deleted:
        base.pop(f, None)
    given = {f: v for f, v in body.items() if v is not None}
    protected: Collection[str] = (
        () if mode.replace else {f for f in mode.conditional if f in base and not is_meta(f)}
    )
    newly = [
        f
        for f, v in given.items()
        if f not in protected and (is_meta(f) or f not in base or not same(base[f], v))
    ]
    if mode.replace:
        result: Record = {}
        for f, v in given.items():
            result[f] = v
            if is_meta(f) or f in UNSTAMPED or f in newly:
                continue
            for meta, default in ((f + "_user", mode.user), (f + "_time", mode.now)):
                if meta not in body:
                    result[meta] = base.get(meta, default)
    else:
        result = base
        for f, v in given.items():
            if f in protected or (is_meta(f) and _stem(f) in protected):
                continue
            result[f] = v
    stamped = [f for f in newly if not is_meta(f) and f not in UNSTAMPED]
    stamped += [f for f in deleted if not is_meta(f) and f not in UNSTAMPED]
    for f in stamped:
        if f + "_user" not in body:
            result[f + "_user"] = mode.user
        if f + "_time" not in body:
            result[f + "_time"] = mode.now
    for f in deleted:
        if is_meta(f):
            result.pop(f, None)
    return result


def _stem(meta_field: str) -> str:
    return meta_field[: -len("_user")] if meta_field.endswith("_user") else meta_field[: -len("_time")]
