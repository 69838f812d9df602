"""keyvalue instances as a mutable mapping of string keys to bytes, with batch reads and writes
through the ``keyvalues`` endpoint's protobuf and tar forms."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable, Iterator, Mapping, MutableMapping

from dvid.api.errors import NotFound
from dvid.api.instance import Instance


def _key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise KeyError(f"keyvalue keys are non-empty strings, got {key!r}")
    return key


def _value(value: object) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"keyvalue values are bytes (or str, stored as UTF-8), got {type(value).__name__}")


class KeyValue(Instance, MutableMapping[str, bytes]):
    """``kv["key"]`` reads bytes (KeyError if absent), ``kv["key"] = b"..."`` writes (str is stored as
    UTF-8), ``del kv["key"]`` deletes; ``len``, ``in`` and iteration (keys in byte order) work at the
    handle's version. :meth:`get_many` and :meth:`put_many` move many keys in one request."""

    def __getitem__(self, key: str) -> bytes:
        try:
            return self.request("GET", "key", _key(key)).content
        except NotFound:
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: bytes | str) -> None:
        self.request("POST", "key", _key(key), data=_value(value))

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self.request("DELETE", "key", _key(key))

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str) or not key:
            return False
        try:
            self.request("HEAD", "key", key)
        except NotFound:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys_list())

    def __len__(self) -> int:
        return len(self.keys_list())

    def keys_list(self) -> list[str]:
        """Every key at this version, in byte order (one request)."""
        return [str(k) for k in self.get_json("keys")]

    def key_range(self, first: str, last: str) -> list[str]:
        """The keys with ``first <= key <= last``."""
        return [str(k) for k in self.get_json("keyrange", _key(first), _key(last))]

    def get_many(self, keys: Iterable[str], *, form: str = "protobuf") -> dict[str, bytes]:
        """``{key: value}`` of many keys in one request (``form`` "protobuf" or "tar"). A key without
        a value comes back as ``b""``: the batch forms do not tell missing from empty."""
        names = [_key(k) for k in keys]
        if form == "protobuf":
            from dvid.datatype.common import kvproto

            request = kvproto.Keys(keys=names)
            answer = self.request("GET", "keyvalues", data=request.SerializeToString()).content
            message = kvproto.KeyValues.FromString(answer)
            return {kv.key: bytes(kv.value) for kv in message.kvs}
        if form == "tar":
            answer = self.request("GET", "keyvalues", params={"tar": "true"}, data=json.dumps(names)).content
            return _untar(answer)
        raise ValueError(f"form is 'protobuf' or 'tar', got {form!r}")

    def put_many(self, items: Mapping[str, bytes | str] | Iterable[tuple[str, bytes | str]]) -> None:
        """Store many key-value pairs in one atomic request (the protobuf form)."""
        from dvid.datatype.common import kvproto

        pairs = items.items() if isinstance(items, Mapping) else items
        message = kvproto.KeyValues(kvs=[kvproto.KeyValue(key=_key(k), value=_value(v)) for k, v in pairs])
        self.request("POST", "keyvalues", data=message.SerializeToString())

    def range_items(self, first: str, last: str) -> dict[str, bytes]:
        """``{key: value}`` of the keys with ``first <= key <= last``, in key order (one request)."""
        answer = self.request(
            "GET", "keyrangevalues", _key(first), _key(last), params={"tar": "true"}
        ).content
        return _untar(answer)


def _untar(data: bytes) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            f = tar.extractfile(member)
            out[member.name] = f.read() if f is not None else b""
    return out
