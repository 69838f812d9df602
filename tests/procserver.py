"""A real ``dvid serve`` in a child process, for tests that kill it (SIGKILL) and restart it.

The server runs from a generated TOML configuration (any store: LevelDB, PostgreSQL), logs to a
file next to it, and is started again on the same store as often as a test likes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.serverutil import free_port


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(path: Path, port: int, store: dict[str, Any], **server: Any) -> Path:
    """A TOML configuration with one store (``store``: its settings, e.g. engine and path)."""
    lines = ["[server]", 'host = "127.0.0.1"', f"port = {port}"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in server.items()]
    lines += ["", "[store.main]"] + [f"{k} = {_toml_value(v)}" for k, v in store.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass(frozen=True)
class Startup:
    """How long a start took: ``wall_s`` from spawning the process to its first answered heartbeat,
    of which the server's main thread spent ``cpu_wait_s`` runnable but waiting for a CPU that other
    processes held (Linux schedstat; 0 where unknown)."""

    wall_s: float
    cpu_wait_s: float

    @property
    def own_s(self) -> float:
        """The start time without the waits for a CPU: what the start takes on an idle machine."""
        return self.wall_s - self.cpu_wait_s

    def __str__(self) -> str:
        return f"{self.wall_s:.2f} s ({self.own_s:.2f} s without {self.cpu_wait_s:.2f} s waiting for a CPU)"


def runqueue_wait_s(pid: int) -> float:
    """Seconds the process's main thread has spent runnable but not running (0 if unknown)."""
    try:
        fields = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
    except OSError:
        return 0.0
    return int(fields[1]) / 1e9


class ServerProcess:
    """``python -m dvid serve CONFIG`` on a free port; ``start`` may be called again after ``kill``."""

    def __init__(self, workdir: Path, store: dict[str, Any], **server: Any) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = write_config(workdir / "dvid.toml", self.port, store, **server)
        self.log = workdir / "server.log"
        self.proc: subprocess.Popen | None = None

    def api(self, path: str) -> str:
        return f"{self.url}/api/{path.lstrip('/')}"

    def start(self, timeout: float = 30.0) -> Startup:
        """Spawn the server and wait for its heartbeat; returns how long that took. Raises (with the
        log's tail) if it exits or does not answer in time."""
        assert self.proc is None or self.proc.poll() is not None, "the server is already running"
        with open(self.log, "ab") as log:
            t0 = time.monotonic()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dvid", "serve", str(self.config)],
                stdout=log,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        with requests.Session() as session:
            while True:
                try:
                    if session.get(self.api("heartbeat"), timeout=1).status_code == 200:
                        return Startup(time.monotonic() - t0, runqueue_wait_s(self.proc.pid))
                except requests.ConnectionError:
                    pass
                if self.proc.poll() is not None:
                    raise RuntimeError(f"dvid serve exited with {self.proc.returncode}:\n{self.log_tail()}")
                if time.monotonic() - t0 > timeout:
                    raise RuntimeError(f"dvid serve did not answer in {timeout} s:\n{self.log_tail()}")
                time.sleep(0.005)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, nothing is flushed or closed by the server."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> int | None:
        """SIGTERM and wait (the orderly shutdown); returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        return self.proc.returncode

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
