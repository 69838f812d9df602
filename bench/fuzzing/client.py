"""A raw HTTP/1.1 client that sends whatever bytes a :class:`FuzzRequest` holds on one keep-alive
connection (reconnecting when the server closes it) and classifies the answer."""

from __future__ import annotations

import http.client
import select
import socket
import time
from dataclasses import dataclass
from typing import Any

from bench.fuzzing.generate import FuzzRequest

NO_RESPONSE = 0
TIMED_OUT = -1
CUT_SHORT = -2
STRAY_BYTES = -3
_LABELS = {
    NO_RESPONSE: "no response",
    TIMED_OUT: "timed out",
    CUT_SHORT: "response cut short",
    STRAY_BYTES: "bytes after the previous response",
}


@dataclass(frozen=True)
class Outcome:
    """The answer to one request: an HTTP status, or NO_RESPONSE / TIMED_OUT / CUT_SHORT, or
    STRAY_BYTES when the previous response carried more bytes than it declared (the body names
    the previous request)."""

    status: int
    body: bytes
    seconds: float

    @property
    def failed(self) -> bool:
        """A server error, a hang, or a dropped or cut response."""
        return self.status >= 500 or self.status <= 0

    @property
    def label(self) -> str:
        return _LABELS.get(self.status, str(self.status))


class _Connection:
    """A socket and the one buffered reader of everything it receives (a reader per response would
    drop bytes read ahead, hiding stray bytes)."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.timeout = timeout
        self.reader = sock.makefile("rb")

    def makefile(self, mode: str = "rb", *args: object, **kwargs: object) -> _KeptOpen:
        """What ``http.client.HTTPResponse`` reads a response from: the shared reader."""
        return _KeptOpen(self.reader)

    def pending(self) -> bytes | None:
        """Bytes already received after the last response (b"" if none), None if the server closed."""
        self.sock.setblocking(False)
        try:
            data = self.reader.peek(1)
        except OSError:
            data = b""
        finally:
            self.sock.settimeout(self.timeout)
        if data:
            return data
        readable, _, _ = select.select([self.sock], [], [], 0)
        return None if readable else b""

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class _KeptOpen:
    """The shared reader as one response sees it: closing it does not close the connection."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader, name)

    def close(self) -> None:
        pass


class RawClient:
    """Sends fuzz requests to ``host:port``; ``timeout`` seconds without progress is a hang."""

    def __init__(self, host: str, port: int, *, timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._conn: _Connection | None = None
        self._previous: FuzzRequest | None = None
        self.connections = 0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connection(self) -> tuple[_Connection, bool, bytes]:
        """The open connection (unless the server closed it), else a new one; whether it is new; and
        any bytes the server sent after its last response (it should have sent none)."""
        stray = b""
        if self._conn is not None:
            pending = self._conn.pending()
            if pending == b"":
                return self._conn, False, b""
            if pending is not None:
                stray = pending + self._conn.reader.read1(4096)
            self.close()
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._conn = _Connection(sock, self.timeout)
        self.connections += 1
        return self._conn, True, stray

    def send(self, request: FuzzRequest) -> Outcome:
        start = time.perf_counter()
        wire = request.wire()
        previous, self._previous = self._previous, request

        def outcome(status: int, body: bytes = b"") -> Outcome:
            if status <= 0:
                self.close()
            return Outcome(status, body, time.perf_counter() - start)

        for attempt in range(2):
            try:
                conn, new, stray = self._connection()
            except OSError as exc:  # refused, or no answer to the connection: the server is down
                return outcome(NO_RESPONSE, f"cannot connect: {exc}".encode())
            if stray:
                assert previous is not None
                return outcome(
                    STRAY_BYTES, f"{stray[:200]!r}\nafter the answer to: {previous.describe()}".encode()
                )
            try:
                conn.sock.sendall(wire)
            except TimeoutError:
                return outcome(TIMED_OUT)
            except OSError:
                pass  # the server may have answered early and closed: read what it said
            response = http.client.HTTPResponse(conn, method=request.method)  # type: ignore[arg-type]
            try:
                response.begin()
            except TimeoutError:
                return outcome(TIMED_OUT)
            except (http.client.RemoteDisconnected, ConnectionError):
                self.close()
                if not new and attempt == 0:
                    continue  # a kept-alive connection the server closed as we reused it
                return outcome(NO_RESPONSE)
            except http.client.HTTPException as exc:
                return outcome(NO_RESPONSE, repr(exc).encode())
            try:
                body = response.read()
            except TimeoutError:
                return outcome(TIMED_OUT)
            except (http.client.HTTPException, OSError):
                return outcome(CUT_SHORT)
            if response.will_close:
                self.close()
            return outcome(response.status, body)
        raise AssertionError("unreachable")
