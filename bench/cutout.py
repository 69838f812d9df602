"""The ``cutout`` workload: 3-D raw GETs answered as npz, hdf5, tiff and blosc files against the
raw stream of the same box, in the same run (``?format=``, dvid/datatype/common/cutout.py).

Volumes: a ``cutout_gray_edge``^3 uint8blk of EM-like grayscale (a smooth pattern plus noise) and
a 256^3 labelmap of supervoxel-like labels (bodies read through the mapping). Each round times one
GET of the whole box per answer, in interleaved order; figures are voxel MB/s at the median
(MB of raw voxels, so every answer is comparable), the server's CPU per request, the body size
relative to the raw voxels, and each format's MB/s as a ratio of raw's. A cutout is built in
memory in a worker thread, so it cannot overlap reading with sending as the raw stream does.
"""

from __future__ import annotations

import time

import numpy as np
import requests

from bench.harness import BenchError
from bench.report import Ratio, TimedFigure, WorkloadReport
from bench.workloads import Env
from dvid.datatype.common.cutout import FORMATS

LABEL_EDGE = 256
SLAB = 64  # z planes per POST while loading


def _post(session: requests.Session, url: str, **kw) -> None:
    r = session.post(url, timeout=600, **kw)
    if r.status_code != 200:
        raise BenchError(f"POST {url}: {r.status_code} {r.text[:200]}")


def gray_slab(edge: int, z0: int, depth: int, rng: np.random.Generator) -> np.ndarray:
    z, y, x = np.ogrid[z0 : z0 + depth, 0:edge, 0:edge]
    smooth = 96 + 60 * np.sin(x / 23.0) * np.cos(y / 31.0) + 30 * np.sin(z / 17.0)
    return (smooth + rng.normal(0, 12, (depth, edge, edge))).clip(0, 255).astype(np.uint8)


def label_slab(z0: int, depth: int) -> np.ndarray:
    z, y, x = np.ogrid[z0 : z0 + depth, 0:LABEL_EDGE, 0:LABEL_EDGE]
    cell = ((x + 7 * np.sin(y / 9.0)) // 24).astype(np.int64) + 16 * ((y + 5 * np.cos(z / 7.0)) // 20).astype(
        np.int64
    )
    return (cell + 256 * (z // 28) + 1).astype(np.uint64) + np.uint64(10**11)


def load(base: str, session: requests.Session, gray_edge: int) -> str:
    r = session.post(f"{base}/api/repos", json={"alias": "cutout-bench"}, timeout=60)
    root = r.json()["root"]
    for typename, name in (("uint8blk", "grey"), ("labelmap", "seg")):
        _post(session, f"{base}/api/repo/{root}/instance", json={"typename": typename, "dataname": name})
    rng = np.random.default_rng(16)
    for z0 in range(0, gray_edge, SLAB):
        slab = gray_slab(gray_edge, z0, SLAB, rng)
        _post(session, f"{base}/api/node/{root}/grey/raw/0_1_2/{gray_edge}_{gray_edge}_{SLAB}/0_0_{z0}",
              data=slab.tobytes())  # fmt: skip
    for z0 in range(0, LABEL_EDGE, SLAB):
        slab = label_slab(z0, SLAB)
        _post(session, f"{base}/api/node/{root}/seg/raw/0_1_2/{LABEL_EDGE}_{LABEL_EDGE}_{SLAB}/0_0_{z0}",
              data=slab.tobytes())  # fmt: skip
    return root


def cutout(env: Env) -> WorkloadReport:
    """Raw vs npz, hdf5, tiff and blosc GETs of a uint8 and a uint64 box (see the module doc)."""
    report = WorkloadReport("cutout")
    repeats = env.options.cutout_repeats
    gray = env.options.cutout_gray_edge
    answers = ("raw", *FORMATS)
    with env.dvid("cutout", access_log=False) as dvid, requests.Session() as session:
        base = dvid.base
        t0 = time.perf_counter()
        root = load(base, session, gray)
        report.notes.append(
            f"data: {gray}^3 uint8blk and {LABEL_EDGE}^3 labelmap posted in {time.perf_counter() - t0:.1f} s"
        )
        for name, edge, nbytes in (("grey", gray, gray**3), ("seg", LABEL_EDGE, 8 * LABEL_EDGE**3)):
            url = f"{base}/api/node/{root}/{name}/raw/0_1_2/{edge}_{edge}_{edge}/0_0_0"
            seconds: dict[str, list[float]] = {a: [] for a in answers}
            cpu: dict[str, float] = dict.fromkeys(answers, 0.0)
            sizes: dict[str, int] = {}
            for round_ in range(repeats + 1):  # the first round warms up, untimed
                order = answers[round_ % len(answers) :] + answers[: round_ % len(answers)]
                for answer in order:
                    params = {} if answer == "raw" else {"format": answer}
                    cpu0, t = dvid.cpu_seconds() or 0.0, time.perf_counter()
                    r = session.get(url, params=params, timeout=600)
                    elapsed = time.perf_counter() - t
                    if r.status_code != 200:
                        raise BenchError(f"GET {name} {answer}: {r.status_code} {r.text[:200]}")
                    sizes[answer] = len(r.content)
                    if round_:
                        seconds[answer].append(elapsed)
                        cpu[answer] += (dvid.cpu_seconds() or 0.0) - cpu0
            kind = f"{edge}^3 {'uint8' if name == 'grey' else 'uint64 labelmap'}"
            figures = {
                a: TimedFigure.of(f"{kind} GET {a}", seconds[a], nbytes, server_cpu_s=cpu[a]) for a in answers
            }
            report.timed += figures.values()
            for fmt in FORMATS:
                report.ratios.append(
                    Ratio(
                        f"{kind} {fmt} / raw MB/s",
                        round(figures[fmt].mb_per_s / figures["raw"].mb_per_s, 2),
                        note=f"body {sizes[fmt] / nbytes:.3f} of the raw voxels",
                    )
                )
            per_core = ", ".join(
                f"{a} {nbytes / 1e6 / (cpu[a] / repeats):.0f}" for a in answers if cpu[a] > 0
            )
            report.notes.append(f"{kind}: voxel MB per server CPU-second (per core): {per_core}")
    return report
