"""A throwaway PostgreSQL server for tests: initdb into a temporary directory, start, create a database.

``DVID_TEST_POSTGRES_DSN`` names an existing server's database to use instead. PostgreSQL refuses
to run as root, so as root the cluster belongs to the ``postgres`` user and its commands run through
``runuser``; otherwise they run directly. A missing PostgreSQL installation is an error, never a skip.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

DSN_ENV = "DVID_TEST_POSTGRES_DSN"


class PostgresUnavailable(RuntimeError):
    pass


def find_bindir() -> Path:
    """The directory holding initdb and pg_ctl (pg_config, Debian's layout, then PATH)."""
    candidates: list[str] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(os.environ["PG_BINDIR"])
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            candidates.append(subprocess.check_output([pg_config, "--bindir"], text=True).strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for exe in ("initdb", "pg_ctl"):
        found = shutil.which(exe)
        if found:
            candidates.append(str(Path(found).resolve().parent))
    for c in candidates:
        if (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    raise PostgresUnavailable(
        "PostgreSQL is not installed (no initdb/pg_ctl found via PG_BINDIR, pg_config, "
        f"/usr/lib/postgresql/*/bin or PATH); install it or set {DSN_ENV} to an existing database"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    """One PostgreSQL cluster in a temporary directory, on a free localhost port."""

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.as_root = os.geteuid() == 0
        # As root the postgres user must reach the directory: /tmp, not a root-only $TMPDIR.
        self.base = Path(tempfile.mkdtemp(prefix="dvid-pg-", dir="/tmp" if self.as_root else None))
        self.datadir = self.base / "data"
        self.port = _free_port()
        self.dbname = "dvid_test"
        self.owned = True

    def _cmd(self, *args: str) -> list[str]:
        if self.as_root:
            return ["runuser", "-u", "postgres", "--", *args]
        return list(args)

    def _run(self, *args: str, timeout: float = 120) -> None:
        proc = subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            why = proc.stderr.strip() or proc.stdout.strip()
            raise PostgresUnavailable(f"{' '.join(args[:2])} failed ({proc.returncode}): {why}")

    @property
    def admin_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={self.dbname}"

    @property
    def user(self) -> str:
        return "postgres" if self.as_root else pwd.getpwuid(os.geteuid()).pw_name

    def init(self) -> PgCluster:
        if self.as_root:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(
                    "running as root needs a 'postgres' user to own the cluster"
                ) from None
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            self.user,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        with open(self.datadir / "postgresql.conf", "a") as f:
            f.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.base}'\nfsync = off\nsynchronous_commit = off\n"
                "full_page_writes = off\nshared_buffers = 128MB\nmax_connections = 200\n"
            )
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(self.datadir / "postgresql.conf", pw.pw_uid, pw.pw_gid)
        self.start()
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.dbname}")
        return self

    def start(self) -> None:
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-l",
            str(self.base / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(PostgresUnavailable, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


class ExternalServer:
    """A database named by ``DVID_TEST_POSTGRES_DSN`` (never started or stopped here)."""

    owned = False

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        try:
            with psycopg.connect(dsn, connect_timeout=5):
                pass
        except psycopg.Error as exc:
            raise PostgresUnavailable(f"{DSN_ENV}={dsn!r} is unreachable: {exc}") from None

    def destroy(self) -> None:
        pass


def start_server() -> PgCluster | ExternalServer:
    dsn = os.environ.get(DSN_ENV)
    if dsn:
        return ExternalServer(dsn)
    return PgCluster().init()


def unique_table(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def drop_table(dsn: str, table: str) -> None:
    for _ in range(3):
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
                # A scan a failed test left open holds a lock on the table: give up, never hang.
                conn.execute("SET lock_timeout = '5s'")
                conn.execute(f'DROP TABLE IF EXISTS "{table}"')
            return
        except psycopg.OperationalError:
            time.sleep(0.2)
