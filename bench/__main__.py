"""``python -m bench [workload ...] [--quick] [--json out.json]``: run workloads, print the table."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import workloads
from bench.annotations import annotation_workload
from bench.client import client
from bench.console import console
from bench.cutout import cutout
from bench.harness import BenchError, loop_name, sigterm_as_sigint
from bench.images import image
from bench.ingest import ingest
from bench.labelgraph import labelgraph
from bench.labelmap import labelmap
from bench.labelmap_codec import labelmap_codec
from bench.labels import labels
from bench.labelvol import labelvol
from bench.neuronjson import neuronjson
from bench.report import WorkloadReport, render, write_json
from bench.rois import rois
from bench.soak import soak
from bench.tarsupervoxels import tarsupervoxels
from bench.transfer import transfer
from bench.workloads import DEFAULT_WORKLOADS, Env, Options, summary

#: Every workload by name (``image``, ``labels`` and ``labelvol`` are not in the default set: minutes).
WORKLOADS = {**workloads.WORKLOADS, "image": image, "labels": labels, "labelvol": labelvol, "rois": rois}
WORKLOADS["annotations"] = annotation_workload
WORKLOADS["transfer"] = transfer
WORKLOADS["soak"] = soak
WORKLOADS["labelmap-codec"] = labelmap_codec
WORKLOADS["labelmap"] = labelmap
WORKLOADS["console"] = console
WORKLOADS["labelgraph"] = labelgraph
WORKLOADS["tarsupervoxels"] = tarsupervoxels
WORKLOADS["neuronjson"] = neuronjson
WORKLOADS["client"] = client
WORKLOADS["cutout"] = cutout
WORKLOADS["ingest"] = ingest


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="dvid benchmarks: HTTP figures against a dvid server in its own process, each next to a "
        "baseline measured in the same run. `python -m bench fuzz --help`: the malformed-request fuzz run."
        " Workloads: " + ", ".join(WORKLOADS) + " (default: " + " ".join(DEFAULT_WORKLOADS) + ").",
    )
    parser.add_argument("workloads", nargs="*", metavar="workload", help=", ".join(WORKLOADS))
    parser.add_argument("--quick", action="store_true", help="short run (~2 s per phase): a self-check")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write every figure as JSON")
    parser.add_argument("--seconds", type=float, help="measured seconds per HTTP phase (default 5, quick 2)")
    parser.add_argument("--concurrency", type=int, help="HTTP connections (default 16)")
    parser.add_argument("--keys", type=int, help="keys written before the HTTP GET phases (default 1000)")
    parser.add_argument("--depth", type=int, help="commits between root and deep version (default 100)")
    parser.add_argument(
        "--image-block",
        type=int,
        choices=(32, 64),
        help="image: uint8blk BlockSize edge (default 32, DVID's default; 64 is neuroglancer-style)",
    )
    parser.add_argument("--image-repeats", type=int, help="image: interleaved rounds per figure (default 15)")
    parser.add_argument(
        "--labels-repeats", type=int, help="labels: interleaved rounds per figure (default 15)"
    )
    parser.add_argument(
        "--labelvol-repeats", type=int, help="labelvol: timed repeats per figure (default 5, quick 2)"
    )
    parser.add_argument(
        "--minutes", type=float, help="soak: minutes of mixed load (default 10; needs >= 0.5 for one report)"
    )
    parser.add_argument(
        "--memory-debug",
        action="store_true",
        help="soak: the server reports where its memory is (GET /bench/memory); a line per report",
    )
    parser.add_argument(
        "--tracemalloc",
        type=int,
        metavar="FRAMES",
        help="soak: trace the server's allocations (slow) and print what grew after the warm-up",
    )
    parser.add_argument(
        "--max-open-files", type=int, metavar="N", help="dvid's LevelDB MaxOpenFiles (default: dvid's, 1024)"
    )
    parser.add_argument("--no-access-log", action="store_true", help="run dvid with access_log = false")
    parser.add_argument(
        "--engine",
        choices=("leveldb", "postgres"),
        default="leveldb",
        help="dvid's store: leveldb, or postgres (a throwaway local PostgreSQL cluster, or the database"
        " named by env DVID_BENCH_POSTGRES_DSN)",
    )
    parser.add_argument("--profile", type=Path, metavar="DIR", help="run dvid under cProfile, stats to DIR")
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        dest="pyspy",
        help="image, labels: record the dvid server with py-spy (all threads), stacks to DIR, top printed",
    )
    args = parser.parse_args(argv)
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    positive = (
        *("seconds", "concurrency", "keys", "depth"),
        *("image_repeats", "labels_repeats", "labelvol_repeats", "minutes", "tracemalloc", "max_open_files"),
    )
    for name in positive:
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


def make_options(args: argparse.Namespace) -> Options:
    base = Options.quick() if args.quick else Options()
    return base.with_overrides(
        seconds=args.seconds,
        concurrency=args.concurrency,
        keys=args.keys,
        depth=args.depth,
        image_block=args.image_block,
        image_repeats=args.image_repeats,
        labels_repeats=args.labels_repeats,
        labelvol_repeats=args.labelvol_repeats,
        soak_minutes=args.minutes,
        soak_memory_debug=args.memory_debug or None,
        soak_tracemalloc=args.tracemalloc,
        max_open_files=args.max_open_files,
        access_log=False if args.no_access_log else None,
        profile_dir=args.profile,
        pyspy_dir=args.pyspy,
    )


def run(names: Sequence[str], options: Options, engine: str = "leveldb") -> list[WorkloadReport]:
    if engine == "postgres":
        from bench.pg import postgres_dsn

        with postgres_dsn() as dsn:
            return run(names, options.with_overrides(postgres_dsn=dsn))
    reports: list[WorkloadReport] = []
    with tempfile.TemporaryDirectory(prefix="dvid-bench-") as tmp:
        env = Env(options, Path(tmp))
        for name in names:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            try:
                reports.append(WORKLOADS[name](env))
            except BenchError as exc:
                reports.append(WorkloadReport(name, error=str(exc)))
            except Exception as exc:  # a harness bug: report it, run the other workloads
                traceback.print_exc()
                reports.append(WorkloadReport(name, error=f"{type(exc).__name__}: {exc}"))
    extra = summary(reports)
    return [*reports, extra] if extra else reports


def main(argv: Sequence[str] | None = None) -> int:
    sigterm_as_sigint()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["fuzz"]:  # the malformed-request fuzz run: its own options and report
        from bench.fuzz import main as fuzz_main

        return fuzz_main(argv[1:])
    args = parse_args(argv)
    options = make_options(args)
    names = args.workloads or list(DEFAULT_WORKLOADS)
    meta: dict[str, Any] = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "loop": loop_name(),
        "cpus": os.cpu_count(),
        "concurrency": options.concurrency,
        "seconds/phase": options.seconds,
        "quick": args.quick,
        "access_log": options.access_log,
        "engine": args.engine,
        "argv": argv,
    }
    try:
        reports = run(names, options, args.engine)
    except KeyboardInterrupt:
        print("interrupted: servers stopped, temp dirs removed", file=sys.stderr)
        return 130
    print(render(meta, reports))
    if args.json:
        write_json(args.json, meta, reports)
        print(f"wrote {args.json}", file=sys.stderr)
    return 1 if any(r.error for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
