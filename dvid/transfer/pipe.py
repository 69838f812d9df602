"""``dvid push`` / ``dvid pull``: stream a source server's export into a destination's import.

The CLI asks the source what it holds (``transfer/have``), the destination what it holds of
that repo, opens the source's export for that difference, checks its header with the
destination, and pipes the chunks (about 4 MiB each) into the destination's import: memory stays
bounded by a couple of chunks, whatever the size of the transfer.
"""

from __future__ import annotations

import copy
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


def renamed_flatten_header(header: dict[str, Any], uuid: str) -> dict[str, Any]:
    """A flatten stream's header with its one version (the new repo's root) renamed ``uuid``."""
    renamed = copy.deepcopy(header)
    (node,) = renamed["nodes"]
    node["uuid"] = uuid
    renamed["target"] = uuid
    renamed["send"] = [uuid]
    renamed["repo"]["root"] = uuid
    return renamed


def with_header(chunks: Iterator[bytes], header: dict[str, Any], source: str) -> Iterator[bytes]:
    """The transfer stream ``chunks`` with ``header`` in place of its own and the END record's digest
    recomputed. The original digest is checked first, so damage on the way here still shows; a
    stream cut short passes on cut short, and the receiver refuses it."""
    source_digest, digest = stream.new_digest(), stream.new_digest()
    head = stream.RECORD_HEAD
    data = b""
    header_end = -1
    for chunk in chunks:
        data += chunk
        if len(data) >= len(stream.PREAMBLE) + head.size:
            _, length = head.unpack_from(data, len(stream.PREAMBLE))
            header_end = len(stream.PREAMBLE) + head.size + length
            if len(data) >= header_end:
                break
    if header_end < 0 or len(data) < header_end:
        raise DVIDClientError(f"{source} sent no transfer header")
    source_digest.update(data[:header_end])
    first = stream.PREAMBLE + stream.record(stream.HEADER, stream.packb(header))
    digest.update(first)
    yield first
    pos, left = header_end, 0  # left: bytes of the current record still to pass on
    while True:
        if pos == len(data):
            data, pos = next(chunks, b""), 0
            if not data:
                return
        elif left:
            piece = data[pos : pos + left] if pos or left < len(data) else data
            source_digest.update(piece)
            digest.update(piece)
            yield piece
            pos += len(piece)
            left -= len(piece)
        elif len(data) - pos < head.size:
            more = next(chunks, b"")
            if not more:
                yield data[pos:]
                return
            data, pos = data[pos:] + more, 0
        else:
            rtype, length = head.unpack_from(data, pos)
            if rtype != stream.END:
                left = head.size + length
                continue
            record = data[pos:] + b"".join(chunks)  # END is the last record, and small
            end = stream.unpackb(record[head.size : head.size + length])
            if not isinstance(end, dict) or end.get("digest") != source_digest.hexdigest():
                raise DVIDClientError(f"the transfer stream from {source} is corrupt (checksum mismatch)")
            yield stream.record(stream.END, stream.packb({**end, "digest": digest.hexdigest()}))
            return


def transfer(
    source: DVIDClient,
    dest: DVIDClient,
    uuid: str,
    *,
    data: list[str] | None = None,
    flatten: bool = False,
    new_uuid: str | None = None,
    progress: Progress | None = None,
    chunk_filter: Callable[[Iterator[bytes]], Iterator[bytes]] | None = None,
) -> dict[str, Any]:
    """Send version ``uuid`` of ``source`` (and its ancestors the destination lacks) to ``dest``.

    ``new_uuid`` (flatten only) names the flattened copy's version on ``dest``, as a new repo,
    so that a version can be flattened into a server that already holds it."""
    if new_uuid is not None and not flatten:
        raise DVIDClientError("a new UUID is for a flattened copy only: other transfers keep the UUIDs")
    src_have = source.transfer_have(uuid)
    if src_have is None:
        raise DVIDClientError(f"{source.server} has no version {uuid!r}", status=404)
    target = src_have["target"]
    root = new_uuid or (target if flatten else src_have["root"])
    have = dest.transfer_have(root)
    if flatten and have is not None and have.get("target") == root:
        hint = "give another with --uuid" if new_uuid else "give one with --uuid"
        raise DVIDClientError(
            f"{dest.server} already has version {root}: a flattened copy needs a new UUID ({hint})"
        )
    if have is not None and have.get("root") != root:
        have = None  # a prefix matched something else: the destination lacks this repo
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
        header = watcher.header if new_uuid is None else renamed_flatten_header(watcher.header, new_uuid)
        dest.transfer_check(header["target"], stream.packb(header))
        if progress is not None:
            progress.start(header)

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

        pieces = body() if new_uuid is None else with_header(body(), header, source.server)
        if chunk_filter is not None:
            pieces = chunk_filter(pieces)
        result = dest.transfer_import(header["target"], pieces)
    finally:
        response.close()
        if progress is not None:
            progress.close()
    return result
