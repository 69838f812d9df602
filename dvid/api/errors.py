"""Typed errors of :mod:`dvid.api`: each a :class:`~dvid.client.DVIDClientError` carrying the HTTP
``status`` and the server's ``message``, chosen by status so callers can ``except NotFound``."""

from __future__ import annotations

from dvid.client import DVIDClientError

__all__ = [
    "BadRequest",
    "Conflict",
    "DVIDClientError",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "RangeNotSatisfiable",
    "ServerError",
    "Unavailable",
    "Unreachable",
    "typed",
]


class BadRequest(DVIDClientError):
    """400: the server refused the request's input."""


class NotFound(DVIDClientError):
    """404: no such repo, version, instance, key or body."""


class MethodNotAllowed(DVIDClientError):
    """405: the endpoint does not take that method (or the server is read-only)."""


class Conflict(DVIDClientError):
    """409: a write to a committed version, a name already taken, or an unresolved merge."""


class PayloadTooLarge(DVIDClientError):
    """413: the request is over the server's voxel or body limit."""


class RangeNotSatisfiable(DVIDClientError):
    """416: a byte range outside the value."""


class Unavailable(DVIDClientError):
    """503: the server is busy (throttled requests)."""


class ServerError(DVIDClientError):
    """Any other 5xx: a fault of the server."""


class Unreachable(DVIDClientError):
    """No answer at all: the server is down, unreachable or too slow (``status`` is None)."""


_BY_STATUS: dict[int, type[DVIDClientError]] = {
    400: BadRequest,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: PayloadTooLarge,
    416: RangeNotSatisfiable,
    503: Unavailable,
}


def typed(error: DVIDClientError) -> DVIDClientError:
    """The subclass of :class:`DVIDClientError` that ``error``'s status calls for, same fields."""
    if type(error) is not DVIDClientError:
        return error
    status = error.status
    if status is None:
        cls: type[DVIDClientError] = Unreachable
    elif status in _BY_STATUS:
        cls = _BY_STATUS[status]
    elif status >= 500:
        cls = ServerError
    else:
        return error
    return cls(error.message, status=status, url=error.url, body=error.body)
