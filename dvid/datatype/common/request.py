"""What a datatype handler receives, and small response helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from dvid.datatype.common import jsonio
from dvid.datatype.common.body import decoded_length, iter_body, read_body
from dvid.errors import BadRequest, PayloadTooLarge

T = TypeVar("T")

if TYPE_CHECKING:
    from dvid.dag.ancestry import Ancestry
    from dvid.dag.dag import Node
    from dvid.storage.versioned import DataContext

TRUE_WORDS = frozenset({"true", "on", "1"})
FALSE_WORDS = frozenset({"false", "off", "0"})


def parse_bool(
    value: str | bool | None, name: str, default: bool | None = False, *, what: str = "query parameter"
) -> bool:
    """DVID's booleans, in query strings and creation settings: ``true|on|1`` and ``false|off|0``
    (any case), or a JSON boolean (settings). None or ``""`` gives ``default``, refused if None.

    ``what`` names the value in the error: ``"query parameter"`` or ``"setting"``.
    """
    if isinstance(value, bool):
        return value
    if value is None or value == "":
        if default is None:
            raise BadRequest(f"{what} {name!r} must be true or false (true/on/1, false/off/0), got {value!r}")
        return default
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise BadRequest(f"{what} {name!r} must be true or false (true/on/1, false/off/0), got {value!r}")


@dataclass(frozen=True)
class RequestLimits:
    """Server limits a handler enforces before allocating (voxels per request, bytes held in
    memory), and the server's policy on requests DVID guards by configuration."""

    max_voxels: int = 1 << 32
    max_bytes_in_memory: int = 1 << 30
    #: labelmap's ``split`` endpoint is served (DVID's AllowLabelmapSplit)
    allow_labelmap_split: bool = False

    def check_voxels(self, voxels: int) -> None:
        if voxels > self.max_voxels:
            raise PayloadTooLarge(
                f"request for {voxels} voxels exceeds the server limit of {self.max_voxels}"
                " (setting max_request_voxels)"
            )

    def check_in_memory(self, nbytes: int, what: str = "response") -> None:
        if nbytes > self.max_bytes_in_memory:
            raise PayloadTooLarge(
                f"{what} of {nbytes} bytes would exceed the server limit of {self.max_bytes_in_memory}"
                " bytes built in memory; request a smaller region"
            )


@dataclass
class InstanceRequest:
    """A request routed to a data instance at a resolved version.

    ``args`` are the percent-decoded path segments after the endpoint keyword. ``ancestry`` is
    the requested version's.
    """

    request: web.Request
    node: Node
    ctx: DataContext
    endpoint: str
    args: list[str]
    ancestry: Ancestry
    user: str = ""
    limits: RequestLimits = RequestLimits()

    def context_for(self, instance: Any) -> DataContext:
        """Another instance of the same repo seen at this request's version."""
        return instance.context_at(self.ancestry)

    async def small(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a small read or write of this request's data: on the event loop for a local store
        (a thread hop costs more than a cached LevelDB read), in a worker thread for a remote one
        (postgres: every operation is a network round trip)."""
        if self.ctx.remote:
            return await asyncio.to_thread(fn, *args)
        return fn(*args)

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def query(self) -> Any:
        return self.request.query

    @property
    def uuid(self) -> str:
        return self.node.uuid

    def query_bool(self, name: str, default: bool = False) -> bool:
        return parse_bool(self.request.query.get(name), name, default)

    def query_int(self, name: str, default: int | None = None) -> int | None:
        raw = self.request.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise BadRequest(f"query parameter {name!r} must be an integer, got {raw!r}") from None

    def arg(self, index: int, what: str) -> str:
        """The path argument at ``index``, or a 400 naming what was expected."""
        if index >= len(self.args) or self.args[index] == "":
            raise BadRequest(f"expect {what} to follow '{self.endpoint}' endpoint")
        return self.args[index]

    async def body(self) -> bytes:
        """The whole request body, decoded (bounded by the server's body size limit)."""
        return await read_body(self.request, self.limits.max_bytes_in_memory)

    def body_chunks(self) -> AsyncIterator[bytes]:
        """The request body's pieces as they arrive, decoded (bounded like :meth:`body`)."""
        return iter_body(self.request, self.limits.max_bytes_in_memory)

    @property
    def body_length(self) -> int | None:
        """The decoded body's length when the headers tell it."""
        return decoded_length(self.request)

    async def json(self) -> Any:
        return jsonio.loads(await self.body())

    async def json_object(self) -> dict[str, Any]:
        return jsonio.loads_object(await self.body())


def json_response(obj: Any, *, status: int = 200) -> web.Response:
    return web.Response(body=jsonio.dumps(obj), status=status, content_type="application/json")


def json_bytes_response(body: bytes, *, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


def text_response(text: str, *, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/plain")


def octet_response(body: bytes, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/octet-stream", headers=headers)
