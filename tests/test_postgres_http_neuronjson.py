"""The neuronjson HTTP test module, run once more with every server's store on PostgreSQL, and two
servers sharing one PostgreSQL table: each one's in-memory index follows the other's writes."""

from __future__ import annotations

import pytest

from tests.test_neuronjson import *  # noqa: F403  (the tests, collected again here)
from tests.test_neuronjson import DATA_A, NJ


@pytest.fixture
def server_factory(postgres_server_factory):
    return postgres_server_factory


def test_the_annotations_live_on_postgres(nj):
    from dvid.storage.postgres import PostgresEngine

    repo, _ = nj.server.manager.resolve(nj.uuid)
    assert isinstance(repo.instance("annotations").store.engine, PostgresEngine)


def test_servers_sharing_the_table_see_each_others_writes(postgres_server_factory, tmp_path):
    store = tmp_path / "shared"
    first = postgres_server_factory(store_dir=store)
    uuid = first.new_repo()
    first.new_instance(uuid, "neuronjson", "annotations")
    a = NJ(first, uuid)
    a.load(DATA_A)
    b = NJ(postgres_server_factory(store_dir=store), uuid)
    assert b.query({"baz": "exists/1"}, onlyid="true") == [1000, 2000, 4000]  # b builds its index
    assert a.query({"baz": "exists/1"}, onlyid="true") == [1000, 2000, 4000]  # so does a
    a.put_ok(3000, {"bodyid": 3000, "baz": "now"})
    assert b.query({"baz": "exists/1"}, onlyid="true") == [1000, 2000, 3000, 4000]
    assert b.query({"baz": "now"}, fields="baz") == [{"bodyid": 3000, "baz": "now"}]
    b.put_ok(5000, {"bodyid": 5000, "baz": "now"}, user="b")
    assert b.call("DELETE", "key/1000").status_code == 200
    assert a.query({"baz": ["now", ""]}, onlyid="true") == [3000, 5000]
    assert a.json("GET", "keys") == ["2000", "3000", "4000", "5000"]
    assert a.json("GET", "fields", params={"counts": "true"})["baz"] == 4
    assert a.get(5000, show="user")["baz_user"] == "b"
    # and writes made on top of a current index go on being seen by both
    a.put_ok(5000, {"bodyid": 5000, "baz": "later"}, user="a")
    assert b.query({"baz": "later"}, onlyid="true") == [5000]
    assert a.query({"baz": "later"}, onlyid="true") == [5000]
