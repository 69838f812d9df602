"""The workloads: ``kv`` (keyvalue GET/POST vs bare aiohttp), ``deep`` (a read 100 versions deep vs
at the root) and ``inproc`` (in-process limits). Each returns a :class:`WorkloadReport`."""

from __future__ import annotations

import pstats
import random
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from yarl import URL

from bench import inproc
from bench.dvidapi import DvidAPI
from bench.harness import (
    BenchError,
    LoadResult,
    Phase,
    RequestFn,
    ServerProcess,
    client_session,
    interleaved,
    run_async,
)
from bench.report import InprocFigure, LoadFigure, Ratio, WorkloadReport

INSTANCE = "kv"
MAX_REQUESTS_PER_ROUND = 500_000


@dataclass(frozen=True)
class Options:
    """Sizes and durations of a run (``--quick`` shrinks them)."""

    seconds: float = 5.0  # measured seconds per HTTP phase (split over the rounds)
    warmup: float = 1.0  # seconds of unmeasured load per phase before measuring
    rounds: int = 5  # interleaved rounds in kv
    deep_rounds: int = 10  # interleaved rounds in deep
    concurrency: int = 16
    keys: int = 1000  # keys written before the HTTP GET phases
    depth: int = 100  # commits between the root and the deep version
    inproc_keys: int = 10_000
    repeats: int = 60  # alternating timed passes per in-process figure (of inproc.PASS_OPS ops each)
    access_log: bool = True  # dvid's default
    profile_dir: Path | None = None
    pyspy_dir: Path | None = None  # image: py-spy record the dvid server (all threads) into this dir
    postgres_dsn: str | None = None  # --engine postgres: dvid servers store in tables of this database
    # image (bench/images.py)
    image_block: int = 32  # uint8blk BlockSize edge (DVID's default; neuroglancer-oriented stores use 64)
    image_repeats: int = 15  # interleaved rounds (one timed request per alternative) per image figure
    image_random: int = 50  # random 64^3 GETs
    image_depth: int = 50  # versions (1% of the blocks rewritten in each) above the deep read
    image_big: int = 1024  # edge of the volume written and then streamed in one GET (1024: 1 GiB)
    # labels (bench/labels.py)
    labels_repeats: int = 15  # interleaved rounds (one timed request per alternative) per labels figure
    labels_random: int = 50  # random 64^3 GETs
    labels_points: int = 1000  # points per GET labels
    labels_codec_passes: int = 5  # alternating passes per block codec (best reported)
    # labelmap-codec (bench/labelmap_codec.py)
    codec_rounds: int = 100  # interleaved rounds per figure (random-10 encode: a quarter)
    # labelmap (bench/labelmap.py)
    labelmap_repeats: int = 15  # rounds of each labelmap read figure (googlegzip: 3x)
    labelmap_edits: int = 7  # repeats of each labelmap edit and write figure
    # labelvol (bench/labelvol.py)
    labelvol_repeats: int = 5  # timed repeats of each labelvol figure (merge/split: one fresh version each)
    # neuronjson (bench/neuronjson.py)
    neuronjson_records: int = 100_000  # annotations loaded before the queries
    neuronjson_repeats: int = 15  # timed repeats of each query (HTTP and in process, alternating)
    # soak (bench/soak.py)
    soak_minutes: float = 10.0
    soak_memory_debug: bool = False  # the server serves GET /bench/memory; a breakdown line per report
    soak_tracemalloc: int = 0  # frames the server's tracemalloc keeps (0: off)
    max_open_files: int | None = None  # dvid's LevelDB MaxOpenFiles (None: dvid's default)
    # console (bench/console.py)
    console_planes: int = 40  # plane changes timed in the browser
    console_scroll_seconds: float = 5.0  # seconds of wheel events for the scroll rate
    # client (bench/client.py)
    client_edge: int = 512  # edge of the uint8 box read and written through dvid.api
    client_repeats: int = 7  # interleaved rounds of each client figure
    # cutout (bench/cutout.py)
    cutout_repeats: int = 7  # timed GETs of each answer (raw, npz, hdf5, tiff, blosc) per volume
    cutout_gray_edge: int = 512  # edge of the uint8 box (the labelmap box is 256^3)
    # ingest (bench/ingest.py): an ingest_edge^2 x ingest_depth uint8 volume; raw 256^3 POSTs for the limit
    ingest_edge: int = 1024
    ingest_depth: int = 512
    ingest_workers: int = 4
    ingest_raw_repeats: int = 8

    @classmethod
    def quick(cls) -> Options:
        return cls(
            seconds=2.0,
            warmup=0.5,
            rounds=2,
            deep_rounds=4,
            keys=200,
            inproc_keys=2000,
            repeats=20,
            image_repeats=5,
            image_big=512,
            labels_repeats=5,
            labels_codec_passes=2,
            codec_rounds=20,
            labelvol_repeats=2,
            labelmap_repeats=5,
            labelmap_edits=3,
            console_planes=10,
            console_scroll_seconds=1.5,
            cutout_repeats=2,
            cutout_gray_edge=256,
            neuronjson_records=20_000,
            neuronjson_repeats=5,
            client_edge=256,
            client_repeats=3,
            ingest_edge=512,
            ingest_depth=128,
            ingest_raw_repeats=4,
        )

    def with_overrides(self, **changes: Any) -> Options:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


class Env:
    """Starts servers for the workloads, each in its own temp dir under ``tmp_root``."""

    def __init__(self, options: Options, tmp_root: Path) -> None:
        self.options = options
        self.tmp_root = tmp_root

    def _workdir(self, label: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=self.tmp_root))

    def dvid(
        self, label: str, *, access_log: bool | None = None, extra_args: Sequence[str] = ()
    ) -> ServerProcess:
        """A dvid server on a fresh LevelDB store (start it with ``with``); ``extra_args`` go to
        ``python -m bench.servers dvid``."""
        workdir = self._workdir(f"dvid-{label}")
        args = ["--store", str(workdir / "store"), *extra_args]
        if self.options.postgres_dsn:
            args += ["--postgres", self.options.postgres_dsn]
        if self.options.max_open_files is not None:
            args += ["--max-open-files", str(self.options.max_open_files)]
        if not (self.options.access_log if access_log is None else access_log):
            args.append("--no-access-log")
        if self.options.profile_dir is not None:
            self.options.profile_dir.mkdir(parents=True, exist_ok=True)
            args += ["--profile", str(self.options.profile_dir.resolve() / f"dvid-{label}.pstats")]
        return ServerProcess("dvid", workdir, extra_args=args, ready_path="/api/server/info")

    def baseline(self, label: str) -> ServerProcess:
        return ServerProcess("baseline", self._workdir(f"baseline-{label}"), ready_path="/ready")


# ---- helpers ---------------------------------------------------------------------------------
def _saturation_notes(results: list[LoadResult]) -> list[str]:
    """Say which phases the load generator rather than the server probably limited."""
    bound = [
        f"{r.name} (client {r.client_cpu_pct:.0f}% CPU, server {r.server_cpu_pct:.0f}%)"
        for r in results
        if r.server_cpu_pct is not None and r.client_cpu_pct > r.server_cpu_pct
    ]
    if not bound:
        return []
    return [
        "the bench client used more CPU than the server in: " + "; ".join(bound) + ". Those rates are"
        " partly limited by the load generator, so a ratio against them flatters the slower server;"
        " 'server CPU per request' does not depend on the client"
    ]


def _div(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _cost_ratio(a: LoadFigure, b: LoadFigure) -> float:
    """Server CPU per request of ``a`` over ``b`` (NaN where CPU time is not available)."""
    if a.server_us_per_req is None or not b.server_us_per_req:
        return float("nan")
    return a.server_us_per_req / b.server_us_per_req


def _per_round(rounds: list[list[LoadResult]], num: int, den: int) -> Ratio:
    """The median over rounds of phase ``num``'s req/s over phase ``den``'s (robust to drift)."""
    values = [r[num].rps / r[den].rps for r in rounds if r[den].rps > 0] or [float("nan")]
    note = f"{len(values)} rounds, {min(values):.2f}..{max(values):.2f}"
    return Ratio("  same, median of per-round ratios", statistics.median(values), note=note)


def _profile_notes(options: Options, label: str, top: int = 12) -> list[str]:
    if options.profile_dir is None:
        return []
    path = options.profile_dir.resolve() / f"dvid-{label}.pstats"
    if not path.exists():
        return [f"profile {path} was not written"]
    stats = pstats.Stats(str(path))
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]  # type: ignore[attr-defined]
    lines = [f"server profile {path} (event-loop thread, total {total:.2f} s); top by own time:"]
    for (file, line, func), (_cc, ncalls, tottime, cumtime, _callers) in rows:
        where = f"{Path(file).name}:{line}({func})" if line else func
        lines.append(f"  {tottime:7.3f} s own {cumtime:7.3f} s cum {ncalls:>9} calls  {where}")
    return ["\n".join(lines)]


# ---- kv --------------------------------------------------------------------------------------
def kv(env: Env) -> WorkloadReport:
    """keyvalue GET and POST of 2 KiB values vs a bare aiohttp server, interleaved."""
    report = WorkloadReport("kv")
    with env.dvid("kv") as dvid, env.baseline("kv") as base:
        merged, rounds = run_async(_kv_load(env.options, dvid, base))
    bjson, bbytes, bsink, get, post = (LoadFigure.of(r) for r in merged)
    report.loads = [bjson, bbytes, bsink, get, post]
    report.ratios = [
        Ratio("dvid GET req/s / baseline json", _div(get.rps, bjson.rps), op=">=", target=0.5),
        _per_round(rounds, 3, 0),
        Ratio("dvid GET req/s / baseline 2 KiB bytes", _div(get.rps, bbytes.rps)),
        Ratio(
            "dvid GET server CPU per request / baseline json",
            _cost_ratio(get, bjson),
            note="client-independent",
        ),
        Ratio("dvid POST req/s / baseline POST sink", _div(post.rps, bsink.rps)),
        Ratio("dvid POST server CPU per request / baseline sink", _cost_ratio(post, bsink)),
        Ratio("dvid GET p99", get.p99_ms, unit="ms", op="<", target=10),
        Ratio("dvid POST p99", post.p99_ms, unit="ms", op="<", target=10),
    ]
    report.notes = [
        "DVID (Go) for reference, from spec/performance.md (measured elsewhere): GET ~6,000 req/s,"
        " POST ~6,700 req/s vs bare aiohttp JSON ~9,800, i.e. GET 0.61x, POST 0.68x",
        *_saturation_notes(merged),
        *_profile_notes(env.options, "kv"),
    ]
    return report


async def _setup_kv(api: DvidAPI, o: Options, alias: str) -> tuple[str, list[str], list[bytes]]:
    """A repo with a keyvalue instance holding ``o.keys`` random 2 KiB values at its root."""
    uuid = await api.new_repo(alias)
    await api.new_keyvalue(uuid, INSTANCE)
    await api.check_keyvalue(uuid, INSTANCE)
    names = [f"key-{i:06d}" for i in range(o.keys)]
    values = inproc.random_values(o.keys)
    await api.put_keys(uuid, INSTANCE, list(zip(names, values, strict=True)), o.concurrency)
    if await api.get_key(uuid, INSTANCE, names[-1]) != values[-1]:
        raise BenchError("keyvalue GET did not return the value POSTed")
    return uuid, names, values


async def _kv_load(
    o: Options, dvid: ServerProcess, base: ServerProcess
) -> tuple[list[LoadResult], list[list[LoadResult]]]:
    c = o.concurrency
    async with client_session(c) as s_dvid, client_session(c) as s_base:
        api = DvidAPI(s_dvid, dvid.base)
        uuid, names, values = await _setup_kv(api, o, "bench-kv")
        rnd = random.Random(7)
        get_urls = [api.key_url(uuid, INSTANCE, k) for k in names]
        post_urls = [api.key_url(uuid, INSTANCE, f"post-{i:06d}") for i in range(o.keys)]
        json_url, bytes_url, sink_url = base.url("/json"), base.url("/bytes"), base.url("/sink")

        def fixed(method: str, url: URL) -> RequestFn:
            return lambda: (method, url, None)

        phases = [
            Phase("baseline GET json", s_base, fixed("GET", json_url), base),
            Phase("baseline GET 2 KiB bytes", s_base, fixed("GET", bytes_url), base),
            Phase("baseline POST 2 KiB sink", s_base, lambda: ("POST", sink_url, rnd.choice(values)), base),
            Phase("dvid GET key", s_dvid, lambda: ("GET", rnd.choice(get_urls), None), dvid),
            Phase("dvid POST key", s_dvid, lambda: ("POST", rnd.choice(post_urls), rnd.choice(values)), dvid),
        ]
        return await _interleave(o, phases, o.rounds)


async def _interleave(
    o: Options, phases: list[Phase], rounds: int
) -> tuple[list[LoadResult], list[list[LoadResult]]]:
    """Run the phases in ``rounds`` alternating rounds over ``o.seconds`` at ``o.concurrency``."""
    return await interleaved(
        phases,
        rounds=rounds,
        seconds_per_round=o.seconds / rounds,
        warmup=o.warmup,
        concurrency=o.concurrency,
        max_requests_per_round=MAX_REQUESTS_PER_ROUND,
    )


# ---- deep ------------------------------------------------------------------------------------
def deep(env: Env) -> WorkloadReport:
    """GET of the same keys at a version ``depth`` commits below the root vs at the root."""
    o = env.options
    report = WorkloadReport("deep")
    with env.dvid("deep") as dvid:
        merged, rounds = run_async(_deep_load(o, dvid))
    root, deepest = (LoadFigure.of(r) for r in merged)
    report.loads = [root, deepest]
    figures, get_ratio, resolved_ratio = inproc.deep_vs_root(o.inproc_keys, o.depth, o.repeats)
    report.inproc = figures
    d = o.depth
    report.ratios = [
        Ratio(f"HTTP p50 latency {d} deep / root", _div(deepest.p50_ms, root.p50_ms), op="<=", target=1.3),
        Ratio(f"HTTP time per request {d} deep / root", _div(root.rps, deepest.rps), op="<=", target=1.3),
        _per_round(rounds, 0, 1),
        Ratio(f"HTTP p99 latency {o.depth} deep / root", _div(deepest.p99_ms, root.p99_ms)),
        Ratio(f"server CPU per request {o.depth} deep / root", _cost_ratio(deepest, root)),
        Ratio(f"in-process DataContext.get {o.depth} deep / root", get_ratio),
        Ratio(f"in-process resolve+context+get {o.depth} deep / root", resolved_ratio),
    ]
    report.notes = [
        "DVID (Go) for reference, from spec/performance.md: GET 256^3 at 50 commits deep vs root 1.04x",
        *_saturation_notes(merged),
        *_profile_notes(o, "deep"),
    ]
    return report


async def _deep_load(o: Options, dvid: ServerProcess) -> tuple[list[LoadResult], list[list[LoadResult]]]:
    c = o.concurrency
    async with client_session(c) as session:
        api = DvidAPI(session, dvid.base)
        root, names, values = await _setup_kv(api, o, "bench-deep")
        node = root
        for i in range(o.depth):
            await api.commit(node, f"bench commit {i}")
            node = await api.newversion(node, f"bench version {i + 1}")
        if await api.get_key(node, INSTANCE, names[0]) != values[0]:
            raise BenchError(f"GET at the version {o.depth} deep did not return the root's value")
        rnd = random.Random(11)

        def getter(uuid: str) -> RequestFn:
            urls = [api.key_url(uuid, INSTANCE, k) for k in names]
            return lambda: ("GET", rnd.choice(urls), None)

        phases = [
            Phase("dvid GET at root", session, getter(root), dvid),
            Phase(f"dvid GET {o.depth} versions deep", session, getter(node), dvid),
        ]
        return await _interleave(o, phases, o.deep_rounds)


# ---- accesslog -------------------------------------------------------------------------------
def accesslog(env: Env) -> WorkloadReport:
    """keyvalue GET on two dvid servers, access log on (the default) and off, and the bare aiohttp
    JSON handler, interleaved."""
    report = WorkloadReport("accesslog")
    with (
        env.dvid("log-on", access_log=True) as on,
        env.dvid("log-off", access_log=False) as off,
        env.baseline("accesslog") as base,
    ):
        merged, rounds = run_async(_accesslog_load(env.options, on, off, base))
    with_log, without, bjson = (LoadFigure.of(r) for r in merged)
    report.loads = [with_log, without, bjson]
    report.ratios = [
        Ratio("GET req/s access log on / off", _div(with_log.rps, without.rps)),
        _per_round(rounds, 0, 1),
        Ratio("GET srv CPU per request, log on / off", _cost_ratio(with_log, without)),
        Ratio("GET srv CPU per request, log on / baseline json", _cost_ratio(with_log, bjson)),
        Ratio("GET srv CPU per request, log off / baseline json", _cost_ratio(without, bjson)),
        Ratio("GET req/s log off / baseline json", _div(without.rps, bjson.rps), op=">=", target=0.5),
    ]
    report.notes = _saturation_notes(merged)
    return report


async def _accesslog_load(
    o: Options, on: ServerProcess, off: ServerProcess, base: ServerProcess
) -> tuple[list[LoadResult], list[list[LoadResult]]]:
    c = o.concurrency
    async with client_session(c) as s_on, client_session(c) as s_off, client_session(c) as s_base:
        rnd = random.Random(5)
        phases = []
        for label, server, session in (("on", on, s_on), ("off", off, s_off)):
            api = DvidAPI(session, server.base)
            uuid, names, _ = await _setup_kv(api, o, f"bench-log-{label}")
            urls = [api.key_url(uuid, INSTANCE, k) for k in names]
            phases.append(Phase(f"dvid GET key, log {label}", session, _random_get(rnd, urls), server))
        json_url = base.url("/json")
        phases.append(Phase("baseline GET json", s_base, lambda: ("GET", json_url, None), base))
        return await _interleave(o, phases, o.rounds)


def _random_get(rnd: random.Random, urls: list[URL]) -> RequestFn:
    return lambda: ("GET", rnd.choice(urls), None)


# ---- inproc ----------------------------------------------------------------------------------
def inproc_limits(env: Env) -> WorkloadReport:
    """In-process limits: raw LevelDB and versioned DataContext gets/puts of 2 KiB values."""
    o = env.options
    report = WorkloadReport("inproc")
    report.inproc = [
        *inproc.engine_figures(o.inproc_keys, o.repeats),
        *inproc.versioned_figures(o.inproc_keys, o.repeats, o.concurrency),
    ]
    return report


def _find(figures: list[InprocFigure], prefix: str) -> InprocFigure | None:
    return next((f for f in figures if f.name.startswith(prefix)), None)


def summary(reports: list[WorkloadReport]) -> WorkloadReport | None:
    """HTTP figures as fractions of the in-process limits, when both were measured in this run."""
    by_name = {r.name: r for r in reports if not r.error}
    if "kv" not in by_name or "inproc" not in by_name:
        return None
    loads = {f.name: f for f in by_name["kv"].loads}
    figs = by_name["inproc"].inproc
    out = WorkloadReport("summary")
    pairs = [
        ("dvid GET key", "DataContext.get 2 KiB", "dvid GET req/s / DataContext.get ops/s"),
        ("dvid GET key", "LevelDB engine.get", "dvid GET req/s / LevelDB get ops/s"),
        ("dvid GET key", "DataContext.get via asyncio.to_thread", "dvid GET req/s / to_thread get ops/s"),
        ("dvid POST key", "DataContext.put", "dvid POST req/s / DataContext.put ops/s"),
        ("baseline GET json", "DataContext.get 2 KiB", "baseline json req/s / DataContext.get ops/s"),
    ]
    for load_name, fig_prefix, label in pairs:
        fig = _find(figs, fig_prefix)
        if load_name in loads and fig is not None and fig.ops_per_s > 0:
            out.ratios.append(Ratio(label, 100 * loads[load_name].rps / fig.ops_per_s, unit="%"))
    shares = [
        ("dvid GET key", "DataContext.get 2 KiB", "DataContext.get us / dvid GET server us per req"),
        ("dvid POST key", "DataContext.put", "DataContext.put us / dvid POST server us per req"),
    ]
    for load_name, fig_prefix, label in shares:
        fig = _find(figs, fig_prefix)
        load = loads.get(load_name)
        if load is not None and load.server_us_per_req and fig is not None:
            out.ratios.append(Ratio(label, 100 * fig.us_per_op / load.server_us_per_req, unit="%"))
    return out


WORKLOADS: dict[str, Callable[[Env], WorkloadReport]] = {
    "kv": kv,
    "deep": deep,
    "inproc": inproc_limits,
    "accesslog": accesslog,
}
#: What ``python -m bench`` runs without workload names.
DEFAULT_WORKLOADS = ("kv", "deep", "inproc")
