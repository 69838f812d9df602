"""What runs inside a benchmark server process: ``python -m bench.servers {dvid,baseline} ...``.

The harness starts these as subprocesses (see :class:`bench.harness.ServerProcess`); both
listen on 127.0.0.1 only and stop gracefully on SIGTERM/SIGINT.

- ``dvid``: :func:`dvid.server.app.run_server` on a LevelDB store, exactly as ``dvid serve``
  runs it (it installs uvloop's policy itself when uvloop is importable). With ``--profile``
  the server runs under cProfile and the stats are written when it stops. With ``--memory-debug``
  (or ``--tracemalloc FRAMES``) it also answers ``GET /bench/memory`` (bench/memdebug.py).
- ``baseline``: a bare aiohttp app under the same event loop policy, with the handlers the
  workloads compare against: a small JSON body, 2 KiB of bytes, a POST sink (bodies up to
  2 GiB, ``request.read()``), ``/recv`` (a POST body read piece by piece into a buffer, as dvid
  receives a volume; the buffer is kept and reused, so the figure is the transfer alone),
  ``/bytes/{n}`` (the first n bytes, n <= 16 MiB, of a preallocated buffer, in one
  ``web.Response``) and ``/stream/{n}`` (n bytes of it repeated, written in 1 MiB pieces).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from dvid.config import Config

LOOPBACK = "127.0.0.1"
BASELINE_JSON = {"Repo Alias": "bench", "Locked": False, "count": 1}
BASELINE_BYTES = os.urandom(2048)
#: Size of what ``/bytes/{n}`` and ``/stream/{n}`` send (random bytes, allocated with the app).
BIG_BUFFER_BYTES = 16 << 20
STREAM_PIECE = 1 << 20
SINK_MAX_BYTES = 2 << 30


def install_loop_policy() -> str:
    """uvloop's policy when importable (as dvid.server.app does); returns the loop's name."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def baseline_app() -> web.Application:
    """The bare aiohttp app: no middleware, trivial handlers."""

    async def json_handler(request: web.Request) -> web.Response:
        return web.json_response(BASELINE_JSON)

    async def bytes_handler(request: web.Request) -> web.Response:
        return web.Response(body=BASELINE_BYTES, content_type="application/octet-stream")

    async def sink_handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response()

    recv_buffer = [bytearray()]  # reused (grown to the largest body seen): no per-request page faults

    async def recv_handler(request: web.Request) -> web.Response:
        n = request.content_length
        if n is None or n > SINK_MAX_BYTES:
            raise web.HTTPBadRequest(text="needs a Content-Length of at most 2 GiB")
        if len(recv_buffer[0]) < n:
            recv_buffer[0] = bytearray(n)
        buf = memoryview(recv_buffer[0])
        got = 0
        async for chunk in request.content.iter_any():
            end = got + len(chunk)
            if end > n:
                raise web.HTTPBadRequest(text="body longer than its Content-Length")
            buf[got:end] = chunk
            got = end
        if got != n:
            raise web.HTTPBadRequest(text=f"body of {got} bytes, Content-Length {n}")
        return web.Response()

    big = memoryview(os.urandom(BIG_BUFFER_BYTES))

    async def n_bytes_handler(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if n > len(big):
            raise web.HTTPBadRequest(text=f"at most {len(big)} bytes")
        return web.Response(body=big[:n], content_type="application/octet-stream")

    async def stream_handler(request: web.Request) -> web.StreamResponse:
        n = int(request.match_info["n"])
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.content_length = n
        await resp.prepare(request)
        sent = 0
        while sent < n:
            piece = min(STREAM_PIECE, n - sent)
            start = sent % (len(big) - STREAM_PIECE + 1)
            await resp.write(big[start : start + piece])
            sent += piece
        await resp.write_eof()
        return resp

    app = web.Application(client_max_size=SINK_MAX_BYTES)
    app.router.add_get("/json", json_handler)
    app.router.add_get("/bytes", bytes_handler)
    app.router.add_post("/sink", sink_handler)
    app.router.add_post("/recv", recv_handler)
    app.router.add_get(r"/bytes/{n:\d+}", n_bytes_handler)
    app.router.add_get(r"/stream/{n:\d+}", stream_handler)
    app.router.add_get("/ready", json_handler)
    return app


def serve_baseline(port: int) -> None:
    install_loop_policy()
    web.run_app(baseline_app(), host=LOOPBACK, port=port, access_log=None, print=None, shutdown_timeout=5.0)


def run_dvid_with_memory_route(config: Config) -> None:
    """:func:`dvid.server.app.run_server` step by step, with ``GET /bench/memory`` added to the app."""
    import logging
    import sys

    from bench.memdebug import add_memory_route
    from dvid.server.app import RUNNER_OPTIONS, create_app

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    install_loop_policy()
    app = create_app(config)
    add_memory_route(app)
    host, port = config.server.host, config.server.port
    web.run_app(
        app, host=host, port=port, access_log=None, print=None, shutdown_timeout=30.0, **RUNNER_OPTIONS
    )


def serve_dvid(
    port: int,
    store: str,
    *,
    access_log: bool,
    profile: str | None,
    postgres: str | None = None,
    memory_debug: bool = False,
    trace_frames: int = 0,
    max_open_files: int | None = None,
    limits: dict[str, int] | None = None,
) -> None:
    from dvid.config import Config, ServerSettings, StoreSettings
    from dvid.server.app import run_server

    if trace_frames:
        import tracemalloc

        tracemalloc.start(trace_frames)
    serve = run_dvid_with_memory_route if memory_debug or trace_frames else run_server
    leveldb = {} if max_open_files is None else {"max_open_files": max_open_files}
    settings = StoreSettings(engine="leveldb", path=store, **leveldb)
    if postgres:  # a fresh table per store directory, pool as large as the harness's concurrency
        import hashlib

        table = "bench_" + hashlib.sha1(store.encode()).hexdigest()[:20]
        settings = StoreSettings(engine="postgres", dsn=postgres, table=table, pool_min=2, pool_max=17)
    config = Config(
        server=ServerSettings(host=LOOPBACK, port=port, access_log=access_log, **(limits or {})),
        store={"default": settings},
    )
    if profile is None:
        serve(config)
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        serve(config)
    finally:
        profiler.disable()
        profiler.dump_stats(profile)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.servers")
    parser.add_argument("kind", choices=("dvid", "baseline"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", help="LevelDB directory (dvid only)")
    parser.add_argument(
        "--postgres", metavar="DSN", help="dvid: store in a table of this PostgreSQL database"
    )
    parser.add_argument("--no-access-log", action="store_true", help="dvid: access_log = false")
    parser.add_argument("--profile", help="dvid: write cProfile stats here on exit")
    parser.add_argument("--max-open-files", type=int, help="dvid: the LevelDB store's MaxOpenFiles")
    parser.add_argument(
        "--memory-debug", action="store_true", help="dvid: serve GET /bench/memory (bench/memdebug.py)"
    )
    parser.add_argument(
        "--tracemalloc",
        type=int,
        default=0,
        metavar="FRAMES",
        help="dvid: trace allocations (implies --memory-debug)",
    )
    parser.add_argument("--max-request-voxels", type=int, help="dvid: server setting max_request_voxels")
    parser.add_argument("--max-body-bytes", type=int, help="dvid: server setting max_body_bytes")
    parser.add_argument(
        "--memory-limit-mb", type=int, help="cap the data memory (RLIMIT_DATA): a runaway fails alone"
    )
    args = parser.parse_args(argv)
    if args.memory_limit_mb:
        import resource

        limit = args.memory_limit_mb << 20
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    if args.kind == "baseline":
        serve_baseline(args.port)
    else:
        if not args.store:
            parser.error("dvid needs --store")
        serve_dvid(
            args.port,
            args.store,
            access_log=not args.no_access_log,
            profile=args.profile,
            postgres=args.postgres,
            memory_debug=args.memory_debug,
            trace_frames=args.tracemalloc,
            max_open_files=args.max_open_files,
            limits={
                name: value
                for name, value in (
                    ("max_request_voxels", args.max_request_voxels),
                    ("max_body_bytes", args.max_body_bytes),
                )
                if value is not None
            },
        )


if __name__ == "__main__":
    main()
