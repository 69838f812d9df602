"""The ``soak`` workload: a mixed load for minutes; is the server's memory flat once warm?

``python -m bench soak [--minutes N] [--engine leveldb|postgres] [--memory-debug] [--tracemalloc F]
[--max-open-files N]``

One dvid server in its own process (its RSS and open files read from /proc), 16 keep-alive
connections (``--concurrency``) from one asyncio client, each issuing back to back a request
drawn at random from this mix (weights in :data:`MIX`):

- ``kv`` GET and POST of 2 KiB values on 1,000 fixed keys;
- ``uint8blk`` (BlockSize 32) GET of 64^3 at random offsets in a 512x512x128 EM-like volume, and
  POST of 32^3 blocks at random aligned offsets in it;
- ``labelblk`` (BlockSize 64, 256x256x64, 16 blocks of 8 bodies of 32^3) xy PNG slices, GET label
  at a point; ``labelvol`` sparsevol of a body; label edits, synced to the labelvol and the
  annotation: connection i cycles through merge [L0, L1], split of L1's old voxels off L0, and a raw
  POST that restores its own block (so bodies stay bounded);
- ``annotation`` (synced to the labelblk) POST of 16 elements at one of 64 fixed sets of positions
  (the elements are replaced, the data stops growing), GET of the elements in a 64^3 box, GET of
  the elements of a body.

Every ``VERSION_EVERY_S`` the open version is committed and a child made (writes pause until the
writes in flight are done; they then go to the child), so versions accumulate and per-version
state must stay bounded. Every 30 s a line: elapsed, requests, req/min, errors, p50/p99, server
RSS (anonymous and file-backed), the store's size on disk, open files, versions, server and client
CPU. At the end: growth after the warm-up (the first 2 minutes or 20% of the run, whichever is
shorter) of RSS and of its anonymous part, each against < 10% (the medians of the first and the
last ``GROWTH_WINDOW_S`` seconds after the warm-up, so one sample does not decide it), and of the
file-backed part (LevelDB's memory-mapped tables: page cache, bounded by ``MaxOpenFiles`` and the
store's size).

``--memory-debug`` adds a second line from the server's ``GET /bench/memory`` (bench/memdebug.py:
LevelDB's memory, malloc's in-use and free-held bytes, gc objects, ancestry cache entries);
``--tracemalloc F`` also traces the server's allocations (F frames; slow) and prints at the end the
lines whose allocations grew most after the warm-up.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from yarl import URL

from bench.dvidapi import DvidAPI
from bench.harness import BenchError, LoadResult, ServerProcess, percentile, run_async
from bench.imgbase import EMVolumes
from bench.labelvol import sparsevol_body
from bench.report import LoadFigure, Ratio, WorkloadReport, _fmt
from bench.workloads import Env

REPORT_EVERY_S = 30.0
SAMPLE_EVERY_S = 5.0
VERSION_EVERY_S = 60.0
WARMUP_MAX_S = 120.0
WARMUP_FRACTION = 0.2
RSS_GROWTH_TARGET_PCT = 10.0
#: Seconds of samples whose median stands for the start and for the end of the measured run.
GROWTH_WINDOW_S = 120.0
REQUEST_TIMEOUT_S = 60.0

KV = "kv"
KV_KEYS = 1000
KV_VALUE_BYTES = 2048
GREY = "grey"
GREY_BS = 32
GREY_SHAPE = (128, 512, 512)  # z, y, x
READ_EDGE = 64
SEG = "seg"
BODIES = "bodies"
SEG_BS = 64
SEG_GRID = (4, 4)  # blocks along x, y (one block deep): one block per editing connection
SEG_SHAPE = (SEG_BS, SEG_GRID[1] * SEG_BS, SEG_GRID[0] * SEG_BS)  # z, y, x
HALF = SEG_BS // 2
SYN = "synapses"
N_POSITIONS = 1024
ANN_BATCH = 16

#: Request kinds and their weights (percent of requests).
MIX: dict[str, int] = {
    "kv GET": 30,
    "kv POST": 10,
    "grey GET 64^3": 20,
    "grey POST 32^3 block": 6,
    "seg GET xy slice": 5,
    "seg GET label": 8,
    "seg edit": 1,
    "bodies GET sparsevol": 3,
    "synapses POST elements": 4,
    "synapses GET elements": 8,
    "synapses GET label": 5,
}
WRITES = frozenset({"kv POST", "grey POST 32^3 block", "seg edit", "synapses POST elements"})


def warmup_seconds(total_s: float) -> float:
    """The first 2 minutes or 20% of the run, whichever is shorter."""
    return min(WARMUP_MAX_S, WARMUP_FRACTION * total_s)


def body_label(block: int, cube: int) -> int:
    """The label of 32^3 cube ``cube`` (x + 2y + 4z bits) of seg block ``block`` as first written."""
    return 100 * (block + 1) + cube


def seg_block(block: int) -> np.ndarray:
    """Block ``block``'s (z, y, x) uint64 labels as first written: eight 32^3 bodies."""
    z, y, x = np.ogrid[0:SEG_BS, 0:SEG_BS, 0:SEG_BS]
    cube = (x >= HALF) + 2 * (y >= HALF) + 4 * (z >= HALF)
    return (body_label(block, 0) + cube).astype("<u8")


def block_origin(block: int) -> tuple[int, int, int]:
    """(x, y, z) of seg block ``block``."""
    return (block % SEG_GRID[0]) * SEG_BS, (block // SEG_GRID[0]) * SEG_BS, 0


def cube1_sparsevol(block: int) -> bytes:
    """A legacy sparsevol of cube 1 (x >= 32, y < 32, z < 32) of seg block ``block``."""
    x0, y0, z0 = block_origin(block)
    zz, yy = np.meshgrid(np.arange(HALF), np.arange(HALF), indexing="ij")
    n = zz.size
    runs = np.stack([np.full(n, x0 + HALF), y0 + yy.ravel(), z0 + zz.ravel(), np.full(n, HALF)], axis=1)
    return sparsevol_body(runs)


def seg_volume() -> np.ndarray:
    vol = np.empty(SEG_SHAPE, "<u8")
    for b in range(SEG_GRID[0] * SEG_GRID[1]):
        x0, y0, _ = block_origin(b)
        vol[:, y0 : y0 + SEG_BS, x0 : x0 + SEG_BS] = seg_block(b)
    return vol


def annotation_bodies(rng: random.Random) -> list[bytes]:
    """64 sets of 16 element positions in the seg volume, two JSON bodies each (Prop differs)."""
    seen: set[tuple[int, int, int]] = set()
    while len(seen) < N_POSITIONS:
        seen.add((rng.randrange(SEG_SHAPE[2]), rng.randrange(SEG_SHAPE[1]), rng.randrange(SEG_SHAPE[0])))
    positions = sorted(seen)
    rng.shuffle(positions)
    bodies = []
    for g in range(0, N_POSITIONS, ANN_BATCH):
        for variant in ("a", "b"):
            elements = [
                {
                    "Pos": list(p),
                    "Kind": "PreSyn" if i % 2 else "PostSyn",
                    "Tags": ["soak"],
                    "Prop": {"v": variant},
                }
                for i, p in enumerate(positions[g : g + ANN_BATCH])
            ]
            bodies.append(json.dumps(elements).encode())
    return bodies


# ---- measurements ----------------------------------------------------------------------------
@dataclass
class Sample:
    """The server's memory and open files at ``t`` s: RSS = anonymous (private: heap, caches,
    buffers) + file-backed (mapped files: libraries and LevelDB's memory-mapped table files)."""

    t: float
    rss_kib: int
    anon_kib: int
    file_kib: int
    files: int

    @classmethod
    def of(cls, pid: int, t: float) -> Sample:
        kib: dict[str, int] = {}
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "RssAnon", "RssFile"):
                    kib[name] = int(value.split()[0])
        if "VmRSS" not in kib:
            raise BenchError(f"no VmRSS for process {pid}")
        return cls(t, kib["VmRSS"], kib.get("RssAnon", 0), kib.get("RssFile", 0), open_files(pid))


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def store_mib(path: Path) -> float | None:
    """Bytes on disk under a LevelDB store directory (None where there is none: postgres)."""
    try:
        return sum(e.stat().st_size for e in os.scandir(path) if e.is_file()) / (1 << 20)
    except OSError:
        return None


@dataclass
class Window:
    """Requests finished in one reporting window."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0


@dataclass
class Row:
    """One printed line."""

    t: float
    requests: int
    per_min: float
    errors: int
    p50_ms: float
    p99_ms: float
    sample: Sample
    store_mib: float | None
    versions: int
    server_cpu_pct: float
    client_cpu_pct: float


class VersionGate:
    """Writes go to the open version; :meth:`advance` lets the writes in flight finish, holds new
    ones, commits, makes the child and lets writes go on there. Reads use whatever is current."""

    def __init__(self, uuid: str) -> None:
        self.uuid = uuid
        self._open = asyncio.Event()
        self._open.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._writers = 0

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[str]:
        while not self._open.is_set():
            await self._open.wait()
        self._writers += 1
        self._idle.clear()
        try:
            yield self.uuid
        finally:
            self._writers -= 1
            if self._writers == 0:
                self._idle.set()

    async def advance(self, api: DvidAPI, note: str) -> None:
        self._open.clear()
        try:
            await self._idle.wait()
            await api.commit(self.uuid, note)
            self.uuid = await api.newversion(self.uuid, note)
        finally:
            self._open.set()


# ---- the run ---------------------------------------------------------------------------------
class SoakRun:
    def __init__(self, env: Env, dvid: ServerProcess, minutes: float) -> None:
        self.env = env
        self.o = env.options
        self.dvid = dvid
        if dvid.pid is None:
            raise BenchError("dvid server has no pid")
        self.pid: int = dvid.pid
        self.total_s = minutes * 60
        self.warmup_s = warmup_seconds(self.total_s)
        self.concurrency = self.o.concurrency
        self.memory_debug = self.o.soak_memory_debug or bool(self.o.soak_tracemalloc)
        self.root = ""
        self.gate: VersionGate
        self.window = Window()
        self.per_op = {name: LoadResult(name) for name in MIX}
        self.total = LoadResult("all requests")
        self.rows: list[Row] = []
        self.samples: list[Sample] = []
        self.memory: list[tuple[float, dict[str, Any]]] = []
        self.switch_ms: list[float] = []
        self.trimmed: dict[str, Any] = {}
        self.errors: list[str] = []
        self.versions = 1
        self.cpu_s = 0.0
        rng = random.Random(11)
        self.kv_values = [rng.randbytes(KV_VALUE_BYTES) for _ in range(16)]
        em = EMVolumes(seed=5)
        self.grey = em.volume(GREY_SHAPE)
        self.grey_blocks = [em.volume((GREY_BS,) * 3).tobytes() for _ in range(8)]
        self.seg_blocks = [seg_block(b).tobytes() for b in range(SEG_GRID[0] * SEG_GRID[1])]
        self.splits = [cube1_sparsevol(b) for b in range(len(self.seg_blocks))]
        self.ann = annotation_bodies(rng)
        self.edit_step = [0] * self.concurrency

    def url(self, uuid: str, path: str) -> URL:
        return URL(f"{self.dvid.base}/api/node/{uuid}/{path}", encoded=True)

    # ---- setup ---------------------------------------------------------------------------------
    async def setup(self, api: DvidAPI) -> None:
        self.root = uuid = await api.new_repo("soak")
        await api.new_keyvalue(uuid, KV)
        await api.new_instance(uuid, "uint8blk", GREY, BlockSize=f"{GREY_BS},{GREY_BS},{GREY_BS}")
        await api.new_instance(uuid, "labelblk", SEG, BlockSize=f"{SEG_BS},{SEG_BS},{SEG_BS}")
        await api.new_instance(uuid, "labelvol", BODIES, BlockSize=f"{SEG_BS},{SEG_BS},{SEG_BS}")
        await api.new_instance(uuid, "annotation", SYN)
        for name, target in ((BODIES, SEG), (SEG, BODIES), (SYN, SEG)):
            await api.call("POST", api.url(f"node/{uuid}/{name}/sync"), json_body={"sync": target})
        nz, ny, nx = GREY_SHAPE
        await api.call("POST", api.raw_url(uuid, GREY, "0_1_2", (nx, ny, nz), (0, 0, 0)), self.grey.tobytes())
        nz, ny, nx = SEG_SHAPE
        await api.call(
            "POST", api.raw_url(uuid, SEG, "0_1_2", (nx, ny, nz), (0, 0, 0)), seg_volume().tobytes()
        )
        items = [(f"key-{i:05d}", self.kv_values[i % 16]) for i in range(KV_KEYS)]
        await api.put_keys(uuid, KV, items, self.concurrency)
        for body in self.ann[::2]:
            await api.call("POST", self.url(uuid, f"{SYN}/elements"), body)
        self.gate = VersionGate(uuid)

    # ---- requests ------------------------------------------------------------------------------
    def request_for(
        self, op: str, uuid: str, rnd: random.Random, worker: int
    ) -> tuple[str, URL, bytes | None]:
        if op == "kv GET":
            return "GET", self.url(uuid, f"{KV}/key/key-{rnd.randrange(KV_KEYS):05d}"), None
        if op == "kv POST":
            key = f"{KV}/key/key-{rnd.randrange(KV_KEYS):05d}"
            return "POST", self.url(uuid, key), self.kv_values[rnd.randrange(16)]
        if op == "grey GET 64^3":
            nz, ny, nx = GREY_SHAPE
            x, y, z = (rnd.randrange(n - READ_EDGE + 1) for n in (nx, ny, nz))
            return "GET", self.url(uuid, f"{GREY}/raw/0_1_2/64_64_64/{x}_{y}_{z}"), None
        if op == "grey POST 32^3 block":
            nz, ny, nx = GREY_SHAPE
            x, y, z = (GREY_BS * rnd.randrange(n // GREY_BS) for n in (nx, ny, nz))
            body = self.grey_blocks[rnd.randrange(len(self.grey_blocks))]
            return "POST", self.url(uuid, f"{GREY}/raw/0_1_2/32_32_32/{x}_{y}_{z}"), body
        if op == "seg GET xy slice":
            nz, ny, nx = SEG_SHAPE
            return "GET", self.url(uuid, f"{SEG}/raw/0_1/{nx}_{ny}/0_0_{rnd.randrange(nz)}"), None
        if op == "seg GET label":
            x, y, z = (rnd.randrange(n) for n in SEG_SHAPE[::-1])
            return "GET", self.url(uuid, f"{SEG}/label/{x}_{y}_{z}"), None
        if op == "seg edit":
            return self.edit_request(uuid, worker)
        if op == "bodies GET sparsevol":
            label = body_label(rnd.randrange(len(self.seg_blocks)), rnd.choice((0, 2, 3, 4, 5, 6, 7)))
            return "GET", self.url(uuid, f"{BODIES}/sparsevol/{label}"), None
        if op == "synapses POST elements":
            return "POST", self.url(uuid, f"{SYN}/elements"), self.ann[rnd.randrange(len(self.ann))]
        if op == "synapses GET elements":
            x, y, z = (rnd.randrange(n - READ_EDGE + 1) for n in SEG_SHAPE[::-1])
            return "GET", self.url(uuid, f"{SYN}/elements/64_64_64/{x}_{y}_{z}"), None
        if op == "synapses GET label":
            label = body_label(rnd.randrange(len(self.seg_blocks)), rnd.choice((0, 2, 3, 4, 5, 6, 7)))
            return "GET", self.url(uuid, f"{SYN}/label/{label}"), None
        raise BenchError(f"unknown request kind {op!r} (harness bug)")

    def edit_request(self, uuid: str, worker: int) -> tuple[str, URL, bytes | None]:
        """Connection ``worker``'s next edit of its own seg block: merge, split, restore."""
        block = worker % len(self.seg_blocks)
        step = self.edit_step[worker] % 3
        self.edit_step[worker] += 1
        l0, l1 = body_label(block, 0), body_label(block, 1)
        if step == 0:
            return "POST", self.url(uuid, f"{BODIES}/merge"), json.dumps([l0, l1]).encode()
        if step == 1:
            return "POST", self.url(uuid, f"{BODIES}/split/{l0}"), self.splits[block]
        x, y, z = block_origin(block)
        return "POST", self.url(uuid, f"{SEG}/raw/0_1_2/64_64_64/{x}_{y}_{z}"), self.seg_blocks[block]

    async def send(
        self, session: aiohttp.ClientSession, op: str, method: str, url: URL, body: bytes | None
    ) -> None:
        t0 = time.perf_counter()
        try:
            async with session.request(method, url, data=body) as resp:
                payload = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            status, payload = -1, f"{type(exc).__name__}: {exc}".encode()
        dt = time.perf_counter() - t0
        ok = status == 200
        self.window.latencies.append(dt)
        stats = self.per_op[op]
        stats.latencies.append(dt)
        if not ok:
            self.window.errors += 1
            stats.errors += 1
            if len(self.errors) < 10:
                text = payload[:200].decode(errors="replace").strip()
                self.errors.append(f"{method} {url.path} -> {status}: {text}")

    async def worker(self, session: aiohttp.ClientSession, i: int, deadline: float) -> None:
        rnd = random.Random(1000 + i)
        ops, weights = list(MIX), list(MIX.values())
        editor = i < len(self.seg_blocks)
        while time.monotonic() < deadline:
            op = rnd.choices(ops, weights)[0]
            if op == "seg edit" and not editor:
                op = "kv GET"
            if op in WRITES:
                async with self.gate.writing() as uuid:
                    await self.send(session, op, *self.request_for(op, uuid, rnd, i))
            else:
                await self.send(session, op, *self.request_for(op, self.gate.uuid, rnd, i))

    # ---- background tasks ----------------------------------------------------------------------
    async def versioner(self, api: DvidAPI, start: float) -> None:
        n = 0
        while True:
            n += 1
            await asyncio.sleep(start + n * VERSION_EVERY_S - time.monotonic())
            t0 = time.perf_counter()
            await self.gate.advance(api, f"soak minute {n}")
            self.switch_ms.append(1000 * (time.perf_counter() - t0))

    async def sampler(self, start: float) -> None:
        n = 0
        while True:
            self.samples.append(Sample.of(self.pid, time.monotonic() - start))
            n += 1
            await asyncio.sleep(max(0.0, start + n * SAMPLE_EVERY_S - time.monotonic()))

    async def count_versions(self, api: DvidAPI) -> int:
        info = json.loads(await api.call("GET", api.url(f"repo/{self.root}/info")))
        return len(info["DAG"]["Nodes"])

    async def memory_stats(self, session: aiohttp.ClientSession, query: str = "") -> dict[str, Any]:
        async with session.get(URL(f"{self.dvid.base}/bench/memory{query}", encoded=True)) as resp:
            if resp.status != 200:
                raise BenchError(
                    f"GET /bench/memory -> {resp.status} (server started without --memory-debug?)"
                )
            return dict(await resp.json())

    async def reporter(self, api: DvidAPI, session: aiohttp.ClientSession, start: float) -> None:
        n = 0
        cpu0, client0 = self.dvid.cpu_seconds() or 0.0, time.process_time()
        baseline_taken = False
        while True:
            n = max(n + 1, int((time.monotonic() - start) // REPORT_EVERY_S) + 1)  # a stall skips lines
            await asyncio.sleep(max(0.0, start + n * REPORT_EVERY_S - time.monotonic()))
            await self.report_line(api, session, start, cpu0, client0)
            cpu0, client0 = self.dvid.cpu_seconds() or 0.0, time.process_time()
            if self.o.soak_tracemalloc and not baseline_taken and time.monotonic() - start >= self.warmup_s:
                await self.memory_stats(session, "?baseline=1")
                baseline_taken = True

    async def report_line(
        self, api: DvidAPI, session: aiohttp.ClientSession, start: float, cpu0: float, client0: float
    ) -> None:
        window, self.window = self.window, Window()
        t = time.monotonic() - start
        seconds = t - (self.rows[-1].t if self.rows else 0.0)
        lat = sorted(window.latencies)
        self.versions = await self.count_versions(api)
        cpu = (self.dvid.cpu_seconds() or 0.0) - cpu0
        row = Row(
            t=t,
            requests=len(lat),
            per_min=60 * len(lat) / seconds if seconds > 0 else 0.0,
            errors=window.errors,
            p50_ms=1000 * percentile(lat, 50),
            p99_ms=1000 * percentile(lat, 99),
            sample=Sample.of(self.pid, t),
            store_mib=store_mib(self.dvid.workdir / "store"),
            versions=self.versions,
            server_cpu_pct=100 * cpu / seconds if seconds > 0 else 0.0,
            client_cpu_pct=100 * (time.process_time() - client0) / seconds if seconds > 0 else 0.0,
        )
        self.rows.append(row)
        m = row.sample
        print(
            f"{row.t:6.0f} s {row.requests:>9,} {row.per_min:>9,.0f} {row.errors:>6} {row.p50_ms:>7.1f}"
            f" {row.p99_ms:>7.1f} {m.rss_kib / 1024:>8.1f} {m.anon_kib / 1024:>5.0f}"
            f" {m.file_kib / 1024:>5.0f} {_fmt(row.store_mib, '.0f'):>6} {m.files:>6} {row.versions:>8}"
            f" {row.server_cpu_pct:>6.0f}% {row.client_cpu_pct:>6.0f}%",
            flush=True,
        )
        if self.memory_debug:
            stats = await self.memory_stats(session)
            self.memory.append((t, stats))
            print("         " + memory_line(stats), flush=True)

    # ---- driver --------------------------------------------------------------------------------
    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=self.concurrency)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            aiohttp.ClientSession(timeout=timeout) as control,
        ):
            api = DvidAPI(control, self.dvid.base)
            await self.setup(api)
            print(self.header(), flush=True)
            start = time.monotonic()
            self.cpu_s = -(self.dvid.cpu_seconds() or 0.0)
            deadline = start + self.total_s
            background = [
                asyncio.create_task(self.sampler(start)),
                asyncio.create_task(self.versioner(api, start)),
                asyncio.create_task(self.reporter(api, control, start)),
            ]
            try:
                await asyncio.gather(*(self.worker(session, i, deadline) for i in range(self.concurrency)))
            finally:
                for task in background:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)
            self.cpu_s += self.dvid.cpu_seconds() or 0.0
            if self.window.latencies and time.monotonic() - start - (self.rows[-1].t if self.rows else 0) > 1:
                await self.report_line(
                    api, control, start, self.dvid.cpu_seconds() or 0.0, time.process_time()
                )
            self.samples.append(Sample.of(self.pid, time.monotonic() - start))
            if self.o.soak_tracemalloc:
                self.print_grown(await self.memory_stats(control))
            if self.memory_debug:  # free-but-held heap memory (fragmentation) vs memory in use
                self.trimmed = await self.memory_stats(control, "?trim=1")

    def header(self) -> str:
        engine = "postgres" if self.o.postgres_dsn else "leveldb"
        return (
            f"soak: {engine}, {self.concurrency} connections, {self.total_s / 60:g} min, warm-up"
            f" {self.warmup_s:.0f} s, a commit + newversion every {VERSION_EVERY_S:.0f} s;"
            f" server pid {self.pid}\n"
            f"{'time':>8} {'requests':>9} {'req/min':>9} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7}"
            f" {'RSS MiB':>8} {'anon':>5} {'file':>5} {'store':>6} {'files':>6} {'versions':>8}"
            f" {'srv CPU':>7} {'cli CPU':>7}"
        )

    @staticmethod
    def print_grown(stats: dict[str, Any]) -> None:
        grown = stats.get("tracemalloc", {}).get("grown", [])
        print("server allocations grown most since the warm-up (tracemalloc):", flush=True)
        for g in grown:
            print(f"  {g['kib']:>8,} KiB {g['count']:>+8,} blocks  {' <- '.join(reversed(g['where']))}")

    # ---- results -------------------------------------------------------------------------------
    def rss_at(self, t: float) -> Sample:
        """The first sample at or after ``t`` s (the last one if none)."""
        return next((s for s in self.samples if s.t >= t), self.samples[-1])

    def report(self, report: WorkloadReport) -> None:
        warm, end = self.rss_at(self.warmup_s), self.samples[-1]
        after = [s for s in self.samples if s.t >= warm.t]
        minutes = (end.t - warm.t) / 60

        def growth(kib: Callable[[Sample], int], what: str, target: float | None) -> list[Ratio]:
            # medians of the first and the last GROWTH_WINDOW_S seconds after the warm-up, so one
            # sample taken just before a heap trim or a compaction does not decide the figure
            window = min(GROWTH_WINDOW_S, (end.t - warm.t) / 3)
            first = [s for s in after if s.t <= warm.t + window] or after[:1]
            last = [s for s in after if s.t >= end.t - window] or after[-1:]
            a, b = statistics.median(map(kib, first)), statistics.median(map(kib, last))
            pct = 100 * (b - a) / a if a else float("nan")
            xs = [s.t / 60 for s in after]
            slope = (
                statistics.linear_regression(xs, [kib(s) / 1024 for s in after]).slope
                if len(after) > 1 and minutes > 0
                else float("nan")
            )
            peak = max(kib(s) for s in after) / 1024
            name = (
                f"{what} growth after warm-up (median {a / 1024:.0f} MiB over"
                f" {first[0].t:.0f}-{first[-1].t:.0f} s -> {b / 1024:.0f}"
                f" over {last[0].t:.0f}-{last[-1].t:.0f} s)"
            )
            return [
                Ratio(name, pct, unit="%", op="<" if target else "", target=target),
                Ratio(
                    f"  {what} slope after warm-up (least squares)",
                    slope,
                    unit="MiB/min",
                    note=f"peak {peak:.0f} MiB",
                ),
            ]

        for res in self.per_op.values():
            res.requests = len(res.latencies)
            res.seconds = self.total_s
            res.server_cpu_s = None
            self.total.add(res)
        self.total.requests = sum(r.requests for r in self.per_op.values())
        self.total.seconds = self.total_s
        self.total.server_cpu_s = self.cpu_s
        report.loads = [
            LoadFigure.of(self.total),
            *(LoadFigure.of(r) for r in self.per_op.values() if r.requests),
        ]
        for fig in report.loads:
            fig.first_error = ""
        rows = self.rows
        report.ratios = [
            *growth(lambda s: s.rss_kib, "RSS", RSS_GROWTH_TARGET_PCT),
            *growth(lambda s: s.anon_kib, "private (anon) RSS", RSS_GROWTH_TARGET_PCT),
            *growth(lambda s: s.file_kib, "file-backed RSS", None),
            Ratio("requests per minute", 60 * self.total.requests / self.total_s, unit="req/min"),
            Ratio("errors", float(self.total.errors), unit="", op="<=", target=0),
            Ratio("p99 first window", rows[0].p99_ms if rows else float("nan"), unit="ms"),
            Ratio("p99 last window", rows[-1].p99_ms if rows else float("nan"), unit="ms"),
            Ratio("open files at warm-up / end", float(end.files), unit="", note=f"{warm.files} at warm-up"),
            Ratio("versions at end", float(self.versions), unit=""),
        ]
        if self.switch_ms:
            report.ratios.append(
                Ratio("commit + newversion (writes paused), max", max(self.switch_ms), unit="ms")
            )
        report.notes.append(
            "RSS MiB every 30 s: " + ", ".join(f"{r.sample.rss_kib / 1024:.0f}" for r in rows)
            + "; anon: " + ", ".join(f"{r.sample.anon_kib / 1024:.0f}" for r in rows)
            + "; file: " + ", ".join(f"{r.sample.file_kib / 1024:.0f}" for r in rows)
            + "; store on disk: " + ", ".join(_fmt(r.store_mib, ".0f") for r in rows)
            + "; p99 ms: " + ", ".join(f"{r.p99_ms:.0f}" for r in rows)
        )  # fmt: skip
        if self.memory:
            first, last = self.memory[0][1], self.memory[-1][1]
            report.notes.append(f"server memory first: {memory_line(first)}")
            report.notes.append(f"server memory last:  {memory_line(last)}")
        if self.trimmed:
            anon = self.trimmed["rss"]["RssAnon"] / 1024
            freed = self.trimmed["trimmed_kib"] / 1024
            report.notes.append(
                f"malloc_trim(0) in the server at the end gave back {freed:.0f} MiB of free heap memory"
                f" held by the allocator: anon {end.anon_kib / 1024:.0f} -> {anon:.0f} MiB"
            )
        report.notes += [f"error: {e}" for e in self.errors]


def memory_line(stats: dict[str, Any]) -> str:
    """One line of /bench/memory figures, in MiB unless named."""
    m, py, dag = stats.get("malloc", {}), stats["python"], stats["dag"]
    ldb = sum(v or 0 for v in stats["leveldb"].values())
    mib = 1024.0
    parts = [
        f"anon {stats['rss'].get('RssAnon', 0) / mib:.0f} file {stats['rss'].get('RssFile', 0) / mib:.0f}",
        f"leveldb {ldb / mib:.0f}",
        f"malloc used {m.get('uordblks', 0) / mib:.0f} free {m.get('fordblks', 0) / mib:.0f}"
        f" mmap {m.get('hblkhd', 0) / mib:.0f}",
        f"py blocks {py['allocated_blocks'] / 1e6:.2f}M objs {py['gc_objects'] / 1e6:.2f}M"
        f" gc{'' if py['gc_enabled'] else ' OFF'} {py['gc_collections']}",
        f"ancestries cached {dag['ancestries_cached']}/{dag['versions']}",
        f"buffers {stats['buffers']['idle_kib'] / mib:.0f}",
        f"threads {py['threads']}",
    ]
    if "tracemalloc" in stats:
        parts.append(f"traced {stats['tracemalloc']['current_kib'] / mib:.0f}")
    return ", ".join(parts)


def soak(env: Env) -> WorkloadReport:
    """The soak (see the module doc); ``--minutes`` long."""
    report = WorkloadReport("soak")
    extra: list[str] = []
    if env.options.soak_memory_debug:
        extra.append("--memory-debug")
    if env.options.soak_tracemalloc:
        extra += ["--tracemalloc", str(env.options.soak_tracemalloc)]
    run = None
    with env.dvid("soak", extra_args=extra) as dvid:
        run = SoakRun(env, dvid, env.options.soak_minutes)
        run_async(run.run())
        run.report(report)
    return report
