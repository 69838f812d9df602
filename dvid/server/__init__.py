"""The HTTP server: aiohttp application, middleware, and the server/repo/node endpoints."""

from dvid.server.app import create_app, open_engine, run_server

__all__ = ["create_app", "open_engine", "run_server"]
