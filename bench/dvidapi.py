"""The few dvid HTTP calls the workloads make (DVID's API: repos, instances, versions, keyvalue, raw)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from bench.harness import BenchError


class KeyvalueUnavailable(BenchError):
    """The keyvalue ``key`` endpoint does not work (yet) on this dvid."""


class DvidAPI:
    """Calls against one dvid server at ``base`` (``http://127.0.0.1:port``)."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    def url(self, path: str) -> URL:
        return URL(f"{self.base}/api/{path}", encoded=True)

    def key_url(self, uuid: str, instance: str, key: str) -> URL:
        return self.url(f"node/{uuid}/{instance}/key/{quote(key, safe='')}")

    async def call(self, method: str, url: URL, body: bytes | None = None, *, json_body: Any = None) -> bytes:
        """One request; the body of a 200 reply, else :class:`BenchError`."""
        return await self._call(method, url, body, json_body=json_body)

    async def _call(
        self, method: str, url: URL, body: bytes | None = None, *, json_body: Any = None
    ) -> bytes:
        data = json.dumps(json_body).encode() if json_body is not None else body
        async with self.session.request(method, url, data=data) as resp:
            payload = await resp.read()
            if resp.status != 200:
                text = payload[:300].decode(errors="replace").strip()
                raise BenchError(f"{method} {url.path} -> {resp.status}: {text}")
            return payload

    async def new_repo(self, alias: str) -> str:
        body = {"alias": alias, "description": "bench"}
        reply = await self._call("POST", self.url("repos"), json_body=body)
        return str(json.loads(reply)["root"])

    async def new_keyvalue(self, uuid: str, name: str) -> None:
        body = {"typename": "keyvalue", "dataname": name}
        await self._call("POST", self.url(f"repo/{uuid}/instance"), json_body=body)

    async def new_instance(self, uuid: str, typename: str, name: str, **settings: str) -> None:
        body = {"typename": typename, "dataname": name, **settings}
        await self._call("POST", self.url(f"repo/{uuid}/instance"), json_body=body)

    async def has_type(self, typename: str) -> bool:
        """Whether this dvid serves datatype ``typename`` (``GET /api/help/<typename>`` answers 200)."""
        async with self.session.get(self.url(f"help/{quote(typename, safe='')}")) as resp:
            await resp.read()
            return resp.status == 200

    def raw_url(self, uuid: str, instance: str, dims: str, size: Sequence[int], offset: Sequence[int]) -> URL:
        """``.../raw/<dims>/<nx_ny[_nz]>/<x_y_z>``."""
        sz, off = "_".join(map(str, size)), "_".join(map(str, offset))
        return self.url(f"node/{uuid}/{instance}/raw/{dims}/{sz}/{off}")

    async def commit(self, uuid: str, note: str = "") -> None:
        await self._call("POST", self.url(f"node/{uuid}/commit"), json_body={"note": note})

    async def newversion(self, uuid: str, note: str = "") -> str:
        reply = await self._call("POST", self.url(f"node/{uuid}/newversion"), json_body={"note": note})
        return str(json.loads(reply)["child"])

    async def put_key(self, uuid: str, instance: str, key: str, value: bytes) -> None:
        await self._call("POST", self.key_url(uuid, instance, key), value)

    async def get_key(self, uuid: str, instance: str, key: str) -> bytes:
        return await self._call("GET", self.key_url(uuid, instance, key))

    async def check_keyvalue(self, uuid: str, instance: str) -> None:
        """Raise :class:`KeyvalueUnavailable` unless a POSTed key reads back byte for byte."""
        value = bytes(range(256)) * 8
        try:
            await self.put_key(uuid, instance, "bench-probe", value)
            got = await self.get_key(uuid, instance, "bench-probe")
        except BenchError as exc:
            raise KeyvalueUnavailable(f"keyvalue key endpoint does not work on this dvid: {exc}") from None
        if got != value:
            raise KeyvalueUnavailable(f"keyvalue GET returned {len(got)} bytes, not the {len(value)} POSTed")

    async def put_keys(
        self, uuid: str, instance: str, items: Sequence[tuple[str, bytes]], concurrency: int
    ) -> None:
        """POST many keys, ``concurrency`` at a time."""
        queue = list(items)

        async def worker() -> None:
            while queue:
                key, value = queue.pop()
                await self.put_key(uuid, instance, key, value)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
