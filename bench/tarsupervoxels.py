"""The ``tarsupervoxels`` workload: a body of 10,000 supervoxel meshes loaded and streamed as a tar.

One dvid server (LevelDB) with a labelmap ``seg`` and a tarsupervoxels ``meshes`` (Extension
``drc``) synced to it. Body 1 gets a label index naming 10,000 random supervoxels (one ``POST
index/1``: no voxels needed), and each supervoxel a blob of random bytes, 20-80 KB (realistic Draco
mesh sizes; ~0.5 GB in all), sent as tars of 1,000 files to ``POST load``.

Figures:

1. ``POST load``: MB/s of the tars (each request timed).
2. ``GET tarfile/1`` (the whole body), ``tarsupervoxels_repeats`` times: MB/s at the median, time to
   the first byte, and the server's peak RSS growth during the GET (VmRSS sampled every 10 ms, and
   VmHWM). The archive of the first GET is parsed with :mod:`tarfile` and checked file by file.
3. The limits, in this process: the same blobs under the same keys written to a LevelDB of this
   process (plyvel, LevelDB's compression off as dvid's) in atomic batches of 1,000, and read back in
   ascending supervoxel order.

Ratios: the GET's MB/s over the in-process read's, the load's over the in-process batch writes';
targets: GET >= 200 MB/s, server RSS growth during the GET < 100 MiB.
"""

from __future__ import annotations

import asyncio
import io
import tarfile
import time
from pathlib import Path

import aiohttp
import numpy as np
import plyvel
from yarl import URL

from bench.dvidapi import DvidAPI
from bench.harness import BenchError, ServerProcess, run_async
from bench.images import BIG_TIMEOUT, RSSWatch, Series, settle, timed
from bench.report import InprocFigure, Ratio, WorkloadReport
from bench.workloads import Env, _profile_notes

LABELMAP = "seg"
INSTANCE = "meshes"
EXTENSION = "drc"
BODY = 1
MIN_BLOB, MAX_BLOB = 20_000, 80_000
FILES_PER_LOAD = 1000
GET_TARGET_MB_S = 200.0
RSS_TARGET_MIB = 100.0
MiB = 1 << 20


def make_blobs(count: int, seed: int = 14) -> dict[int, bytes]:
    """``count`` distinct random supervoxel ids (below 2^40) with random blobs of 20-80 KB."""
    rng = np.random.default_rng(seed)
    svs = np.unique(rng.integers(1, 1 << 40, int(count * 1.01) + 10, dtype=np.uint64))[:count]
    rng.shuffle(svs)
    sizes = rng.integers(MIN_BLOB, MAX_BLOB + 1, len(svs))
    pool = rng.bytes(int(sizes.max()) + 4096)
    # each blob a distinct slice of one random pool (different offsets): random bytes, cheaply made
    offsets = rng.integers(0, 4096, len(svs))
    triples = zip(svs.tolist(), offsets.tolist(), sizes.tolist(), strict=True)
    return {int(sv): pool[o : o + s] for sv, o, s in triples}


def make_tar(items: list[tuple[int, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for sv, blob in items:
            info = tarfile.TarInfo(f"{sv}.{EXTENSION}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return buf.getvalue()


def label_index(body: int, supervoxels: list[int]) -> bytes:
    """A LabelIndex protobuf giving each supervoxel one voxel in block (0, 0, 0)."""
    from dvid.datatype.labelmap import proto

    msg = proto.LabelIndexMsg(label=body)
    counts = msg.blocks[0].counts
    for sv in supervoxels:
        counts[sv] = 1
    return bytes(msg.SerializeToString())


def blob_key(sv: int) -> bytes:
    return bytes((133, 1)) + f"{sv}.{EXTENSION}".encode()


class InprocBlobs:
    """The limit: the blobs in a LevelDB of this process, read by key."""

    def __init__(self, path: Path, blobs: dict[int, bytes]) -> None:
        self.db = plyvel.DB(str(path), create_if_missing=True, compression=None, write_buffer_size=64 * MiB)
        items = list(blobs.items())
        self.write_times: list[float] = []  # one atomic batch per FILES_PER_LOAD blobs, as the load's
        for i in range(0, len(items), FILES_PER_LOAD):
            start = time.perf_counter()
            with self.db.write_batch(transaction=True) as wb:
                for sv, blob in items[i : i + FILES_PER_LOAD]:
                    wb.put(blob_key(sv), blob)
            self.write_times.append(time.perf_counter() - start)
        self.order = sorted(blobs)

    def read_all(self) -> int:
        get = self.db.get
        return sum(len(get(blob_key(sv))) for sv in self.order)

    def close(self) -> None:
        self.db.close()


def tarsupervoxels(env: Env) -> WorkloadReport:
    """load and tarfile of a 10,000-supervoxel body (see the module doc)."""
    report = WorkloadReport("tarsupervoxels")
    count = 2_000 if env.options.seconds < 5 else 10_000  # --quick: 2,000 supervoxels
    repeats = 2 if env.options.seconds < 5 else 5
    blobs = make_blobs(count)
    total = sum(map(len, blobs.values()))
    inproc = InprocBlobs(env._workdir("inproc-tarsupervoxels") / "leveldb", blobs)
    try:
        with env.dvid("tarsupervoxels") as dvid:
            run_async(TarsvRun(report, dvid, blobs, total, inproc, repeats).run())
    finally:
        inproc.close()
    report.notes += _profile_notes(env.options, "tarsupervoxels")
    return report


class TarsvRun:
    def __init__(
        self, report: WorkloadReport, dvid: ServerProcess, blobs: dict[int, bytes], total: int,
        inproc: InprocBlobs, repeats: int,
    ) -> None:  # fmt: skip
        self.report, self.dvid, self.blobs, self.total = report, dvid, blobs, total
        self.inproc, self.repeats = inproc, repeats
        self.tar_bytes = 512 * len(blobs) + sum(-(-len(b) // 512) * 512 for b in blobs.values()) + 1024
        self.ttfb: list[float] = []
        self.rss: list[RSSWatch] = []

    def url(self, uuid: str, tail: str) -> URL:
        return self.api.url(f"node/{uuid}/{INSTANCE}/{tail}")

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=BIG_TIMEOUT) as self.session:
            self.api = DvidAPI(self.session, self.dvid.base)
            try:
                if not await self.api.has_type("tarsupervoxels"):
                    raise BenchError("tarsupervoxels is not served by this dvid")
                uuid = await self.setup()
                load = await self.load(uuid)
                await settle(self.dvid)
                get = await self.get_tarfile(uuid)
                limit = self.limit()
                self.finish(load, get, limit)
            except BenchError as exc:
                self.report.error = str(exc)

    async def setup(self) -> str:
        api = self.api
        uuid = await api.new_repo("bench-tarsupervoxels")
        await api.new_instance(uuid, "labelmap", LABELMAP)
        await api.new_instance(uuid, "tarsupervoxels", INSTANCE, Extension=EXTENSION)
        await api.call("POST", self.url(uuid, "sync"), json_body={"sync": LABELMAP})
        index = label_index(BODY, list(self.blobs))
        await api.call("POST", api.url(f"node/{uuid}/{LABELMAP}/index/{BODY}"), index)
        return uuid

    async def load(self, uuid: str) -> Series:
        items = list(self.blobs.items())
        tars = [make_tar(items[i : i + FILES_PER_LOAD]) for i in range(0, len(items), FILES_PER_LOAD)]
        name = f"POST load ({FILES_PER_LOAD} files, ~{len(tars[0]) / 1e6:.0f} MB)"
        series = Series(name, len(tars[0]), self.dvid)
        url = self.url(uuid, "load")

        async def post(i: int) -> None:
            await self.api.call("POST", url, tars[i])

        for i in range(len(tars)):
            await timed(series, post, i)
        return series

    async def fetch(self, uuid: str, keep: bool) -> bytes:
        start = time.perf_counter()
        parts: list[bytes] = []
        received = 0
        async with self.session.get(self.url(uuid, f"tarfile/{BODY}")) as resp:
            if resp.status != 200:
                raise BenchError(f"GET tarfile -> {resp.status}: {(await resp.read())[:300]!r}")
            async for chunk in resp.content.iter_chunked(1 << 20):
                if not received:
                    self.ttfb.append(time.perf_counter() - start)
                received += len(chunk)
                if keep:
                    parts.append(chunk)
        if received != self.tar_bytes:
            raise BenchError(f"GET tarfile: {received} bytes, expected {self.tar_bytes}")
        return b"".join(parts)

    def check(self, body: bytes) -> None:
        want = sorted(self.blobs)
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:") as tar:
            for sv, member in zip(want, tar, strict=True):
                data = tar.extractfile(member).read() if member.isreg() else None  # type: ignore[union-attr]
                if member.name != f"{sv}.{EXTENSION}" or data != self.blobs[sv]:
                    raise BenchError(f"GET tarfile: entry {member.name} is not supervoxel {sv}'s blob")

    async def get_tarfile(self, uuid: str) -> Series:
        self.check(await self.fetch(uuid, keep=True))  # also the warm-up
        series = Series(f"GET tarfile/<body of {len(self.blobs):,} supervoxels>", self.tar_bytes, self.dvid)
        for i in range(self.repeats):
            with RSSWatch(self.dvid.pid) as watch:
                await timed(series, lambda _i: self.fetch(uuid, keep=False), i)
            self.rss.append(watch)
            await asyncio.sleep(0.2)
        return series

    def limit(self) -> InprocFigure:
        times = []
        for _ in range(self.repeats):
            start = time.perf_counter()
            if self.inproc.read_all() != self.total:
                raise BenchError("in-process read: wrong byte count")
            times.append(time.perf_counter() - start)
        best = sorted(times)[len(times) // 2]
        return InprocFigure(
            f"in-process LevelDB read of the {len(self.blobs):,} blobs ({self.total / 1e6:.0f} MB)",
            ops=len(self.blobs),
            ops_per_s=round(len(self.blobs) / best, 1),
            us_per_op=round(best / len(self.blobs) * 1e6, 2),
        )

    def finish(self, load: Series, get: Series, limit: InprocFigure) -> None:
        self.report.timed += [load.figure(), get.figure()]
        self.report.inproc.append(limit)
        writes = sorted(self.inproc.write_times)
        write_mb_s = (self.total / len(writes)) / writes[len(writes) // 2] / 1e6
        load_mb_s = load.nbytes / load.p50 / 1e6
        get_mb_s = self.tar_bytes / get.p50 / 1e6
        limit_mb_s = self.total / (limit.us_per_op * len(self.blobs) / 1e6) / 1e6
        growth = max(w.growth_mib() for w in self.rss)
        ttfb = sorted(self.ttfb)[len(self.ttfb) // 2] * 1000
        self.report.ratios += [
            Ratio("GET tarfile MB/s", round(get_mb_s, 1), "MB/s", ">=", GET_TARGET_MB_S),
            Ratio("GET tarfile / in-process read (MB/s)", round(get_mb_s / limit_mb_s, 3)),
            Ratio("GET tarfile time to first byte (median)", round(ttfb, 1), "ms"),
            Ratio("GET tarfile server peak RSS growth (max)", round(growth, 1), "MiB", "<", RSS_TARGET_MIB),
            Ratio("POST load MB/s (median)", round(load_mb_s, 1), "MB/s"),
            Ratio("POST load / in-process LevelDB batch writes (MB/s)", round(load_mb_s / write_mb_s, 3)),
        ]
        self.report.notes.append(
            f"in-process read: {limit_mb_s:.0f} MB/s, batch writes {write_mb_s:.0f} MB/s (median);"
            f" archive {self.tar_bytes / 1e6:.0f} MB of"
            f" {len(self.blobs):,} blobs ({self.total / 1e6:.0f} MB)"
        )
