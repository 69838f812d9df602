"""A killed ``dvid ingest`` (a real process, SIGKILLed after k slabs) run again with the same command
finishes without posting again what it had finished: the server's request counters show it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import numpy as np
import requests

from dvid.ingest.writer import KILL_AFTER_ENV
from tests.ingest_files import GREY_SHAPE, grey_volume, read_raw, write_source


def raw_posts(url: str, typename: str) -> int:
    """POST raw requests answered 200 for instances of ``typename``, from the server's /metrics."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    pattern = rf'dvid_http_requests_total\{{code="200",method="POST",route="{typename}/raw"\}} ([0-9.]+)'
    m = re.search(pattern, text)
    return int(float(m.group(1))) if m else 0


def run_ingest(
    url: str, args: list[str], cache: str, kill_after: int | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_CACHE_HOME": cache}
    env.pop(KILL_AFTER_ENV, None)
    if kill_after is not None:
        env[KILL_AFTER_ENV] = str(kill_after)
    cmd = [sys.executable, "-m", "dvid", "--server", url, "ingest", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def test_killed_ingest_resumes_without_rewriting(server, tmp_path):
    repo = server.new_repo("resume")
    vol = grey_volume()
    src, _ = write_source("tiff-stack", vol, tmp_path / "stack")
    # block depth 16: 70 planes -> 5 slabs; one worker so exactly k slabs are posted before the kill
    args = [src, repo, "grey", "--create", "uint8blk", "BlockSize=16,16,16", "--workers", "1", "-q"]
    cache = str(tmp_path / "cache")

    killed = run_ingest(server.url, args, cache, kill_after=2)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert raw_posts(server.url, "uint8blk") == 2
    checkpoints = list((tmp_path / "cache" / "dvid" / "ingest").glob("*.jsonl"))
    assert len(checkpoints) == 1
    assert len(checkpoints[0].read_text().splitlines()) == 3  # header + 2 slabs

    finished = run_ingest(server.url, args, cache)
    assert finished.returncode == 0, finished.stderr
    assert "ingested 3 of 5 slabs (2 done before)" in finished.stdout
    assert raw_posts(server.url, "uint8blk") == 5  # the 2 finished slabs were not posted again
    assert read_raw(server.url, repo, "grey", GREY_SHAPE, (0, 0, 0), np.uint8).tobytes() == vol.tobytes()

    again = run_ingest(server.url, [*args, "--verify"], cache)  # all done: only the check runs
    assert again.returncode == 0, again.stderr
    assert "ingested 0 of 5 slabs (5 done before)" in again.stdout
    assert "verified 5 slabs" in again.stdout
    assert raw_posts(server.url, "uint8blk") == 5


def test_a_changed_source_is_a_new_ingest(server, tmp_path):
    """The checkpoint is keyed by the source's files (size, mtime): new data is written again."""
    repo = server.new_repo("resume")
    vol = grey_volume()
    src, _ = write_source("npy", vol, tmp_path / "npy")
    args = [src, repo, "grey", "--create", "uint8blk", "-q"]
    cache = str(tmp_path / "cache")
    assert run_ingest(server.url, args, cache).returncode == 0
    assert raw_posts(server.url, "uint8blk") == 3
    changed = vol[::-1].copy()
    np.save(src, changed)
    os.utime(src, ns=(1, 1))  # a different mtime even on a coarse clock
    result = run_ingest(server.url, args, cache)
    assert "ingested 3 of 3 slabs (0 done before)" in result.stdout
    assert raw_posts(server.url, "uint8blk") == 6
    assert read_raw(server.url, repo, "grey", GREY_SHAPE, (0, 0, 0), np.uint8).tobytes() == changed.tobytes()


def test_a_checkpoint_of_another_ingest_is_refused(server, tmp_path):
    repo = server.new_repo("resume")
    a, _ = write_source("npy", grey_volume(1), tmp_path / "a")
    b, _ = write_source("npy", grey_volume(2), tmp_path / "b")
    ckpt = str(tmp_path / "one.ckpt")
    cache = str(tmp_path / "cache")
    assert (
        run_ingest(server.url, [a, repo, "g", "--create", "uint8blk", "--checkpoint", ckpt], cache).returncode
        == 0
    )
    other = run_ingest(server.url, [b, repo, "g", "--checkpoint", ckpt], cache)
    assert other.returncode == 1
    assert other.stderr.startswith(f"dvid: the checkpoint {ckpt} belongs to another ingest")
    assert "Traceback" not in other.stderr
