"""Connecting to a server: :func:`connect` gives a :class:`Server`, indexed by version references.

    >>> server = connect("http://127.0.0.1:8000")          # doctest: +SKIP
    >>> node = server[":master"]                            # doctest: +SKIP

Every HTTP request goes through :class:`TypedClient`, the project's :class:`~dvid.client.DVIDClient`
raising the typed errors of :mod:`dvid.api.errors`.
"""

from __future__ import annotations

import getpass
from typing import Any

import requests

from dvid.api.errors import DVIDClientError, typed
from dvid.api.version import Version, resolve_reference
from dvid.client import DEFAULT_TIMEOUT, DVIDClient


class TypedClient(DVIDClient):
    """:class:`DVIDClient` whose failures are the typed errors (``NotFound``, ``Conflict``...)."""

    def request(self, method: str, *segments: str, **kwargs: Any) -> requests.Response:
        try:
            return super().request(method, *segments, **kwargs)
        except DVIDClientError as exc:
            raise typed(exc) from None

    def twin(self) -> TypedClient:
        """A client to the same server with its own ``requests.Session`` (one per thread)."""
        return TypedClient(self.server, admin_token=self.admin_token, timeout=self.timeout)


class Server:
    """A dvid (or DVID) server. ``server[ref]`` is the :class:`Version` a reference names: a UUID,
    a unique UUID prefix, ``:master``, ``:branch~N`` or ``uuid:branch`` (resolved once, by the
    server, to a full UUID)."""

    def __init__(self, client: TypedClient, *, user: str, workers: int, progress: bool | None) -> None:
        self.client = client
        self.user = user
        self.workers = workers
        self.progress = progress

    @property
    def url(self) -> str:
        return self.client.server

    def __repr__(self) -> str:
        return f"Server({self.url!r})"

    def __getitem__(self, ref: str) -> Version:
        return Version(self, resolve_reference(self.client, ref))

    def info(self) -> dict[str, Any]:
        """``/api/server/info``."""
        return self.client.server_info()

    def repos(self) -> dict[str, Version]:
        """``{alias or root UUID: root version}`` of every repo."""
        infos = self.client.repos_info()
        return {str(info.get("Alias") or root): Version(self, root) for root, info in infos.items()}

    def new_repo(self, alias: str = "", description: str = "") -> Version:
        """Create a repo; returns its root version (open)."""
        return Version(self, self.client.new_repo(alias, description))

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    url: str = "http://127.0.0.1:8000",
    *,
    user: str | None = None,
    admin_token: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    workers: int = 8,
    progress: bool | None = None,
) -> Server:
    """A :class:`Server` at ``url`` (``host:port`` or a URL). ``user`` is sent as ``u=`` with edits
    (default: the login name); ``workers`` is how many pieces of a large volume move at once;
    ``progress`` shows a progress bar for transfers: None shows one when a transfer takes > 2 s."""
    client = TypedClient(url, admin_token=admin_token, timeout=timeout)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    return Server(client, user=user or _login(), workers=workers, progress=progress)


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in this environment (e.g. a container without USER)
        return "dvid.api"
