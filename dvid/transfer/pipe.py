"""``dvid push`` / ``dvid pull``: stream a source server's export into a destination's import.

The CLI asks the source what it holds (``transfer/have``), the destination what it holds of
that repo, opens the source's export for that difference, checks its header with the
destination, and pipes the chunks (about 4 MiB each) into the destination's import: memory stays
bounded by a couple of chunks, whatever the size of the transfer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from dvid.client import DVIDClient, DVIDClientError
from dvid.transfer import stream

CHUNK = 4 << 20


def expected_versions(header: dict[str, Any]) -> int:
    """How many VERSION records the exporter sends for this header (for progress)."""
    send = set(header["send"])
    versioned = [rec for rec in header["instances"] if rec["versioned"]]
    any_full = any(rec["full"] for rec in versioned)
    count = sum(1 for n in header["nodes"] if n["uuid"] in send or (any_full and versioned))
    return count + (1 if any(not rec["versioned"] for rec in header["instances"]) else 0)


class Progress:
    """Progress callback target: a tqdm bar of bytes with versions as postfix (quiet if not a tty)."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.bar: Any = None
        self.enabled = enabled
        self.versions = 0
        self.total_versions = 0

    def start(self, header: dict[str, Any]) -> None:
        self.total_versions = expected_versions(header)
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover - tqdm is a dependency
            return
        self.bar = tqdm(
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=f"{header['mode']} {header['target'][:8]}",
            disable=None if self.enabled is None else not self.enabled,
            dynamic_ncols=True,
        )
        self._postfix()

    def _postfix(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"versions {self.versions}/{self.total_versions}", refresh=False)

    def update(self, nbytes: int, new_versions: int) -> None:
        if new_versions:
            self.versions += new_versions
            self._postfix()
        if self.bar is not None:
            self.bar.update(nbytes)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def transfer(
    source: DVIDClient,
    dest: DVIDClient,
    uuid: str,
    *,
    data: list[str] | None = None,
    flatten: bool = False,
    progress: Progress | None = None,
    chunk_filter: Callable[[Iterator[bytes]], Iterator[bytes]] | None = None,
) -> dict[str, Any]:
    """Send version ``uuid`` of ``source`` (and its ancestors the destination lacks) to ``dest``."""
    src_have = source.transfer_have(uuid)
    if src_have is None:
        raise DVIDClientError(f"{source.server} has no version {uuid!r}", status=404)
    target = src_have["target"]
    root = target if flatten else src_have["root"]
    have = dest.transfer_have(root)
    if have is not None and have.get("root") != root:
        have = None  # a prefix matched something else: the destination lacks this repo
    if flatten and have is not None:
        raise DVIDClientError(f"{dest.server} already has version {root}: a flattened copy needs a new UUID")
    response = source.transfer_export(target, have, data, flatten=flatten)
    watcher = stream.FrameWatcher()
    chunks = response.iter_content(chunk_size=CHUNK)
    first: list[bytes] = []
    try:
        for chunk in chunks:
            first.append(chunk)
            watcher.feed(chunk)
            if watcher.header is not None:
                break
        if watcher.header is None:
            raise DVIDClientError(f"{source.server} sent no transfer header")
        dest.transfer_check(target, stream.packb(watcher.header))
        if progress is not None:
            progress.start(watcher.header)

        def body() -> Iterator[bytes]:
            for chunk in first:
                if progress is not None:
                    progress.update(len(chunk), 0)
                yield chunk
            counter = stream.FrameWatcher()
            if progress is not None:
                progress.update(0, counter.feed(b"".join(first)).count(stream.VERSION))
            for chunk in chunks:
                kinds = counter.feed(chunk)
                if progress is not None:
                    progress.update(len(chunk), kinds.count(stream.VERSION))
                yield chunk

        pieces = body() if chunk_filter is None else chunk_filter(body())
        result = dest.transfer_import(target, pieces)
    finally:
        response.close()
        if progress is not None:
            progress.close()
    return result
