"""The labelmap HTTP test module, run once more with every server's store on PostgreSQL."""

from __future__ import annotations

import pytest

from tests.test_labelmap import *  # noqa: F403  (the tests, collected again here)


@pytest.fixture
def server_factory(postgres_server_factory):
    return postgres_server_factory


def test_the_labelmap_lives_on_postgres(lm):
    from dvid.storage.postgres import PostgresEngine

    repo, _ = lm.server.manager.resolve(lm.uuid)
    assert isinstance(repo.instance("seg").store.engine, PostgresEngine)
