"""The ``labels`` workload: labelblk (uint64 segmentations) over HTTP, next to same-run baselines.

The data is real: the four 64^3 segmentations of DVID's test data in ``tests/data`` (FIB-19 and CX samples,
gzipped little-endian uint64 ZYX) tiled into a 256^3 volume, one sample per 64^3 block (tile k
takes sample (k + variant) % 4, flipped in z and/or y by k, with ``(k + 64 * variant + 1) << 40``
added to its non-zero labels so bodies stay distinct per tile). Two variants alternate in the POSTs.

One dvid server (a repo with a ``labelblk`` instance ``seg``, default BlockSize 64^3), one bare
aiohttp server (:mod:`bench.servers`) and the in-process limit
(:class:`bench.imgbase.InprocBlocks` with uint64 voxels: plyvel + lz4 + numpy, none of dvid's code).
Requests go one at a time over one keep-alive connection per server; alternatives being compared
take turns request by request (order rotated and reversed every round), as in ``image``.

1. POST 256^3 (128 MiB) to 0_0_0, raw and with ``?compression=lz4`` (the body lz4-compressed
   beforehand, ~3 MiB), vs the in-process POST and a bare 128 MiB POST (read piece by piece into a
   reused buffer, as dvid receives a volume: the HTTP transfer alone).
2. GET 256^3 raw (streamed, 128 MiB), with ``?compression=googlegzip`` (neuroglancer's
   compressed_segmentation, gzipped) and ``?compression=lz4``, vs the in-process GET (64 blocks read,
   lz4-decompressed, assembled into a (256, 256, 256) uint64 array) and a bare 128 MiB stream.
3. ``labels_random`` GETs of 64^3 at random unaligned offsets, vs a bare 2 MiB GET: p50/p99.
4. ``GET labels`` of ``labels_points`` random points (JSON body), vs the in-process ``labels_at``.

Every read is checked against what was written (googlegzip gunzipped and decoded). Then, in this
process, a note on block codecs: lz4, zstd level 1 and gzip levels 1 and 6 on the 64 real 64^3
blocks (compress and decompress MB/s, best of several passes, and stored/raw size).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import random
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import aiohttp
import compressed_segmentation
import lz4.block
import numpy as np
import zstandard
from yarl import URL

from bench.dvidapi import DvidAPI
from bench.harness import REQUEST_TIMEOUT_S, BenchError, PySpy, ServerProcess, run_async
from bench.images import (
    BIG_TIMEOUT,
    Series,
    StepFn,
    TimedRun,
    alternate,
    fetch,
    per_round,
    ratio,
    send,
    settle,
    stream,
)
from bench.imgbase import InprocBlocks
from bench.report import Ratio, WorkloadReport
from bench.workloads import Env, _div, _profile_notes

TYPENAME = "labelblk"
INSTANCE = "seg"
EDGE = 256
BS = 64  # labelblk's default BlockSize, and the samples' size
VOXEL = np.dtype("<u8")
VOL_BYTES = EDGE**3 * VOXEL.itemsize  # 128 MiB
SMALL = 64
SMALL_BYTES = SMALL**3 * VOXEL.itemsize  # 2 MiB
TARGET = 2.5  # GET and POST 256^3 / in-process
DATA_DIR = Path(__file__).resolve().parents[1] / "tests" / "data"
SAMPLES = (
    "fib19-64x64x64-sample1.dat.gz",
    "fib19-64x64x64-sample2.dat.gz",
    "cx-64x64x64-sample1.dat.gz",
    "cx-64x64x64-sample2.dat.gz",
)
TILE_SHIFT = 40  # labels of tile k get (k + 64 * variant + 1) << 40 added; sample labels are < 2**40
SEED = 20261122
MiB = 1 << 20


# ---- data ------------------------------------------------------------------------------------
def load_samples(data_dir: Path = DATA_DIR) -> list[np.ndarray]:
    """The four real 64^3 segmentations as (z, y, x) little-endian uint64 arrays."""
    out = []
    for name in SAMPLES:
        path = data_dir / name
        try:
            raw = gzip.decompress(path.read_bytes())
        except OSError as exc:
            raise BenchError(f"label sample {path}: {exc}") from None
        if len(raw) != BS**3 * VOXEL.itemsize:
            raise BenchError(f"label sample {path} holds {len(raw):,} bytes, expected {BS**3 * 8:,}")
        sample = np.frombuffer(raw, VOXEL).reshape(BS, BS, BS)
        if int(sample.max()) >= 1 << TILE_SHIFT:
            raise BenchError(f"label sample {path} has labels >= 2**{TILE_SHIFT}: tiles would collide")
        out.append(sample)
    return out


def label_volume(samples: list[np.ndarray], variant: int) -> np.ndarray:
    """A (256, 256, 256) uint64 volume of the samples tiled block by block (see the module doc)."""
    n = EDGE // BS
    vol = np.empty((EDGE, EDGE, EDGE), VOXEL)
    for bz in range(n):
        for by in range(n):
            for bx in range(n):
                k = bx + n * (by + n * bz)
                tile = samples[(k + variant) % len(samples)]
                if k & 4:
                    tile = tile[::-1]
                if k & 8:
                    tile = tile[:, ::-1]
                offset = np.uint64((k + n**3 * variant + 1) << TILE_SHIFT)
                dst = vol[bz * BS : (bz + 1) * BS, by * BS : (by + 1) * BS, bx * BS : (bx + 1) * BS]
                np.add(tile, offset, out=dst)
                dst[tile == 0] = 0  # background stays 0
    return vol


def decode_googlegzip(body: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """A ``compression=googlegzip`` body (gzip of compressed_segmentation, 8^3 blocks, one channel,
    x fastest) as a (z, y, x) uint64 array."""
    nz, ny, nx = shape
    data = gzip.decompress(body)
    xyz = compressed_segmentation.decompress(data, (nx, ny, nz), np.uint64, (8, 8, 8), order="F")
    return np.ascontiguousarray(np.asarray(xyz).reshape(nx, ny, nz, order="F").T)


# ---- block codecs ----------------------------------------------------------------------------
Codec = tuple[str, Callable[[bytes], bytes], Callable[[bytes], bytes]]


def _codecs() -> list[Codec]:
    zc, zd = zstandard.ZstdCompressor(level=1), zstandard.ZstdDecompressor()
    return [
        ("lz4 (dvid's storage)", lz4.block.compress, lz4.block.decompress),
        ("zstd level 1", zc.compress, zd.decompress),
        ("gzip level 1", lambda b: zlib.compress(b, 1, wbits=31), lambda c: zlib.decompress(c, wbits=31)),
        ("gzip level 6", lambda b: zlib.compress(b, 6, wbits=31), lambda c: zlib.decompress(c, wbits=31)),
    ]


def codec_note(blocks: list[bytes], passes: int) -> str:
    """lz4 vs zstd 1 vs gzip 1/6 on ``blocks``: best-pass compress and decompress MB/s, stored/raw.
    Passes alternate between the codecs (order rotated) so drift of the machine hits them alike."""
    codecs = _codecs()
    raw = sum(len(b) for b in blocks)
    best_c = [math.inf] * len(codecs)
    best_d = [math.inf] * len(codecs)
    stored = [0] * len(codecs)
    for p in range(passes):
        for i in [*range(len(codecs))][p % len(codecs) :] + [*range(len(codecs))][: p % len(codecs)]:
            _, compress, decompress = codecs[i]
            t0 = time.perf_counter()
            packed = [compress(b) for b in blocks]
            t1 = time.perf_counter()
            for c in packed:
                decompress(c)
            t2 = time.perf_counter()
            best_c[i], best_d[i] = min(best_c[i], t1 - t0), min(best_d[i], t2 - t1)
            stored[i] = sum(len(c) for c in packed)
            if p == 0 and any(decompress(c) != b for c, b in zip(packed[:4], blocks[:4], strict=True)):
                raise BenchError(f"{codecs[i][0]} did not round-trip a label block (harness bug)")
    lines = [
        f"label block codecs on the {len(blocks)} real 64^3 uint64 blocks of the 256^3 ({raw / MiB:.0f} MiB),"
        f" in this process, best of {passes} passes:",
        f"  {'codec':<22}{'compress MB/s':>14}{'decompress MB/s':>16}{'stored/raw':>12}{'KiB/block':>11}",
    ]
    for (name, _, _), tc, td, size in zip(codecs, best_c, best_d, stored, strict=True):
        lines.append(
            f"  {name:<22}{raw / tc / 1e6:>14,.0f}{raw / td / 1e6:>16,.0f}"
            f"{100 * size / raw:>11.2f}%{size / len(blocks) / 1024:>11.1f}"
        )
    return "\n".join(lines)


# ---- the workload ----------------------------------------------------------------------------
def labels(env: Env) -> WorkloadReport:
    """labelblk raw GET/POST, googlegzip/lz4 GETs, random 64^3 and point reads (see the module doc)."""
    o = env.options
    report = WorkloadReport("labels")
    samples = load_samples()
    bodies = [label_volume(samples, v).tobytes() for v in (0, 1)]
    with env.dvid("labels") as dvid, env.baseline("labels") as base:
        store = InprocBlocks(env._workdir("inproc-labels") / "leveldb", BS, VOXEL)
        spy = PySpy(dvid.pid, o.pyspy_dir.resolve() / "dvid-labels.txt") if o.pyspy_dir else None
        try:
            with spy or contextlib.nullcontext():
                run_async(LabelsRun(env, report, dvid, base, store, bodies).run())
        finally:
            store.close()
    n = EDGE // BS
    vol = np.frombuffer(bodies[0], VOXEL).reshape(EDGE, EDGE, EDGE)
    blocks = [
        np.ascontiguousarray(
            vol[z * BS : (z + 1) * BS, y * BS : (y + 1) * BS, x * BS : (x + 1) * BS]
        ).tobytes()
        for z in range(n)
        for y in range(n)
        for x in range(n)
    ]
    report.notes.append(codec_note(blocks, o.labels_codec_passes))
    report.notes += _profile_notes(o, "labels")
    if spy is not None:
        report.notes.append(spy.top())
    return report


def _session() -> aiohttp.ClientSession:
    """One keep-alive connection; bodies are not gunzipped (googlegzip is timed as sent on the wire)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=1),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
        auto_decompress=False,
    )


class LabelsRun(TimedRun):
    typename = TYPENAME

    def __init__(
        self,
        env: Env,
        report: WorkloadReport,
        dvid: ServerProcess,
        base: ServerProcess,
        store: InprocBlocks,
        bodies: list[bytes],
    ) -> None:
        super().__init__(report)
        self.o = env.options
        self.dvid = dvid
        self.base = base
        self.store = store
        self.bodies = bodies  # the two variants as request bodies; volumes are read-only views of them
        self.volumes = [np.frombuffer(b, VOXEL).reshape(EDGE, EDGE, EDGE) for b in bodies]
        self.rounds = self.o.labels_repeats
        self.current = 0  # the variant last POSTed everywhere
        self.api: DvidAPI
        self.s_dvid: aiohttp.ClientSession
        self.s_base: aiohttp.ClientSession
        self.wire: dict[str, int] = {}  # bytes on the wire of the compressed GETs
        self.settled: dict[str, float] = {}

    def raw(self, size: int, offset: tuple[int, int, int], query: str = "") -> URL:
        url = self.api.raw_url(self.uuid or "", INSTANCE, "0_1_2", (size,) * 3, offset)
        return URL(f"{url}?{query}", encoded=True) if query else url

    async def run(self) -> None:
        async with _session() as self.s_dvid, _session() as self.s_base:
            self.api = DvidAPI(self.s_dvid, self.dvid.base)
            await self.run_steps(self.steps)

    async def steps(self) -> None:
        if await self.api.has_type(TYPENAME):
            await self.setup_repo()
        await self.post_256()
        await self.get_256()
        if self.uuid is not None:
            await self.random_64()
            await self.points()

    async def setup_repo(self) -> None:
        self.uuid = await self.api.new_repo("bench-labels")
        await self.api.new_instance(self.uuid, TYPENAME, INSTANCE)  # default BlockSize: 64^3
        info = await self.api.call("GET", self.api.url(f"node/{self.uuid}/{INSTANCE}/info"))
        block = json.loads(info).get("Extended", {}).get("BlockSize")
        if list(block or []) != [BS, BS, BS]:
            raise BenchError(
                f"{INSTANCE} info reports BlockSize {block}, expected the default {BS},{BS},{BS}"
            )

    async def check_dvid_volume(self, what: str) -> None:
        """A full 256^3 GET returns the variant last POSTed."""
        body = await fetch(self.s_dvid, self.raw(EDGE, (0, 0, 0)), VOL_BYTES)
        if body != self.bodies[self.current]:
            raise BenchError(f"dvid GET 256^3 {what} did not return the labels POSTed")

    async def post_256(self) -> None:
        """1. POST 256^3 to 0_0_0, variants alternating by round; before every POST the harness waits
        (untimed, a few seconds at most) for both servers and this process to be idle."""
        recv = self.base.url("/recv")
        origin = (0, 0, 0)
        steps: list[tuple[Series, StepFn]] = [
            (
                self.new_series("ipost", "in-process POST 256^3", VOL_BYTES, None),
                lambda i: self.store.post(self.volumes[i % 2], origin),
            ),
            (
                self.new_series("recv", "bare aiohttp POST 128 MiB (recv)", VOL_BYTES, self.base),
                lambda i: send(self.s_base, recv, self.bodies[i % 2]),
            ),
        ]
        if self.uuid is not None:
            url = self.raw(EDGE, origin)
            lz_url = self.raw(EDGE, origin, "compression=lz4")
            packed = [lz4.block.compress(b, store_size=False) for b in self.bodies]  # as a client would send
            post = self.new_series("post", "dvid POST 256^3 labels", VOL_BYTES, self.dvid)
            lz_name = f"dvid POST 256^3 lz4 ({len(packed[0]) / MiB:.1f} MiB)"
            post_lz = self.new_series("postlz", lz_name, len(packed[0]), self.dvid)
            steps[:0] = [
                (post, lambda i: send(self.s_dvid, url, self.bodies[i % 2])),
                (post_lz, lambda i: send(self.s_dvid, lz_url, packed[i % 2])),
            ]
        await alternate(steps, self.rounds, warmup=self.rounds, idle_before=(self.dvid, self.base))
        self.current = (self.rounds - 1) % 2
        self.publish("post", "postlz", "ipost", "recv")
        self.settled["after POST 256^3"] = await settle(self.dvid, self.base)
        if not np.array_equal(self.store.get((EDGE,) * 3, origin), self.volumes[self.current]):
            raise BenchError("in-process GET did not return the volume POSTed (harness bug)")
        if self.uuid is not None:
            await self.check_dvid_volume("after the POSTs")

    async def get_256(self) -> None:
        """2. GET 256^3 raw, googlegzip and lz4, vs the in-process GET and a bare 128 MiB stream."""
        cube, origin = (EDGE, EDGE, EDGE), (0, 0, 0)
        bare = self.base.url(f"/stream/{VOL_BYTES}")
        steps: list[tuple[Series, StepFn]] = [
            (
                self.new_series("iget", "in-process GET 256^3", VOL_BYTES, None),
                lambda i: self.store.get(cube, origin),
            ),
            (
                self.new_series("bare", "bare aiohttp GET 128 MiB (streamed)", VOL_BYTES, self.base),
                lambda i: stream(self.s_base, bare, VOL_BYTES),
            ),
        ]
        if self.uuid is not None:
            expected = self.volumes[self.current]
            raw_url = self.raw(EDGE, origin)
            gg_url = self.raw(EDGE, origin, "compression=googlegzip")
            lz_url = self.raw(EDGE, origin, "compression=lz4")
            async with self.s_dvid.get(gg_url, timeout=BIG_TIMEOUT) as resp:
                gg = await resp.read()
                encoding = resp.headers.get("Content-Encoding", "")
                if resp.status != 200:
                    raise BenchError(f"GET ?compression=googlegzip -> {resp.status}: {gg[:300]!r}")
            if encoding != "gzip":
                raise BenchError(f"GET ?compression=googlegzip sent Content-Encoding {encoding!r}, not gzip")
            try:
                decoded = decode_googlegzip(gg, cube)
            except (OSError, ValueError, RuntimeError) as exc:
                raise BenchError(f"GET ?compression=googlegzip body does not decode: {exc}") from None
            if not np.array_equal(decoded, expected):
                raise BenchError("GET ?compression=googlegzip decodes to other labels than POSTed")
            lz = await fetch(self.s_dvid, lz_url)
            if lz4.block.decompress(lz, uncompressed_size=VOL_BYTES) != self.bodies[self.current]:
                raise BenchError("GET ?compression=lz4 decompresses to other labels than POSTed")
            self.wire = {"googlegzip": len(gg), "lz4": len(lz)}
            del gg, lz, decoded
            steps[:0] = [
                (
                    self.new_series("get", "dvid GET 256^3 raw (streamed)", VOL_BYTES, self.dvid),
                    lambda i: stream(self.s_dvid, raw_url, VOL_BYTES),
                ),
                (
                    self.new_series("gg", "dvid GET 256^3 googlegzip", self.wire["googlegzip"], self.dvid),
                    lambda i: fetch(self.s_dvid, gg_url, self.wire["googlegzip"]),
                ),
                (
                    self.new_series("lz", "dvid GET 256^3 lz4", self.wire["lz4"], self.dvid),
                    lambda i: fetch(self.s_dvid, lz_url, self.wire["lz4"]),
                ),
            ]
        await alternate(steps, self.rounds, warmup=0)
        self.publish("get", "gg", "lz", "iget", "bare")

    async def random_64(self) -> None:
        """3. 64^3 GETs at random unaligned offsets, vs a bare 2 MiB GET."""
        rnd = random.Random(SEED)
        count = self.o.labels_random
        hi = EDGE - SMALL
        offsets = [(rnd.randint(0, hi), rnd.randint(0, hi), rnd.randint(0, hi)) for _ in range(count)]
        vol = self.volumes[self.current]
        for x, y, z in offsets[:3]:
            body = await fetch(self.s_dvid, self.raw(SMALL, (x, y, z)), SMALL_BYTES)
            if body != vol[z : z + SMALL, y : y + SMALL, x : x + SMALL].tobytes():
                raise BenchError(f"dvid GET 64^3 at {(x, y, z)} returned other labels than POSTed")
        bare = self.base.url(f"/bytes/{SMALL_BYTES}")
        steps: list[tuple[Series, StepFn]] = [
            (
                self.new_series("small", "dvid GET 64^3 at random offsets", SMALL_BYTES, self.dvid),
                lambda i: fetch(self.s_dvid, self.raw(SMALL, offsets[i]), SMALL_BYTES),
            ),
            (
                self.new_series("bsmall", "bare aiohttp GET 2 MiB", SMALL_BYTES, self.base),
                lambda i: fetch(self.s_base, bare, SMALL_BYTES),
            ),
        ]
        await alternate(steps, count, warmup=0)
        self.publish("small", "bsmall")

    async def points(self) -> None:
        """4. GET labels of n random points (a new set each round), vs the in-process ``labels_at``."""
        n = self.o.labels_points
        rnd = np.random.default_rng(SEED)
        sets = [rnd.integers(0, EDGE, (n, 3), dtype=np.int64) for _ in range(self.rounds + 1)]
        bodies = [json.dumps(p.tolist()).encode() for p in sets]
        url = self.api.url(f"node/{self.uuid}/{INSTANCE}/labels")
        vol = self.volumes[self.current]
        replies: dict[int, bytes] = {}

        async def get_labels(i: int) -> None:
            async with self.s_dvid.get(url, data=bodies[i]) as resp:
                replies[i] = await resp.read()
                if resp.status != 200:
                    raise BenchError(f"GET labels -> {resp.status}: {replies[i][:300]!r}")

        inproc: dict[int, np.ndarray] = {}

        def labels_at(i: int) -> None:
            inproc[i] = self.store.labels_at(sets[i])

        steps: list[tuple[Series, StepFn]] = [
            (self.new_series("pts", f"dvid GET labels, {n} points", len(bodies[0]), self.dvid), get_labels),
            (self.new_series("ipts", f"in-process labels at {n} points", len(bodies[0]), None), labels_at),
        ]
        await alternate(steps, self.rounds, warmup=self.rounds)
        for i, pts in enumerate(sets):
            expected = vol[pts[:, 2], pts[:, 1], pts[:, 0]]
            if i in replies and json.loads(replies[i]) != expected.tolist():
                raise BenchError(f"GET labels of {n} points (set {i}) returned other labels than POSTed")
            if i in inproc and not np.array_equal(inproc[i], expected):
                raise BenchError("in-process labels_at returned other labels (harness bug)")
        self.publish("pts", "ipts")

    # -- results
    def ratios(self) -> list[Ratio]:
        s = self.series

        def have(*keys: str) -> bool:
            return all(k in s and s[k].times for k in keys)

        out: list[Ratio] = []
        if have("get", "iget"):
            out += [
                ratio("GET 256^3 / in-process GET 256^3", s["get"], s["iget"], op="<=", target=TARGET),
                *per_round(s["get"], s["iget"]),
            ]
        if have("post", "ipost"):
            out += [
                ratio("POST 256^3 / in-process POST 256^3", s["post"], s["ipost"], op="<=", target=TARGET),
                *per_round(s["post"], s["ipost"]),
            ]
        if have("get", "bare"):
            out.append(ratio("GET 256^3 / bare 128 MiB stream", s["get"], s["bare"]))
        if have("postlz", "ipost"):
            out.append(ratio("POST 256^3 ?compression=lz4 / in-process POST", s["postlz"], s["ipost"]))
        if have("post", "recv"):
            out.append(ratio("POST 256^3 / bare 128 MiB POST", s["post"], s["recv"]))
        if have("ipost", "recv"):
            out.append(ratio("in-process POST 256^3 / bare 128 MiB POST", s["ipost"], s["recv"]))
        if have("iget", "bare"):
            out.append(ratio("in-process GET 256^3 / bare 128 MiB stream", s["iget"], s["bare"]))
        beyond = "dvid's p50 minus the bare transfer's p50, over the in-process p50"
        if have("get", "bare", "iget"):
            extra = _div(s["get"].p50 - s["bare"].p50, s["iget"].p50)
            out.append(Ratio("(GET 256^3 - bare stream) / in-process GET", extra, note=beyond))
        if have("post", "recv", "ipost"):
            extra = _div(s["post"].p50 - s["recv"].p50, s["ipost"].p50)
            out.append(Ratio("(POST 256^3 - bare POST) / in-process POST", extra, note=beyond))
        for key, name in (("gg", "googlegzip"), ("lz", "lz4")):
            if have(key, "get"):
                size = (
                    f"{self.wire[name] / MiB:.2f} MiB on the wire, {100 * self.wire[name] / VOL_BYTES:.2f}%"
                )
                out.append(ratio(f"GET 256^3 {name} / raw GET", s[key], s["get"], note=size))
            if have(key, "iget"):
                out.append(ratio(f"GET 256^3 {name} / in-process GET", s[key], s["iget"]))
        if have("small", "bsmall"):
            small, bsmall = s["small"].figure(), s["bsmall"].figure()
            out += [
                Ratio("GET 64^3 random p50", small.p50_ms, unit="ms"),
                Ratio("GET 64^3 random p99", small.p99_ms, unit="ms"),
                Ratio("GET 64^3 p50 / bare 2 MiB GET p50", _div(small.p50_ms, bsmall.p50_ms)),
            ]
        if have("pts", "ipts"):
            pts = s["pts"].figure()
            n = self.o.labels_points
            out += [
                Ratio(f"GET labels {n} points p50", pts.p50_ms, unit="ms"),
                Ratio(f"GET labels {n} points p99", pts.p99_ms, unit="ms"),
                ratio(f"GET labels {n} points / in-process labels_at", s["pts"], s["ipts"]),
            ]
        if self.store.raw_bytes:
            out.append(Ratio("lz4 stored/raw size of the label data", self.store.compression_ratio))
        return out

    def notes(self) -> list[str]:
        return [
            f"labelblk BlockSize {BS},{BS},{BS} (default); 256^3 uint64 tiled from {', '.join(SAMPLES)}"
            f" (one sample per block, labels offset per tile); in-process limit with the same {BS}^3 blocks."
            f" Requests one at a time on one keep-alive connection; {self.rounds} interleaved rounds per"
            " figure. googlegzip/lz4 timed to the body received (not gunzipped/decoded by the client)."
            " Waited for idle CPU after writes: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in self.settled.items()),
        ]
