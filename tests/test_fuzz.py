"""Fuzzing a real server with malformed requests (issue 11): no 5xx, no hang, data intact.

A LevelDB server over loopback holds every datatype, synced and populated at a committed root
version (:mod:`bench.fuzzing.fixture`). Hypothesis draws requests from the server's live route
tables (:mod:`bench.fuzzing.generate`: methods, mangled path segments, UUIDs, geometry, query
strings, JSON and binary bodies, encodings that lie) and sends them raw over one keep-alive
connection to the open child version, mostly. Every answer must be below 500 and arrive whole
and in time, nothing may be logged as a server fault, and afterwards the server answers its
heartbeat and the canaries at the committed root read back byte for byte.

The self-tests at the end break a server on purpose (a handler that raises, one that writes
through to the committed root, one that stops the server) and check that the same fuzz run fails.
``python -m bench fuzz --requests 50000`` is the long version.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import re
from typing import ClassVar

import pytest
import requests
from aiohttp import web
from hypothesis import HealthCheck, Phase, given, settings

from bench.fuzzing.client import RawClient
from bench.fuzzing.draw import RandomDraw, request_strategy
from bench.fuzzing.faults import FaultLog
from bench.fuzzing.fixture import SERVER_LIMITS, Populator, changed_canaries, read_canaries
from bench.fuzzing.generate import FuzzRequest, Target, build_request
from bench.fuzzing.values import Names
from dvid.datatype import registry
from dvid.datatype.base import Datatype
from dvid.datatype.common.request import InstanceRequest
from dvid.datatype.common.route import DIMS, JSON, OFFSET, SIZE, THROTTLE_QUERY, Param, Route
from tests.serverutil import ServerThread

#: Requests of the in-suite run (about 20 s on a busy 2-core machine).
EXAMPLES = 3000


def fuzz(server: ServerThread, target: Target, examples: int, *, timeout: float = 30.0) -> None:
    """Send ``examples`` hypothesis-drawn requests; fail at the first 5xx, hang, dropped or cut
    answer, stray bytes, or fault in the server's log, naming the request."""
    with RawClient("127.0.0.1", server.config.server.port, timeout=timeout) as client, FaultLog() as log:

        @settings(
            max_examples=examples,
            derandomize=True,
            deadline=None,
            database=None,
            phases=(Phase.explicit, Phase.generate),  # no shrinking: the server has state
            suppress_health_check=list(HealthCheck),
        )
        @given(request_strategy(functools.partial(build_request, target=target)))
        def one_request(request: FuzzRequest) -> None:
            outcome = client.send(request)
            assert not outcome.failed, f"{outcome.label} for\n{request.describe()}\n{outcome.body[:2000]!r}"
            assert not log.faults, f"server fault after\n{request.describe()}\n{log.faults[0]}"

        one_request()


def check_intact(server: ServerThread, target: Target, before: dict[str, bytes]) -> None:
    """The server answers its heartbeat and every canary reads back as before."""
    r = requests.get(server.api("heartbeat"), timeout=10)
    assert r.status_code == 200 and r.text == "OK"
    changed = changed_canaries(before, read_canaries(server.url, target.committed[0]))
    assert not changed, f"canaries changed: {changed}"


def start(tmp_path, extra: dict[str, str] | None = None) -> tuple[ServerThread, Target, dict[str, bytes]]:
    server = ServerThread(tmp_path / "store", **SERVER_LIMITS).start()
    target = Populator(server.url).populate(extra)
    return server, target, read_canaries(server.url, target.committed[0])


@pytest.fixture
def fuzzed(tmp_path):
    server, target, before = start(tmp_path)
    yield server, target, before
    server.stop()


def test_fuzz_no_server_errors_and_data_intact(fuzzed):
    server, target, before = fuzzed
    assert all(not value.startswith(b"404:") for value in before.values()), before
    fuzz(server, target, EXAMPLES)
    check_intact(server, target, before)


# ---- self-tests: a broken server fails the same checks ----------------------------------------
class FuzzProbe(Datatype):
    """A test-only datatype whose ``probe`` endpoint each self-test breaks in its own way."""

    type_name = "fuzzprobe"
    type_url = "test"
    type_version = "0"
    help_text = "GET  probe/<n>   answers n"
    routes: ClassVar[tuple[Route, ...]] = (
        Route("probe", ("GET", "POST"), "handle_probe", args=(Param("n", "integer"),)),
    )

    async def handle_probe(self, req: InstanceRequest) -> web.StreamResponse:
        return web.Response(text=req.arg(0, "n"))


@pytest.fixture
def probed(tmp_path, monkeypatch):
    """A fuzzed server with a ``probe`` instance of :class:`FuzzProbe` besides every datatype; the
    fuzz aimed at the probe alone (the server's and repo's routes still included), so that each
    self-test reaches the broken endpoint within a few hundred requests."""
    monkeypatch.setitem(registry._TYPES, FuzzProbe.type_name, FuzzProbe)
    server, target, before = start(tmp_path, {"probe": FuzzProbe.type_name})
    names = dataclasses.replace(target.names, instances=("probe",))
    yield server, dataclasses.replace(target, names=names, seeds=()), before
    server.stop()


def test_self_test_a_handler_bug_is_a_failure(probed, monkeypatch):
    async def unvalidated(self, req: InstanceRequest) -> web.StreamResponse:
        return web.Response(text=str(int(req.args[0]) * 2))  # ValueError / IndexError: a 500

    monkeypatch.setattr(FuzzProbe, "handle_probe", unvalidated)
    server, target, _ = probed
    with pytest.raises(AssertionError, match=r"500 for\n.*/probe"):
        fuzz(server, target, EXAMPLES)


def test_self_test_a_write_reaching_the_committed_root_is_a_failure(probed, monkeypatch):
    async def scribble(self, req: InstanceRequest) -> web.StreamResponse:
        kv = self.repo_access.sibling("kv")
        kv.put_value(kv.context(self.repo_access.root_ancestry()), "canary", b"scribbled")
        return web.Response()

    monkeypatch.setattr(FuzzProbe, "handle_probe", scribble)
    server, target, before = probed
    fuzz(server, target, 300)  # every answer is fine ...
    with pytest.raises(AssertionError, match=r"canaries changed: \['kv key'\]"):
        check_intact(server, target, before)  # ... but the data is not


def test_self_test_a_dead_server_is_a_failure(probed, monkeypatch):
    async def die(self, req: InstanceRequest) -> web.StreamResponse:
        asyncio.get_running_loop().stop()
        return web.Response()

    monkeypatch.setattr(FuzzProbe, "handle_probe", die)
    server, target, before = probed
    with pytest.raises(AssertionError, match="no response"):
        fuzz(server, target, EXAMPLES, timeout=5.0)
    with pytest.raises(requests.ConnectionError):
        check_intact(server, target, before)


# ---- the generator follows declarations -------------------------------------------------------
class Declared(Datatype):
    """A test-only datatype whose one endpoint declares its path arguments, query and body."""

    type_name = "fuzzdeclared"
    type_url = "test"
    type_version = "0"
    help_text = ""
    routes: ClassVar[tuple[Route, ...]] = (
        Route(
            "cut",
            ("POST",),
            "handle_cut",
            args=(DIMS, SIZE, OFFSET),
            query=(THROTTLE_QUERY,),
            consumes=(JSON,),
        ),
    )

    async def handle_cut(self, req: InstanceRequest) -> web.StreamResponse:
        return web.Response()


def test_requests_follow_declared_args_query_and_body(monkeypatch):
    """Declared ``args`` give valid path segments most of the time (mangled ones otherwise), a
    declared query parameter shows up, and a JSON route gets plain JSON bodies often (a route
    consuming binary gets them in about 4% of requests)."""
    monkeypatch.setitem(registry._TYPES, Declared.type_name, Declared)
    names = Names(
        uuids=("a" * 32, "b" * 32), instances=("d",), types=("fuzzdeclared",), keys=("k",), labels=(1,)
    )
    target = Target(names, {"d": "fuzzdeclared"}, ("b" * 32,))
    draw = RandomDraw(5)
    cuts = []
    for _ in range(3000):
        request = build_request(draw, target)
        parts = request.target.split(b"?")[0].split(b"/")
        if request.method == "POST" and parts[:6] == [b"", b"api", b"node", b"a" * 32, b"d", b"cut"]:
            cuts.append((parts[6:], request))
    assert len(cuts) > 100
    shapes = [re.compile(p.pattern.encode()) for p in (DIMS, SIZE, OFFSET)]
    valid = [args for args, _ in cuts if len(args) == 3 and all(map(re.fullmatch, shapes, args))]
    assert 0.4 < len(valid) / len(cuts) < 0.95  # mostly valid, sometimes mangled
    assert any(b"throttle=" in r.target for _, r in cuts)
    json_bodies = [
        r
        for _, r in cuts
        if r.body[:1] in (b"[", b"{") and b"Content-Encoding" not in b"".join(k for k, _ in r.headers)
    ]
    assert len(json_bodies) > len(cuts) / 5
