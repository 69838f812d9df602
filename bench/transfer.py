"""The ``transfer`` workload: push of a repo holding a 512^3 uint8blk volume over 5 versions.

A source dvid gets a 512^3 grayscale volume (low-entropy noise, so blocks compress somewhat)
at the root, then four more versions each rewriting a 512x512x64 slab; every version is
committed. Each repeat pushes the head (all 5 versions) into a fresh dvid with
``dvid.transfer.pipe.transfer`` -- what ``dvid push`` runs: source export piped through this
process into the destination's import, checksummed. Figure: stored bytes (the stream's
bytes, which are the stored keys and values plus framing) per second; target >= 200 MB/s.
Baseline in the same run: the source's export alone, read and discarded by this process.
Check: a block read back from the destination equals the source's, at the root and the head.
"""

from __future__ import annotations

import time

import numpy as np
import requests

from bench.harness import BenchError
from bench.report import Ratio, TimedFigure, WorkloadReport
from bench.workloads import Env
from dvid.client import DVIDClient
from dvid.transfer.pipe import transfer as push

EDGE = 512
SLAB = 64
VERSIONS = 5
TARGET_MB_S = 200.0


def _post(base: str, path: str, data: bytes | None = None, json: dict | None = None) -> requests.Response:
    r = requests.post(f"{base}/api/{path}", data=data, json=json, timeout=600)
    if r.status_code != 200:
        raise BenchError(f"POST {path}: {r.status_code} {r.text[:200]}")
    return r


def _build(base: str, seed: int = 3) -> list[str]:
    rng = np.random.default_rng(seed)
    root = _post(base, "repos", json={"alias": "transfer-bench"}).json()["root"]
    _post(base, f"repo/{root}/instance", json={"typename": "uint8blk", "dataname": "grayscale"})
    uuids = [root]
    for z in range(0, EDGE, SLAB):
        slab = rng.integers(0, 16, size=(SLAB, EDGE, EDGE), dtype=np.uint8)
        _post(base, f"node/{root}/grayscale/raw/0_1_2/{EDGE}_{EDGE}_{SLAB}/0_0_{z}", data=slab.tobytes())
    _post(base, f"node/{root}/commit", json={"note": "v1"})
    for i in range(1, VERSIONS):
        child = _post(base, f"node/{uuids[-1]}/newversion", json={}).json()["child"]
        slab = rng.integers(0, 16, size=(SLAB, EDGE, EDGE), dtype=np.uint8)
        z = (i * 2 * SLAB) % EDGE
        _post(base, f"node/{child}/grayscale/raw/0_1_2/{EDGE}_{EDGE}_{SLAB}/0_0_{z}", data=slab.tobytes())
        _post(base, f"node/{child}/commit", json={"note": f"v{i + 1}"})
        uuids.append(child)
    return uuids


def _block(base: str, uuid: str) -> bytes:
    r = requests.get(f"{base}/api/node/{uuid}/grayscale/raw/0_1_2/64_64_64/128_128_128", timeout=60)
    if r.status_code != 200:
        raise BenchError(f"GET block at {uuid}: {r.status_code} {r.text[:200]}")
    return r.content


def transfer(env: Env) -> WorkloadReport:
    report = WorkloadReport("transfer")
    repeats = 1 if env.options.seconds <= 2 else 3
    with env.dvid("xfer-src") as src:
        uuids = _build(src.base)
        head = uuids[-1]
        export_s: list[float] = []
        nbytes = 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            with requests.get(
                f"{src.base}/api/repo/{head}/transfer/export", json={"have": None}, stream=True, timeout=600
            ) as r:
                nbytes = sum(len(c) for c in r.iter_content(1 << 20))
            export_s.append(time.perf_counter() - t0)
        push_s: list[float] = []
        result: dict = {}
        for i in range(repeats):
            with env.dvid(f"xfer-dst{i}") as dst, DVIDClient(src.base) as a, DVIDClient(dst.base) as b:
                t0 = time.perf_counter()
                result = push(a, b, head)
                push_s.append(time.perf_counter() - t0)
                for u in (uuids[0], head):
                    if _block(src.base, u) != _block(dst.base, u):
                        raise BenchError(f"block at {u} differs after the push")
        if result.get("versions") != VERSIONS:
            raise BenchError(f"push moved {result.get('versions')} versions, expected {VERSIONS}")
        pushed = TimedFigure.of(f"push {VERSIONS} versions of {EDGE}^3 uint8blk", push_s, result["bytes"])
        baseline = TimedFigure.of("baseline: export only, read and dropped", export_s, nbytes)
        report.timed += [pushed, baseline]
        report.ratios.append(Ratio("push stored bytes", pushed.mb_per_s, "MB/s", ">=", TARGET_MB_S))
        report.ratios.append(Ratio("push / export-only", pushed.mb_per_s / baseline.mb_per_s))
        verdict = "meets" if pushed.mb_per_s >= TARGET_MB_S else "MISSES"
        report.notes.append(
            f"push: {result['bytes'] / 1e6:.0f} MB stored bytes, {result['kvs']} key-values, "
            f"{pushed.mb_per_s:.0f} MB/s ({verdict} the {TARGET_MB_S:.0f} MB/s target)"
        )
    return report
