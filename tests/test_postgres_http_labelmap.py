"""The labelmap HTTP test module, run once more with every server's store on PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_labelmap import *  # noqa: F403  (the tests, collected again here)
from tests.test_labelmap import Client


@pytest.fixture
def server_factory(postgres_server_factory):
    return postgres_server_factory


def test_the_labelmap_lives_on_postgres(lm):
    from dvid.storage.postgres import PostgresEngine

    repo, _ = lm.server.manager.resolve(lm.uuid)
    assert isinstance(repo.instance("seg").store.engine, PostgresEngine)


def test_a_server_sharing_the_table_sees_anothers_edits(postgres_server_factory, tmp_path, volume):
    """Two servers on one table: the reader's cached mapping follows the writer's merges and cleaves."""
    store = tmp_path / "shared"
    writer = postgres_server_factory(store_dir=store)
    uuid = writer.new_repo()
    writer.new_instance(uuid, "labelmap", "seg")
    w = Client(writer, uuid)
    w.ok("POST", "raw/0_1_2/128_128_64/0_0_0", data=volume.tobytes())
    reader = postgres_server_factory(store_dir=store, rwmode="readonly")
    r = Client(reader, uuid)
    assert r.get("raw/0_1_2/128_128_64/0_0_0").content == volume.tobytes()  # the reader caches
    a, b = (int(v) for v in np.unique(volume)[1:3])
    w.ok("POST", "merge", data=f"[{a}, {b}]")
    merged = np.where(volume == b, a, volume)
    assert r.get("raw/0_1_2/128_128_64/0_0_0").content == merged.tobytes()
    assert r.get("mapping", data=f"[{a}, {b}]").json() == [a, a]
    cleaved = w.post(f"cleave/{a}", data=f"[{b}]").json()["CleavedLabel"]
    assert r.get("mapping", data=f"[{a}, {b}]").json() == [a, cleaved]
    assert r.get("raw/0_1_2/128_128_64/0_0_0").content == np.where(volume == b, cleaved, volume).tobytes()
