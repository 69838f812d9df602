"""The server's route table: every path under ``/api`` is matched here, not by aiohttp's router.

Routes are declared as :class:`ApiRoute` (a path template, the methods served, a handler and a
description). One matcher answers for all of them, so every known path with a wrong method gets
the same 405 with ``Allow``, every unknown path the same 404, and the OpenAPI description and the
fuzz tests read the same table the server dispatches on.

Templates are split on ``/``; ``{name}`` matches one non-empty segment and a final ``{name...}``
the rest of the path (one segment or more). Paths are split *before* percent-decoding, so an
encoded slash (``%2F``) stays inside its segment (keyvalue keys may hold one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

from aiohttp import web

from dvid.datatype.common.route import JSON, Param
from dvid.errors import BadRequest, MethodNotAllowed, NotFound
from dvid.server.metrics import set_route_label

#: In ``ApiRoute.methods``: the handler takes every method and answers 405 itself.
ANY_METHOD = "*"


@dataclass
class PathValues:
    """The values a path gave a template's parameters; a final ``{name...}`` gives ``rest``, the
    remaining segments, each decoded on its own (so a decoded ``/`` never splits a segment)."""

    params: dict[str, str] = field(default_factory=dict)
    rest: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> str:
        return self.params[name]


ApiHandler = Callable[[web.Request, PathValues], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ApiRoute:
    """A server, repo or node endpoint: ``path`` template, ``methods``, ``handler(request, path_values)``.

    ``params`` describe the template's ``{names}`` (by name); ``query``, ``consumes`` and
    ``produces`` describe the rest of the request and the response for clients; ``statuses`` the
    statuses it answers besides 200 and the errors every route of its kind may give.
    """

    path: str
    methods: tuple[str, ...]
    handler: ApiHandler
    summary: str = ""
    params: tuple[Param, ...] = ()
    query: tuple[Param, ...] = ()
    consumes: tuple[str, ...] = ()
    produces: tuple[str, ...] = (JSON,)
    statuses: tuple[int, ...] = ()
    segments: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.path.strip("/").split("/")))
        names = {p.name for p in self.params}
        for seg in self.segments:
            if _is_param(seg) and _param_name(seg) not in names:
                raise TypeError(f"route {self.path}: parameter {seg} is not described in params")

    @property
    def has_rest(self) -> bool:
        return self.segments[-1].endswith("...}")

    @property
    def specificity(self) -> tuple[int, int]:
        """Literal segments count first; a fixed-length template beats one that takes the rest."""
        return sum(not _is_param(s) for s in self.segments), 0 if self.has_rest else 1

    def match(self, parts: list[str]) -> PathValues | None:
        """The template's values for a path's segments, or None if the path does not fit."""
        segs = self.segments
        if self.has_rest:
            if len(parts) < len(segs):
                return None
        elif len(parts) != len(segs):
            return None
        values = PathValues()
        for i, seg in enumerate(segs):
            if not _is_param(seg):
                if parts[i] != seg:
                    return None
            elif seg.endswith("...}"):
                values.rest = parts[i:]
            elif parts[i] == "":
                return None
            else:
                values.params[_param_name(seg)] = parts[i]
        return values


def _is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def _param_name(segment: str) -> str:
    return segment[1:-1].removesuffix("...")


def split_path(raw_path: str) -> list[str]:
    """A raw path's segments, each percent-decoded; one trailing empty segment dropped, so
    ``/api/help/`` is ``/api/help``. Raises BadRequest for a segment that is not UTF-8 once decoded."""
    parts = raw_path.split("?", 1)[0].removeprefix("/").split("/")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    try:
        return [unquote(p, errors="strict") if "%" in p else p for p in parts]
    except UnicodeDecodeError:
        raise BadRequest("a path segment is not valid UTF-8 once percent-decoded") from None


class Router:
    """Matches request paths against :class:`ApiRoute` templates and dispatches to their handlers."""

    def __init__(self, routes: Iterable[ApiRoute] = ()) -> None:
        self._routes: list[ApiRoute] = []
        self.add(routes)

    def add(self, routes: Iterable[ApiRoute]) -> None:
        for route in routes:
            for other in self._routes:
                if other.segments == route.segments and set(other.methods) & set(route.methods):
                    raise TypeError(f"{route.path}: {set(other.methods) & set(route.methods)} routed twice")
            self._routes.append(route)
        self._routes.sort(key=lambda r: r.specificity, reverse=True)

    @property
    def routes(self) -> list[ApiRoute]:
        return list(self._routes)

    def resolve(self, method: str, parts: list[str]) -> tuple[ApiRoute, PathValues]:
        """The most specific route serving ``method`` at the path; 405 naming the methods the path
        accepts if none serves it; 404 if no template fits the path. A route taking any method
        (``ANY_METHOD``) is a fallback: it never hides a more specific template's 405."""
        allowed: set[str] = set()
        for route in self._routes:
            values = route.match(parts)
            if values is None:
                continue
            if method in route.methods or (ANY_METHOD in route.methods and not allowed):
                return route, values
            allowed.update(route.methods)
        if allowed:
            methods = tuple(sorted(allowed - {ANY_METHOD}))
            raise MethodNotAllowed(
                f"{method} is not supported here; it accepts {', '.join(methods)}", allowed=methods
            )
        raise NotFound("Could not find the URL; see /api/help for the API")

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """The aiohttp handler of every path this router owns."""
        route, values = self.resolve(request.method, split_path(request.raw_path))
        set_route_label(request, route.path)
        return await route.handler(request, values)
