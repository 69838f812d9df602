"""The access log: one line per request on stderr."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TextIO


class AccessLog:
    """One line per request on stderr, buffered and written every 50 ms.

    Python's logging machinery costs ~50 us per record under load, a third of a small GET; this
    builds the line with one f-string, reuses the timestamp within a second, and writes in bursts.
    """

    FLUSH_SECONDS = 0.05

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lines: list[str] = []
        self._second = -1
        self._stamp = ""
        self._scheduled = False

    def record(self, method: str, path: str, status: int, size: int, ms: float, user: str) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        who = f" u={user}" if user else ""
        self._lines.append(f"{self._stamp} {method} {path} {status} {size} {ms:.1f}ms{who}\n")
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(self.FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self._lines:
            stream = self._stream or sys.stderr
            stream.write("".join(self._lines))
            stream.flush()
            self._lines.clear()
