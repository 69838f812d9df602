"""A process-wide pause of Python's cyclic garbage collector for requests that build huge object graphs."""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Iterator

_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False
_gc_paused_since = 0.0
_GC_MAX_PAUSE_S = 5.0


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic GC off while a request decodes and processes a big body (annotation: 10,000s
    of elements).

    Every container of the parsed body stays alive to the end of the request, so each young
    collection would traverse them again and each full one the whole heap (about a third of a big
    POST's CPU time); reference counting frees it all anyway. Process-wide, so counted: the GC is
    back on (if it was) when the last pauser leaves, and pauses that overlap for longer than
    ``_GC_MAX_PAUSE_S`` run a young collection so garbage cycles cannot pile up.
    """
    global _gc_pausers, _gc_was_enabled, _gc_paused_since
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            _gc_paused_since = time.monotonic()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0:
                if _gc_was_enabled:
                    gc.enable()
            elif _gc_was_enabled and time.monotonic() - _gc_paused_since > _GC_MAX_PAUSE_S:
                _gc_paused_since = time.monotonic()
                gc.collect(1)
