"""A small synchronous HTTP client for a dvid (or DVID) server, used by the CLI and usable from Python.

    >>> from dvid.client import DVIDClient
    >>> with DVIDClient("http://127.0.0.1:8000") as dvid:
    ...     root = dvid.new_repo("fib", "a test repo")
    ...     dvid.new_instance(root, "keyvalue", "kv", {"versioned": "true"})
    ...     dvid.commit(root, note="first")
    ...     child = dvid.newversion(root)

Every method raises :class:`DVIDClientError` on failure: a non-2xx answer carries the HTTP status
and the server's message; a server that does not answer gives a message saying so.

The admin token (argument ``admin_token``, else the environment variable ``DVID_ADMIN_TOKEN``)
is sent as ``?admintoken=`` only with the admin operations -- deleting a repo or an instance and
renaming an instance -- and with :meth:`DVIDClient.request` calls made with ``admin=True``. It is
not sent with ordinary writes, because the token also unlocks committed versions and read-only
servers, and an ordinary command should not do that behind the user's back.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

import requests

from dvid.config import ADMIN_TOKEN_ENV

DEFAULT_SERVER = "http://127.0.0.1:8000"
SERVER_ENV = "DVID_SERVER"
DEFAULT_TIMEOUT = 60.0
_DEFAULT_TIMEOUT: Any = object()  # "use the client's timeout"

__all__ = ["DEFAULT_SERVER", "SERVER_ENV", "DVIDClient", "DVIDClientError"]


class DVIDClientError(Exception):
    """A request that failed: ``status`` is the HTTP status (``None`` when no answer came)."""

    def __init__(self, message: str, *, status: int | None = None, url: str = "", body: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.url = url
        self.body = body

    def __str__(self) -> str:
        return self.message


def _server_message(response: requests.Response) -> str:
    """The server's error message, without DVID's trailing ``" (<path>)."``."""
    text = response.text.strip()
    cut = text.rfind(" (/")
    if cut > 0 and text.endswith(")."):
        text = text[:cut]
    return text or (response.reason or "no message")


def normalize_server(url: str) -> str:
    """``host:port``, ``:port`` or a URL -> ``http://host:port`` without a trailing slash."""
    url = url.strip().rstrip("/")
    if not url:
        return DEFAULT_SERVER
    if "://" not in url:
        url = f"http://127.0.0.1{url}" if url.startswith(":") else f"http://{url}"
    if url.endswith("/api"):
        url = url[: -len("/api")]
    return url


def _seg(value: str) -> str:
    """One percent-encoded path segment (``/`` inside a name stays in its segment as ``%2F``)."""
    return quote(str(value), safe=":~@!$&'()*+,;=")


class DVIDClient:
    """Synchronous client over one ``requests.Session``."""

    def __init__(
        self,
        server: str = DEFAULT_SERVER,
        *,
        admin_token: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        self.server = normalize_server(server)
        self.admin_token = admin_token or os.environ.get(ADMIN_TOKEN_ENV) or None
        self.timeout = timeout
        self.session = session or requests.Session()

    # ---- plumbing ----------------------------------------------------------------------------
    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> DVIDClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, *segments: str) -> str:
        """``<server>/api/<segments, each percent-encoded>``."""
        return "/".join([self.server, "api", *(_seg(s) for s in segments)])

    def request(
        self,
        method: str,
        *segments: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: bytes | str | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        admin: bool = False,
        stream: bool = False,
        timeout: Any = _DEFAULT_TIMEOUT,
    ) -> requests.Response:
        """Send ``method`` to ``/api/<segments>``; return the 2xx response or raise DVIDClientError."""
        query = dict(params or {})
        if admin and self.admin_token:
            query["admintoken"] = self.admin_token
        url = self.url(*segments)
        try:
            response = self.session.request(
                method,
                url,
                params=query or None,
                json=json,
                data=data,
                headers=dict(headers) if headers else None,
                stream=stream,
                timeout=self.timeout if timeout is _DEFAULT_TIMEOUT else timeout,
            )
        except requests.exceptions.Timeout:
            raise DVIDClientError(
                f"the dvid server at {self.server} did not answer {method} {url} in time", url=url
            ) from None
        except requests.exceptions.ConnectionError:
            raise DVIDClientError(
                f"no dvid server answers at {self.server} (is `dvid serve` running?)", url=url
            ) from None
        except requests.exceptions.RequestException as exc:
            raise DVIDClientError(f"request to {url} failed: {exc}", url=url) from None
        if not 200 <= response.status_code < 300:
            message = _server_message(response)
            raise DVIDClientError(message, status=response.status_code, url=url, body=response.text)
        return response

    def _json(self, method: str, *segments: str, **kwargs: Any) -> Any:
        response = self.request(method, *segments, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise DVIDClientError(
                f"the server answered {method} {response.url} with something that is not JSON: "
                f"{response.text[:200]!r}",
                status=response.status_code,
                url=response.url,
                body=response.text,
            ) from None

    # ---- server ------------------------------------------------------------------------------
    def heartbeat(self) -> bool:
        """True if a server answers ``/api/heartbeat``."""
        try:
            self.request("GET", "heartbeat")
        except DVIDClientError:
            return False
        return True

    def server_info(self) -> dict[str, Any]:
        return self._json("GET", "server", "info")

    def server_note(self) -> str:
        return self.request("GET", "server", "note").text

    def types(self) -> dict[str, str]:
        """``{typename: type URL}`` of the types used by instances on the server."""
        return self._json("GET", "server", "types")

    def compiled_types(self) -> dict[str, str]:
        """``{typename: type URL}`` of every type the server knows."""
        return self._json("GET", "server", "compiled-types")

    def help(self, typename: str | None = None) -> str:
        """A datatype's help text, or the server's general API help (HTML) without a type."""
        if typename:
            return self.request("GET", "help", typename).text
        return self.request("GET", "help").text

    # ---- repos -------------------------------------------------------------------------------
    def repos_info(self) -> dict[str, dict[str, Any]]:
        """``{root uuid: repo info}`` for every repo."""
        return self._json("GET", "repos", "info")

    def new_repo(
        self, alias: str = "", description: str = "", *, root: str | None = None, passcode: str | None = None
    ) -> str:
        """Create a repo; returns its root UUID."""
        body: dict[str, str] = {"alias": alias, "description": description}
        if root:
            body["root"] = root
        if passcode:
            body["passcode"] = passcode
        return self._json("POST", "repos", json=body)["root"]

    def repo_info(self, uuid: str) -> dict[str, Any]:
        return self._json("GET", "repo", uuid, "info")

    def set_repo_info(self, uuid: str, *, alias: str | None = None, description: str | None = None) -> None:
        body = {k: v for k, v in (("alias", alias), ("description", description)) if v is not None}
        self.request("POST", "repo", uuid, "info", json=body)

    def delete_repo(self, uuid: str) -> str:
        """Delete a repo and all its data (admin token needed); returns the server's message."""
        return self.request("DELETE", "repo", uuid, params={"imsure": "true"}, admin=True).text.strip()

    def repo_log(self, uuid: str) -> list[str]:
        return self._json("GET", "repo", uuid, "log")["log"]

    def append_repo_log(self, uuid: str, messages: list[str]) -> None:
        self.request("POST", "repo", uuid, "log", json={"log": list(messages)})

    def branch_versions(self, uuid: str, branch: str) -> list[str]:
        return self._json("GET", "repo", uuid, "branch-versions", branch)

    def merge(self, parents: list[str], note: str = "", *, uuid: str | None = None) -> str:
        """Conflict-free merge of two or more committed versions; returns the child UUID."""
        if len(parents) < 2:
            raise DVIDClientError("a merge needs at least two parents")
        body: dict[str, Any] = {"mergeType": "conflict-free", "parents": list(parents), "note": note}
        if uuid:
            body["uuid"] = uuid
        return self._json("POST", "repo", parents[0], "merge", json=body)["child"]

    def resolve(self, parents: list[str], data: list[str], note: str = "") -> str:
        """Merge where earlier parents win conflicting keys of the ``data`` instances; returns the child."""
        body = {"data": list(data), "parents": list(parents), "note": note}
        return self._json("POST", "repo", parents[0], "resolve", json=body)["child"]

    # ---- data instances ----------------------------------------------------------------------
    def new_instance(
        self, uuid: str, typename: str, dataname: str, settings: Mapping[str, str] | None = None
    ) -> str:
        """Create a data instance; returns the server's result text."""
        body = {**(settings or {}), "typename": typename, "dataname": dataname}
        answer = self._json("POST", "repo", uuid, "instance", json=body)
        return answer.get("result", "") if isinstance(answer, dict) else ""

    def delete_instance(self, uuid: str, dataname: str) -> str:
        """Delete a data instance and its data (admin token needed); returns the server's message."""
        response = self.request("DELETE", "repo", uuid, dataname, params={"imsure": "true"}, admin=True)
        return response.text.strip()

    def rename_instance(self, uuid: str, old: str, new: str) -> str:
        """Rename a data instance (admin token needed); returns the server's message."""
        body = {"dataname": old, "newname": new}
        return self.request("POST", "repo", uuid, "rename", json=body, admin=True).text.strip()

    def instance_info(self, uuid: str, dataname: str) -> dict[str, Any]:
        return self._json("GET", "node", uuid, dataname, "info")

    def instance_request(
        self, method: str, uuid: str, dataname: str, endpoint: str, *tail: str, **kwargs: Any
    ) -> requests.Response:
        """Any instance endpoint: ``/api/node/<uuid>/<dataname>/<endpoint>/<tail...>``.

        Keyword arguments are those of :meth:`request` (``params``, ``data``, ``json``, ``admin``...).
        """
        return self.request(method, "node", uuid, dataname, endpoint, *tail, **kwargs)

    def build_pyramid(self, uuid: str, dataname: str, levels: int) -> int:
        """Build (or extend) the 2x-downsampled levels NAME_1..NAME_levels of an image volume."""
        r = self.instance_request("POST", uuid, dataname, "pyramid", params={"levels": str(levels)})
        return int(r.json()["levels"])

    def ingest_labelblk(
        self, uuid: str, labelmap: str, source: str, *, blocks: int | None = None, restart: bool = False
    ) -> dict[str, Any]:
        """One step of building labelmap ``labelmap`` from labelblk ``source`` (at most ``blocks``
        blocks, the server's default if None); returns the progress (see the labelmap help)."""
        params = {"source": source}
        if blocks is not None:
            params["blocks"] = str(blocks)
        if restart:
            params["restart"] = "true"
        return self._json("POST", "node", uuid, labelmap, "ingest-labelblk", params=params)

    # ---- versions (nodes) --------------------------------------------------------------------
    def commit(self, uuid: str, note: str = "", log: list[str] | None = None) -> str:
        """Lock a version; returns its UUID."""
        body: dict[str, Any] = {"note": note}
        if log:
            body["log"] = list(log)
        return self._json("POST", "node", uuid, "commit", json=body)["committed"]

    def newversion(self, uuid: str, note: str = "", *, child_uuid: str | None = None) -> str:
        """An open child on the same branch; returns the child UUID."""
        body: dict[str, Any] = {"note": note}
        if child_uuid:
            body["uuid"] = child_uuid
        return self._json("POST", "node", uuid, "newversion", json=body)["child"]

    def branch(self, uuid: str, name: str, note: str = "", *, child_uuid: str | None = None) -> str:
        """An open child starting branch ``name``; returns the child UUID."""
        body: dict[str, Any] = {"branch": name, "note": note}
        if child_uuid:
            body["uuid"] = child_uuid
        return self._json("POST", "node", uuid, "branch", json=body)["child"]

    def tag(self, uuid: str, tag: str, note: str = "") -> str:
        """A committed child whose UUID is the tag; returns it."""
        return self._json("POST", "node", uuid, "tag", json={"tag": tag, "note": note})["child"]

    def note(self, uuid: str) -> str:
        return self._json("GET", "node", uuid, "note")["note"]

    def set_note(self, uuid: str, note: str) -> None:
        self.request("POST", "node", uuid, "note", json={"note": note})

    def log(self, uuid: str) -> list[str]:
        return self._json("GET", "node", uuid, "log")["log"]

    def append_log(self, uuid: str, messages: list[str]) -> None:
        self.request("POST", "node", uuid, "log", json={"log": list(messages)})

    def status(self, uuid: str) -> dict[str, Any]:
        """``{"Locked": bool}``."""
        return self._json("GET", "node", uuid, "status")

    def is_locked(self, uuid: str) -> bool:
        return bool(self.status(uuid).get("Locked"))

    # ---- transfers (push and pull) -----------------------------------------------------------
    def transfer_have(self, uuid: str) -> dict[str, Any] | None:
        """What this server holds of the repo of ``uuid`` (None if it has no such version)."""
        try:
            return self._json("GET", "repo", uuid, "transfer", "have")
        except DVIDClientError as exc:
            if exc.status == 404:
                return None
            raise

    def transfer_export(
        self, uuid: str, have: dict[str, Any] | None, data: list[str] | None = None, *, flatten: bool = False
    ) -> requests.Response:
        """The export stream of version ``uuid`` for a receiver holding ``have`` (a streaming response)."""
        body = {"have": have, "data": list(data or []), "flatten": flatten}
        return self.request("GET", "repo", uuid, "transfer", "export", json=body, stream=True, timeout=None)

    def transfer_check(self, uuid: str, header: bytes) -> None:
        """Ask the receiver whether it would accept a stream with this (msgpack) header."""
        self.request("POST", "repo", uuid, "transfer", "check", data=header)

    def transfer_import(self, uuid: str, chunks: Iterable[bytes]) -> dict[str, Any]:
        """Stream a transfer into this server (chunked upload); returns its summary."""
        return self._json("POST", "repo", uuid, "transfer", "import", data=chunks, timeout=None)
