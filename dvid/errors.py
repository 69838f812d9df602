"""Exceptions that carry an HTTP status; the server maps them to plain-text error responses.

Code anywhere (storage, DAG, datatypes) raises these; only the server's error middleware
turns them into responses, as ``"<message> (<path>).\\n"``.
"""

from __future__ import annotations


class DVIDError(Exception):
    """Base class: a failure caused by the request, with the HTTP status that describes it."""

    status: int = 400

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class BadRequest(DVIDError):
    """Malformed or invalid input (400)."""

    status = 400


class Forbidden(DVIDError):
    """The request needs privileges it does not carry, e.g. the admin token (403)."""

    status = 403


class NotFound(DVIDError):
    """Unknown repo, node, instance, key or route (404)."""

    status = 404


class MethodNotAllowed(DVIDError):
    """The endpoint exists but not for this HTTP method, or the server is read-only (405)."""

    status = 405

    def __init__(self, message: str, *, allowed: tuple[str, ...] = ("GET", "HEAD")) -> None:
        super().__init__(message)
        self.allowed = allowed


class NotAcceptable(DVIDError):
    """No representation of the answer matches the request's Accept header (406)."""

    status = 406


class Conflict(DVIDError):
    """The request collides with existing state: committed node, taken name, versions in conflict (409)."""

    status = 409


class PayloadTooLarge(DVIDError):
    """The request body or requested volume exceeds the configured limit (413)."""

    status = 413


class UnsupportedMediaType(DVIDError):
    """A request body in an encoding or format the endpoint does not accept (415)."""

    status = 415


class RangeNotSatisfiable(DVIDError):
    """A byte range that the stored value cannot satisfy (416)."""

    status = 416

    def __init__(self, message: str, *, length: int) -> None:
        super().__init__(message)
        self.length = length


class ServiceUnavailable(DVIDError):
    """The server is read-only, shutting down or throttled (503)."""

    status = 503


class VersionConflict(Conflict):
    """A read at a merge node found different values along two parents (DVID: unresolved merge)."""
