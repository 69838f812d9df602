"""Shared pytest fixtures."""

from __future__ import annotations

import pytest

from dvid.storage.leveldb import LevelDBEngine
from dvid.storage.memory import MemoryEngine


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server for the session (or DVID_TEST_POSTGRES_DSN's); ``.dsn``.

    Fails (never skips) when PostgreSQL is not installed.
    """
    from tests.pg import start_server

    srv = start_server()
    yield srv
    srv.destroy()


@pytest.fixture
def postgres_engine(postgres_server):
    """A postgres engine on a fresh table of the session's server; the table is dropped at teardown."""
    from dvid.storage.postgres import PostgresEngine
    from tests.pg import drop_table, unique_table

    table = unique_table("contract")
    eng = PostgresEngine(postgres_server.dsn, table=table, pool_max=4)
    yield eng
    eng.close()
    drop_table(postgres_server.dsn, table)


@pytest.fixture(params=["memory", "leveldb", "postgres"])
def engine(request, tmp_path):
    """Every storage engine, fresh and empty; closed at teardown."""
    if request.param == "postgres":
        yield request.getfixturevalue("postgres_engine")
        return
    eng = MemoryEngine() if request.param == "memory" else LevelDBEngine(tmp_path / "leveldb")
    yield eng
    eng.close()


@pytest.fixture
def server_factory(tmp_path):
    """Start real dvid servers over loopback: ``server_factory(engine="leveldb", **server_settings)``.

    Each gets its own LevelDB directory under tmp_path; all are stopped at teardown.
    """
    from tests.serverutil import ServerThread

    started: list[ServerThread] = []

    def start(engine: str = "leveldb", store_dir=None, **settings) -> ServerThread:
        store = store_dir or tmp_path / f"store{len(started)}"
        srv = ServerThread(store, engine=engine, **settings).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def server(server_factory):
    """A dvid server on a fresh LevelDB store, over real HTTP."""
    return server_factory()


@pytest.fixture
def pair(server_factory):
    """Two dvid servers (a sender and a receiver of transfers), each on its own LevelDB store."""
    return server_factory(), server_factory()


@pytest.fixture
def postgres_server_factory(tmp_path, postgres_server):
    """As ``server_factory``, but each server's default store is a table on the test PostgreSQL server.

    Servers given the same ``store_dir`` share a table (as they would share a LevelDB directory);
    an explicit ``engine="memory"`` stays in memory. Tables are dropped at teardown.
    """
    import hashlib

    from dvid.config import StoreSettings
    from tests.pg import drop_table
    from tests.serverutil import ServerThread

    started: list[ServerThread] = []
    tables: set[str] = set()

    def start(engine: str = "postgres", store_dir=None, **settings) -> ServerThread:
        store = store_dir or tmp_path / f"store{len(started)}"
        srv = ServerThread(store, engine="memory" if engine == "memory" else "leveldb", **settings)
        if engine != "memory":
            table = "http_" + hashlib.sha1(str(store).encode()).hexdigest()[:20]
            tables.add(table)
            srv.config.store = {
                "default": StoreSettings(engine="postgres", dsn=postgres_server.dsn, table=table, pool_max=4)
            }
        srv.start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()
    for table in tables:
        drop_table(postgres_server.dsn, table)
