"""The ``labelvol`` workload: sparsevol, merge and split of large bodies over HTTP.

One dvid server (a repo with a ``labelblk`` ``seg`` and a ``labelvol`` ``bodies``, both BlockSize
64^3, synced both ways as labelvol's help asks) gets a synthetic 384^3 uint64 volume (432 MiB,
216 blocks) by one raw POST to ``seg``, which indexes the bodies' runs. In the volume:

- z < 192 (108 blocks): bodies 1 and 2 interleaved in x stripes 16 voxels wide (each in all 108
  blocks, ~14 million voxels each);
- z >= 192: body 3 where x < 144 plus a wavy offset (~10^7 voxels, 54 blocks), the rest bodies 4
  (y < 192) and 5;
- label 6 sprinkled everywhere ((x + y + z) % 97 == 0), so every body has holes.

Figures (each request timed alone, ``labelvol_repeats`` times; the root is committed after the POST):

1. ``GET sparsevol/3`` (~10^7 voxels) at the root: target p50 < 0.5 s.
2. ``POST merge [1, 2]`` (two bodies of 108 blocks each): target p50 < 1 s. Every repeat merges in
   a fresh child version of the root (``newversion`` the first time, then ``branch``: one version has
   one child per branch), where 1 and 2 are still apart.
3. ``POST split/1`` with a sparsevol of the voxels of body 1 with x < 192 (about half of it, in
   54 blocks), built with numpy: target p50 < 1 s, each repeat at a fresh child of the root.

Baselines in the same run, in this process (plyvel + lz4 + numpy, :class:`bench.imgbase.InprocBlocks`,
none of dvid's code): reading the 54 blocks that hold body 3, and reading, relabelling and writing
back the 108 blocks of bodies 1 and 2. Checks: sparsevol voxel counts equal numpy's; after a merge
body 1 has the voxels of 1 and 2 and body 2 none; after a split the new label has the selected
voxels and body 1 the rest.
"""

from __future__ import annotations

import functools
import json
import struct
from typing import Any

import numpy as np
from yarl import URL

from bench.harness import BenchError, ServerProcess, run_async
from bench.images import BIG_TIMEOUT, SessionRun, settle, timed
from bench.imgbase import InprocBlocks
from bench.report import Ratio, WorkloadReport
from bench.workloads import Env, _profile_notes

LABELBLK = "seg"
LABELVOL = "bodies"
EDGE = 384
BS = 64
HALF = EDGE // 2
VOXEL = np.dtype("<u8")
SPARSE_TARGET_S = 0.5
MERGE_TARGET_S = 1.0
SPLIT_TARGET_S = 1.0
SPLIT_X = 192  # the split selects the voxels of body 1 with x < SPLIT_X


def label_volume() -> np.ndarray:
    """The (z, y, x) uint64 volume described in the module doc."""
    z, y, x = np.ogrid[0:EDGE, 0:EDGE, 0:EDGE]
    vol = np.empty((EDGE, EDGE, EDGE), VOXEL)
    top = vol[:HALF]
    top[...] = np.where((x // 16) % 2 == 0, 1, 2)
    bottom = vol[HALF:]
    zb = z[HALF:]
    edge = 144 + (8 * np.sin(y / 7.0) + 8 * np.cos(zb / 11.0)).astype(np.int64)
    bottom[...] = np.where(x < edge, 3, np.where(y < HALF, 4, 5))
    vol[(x + y + z) % 97 == 0] = 6
    return vol


def mask_runs(mask: np.ndarray) -> np.ndarray:
    """The x-runs of a (z, y, x) boolean mask as an (n, 4) int32 array of (x, y, z, length)."""
    _, ny, nx = mask.shape
    flat = mask.reshape(-1, nx)
    pad = np.zeros((flat.shape[0], nx + 2), np.int8)
    pad[:, 1:-1] = flat
    d = np.diff(pad, axis=1)
    rs, xs = np.nonzero(d == 1)
    re, xe = np.nonzero(d == -1)
    if not np.array_equal(rs, re):
        raise BenchError("run extraction mismatch (harness bug)")
    zz, yy = np.divmod(rs, ny)
    return np.stack([xs, yy, zz, xe - xs], axis=1).astype(np.int32)


def sparsevol_body(runs: np.ndarray) -> bytes:
    """A legacy sparsevol payload (see dvid/datatype/common/rle.py ``encode_sparsevol``)."""
    return bytes([0, 3, 0, 0]) + struct.pack("<II", 0, len(runs)) + runs.astype("<i4").tobytes()


def sparsevol_voxels(payload: bytes) -> int:
    (n,) = struct.unpack_from("<I", payload, 8)
    if len(payload) != 12 + 16 * n:
        raise BenchError(f"sparsevol payload of {len(payload)} bytes declares {n} runs")
    runs = np.frombuffer(payload, "<i4", offset=12).reshape(-1, 4)
    return int(runs[:, 3].astype(np.int64).sum())


def labelvol(env: Env) -> WorkloadReport:
    """sparsevol / merge / split of large bodies (see the module doc)."""
    report = WorkloadReport("labelvol")
    vol = label_volume()
    with env.dvid("labelvol") as dvid:
        store = InprocBlocks(env._workdir("inproc-labelvol") / "leveldb", BS, VOXEL)
        try:
            store.post(vol, (0, 0, 0))
            run_async(LabelvolRun(env, report, dvid, store, vol).run())
        finally:
            store.close()
    report.notes += _profile_notes(env.options, "labelvol")
    return report


class LabelvolRun(SessionRun):
    def __init__(
        self, env: Env, report: WorkloadReport, dvid: ServerProcess, store: InprocBlocks, vol: np.ndarray
    ) -> None:
        super().__init__(report, dvid)
        self.o = env.options
        self.store = store
        self.vol = vol
        self.repeats = self.o.labelvol_repeats
        self.counts = {k: int(v) for k, v in zip(*np.unique(vol, return_counts=True), strict=True)}
        self.root = ""
        self.children = 0

    def url(self, uuid: str, path: str) -> URL:
        return self.api.url(f"node/{uuid}/{LABELVOL}/{path}")

    async def sparsevol_count(self, uuid: str, label: int) -> int:
        """Voxels of ``label`` at ``uuid`` per its sparsevol (0 when 404)."""
        async with self.session.get(self.url(uuid, f"sparsevol/{label}"), timeout=BIG_TIMEOUT) as resp:
            payload = await resp.read()
            if resp.status == 404:
                return 0
            if resp.status != 200:
                raise BenchError(f"GET sparsevol/{label} -> {resp.status}: {payload[:300]!r}")
        return sparsevol_voxels(payload)

    async def expect(self, uuid: str, label: int, count: int, what: str) -> None:
        got = await self.sparsevol_count(uuid, label)
        if got != count:
            raise BenchError(f"{what}: sparsevol/{label} has {got:,} voxels, expected {count:,}")

    async def steps(self) -> None:
        if not (await self.api.has_type("labelblk") and await self.api.has_type("labelvol")):
            raise BenchError("labelblk or labelvol is not served by this dvid")
        await self.setup()
        await self.sparsevol()
        await self.merge()
        await self.split()

    def finish(self) -> None:
        self.publish(*self.series)
        super().finish()

    def notes(self) -> list[str]:
        return [self.note()]

    async def setup(self) -> None:
        api = self.api
        self.root = uuid = await api.new_repo("bench-labelvol")
        await api.new_instance(uuid, "labelblk", LABELBLK, BlockSize="64,64,64")
        await api.new_instance(uuid, "labelvol", LABELVOL, BlockSize="64,64,64")
        for name, target in ((LABELVOL, LABELBLK), (LABELBLK, LABELVOL)):
            await api.call("POST", api.url(f"node/{uuid}/{name}/sync"), json_body={"sync": target})
        raw = api.raw_url(uuid, LABELBLK, "0_1_2", (EDGE,) * 3, (0, 0, 0))
        name = f"POST {EDGE}^3 labelblk raw (+ index)"
        post = self.new_series("post", name, self.vol.nbytes, self.dvid)
        await timed(post, lambda i: self.request("POST", raw, self.vol.tobytes()), 0)
        await api.commit(uuid, "volume")
        for label in (1, 2, 3):
            await self.expect(uuid, label, self.counts[label], "after the POST")
        await settle(self.dvid)

    async def sparsevol(self) -> None:
        """1. GET sparsevol/3 (~10^7 voxels) and sparsevol/1 (the largest, striped: many runs) at the
        root, each next to the in-process read of the blocks holding the body."""
        cases = (
            ("sv", 3, 54, (192, EDGE, HALF), (0, 0, HALF)),
            ("sv1", 1, 108, (EDGE, EDGE, HALF), (0, 0, 0)),
        )
        steps = []
        for key, label, nblocks, size, offset in cases:
            url = self.url(self.root, f"sparsevol/{label}")
            n = self.counts[label]
            payload = await self.request("GET", url)
            if (got := sparsevol_voxels(payload)) != n:
                raise BenchError(f"sparsevol/{label} has {got:,} voxels, numpy counts {n:,}")
            runs = len(payload) // 16
            name = f"GET sparsevol/{label} {n / 1e6:.1f}M vox {runs // 1000}k runs"
            sv = self.new_series(key, name, len(payload), self.dvid)
            base = self.new_series("i" + key, f"in-process read {nblocks} blocks", nblocks * BS**3 * 8, None)
            steps += [
                (sv, functools.partial(self._request_at, "GET", url, b"")),
                (base, functools.partial(self._get_at, size, offset)),
            ]
        for i in range(self.repeats):
            for series, fn in steps if i % 2 == 0 else steps[::-1]:
                await timed(series, fn, i)

    async def _request_at(self, method: str, url: Any, body: bytes, _round: int) -> Any:
        return await self.request(method, url, body or None)

    def _get_at(self, size: Any, offset: Any, _round: int) -> Any:
        return self.store.get(size, offset)

    async def fresh_child(self, note: str) -> str:
        """A new child of the committed root: ``newversion`` the first time, then a new branch each."""
        self.children += 1
        if self.children == 1:
            return await self.api.newversion(self.root, note)
        body = {"branch": f"bench-{self.children}", "note": note}
        reply = await self.api.call("POST", self.api.url(f"node/{self.root}/branch"), json_body=body)
        return str(json.loads(reply)["child"])

    async def merge(self) -> None:
        """2. POST merge [1, 2] at a fresh child of the root, vs the in-process read+relabel+write."""
        n1, n2 = self.counts[1], self.counts[2]
        mg = self.new_series("merge", "POST merge [1, 2] (108 blocks each)", 0, self.dvid)
        base = self.new_series("imerge", "in-process read+relabel+write 108 blk", 108 * BS**3 * 8, None)
        size = (EDGE, EDGE, HALF)

        def relabel(i: int) -> None:
            top = self.store.get(size, (0, 0, 0))
            top[top == 2] = 1
            self.store.post(top, (0, 0, 0))

        for i in range(self.repeats):
            child = await self.fresh_child(f"merge {i}")
            await settle(self.dvid)
            url = self.url(child, "merge")
            await timed(mg, functools.partial(self._request_at, "POST", url, b"[1, 2]"), i)
            await settle(self.dvid)  # also this process: the in-process store's compactions
            await timed(base, relabel, i)
            if i in (0, self.repeats - 1):
                await self.expect(child, 1, n1 + n2, f"after merge {i}")
                await self.expect(child, 2, 0, f"after merge {i}")
        self.store.post(self.vol[:HALF], (0, 0, 0))
        await self.expect(self.root, 2, n2, "the root after the merges")

    async def split(self) -> None:
        """3. POST split/1 of body 1's voxels with x < 192, at a fresh child of the root."""
        mask = self.vol == 1
        mask[:, :, SPLIT_X:] = False
        runs = mask_runs(mask)
        chosen = int(runs[:, 3].astype(np.int64).sum())
        if chosen != int(mask.sum()):
            raise BenchError("split runs do not cover the mask (harness bug)")
        body = sparsevol_body(runs)
        name = f"POST split/1 {chosen / 1e6:.1f}M vox {len(runs) // 1000}k runs"
        sp = self.new_series("split", name, len(body), self.dvid)
        for i in range(self.repeats):
            child = await self.fresh_child(f"split {i}")
            await settle(self.dvid)
            reply: list[bytes] = []

            async def do(i: int, child: str = child, reply: list[bytes] = reply) -> None:
                reply.append(await self.request("POST", self.url(child, "split/1"), body))

            await timed(sp, do, i)
            if i in (0, self.repeats - 1):
                new = int(json.loads(reply[0])["label"])
                await self.expect(child, new, chosen, f"after split {i}")
                await self.expect(child, 1, self.counts[1] - chosen, f"after split {i}")
        await self.expect(self.root, 1, self.counts[1], "the root after the splits")

    def ratios(self) -> list[Ratio]:
        s = self.series
        out: list[Ratio] = []
        for key, label, target in (
            ("sv", f"GET sparsevol/3 ({self.counts[3] / 1e7:.2f}e7 voxels) p50", SPARSE_TARGET_S),
            ("sv1", f"GET sparsevol/1 ({self.counts[1] / 1e7:.2f}e7 voxels) p50", None),
            ("merge", "POST merge of two 108-block bodies p50", MERGE_TARGET_S),
            ("split", "POST split/1 of half a 108-block body p50", SPLIT_TARGET_S),
        ):
            if key in s and s[key].times:
                op = "<" if target is not None else ""
                out.append(Ratio(label, s[key].p50, unit="s", op=op, target=target))
            if "i" + key in s and s[key].times and s["i" + key].times:
                base = s["i" + key]
                out.append(Ratio(f"  / {base.name}", s[key].p50 / base.p50, note="context, no target"))
        return out

    def note(self) -> str:
        c = self.counts
        return (
            f"labelblk {LABELBLK!r} + labelvol {LABELVOL!r} (BlockSize {BS}^3, synced both ways); {EDGE}^3"
            f" uint64 POSTed once: bodies 1 and 2 interleaved in 108 blocks ({c[1]:,} and {c[2]:,} voxels),"
            f" body 3 {c[3]:,} voxels in 54 blocks, bodies 4, 5 and sprinkled 6. Merges and splits each at a"
            " fresh child version of the committed root (newversion, then one branch per repeat);"
            f" {self.repeats} repeats, one request at a time. In-process baselines: plyvel + lz4 + numpy on"
            " the same blocks (no dvid code)."
        )
