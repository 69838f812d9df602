"""The ``image`` workload: uint8blk raw volumes over HTTP, each next to baselines measured in the same run.

One dvid server (a repo with a ``uint8blk`` instance ``grayscale``, BlockSize ``--image-block``),
one bare aiohttp server (:mod:`bench.servers`) and the in-process limit
(:class:`bench.imgbase.InprocBlocks`: plyvel + lz4 + numpy, none of dvid's code). Requests go one
at a time over one keep-alive connection per server; alternatives being compared take turns
request by request (order rotated and reversed every round), so drift hits them alike. Each
figure is the median over the rounds; each ratio is the ratio of medians, with the median of
per-round ratios beside it.

1. POST 256^3 (EM-like data) to fresh aligned offsets, vs the in-process POST and a bare 16 MiB sink.
2. GET 256^3 aligned, vs the in-process GET and a bare 16 MiB GET.
3. GET 200^3 at an unaligned offset (17_33_9 within a written 256^3), vs (2).
4. ``image_random`` GETs of 64^3 at random unaligned offsets, vs a bare 256 KiB GET: p50/p99.
5. A 1024x1024 xy PNG slice of a 1024x1024x64 slab, vs the raw 1024x1024x1 GET of the same voxels.
6. GET 256^3 at a version ``image_depth`` commits deep (each version rewrote 1% of its blocks), vs root.
7. ``image_big``^3 (1 GiB) written in 256^3 POSTs, then streamed in one GET: throughput and the
   server's RSS growth during the GET (VmRSS sampled every 10 ms, and VmHWM after a reset
   through /proc/<pid>/clear_refs), vs a bare handler streaming as many bytes.

Every read is checked byte for byte (the PNG decoded) against what was written.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import math
import random
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np
from yarl import URL

from bench.dvidapi import DvidAPI
from bench.harness import BenchError, PySpy, ServerProcess, client_session, run_async
from bench.imgbase import EMVolumes, InprocBlocks, decode_png_gray8
from bench.report import Ratio, TimedFigure, WorkloadReport
from bench.workloads import Env, _div, _profile_notes

TYPENAME = "uint8blk"
INSTANCE = "grayscale"
EDGE = 256  # the 256^3 volume: 16 MiB of uint8
VOL_BYTES = EDGE**3
UNALIGNED_SIZE = 200
UNALIGNED_OFFSET = (17, 33, 9)  # within a written 256^3 region
SMALL = 64
SLAB = (1024, 1024, 64)  # x, y, z of the slab the PNG slice is read from
SLAB_Z0 = 512
SLICE_DZ = 37  # the xy slice read: z = SLAB_Z0 + SLICE_DZ
BIG_Z0 = 1024  # the big volume occupies x, y in [0, B), z in [BIG_Z0, BIG_Z0 + B)
BIG_ROUNDS = 2
RSS_INTERVAL_S = 0.01
RSS_TARGET_MIB = 300
IDLE_WAIT_MAX_S = 5.0  # per POST: wait at most this long for background compactions to finish
BIG_TIMEOUT = aiohttp.ClientTimeout(total=1800, sock_read=300)
MiB = 1 << 20
SEED = 20261121
#: DVID (Go) on this machine kind, from spec/performance.md (measured elsewhere, not in this run).
GO_MS = {"GET 256^3": 37.0, "POST 256^3": 72.0, "GET 200^3 unaligned": 20.0, "GET 64^3 p50": 1.6}
GO_NOTE = (
    "DVID (Go) for reference, from spec/performance.md (same machine kind, measured elsewhere): GET 256^3"
    " ~37 ms, POST 256^3 ~72 ms, GET 200^3 unaligned ~20 ms, GET 64^3 p50 1.6 ms / p99 3.5 ms, GET 256^3"
    " 50 commits deep vs root 1.04x; in one process (LevelDB -> lz4 -> numpy) a 256^3 GET takes ~9-11 ms"
    " and a POST ~29-35 ms"
)

Point = tuple[int, int, int]
StepFn = Callable[[int], Any]  # called with the round number; may return an awaitable


# ---- timing ----------------------------------------------------------------------------------
@dataclass
class Series:
    """The timed requests (or in-process operations) of one alternative."""

    name: str
    nbytes: int  # payload per request
    server: ServerProcess | None = None  # whose CPU time is recorded
    times: list[float] = field(default_factory=list)
    cpu_s: float | None = 0.0

    @property
    def p50(self) -> float:
        return statistics.median(self.times) if self.times else math.nan

    def figure(self) -> TimedFigure:
        return TimedFigure.of(self.name, self.times, self.nbytes, self.cpu_s if self.server else None)


class TimedRun:
    """What the volume workloads share: named series, publishing them, and running the steps so
    that ratios and notes are reported even when a step fails."""

    #: The datatype the run needs; None when the run checks for itself.
    typename: str | None = None

    def __init__(self, report: WorkloadReport) -> None:
        self.report = report
        self.series: dict[str, Series] = {}
        self.uuid: str | None = None  # None: the datatype is not served, only baselines are measured

    def new_series(self, key: str, name: str, nbytes: int, server: ServerProcess | None) -> Series:
        s = Series(name, nbytes, server)
        self.series[key] = s
        return s

    def publish(self, *keys: str) -> None:
        self.report.timed += [
            self.series[k].figure() for k in keys if k in self.series and self.series[k].times
        ]

    def ratios(self) -> list[Ratio]:
        raise NotImplementedError

    def notes(self) -> list[str]:
        return []

    def finish(self) -> None:
        """Report what was measured (runs after the steps, whether they succeeded or not)."""
        self.report.ratios = self.ratios()
        self.report.notes = [*self.notes(), *self.report.notes]

    async def run_steps(self, steps: Callable[[], Awaitable[None]]) -> None:
        try:
            await steps()
        except BenchError as exc:
            self.report.error = str(exc)
        finally:
            self.finish()
        if self.typename and self.uuid is None and not self.report.error:
            self.report.error = (
                f"{self.typename} is not served by this dvid (GET /api/help/{self.typename} is not 200):"
                " only the in-process and bare-aiohttp baselines were measured"
            )


class SessionRun(TimedRun):
    """A TimedRun whose ``steps`` talk to one dvid server over one keep-alive connection."""

    def __init__(self, report: WorkloadReport, dvid: ServerProcess) -> None:
        super().__init__(report)
        self.dvid = dvid
        self.api: DvidAPI
        self.session: aiohttp.ClientSession

    async def request(self, method: str, url: URL, body: bytes | None = None) -> bytes:
        """The body of a 200 reply, else :class:`BenchError`."""
        async with self.session.request(method, url, data=body, timeout=BIG_TIMEOUT) as resp:
            payload = await resp.read()
            if resp.status != 200:
                text = payload[:300].decode(errors="replace").strip()
                raise BenchError(f"{method} {url.path} -> {resp.status}: {text}")
            return payload

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector, timeout=BIG_TIMEOUT) as self.session:
            self.api = DvidAPI(self.session, self.dvid.base)
            await self.run_steps(self.steps)

    async def steps(self) -> None:
        raise NotImplementedError


async def _call(fn: StepFn, i: int) -> None:
    result = fn(i)
    if inspect.isawaitable(result):
        await result


async def timed(series: Series, fn: StepFn, i: int) -> None:
    server = series.server
    cpu0 = server.cpu_seconds() if server else None
    t0 = time.perf_counter()
    await _call(fn, i)
    series.times.append(time.perf_counter() - t0)
    cpu1 = server.cpu_seconds() if server else None
    if cpu0 is None or cpu1 is None or series.cpu_s is None:
        series.cpu_s = None
    else:
        series.cpu_s += cpu1 - cpu0


async def alternate(
    steps: Sequence[tuple[Series, StepFn]],
    rounds: int,
    *,
    warmup: int | None,
    idle_before: Sequence[ServerProcess] = (),
) -> None:
    """``rounds`` rounds of one timed call of every step, order rotated (and reversed every other
    round); first one untimed call of each with round number ``warmup`` unless None. With
    ``idle_before``, each call waits (untimed, a few seconds at most) for those servers and this
    process to be idle, so background LevelDB compactions of one side do not slow the other."""
    if warmup is not None:
        for _, fn in steps:
            await _call(fn, warmup)
    n = len(steps)
    for r in range(rounds):
        order = list(range(n))[r % n :] + list(range(n))[: r % n]
        if r % 2:
            order.reverse()
        for k in order:
            if idle_before:
                await settle(*idle_before, max_s=IDLE_WAIT_MAX_S)
            await timed(steps[k][0], steps[k][1], r)


async def settle(*servers: ServerProcess, max_s: float = 20.0, window: float = 0.25) -> float:
    """Wait (at most ``max_s``) until the servers and this process (the in-process store's LevelDB
    compaction threads) used under 5% of a core over ``window`` s: LevelDB flushes and compactions
    after a write phase would otherwise land in the next read phase. Returns the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < max_s:
        c0, p0 = [s.cpu_seconds() for s in servers], time.process_time()
        await asyncio.sleep(window)
        c1, p1 = [s.cpu_seconds() for s in servers], time.process_time()
        busy = [b - a for a, b in zip(c0, c1, strict=True) if a is not None and b is not None]
        if max([p1 - p0, *busy]) < 0.05 * window:
            break
    return time.monotonic() - start


def ratio(name: str, a: Series, b: Series, **kw: Any) -> Ratio:
    """Median time of ``a`` over median time of ``b``."""
    return Ratio(name, _div(a.p50, b.p50), **kw)


def per_round(a: Series, b: Series) -> list[Ratio]:
    """The median of per-round ratios (robust to drift), and the ratio of the best times (what the
    code costs when no other tenant of the machine interferes, as ``timeit`` advises)."""
    values = [x / y for x, y in zip(a.times, b.times, strict=False) if y > 0] or [math.nan]
    note = f"{len(values)} rounds, {min(values):.2f}..{max(values):.2f}"
    best = _div(min(a.times), min(b.times)) if a.times and b.times else math.nan
    return [
        Ratio("  same, median of per-round ratios", statistics.median(values), note=note),
        Ratio("  same, ratio of the best times", best),
    ]


# ---- HTTP ------------------------------------------------------------------------------------
async def fetch(session: aiohttp.ClientSession, url: URL, nbytes: int | None = None) -> bytes:
    async with session.get(url) as resp:
        body = await resp.read()
        status = resp.status
    if status != 200:
        raise BenchError(f"GET {url.path} -> {status}: {body[:300].decode(errors='replace').strip()}")
    if nbytes is not None and len(body) != nbytes:
        raise BenchError(f"GET {url.path} returned {len(body):,} bytes, expected {nbytes:,}")
    return body


async def send(session: aiohttp.ClientSession, url: URL, body: bytes) -> None:
    async with session.post(url, data=body) as resp:
        reply = await resp.read()
        status = resp.status
    if status != 200:
        raise BenchError(f"POST {url.path} -> {status}: {reply[:300].decode(errors='replace').strip()}")


async def stream(
    session: aiohttp.ClientSession, url: URL, nbytes: int, planes: dict[int, np.ndarray] | None = None
) -> None:
    """GET ``nbytes`` reading the body piece by piece without keeping it; copy the bytes of the
    z-planes in ``planes`` (z -> flat buffer of one plane) aside to check them afterwards."""
    got = 0
    async with session.get(url, timeout=BIG_TIMEOUT) as resp:
        if resp.status != 200:
            text = (await resp.content.read(300)).decode(errors="replace").strip()
            raise BenchError(f"GET {url.path} -> {resp.status}: {text}")
        async for piece in resp.content.iter_any():
            if planes:
                end = got + len(piece)
                for z, buf in planes.items():
                    lo = z * buf.size
                    a, b = max(lo, got), min(lo + buf.size, end)
                    if a < b:
                        buf[a - lo : b - lo] = np.frombuffer(piece, np.uint8, b - a, a - got)
            got += len(piece)
    if got != nbytes:
        raise BenchError(f"GET {url.path} streamed {got:,} bytes, expected {nbytes:,}")


# ---- server memory ---------------------------------------------------------------------------
_RSS_FIELDS = ("VmRSS", "VmHWM", "RssAnon", "RssFile")


def _status_kib(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon, RssFile of process ``pid`` in KiB (Linux /proc)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in _RSS_FIELDS:
                out[name] = int(value.split()[0])
    return out


class RSSWatch:
    """Peak RSS of process ``pid`` while the ``with`` block runs: VmRSS (and its anonymous and
    file-backed parts, RssAnon and RssFile) sampled every 10 ms in a thread, and VmHWM (the kernel's
    own peak, which catches what falls between samples) after a reset through ``clear_refs``."""

    def __init__(self, pid: int | None) -> None:
        if pid is None:
            raise BenchError("server process has no pid")
        self.pid = pid
        self.before: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.hwm_kib: int | None = None
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-watch", daemon=True)
        self._hwm_reset = False

    def _sample(self) -> dict[str, int]:
        status = _status_kib(self.pid)
        for name in ("VmRSS", "RssAnon", "RssFile"):
            self.peak[name] = max(self.peak.get(name, 0), status.get(name, 0))
        self.samples += 1
        return status

    def _run(self) -> None:
        while not self._stop.wait(RSS_INTERVAL_S):
            with contextlib.suppress(OSError):
                self._sample()

    def __enter__(self) -> RSSWatch:
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")  # reset the peak-RSS counter VmHWM to the current RSS (Linux >= 4.0)
            self._hwm_reset = True
        except OSError:
            pass
        self.before = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(OSError):
            status = self._sample()
            if self._hwm_reset:
                self.hwm_kib = status.get("VmHWM")

    def growth_mib(self, name: str = "VmRSS") -> float:
        """Peak minus before, in MiB (for VmRSS also counting VmHWM)."""
        peak = self.peak.get(name, 0)
        if name == "VmRSS":
            peak = max(peak, self.hwm_kib or 0)
        return (peak - self.before.get(name, 0)) / 1024


# ---- the workload ----------------------------------------------------------------------------
def image(env: Env) -> WorkloadReport:
    """uint8blk raw GET/POST figures (see the module doc)."""
    o = env.options
    report = WorkloadReport("image")
    with env.dvid("image") as dvid, env.baseline("image") as base:
        store = InprocBlocks(env._workdir("inproc-image") / "leveldb", o.image_block)
        spy = PySpy(dvid.pid, o.pyspy_dir.resolve() / "dvid-image.txt") if o.pyspy_dir else None
        try:
            with spy or contextlib.nullcontext():
                run_async(ImageRun(env, report, dvid, base, store).run())
        finally:
            store.close()
    report.notes += _profile_notes(o, "image")
    if spy is not None:
        report.notes.append(spy.top())
    return report


class ImageRun(TimedRun):
    typename = TYPENAME

    async def _send_block(self, url: URL, body: bytes, _round: int) -> None:
        await send(self.s_dvid, url, body)

    def __init__(
        self, env: Env, report: WorkloadReport, dvid: ServerProcess, base: ServerProcess, store: InprocBlocks
    ) -> None:
        super().__init__(report)
        self.o = env.options
        self.dvid = dvid
        self.base = base
        self.store = store
        self.bs = self.o.image_block
        self.rounds = self.o.image_repeats
        self.gen = EMVolumes(SEED)
        self.chunks: list[bytes] = []  # the 256^3 volumes POSTed to regions 0..rounds
        self.api: DvidAPI
        self.s_dvid: aiohttp.ClientSession
        self.s_base: aiohttp.ClientSession
        self.deep_blocks = (0, 0)  # blocks rewritten per version, blocks in the 256^3
        self.rss: dict[str, list[RSSWatch]] = {"dvid": [], "bare": []}  # per streamed GET
        self.settled: dict[str, float] = {}  # seconds waited for idle servers after write phases

    # -- helpers
    def region(self, i: int) -> Point:
        """Where the i-th 256^3 volume goes: a row along x at the origin."""
        return (EDGE * i, 0, 0)

    def array(self, i: int) -> np.ndarray:
        return np.frombuffer(self.chunks[i], np.uint8).reshape(EDGE, EDGE, EDGE)

    def raw(
        self, size: Sequence[int], offset: Sequence[int], *, uuid: str | None = None, fmt: str = ""
    ) -> URL:
        dims = {2: "xy", 3: "0_1_2"}[len(size)]
        url = self.api.raw_url(uuid or self.uuid or "", INSTANCE, dims, size, offset)
        return URL(f"{url}/{fmt}", encoded=True) if fmt else url

    def expected_row(self, x: int, y: int, z: int, n: int) -> np.ndarray:
        """The n^3 box at (x, y, z) of the row of 256^3 volumes (x may cross volume borders)."""
        parts, xx = [], x
        while xx < x + n:
            k, x0 = divmod(xx, EDGE)
            take = min(EDGE - x0, x + n - xx)
            parts.append(self.array(k)[z : z + n, y : y + n, x0 : x0 + take])
            xx += take
        return np.concatenate(parts, axis=2)

    # -- the run
    async def run(self) -> None:
        async with client_session(1) as self.s_dvid, client_session(1) as self.s_base:
            self.api = DvidAPI(self.s_dvid, self.dvid.base)
            await self.run_steps(self.steps)

    async def steps(self) -> None:
        if await self.api.has_type(TYPENAME):
            self.uuid = await self.setup_repo("bench-image")
        self.chunks = [self.gen.volume((EDGE, EDGE, EDGE)).tobytes() for _ in range(self.rounds + 1)]
        await self.post_256()
        await self.get_256()
        if self.uuid is not None:
            await self.random_64()
            await self.png_slice()
            await self.deep()
        await self.big()

    async def setup_repo(self, alias: str) -> str:
        uuid = await self.api.new_repo(alias)
        bs = self.bs
        await self.api.new_instance(uuid, TYPENAME, INSTANCE, BlockSize=f"{bs},{bs},{bs}")
        info = await self.api.call("GET", self.api.url(f"node/{uuid}/{INSTANCE}/info"))
        block = json.loads(info).get("Extended", {}).get("BlockSize")
        if list(block or []) != [bs, bs, bs]:
            raise BenchError(f"{INSTANCE} info reports BlockSize {block}, created with {bs},{bs},{bs}")
        return uuid

    async def post_256(self) -> None:
        """1. POST 256^3 to fresh offsets (region r in round r; the warm-up writes region ``rounds``)."""
        cube = (EDGE, EDGE, EDGE)
        sink = self.base.url("/sink")
        steps: list[tuple[Series, StepFn]] = [
            (
                self.new_series("ipost", "in-process POST 256^3", VOL_BYTES, None),
                lambda i: self.store.post(self.array(i), self.region(i)),
            ),
            (
                self.new_series("sink", "bare aiohttp POST 16 MiB (sink)", VOL_BYTES, self.base),
                lambda i: send(self.s_base, sink, self.chunks[i]),
            ),
        ]
        if self.uuid is not None:
            post = self.new_series("post", "dvid POST 256^3", VOL_BYTES, self.dvid)
            steps.insert(
                0, (post, lambda i: send(self.s_dvid, self.raw(cube, self.region(i)), self.chunks[i]))
            )
        await alternate(steps, self.rounds, warmup=self.rounds, idle_before=(self.dvid, self.base))
        self.publish(*[k for k in ("post", "ipost", "sink") if k in self.series])
        self.settled["after POST 256^3"] = await settle(self.dvid, self.base)
        for i in (0, self.rounds):
            if not np.array_equal(self.store.get(cube, self.region(i)), self.array(i)):
                raise BenchError("in-process GET did not return the volume POSTed (harness bug)")
            if (
                self.uuid is not None
                and await fetch(self.s_dvid, self.raw(cube, self.region(i))) != self.chunks[i]
            ):
                raise BenchError(f"dvid GET 256^3 at {self.region(i)} did not return the bytes POSTed")

    async def get_256(self) -> None:
        """2./3. GET 256^3 aligned and 200^3 unaligned vs the in-process GET and a bare 16 MiB GET."""
        cube, n = (EDGE, EDGE, EDGE), self.rounds + 1
        ux, uy, uz = UNALIGNED_OFFSET
        us = UNALIGNED_SIZE
        bare = self.base.url(f"/bytes/{VOL_BYTES}")
        steps: list[tuple[Series, StepFn]] = [
            (
                self.new_series("iget", "in-process GET 256^3", VOL_BYTES, None),
                lambda i: self.store.get(cube, self.region(i % n)),
            ),
            (
                self.new_series("bare", "bare aiohttp GET 16 MiB", VOL_BYTES, self.base),
                lambda i: fetch(self.s_base, bare, VOL_BYTES),
            ),
        ]
        if self.uuid is not None:
            unaligned = f"dvid GET {us}^3 at {ux}_{uy}_{uz} (unaligned)"
            get = self.new_series("get", "dvid GET 256^3 aligned", VOL_BYTES, self.dvid)
            unal = self.new_series("unal", unaligned, us**3, self.dvid)
            steps[:0] = [
                (get, lambda i: fetch(self.s_dvid, self.raw(cube, self.region(i % n)), VOL_BYTES)),
                (
                    unal,
                    lambda i: fetch(self.s_dvid, self.raw((us,) * 3, (EDGE * (i % n) + ux, uy, uz)), us**3),
                ),
            ]
            body = await fetch(self.s_dvid, self.raw((us,) * 3, UNALIGNED_OFFSET), us**3)
            if body != self.array(0)[uz : uz + us, uy : uy + us, ux : ux + us].tobytes():
                raise BenchError(f"dvid GET {us}^3 at {UNALIGNED_OFFSET} returned other voxels than POSTed")
        await alternate(steps, self.rounds, warmup=0)
        self.publish(*[k for k in ("get", "unal", "iget", "bare") if k in self.series])

    async def random_64(self) -> None:
        """4. 64^3 GETs at random unaligned offsets within the written row, vs a bare 256 KiB GET."""
        rnd = random.Random(SEED)
        xmax, ymax = EDGE * (self.rounds + 1) - SMALL, EDGE - SMALL
        count = self.o.image_random
        offsets = [(rnd.randint(0, xmax), rnd.randint(0, ymax), rnd.randint(0, ymax)) for _ in range(count)]
        size = (SMALL, SMALL, SMALL)
        for x, y, z in offsets[:3]:
            body = await fetch(self.s_dvid, self.raw(size, (x, y, z)), SMALL**3)
            if body != self.expected_row(x, y, z, SMALL).tobytes():
                raise BenchError(f"dvid GET 64^3 at {(x, y, z)} returned other voxels than POSTed")
        bare = self.base.url(f"/bytes/{SMALL**3}")
        steps: list[tuple[Series, StepFn]] = [
            (
                self.new_series("small", "dvid GET 64^3 at random offsets", SMALL**3, self.dvid),
                lambda i: fetch(self.s_dvid, self.raw(size, offsets[i]), SMALL**3),
            ),
            (
                self.new_series("bsmall", "bare aiohttp GET 256 KiB", SMALL**3, self.base),
                lambda i: fetch(self.s_base, bare, SMALL**3),
            ),
        ]
        await alternate(steps, count, warmup=0)
        self.publish("small", "bsmall")

    async def png_slice(self) -> None:
        """5. Write a 1024x1024x64 slab in 256x256x64 POSTs; GET a 1024x1024 xy PNG vs the raw slice."""
        sx, sy, sz = SLAB
        slab = self.gen.volume((sz, sy, sx))
        for y in range(0, sy, EDGE):
            for x in range(0, sx, EDGE):
                piece = np.ascontiguousarray(slab[:, y : y + EDGE, x : x + EDGE]).tobytes()
                await send(self.s_dvid, self.raw((EDGE, EDGE, sz), (x, y, SLAB_Z0)), piece)
        z = SLAB_Z0 + SLICE_DZ
        png_url = self.raw((sx, sy), (0, 0, z), fmt="png")
        raw_url = self.raw((sx, sy, 1), (0, 0, z))
        expected = slab[SLICE_DZ]
        try:
            decoded = decode_png_gray8(await fetch(self.s_dvid, png_url))
        except ValueError as exc:
            raise BenchError(f"dvid GET xy png: {exc}") from None
        if not np.array_equal(decoded, expected):
            raise BenchError("dvid GET xy png decodes to other voxels than POSTed")
        if await fetch(self.s_dvid, raw_url, sx * sy) != expected.tobytes():
            raise BenchError("dvid GET 1024x1024x1 returned other voxels than POSTed")
        self.settled["after the slab"] = await settle(self.dvid)
        steps: list[tuple[Series, StepFn]] = [
            (
                self.new_series("png", f"dvid GET xy {sx}x{sy} png", sx * sy, self.dvid),
                lambda i: fetch(self.s_dvid, png_url),
            ),
            (
                self.new_series("slice", f"dvid GET {sx}x{sy}x1 raw", sx * sy, self.dvid),
                lambda i: fetch(self.s_dvid, raw_url, sx * sy),
            ),
        ]
        await alternate(steps, self.rounds, warmup=None)
        self.publish("png", "slice")

    async def deep(self) -> None:
        """6. A second repo: 256^3 at the root, then ``image_depth`` x (newversion, rewrite 1% of the
        blocks, commit); GET 256^3 at the deepest version vs at the root."""
        api, bs, depth = self.api, self.bs, self.o.image_depth
        root = await self.setup_repo("bench-image-deep")
        cube = (EDGE, EDGE, EDGE)
        await send(self.s_dvid, self.raw(cube, (0, 0, 0), uuid=root), self.chunks[0])
        await api.commit(root, "bench image root")
        expected = self.array(0).copy()
        nb = EDGE // bs
        per_version = max(1, round(nb**3 / 100))
        rnd = random.Random(SEED + 1)
        node = root
        for v in range(depth):
            node = await api.newversion(node, f"bench image version {v + 1}")
            for _ in range(per_version):
                bx, by, bz = (rnd.randrange(nb) for _ in range(3))
                block = self.gen.volume((bs, bs, bs))
                await send(
                    self.s_dvid,
                    self.raw((bs, bs, bs), (bx * bs, by * bs, bz * bs), uuid=node),
                    block.tobytes(),
                )
                expected[bz * bs : (bz + 1) * bs, by * bs : (by + 1) * bs, bx * bs : (bx + 1) * bs] = block
            await api.commit(node, f"bench image commit {v + 1}")
        root_url, deep_url = self.raw(cube, (0, 0, 0), uuid=root), self.raw(cube, (0, 0, 0), uuid=node)
        if await fetch(self.s_dvid, deep_url, VOL_BYTES) != expected.tobytes():
            raise BenchError(f"dvid GET 256^3 {depth} versions deep did not return the blocks written there")
        if await fetch(self.s_dvid, root_url, VOL_BYTES) != self.chunks[0]:
            raise BenchError("dvid GET 256^3 at the root changed after writes in descendant versions")
        self.settled["after the versions"] = await settle(self.dvid)
        steps: list[tuple[Series, StepFn]] = [
            (
                self.new_series("root", "dvid GET 256^3 at root", VOL_BYTES, self.dvid),
                lambda i: fetch(self.s_dvid, root_url, VOL_BYTES),
            ),
            (
                self.new_series("deep", f"dvid GET 256^3 {depth} versions deep", VOL_BYTES, self.dvid),
                lambda i: fetch(self.s_dvid, deep_url, VOL_BYTES),
            ),
        ]
        self.deep_blocks = (per_version, nb**3)
        await alternate(steps, 2 * self.rounds, warmup=None)
        self.publish("root", "deep")

    async def big(self) -> None:
        """7. Write image_big^3 in 256^3 POSTs; stream it in one GET, watching the server's RSS."""
        b = self.o.image_big
        nbytes = b**3
        label = f"{b}^3" + (" (1 GiB)" if b == 1024 else f" ({nbytes / MiB:.0f} MiB)")
        bare_url = self.base.url(f"/stream/{nbytes}")
        steps: list[tuple[Series, StepFn]] = []
        if self.uuid is not None:
            planes = sorted({0, 1, b // 2 + 7, b - 1})
            expected = {z: np.empty((b, b), np.uint8) for z in planes}
            writes = self.new_series("bigpost", f"dvid POST 256^3 writing the {b}^3", VOL_BYTES, self.dvid)
            n = b // EDGE
            for cz in range(n):
                for cy in range(n):
                    for cx in range(n):
                        vol = self.gen.volume((EDGE, EDGE, EDGE))
                        for z in planes:
                            if cz * EDGE <= z < (cz + 1) * EDGE:
                                expected[z][cy * EDGE : (cy + 1) * EDGE, cx * EDGE : (cx + 1) * EDGE] = vol[
                                    z - cz * EDGE
                                ]
                        body = vol.tobytes()
                        url = self.raw((EDGE,) * 3, (cx * EDGE, cy * EDGE, BIG_Z0 + cz * EDGE))
                        await timed(writes, functools.partial(self._send_block, url, body), 0)
            self.publish("bigpost")
            big_url = self.raw((b, b, b), (0, 0, BIG_Z0))
            await fetch(self.s_dvid, self.raw((SMALL,) * 3, (5, 6, BIG_Z0 + 7)), SMALL**3)  # warm
            got = {z: np.empty(b * b, np.uint8) for z in planes}

            async def dvid_get(i: int) -> None:
                with RSSWatch(self.dvid.pid) as watch:
                    await stream(self.s_dvid, big_url, nbytes, got if i == 0 else None)
                self.rss["dvid"].append(watch)

            steps.append((self.new_series("big", f"dvid GET {label} streamed", nbytes, self.dvid), dvid_get))

        async def bare_get(i: int) -> None:
            with RSSWatch(self.base.pid) as watch:
                await stream(self.s_base, bare_url, nbytes)
            self.rss["bare"].append(watch)

        steps.append(
            (self.new_series("bigbare", f"bare aiohttp stream {label}", nbytes, self.base), bare_get)
        )
        self.settled[f"after the {b}^3"] = await settle(self.dvid, self.base)
        await alternate(steps, BIG_ROUNDS, warmup=None)
        if self.uuid is not None:
            for z in planes:
                if not np.array_equal(got[z].reshape(b, b), expected[z]):
                    raise BenchError(f"dvid GET {b}^3 returned other voxels than POSTed at z={BIG_Z0 + z}")
        self.publish(*[k for k in ("big", "bigbare") if k in self.series])

    # -- results
    def ratios(self) -> list[Ratio]:
        s = self.series
        out: list[Ratio] = []

        def have(*keys: str) -> bool:
            return all(k in s and s[k].times for k in keys)

        if have("get", "iget"):
            out += [
                ratio("GET 256^3 / in-process GET 256^3", s["get"], s["iget"], op="<=", target=2.5),
                *per_round(s["get"], s["iget"]),
            ]
        if have("post", "ipost"):
            out += [
                ratio("POST 256^3 / in-process POST 256^3", s["post"], s["ipost"], op="<=", target=2),
                *per_round(s["post"], s["ipost"]),
            ]
        if have("unal", "get"):
            out += [
                ratio(
                    f"GET {UNALIGNED_SIZE}^3 unaligned / 256^3 aligned",
                    s["unal"],
                    s["get"],
                    op="<=",
                    target=1.5,
                ),
                *per_round(s["unal"], s["get"]),
            ]
        if have("get", "bare"):
            out.append(ratio("GET 256^3 / bare 16 MiB GET", s["get"], s["bare"]))
        if have("post", "sink"):
            out.append(ratio("POST 256^3 / bare 16 MiB POST (sink)", s["post"], s["sink"]))
        if have("iget", "bare"):
            out.append(ratio("in-process GET 256^3 / bare 16 MiB GET", s["iget"], s["bare"]))
        if have("small", "bsmall"):
            small, bsmall = s["small"].figure(), s["bsmall"].figure()
            out += [
                Ratio("GET 64^3 random p50", small.p50_ms, unit="ms"),
                Ratio("GET 64^3 random p99", small.p99_ms, unit="ms"),
                Ratio("GET 64^3 p50 / bare 256 KiB GET p50", _div(small.p50_ms, bsmall.p50_ms)),
            ]
        if have("png", "slice"):
            out.append(ratio("GET xy 1024x1024 png / raw 1024x1024x1", s["png"], s["slice"]))
        if have("deep", "root"):
            d = self.o.image_depth
            per_version, blocks = self.deep_blocks
            note = f"{per_version} of {blocks} blocks rewritten per version"
            out += [
                ratio(f"GET 256^3 {d} deep / root", s["deep"], s["root"], op="<=", target=1.25, note=note),
                *per_round(s["deep"], s["root"]),
            ]
        rss = self.rss
        b = self.o.image_big
        if rss.get("dvid"):
            growth = max(w.growth_mib() for w in rss["dvid"])
            first = rss["dvid"][0]
            note = f"VmRSS before {first.before.get('VmRSS', 0) / 1024:.0f} MiB, {first.samples} samples"
            target: dict[str, Any] = {"op": "<", "target": RSS_TARGET_MIB}
            if b < 1024:
                target = {}
                note += f"; the < {RSS_TARGET_MIB} MiB target is for 1024^3"
            out.append(
                Ratio(f"GET {b}^3 streamed: server VmRSS growth", growth, unit="MiB", note=note, **target)
            )
            anon = max(w.growth_mib("RssAnon") for w in rss["dvid"])
            mapped = max(w.growth_mib("RssFile") for w in rss["dvid"])
            out += [
                Ratio(
                    "  of which RssAnon (heap, buffers)",
                    anon,
                    unit="MiB",
                    note="what streaming bounds",
                    **target,
                ),
                Ratio("  of which RssFile (LevelDB's mmapped tables)", mapped, unit="MiB", note="page cache"),
            ]
        if rss.get("bare"):
            growth = max(w.growth_mib() for w in rss["bare"])
            out.append(Ratio(f"bare stream {b}^3: server VmRSS growth", growth, unit="MiB"))
        if have("big", "bigbare"):
            out.append(ratio(f"GET {b}^3 streamed / bare stream (time)", s["big"], s["bigbare"]))
        if self.store.raw_bytes:
            lz4 = self.store.compression_ratio
            out.append(Ratio("lz4 stored/raw size of the test data", lz4, note="real EM ~1.0"))
        dvid_ms = {
            "GET 256^3": s["get"].p50 * 1000 if have("get") else math.nan,
            "POST 256^3": s["post"].p50 * 1000 if have("post") else math.nan,
            "GET 200^3 unaligned": s["unal"].p50 * 1000 if have("unal") else math.nan,
            "GET 64^3 p50": s["small"].figure().p50_ms if have("small") else math.nan,
        }
        for what, go in GO_MS.items():
            if not math.isnan(dvid_ms[what]):
                out.append(Ratio(f"dvid / DVID Go: {what}", _div(dvid_ms[what], go), note="Go: elsewhere"))
        return out

    def notes(self) -> list[str]:
        bs = self.bs
        return [
            f"uint8blk BlockSize {bs},{bs},{bs} (--image-block); in-process limit with the same {bs}^3"
            f" blocks. Requests one at a time on one keep-alive connection; {self.rounds} interleaved"
            " rounds per figure. Waited for idle CPU (LevelDB compactions) after writes: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in self.settled.items()),
            GO_NOTE,
        ]
