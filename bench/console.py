"""The ``console`` workload: the web console's slice viewer in headless Chromium (Debian's package,
driven by Playwright), 1024x1024 grayscale with labelmap labels over it.

Figures: time in the browser from a plane change to the new slice drawn (both raw reads, the paint
and the next animation frame), p50 and p99 over ``console_planes`` steps through XY planes; planes drawn
per second while the canvas receives a wheel event every 16 ms (a fast scroll: draws collapse to
the latest plane); and, as the limit in the same run, the same two raw reads made concurrently
from this process (what any client pays before painting). Target: plane change p50 < 150 ms.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import requests

from bench.harness import BenchError, percentile
from bench.report import Ratio, TimedFigure, WorkloadReport
from bench.workloads import Env

SIZE = 1024
DEPTH = 64
TARGET_P50_MS = 150.0


def _post(base: str, path: str, data: bytes | None = None, json: dict | None = None) -> requests.Response:
    r = requests.post(f"{base}/api/{path}", data=data, json=json, timeout=600)
    if r.status_code != 200:
        raise BenchError(f"POST {path}: {r.status_code} {r.text[:200]}")
    return r


def build(base: str) -> str:
    """A repo with ``grey`` (uint8blk) and ``seg`` (labelmap: 32^3 supervoxels) of 1024x1024xDEPTH."""
    root = _post(base, "repos", json={"alias": "console-bench"}).json()["root"]
    for typename, name in (("uint8blk", "grey"), ("labelmap", "seg")):
        _post(base, f"repo/{root}/instance", json={"typename": typename, "dataname": name})
    rng = np.random.default_rng(5)
    z, y, x = np.mgrid[0:DEPTH, 0:SIZE, 0:SIZE].astype(np.int32)
    grey = ((x * 7 + y * 3 + z * 11) % 251).astype(np.uint8) ^ rng.integers(
        0, 32, (DEPTH, SIZE, SIZE), dtype=np.uint8
    )
    _post(base, f"node/{root}/grey/raw/0_1_2/{SIZE}_{SIZE}_{DEPTH}/0_0_0", data=grey.tobytes())
    labels = ((z // 32) * 1024 + (y // 32) * 32 + (x // 32) + 1).astype(np.uint64) + np.uint64(2**33)
    for z0 in range(0, DEPTH, 32):
        slab = np.ascontiguousarray(labels[z0 : z0 + 32])
        _post(base, f"node/{root}/seg/raw/0_1_2/{SIZE}_{SIZE}_32/0_0_{z0}", data=slab.tobytes())
    return root


def http_limit(base: str, root: str, planes: list[int]) -> list[float]:
    """Seconds per plane for the viewer's two raw reads made concurrently from this process."""
    out = []
    with ThreadPoolExecutor(2) as pool, requests.Session() as session:
        for plane in planes:
            urls = [
                f"{base}/api/node/{root}/{name}/raw/0_1_2/{SIZE}_{SIZE}_1/0_0_{plane}"
                for name in ("grey", "seg")
            ]
            t0 = time.perf_counter()
            for r in pool.map(lambda u: session.get(u, timeout=60), urls):
                if r.status_code != 200:
                    raise BenchError(f"raw read: {r.status_code}")
            out.append(time.perf_counter() - t0)
    return out


def console(env: Env) -> WorkloadReport:
    """The slice viewer's plane change and scroll rate (see the module doc)."""
    from playwright.sync_api import sync_playwright

    from bench.browser import CHROMIUM_ARGS, chromium_path

    report = WorkloadReport("console")
    planes = env.options.console_planes
    with env.dvid("console") as dvid:
        base = dvid.base
        t0 = time.perf_counter()
        root = build(base)
        report.notes.append(
            f"data: {SIZE}x{SIZE}x{DEPTH} uint8 + uint64 labelmap, posted in {time.perf_counter() - t0:.1f} s"
        )
        limit = http_limit(base, root, list(range(1, planes + 1)))
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": SIZE + 400, "height": SIZE + 400})
            page.goto(f"{base}/console/#/node/{root}/seg?w={SIZE}&h={SIZE}&zoom=1&gray=grey&opacity=0.5"
                      f"&x={SIZE // 2}&y={SIZE // 2}&z=0")  # fmt: skip
            page.wait_for_selector("#slice-canvas[data-plane='0']", timeout=60_000)
            steps = page.evaluate(
                """async (n) => {
                    const v = window.dvidViewer, out = [];
                    for (let i = 0; i < n; i++) { await v.movePlane(1); out.push(v.stats.draws.at(-1).ms); }
                    return out;
                }""",
                planes,
            )
            scroll = page.evaluate(
                """async (seconds) => {
                    const v = window.dvidViewer, c = v.canvas, before = v.stats.draws.length;
                    const t0 = performance.now();
                    while (performance.now() - t0 < seconds * 1000) {
                        const wheel = { deltaY: 1, bubbles: true, cancelable: true };
                        c.dispatchEvent(new WheelEvent("wheel", wheel));
                        await new Promise((r) => setTimeout(r, 16));
                    }
                    await v.drawn;
                    const elapsed = (performance.now() - t0) / 1000;
                    return { draws: v.stats.draws.length - before, elapsed, plane: v.plane };
                }""",
                env.options.console_scroll_seconds,
            )
            browser.close()
    seconds = [ms / 1000 for ms in steps]
    report.timed = [
        TimedFigure.of("browser: plane change -> drawn (1024^2 grey + labels)", seconds, SIZE * SIZE * 9),
        TimedFigure.of("limit: the two raw reads from Python", limit, SIZE * SIZE * 9),
    ]
    p50 = statistics.median(steps)
    report.ratios = [
        Ratio("plane change p50", round(p50, 1), unit="ms", op="<", target=TARGET_P50_MS),
        Ratio("plane change p99", round(percentile(sorted(steps), 99), 1), unit="ms"),
        Ratio(
            "planes drawn per second while scrolling",
            round(scroll["draws"] / scroll["elapsed"], 1),
            unit="/s",
        ),
        Ratio("browser p50 / raw reads p50", round(p50 / (statistics.median(limit) * 1000), 2)),
    ]
    report.notes.append(
        f"scroll: {scroll['draws']} draws in {scroll['elapsed']:.1f} s of wheel events every 16 ms,"
        f" ended at plane {scroll['plane']}"
    )
    return report
