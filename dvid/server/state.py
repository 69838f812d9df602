"""What every handler can reach: the repo manager, configuration and server-wide switches."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from dvid.config import Config
from dvid.datatype.common.body import read_body
from dvid.datatype.common.request import RequestLimits
from dvid.errors import ServiceUnavailable
from dvid.repos import RepoManager
from dvid.server.access_log import AccessLog
from dvid.server.metrics import ServerMetrics
from dvid.server.routing import Router


@dataclass
class LoadStats:
    """Request tallies for ``/api/load`` (per-second rates over the last full second)."""

    current_second: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    last: dict[str, int] = field(default_factory=dict)
    active: int = 0

    def add(self, name: str, amount: int = 1) -> None:
        now = int(time.monotonic())
        if now != self.current_second:
            self.last = self.counts if now == self.current_second + 1 else {}
            self.counts = {}
            self.current_second = now
        self.counts[name] = self.counts.get(name, 0) + amount

    def rates(self) -> dict[str, int]:
        self.add("_tick", 0)
        return dict(self.last)


@dataclass
class ServerState:
    config: Config
    manager: RepoManager
    started: float = field(default_factory=time.time)
    load: LoadStats = field(default_factory=LoadStats)
    access_log: AccessLog | None = None
    throttled: int = 0
    metrics: ServerMetrics = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = ServerMetrics(self._gauges)

    def _gauges(self) -> list[tuple[str, str, float]]:
        """What ``/metrics`` reads at each scrape besides the request counters."""
        repos = list(self.manager.iter_repos())
        return [
            ("dvid_uptime_seconds", "Seconds since the server started", time.time() - self.started),
            ("dvid_http_requests_in_flight", "Requests being served", float(self.load.active)),
            ("dvid_repos", "Repos on the server", float(len(repos))),
            ("dvid_instances", "Data instances on the server", float(sum(len(r.instances) for r in repos))),
            ("dvid_jobs_running", "Long-running jobs in progress (GET /api/server/jobs)",
             float(self.manager.jobs.running())),
        ]  # fmt: skip

    @property
    def limits(self) -> RequestLimits:
        cfg = self.config.server
        return RequestLimits(
            max_voxels=cfg.max_request_voxels,
            max_bytes_in_memory=cfg.max_body_bytes,
            allow_labelmap_split=cfg.allow_labelmap_split,
        )

    @property
    def max_throttled_ops(self) -> int:
        return self.config.server.max_throttled_ops or (os.cpu_count() or 1)

    @asynccontextmanager
    async def throttle(self) -> AsyncIterator[None]:
        """Count a ``throttle=true`` operation, or refuse it with 503 when the maximum is running."""
        if self.throttled >= self.max_throttled_ops:
            running, most = self.throttled, self.max_throttled_ops
            raise ServiceUnavailable(f"Server already running {running} throttled operations (max = {most})")
        self.throttled += 1
        try:
            yield
        finally:
            self.throttled -= 1

    @property
    def readonly(self) -> bool:
        return self.config.server.rwmode == "readonly"

    @property
    def fullwrite(self) -> bool:
        return self.config.server.rwmode == "fullwrite"

    def is_admin(self, request: web.Request) -> bool:
        token = self.config.server.effective_admin_token()
        return bool(token) and request.query.get("admintoken") == token


STATE_KEY = web.AppKey("dvid_state", ServerState)
ROUTER_KEY = web.AppKey("dvid_router", Router)


def state_of(request: web.Request) -> ServerState:
    return request.app[STATE_KEY]


async def body_of(request: web.Request) -> bytes:
    """The request's whole body, decoded, within the server's body limit."""
    return await read_body(request, state_of(request).config.server.max_body_bytes)
