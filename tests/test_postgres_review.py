"""Postgres engine edge cases: long scans and the pool, snapshots, retries, errors, secrets."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from dvid.config import load_config
from dvid.errors import BadRequest, DVIDError, ServiceUnavailable
from dvid.storage import postgres as pgmod
from dvid.storage.postgres import PostgresEngine
from tests.pg import drop_table, unique_table


@pytest.fixture
def small_pool(postgres_server):
    """An engine whose pool holds at most two connections (the smallest allowed)."""
    table = unique_table("small")
    eng = PostgresEngine(postgres_server.dsn, table=table, pool_min=1, pool_max=2, connect_timeout=3)
    with eng.batch() as wb:
        for i in range(300):
            wb.put(b"k%05d" % i, b"v%d" % i)
    yield eng
    eng.close()
    drop_table(postgres_server.dsn, table)


def test_long_scan_snapshot_is_taken_when_scan_is_called(small_pool):
    it = small_pool.scan(b"k", b"l")
    small_pool.put(b"k00000a", b"new")  # before the first next(): must not be seen either
    small_pool.delete(b"k00299")
    keys = [k for k, _ in it]
    assert keys == [b"k%05d" % i for i in range(300)]


def test_abandoned_long_scans_do_not_starve_the_pool(small_pool):
    kept = []
    for _ in range(5):  # never exhausted, never closed, still referenced
        it = small_pool.scan(b"k", None)
        next(it)
        kept.append(it)
    t0 = time.monotonic()
    assert small_pool.get(b"k00001") == b"v1"
    small_pool.put(b"x", b"1")
    assert time.monotonic() - t0 < 1.0
    assert [len(list(it)) for it in kept] == [299] * 5


def test_nested_long_scans_with_writes_do_not_deadlock(small_pool):
    t0 = time.monotonic()
    n = 0
    for k1, _ in small_pool.scan(b"k", b"k00100"):
        if n == 0:
            inner = small_pool.scan(b"k", None)
            next(inner)
            small_pool.put(b"y" + k1, b"1")
            assert small_pool.get(b"y" + k1) == b"1"
            assert len(list(inner)) == 299
        n += 1
    assert n == 100
    assert time.monotonic() - t0 < 2.0


def test_threads_each_holding_a_long_scan_can_still_read(small_pool):
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def work():
        try:
            it = small_pool.scan(b"k", None)
            next(it)
            barrier.wait(timeout=10)
            for i in range(20):
                assert small_pool.get(b"k%05d" % i) == b"v%d" % i
            assert len(list(it)) == 299
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert time.monotonic() - t0 < 3.0


def test_connection_lost_between_pages_of_a_long_scan_is_503(postgres_server, small_pool, monkeypatch):
    monkeypatch.setattr(pgmod, "PAGE_ROWS", 50)
    it = small_pool.scan(b"k", None)
    next(it)
    with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND state LIKE 'idle in transaction%%'"
        )
    with pytest.raises(ServiceUnavailable, match="unavailable"):
        list(it)
    assert small_pool.get(b"k00001") == b"v1"
    assert len(list(small_pool.scan(b"k", None))) == 300


def test_a_key_too_long_for_the_index_is_not_a_503(small_pool):
    import os

    key = os.urandom(4000)
    with pytest.raises(DVIDError) as info:
        small_pool.put(key, b"v")
    assert not isinstance(info.value, ServiceUnavailable)
    assert info.value.status != 503
    assert "key" in info.value.message
    # the pool is healthy afterwards
    assert small_pool.get(b"k00001") == b"v1"


SECRET_CONFIG = """
[store.pg]
engine = "postgres"
dsn = "host=h password=s3cretpw"
pool_min = 9
"""


def test_config_errors_do_not_print_the_dsn_password(tmp_path):
    path = tmp_path / "dvid.toml"
    path.write_text(SECRET_CONFIG)
    with pytest.raises(BadRequest) as info:
        load_config(path)
    assert "pool_min must not exceed pool_max" in info.value.message
    assert "cretpw" not in info.value.message
    assert "store.pg" in info.value.message


def test_describe_never_shows_the_password(postgres_server):
    from dvid.storage.postgres import _where

    assert "s3cretpw" not in _where("postgresql://u:s3cretpw@h:5433/d")
    assert "s3cretpw" not in _where("host=h port=5433 user=u password=s3cretpw dbname=d")
    assert "s3cretpw" not in _where("postgresql://u:s3cretpw@h:5433/d?sslmode=bogus")


def test_scan_ranges_with_thousands_of_ranges(small_pool):
    ranges = [(b"k%05d" % i, b"k%05d\x00" % i) for i in range(0, 300, 3)] * 40  # 4,000 ranges
    ranges += [(b"k00010", b"k00005"), (b"", b"")]
    got = list(small_pool.scan_ranges(ranges))
    assert len(got) == len(ranges)
    for (lo, _), pairs in zip(ranges[:-2], got[:-2], strict=True):
        assert pairs == [(lo, b"v%d" % int(lo[1:]))]
    assert got[-2:] == [[], []]


def test_leveldb_and_postgres_stores_keep_everything_across_restart(postgres_server, tmp_path):
    from dvid.config import Config
    from dvid.repos import RepoManager
    from dvid.storage.stores import Stores

    table = unique_table("multi")
    cfg = Config.model_validate(
        {
            "store": {
                "main": {"engine": "leveldb", "path": str(tmp_path / "main")},
                "pg": {"engine": "postgres", "dsn": postgres_server.dsn, "table": table, "pool_max": 2},
            },
            "backend": {"default": {"store": "main"}, "keyvalue": {"store": "pg"}},
        }
    )
    try:
        manager = RepoManager(Stores.open(cfg))
        repo = manager.new_repo("r")
        kv = manager.new_instance(repo, repo.dag.root, {"typename": "keyvalue", "dataname": "kv"})
        other = manager.new_instance(repo, repo.dag.root, {"typename": "uint8blk", "dataname": "g"})
        anc = repo.dag.ancestry(repo.dag.root_version)
        with kv.context(anc).batch() as b:
            for i in range(200):  # more than a first page
                b.put(b"key%04d" % i, b"val%d" % i)
        other.context(anc).put(b"blk", b"\x00" * 10)
        manager.stores.close()

        manager = RepoManager(Stores.open(cfg))
        repo = manager.repo_of(repo.root_uuid)
        kv, other = repo.instance("kv"), repo.instance("g")
        assert kv.store.engine is manager.stores.engines["pg"]
        assert other.store.engine is manager.stores.engines["main"]
        anc = repo.dag.ancestry(repo.dag.root_version)
        assert kv.context(anc).get(b"key0199") == b"val199"
        assert other.context(anc).get(b"blk") == b"\x00" * 10
        assert "s3cret" not in manager.stores.describe()
        manager.stores.close()
    finally:
        drop_table(postgres_server.dsn, table)
