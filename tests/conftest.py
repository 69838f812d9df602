"""Shared pytest fixtures."""

from __future__ import annotations

import pytest

from dvid.storage.leveldb import LevelDBEngine
from dvid.storage.memory import MemoryEngine


@pytest.fixture(params=["memory", "leveldb"])
def engine(request, tmp_path):
    """Every storage engine, fresh and empty; closed at teardown."""
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
