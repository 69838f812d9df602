"""Building the aiohttp application and running it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

import dvid.datatype  # noqa: F401  (registers the datatypes)
from dvid.config import Config
from dvid.console import routes as console_routes
from dvid.repos import RepoManager
from dvid.server import node_routes, repo_routes, server_routes, transfer_routes
from dvid.server.access_log import AccessLog
from dvid.server.heap import trim_heap_every
from dvid.server.logs import quiet_malformed_requests
from dvid.server.middleware import add_cors_headers, request_middleware
from dvid.server.openapi import OPENAPI_CACHE_KEY, DocumentCache
from dvid.server.routing import Router
from dvid.server.state import ROUTER_KEY, STATE_KEY, ServerState
from dvid.storage.engine import Engine
from dvid.storage.stores import Stores, open_engine

__all__ = ["RUNNER_OPTIONS", "create_app", "open_engine", "run_server"]

#: Options for whatever aiohttp runner serves the app. Request bodies arrive as sent: dvid decodes
#: ``Content-Encoding`` itself, strictly and within its limits (dvid.datatype.common.body).
RUNNER_OPTIONS: dict[str, Any] = {"auto_decompress": False}

log = logging.getLogger("dvid.server")


def create_app(config: Config, engine: Engine | None = None, *, close_engine: bool = True) -> web.Application:
    """The dvid application over ``engine`` (else over every store the config names)."""
    quiet_malformed_requests()
    stores = Stores.single(engine) if engine is not None else Stores.open(config)
    server = config.server
    try:
        manager = RepoManager(
            stores,
            instance_id_gen=server.instance_id_gen,
            instance_id_start=server.instance_id_start,
            min_mutation_id_start=server.min_mutation_id_start,
        )
    except BaseException:
        if close_engine:
            stores.close()
        raise
    app = web.Application(
        client_max_size=server.max_body_bytes,
        middlewares=[request_middleware],
    )
    access_log = AccessLog() if server.access_log else None
    app[STATE_KEY] = ServerState(config=config, manager=manager, access_log=access_log)
    router = api_router()
    app[ROUTER_KEY] = router
    app[OPENAPI_CACHE_KEY] = DocumentCache()
    app.router.add_get("/metrics", server_routes.get_metrics)
    if server.console:
        console_routes.setup(app)
    app.router.add_route("*", "/api", router.dispatch)
    app.router.add_route("*", "/api/{tail:.*}", router.dispatch)
    transfer_routes.setup(app)
    app.on_response_prepare.append(add_cors_headers)

    async def shutdown(app: web.Application) -> None:
        if access_log is not None:
            access_log.flush()
        await asyncio.to_thread(manager.wait_for_deletions, 10.0)
        if close_engine:
            stores.close()

    app.on_cleanup.append(shutdown)
    if server.malloc_trim_seconds > 0:
        app.cleanup_ctx.append(_heap_trimming(server.malloc_trim_seconds))
    return app


def api_router() -> Router:
    """Every endpoint under /api: server, repo (transfers included) and node tables."""
    return Router(
        (
            *server_routes.routes,
            *console_routes.routes,
            *repo_routes.routes,
            *transfer_routes.routes,
            *node_routes.routes,
        )
    )


def _heap_trimming(seconds: float) -> Callable[[web.Application], AsyncIterator[None]]:
    """Trim the heap every ``seconds`` while the app runs (see dvid/server/heap.py)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(trim_heap_every(seconds))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx


def _install_fast_loop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def run_server(config: Config) -> None:
    """Serve in the foreground until SIGINT/SIGTERM; then finish requests in flight and close the store."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    _install_fast_loop()
    app = create_app(config)
    where = app[STATE_KEY].manager.stores.describe()
    host, port = config.server.host, config.server.port
    log.info("dvid serving http://%s:%d/api/ with %s (mode %s)", host, port, where, config.server.rwmode)
    web.run_app(
        app, host=host, port=port, access_log=None, print=None, shutdown_timeout=30.0, **RUNNER_OPTIONS
    )
    log.info("dvid stopped")
