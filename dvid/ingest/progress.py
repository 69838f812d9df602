"""Progress bars of ingest, verify and export: bytes moved, with MB/s and the time left (tqdm)."""

from __future__ import annotations

from typing import Any


def progress_bar(total: int, initial: int, desc: str, quiet: bool) -> Any:
    """A tqdm bar over ``total`` bytes starting at ``initial`` (done before); shown on a terminal
    only, never when ``quiet``."""
    from tqdm import tqdm

    return tqdm(
        total=total, initial=initial, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
        disable=True if quiet else None, dynamic_ncols=True, smoothing=0.1,
    )  # fmt: skip


__all__ = ["progress_bar"]
