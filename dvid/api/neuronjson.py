"""neuronjson instances: one JSON object per body id, as a mutable mapping, and queries."""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping
from typing import Any

from dvid.api.errors import NotFound
from dvid.api.instance import Instance


def _body(key: object) -> int:
    if isinstance(key, bool) or not isinstance(key, int) or key <= 0:
        raise KeyError(f"neuronjson keys are positive body ids, got {key!r}")
    return key


class NeuronJSON(Instance, MutableMapping[int, dict[str, Any]]):
    """``ann[bodyid]`` is the body's annotation (a dict; KeyError if none); ``ann[bodyid] = {...}``
    writes it (``bodyid`` is filled in; the server records the user); :meth:`query` finds bodies."""

    def __getitem__(self, key: int) -> dict[str, Any]:
        try:
            return dict(self.get_json("key", str(_body(key))))
        except NotFound:
            raise KeyError(key) from None

    def __setitem__(self, key: int, value: dict[str, Any]) -> None:
        record = {**value, "bodyid": _body(key)}
        self.request(
            "POST", "key", str(key), data=json.dumps(record), params=self.edit_params(replace="true")
        )

    def __delitem__(self, key: int) -> None:
        if key not in self:
            raise KeyError(key)
        self.request("DELETE", "key", str(key), params=self.edit_params())

    def __contains__(self, key: object) -> bool:
        if isinstance(key, bool) or not isinstance(key, int) or key <= 0:
            return False
        try:
            self.request("HEAD", "key", str(key))
        except NotFound:
            return False
        return True

    def __iter__(self) -> Iterator[int]:
        return iter(int(k) for k in self.get_json("keys"))

    def __len__(self) -> int:
        return len(self.get_json("keys"))

    def update_fields(self, key: int, fields: dict[str, Any]) -> None:
        """Change only the given fields of a body's annotation (the others are kept)."""
        record = {**fields, "bodyid": _body(key)}
        self.request("POST", "key", str(key), data=json.dumps(record), params=self.edit_params())

    def query(self, query: dict[str, Any] | list[dict[str, Any]], *, onlyid: bool = False) -> list[Any]:
        """The annotations matching a query (``{"field": value or [values]}``, see the neuronjson
        help), ascending by body id; with ``onlyid`` just the ids."""
        params = {"onlyid": "true"} if onlyid else {}
        return list(self.post_json("query", data=json.dumps(query), params=params) or [])

    def all(self) -> list[dict[str, Any]]:
        """Every annotation, ascending by body id."""
        return list(self.get_json("all") or [])
