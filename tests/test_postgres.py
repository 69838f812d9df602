"""The postgres engine beyond the shared contract: order, sizes, long scans and the pool, faults,
secrets, serving."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import psycopg
import pytest
import requests

from dvid.config import StoreSettings, load_config
from dvid.errors import BadRequest, DVIDError, ServiceUnavailable
from dvid.storage import postgres as pgmod
from dvid.storage.postgres import PostgresEngine
from tests.pg import PgCluster, drop_table, unique_table
from tests.serverutil import ServerThread, free_port

MiB = 1 << 20


def unreachable_dsn() -> str:
    return f"host=127.0.0.1 port={free_port()} user=nobody dbname=nothing"


def test_bytea_orders_bytewise_like_leveldb(postgres_engine):
    keys = [
        b"",
        b"\x00",
        b"\x00\x00",
        b"\x01",
        b"\x7f",
        b"\x80",
        b"\x80\x00",
        b"\xfe\xff",
        b"\xff",
        b"\xff\xff",
    ]
    for k in reversed(keys):
        postgres_engine.put(k, k)
    assert [k for k, _ in postgres_engine.scan(b"", None)] == keys
    assert [k for k, _ in postgres_engine.scan(b"", None, reverse=True)] == keys[::-1]


def test_large_values_round_trip(postgres_engine):
    big = bytes(range(256)) * (24 * MiB // 256)
    postgres_engine.put(b"big", big)
    assert postgres_engine.get(b"big") == big
    with postgres_engine.batch() as wb:
        wb.put(b"b1", big[: 5 * MiB])
        wb.put(b"b2", big)
    assert postgres_engine.get_many([b"b2", b"b1"]) == [big, big[: 5 * MiB]]
    assert [len(v) for _, v in postgres_engine.scan(b"b", b"c")] == [5 * MiB, 24 * MiB, 24 * MiB]


def test_long_scans_page_and_read_one_snapshot(postgres_engine, monkeypatch):
    monkeypatch.setattr(pgmod, "PAGE_ROWS", 50)
    n = 700
    with postgres_engine.batch() as wb:
        for i in range(n):
            wb.put(b"k%05d" % i, b"v%d" % i)
    for reverse in (False, True):
        it = postgres_engine.scan(b"k", b"l", reverse=reverse)
        seen = [next(it)]
        postgres_engine.put(b"k00650", b"changed")  # writes while iterating are not seen
        postgres_engine.delete(b"k00003")
        postgres_engine.put(b"k00003a", b"new")
        seen.extend(it)
        want = [(b"k%05d" % i, b"v%d" % i) for i in range(n)]
        assert seen == (want[::-1] if reverse else want)
        postgres_engine.put(b"k00650", b"v650")
        postgres_engine.put(b"k00003", b"v3")
        postgres_engine.delete(b"k00003a")
    keys = [k for k, _ in postgres_engine.scan(b"k00100", b"k00600", keys_only=True)]
    assert keys == [b"k%05d" % i for i in range(100, 600)]
    # An abandoned long scan gives its connection back.
    for _ in range(10):
        it = postgres_engine.scan(b"k", None)
        next(it)
        del it
    assert postgres_engine.get(b"k00000") == b"v0"


def test_unreachable_database_at_start_is_a_clear_503():
    t0 = time.monotonic()
    with pytest.raises(ServiceUnavailable) as info:
        PostgresEngine(unreachable_dsn(), connect_timeout=2)
    assert time.monotonic() - t0 < 5
    msg = info.value.message
    assert msg.startswith("cannot open PostgreSQL") and "127.0.0.1" in msg and "\n" not in msg
    assert info.value.status == 503


def test_bad_table_name_is_refused():
    with pytest.raises(Exception, match="plain SQL identifier"):
        PostgresEngine(unreachable_dsn(), table="kv; DROP TABLE x")


def test_batch_is_all_or_nothing_when_the_connection_dies(postgres_engine, monkeypatch):
    postgres_engine.put(b"keep", b"old")
    postgres_engine.put(b"doomed", b"x")
    # The put statement of the batch kills its own backend after the DELETE ran in the transaction.
    monkeypatch.setattr(
        postgres_engine,
        "_q_put_many",
        "SELECT pg_terminate_backend(pg_backend_pid()), %b::bytea[], %b::bytea[]",
    )
    with pytest.raises(ServiceUnavailable, match="unavailable"), postgres_engine.batch() as wb:
        wb.delete(b"doomed")
        wb.put(b"keep", b"new")
        wb.put(b"added", b"1")
    monkeypatch.undo()
    assert list(postgres_engine.scan(b"", None)) == [(b"doomed", b"x"), (b"keep", b"old")]
    # The pool replaced the dead connections.
    with postgres_engine.batch() as wb:
        wb.delete(b"doomed")
        wb.put(b"keep", b"new")
    assert list(postgres_engine.scan(b"", None)) == [(b"keep", b"new")]


def test_a_connection_killed_while_idle_is_replaced_transparently(postgres_server, postgres_engine):
    postgres_engine.put(b"a", b"1")
    with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND application_name = '' AND query LIKE %s",
            (f"%{postgres_engine.table}%",),
        )
    for _ in range(5):
        assert postgres_engine.get(b"a") == b"1"


def test_server_info_lists_every_store(postgres_server, tmp_path):
    table = unique_table("info")
    srv = ServerThread(tmp_path / "lvl")
    srv.config.store = {
        "main": StoreSettings(engine="leveldb", path=str(tmp_path / "lvl")),
        "pg": StoreSettings(engine="postgres", dsn=postgres_server.dsn, table=table),
    }
    from dvid.config import BackendSettings

    srv.config.backend = {"default": BackendSettings(store="main"), "keyvalue": BackendSettings(store="pg")}
    srv.start()
    try:
        info = requests.get(srv.api("server/info"), timeout=10).json()
        backend = info["Storage backend"]
        assert backend.startswith(f"main: leveldb @ {tmp_path / 'lvl'} (default, metadata); pg: postgres @ ")
        assert f"table {table}" in backend
        uuid = srv.new_repo()
        srv.new_instance(uuid, "keyvalue", "kv")
        srv.new_instance(uuid, "uint8blk", "g")
        kv_info = requests.get(srv.api(f"node/{uuid}/kv/info"), timeout=10).json()
        assert kv_info["Base"]["KVStore"].startswith("postgres @ ")
        g_info = requests.get(srv.api(f"node/{uuid}/g/info"), timeout=10).json()
        assert g_info["Base"]["KVStore"].startswith("leveldb @ ")
        assert requests.post(srv.api(f"node/{uuid}/kv/key/a"), data=b"1", timeout=10).status_code == 200
        iid = srv.manager.resolve(uuid)[0].instance("kv").meta.instance_id
        from dvid.storage import keys

        pg = srv.manager.stores.engines["pg"]
        pg_keys = [k for k, _ in pg.scan(keys.instance_prefix(iid), None, keys_only=True)]
        assert pg_keys and all(k.startswith(keys.instance_prefix(iid)) for k in pg_keys)
        main = srv.manager.stores.engines["main"]
        assert list(main.scan(keys.instance_prefix(iid), keys.instance_prefix(iid + 1))) == []
    finally:
        srv.stop()
        drop_table(postgres_server.dsn, table)


def test_serve_with_unreachable_database_exits_1_with_one_line(tmp_path):
    cfg = tmp_path / "dvid.toml"
    cfg.write_text(
        f'[server]\nport = {free_port()}\n[store.pg]\nengine = "postgres"\n'
        f'dsn = "{unreachable_dsn()}"\nconnect_timeout = 2\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "dvid.cli", "serve", str(cfg)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dvid: cannot open PostgreSQL store 'pg' at 127.0.0.1:"), lines[0]


@pytest.fixture
def own_cluster():
    """A PostgreSQL cluster of this test's own, to stop and start."""
    cluster = PgCluster().init()
    yield cluster
    cluster.destroy()


def test_database_lost_mid_run_gives_503_then_recovers(own_cluster, tmp_path):
    srv = ServerThread(None)
    srv.config.store = {
        "default": StoreSettings(engine="postgres", dsn=own_cluster.dsn, table="fault", connect_timeout=2)
    }
    srv.start()
    try:
        uuid = srv.new_repo()
        srv.new_instance(uuid, "keyvalue", "kv")
        kv = srv.api(f"node/{uuid}/kv")
        assert requests.post(f"{kv}/key/a", data=b"1", timeout=10).status_code == 200

        own_cluster.stop()
        r = requests.post(f"{kv}/key/b", data=b"2", timeout=30)
        assert r.status_code == 503, r.text
        assert "PostgreSQL" in r.text and "unavailable" in r.text
        r = requests.get(f"{kv}/key/a", timeout=30)
        assert r.status_code == 503, r.text

        own_cluster.start()
        deadline = time.monotonic() + 20
        while True:
            r = requests.get(f"{kv}/key/a", timeout=30)
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.status_code == 200 and r.content == b"1"
        assert requests.get(f"{kv}/key/b", timeout=10).status_code == 404  # the failed write left nothing
        assert requests.post(f"{kv}/key/b", data=b"2", timeout=10).status_code == 200
        assert requests.get(f"{kv}/key/b", timeout=10).content == b"2"
    finally:
        srv.stop()


# ---- a pool of two connections: long scans, lost connections, bad keys ---------------------------


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


# ---- passwords stay secret -----------------------------------------------------------------------


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


# ---- several stores ------------------------------------------------------------------------------


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
        repo = manager.resolve(repo.root_uuid)[0]
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
