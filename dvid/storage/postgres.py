"""PostgreSQL engine (psycopg 3 with a connection pool): one table of ordered bytea keys per store.

Schema: ``CREATE TABLE <table> (k bytea PRIMARY KEY, v bytea NOT NULL)``. PostgreSQL compares
``bytea`` bytewise (memcmp over the common length, then the shorter first) whatever the database's
collation, which is exactly LevelDB's default comparator, so ``ORDER BY k`` and the B-tree on the
primary key give the Engine's key order.

* Single puts are upserts (``INSERT ... ON CONFLICT (k) DO UPDATE``); a batch is one transaction
  (one ``DELETE ... = ANY(keys)`` and array upserts of at most ~64 MiB each), so it is all-or-nothing.
* Scans read pages by keyset pagination (``k > last ORDER BY k LIMIT n``, ``n`` adapted so a page
  holds about 8 MiB): memory stays bounded whatever the range. A scan whose first page is the
  whole range uses one autocommit statement (a snapshot by itself) and holds no connection while the
  caller iterates; a longer scan re-reads at once (its snapshot is taken when ``scan`` is called) in
  a ``REPEATABLE READ READ ONLY`` transaction on a connection it keeps until the iterator is
  exhausted or dropped, so every page comes from one snapshot (the Engine contract) -- keyset
  pages rather than a server-side cursor so the page size can follow the value sizes and a page
  is an ordinary indexed query. That connection is not from the pool (callers read, write and
  scan again while iterating; scans holding pool connections could starve them): idle ones of
  finished scans are kept for the next, else a new one is opened.
* ``delete_range`` is one ``DELETE`` statement (the ``chunk`` argument is not needed).
* A lost or refused connection raises :class:`~dvid.errors.ServiceUnavailable` (HTTP 503). Each
  operation is retried once on a fresh connection when its connection broke (typically one that
  had gone stale while idle in the pool, e.g. after the database restarted); every operation is
  an idempotent setting of keys, so a retry cannot apply anything twice in effect. A statement
  failing on a live connection (a key over the B-tree's ~2,700-byte limit, a resource limit) is
  neither retried nor reported as unavailable.

Values are limited by ``bytea`` to 1 GiB (and a statement's parameters to about 1 GiB in all).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from dvid.errors import DVIDError, ServiceUnavailable
from dvid.storage.engine import DELETED, Engine, QueuedWriteBatch

log = logging.getLogger("dvid.storage.postgres")

T = TypeVar("T")
MiB = 1 << 20
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

#: Rows of a scan's first page (small: most scans are a key's few versions).
FIRST_PAGE_ROWS = 64
#: Row and byte targets for later pages.
PAGE_ROWS = 1000
PAGE_BYTES = 8 * MiB
#: Upper bound on the values sent in one upsert statement of a batch.
BATCH_STATEMENT_BYTES = 64 * MiB


def _where(dsn: str) -> str:
    """The DSN without any password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(unparsable DSN)"
    host = info.get("host") or "local socket"
    port = info.get("port") or "5432"
    return f"{host}:{port}/{info.get('dbname') or info.get('user') or ''}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class PostgresEngine(Engine):
    """Keys and values in one table of a PostgreSQL database, reached through a connection pool."""

    remote = True

    name = "postgres"

    def __init__(
        self,
        dsn: str,
        *,
        table: str = "dvid_kv",
        pool_min: int = 1,
        pool_max: int = 8,
        connect_timeout: float = 5.0,
        store_name: str = "",
    ) -> None:
        if not _TABLE_NAME.match(table):
            raise DVIDError(f"postgres table name {table!r} must be a plain SQL identifier", status=500)
        if pool_max < 2:
            raise DVIDError("a postgres store needs pool_max >= 2 (scans may hold a connection)", status=500)
        self.dsn = dsn
        self.table = table
        self.where = _where(dsn)
        self.store_name = store_name
        self.connect_timeout = connect_timeout
        label = f"store {store_name!r} " if store_name else ""
        self._label = f"PostgreSQL {label}at {self.where}"
        # Fail fast, with the server's own reason, when the database is unreachable at start.
        try:
            with psycopg.connect(
                dsn, connect_timeout=max(1, round(connect_timeout)), autocommit=True
            ) as conn:
                conn.execute(
                    sql.SQL("CREATE TABLE IF NOT EXISTS {} (k bytea PRIMARY KEY, v bytea NOT NULL)").format(
                        sql.Identifier(table)
                    )
                )
        except psycopg.Error as exc:
            raise ServiceUnavailable(f"cannot open {self._label}: {_one_line(exc)}") from None
        self._pool = ConnectionPool(
            dsn,
            min_size=pool_min,
            max_size=pool_max,
            kwargs={"autocommit": True, "connect_timeout": max(1, round(connect_timeout))},
            timeout=connect_timeout,
            # A failed background reconnection gives up at once (no growing backoff): the next
            # request that needs a connection tries again, so service resumes as the database returns.
            reconnect_timeout=0,
            name=f"dvid-{table}",
            open=False,
        )
        self._pool.open(wait=False)
        self._closed = False
        self._close_lock = threading.Lock()
        # Idle connections of finished long scans, kept for the next ones (see _scan_conn).
        self._scan_lock = threading.Lock()
        self._scan_idle: list[psycopg.Connection] = []
        self._scan_idle_max = pool_max
        t = sql.Identifier(table)
        self._q_get = sql.SQL("SELECT v FROM {} WHERE k = %b").format(t).as_string()
        self._q_get_many = sql.SQL("SELECT k, v FROM {} WHERE k = ANY(%b)").format(t).as_string()
        self._q_put = (
            sql.SQL("INSERT INTO {} (k, v) VALUES (%b, %b) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v")
            .format(t)
            .as_string()
        )
        self._q_put_many = (
            sql.SQL(
                "INSERT INTO {} (k, v) SELECT * FROM unnest(%b::bytea[], %b::bytea[])"
                " ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
            )
            .format(t)
            .as_string()
        )
        self._q_scan_ranges, self._q_scan_ranges_keys = (
            sql.SQL(
                "SELECT r.i, t.k, t.v FROM unnest(%b::bytea[], %b::bytea[]) WITH ORDINALITY AS r(lo, hi, i)"
                " CROSS JOIN LATERAL (SELECT k, {} AS v FROM {} WHERE k >= r.lo AND k < r.hi) AS t"
                " ORDER BY r.i, t.k"
            )
            .format(sql.SQL(column), t)
            .as_string()
            for column in ("v", "''::bytea")
        )
        self._q_delete = sql.SQL("DELETE FROM {} WHERE k = %b").format(t).as_string()
        self._q_delete_many = sql.SQL("DELETE FROM {} WHERE k = ANY(%b)").format(t).as_string()
        self._t = t
        self._page_queries: dict[tuple[bool, bool, bool, bool], str] = {}

    # ---- connection handling -------------------------------------------------------------------
    def _run(self, fn: Callable[[psycopg.Connection], T], what: str) -> T:
        """``fn`` on a pooled connection; connection failures become ServiceUnavailable (503)."""
        if self._closed:
            raise RuntimeError("the postgres engine is closed")
        for attempt in (0, 1):
            try:
                with self._pool.connection() as conn:
                    try:
                        return fn(conn)
                    except psycopg.OperationalError as exc:
                        if not (conn.broken or conn.closed):
                            # The connection is fine: the statement itself failed (a key too long
                            # for the index, a resource limit): no retry, and not "unavailable".
                            raise self._statement_error(exc, what) from None
                        raise
            except PoolTimeout as exc:
                raise ServiceUnavailable(
                    f"{self._label} is unavailable ({what}): no connection within"
                    f" {self.connect_timeout:g} s: {_one_line(exc)}"
                ) from None
            except psycopg.OperationalError as exc:
                # The connection died (server restarted, network cut): drop the pool's other idle
                # connections that died with it, then try once more on a fresh one.
                self._pool.check()
                if attempt == 0:
                    log.warning("%s: %s failed (%s); retrying on a new connection", self._label, what, exc)
                    continue
                raise ServiceUnavailable(f"{self._label} is unavailable ({what}): {_one_line(exc)}") from None
        raise AssertionError("unreachable")

    def _statement_error(self, exc: psycopg.Error, what: str) -> DVIDError:
        """A failed statement on a live connection, as a DVIDError naming the store."""
        text = _one_line(exc)
        if exc.sqlstate == "54000" and "index row" in text:
            return DVIDError(
                f"{self._label} cannot store a key this long ({what}): {text}"
                " (PostgreSQL's primary-key index limits a key to about 2,700 bytes)",
                status=400,
            )
        status = 503 if (exc.sqlstate or "").startswith(("53", "57")) else 500
        return DVIDError(f"{self._label}: {what} failed: {text}", status=status)

    # ---- long-scan connections -----------------------------------------------------------------
    def _scan_conn(self) -> psycopg.Connection:
        """A connection for a long scan: an idle one kept from earlier scans, else a new one.

        Long scans never take connections from the pool: a scan holds its connection while the
        caller iterates, and callers read and write (even scan again) meanwhile, so scans drawing on
        the pool could exhaust it and leave those operations waiting on themselves.
        """
        with self._scan_lock:
            while self._scan_idle:
                conn = self._scan_idle.pop()
                if not (conn.closed or conn.broken):
                    return conn
        try:
            return psycopg.connect(
                self.dsn, autocommit=True, connect_timeout=max(1, round(self.connect_timeout))
            )
        except psycopg.OperationalError as exc:
            raise ServiceUnavailable(f"{self._label} is unavailable (scan): {_one_line(exc)}") from None

    def _release_scan_conn(self, conn: psycopg.Connection) -> None:
        healthy = not (conn.closed or conn.broken)
        if healthy and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):
                conn.execute("ROLLBACK")
            healthy = not (conn.closed or conn.broken)
        with self._scan_lock:
            if healthy and not self._closed and len(self._scan_idle) < self._scan_idle_max:
                self._scan_idle.append(conn)
                return
        with contextlib.suppress(psycopg.Error):
            conn.close()

    # ---- reads ---------------------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        def run(conn: psycopg.Connection) -> bytes | None:
            row = conn.cursor(binary=True).execute(self._q_get, (bytes(key),)).fetchone()
            return None if row is None else row[0]

        return self._run(run, "get")

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        if not keys:
            return []
        if len(keys) == 1:
            return [self.get(keys[0])]
        wanted = [bytes(k) for k in keys]

        def run(conn: psycopg.Connection) -> dict[bytes, bytes]:
            cur = conn.cursor(binary=True).execute(self._q_get_many, (list(set(wanted)),))
            return dict(cur.fetchall())

        found = self._run(run, "get")
        return [found.get(k) for k in wanted]

    def scan_ranges(
        self, ranges: list[tuple[bytes, bytes]], *, keys_only: bool = False
    ) -> Iterator[list[tuple[bytes, bytes]]]:
        """Every range in one statement (a lateral join over the ranges, each an index range scan)."""
        out: list[list[tuple[bytes, bytes]]] = [[] for _ in ranges]
        if not ranges:
            return iter(out)
        lows = [bytes(lo) for lo, _ in ranges]
        highs = [bytes(hi) for _, hi in ranges]

        def run(conn: psycopg.Connection) -> list[tuple[int, bytes, bytes]]:
            query = self._q_scan_ranges_keys if keys_only else self._q_scan_ranges
            return conn.cursor(binary=True).execute(query, (lows, highs)).fetchall()

        for i, k, v in self._run(run, "scan"):
            out[i - 1].append((k, v))
        return iter(out)

    def _page_query(
        self, start: bytes, stop: bytes | None, after: bytes | None, keys_only: bool, reverse: bool
    ):
        """One page: keys in [start, stop), past ``after`` in the scan's direction."""
        params: list[Any] = [start]
        if stop is not None:
            params.append(stop)
        if after is not None:
            params.append(after)
        shape = (stop is not None, after is not None, keys_only, reverse)
        q = self._page_queries.get(shape)
        if q is None:  # composed once per shape: composing costs more than a cached LevelDB read
            cols = sql.SQL("k, ''::bytea") if keys_only else sql.SQL("k, v")
            conds = [sql.SQL("k >= %b")]
            if stop is not None:
                conds.append(sql.SQL("k < %b"))
            if after is not None:
                conds.append(sql.SQL("k < %b") if reverse else sql.SQL("k > %b"))
            q = self._page_queries[shape] = (
                sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY k {} LIMIT %b")
                .format(cols, self._t, sql.SQL(" AND ").join(conds), sql.SQL("DESC" if reverse else "ASC"))
                .as_string()
            )
        return q, params

    def scan(
        self, start: bytes, stop: bytes | None, *, keys_only: bool = False, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        start = bytes(start)
        stop = None if stop is None else bytes(stop)
        if stop is not None and stop <= start:
            return iter(())
        q, params = self._page_query(start, stop, None, keys_only, reverse)

        def first(conn: psycopg.Connection) -> list[tuple[bytes, bytes]]:
            return conn.cursor(binary=True).execute(q, [*params, FIRST_PAGE_ROWS]).fetchall()

        rows = self._run(first, "scan")
        if len(rows) < FIRST_PAGE_ROWS:
            return iter(rows)
        # A long scan: its snapshot is taken now, before the caller can write, as the contract asks.
        it = self._long_scan(start, stop, keys_only, reverse)
        next(it)  # starts the transaction (and from here on, dropping ``it`` releases it)
        return it  # type: ignore[return-value]

    def _long_scan(
        self, start: bytes, stop: bytes | None, keys_only: bool, reverse: bool
    ) -> Iterator[tuple[bytes, bytes] | None]:
        """Every page from one REPEATABLE READ snapshot on a connection held while iterating.

        Yields None once the snapshot is taken, then the pairs.
        """
        if self._closed:
            raise RuntimeError("the postgres engine is closed")
        for attempt in (0, 1):
            conn = self._scan_conn()
            try:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                q, params = self._page_query(start, stop, None, keys_only, reverse)
                cur = conn.cursor(binary=True)
                rows = cur.execute(q, [*params, PAGE_ROWS]).fetchall()
                break
            except psycopg.OperationalError as exc:
                broken = conn.broken or conn.closed
                self._release_scan_conn(conn)
                if not broken:
                    raise self._statement_error(exc, "scan") from None
                if attempt == 0:  # a stale kept connection: nothing was read yet, so try a new one
                    continue
                raise ServiceUnavailable(f"{self._label} is unavailable (scan): {_one_line(exc)}") from None
            except BaseException:
                self._release_scan_conn(conn)
                raise
        try:
            yield None
            limit = PAGE_ROWS
            while True:
                yield from rows
                if len(rows) < limit:
                    break
                after = rows[-1][0]
                if not keys_only:
                    size = sum(len(k) + len(v) for k, v in rows) / len(rows)
                    limit = max(16, min(PAGE_ROWS, int(PAGE_BYTES / max(size, 1.0))))
                q, params = self._page_query(start, stop, after, keys_only, reverse)
                rows = cur.execute(q, [*params, limit]).fetchall()
            conn.execute("COMMIT")
        except psycopg.OperationalError as exc:
            if not (conn.broken or conn.closed):
                raise self._statement_error(exc, "scan") from None
            raise ServiceUnavailable(f"{self._label} is unavailable (scan): {_one_line(exc)}") from None
        finally:
            self._release_scan_conn(conn)

    # ---- writes --------------------------------------------------------------------------------
    def put(self, key: bytes, value: bytes) -> None:
        self._run(lambda conn: conn.execute(self._q_put, (bytes(key), bytes(value))), "put")

    def delete(self, key: bytes) -> None:
        self._run(lambda conn: conn.execute(self._q_delete, (bytes(key),)), "delete")

    def batch(self) -> QueuedWriteBatch:
        return QueuedWriteBatch(self._apply)

    def _apply(self, ops: dict[bytes, object]) -> None:
        deletes = [k for k, v in ops.items() if v is DELETED]
        puts = [(k, v) for k, v in ops.items() if isinstance(v, bytes | bytearray | memoryview)]
        chunks: list[tuple[list[bytes], list[bytes | bytearray | memoryview]]] = []
        ks: list[bytes] = []
        vs: list[bytes | bytearray | memoryview] = []
        size = 0
        for k, v in puts:
            if ks and size + len(k) + len(v) > BATCH_STATEMENT_BYTES:
                chunks.append((ks, vs))
                ks, vs, size = [], [], 0
            ks.append(k)
            vs.append(v)
            size += len(k) + len(v)
        if ks:
            chunks.append((ks, vs))

        def run(conn: psycopg.Connection) -> None:
            with conn.transaction():
                if deletes:
                    conn.execute(self._q_delete_many, (deletes,))
                for cks, cvs in chunks:
                    conn.execute(self._q_put_many, (cks, cvs))

        self._run(run, "batch write")

    def delete_range(self, start: bytes, stop: bytes | None, *, chunk: int = 10_000) -> int:
        if stop is None:
            q = sql.SQL("DELETE FROM {} WHERE k >= %b").format(self._t)
            params: tuple[bytes, ...] = (bytes(start),)
        else:
            q = sql.SQL("DELETE FROM {} WHERE k >= %b AND k < %b").format(self._t)
            params = (bytes(start), bytes(stop))
        return self._run(lambda conn: conn.execute(q, params).rowcount, "delete range")

    # ---- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._pool.close()
        with self._scan_lock:
            idle, self._scan_idle = self._scan_idle, []
        for conn in idle:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def describe(self) -> str:
        return f"postgres @ {self.where} table {self.table}"
