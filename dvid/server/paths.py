"""Splitting request paths the way DVID does, but keeping ``%2F`` inside one segment."""

from __future__ import annotations

from urllib.parse import unquote

from aiohttp import web

from dvid.errors import BadRequest


def path_parts(request: web.Request, prefix: str) -> list[str]:
    """Percent-decoded segments of the raw path after ``prefix``; one trailing empty segment dropped.

    Splitting happens before decoding, so an encoded slash (``%2F``) stays inside its segment.
    """
    raw = request.raw_path.split("?", 1)[0]
    tail = raw[len(prefix) :] if raw.startswith(prefix) else ""
    parts = tail.split("/")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    try:
        return [unquote(p, errors="strict") if "%" in p else p for p in parts]
    except UnicodeDecodeError:
        raise BadRequest("a path segment is not valid UTF-8 once percent-decoded") from None
