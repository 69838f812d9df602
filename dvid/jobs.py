"""Long-running work the server does (pyramid builds, ingests, push and pull, instance deletion),
listed with its progress at ``GET /api/server/jobs`` for operators and the console.

A job is registered when the work starts and marked done or failed when it ends; finished jobs
stay listed for ``KEEP_SECONDS`` (at most ``KEEP_FINISHED`` of them) so a short job is still seen.
Progress is ``done`` of ``total`` units the job names (blocks, keys, bytes); ``total`` may be
unknown (None) until the job knows it.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

KEEP_SECONDS = 600.0
KEEP_FINISHED = 100


@dataclass
class Job:
    """One piece of long-running work and its progress (updated from any thread)."""

    id: int
    kind: str
    description: str
    unit: str = ""
    total: int | None = None
    done: int = 0
    state: str = "running"
    error: str = ""
    started: float = field(default_factory=time.time)
    finished: float | None = None

    def advance(self, amount: int = 1) -> None:
        self.done += amount

    def set_total(self, total: int) -> None:
        self.total = total

    def to_json(self) -> dict[str, Any]:
        end = self.finished if self.finished is not None else time.time()
        return {
            "id": self.id,
            "kind": self.kind,
            "description": self.description,
            "state": self.state,
            "unit": self.unit,
            "done": self.done,
            "total": self.total,
            "fraction": None if not self.total else min(1.0, self.done / self.total),
            "started": _rfc3339(self.started),
            "finished": None if self.finished is None else _rfc3339(self.finished),
            "seconds": round(end - self.started, 3),
            "error": self.error,
        }


def _rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class JobRegistry:
    """The jobs of one server: running ones and those finished in the last ``KEEP_SECONDS``."""

    def __init__(self) -> None:
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @contextmanager
    def run(self, kind: str, description: str, unit: str = "", total: int | None = None) -> Iterator[Job]:
        """Register a job for the ``with`` block; it fails (with the error's text) if the block raises."""
        job = self.start(kind, description, unit, total)
        try:
            yield job
        except BaseException as exc:
            self.finish(job, f"{type(exc).__name__}: {exc}")
            raise
        self.finish(job)

    def start(self, kind: str, description: str, unit: str = "", total: int | None = None) -> Job:
        with self._lock:
            job = Job(next(self._ids), kind, description, unit, total)
            self._jobs[job.id] = job
            return job

    def finish(self, job: Job, error: str = "") -> None:
        job.state = "failed" if error else "done"
        job.error = error
        job.finished = time.time()
        self._forget_old()

    def _forget_old(self) -> None:
        with self._lock:
            finished = sorted((j for j in self._jobs.values() if j.finished is not None), key=lambda j: j.id)
            cutoff = time.time() - KEEP_SECONDS
            stale = [j for j in finished if j.finished is not None and j.finished < cutoff]
            stale += finished[: max(0, len(finished) - len(stale) - KEEP_FINISHED)]
            for job in stale:
                self._jobs.pop(job.id, None)

    def listing(self) -> list[dict[str, Any]]:
        """Every job kept, running first, then newest first."""
        self._forget_old()
        with self._lock:
            jobs = list(self._jobs.values())
        jobs.sort(key=lambda j: (j.state != "running", -j.id))
        return [j.to_json() for j in jobs]

    def running(self) -> int:
        with self._lock:
            return sum(j.state == "running" for j in self._jobs.values())
