"""Server processes under test, temp dirs, cleanup, and the HTTP load generator (loopback only).

A :class:`ServerProcess` is a ``python -m bench.servers ...`` subprocess; it is stopped with
SIGTERM (then SIGKILL) when its ``with`` block ends, at interpreter exit, and -- through
``PR_SET_PDEATHSIG`` on Linux -- when the bench process dies. :func:`run_load` drives one
server with ``concurrency`` keep-alive connections for a bounded time and request count.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from yarl import URL

LOOPBACK = "127.0.0.1"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 30.0
_PR_SET_PDEATHSIG = 1
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

T = TypeVar("T")
#: Produces the next request of a load: (method, url, body or None).
RequestFn = Callable[[], tuple[str, URL, bytes | None]]


class BenchError(RuntimeError):
    """A workload could not run (server failed to start, unexpected status, ...)."""


# ---- event loop ------------------------------------------------------------------------------
def loop_name() -> str:
    """The event loop both the bench and the servers run on: uvloop when importable."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def new_runner() -> asyncio.Runner:
    """An ``asyncio.Runner`` on a loop of the same kind the servers use."""
    factory = None
    if loop_name() == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    return asyncio.Runner(loop_factory=factory)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a fresh loop of the same kind the servers use."""
    with new_runner() as runner:
        return runner.run(coro)


# ---- server processes ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """preexec_fn: have the kernel SIGTERM the child if the bench process dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_LIVE: set[ServerProcess] = set()


@atexit.register
def _stop_all() -> None:
    for proc in list(_LIVE):
        proc.stop()


class ServerProcess:
    """One server (``dvid`` or ``baseline``) in its own process, listening on 127.0.0.1."""

    def __init__(self, kind: str, workdir: Path, *, extra_args: Sequence[str] = (), ready_path: str) -> None:
        self.kind = kind
        self.workdir = workdir
        self.port = free_port()
        self.base = f"http://{LOOPBACK}:{self.port}"
        self.log_path = workdir / f"{kind}-{self.port}.log"
        self._args = [
            sys.executable,
            "-m",
            "bench.servers",
            kind,
            "--port",
            str(self.port),
            *extra_args,
        ]
        self._ready_path = ready_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has ended (negative: killed by that signal), else None."""
        return self._proc.poll() if self._proc else None

    def url(self, path: str) -> URL:
        return URL(f"{self.base}{path}", encoded=True)

    def start(self) -> ServerProcess:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                self._args,
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        _LIVE.add(self)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        url = f"{self.base}{self._ready_path}"
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                code = self._proc.returncode
                raise BenchError(f"{self.kind} server exited with {code}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise BenchError(f"{self.kind} server not ready after {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the server process, all threads (Linux /proc); None elsewhere."""
        if self._proc is None:
            return None
        try:
            fields = Path(f"/proc/{self._proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime (fields 14, 15)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        _LIVE.discard(self)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: Leaf frames py-spy may report for blocked threads (its idle detection misses some).
_IDLE_LEAVES = ("_worker (concurrent/futures/thread.py", "wait (threading.py", "select (selectors.py")


class PySpy:
    """``py-spy record`` (raw collapsed stacks, all threads) attached to a running server process.

    Unlike the ``--profile`` cProfile run, which sees only the event-loop thread, this sees the
    worker threads (``asyncio.to_thread``) where image handlers do their work. C code (LevelDB,
    lz4, numpy, uvloop's socket I/O) is charged to the Python frame that called it. Does nothing
    but say so when py-spy is not installed."""

    def __init__(self, pid: int | None, out: Path, *, rate: int = 200) -> None:
        self.pid = pid
        self.out = out
        self.rate = rate
        self.error = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PySpy:
        exe = shutil.which("py-spy")
        if exe is None or self.pid is None:
            self.error = "py-spy is not installed (pip install py-spy)" if exe is None else "no server pid"
            return self
        self.out.parent.mkdir(parents=True, exist_ok=True)
        args = [exe, "record", "--pid", str(self.pid), "--rate", str(self.rate), "--format", "raw"]
        args += ["--nonblocking", "--output", str(self.out)]
        with open(self.out.with_suffix(".log"), "wb") as log:
            self._proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        time.sleep(0.5)  # attach before the measured requests start
        return self

    def __exit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)
        if not self.out.exists():
            self.error = f"py-spy wrote no {self.out} (see {self.out.with_suffix('.log')})"

    def top(self, n: int = 15) -> str:
        """The functions with the most samples of their own (and inclusive, within dvid's code)."""
        if self.error:
            return self.error
        own: dict[str, int] = {}
        incl: dict[str, int] = {}
        total = 0
        for line in self.out.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames, k = stack.split(";"), int(count)
            if frames[-1].startswith(_IDLE_LEAVES):
                continue  # a worker thread blocked on its queue, not work
            total += k
            own[frames[-1]] = own.get(frames[-1], 0) + k
            for frame in set(frames):
                if "(dvid/" in frame:
                    incl[frame] = incl.get(frame, 0) + k
        lines = [f"py-spy {self.out}: {total} busy samples (all threads, {self.rate}/s); top by own samples:"]
        for frame, k in sorted(own.items(), key=lambda kv: -kv[1])[:n]:
            lines.append(f"  {100 * k / max(total, 1):5.1f}% own  {frame}")
        lines.append("  dvid functions by inclusive samples:")
        for frame, k in sorted(incl.items(), key=lambda kv: -kv[1])[:n]:
            lines.append(f"  {100 * k / max(total, 1):5.1f}% incl {frame}")
        return "\n".join(lines)


def sigterm_as_sigint() -> None:
    """Handle SIGTERM exactly like Ctrl-C: KeyboardInterrupt, or inside an ``asyncio.Runner`` the
    cancellation of the main task; either way ``finally`` blocks stop servers and remove temp dirs.
    (Raising from the handler directly can be swallowed by the event loop's transport callbacks.)"""

    def handler(signum: int, frame: object) -> None:
        signal.raise_signal(signal.SIGINT)

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, handler)


# ---- load generation -------------------------------------------------------------------------
def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100); NaN when empty."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


@dataclass
class LoadResult:
    """One load phase (or several merged): counts, wall time, latencies and CPU use."""

    name: str
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list, repr=False)  # seconds, one per request
    server_cpu_s: float | None = 0.0
    client_cpu_s: float = 0.0
    first_error: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def latency_ms(self, q: float) -> float:
        return percentile(sorted(self.latencies), q) * 1000

    @property
    def mean_ms(self) -> float:
        return sum(self.latencies) / len(self.latencies) * 1000 if self.latencies else float("nan")

    @property
    def server_cpu_pct(self) -> float | None:
        if self.server_cpu_s is None or self.seconds <= 0:
            return None
        return 100 * self.server_cpu_s / self.seconds

    @property
    def server_us_per_request(self) -> float | None:
        """Server CPU (all threads) per request: the server's cost, whoever limited the rate."""
        if self.server_cpu_s is None or not self.requests:
            return None
        return 1e6 * self.server_cpu_s / self.requests

    @property
    def client_cpu_pct(self) -> float:
        return 100 * self.client_cpu_s / self.seconds if self.seconds > 0 else 0.0

    def add(self, other: LoadResult) -> None:
        """Accumulate another phase of the same measurement (interleaved rounds)."""
        self.requests += other.requests
        self.errors += other.errors
        self.seconds += other.seconds
        self.latencies.extend(other.latencies)
        if self.server_cpu_s is None or other.server_cpu_s is None:
            self.server_cpu_s = None
        else:
            self.server_cpu_s += other.server_cpu_s
        self.client_cpu_s += other.client_cpu_s
        self.first_error = self.first_error or other.first_error


def client_session(concurrency: int) -> aiohttp.ClientSession:
    """Keep-alive session with at most ``concurrency`` connections."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
    )


async def run_load(
    session: aiohttp.ClientSession,
    next_request: RequestFn,
    *,
    name: str,
    concurrency: int,
    duration: float,
    max_requests: int,
    server: ServerProcess | None = None,
    expect_status: int = 200,
) -> LoadResult:
    """``concurrency`` workers issue requests back to back until ``duration`` s or ``max_requests``."""
    result = LoadResult(name)
    remaining = max_requests
    latencies = result.latencies
    perf = time.perf_counter

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0 and perf() < deadline:
            remaining -= 1
            method, url, body = next_request()
            t0 = perf()
            async with session.request(method, url, data=body) as resp:
                payload = await resp.read()
                status = resp.status
            latencies.append(perf() - t0)
            if status != expect_status:
                result.errors += 1
                if not result.first_error:
                    text = payload[:200].decode(errors="replace").strip()
                    result.first_error = f"{method} {url.path} -> {status}: {text}"

    cpu0 = server.cpu_seconds() if server else None
    client0 = time.process_time()
    start = perf()
    deadline = start + duration
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = perf() - start
    result.client_cpu_s = time.process_time() - client0
    cpu1 = server.cpu_seconds() if server else None
    result.server_cpu_s = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
    result.requests = len(latencies)
    return result


@dataclass
class Phase:
    """One measured request stream against one server, for :func:`interleaved`."""

    name: str
    session: aiohttp.ClientSession
    next_request: RequestFn
    server: ServerProcess
    expect_status: int = 200


async def interleaved(
    phases: Sequence[Phase],
    *,
    rounds: int,
    seconds_per_round: float,
    warmup: float,
    concurrency: int,
    max_requests_per_round: int,
) -> tuple[list[LoadResult], list[list[LoadResult]]]:
    """Run every phase in each of ``rounds`` rounds, rotating the order each round to cancel drift.

    Returns the merged result per phase (in ``phases`` order) and the per-round results.
    """
    for phase in phases:  # connections open, caches warm, JIT-free code paths hot
        await run_load(
            phase.session,
            phase.next_request,
            name=phase.name,
            concurrency=concurrency,
            duration=warmup,
            max_requests=max_requests_per_round,
            expect_status=phase.expect_status,
        )
    merged = [LoadResult(p.name) for p in phases]
    per_round: list[list[LoadResult]] = []
    for r in range(rounds):
        shift = r % len(phases)
        order = list(range(len(phases)))[shift:] + list(range(len(phases)))[:shift]
        if r % 2:
            order.reverse()
        this_round: list[LoadResult | None] = [None] * len(phases)
        for i in order:
            p = phases[i]
            res = await run_load(
                p.session,
                p.next_request,
                name=p.name,
                concurrency=concurrency,
                duration=seconds_per_round,
                max_requests=max_requests_per_round,
                server=p.server,
                expect_status=p.expect_status,
            )
            merged[i].add(res)
            this_round[i] = res
        per_round.append([res for res in this_round if res is not None])
    return merged, per_round
