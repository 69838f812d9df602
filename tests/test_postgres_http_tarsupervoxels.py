"""The tarsupervoxels HTTP test module, run once more with every server's store on PostgreSQL."""

from __future__ import annotations

import pytest

from tests.test_tarsupervoxels import *  # noqa: F403  (the tests, collected again here)


@pytest.fixture
def server_factory(postgres_server_factory):
    return postgres_server_factory
