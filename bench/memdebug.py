"""Memory diagnostics inside a benchmark dvid server: ``GET /bench/memory`` (``--memory-debug``).

Only :mod:`bench.servers` adds this route, and only when asked; ``dvid serve`` never has it. The
reply tells where a server's resident memory sits, so a soak can tell a leak from a cache that
fills or from allocator fragmentation:

- ``rss``: VmRSS, RssAnon, RssFile (KiB, /proc/self/status);
- ``malloc``: glibc ``mallinfo2``: bytes in use (``uordblks``), free but held inside the heap
  arenas (``fordblks``: fragmentation), mapped by mmap (``hblkhd``), the arenas' total (``arena``);
- ``leveldb``: ``leveldb.approximate-memory-usage`` per LevelDB store (block cache + memtables);
- ``python``: allocated blocks, gc generation counts and collections, objects tracked by the gc;
- ``dag``: versions, and versions whose ancestry is cached, over every repo;
- ``buffers``: idle bytes in the volume receive-buffer pool;
- ``tracemalloc`` (when the server traces, ``--tracemalloc``): traced bytes and the lines whose
  allocations grew most since the baseline, taken by the first call with ``?baseline=1``.

``?trim=1`` first calls ``malloc_trim(0)`` and reports the RSS it gave back: an experiment that
separates free-but-held heap memory (fragmentation) from memory still in use.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import sys
import threading
import tracemalloc
from typing import Any

from aiohttp import web

KiB = 1024


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            *("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks"),
            *("fsmblks", "uordblks", "fordblks", "keepcost"),
        )
    ]


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


_LIBC = _libc()


def malloc_stats() -> dict[str, int]:
    """glibc's ``mallinfo2`` in KiB ({} where unavailable)."""
    fn = getattr(_LIBC, "mallinfo2", None)
    if fn is None:
        return {}
    fn.restype = _Mallinfo2
    info = fn()
    return {k: getattr(info, k) // KiB for k in ("arena", "hblkhd", "uordblks", "fordblks", "keepcost")}


def malloc_trim() -> bool:
    fn = getattr(_LIBC, "malloc_trim", None)
    return bool(fn(0)) if fn is not None else False


def rss_kib() -> dict[str, int]:
    out: dict[str, int] = {}
    with open("/proc/self/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[name] = int(value.split()[0])
    return out


class MemoryDebug:
    """The state behind ``/bench/memory``: the tracemalloc baseline."""

    def __init__(self, top: int = 15) -> None:
        self.top = top
        self._baseline: tracemalloc.Snapshot | None = None
        self._lock = threading.Lock()

    def stats(self, app: web.Application, *, baseline: bool, trim: bool) -> dict[str, Any]:
        from dvid.datatype.common.buffers import VOLUME_BUFFERS
        from dvid.server.state import STATE_KEY

        out: dict[str, Any] = {}
        if trim:
            before = rss_kib()["VmRSS"]
            malloc_trim()
            out["trimmed_kib"] = before - rss_kib()["VmRSS"]
        out["rss"] = rss_kib()
        out["malloc"] = malloc_stats()
        manager = app[STATE_KEY].manager
        leveldb = {}
        for name, engine in manager.stores.engines.items():
            db = getattr(engine, "_db", None)
            if db is not None and hasattr(db, "get_property"):
                raw = db.get_property(b"leveldb.approximate-memory-usage")
                leveldb[name] = int(raw) // KiB if raw else None
        out["leveldb"] = leveldb
        out["python"] = {
            "allocated_blocks": sys.getallocatedblocks(),
            "gc_enabled": gc.isenabled(),
            "gc_count": list(gc.get_count()),
            "gc_collections": [s["collections"] for s in gc.get_stats()],
            "gc_objects": len(gc.get_objects()),
            "threads": threading.active_count(),
        }
        repos = list(manager.repos.values())
        out["dag"] = {
            "versions": sum(len(r.dag) for r in repos),
            "ancestries_cached": sum(r.dag.cached_ancestries() for r in repos),
        }
        out["buffers"] = {"idle_kib": VOLUME_BUFFERS.idle_bytes // KiB}
        if tracemalloc.is_tracing():
            out["tracemalloc"] = self._traced(baseline)
        return out

    def _traced(self, baseline: bool) -> dict[str, Any]:
        current, peak = tracemalloc.get_traced_memory()
        out: dict[str, Any] = {"current_kib": current // KiB, "peak_kib": peak // KiB}
        with self._lock:
            snap = tracemalloc.take_snapshot().filter_traces(
                (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<unknown>"))
            )
            if baseline or self._baseline is None:
                self._baseline = snap
                return out
            diffs = snap.compare_to(self._baseline, "traceback")
        grown = sorted(diffs, key=lambda d: d.size_diff, reverse=True)[: self.top]
        out["grown"] = [
            {
                "kib": d.size_diff // KiB,
                "count": d.count_diff,
                "where": [f"{f.filename}:{f.lineno}" for f in list(d.traceback)[-6:]],
            }
            for d in grown
        ]
        return out


def add_memory_route(app: web.Application) -> None:
    """``GET /bench/memory[?baseline=1][&trim=1]`` on ``app`` (before it starts)."""
    debug = MemoryDebug()

    async def handler(request: web.Request) -> web.Response:
        baseline = request.query.get("baseline") == "1"
        trim = request.query.get("trim") == "1"
        stats = await asyncio.to_thread(debug.stats, request.app, baseline=baseline, trim=trim)
        return web.json_response(stats)

    app.router.add_get("/bench/memory", handler)
