"""Request metrics: Prometheus counters and histograms at ``/metrics``, and a recent-window summary.

Each server has its own registry (several servers may share a process, as in the tests). Every
request is counted by method, *route* and status: the route is the matched template
(``/api/node/{uuid}/note``) or, for a data instance, ``<type>/<endpoint>`` (``labelmap/raw``), so
the label set stays bounded whatever the paths. ``RecentRequests`` keeps the last few thousand
requests for the console's live rate and latency percentiles (``GET /api/server/activity``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

import numpy as np
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

#: Latency buckets (seconds): a small GET takes ~0.2 ms, a 256^3 POST a second or more.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: The request-to-metrics key aiohttp requests carry: the route label of the matched route.
ROUTE_LABEL_KEY = web.RequestKey("dvid_route", str)
UNMATCHED = "unmatched"


def set_route_label(request: web.Request, label: str) -> None:
    """Name the route a request matched, for the metrics (the last call wins)."""
    request[ROUTE_LABEL_KEY] = label


def route_label(request: web.Request) -> str:
    return request.get(ROUTE_LABEL_KEY, UNMATCHED)


class RecentRequests:
    """The last ``capacity`` requests' end times, durations and statuses, for live summaries."""

    def __init__(self, capacity: int = 8192) -> None:
        self._items: deque[tuple[float, float, int]] = deque(maxlen=capacity)

    def add(self, end: float, seconds: float, status: int) -> None:
        self._items.append((end, seconds, status))

    def summary(self, window: float = 10.0, now: float | None = None) -> dict[str, float | int]:
        """Requests per second over the last ``window`` seconds, latency p50/p99 (ms), errors."""
        now = time.monotonic() if now is None else now
        recent = [item for item in list(self._items) if item[0] > now - window]
        if not recent:
            return {"window_seconds": window, "requests": 0, "requests_per_second": 0.0,
                    "p50_ms": 0.0, "p99_ms": 0.0, "errors_4xx": 0, "errors_5xx": 0}  # fmt: skip
        arr = np.array(recent)
        ms = arr[:, 1] * 1000.0
        status = arr[:, 2]
        return {
            "window_seconds": window,
            "requests": len(recent),
            "requests_per_second": round(len(recent) / window, 2),
            "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "errors_4xx": int(((status >= 400) & (status < 500)).sum()),
            "errors_5xx": int((status >= 500).sum()),
        }


class _ServerCollector(Collector):
    """Gauges read when scraped: uptime and whatever ``gauges`` returns (name -> (help, value))."""

    def __init__(self, gauges: Callable[[], Iterable[tuple[str, str, float]]]) -> None:
        self._gauges = gauges

    def collect(self) -> Iterable[Metric]:
        for name, text, value in self._gauges():
            yield GaugeMetricFamily(name, text, value=value)


class ServerMetrics:
    """One server's metrics registry and the per-request bookkeeping the middleware calls."""

    def __init__(self, gauges: Callable[[], Iterable[tuple[str, str, float]]] = tuple) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "dvid_http_requests",
            "HTTP requests answered",
            ["method", "route", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dvid_http_request_duration_seconds",
            "Time from a request's arrival to its handler's return (streamed bodies: to the last byte)",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.response_bytes = Counter(
            "dvid_http_response_bytes",
            "Bytes of response bodies sent",
            ["method", "route"],
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)
        self.registry.register(_ServerCollector(gauges))
        self.recent = RecentRequests()
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram, Counter]] = {}
        self._lock = threading.Lock()

    def observe(self, method: str, route: str, status: int, seconds: float, size: int) -> None:
        """Count one answered request (called once per request by the middleware)."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            with self._lock:
                children = (
                    self.requests.labels(method, route, str(status)),
                    self.latency.labels(method, route),
                    self.response_bytes.labels(method, route),
                )
                self._children[key] = children
        count, latency, sent = children
        count.inc()
        latency.observe(seconds)
        if size:
            sent.inc(size)
        self.recent.add(time.monotonic(), seconds, status)

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The registry in the format the scraper's ``Accept`` header prefers (Prometheus text 0.0.4
        by default, OpenMetrics when asked), and its content type."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
