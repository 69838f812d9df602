"""The ``rois`` workload: roi ptquery of 100,000 points against a 1,000-span ROI over HTTP.

One dvid server (a repo with a ``roi`` instance, BlockSize 32^3) gets 1,000 random spans (block z and
y in [0, 40), runs of 1-20 blocks starting at x in [0, 200)) by one ``POST roi``. Then ``POST ptquery``
with 100,000 random voxel points inside the ROI's bounding box (a 2.3 MB JSON body; about a tenth
of the points are inside) is timed alone, ``labelvol_repeats`` times (default 5, quick 2): target
p50 < 0.5 s. The answer is checked against a brute-force set model.

Baselines in the same run, in this process, alternating with the HTTP requests: the same work
with plain json + numpy (parse the body, floor-divide, a sorted-key ``searchsorted``; none of dvid's
code), and dvid's own model (``parse_points`` + ``SpanIndex``) without HTTP.
"""

from __future__ import annotations

import json
import time

import numpy as np

from bench.harness import BenchError, ServerProcess, run_async
from bench.images import BIG_TIMEOUT, SessionRun, timed
from bench.report import Ratio, WorkloadReport
from bench.workloads import Env

ROI = "myroi"
SPANS = 1000
POINTS = 100_000
BS = 32
TARGET_S = 0.5


def make_spans(rng: np.random.Generator) -> np.ndarray:
    z = rng.integers(0, 40, SPANS)
    y = rng.integers(0, 40, SPANS)
    x0 = rng.integers(0, 200, SPANS)
    return np.stack([z, y, x0, x0 + rng.integers(0, 20, SPANS)], axis=1)


def make_points(rng: np.random.Generator) -> np.ndarray:
    return np.stack(
        [
            rng.integers(0, 220 * BS, POINTS),
            rng.integers(0, 40 * BS, POINTS),
            rng.integers(0, 40 * BS, POINTS),
        ],
        axis=1,
    )


def numpy_ptquery(spans: np.ndarray, body: bytes) -> np.ndarray:
    """The baseline: plain json + numpy, one block key per point and a searchsorted per point."""
    pts = np.array(json.loads(body), dtype=np.int64) // BS
    blocks = np.unique(
        np.concatenate([(s[0] << 40) + (s[1] << 20) + np.arange(s[2], s[3] + 1) for s in spans.tolist()])
    )
    key = (pts[:, 2] << 40) + (pts[:, 1] << 20) + pts[:, 0]
    i = np.minimum(np.searchsorted(blocks, key), len(blocks) - 1)
    return blocks[i] == key


def rois(env: Env) -> WorkloadReport:
    report = WorkloadReport("rois")
    with env.dvid("rois") as dvid:
        run_async(RoisRun(env, report, dvid).run())
    return report


class RoisRun(SessionRun):
    typename = "roi"

    def __init__(self, env: Env, report: WorkloadReport, dvid: ServerProcess) -> None:
        super().__init__(report, dvid)
        self.repeats = env.options.labelvol_repeats
        rng = np.random.default_rng(7)
        self.spans = make_spans(rng)
        self.points = make_points(rng)
        self.body = json.dumps(self.points.tolist()).encode()
        blocks = {(x, y, z) for z, y, x0, x1 in self.spans.tolist() for x in range(x0, x1 + 1)}
        b = (self.points // BS).tolist()
        self.expected = np.array([(p[0], p[1], p[2]) in blocks for p in b])

    async def steps(self) -> None:
        if not await self.api.has_type("roi"):
            return
        api = self.api
        self.uuid = uuid = await api.new_repo("bench-rois")
        await api.new_instance(uuid, "roi", ROI)
        await api.call("POST", api.url(f"node/{uuid}/{ROI}/roi"), json.dumps(self.spans.tolist()).encode())
        url = api.url(f"node/{uuid}/{ROI}/ptquery")

        async def http(i: int) -> None:
            async with self.session.post(url, data=self.body, timeout=BIG_TIMEOUT) as resp:
                payload = await resp.read()
                if resp.status != 200:
                    raise BenchError(f"POST ptquery -> {resp.status}: {payload[:300]!r}")
            if i == 0 and not np.array_equal(np.array(json.loads(payload)), self.expected):
                raise BenchError("ptquery answer differs from the brute-force model")

        def inproc_numpy(i: int) -> None:
            got = numpy_ptquery(self.spans, self.body)
            if i == 0 and not np.array_equal(got, self.expected):
                raise BenchError("baseline answer differs from the brute-force model (harness bug)")

        def inproc_dvid(i: int) -> None:
            from dvid.datatype.common.spans import SpanIndex, parse_points

            got = SpanIndex(self.spans).contains_points(parse_points(self.body), (BS, BS, BS))
            if i == 0 and not np.array_equal(got, self.expected):
                raise BenchError("dvid's in-process model differs from the brute-force model")

        nbytes = len(self.body)
        steps = [
            (
                self.new_series(
                    "http", f"POST ptquery {POINTS:,} points / {SPANS:,} spans", nbytes, self.dvid
                ),
                http,
            ),
            (self.new_series("np", "in-process json + numpy (no dvid code)", nbytes, None), inproc_numpy),
            (self.new_series("model", "in-process dvid model (no HTTP)", nbytes, None), inproc_dvid),
        ]
        for _, fn in steps:  # warm-up, untimed, with the checks
            r = fn(0)
            if r is not None:
                await r
        for i in range(1, self.repeats + 1):
            for series, fn in steps:
                await timed(series, fn, i)
            time.sleep(0)

    def finish(self) -> None:
        self.publish("http", "np", "model")
        super().finish()

    def ratios(self) -> list[Ratio]:
        s = self.series
        out: list[Ratio] = []
        if "http" in s and s["http"].times:
            out.append(Ratio("POST ptquery p50", s["http"].p50, unit="s", op="<", target=TARGET_S))
            for key in ("np", "model"):
                if key in s and s[key].times:
                    out.append(
                        Ratio(f"  / {s[key].name}", s["http"].p50 / s[key].p50, note="context, no target")
                    )
        return out

    def notes(self) -> list[str]:
        inside = int(self.expected.sum())
        return [
            f"roi {ROI!r} (BlockSize {BS}^3) with {SPANS:,} random spans; {POINTS:,} random points"
            f" ({len(self.body) / 1e6:.1f} MB of JSON, {inside:,} inside), each request timed alone"
            f" ({self.repeats} repeats, alternating with the in-process baselines)"
        ]
