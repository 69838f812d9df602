"""Server faults in the server's log: what a fuzz run fails on besides the answers themselves.

A fault is an ERROR record (dvid's 500s, aiohttp's unhandled handler errors, asyncio's lost task
exceptions) or any record carrying an exception other than a :class:`~dvid.errors.DVIDError`
(e.g. a stream that failed after its response began). aiohttp also logs a client's malformed
HTTP (bad request line, chunk size, header too long) at ERROR; that is the client's fault and
answered with a 400, so it is not counted.
"""

from __future__ import annotations

import logging
import re

from aiohttp.http_exceptions import HttpProcessingError

from dvid.errors import DVIDError

#: The loggers a dvid server's faults arrive on.
LOGGERS = ("dvid", "aiohttp", "asyncio")
_ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ", re.M)


def is_fault(record: logging.LogRecord) -> bool:
    exc = record.exc_info[1] if record.exc_info else None
    if isinstance(exc, HttpProcessingError) and 400 <= exc.code < 500:
        return False
    if record.levelno >= logging.ERROR:
        return True
    return exc is not None and not isinstance(exc, DVIDError)


class FaultLog(logging.Handler):
    """Collects faults logged in this process while installed (``with FaultLog() as faults``)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.faults: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if is_fault(record):
            self.faults.append(self.format(record))

    def __enter__(self) -> FaultLog:
        for name in LOGGERS:
            logging.getLogger(name).addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(self)


def faults_in_log(text: str) -> list[str]:
    """The faults in a server log file written with dvid's format (``<time> <LEVEL> <message>``)."""
    starts = [m.start() for m in _ENTRY.finditer(text)]
    faults = []
    for begin, end in zip(starts, [*starts[1:], len(text)], strict=True):
        entry = text[begin:end]
        level = _ENTRY.match(entry).group(1)  # type: ignore[union-attr]
        client_http_error = re.search(r"^aiohttp\.http_exceptions\.\w+: 4\d\d", entry, re.M)
        if client_http_error:
            continue
        if level in ("ERROR", "CRITICAL") or "Traceback (most recent call last)" in entry:
            faults.append(entry.rstrip())
    return faults
