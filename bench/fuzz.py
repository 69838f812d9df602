"""``python -m bench fuzz [--requests N] [--seed S]``: the long fuzz run of issue 11.

The same request builders as ``tests/test_fuzz.py`` (:mod:`bench.fuzzing`), driven by a seeded
``random.Random`` instead of hypothesis (whose generation would take longer than the run itself),
against a dvid server in its own process on a fresh LevelDB store, every datatype populated at a
committed root. Prints the answers counted by status, every failed request in full (5xx, hang,
dropped or cut answer, stray bytes), the faults in the server's log, requests/s, the slowest
requests, the endpoints that never answered 2xx, and whether the canaries are intact. Exits 1 on
any failure.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import requests

from bench.fuzzing.client import Outcome, RawClient
from bench.fuzzing.draw import RandomDraw
from bench.fuzzing.faults import faults_in_log
from bench.fuzzing.fixture import SERVER_LIMITS, Populator, changed_canaries, read_canaries
from bench.fuzzing.generate import FuzzRequest, Target, build_request
from bench.harness import LOOPBACK, ServerProcess
from dvid.datatype.registry import all_types

SHOW_FAILURES = 50
#: The fuzzed server's data memory cap: a request that runs away fails alone (a MemoryError, a 500
#: or a dead server), not the machine it shares.
SERVER_MEMORY_MB = 4096
#: Requests shown before a hang or a dropped connection (the cause may be an earlier request).
CONTEXT = 3


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50_000, help="requests to send (default 50000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the request generator (default 1)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds without an answer: a hang")
    args = parser.parse_args(argv)
    if args.requests <= 0:
        parser.error("--requests must be positive")
    return args


def endpoint_of(target: Target, request: FuzzRequest) -> str | None:
    """``type:endpoint`` of a request to an endpoint of one of the target's instances, else None."""
    parts = request.target.split(b"?")[0].split(b"/")
    if len(parts) < 6 or parts[1:3] != [b"api", b"node"]:
        return None
    type_name = target.instance_types.get(parts[4].decode("latin-1"))
    endpoint = parts[5].decode("latin-1")
    if type_name is None or endpoint not in all_types()[type_name].route_table:
        return None
    return f"{type_name}:{endpoint}"


class Tally:
    """Counts by status, failures, slowest requests and per-endpoint successes of a run."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.by_status: collections.Counter[str] = collections.Counter()
        self.failures: list[tuple[FuzzRequest, Outcome]] = []
        self.slowest: list[tuple[float, str]] = []
        self.tried: collections.Counter[str] = collections.Counter()
        self.succeeded: collections.Counter[str] = collections.Counter()
        self.recent: collections.deque[FuzzRequest] = collections.deque(maxlen=CONTEXT + 1)
        self.context: dict[int, list[FuzzRequest]] = {}

    def add(self, request: FuzzRequest, outcome: Outcome) -> None:
        self.by_status[outcome.label] += 1
        self.recent.append(request)
        if outcome.failed:
            if outcome.status <= 0 and len(self.failures) < SHOW_FAILURES:  # a hang or a dead server
                self.context[len(self.failures)] = list(self.recent)[:-1]
            self.failures.append((request, outcome))
        self.slowest.append((outcome.seconds, request.describe(80).split("\n")[0][:200]))
        if len(self.slowest) > 100:
            self.slowest = sorted(self.slowest, reverse=True)[:10]
        endpoint = endpoint_of(self.target, request)
        if endpoint:
            self.tried[endpoint] += 1
            self.succeeded[endpoint] += 200 <= outcome.status < 300

    def never_succeeded(self) -> list[str]:
        return sorted(e for e in self.tried if not self.succeeded[e])


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="dvid-fuzz-") as tmp:
        workdir = Path(tmp)
        extra = ["--store", str(workdir / "store"), "--no-access-log"]
        extra += ["--max-request-voxels", str(SERVER_LIMITS["max_request_voxels"])]
        extra += ["--max-body-bytes", str(SERVER_LIMITS["max_body_bytes"])]
        extra += ["--memory-limit-mb", str(SERVER_MEMORY_MB)]
        with ServerProcess("dvid", workdir, extra_args=extra, ready_path="/api/server/info") as server:
            target = Populator(server.base).populate()
            root = target.committed[0]
            before = read_canaries(server.base, root)
            tally = Tally(target)
            draw = RandomDraw(args.seed)
            start = time.perf_counter()
            with RawClient(LOOPBACK, server.port, timeout=args.timeout) as client:
                for i in range(1, args.requests + 1):
                    request = build_request(draw, target)
                    tally.add(request, client.send(request))
                    if i % 5000 == 0:
                        rate = i / (time.perf_counter() - start)
                        print(f"  {i} requests, {rate:.0f}/s, {len(tally.failures)} failed", file=sys.stderr)
            elapsed = time.perf_counter() - start
            alive = _heartbeat(server.base)
            exit_status = server.returncode
            changed = (
                changed_canaries(before, read_canaries(server.base, root)) if alive else ["(server down)"]
            )
            faults = faults_in_log(server.log_path.read_text(errors="replace"))
            connections = client.connections
    _report(args, tally, elapsed, connections, alive, changed, faults)
    if exit_status is not None:
        print(f"the server process ended with status {exit_status} (-9: killed, e.g. out of memory)")
    return 1 if tally.failures or faults or changed or not alive else 0


def _heartbeat(base: str) -> bool:
    try:
        return requests.get(f"{base}/api/heartbeat", timeout=10).text == "OK"
    except requests.RequestException:
        return False


def _report(
    args: argparse.Namespace,
    tally: Tally,
    elapsed: float,
    connections: int,
    alive: bool,
    changed: list[str],
    faults: list[str],
) -> None:
    n = args.requests
    print(f"fuzz: {n} requests, seed {args.seed}, {elapsed:.0f} s, {n / elapsed:.0f} requests/s,")
    print(f"      {connections} connections (the server closes after some malformed requests)")
    print("answers by status:")
    for label, count in sorted(tally.by_status.items(), key=lambda kv: (not kv[0].isdigit(), kv[0])):
        print(f"  {label:>36}  {count:7d}  {100 * count / n:5.1f}%")
    fivexx = sum(c for label, c in tally.by_status.items() if label.isdigit() and int(label) >= 500)
    print(f"5xx: {fivexx}; failed (5xx, hangs, dropped/cut answers, stray bytes): {len(tally.failures)}")
    for i, (request, outcome) in enumerate(tally.failures[:SHOW_FAILURES]):
        print(f"--- {outcome.label} after {outcome.seconds:.1f} s: {outcome.body[:600]!r}")
        print(request.describe())
        for earlier in tally.context.get(i, []):
            print("  after: " + earlier.describe(80).replace("\n", "\n  "))
    if len(tally.failures) > SHOW_FAILURES:
        print(f"... and {len(tally.failures) - SHOW_FAILURES} more failures")
    print(f"server log faults: {len(faults)}")
    for fault in faults[:10]:
        lines = [line if len(line) <= 300 else line[:300] + "..." for line in fault.splitlines()]
        print("\n".join([*lines[:2], "  ...", *lines[-8:]] if len(lines) > 12 else lines))
    print(f"server alive after the run: {'yes' if alive else 'NO'}")
    print(f"canaries intact: {'yes' if not changed else 'NO: ' + ', '.join(changed)}")
    print("slowest requests:")
    for seconds, line in sorted(tally.slowest, reverse=True)[:10]:
        print(f"  {seconds:6.2f} s  {line}")
    never = tally.never_succeeded()
    print(f"endpoints tried: {len(tally.tried)}; never answered 2xx: {', '.join(never) or 'none'}")


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
