"""Result records, the printed table and the JSON output."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import LoadResult, percentile


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


@dataclass
class LoadFigure:
    """An HTTP load phase, summarised."""

    name: str
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    server_cpu_pct: float | None
    server_us_per_req: float | None
    client_cpu_pct: float
    first_error: str = ""

    @classmethod
    def of(cls, result: LoadResult, name: str | None = None) -> LoadFigure:
        return cls(
            name=name or result.name,
            requests=result.requests,
            errors=result.errors,
            seconds=round(result.seconds, 3),
            rps=round(result.rps, 1),
            p50_ms=round(result.latency_ms(50), 3),
            p99_ms=round(result.latency_ms(99), 3),
            mean_ms=round(result.mean_ms, 3),
            server_cpu_pct=_round(result.server_cpu_pct, 1),
            server_us_per_req=_round(result.server_us_per_request, 1),
            client_cpu_pct=round(result.client_cpu_pct, 1),
            first_error=result.first_error,
        )


@dataclass
class InprocFigure:
    """An in-process (no HTTP) operation rate."""

    name: str
    ops: int
    ops_per_s: float
    us_per_op: float


@dataclass
class TimedFigure:
    """Requests (or in-process operations) issued one at a time, each timed: large-body figures."""

    name: str
    n: int
    mib: float  # MiB per request (body moved)
    p50_ms: float
    p99_ms: float
    min_ms: float
    mb_per_s: float  # MB (10^6 bytes) per second at the median time
    server_cpu_ms: float | None = None  # server CPU per request (all threads); None: not measured

    @classmethod
    def of(
        cls, name: str, seconds: list[float], nbytes: int, server_cpu_s: float | None = None
    ) -> TimedFigure:
        ordered = sorted(seconds)
        p50 = statistics.median(ordered) if ordered else math.nan
        cpu_ms = 1000 * (server_cpu_s or 0.0)
        return cls(
            name=name,
            n=len(seconds),
            mib=round(nbytes / (1 << 20), 3),
            p50_ms=round(p50 * 1000, 3),
            p99_ms=round(percentile(ordered, 99) * 1000, 3),
            min_ms=round(ordered[0] * 1000, 3) if ordered else float("nan"),
            mb_per_s=round(nbytes / p50 / 1e6, 1) if p50 > 0 else float("nan"),
            server_cpu_ms=None if server_cpu_s is None or not seconds else round(cpu_ms / len(seconds), 2),
        )


@dataclass
class Ratio:
    """A ratio (or a latency) with an optional target: ``op`` is ``>=``, ``<=`` or ``<``."""

    name: str
    value: float
    unit: str = "x"
    op: str = ""
    target: float | None = None
    note: str = ""

    @property
    def passed(self) -> bool | None:
        if self.target is None or not self.op or math.isnan(self.value):
            return None
        v, t = self.value, self.target
        return {">=": v >= t, "<=": v <= t, "<": v < t}[self.op]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["passed"] = self.passed
        return out


@dataclass
class WorkloadReport:
    name: str
    loads: list[LoadFigure] = field(default_factory=list)
    inproc: list[InprocFigure] = field(default_factory=list)
    timed: list[TimedFigure] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "loads": [asdict(x) for x in self.loads],
            "inproc": [asdict(x) for x in self.inproc],
            "timed": [asdict(x) for x in self.timed],
            "ratios": [r.to_json() for r in self.ratios],
            "notes": self.notes,
            "error": self.error,
        }


def _fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def render(meta: dict[str, Any], reports: list[WorkloadReport]) -> str:
    """The human-readable table of every figure, ratio and target."""
    lines = [
        "dvid bench  " + "  ".join(f"{k}={v}" for k, v in meta.items() if k not in ("argv",)),
        "",
    ]
    loads = [(r.name, f) for r in reports for f in r.loads]
    if loads:
        lines.append(
            f"{'HTTP load':<40}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'mean ms':>8}"
            f"{'requests':>10}{'errors':>7}{'srv CPU':>8}{'srv us/req':>11}{'cli CPU':>8}"
        )
        for wl, f in loads:
            lines.append(
                f"{wl + ': ' + f.name:<40}{f.rps:>8,.0f}{_fmt(f.p50_ms, '.2f'):>8}{_fmt(f.p99_ms, '.2f'):>8}"
                f"{_fmt(f.mean_ms, '.2f'):>8}{f.requests:>10,}{f.errors:>7}"
                f"{_fmt(f.server_cpu_pct, '.0f') + '%':>8}{_fmt(f.server_us_per_req, '.0f'):>11}"
                f"{f.client_cpu_pct:>7.0f}%"
            )
        lines.append("")
    inproc = [(r.name, f) for r in reports for f in r.inproc]
    if inproc:
        lines.append(f"{'In-process (no HTTP), best pass':<60}{'ops/s':>10}{'us/op':>10}{'ops':>10}")
        for wl, fi in inproc:
            lines.append(f"{wl + ': ' + fi.name:<60}{fi.ops_per_s:>10,.0f}{fi.us_per_op:>10.2f}{fi.ops:>10,}")
        lines.append("")
    timed = [(r.name, f) for r in reports for f in r.timed]
    if timed:
        lines.append(
            f"{'One request at a time':<48}{'n':>4}{'MiB':>8}{'p50 ms':>9}{'p99 ms':>9}{'min ms':>9}"
            f"{'MB/s':>8}{'srv CPU ms':>11}"
        )
        for wl, ft in timed:
            lines.append(
                f"{wl + ': ' + ft.name:<48}{ft.n:>4}{ft.mib:>8.2f}{_fmt(ft.p50_ms, '.2f'):>9}"
                f"{_fmt(ft.p99_ms, '.2f'):>9}{_fmt(ft.min_ms, '.2f'):>9}{_fmt(ft.mb_per_s, ',.0f'):>8}"
                f"{_fmt(ft.server_cpu_ms, '.1f'):>11}"
            )
        lines.append("")
    ratios = [(r.name, x) for r in reports for x in r.ratios]
    if ratios:
        lines.append(f"{'Ratios and targets':<60}{'value':>10}{'target':>10}  result")
        for wl, x in ratios:
            value = _fmt(x.value, ".3f" if x.unit == "x" else ".2f") + (" " + x.unit if x.unit else "")
            target = f"{x.op} {x.target:g}" if x.target is not None else ""
            verdict = {True: "PASS", False: "FAIL", None: ""}[x.passed]
            note = f"  ({x.note})" if x.note else ""
            lines.append(f"{wl + ': ' + x.name:<60}{value:>10}{target:>10}  {verdict}{note}".rstrip())
        lines.append("")
    for r in reports:
        for note in r.notes:
            lines.append(f"note [{r.name}]: {note}")
        for f in r.loads:
            if f.first_error:
                lines.append(f"error [{r.name}] {f.name}: {f.errors} failed, first: {f.first_error}")
        if r.error:
            lines.append(f"NOT RUN [{r.name}]: {r.error}")
    return "\n".join(lines).rstrip() + "\n"


def write_json(path: Path, meta: dict[str, Any], reports: list[WorkloadReport]) -> None:
    doc = {"meta": meta, "workloads": {r.name: r.to_json() for r in reports}}
    path.write_text(json.dumps(doc, indent=2) + "\n")
