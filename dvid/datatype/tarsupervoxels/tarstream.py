"""Writing a body's blobs as a USTAR tar archive, piece by piece.

Each entry is a regular file named ``<supervoxel>.<extension>`` holding the blob, or
``<supervoxel>.missing`` (empty) when the supervoxel has none; mode 0755, uid/gid 0, no user or
group names, mtime 0 (the Unix epoch), as DVID writes them with Go's ``archive/tar``. Headers come
from :meth:`tarfile.TarInfo.tobuf` in USTAR format. The archive ends with two zero blocks and is
not padded to a record size (as Go's writer).
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterator, Sequence

BLOCK = tarfile.BLOCKSIZE
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)
MISSING = "missing"
#: Supervoxels whose blobs are read in one batched storage call.
READ_BATCH = 32


def entry_header(name: str, size: int) -> bytes:
    """The 512-byte USTAR header of a regular file."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o755
    info.mtime = 0
    info.type = tarfile.REGTYPE
    return info.tobuf(tarfile.USTAR_FORMAT, "ascii", "strict")


def entry(name: str, data: bytes) -> Iterator[bytes]:
    """One entry's pieces: header, data, padding to the next block."""
    yield entry_header(name, len(data))
    if data:
        yield data
        pad = -len(data) % BLOCK
        if pad:
            yield b"\0" * pad


def body_archive(
    supervoxels: Sequence[int],
    extension: str,
    read_blobs: Callable[[list[int]], list[bytes | None]],
    batch: int = READ_BATCH,
) -> Iterator[bytes]:
    """The archive of ``supervoxels`` in the order given, reading ``batch`` blobs at a time with
    ``read_blobs`` (None for a supervoxel without a blob)."""
    for start in range(0, len(supervoxels), batch):
        chunk = [int(sv) for sv in supervoxels[start : start + batch]]
        for sv, blob in zip(chunk, read_blobs(chunk), strict=True):
            if blob is None:
                yield entry_header(f"{sv}.{MISSING}", 0)
            else:
                yield from entry(f"{sv}.{extension}", blob)
    yield END_OF_ARCHIVE
