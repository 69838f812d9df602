"""Declared routes: what an endpoint serves, its path and query parameters and its media types.

The same declarations drive dispatch (methods, mutation and throttling flags), the 405 answers
with ``Allow``, the OpenAPI description served at ``/api/openapi.json``, and the fuzz tests.
Handlers still parse and check their own input; the declarations describe it for clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MUTATING_METHODS = frozenset({"POST", "PUT", "DELETE"})
#: The methods a route table can serve; any other method is always a 405.
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")

ParamType = Literal["string", "integer", "number", "boolean"]


@dataclass(frozen=True)
class Param:
    """A path segment or query parameter, described for clients (OpenAPI) and fuzzers.

    ``pattern`` is a regular expression a valid value matches in full; ``enum`` the only values.
    A path parameter with ``required=False`` may be left off the end of the path.
    """

    name: str
    type: ParamType = "string"
    description: str = ""
    pattern: str | None = None
    enum: tuple[str, ...] | None = None
    required: bool = True
    minimum: int | None = None
    maximum: int | None = None


def query(
    name: str,
    type: ParamType = "string",
    description: str = "",
    *,
    pattern: str | None = None,
    enum: tuple[str, ...] | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> Param:
    """A query parameter (never required: every dvid query parameter has a default)."""
    return Param(name, type, description, pattern, enum, False, minimum, maximum)


# ---- parameters that recur across datatypes ------------------------------------------------------
UINT64 = r"[0-9]{1,20}"
INT32 = r"-?[0-9]{1,10}"

DIMS = Param(
    "dims",
    description="Axes of the box, e.g. 0_1_2 (xyz), or a 2-D plane: xy, xz, yz, or 0_1 style",
    pattern=r"(xy|xz|yz|[0-9](_[0-9]){1,2})",
)
SIZE = Param(
    "size", description="Size in voxels along the axes, e.g. 256_256_256", pattern=r"[0-9]+(_[0-9]+){1,2}"
)
OFFSET = Param(
    "offset", description="Offset of the box's first voxel, e.g. 0_0_0", pattern=rf"{INT32}(_{INT32}){{1,2}}"
)
BLOCK_COORD = Param("block", description="A block coordinate x_y_z", pattern=rf"{INT32}_{INT32}_{INT32}")
LABEL = Param("label", "integer", "A 64-bit label (body id)", pattern=UINT64, minimum=0, maximum=2**64 - 1)
KEY = Param("key", description="A key: any string (percent-encode '/' and other reserved characters)")

U_QUERY = query("u", description="The user making the request, for logs")
APP_QUERY = query("app", description="The client application, for logs")


def flag(name: str, description: str) -> Param:
    """A boolean query parameter as dvid accepts them (``true|on|1``, ``false|off|0``)."""
    return query(name, "boolean", description)


THROTTLE_QUERY = flag(
    "throttle", "Refuse with 503 when the server already runs its maximum of heavy requests"
)

JSON = "application/json"
TEXT = "text/plain"
BINARY = "application/octet-stream"


@dataclass(frozen=True)
class Route:
    """One endpoint keyword of a datatype, served for ``methods`` by the handler method ``handler``.

    ``mutates`` None means DVID's default: POST, PUT and DELETE change data. ``heavy`` routes
    honour ``?throttle=true`` (refused with 503 while the server runs its maximum of throttled ops).
    ``args`` are the path segments after the endpoint keyword; ``consumes``/``produces`` the
    request and response media types.
    """

    endpoint: str
    methods: tuple[str, ...]
    handler: str
    mutates: bool | None = None
    heavy: bool = False
    summary: str = ""
    args: tuple[Param, ...] = ()
    query: tuple[Param, ...] = ()
    consumes: tuple[str, ...] = ()
    produces: tuple[str, ...] = (JSON,)

    def is_mutation(self, method: str) -> bool:
        return method in MUTATING_METHODS if self.mutates is None else self.mutates
