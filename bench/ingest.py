"""The ``ingest`` workload: ``dvid ingest`` of a uint8 TIFF stack and of a zarr v3 array (1024 x 1024 x
512, 512 MiB; ``--quick``: 512 x 512 x 128) into a dvid server in its own process, each run as a
real ``dvid ingest`` process, beside the limit measured on the same server in the same run: one
``POST raw`` of a block-aligned 256^3 uint8 volume at a time (MB/s of the median).

Figures: MB/s of each ingest (the time the command reports for its slabs: reading the files, posting,
the checkpoint) and its ratio to the raw POST rate (target >= 0.7); the same from the process's start
to its exit (with the interpreter's start and imports, a fixed cost); the peak RSS of the
ingest process (its ``VmHWM``, polled: memory stays bounded by the slabs in flight, whatever the
volume); and MB per CPU-second (server and ingest process together), a per-core rate comparable with
ndstore's published ~1.7 GB/s write with 32 processes on 32 cores (~53 MB/s per core).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import requests

from bench.harness import BenchError
from bench.report import Ratio, TimedFigure, WorkloadReport
from bench.workloads import Env

TARGET_RATIO = 0.7
RAW_EDGE = 256


def _post(base: str, path: str, **kwargs) -> requests.Response:
    r = requests.post(f"{base}/api/{path}", timeout=600, **kwargs)
    if r.status_code != 200:
        raise BenchError(f"POST {path}: {r.status_code} {r.text[:200]}")
    return r


def volume(shape: tuple[int, int, int]) -> np.ndarray:
    """uint8 EM-like texture: a gradient with 5 bits of noise (compresses about as EM does)."""
    rng = np.random.default_rng(11)
    nz, ny, nx = shape
    y, x = np.indices((ny, nx))
    out = np.empty(shape, np.uint8)
    for z in range(nz):  # a plane at a time: the generator itself stays small
        out[z] = ((x + 2 * y + 3 * z) % 223).astype(np.uint8) + rng.integers(0, 32, (ny, nx), dtype=np.uint8)
    return out


def write_tiff_stack(vol: np.ndarray, folder: Path) -> None:
    import tifffile

    folder.mkdir()
    for z, plane in enumerate(vol):
        tifffile.imwrite(folder / f"z{z:05d}.tif", plane)


def write_zarr(vol: np.ndarray, path: Path) -> None:
    import zarr

    arr = zarr.create_array(
        store=str(path), shape=vol.shape, chunks=(64, 256, 256), dtype=vol.dtype, zarr_format=3
    )
    arr[:] = vol


def raw_post_seconds(base: str, uuid: str, repeats: int) -> list[float]:
    """Seconds per block-aligned 256^3 uint8 POST raw, one at a time, at different places."""
    _post(base, f"repo/{uuid}/instance", json={"typename": "uint8blk", "dataname": "rawpost"})
    cube = volume((RAW_EDGE, RAW_EDGE, RAW_EDGE)).tobytes()
    out = []
    with requests.Session() as session:
        for i in range(repeats):
            x = (i % 4) * RAW_EDGE
            size = f"{RAW_EDGE}_{RAW_EDGE}_{RAW_EDGE}"
            url = f"{base}/api/node/{uuid}/rawpost/raw/0_1_2/{size}/{x}_0_{(i // 4) * RAW_EDGE}"
            t0 = time.perf_counter()
            r = session.post(url, data=cube, timeout=600)
            out.append(time.perf_counter() - t0)
            if r.status_code != 200:
                raise BenchError(f"raw POST: {r.status_code} {r.text[:200]}")
    return out


def run_ingest(base: str, args: list[str], cache: Path) -> tuple[float, float, float, int]:
    """Run ``dvid ingest`` as a process: (seconds it reports for reading and posting the slabs, wall
    seconds from start to exit, its CPU seconds, its peak RSS in bytes)."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    cmd = [sys.executable, "-m", "dvid", "--server", base, "ingest", *args, "-q"]
    log = cache.parent / "ingest.log"
    with open(log, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        peak = 0
        while True:  # the child's own high-water mark (wait4's ru_maxrss counts this process's at fork)
            peak = max(peak, _vm_hwm(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.02)
        seconds = time.perf_counter() - t0
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise BenchError(f"dvid ingest {' '.join(args)} failed ({code}): {log.read_text()[-500:]}")
    said = re.search(r"MiB in ([0-9.]+) s", log.read_text())
    if said is None:
        raise BenchError(f"dvid ingest said no time: {log.read_text()[-500:]}")
    return float(said.group(1)), seconds, usage.ru_utime + usage.ru_stime, peak


def _vm_hwm(pid: int) -> int:
    """Peak resident bytes of a live process (Linux ``VmHWM``; 0 once it is gone or elsewhere)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def ingest(env: Env) -> WorkloadReport:
    """dvid ingest from TIFF and zarr vs one raw POST at a time (see the module doc)."""
    report = WorkloadReport("ingest")
    edge, depth = env.options.ingest_edge, env.options.ingest_depth
    shape = (depth, edge, edge)
    workers = env.options.ingest_workers
    work = env.tmp_root / "ingest-files"
    work.mkdir(exist_ok=True)
    vol = volume(shape)
    nbytes = vol.nbytes
    write_tiff_stack(vol, work / "tiff")
    write_zarr(vol, work / "vol.zarr")
    del vol
    label = f"{shape[2]}x{shape[1]}x{shape[0]} uint8 ({nbytes >> 20} MiB)"
    with env.dvid("ingest", access_log=False) as dvid:
        base = dvid.base
        uuid = _post(base, "repos", json={"alias": "ingest-bench"}).json()["root"]
        raw = raw_post_seconds(base, uuid, env.options.ingest_raw_repeats)
        raw_fig = TimedFigure.of(f"limit: POST raw {RAW_EDGE}^3 uint8, one at a time", raw, RAW_EDGE**3)
        report.timed.append(raw_fig)
        for source, name in ((str(work / "tiff"), "tiff stack"), (str(work / "vol.zarr"), "zarr v3")):
            instance = name.replace(" ", "")
            cpu0 = dvid.cpu_seconds()
            seconds, wall, client_cpu, rss = run_ingest(
                base,
                [source, uuid, instance, "--create", "uint8blk", "--workers", str(workers)],
                work / "cache",
            )
            cpu1 = dvid.cpu_seconds()
            server_cpu = (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else float("nan")
            fig = TimedFigure.of(
                f"dvid ingest {name} {label}, {workers} workers", [seconds], nbytes, server_cpu
            )
            report.timed.append(fig)
            report.ratios += [
                Ratio(f"{name}: ingest MB/s / POST raw MB/s", round(fig.mb_per_s / raw_fig.mb_per_s, 2),
                      op=">=", target=TARGET_RATIO),
                Ratio(f"{name}: MB/s from the process start to its exit", round(nbytes / wall / 1e6, 1),
                      unit="MB/s", note="with the interpreter's start and imports"),
                Ratio(f"{name}: peak RSS of the ingest process", round(rss / (1 << 20), 1), unit="MiB",
                      note=f"{100 * rss / nbytes:.0f}% of the volume"),
                Ratio(f"{name}: MB per CPU-second (server + ingest)",
                      round(nbytes / 1e6 / (server_cpu + client_cpu), 1), unit="MB/s/core",
                      note=f"server {server_cpu:.1f} s, ingest {client_cpu:.1f} s; ndstore ~53 MB/s/core"),
            ]  # fmt: skip
    report.notes.append(
        f"{os.cpu_count()} CPUs shared by server and ingest; raw POST median"
        f" {statistics.median(raw) * 1000:.0f} ms per {RAW_EDGE}^3; ingest includes reading the files"
    )
    return report
