"""The ``labelmap`` workload: labelmap's edits, reads and writes over HTTP, each next to the same model
call in this process (the in-process limit, :class:`bench.labelmap_model.InprocLabelmap`).

One dvid server, one keep-alive connection, one request at a time, each timed; the in-process call
alternates with it round by round (the harness waits, untimed, for idle CPU before each write).
The data (see :mod:`bench.labelmap_model`): R1, 512x512x80 tiled with ~64,000-voxel supervoxels
merged into bodies A and B of ~10^7 voxels each (plus supervoxel S of 1.3 million voxels in B); R2,
256^3 of supervoxels mapped to bodies by ``POST mappings``. Labelmap ``seg`` has MaxDownresLevel 3.
Everything is written at the root, which is then committed; edits each run at a fresh branch of the
root (where A and B are apart and S whole), reads and writes at one child version.

Figures and targets:

1. ``POST merge [A, B]`` (only mapping and indexes change): p50 < 50 ms.
2. ``POST cleave/A`` of every other supervoxel of A (half of them): p50 < 100 ms.
3. ``POST split-supervoxel/S`` of a 10^6-voxel piece (pyramid recomputed above it): p50 < 1 s.
4. ``GET raw`` 256^3 of R2 as bodies (mapping applied): <= 2x the in-process read.
5. ``GET raw ...?compression=googlegzip`` of a 64^3 chunk at scale 0 and at scale 2: p50 <= 5 ms.
6. ``GET labels`` of 1,000 random points of R2: p50 <= 50 ms.
7. ``GET sparsevol/A`` (~10^7 voxels): p50 <= 1 s.
8. ``POST raw`` 256^3 of R2 (variants alternating: indexes move, 3 pyramid levels follow): MB/s.
9. ``POST blocks`` of R2's 64 gzip'd Blocks into labelmap ``ingest`` (indexing): MB/s of voxels.
10. ``POST ingest-labelblk`` of a 256^3 labelblk into a fresh labelmap (64 blocks and 3 scales): MB/s.

Every reply is checked: sizes after edits against numpy's counts, volumes and chunks against the
volume written mapped through the mapping, labels at points, sparsevol voxel counts.
"""

from __future__ import annotations

import functools
import json
import struct
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import numpy as np
from yarl import URL

from bench.dvidapi import DvidAPI
from bench.harness import BenchError, ServerProcess, run_async
from bench.images import BIG_TIMEOUT, Series, SessionRun, settle, stream, timed
from bench.labelmap_model import (
    MAX_DOWNRES,
    R1_XY,
    R2_EDGE,
    R2_OFFSET,
    S_ID,
    InprocLabelmap,
    Volumes,
    build_volumes,
    sparsevol_payload,
)
from bench.labels import decode_googlegzip
from bench.report import Ratio, WorkloadReport
from bench.workloads import Env, _profile_notes
from dvid.datatype.common import rle
from dvid.datatype.labelmap.proto import MappingOps

SEG, INGEST, LEGACY = "seg", "ingest", "legacy"
VOXEL = np.dtype("<u8")
MiB = 1 << 20
R2_BYTES = R2_EDGE**3 * 8
BLOCK_BYTES = 64**3 * 8
SEED = 20261204
#: (figure key, target, op, unit) of the latency targets, in ms.
TARGETS_MS = {
    "merge": 50.0,
    "cleave": 100.0,
    "split": 1000.0,
    "gg0": 5.0,
    "gg2": 5.0,
    "pts": 50.0,
    "sv": 1000.0,
}
GET_TARGET = 2.0  # GET raw 256^3 / in-process


def labelmap(env: Env) -> WorkloadReport:
    """labelmap edits, reads and writes vs the same model calls in this process (see the module doc)."""
    report = WorkloadReport("labelmap")
    t0 = time.perf_counter()
    vols = build_volumes()
    built = time.perf_counter() - t0
    model = InprocLabelmap(env._workdir("inproc-labelmap") / "leveldb")
    try:
        with env.dvid("labelmap") as dvid:
            run_async(LabelmapRun(env, report, dvid, model, vols).run())
    finally:
        model.close()
    report.notes.append(f"data built in {built:.1f} s (numpy, untimed)")
    report.notes += _profile_notes(env.options, "labelmap")
    return report


def body_volume(vols: Volumes, variant: int) -> np.ndarray:
    """R2 variant ``variant`` as bodies (the mapping applied with numpy)."""
    ops = MappingOps.FromString(vols.mapping)
    svs = np.concatenate([np.array(op.original, dtype=np.uint64) for op in ops.mappings])
    bodies = np.concatenate([np.full(len(op.original), op.mapped, np.uint64) for op in ops.mappings])
    order = np.argsort(svs)
    svs, bodies = svs[order], bodies[order]
    vol = vols.r2[variant]
    return bodies[np.searchsorted(svs, vol)].reshape(vol.shape)


def framed(frames: list[tuple[tuple[int, int, int], bytes]]) -> bytes:
    return b"".join(struct.pack("<iiiI", *coord, len(p)) + p for coord, p in frames)


class LabelmapRun(SessionRun):
    def __init__(
        self, env: Env, report: WorkloadReport, dvid: ServerProcess, model: InprocLabelmap, vols: Volumes
    ) -> None:
        super().__init__(report, dvid)
        self.o = env.options
        self.model = model
        self.vols = vols
        self.rounds = self.o.labelmap_repeats
        self.edits = self.o.labelmap_edits
        self.root = ""
        self.work = ""
        self.children = 0
        self.counts: dict[int, int] = {}
        self.bodies = body_volume(vols, 0)
        self.current = 0  # the R2 variant last written
        self.setup_s = 0.0

    # -- helpers
    def url(self, path: str, uuid: str | None = None, instance: str = SEG) -> URL:
        return self.api.url(f"node/{uuid or self.work}/{instance}/{path}")

    async def json(self, method: str, url: URL, body: bytes | None = None) -> Any:
        return json.loads(await self.request(method, url, body))

    async def size(self, uuid: str, label: int) -> int:
        async with self.session.get(self.url(f"size/{label}", uuid)) as resp:
            payload = await resp.read()
            if resp.status == 404:
                return 0
            if resp.status != 200:
                raise BenchError(f"GET size/{label} -> {resp.status}: {payload[:300]!r}")
        return int(json.loads(payload)["voxels"])

    async def expect_size(self, uuid: str, label: int, count: int, what: str) -> None:
        got = await self.size(uuid, label)
        if got != count:
            raise BenchError(f"{what}: body {label} has {got:,} voxels, expected {count:,}")

    async def fresh_child(self, note: str) -> str:
        """A new branch off the committed root."""
        self.children += 1
        body = {"branch": f"bench-{self.children}", "note": note}
        return str(
            (await self.json("POST", self.api.url(f"node/{self.root}/branch"), json.dumps(body).encode()))[
                "child"
            ]
        )

    def raw(self, size: tuple[int, int, int], offset: tuple[int, int, int], query: str = "") -> URL:
        url = self.api.raw_url(self.work, SEG, "0_1_2", size, offset)
        return URL(f"{url}?{query}", encoded=True) if query else url

    # -- the run
    async def run(self) -> None:
        """As SessionRun's, with bodies not gunzipped (googlegzip is timed as sent on the wire)."""
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(
            connector=connector, timeout=BIG_TIMEOUT, auto_decompress=False
        ) as self.session:
            self.api = DvidAPI(self.session, self.dvid.base)
            await self.run_steps(self.steps)

    async def steps(self) -> None:
        if not await self.api.has_type("labelmap"):
            raise BenchError("labelmap is not served by this dvid")
        await self.setup()
        await self.edit_figures()
        await self.get_256()
        await self.googlegzip()
        await self.points()
        await self.sparsevol()
        await self.post_raw()
        await self.post_blocks()
        await self.convert()

    def finish(self) -> None:
        self.publish(*self.series)
        super().finish()

    async def setup(self) -> None:
        t0 = time.perf_counter()
        api, v = self.api, self.vols
        self.root = self.work = await api.new_repo("bench-labelmap")
        await api.new_instance(self.root, "labelmap", SEG, MaxDownresLevel=str(MAX_DOWNRES))
        await api.new_instance(self.root, "labelmap", INGEST)
        await api.new_instance(self.root, "labelblk", LEGACY)
        await self.request("POST", self.url("mappings"), v.mapping)
        await self.request("POST", self.raw((R1_XY, R1_XY, v.r1.shape[0]), (0, 0, 0)), v.r1.tobytes())
        for merge in (v.body_a, v.body_b):
            await self.request("POST", self.url("merge"), json.dumps(merge).encode())
        await self.request("POST", self.raw((R2_EDGE,) * 3, R2_OFFSET), v.r2[0].tobytes())
        legacy = self.api.raw_url(self.root, LEGACY, "0_1_2", (R2_EDGE,) * 3, R2_OFFSET)
        await self.request("POST", legacy, v.r2[0].tobytes())
        await api.commit(self.root, "volumes")
        self.work = await api.newversion(self.root, "work")
        self.model.setup(v)
        labels, counts = np.unique(v.r1, return_counts=True)
        by_label = dict(zip(labels.tolist(), counts.tolist(), strict=True))
        self.counts = {
            v.a: sum(by_label[s] for s in v.body_a),
            v.b: sum(by_label[s] for s in v.body_b),
            S_ID: by_label[S_ID],
        }
        for body in (v.a, v.b):
            await self.expect_size(self.root, body, self.counts[body], "after the setup")
        self.setup_s = time.perf_counter() - t0
        await settle(self.dvid)

    # -- 1-3. edits, each at a fresh branch of the root
    async def edit_figures(self) -> None:
        v, m = self.vols, self.model
        a, b = v.a, v.b
        half = v.cleave_half()
        runs_body = sparsevol_payload(v.split_runs)
        edits: list[tuple[str, str, str, Callable[[str], Any], Callable[[Any], Any]]] = [
            (
                "merge",
                f"POST merge [A, B] ({self.counts[a] / 1e6:.1f}M + {self.counts[b] / 1e6:.1f}M vox)",
                "in-process merge",
                lambda child: self.request("POST", self.url("merge", child), json.dumps([a, b]).encode()),
                lambda node: m.merge(node, a, [b]),
            ),
            (
                "cleave",
                f"POST cleave/A of {len(half)} of its {len(v.body_a)} svs",
                "in-process cleave",
                lambda child: self.json("POST", self.url(f"cleave/{a}", child), json.dumps(half).encode()),
                lambda node: m.cleave(node, a, half),
            ),
            (
                "split",
                f"POST split-supervoxel/S {v.split_voxels / 1e6:.2f}M vox",
                "in-process split-supervoxel",
                lambda child: self.json("POST", self.url(f"split-supervoxel/{S_ID}", child), runs_body),
                lambda node: m.split_supervoxel(node, S_ID, v.split_runs),
            ),
        ]
        for key, name, iname, http, inproc in edits:
            series = self.new_series(key, name, 0, self.dvid)
            iseries = self.new_series("i" + key, iname, 0, None)
            for i in range(self.edits):
                child = await self.fresh_child(f"{key} {i}")
                node = m.fresh_child()
                replies: list[Any] = []

                async def do(
                    _: int, child: str = child, replies: list[Any] = replies, http: Any = http
                ) -> None:
                    replies.append(await http(child))

                pair: list[tuple[Any, Callable[[int], Any]]] = [
                    (series, do),
                    (iseries, functools.partial(_call_with, inproc, node)),
                ]
                for s, fn in pair if i % 2 == 0 else pair[::-1]:
                    await settle(self.dvid)
                    await timed(s, fn, i)
                if i in (0, self.edits - 1):
                    await self.check_edit(key, child, replies[0])

    async def check_edit(self, key: str, child: str, reply: Any) -> None:
        a, b = self.vols.a, self.vols.b
        if key == "merge":
            await self.expect_size(child, a, self.counts[a] + self.counts[b], "after a merge")
            await self.expect_size(child, b, 0, "after a merge")
        elif key == "cleave":
            new = int(reply["CleavedLabel"])
            total = self.counts[a]
            got = await self.size(child, new) + await self.size(child, a)
            if got != total or not 0 < await self.size(child, new) < total:
                raise BenchError(f"after a cleave A and the cleaved body hold {got:,} voxels, not {total:,}")
        else:
            split = await self.size_sv(child, int(reply["SplitSupervoxel"]))
            if split != self.vols.split_voxels:
                raise BenchError(f"split-supervoxel made {split:,} voxels, not {self.vols.split_voxels:,}")
            await self.expect_size(child, b, self.counts[b], "after a split-supervoxel")
        await self.expect_size(self.root, b, self.counts[b], "at the root after the edits")

    async def size_sv(self, uuid: str, sv: int) -> int:
        reply = await self.json("GET", self.url(f"size/{sv}?supervoxels=true", uuid))
        return int(reply["voxels"])

    # -- 4-7. reads at the work version
    async def alternate(self, pairs: list[tuple[Series, Callable[[int], Any]]], rounds: int) -> None:
        for _, fn in pairs:  # untimed warm-up
            await _call(fn, rounds)
        for i in range(rounds):
            for s, fn in pairs if i % 2 == 0 else pairs[::-1]:
                await timed(s, fn, i)

    async def get_256(self) -> None:
        cube = (R2_EDGE,) * 3
        url = self.raw(cube, R2_OFFSET)
        body = await self.request("GET", url)
        if body != self.bodies.tobytes():
            raise BenchError("GET raw 256^3 did not return R2's bodies")
        got = self.model.get_raw(cube, R2_OFFSET)
        if not np.array_equal(got, self.bodies):
            raise BenchError("in-process read did not return R2's bodies (harness bug)")
        await self.alternate(
            [
                (self.new_series("get", "GET raw 256^3 bodies (streamed)", R2_BYTES, self.dvid),
                 lambda i: stream(self.session, url, R2_BYTES)),
                (self.new_series("iget", "in-process read 256^3 bodies", R2_BYTES, None),
                 lambda i: self.model.get_raw(cube, R2_OFFSET)),
            ],
            self.rounds,
        )  # fmt: skip

    async def googlegzip(self) -> None:
        rnd = np.random.default_rng(SEED)
        n = 3 * self.rounds

        def corners(n_xy: int, z0: int, n_z: int) -> list[tuple[int, int, int]]:
            """Random block-aligned 64^3 chunks of an n_xy x n_xy x n_z block grid from z0."""
            grid = np.stack([rnd.integers(0, n_xy, n + 1), rnd.integers(0, n_xy, n + 1),
                             z0 + rnd.integers(0, n_z, n + 1)], axis=1) * 64  # fmt: skip
            return [(int(x), int(y), int(z)) for x, y, z in grid.tolist()]

        at_scale2 = [(0, 0, 0), (64, 0, 0), (0, 64, 0), (64, 64, 0), (0, 0, 64)]  # its blocks with data
        chunks = {0: corners(4, 2, 4), 2: [at_scale2[k] for k in rnd.integers(0, len(at_scale2), n + 1)]}
        cube = (64, 64, 64)
        for scale, offsets in chunks.items():
            query = f"compression=googlegzip&scale={scale}"
            for offset in offsets[:3]:
                body = await self.request("GET", self.raw(cube, offset, query))
                if not np.array_equal(decode_googlegzip(body, cube), self.model.get_raw(cube, offset, scale)):
                    raise BenchError(f"googlegzip chunk {offset} at scale {scale} differs from the read")
            dvid_chunk = self.new_series(
                f"gg{scale}", f"GET googlegzip 64^3 scale {scale}", BLOCK_BYTES, self.dvid
            )
            model_chunk = self.new_series(
                f"igg{scale}", f"in-process googlegzip 64^3 scale {scale}", BLOCK_BYTES, None
            )
            decoded = self.new_series(
                f"dgg{scale}", f"  in-process read+encode scale {scale}", BLOCK_BYTES, None
            )

            def over_http(i: int, o: list[Any] = offsets, q: str = query) -> Any:
                return self.request("GET", self.raw(cube, o[i], q))

            def in_process(i: int, o: list[Any] = offsets, s: int = scale) -> Any:
                return self.model.googlegzip(o[i], s)

            def decoded_in_process(i: int, o: list[Any] = offsets, s: int = scale) -> Any:
                return self.model.googlegzip_decoded(o[i], s)

            calls: list[tuple[Any, Callable[[int], Any]]] = [
                (dvid_chunk, over_http),
                (model_chunk, in_process),
                (decoded, decoded_in_process),
            ]
            await self.alternate(calls, n)

    async def points(self) -> None:
        n = 1000
        rnd = np.random.default_rng(SEED + 1)
        sets = [rnd.integers(0, R2_EDGE, (n, 3)) + np.array(R2_OFFSET) for _ in range(self.rounds + 1)]
        bodies = [json.dumps(p.tolist()).encode() for p in sets]
        url = self.url("labels")
        for pts, body in zip(sets[:2], bodies[:2], strict=True):
            expected = self.bodies[
                pts[:, 2] - R2_OFFSET[2], pts[:, 1] - R2_OFFSET[1], pts[:, 0] - R2_OFFSET[0]
            ]
            if json.loads(await self.request("GET", url, body)) != expected.tolist():
                raise BenchError("GET labels returned other bodies than the volume's")
            if not np.array_equal(self.model.labels(pts), expected):
                raise BenchError("in-process labels_at returned other bodies (harness bug)")
        await self.alternate(
            [
                (self.new_series("pts", f"GET labels, {n} points", len(bodies[0]), self.dvid),
                 lambda i: self.request("GET", url, bodies[i])),
                (self.new_series("ipts", f"in-process labels at {n} points", len(bodies[0]), None),
                 lambda i: self.model.labels(sets[i])),
            ],
            self.rounds,
        )  # fmt: skip

    async def sparsevol(self) -> None:
        a = self.vols.a
        url = self.url(f"sparsevol/{a}")
        payload = await self.request("GET", url)
        voxels = int(rle.decode_sparsevol(payload)[:, 3].astype(np.int64).sum())
        if voxels != self.counts[a]:
            raise BenchError(f"sparsevol/A holds {voxels:,} voxels, not {self.counts[a]:,}")
        if self.model.sparsevol(a) != payload:
            raise BenchError("in-process sparsevol differs from the HTTP one (harness bug)")
        runs = (len(payload) - 12) // 16
        await self.alternate(
            [
                (self.new_series("sv", f"GET sparsevol/A {voxels / 1e6:.1f}M vox {runs // 1000}k runs",
                                 len(payload), self.dvid),
                 lambda i: self.request("GET", url)),
                (self.new_series("isv", "in-process sparsevol/A", len(payload), None),
                 lambda i: self.model.sparsevol(a)),
            ],
            self.edits,
        )  # fmt: skip

    # -- 8-10. writes at the work version
    async def writes(self, pairs: list[tuple[Series, Callable[[int], Any]]], rounds: int) -> None:
        for i in range(rounds):
            for s, fn in pairs if i % 2 == 0 else pairs[::-1]:
                await settle(self.dvid)
                await timed(s, fn, i)

    async def post_raw(self) -> None:
        v = self.vols
        url = self.raw((R2_EDGE,) * 3, R2_OFFSET)
        bodies = [r.tobytes() for r in v.r2]
        await self.writes(
            [
                (self.new_series("post", "POST raw 256^3 (index, 3 scales)", R2_BYTES, self.dvid),
                 lambda i: self.request("POST", url, bodies[(i + 1) % 2])),
                (self.new_series("ipost", "in-process write 256^3 (index, 3 scales)", R2_BYTES, None),
                 lambda i: self.model.post_raw(v.r2[(i + 1) % 2], R2_OFFSET)),
            ],
            self.edits,
        )  # fmt: skip
        self.current = self.edits % 2
        expected = body_volume(v, self.current)
        if await self.request("GET", url) != expected.tobytes():
            raise BenchError("GET raw 256^3 after the POSTs did not return the bodies of the volume POSTed")

    async def post_blocks(self) -> None:
        streams = [framed(f) for f in self.vols.frames]
        url = self.url("blocks", instance=INGEST)
        await self.writes(
            [
                (self.new_series("blocks", f"POST blocks 64 ({len(streams[0]) / MiB:.1f} MiB gzip)",
                                 R2_BYTES, self.dvid),
                 lambda i: self.request("POST", url, streams[i % 2])),
                (self.new_series("iblocks", "in-process store_blocks 64", R2_BYTES, None),
                 lambda i: self.model.post_blocks(self.vols.frames[i % 2])),
            ],
            self.edits,
        )  # fmt: skip
        last = (self.edits - 1) % 2
        got = await self.request(
            "GET", self.api.raw_url(self.work, INGEST, "0_1_2", (R2_EDGE,) * 3, R2_OFFSET)
        )
        if got != self.vols.r2[last].tobytes():
            raise BenchError("GET raw of the ingested blocks did not return the volume posted")

    async def convert(self) -> None:
        rounds = max(2, self.edits // 2)
        for i in range(rounds):  # fresh labelmaps to convert into, made beforehand (untimed)
            await self.api.new_instance(self.work, "labelmap", f"conv-{i}", MaxDownresLevel=str(MAX_DOWNRES))
            self.model.new_labelmap(f"conv-{i}")

        async def http(i: int) -> None:
            reply = await self.json(
                "POST", self.url(f"ingest-labelblk?source={LEGACY}&blocks=65536", instance=f"conv-{i}")
            )
            if not reply["complete"]:
                raise BenchError(f"ingest-labelblk did not finish in one step: {reply}")

        await self.writes(
            [
                (self.new_series("conv", "POST ingest-labelblk 256^3 +3 scales", R2_BYTES, self.dvid), http),
                (self.new_series("iconv", "in-process ingest_labelblk 256^3", R2_BYTES, None),
                 lambda i: self.model.convert(f"conv-{i}")),
            ],
            rounds,
        )  # fmt: skip
        got = await self.request(
            "GET", self.api.raw_url(self.work, "conv-0", "0_1_2", (R2_EDGE,) * 3, R2_OFFSET)
        )
        if got != self.vols.r2[0].tobytes():
            raise BenchError("the converted labelmap does not hold the labelblk's labels")

    # -- results
    def ratios(self) -> list[Ratio]:
        s = self.series

        def have(*keys: str) -> bool:
            return all(k in s and s[k].times for k in keys)

        out: list[Ratio] = []
        names = {"merge": "POST merge p50", "cleave": "POST cleave p50", "split": "POST split-supervoxel p50",
                 "gg0": "GET googlegzip 64^3 scale 0 p50", "gg2": "GET googlegzip 64^3 scale 2 p50",
                 "pts": "GET labels 1000 points p50", "sv": "GET sparsevol 10^7 voxels p50"}  # fmt: skip
        for key, name in names.items():
            if have(key):
                target = TARGETS_MS[key]
                op = "<" if key in ("merge", "cleave") else "<="
                out.append(Ratio(name, s[key].p50 * 1000, unit="ms", op=op, target=target))
                if have("i" + key):
                    out.append(Ratio(f"  / {s['i' + key].name}", s[key].p50 / s["i" + key].p50))
                if have("i" + key, "d" + key):
                    note = "the stored Block transcoded / the volume decoded and encoded"
                    gain = s["i" + key].p50 / s["d" + key].p50
                    out.append(Ratio("  in-process: transcoded / read+encode", gain, note=note))
        if have("get", "iget"):
            out.append(Ratio("GET raw 256^3 bodies / in-process read", s["get"].p50 / s["iget"].p50,
                             op="<=", target=GET_TARGET))  # fmt: skip
        for key, name in (("post", "POST raw 256^3"), ("blocks", "POST blocks"), ("conv", "ingest-labelblk")):
            if have(key):
                out.append(Ratio(f"{name} MB/s (voxels)", R2_BYTES / s[key].p50 / 1e6, unit="MB/s"))
                if have("i" + key):
                    out.append(Ratio(f"  / {s['i' + key].name}", s[key].p50 / s["i" + key].p50))
        return out

    def notes(self) -> list[str]:
        v = self.vols
        return [
            f"labelmap {SEG!r} MaxDownresLevel {MAX_DOWNRES}, BlockSize 64^3."
            f" R1 {R1_XY}x{R1_XY}x{v.r1.shape[0]}:"
            f" body A {len(v.body_a)} svs {self.counts.get(v.a, 0):,} voxels, body B {len(v.body_b)} svs"
            f" {self.counts.get(v.b, 0):,} voxels (S {self.counts.get(S_ID, 0):,}); R2 256^3 at"
            f" {R2_OFFSET}. Edits {self.edits} repeats at fresh branches of the committed root; reads"
            f" {self.rounds} rounds (googlegzip {3 * self.rounds}); one request at a time, alternating with"
            f" the in-process model call. Setup (POSTs, merges) {self.setup_s:.1f} s."
        ]


async def _call(fn: Callable[[int], Any], i: int) -> None:
    result = fn(i)
    if hasattr(result, "__await__"):
        await result


def _call_with(fn: Callable[[Any], Any], arg: Any, _round: int) -> Any:
    return fn(arg)
