"""The ``client`` workload: :mod:`dvid.api` reads and writes of a big box vs one raw request.

One dvid server (LevelDB) with a ``uint8blk`` ``grayscale`` (BlockSize ``--image-block``). A
``client_edge``^3 box (512^3, 128 MiB; quick: 256^3) of EM-like random voxels is POSTed once, then,
in ``client_repeats`` interleaved rounds (order alternating), each timed:

1. one raw ``GET raw/0_1_2/...`` of the box (``requests``, the body read whole): the limit;
2. ``v[0:n, 0:n, 0:n]`` through dvid.api (block-aligned pieces of ~8 MiB, 8 threads);
3. one raw ``POST`` of the box;
4. ``v[0:n, 0:n, 0:n] = a`` through dvid.api (pieces written in parallel).

Every read is checked byte for byte. Ratios: client read over raw GET (target >= 0.7) and client
write over raw POST, by median times. Per-core figures: MB moved per CPU-second of the server and
this process together (the machine's cores are shared, so a rate alone hides what it costs).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

import numpy as np
import requests

import dvid.api
from bench.harness import BenchError, ServerProcess
from bench.images import Series, settle
from bench.report import Ratio, WorkloadReport
from bench.workloads import Env, _div, _profile_notes
from dvid.api.volume import PIECE_BYTES

INSTANCE = "grayscale"
READ_TARGET = 0.7
TIMEOUT = 600


def client(env: Env) -> WorkloadReport:
    """dvid.api read and write of a big box vs one raw GET and POST (see the module doc)."""
    o = env.options
    report = WorkloadReport("client")
    with env.dvid("client") as dvid:
        ClientRun(report, dvid, o.client_edge, o.client_repeats, o.image_block).run()
    report.notes += _profile_notes(o, "client")
    return report


class ClientRun:
    def __init__(
        self, report: WorkloadReport, dvid: ServerProcess, edge: int, repeats: int, block: int
    ) -> None:
        self.report, self.dvid, self.edge, self.repeats, self.block = report, dvid, edge, repeats, block
        self.nbytes = edge**3
        self.cpu: dict[str, float] = {}

    def run(self) -> None:
        api = dvid.api.connect(self.dvid.base, progress=False, timeout=TIMEOUT)
        node = api.new_repo("bench-client", "dvid.api vs raw requests")
        volume = node.create("uint8blk", INSTANCE, BlockSize=(self.block,) * 3)
        rng = np.random.default_rng(16)
        data = rng.integers(0, 256, (self.edge,) * 3, dtype=np.uint8)
        n = self.edge
        raw_url = f"{self.dvid.base}/api/node/{node.uuid}/{INSTANCE}/raw/0_1_2/{n}_{n}_{n}/0_0_0"
        session = requests.Session()
        body = data.tobytes()
        self._post(session, raw_url, body)

        def raw_get() -> None:
            r = session.get(raw_url, timeout=TIMEOUT)
            if r.status_code != 200 or r.content != body:
                raise BenchError(f"raw GET answered {r.status_code}, {len(r.content):,} bytes, not the box")

        def api_get() -> None:
            if not np.array_equal(volume[0:n, 0:n, 0:n], data):
                raise BenchError("dvid.api read differs from what was written")

        def raw_post() -> None:
            self._post(session, raw_url, body)

        def api_post() -> None:
            volume[0:n, 0:n, 0:n] = data

        steps: list[tuple[str, Callable[[], None]]] = [
            ("raw GET", raw_get),
            ("api v[...] read", api_get),
            ("raw POST", raw_post),
            ("api v[...] = a", api_post),
        ]
        series = {name: Series(f"{name} {n}^3 uint8", self.nbytes, self.dvid) for name, _ in steps}
        cpu = dict.fromkeys(series, 0.0)
        # reads first, then writes, each pair interleaved with its order alternating
        reads, writes = steps[:2], steps[2:]
        rounds = [
            pair if round_ % 2 == 0 else pair[::-1]
            for pair in (reads, writes)
            for round_ in range(self.repeats)
        ]
        # Touch (then free) memory for every buffer the steps allocate: on a VM that backs guest
        # memory on first use, the first touch of fresh pages costs far more than a copy, and it
        # landed on whichever step first grew the process (the client's output arrays, mostly).
        prefault = np.ones(6 * self.nbytes, np.uint8)
        del prefault
        waited = 0.0
        for order in rounds:
            for name, step in order:
                # untimed: the store's flushes and compactions of earlier writes finish first
                waited += asyncio.run(settle(self.dvid, max_s=20.0))
                s0, c0, t0 = self.dvid.cpu_seconds() or 0.0, time.process_time(), time.perf_counter()
                step()
                elapsed = time.perf_counter() - t0
                server_cpu = (self.dvid.cpu_seconds() or 0.0) - s0
                series[name].times.append(elapsed)
                series[name].cpu_s = (series[name].cpu_s or 0.0) + server_cpu
                cpu[name] += server_cpu + time.process_time() - c0
        self.report.timed += [s.figure() for s in series.values()]
        self.report.notes.append(f"waited {waited:.1f} s in all (untimed) for idle CPU before the steps")
        names = [name for name, _ in steps]
        read_ratio = _div(series[names[0]].p50, series[names[1]].p50)
        write_ratio = _div(series[names[2]].p50, series[names[3]].p50)
        self.report.ratios = [
            Ratio("dvid.api read MB/s / raw GET MB/s", read_ratio, op=">=", target=READ_TARGET),
            Ratio("dvid.api write MB/s / raw POST MB/s", write_ratio),
            *(
                Ratio(
                    f"{name}: MB per CPU-s (server + client)",
                    self.nbytes * self.repeats / 1e6 / cpu[name] if cpu[name] else float("nan"),
                    unit="MB/cpu-s",
                )
                for name in names
            ),
        ]
        self.report.notes.append(
            f"dvid.api: {api.workers} threads, pieces of ~{PIECE_BYTES >> 20} MiB; raw: one request each."
            f" {os.cpu_count()} cores on this machine, shared by the server, the client threads and any"
            " other tenant; ndstore (spec/clients.md, 32 processes on 32 cores) reported ~1.7 GB/s write"
            " and ~4.7 GB/s read, i.e. ~53 MB/s write and ~147 MB/s read per core"
        )
        session.close()
        api.close()

    def _post(self, session: requests.Session, url: str, body: bytes) -> None:
        r = session.post(url, data=body, timeout=TIMEOUT)
        if r.status_code != 200:
            raise BenchError(f"raw POST answered {r.status_code}: {r.text[:300]}")
