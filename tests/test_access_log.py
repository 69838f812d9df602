"""The access log writes one line per request, buffered, with method, path, status, size, time, user."""

from __future__ import annotations

import asyncio
import io
import re
import time

import requests

from dvid.server.access_log import AccessLog
from dvid.server.state import STATE_KEY


def test_lines_are_buffered_then_written():
    stream = io.StringIO()

    async def run() -> tuple[str, str]:
        log = AccessLog(stream)
        log.record("GET", "/api/heartbeat", 200, 2, 0.42, "alice")
        log.record("POST", "/api/repos", 400, 30, 1.5, "")
        before = stream.getvalue()
        await asyncio.sleep(AccessLog.FLUSH_SECONDS * 3)
        return before, stream.getvalue()

    before, after = asyncio.run(run())
    assert before == ""
    lines = after.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GET /api/heartbeat 200 2 0\.4ms u=alice", lines[0])
    assert lines[1].endswith(" POST /api/repos 400 30 1.5ms")


def test_server_logs_each_request(server_factory):
    server = server_factory(access_log=True)
    stream = io.StringIO()
    server.app[STATE_KEY].access_log._stream = stream
    requests.get(server.api("heartbeat?u=bob"), timeout=5)
    requests.get(server.api("node/nope/status"), timeout=5)
    requests.get(server.api("node/nope/seg/raw/0_1_2/8_8_8/0_0_0?scale=1&compression=googlegzip"), timeout=5)
    requests.get(server.api("repos/info?admintoken=s3cret&app=x&xadmintoken=k"), timeout=5)
    time.sleep(AccessLog.FLUSH_SECONDS * 4)
    err = stream.getvalue()
    assert re.search(r"GET /api/heartbeat\?u=bob 200 2 [\d.]+ms u=bob", err), err
    # the query string as sent, so a client's parameters show in the log; never the admin token
    assert " GET /api/node/nope/seg/raw/0_1_2/8_8_8/0_0_0?scale=1&compression=googlegzip 404 " in err
    assert " GET /api/repos/info?admintoken=-&app=x&xadmintoken=k 200 " in err
    assert "s3cret" not in err
    assert re.search(r"GET /api/node/nope/status 404 \d+ [\d.]+ms", err), err
