"""Free heap memory goes back to the system (glibc malloc_trim), once and every malloc_trim_seconds."""

from __future__ import annotations

import time

from dvid.server import heap
from tests.serverutil import ServerThread

MiB = 1 << 20


def rss_anon_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no RssAnon in /proc/self/status")


def fragment_heap() -> list[bytes]:
    """~110 MiB freed between blocks still in use: glibc keeps it (its top-of-heap trim cannot
    reach it). 64 KiB blocks stay below the mmap threshold, so they come from the heap."""
    blocks = [bytes(64 << 10) for _ in range(2000)]
    kept = blocks[::10]
    del blocks
    return kept


def test_release_free_heap_returns_memory_freed_between_live_blocks():
    assert heap._MALLOC_TRIM is not None  # these machines run glibc
    kept = fragment_heap()
    before = rss_anon_mib()
    assert heap.release_free_heap()
    assert rss_anon_mib() < before - 60
    assert len(kept) == 200  # still in use, untouched
    assert all(b == bytes(64 << 10) for b in kept[::50])


def test_a_running_server_trims_the_heap_every_malloc_trim_seconds(tmp_path):
    srv = ServerThread(tmp_path / "db", malloc_trim_seconds=0.05).start()
    try:
        kept = fragment_heap()
        before = rss_anon_mib()
        deadline = time.monotonic() + 20
        while rss_anon_mib() > before - 60 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rss_anon_mib() < before - 60
        assert len(kept) == 200
    finally:
        srv.stop()
