"""Path shapes read from a datatype's help text, for routes that do not declare ``args`` yet.

Help texts list endpoints as ``GET  raw/<dims>/<size>/<offset>[/<format>][?compression=]``; each
such line gives the segments after the endpoint keyword (a ``<name>`` or ``{name}`` is a parameter,
anything else a literal), which of them may be left off, and the query parameters named. Declared
``Route.args`` always win over these.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from dvid.datatype.common.route import Param
from dvid.datatype.registry import all_types

_LINE = re.compile(r"^\s*(GET|POST|HEAD|DELETE|PUT)\s+(\S.*)$")
_PREFIX = re.compile(r"^.*?[{<]data ?name[}>]/")
_PARAM = re.compile(r"^[<{]([^>}]+)[>}]")


@dataclass(frozen=True)
class HelpShape:
    """One endpoint line of a help text: ``args`` as Params (``enum`` holds a literal's value)."""

    method: str
    args: tuple[Param, ...]
    query: tuple[str, ...]


def parse_line(line: str) -> tuple[str, HelpShape] | None:
    """The endpoint and shape an endpoint line of a help text describes, or None."""
    m = _LINE.match(line)
    if m is None:
        return None
    method, text = m.group(1), _path_token(m.group(2)).rstrip(";,")
    if text.startswith("/"):
        return None  # a repo-level line (instance creation), not an endpoint
    text = _PREFIX.sub("", text)
    query = tuple(re.findall(r"[?&]([A-Za-z_]+)=?", text))
    path = re.split(r"\[?\?", text, maxsplit=1)[0]
    args: list[Param] = []
    optional = False
    parts = path.replace("[/", "/[").split("/")
    endpoint = parts[0].strip("[]")
    for part in parts[1:]:
        optional = optional or part.startswith("[")
        part = part.strip("[]")
        if not part:
            continue
        names = _PARAM.match(part)
        if names is not None:
            name = names.group(1).split()[-1].replace("x_y_z", "coord").replace("bx_by_bz", "coord")
            args.append(Param(name, required=not optional))
        else:
            args.append(Param("literal", enum=(part,), required=not optional))
    return endpoint, HelpShape(method, tuple(args), query)


def _path_token(rest: str) -> str:
    """The path at the start of ``rest``: up to the first space outside ``<...>``."""
    depth = 0
    for i, ch in enumerate(rest):
        depth += (ch == "<") - (ch == ">")
        if ch.isspace() and depth <= 0:
            return rest[:i]
    return rest


@functools.cache
def help_shapes(type_name: str) -> dict[str, tuple[HelpShape, ...]]:
    """Every endpoint's shapes in the help text of a datatype."""
    shapes: dict[str, list[HelpShape]] = {}
    for line in all_types()[type_name].help_text.splitlines():
        parsed = parse_line(line)
        if parsed is not None and re.fullmatch(r"[a-z][a-z0-9-]*", parsed[0]):
            shapes.setdefault(parsed[0], []).append(parsed[1])
    return {endpoint: tuple(found) for endpoint, found in shapes.items()}
