"""The base of every instance handle: its version, name, info and the HTTP calls to its endpoints."""

from __future__ import annotations

import json as jsonlib
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from dvid.api.server import TypedClient
    from dvid.api.version import Version


class Instance:
    """A data instance at one version: ``version[name]``. Subclasses add their type's operations;
    this class alone serves the types :mod:`dvid.api` has no wrapper for (``request`` reaches any
    endpoint)."""

    def __init__(self, version: Version, name: str, typename: str) -> None:
        self.version = version
        self.name = name
        self.typename = typename

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.typename} {self.name!r} at {self.version.uuid[:8]})"

    @property
    def client(self) -> TypedClient:
        return self.version.server.client

    def info(self) -> dict[str, Any]:
        """The instance's ``info`` JSON (``Base``, ``Extended``...)."""
        return self.client.instance_info(self.version.uuid, self.name)

    def request(self, method: str, endpoint: str, *tail: str, **kwargs: Any) -> requests.Response:
        """``method`` on ``/api/node/<uuid>/<name>/<endpoint>/<tail...>`` (keyword arguments as
        :meth:`dvid.client.DVIDClient.request`); raises the typed errors."""
        return self.client.instance_request(method, self.version.uuid, self.name, endpoint, *tail, **kwargs)

    def get_json(self, endpoint: str, *tail: str, **kwargs: Any) -> Any:
        return jsonlib.loads(self.request("GET", endpoint, *tail, **kwargs).content or b"null")

    def post_json(self, endpoint: str, *tail: str, **kwargs: Any) -> Any:
        """POST and decode the JSON answer (None for an empty one)."""
        content = self.request("POST", endpoint, *tail, **kwargs).content
        return jsonlib.loads(content) if content.strip() else None

    def edit_params(self, **extra: str) -> dict[str, str]:
        """Query parameters of an edit: ``u=<user>`` (recorded by the server) and ``extra``."""
        return {"u": self.version.server.user, "app": "dvid.api", **extra}
