"""Log hygiene: a request the HTTP parser refuses as malformed is the client's error, not the
server's, so it is logged as one warning line instead of aiohttp's ERROR with a traceback."""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

AIOHTTP_SERVER_LOGGER = "aiohttp.server"


class MalformedRequestFilter(logging.Filter):
    """Turns aiohttp's "Error handling request" records for a 4xx parse error into a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= exc.code < 500:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = (
                "malformed HTTP request refused with %d: %s",
                (
                    exc.code,
                    " ".join(exc.message.split())[:200],
                ),
            )
            record.exc_info = record.exc_text = None
        return True


def quiet_malformed_requests() -> None:
    """Install the filter once on aiohttp's server logger."""
    logger = logging.getLogger(AIOHTTP_SERVER_LOGGER)
    if not any(isinstance(f, MalformedRequestFilter) for f in logger.filters):
        logger.addFilter(MalformedRequestFilter())
