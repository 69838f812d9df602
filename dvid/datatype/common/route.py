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

    ``pattern`` is a regular expression a valid value matches in full; ``enum`` the only values;
    ``example`` a typical value. A path parameter with ``required=False`` may be left off the end
    of the path.
    """

    name: str
    type: ParamType = "string"
    description: str = ""
    pattern: str | None = None
    enum: tuple[str, ...] | None = None
    required: bool = True
    minimum: int | None = None
    maximum: int | None = None
    example: str | None = None


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
# Patterns are written to hold in both Python's and ECMA-262's regex dialects; the OpenAPI
# description anchors them (``^(?:...)$``). Each accepts what the handler parsing it accepts.
UINT64 = r"[0-9]{1,20}"
#: A coordinate as dvid's geometry parser reads it (32-bit range checked by the handler: 400).
INT32 = r"[+-]?[0-9]{1,10}"
#: A positive size (``+`` and leading zeros allowed, as ``int()`` takes them).
POSITIVE = r"\+?0*[1-9][0-9]{0,9}"
#: Separator of the parts of a size, offset or point: ``_`` (DVID's) or ``,``.
SEP = "[_,]"
XYZ = rf"{INT32}{SEP}{INT32}{SEP}{INT32}"
_DIMS_WORDS = ("[xX][yY]", "[xX][zZ]", "[yY][zZ]", "[xX][yY][zZ]", "[vV][oO][lL]")

DIMS = Param(
    "dims",
    description="Axes: 0_1 (xy), 0_2 (xz), 1_2 (yz) for a slice, 0_1_2 (xyz, vol) for a volume",
    pattern="|".join((f"0{SEP}1{SEP}2", f"0{SEP}1", f"0{SEP}2", f"1{SEP}2", *_DIMS_WORDS)),
    example="0_1",
)
SIZE = Param(
    "size",
    description="Size in voxels along the request's axes: nx_ny for a slice, nx_ny_nz for a volume",
    pattern=rf"{POSITIVE}({SEP}{POSITIVE}){{1,2}}",
    example="32_32",
)
SIZE3 = Param(
    "size",
    description="Size of the box in voxels, nx_ny_nz",
    pattern=rf"{POSITIVE}({SEP}{POSITIVE}){{2}}",
    example="32_32_32",
)
OFFSET = Param(
    "offset", description="The box's first voxel x_y_z (may be negative)", pattern=XYZ, example="0_0_0"
)
POINT = Param("point", description="A voxel x_y_z", pattern=XYZ, example="15_15_15")
BLOCK_COORD = Param("block", description="A block coordinate bx_by_bz", pattern=XYZ, example="0_0_0")
LABEL = Param("label", "integer", "A 64-bit label (body id)", minimum=0, maximum=2**64 - 1, example="7")
#: A label that names a body: 0 is background and a 400.
BODY_LABEL = Param(
    "label", "integer", "A 64-bit label other than 0 (background)", minimum=1, maximum=2**64 - 1, example="9"
)
KEY = Param(
    "key", description="A key: any string (percent-encode '/' and other reserved characters)", example="a"
)
IMAGE_FORMAT = Param(
    "format",
    description="Image format: png (default), jpg or jpg:<quality 1-100> (also jpeg), tif (tiff), bmp",
    pattern="[pP][nN][gG]|[bB][mM][pP]|[tT][iI][fF][fF]?|[jJ][pP][eE]?[gG](:[0-9]{1,3})?",
    required=False,
    example="png",
)

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
TAR = "application/tar"
#: What an image slice may be sent as (the trailing ``format`` path segment chooses).
IMAGES = ("image/png", "image/jpeg", "image/tiff", "image/bmp")


@dataclass(frozen=True)
class Route:
    """One endpoint keyword of a datatype, served for ``methods`` by the handler method ``handler``.

    ``mutates`` None means DVID's default: POST, PUT and DELETE change data. ``heavy`` routes
    honour ``?throttle=true`` (refused with 503 while the server runs its maximum of throttled ops).
    ``args`` are the path segments after the endpoint keyword; ``consumes``/``produces`` the
    request and response media types; ``statuses`` the statuses it answers besides 200 and the
    errors every route of its kind may give (see dvid.server.openapi), e.g. 206 or 416;
    ``empty_statuses`` those it answers with no body at all (DVID's 404 for a label without voxels).
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
    statuses: tuple[int, ...] = ()
    empty_statuses: tuple[int, ...] = ()

    def is_mutation(self, method: str) -> bool:
        return method in MUTATING_METHODS if self.mutates is None else self.mutates
