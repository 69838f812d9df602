"""A real dvid server on loopback, run in a background thread, for tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from pathlib import Path
from typing import Any

import requests
from aiohttp import web

from dvid.config import Config, ServerSettings, StoreSettings
from dvid.server import create_app
from dvid.server.app import RUNNER_OPTIONS
from dvid.server.state import STATE_KEY
from dvid.storage.engine import Engine

#: Creation settings a datatype requires, for tests that create an instance of every type.
REQUIRED_SETTINGS: dict[str, dict[str, str]] = {"tarsupervoxels": {"Extension": "drc"}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """Serves a dvid app over HTTP on 127.0.0.1 from its own event loop thread."""

    def __init__(
        self,
        store_dir: Path | None,
        *,
        engine: str = "leveldb",
        store_engine: Engine | None = None,
        **server_settings: Any,
    ) -> None:
        """``store_engine``, if given, is the open engine served (and closed at stop) instead of
        the store the settings describe."""
        self.store_engine = store_engine
        store = StoreSettings(engine=engine, path=str(store_dir) if store_dir else "unused")
        server_settings.setdefault("access_log", False)  # the log would interleave with test output
        self.config = Config(
            server=ServerSettings(port=free_port(), **server_settings), store={"default": store}
        )
        self.url = f"http://127.0.0.1:{self.config.server.port}"
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="dvid-test-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self.app = create_app(self.config, engine=self.store_engine)
            self._runner = web.AppRunner(self.app, access_log=None, **RUNNER_OPTIONS)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.config.server.port)
            self._loop.run_until_complete(site.start())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()
        # stop() may stop the loop again while it cleans up (when the loop stopped on its own
        # first, as the fuzz self-test's dying server does): run the cleanup to its end anyway
        cleanup = self._loop.create_task(self._runner.cleanup())
        while not cleanup.done():
            with contextlib.suppress(RuntimeError):
                self._loop.run_until_complete(cleanup)
        self._loop.close()

    def start(self) -> ServerThread:
        self._thread.start()
        self._started.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            # a server whose loop stopped on its own (the fuzz self-test kills one) may close the
            # loop between the check and the call: then there is nothing left to stop
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)

    @property
    def manager(self):
        return self.app[STATE_KEY].manager

    def api(self, path: str) -> str:
        return f"{self.url}/api/{path.lstrip('/')}"

    def new_repo(self, alias: str = "test", description: str = "") -> str:
        r = requests.post(self.api("repos"), json={"alias": alias, "description": description}, timeout=10)
        r.raise_for_status()
        return r.json()["root"]

    def new_instance(self, uuid: str, typename: str, name: str, **settings: str) -> None:
        body = {"typename": typename, "dataname": name, **settings}
        r = requests.post(self.api(f"repo/{uuid}/instance"), json=body, timeout=10)
        assert r.status_code == 200, r.text

    def commit(self, uuid: str, note: str = "") -> None:
        r = requests.post(self.api(f"node/{uuid}/commit"), json={"note": note}, timeout=10)
        assert r.status_code == 200, r.text

    def newversion(self, uuid: str, note: str = "") -> str:
        r = requests.post(self.api(f"node/{uuid}/newversion"), json={"note": note}, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()["child"]
