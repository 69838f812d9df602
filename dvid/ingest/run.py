"""One ingest from start to end: open the source, find (or create) the instance, plan the slabs, skip
those the checkpoint has, post the rest, build the pyramid, verify. Used by ``dvid ingest`` and
usable from Python::

    from dvid.ingest.run import IngestOptions, ingest
    result = ingest("http://127.0.0.1:8000", IngestOptions("stack/*.tif", "3f8c", "grayscale",
                                                         create="uint8blk"))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dvid.client import DVIDClient
from dvid.ingest import IngestError
from dvid.ingest.plan import Checkpoint, Slab, plan_slabs
from dvid.ingest.progress import progress_bar
from dvid.ingest.sources import open_source
from dvid.ingest.target import Target, conversion, create, describe, exists
from dvid.ingest.verify import Mismatch, verify_slabs
from dvid.ingest.writer import ThreadClients, write_slabs


@dataclass
class IngestOptions:
    """What ``dvid ingest`` takes (see docs/cli.md)."""

    source: str
    uuid: str
    instance: str
    dataset: str | None = None
    fmt: str | None = None
    create: str | None = None  # type name: create the instance if it does not exist
    settings: dict[str, str] = field(default_factory=dict)  # its creation settings
    offset: tuple[int, int, int] = (0, 0, 0)  # where the source's first voxel goes (x, y, z)
    workers: int = 4
    slab_depth: int | None = None  # default: the block depth
    max_slab_bytes: int = 256 << 20
    verify: bool = False
    pyramid: int = 0
    checkpoint: Path | None = None
    restart: bool = False


@dataclass
class IngestResult:
    source: str  # the source described
    target: Target
    slabs: int
    written: int
    skipped: int
    bytes_written: int
    seconds: float
    checkpoint: Path
    pyramid: int = 0
    verified: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def mb_per_s(self) -> float:
        return self.bytes_written / self.seconds / 1e6 if self.seconds > 0 else 0.0


def _prepare_target(client: DVIDClient, opts: IngestOptions) -> Target:
    if opts.create and not exists(client, opts.uuid, opts.instance):
        create(client, opts.uuid, opts.instance, opts.create, opts.settings)
    target = describe(client, opts.uuid, opts.instance)
    if opts.create and target.typename != opts.create:
        raise IngestError(f"{opts.instance!r} exists and is a {target.typename}, not a {opts.create}")
    if opts.pyramid and target.typename == "labelmap" and target.max_downres < opts.pyramid:
        # a labelmap's scales are kept current by its voxel writes: set the depth before writing
        client.instance_request(
            "POST", opts.uuid, opts.instance, "info", json={"MaxDownresLevel": opts.pyramid}
        )
        target = describe(client, opts.uuid, opts.instance)
    return target


def ingest(
    server: str,
    opts: IngestOptions,
    *,
    timeout: float | None = 600.0,
    quiet: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> IngestResult:
    """Run (or continue) the ingest ``opts`` against ``server``; ``log`` gets one-line notes."""
    if opts.workers < 1:
        raise IngestError("--workers must be at least 1")
    source = open_source(opts.source, opts.dataset, opts.fmt)
    clients = ThreadClients(lambda: DVIDClient(server, timeout=timeout))
    try:
        client = clients.get()
        target = _prepare_target(client, opts)
        cast = conversion(source.dtype, source.shape, target)
        depth = opts.slab_depth or target.block_size[2]
        slabs = plan_slabs(
            source.zyx, opts.offset, target.block_size,
            slab_depth=depth, voxel_bytes=target.voxel_bytes, max_bytes=opts.max_slab_bytes,
        )  # fmt: skip
        key = {
            "source": source.identity(),
            "shape": list(source.shape),
            "dtype": source.dtype.str,
            "target": [client.server, opts.uuid, opts.instance, target.typename],
            "offset": list(opts.offset),
            "block": list(target.block_size),
            "slab_depth": depth,
            "max_slab_bytes": opts.max_slab_bytes,
        }
        checkpoint = Checkpoint.for_key(key, opts.checkpoint)
        if opts.restart:
            checkpoint.restart()
        done = checkpoint.load()
        log(f"{source.describe()} -> {target.typename} {target.name!r} at {opts.uuid}, offset"
            f" {','.join(map(str, opts.offset))}: {len(slabs)} slabs, {len(done)} already done"
            + (f"; converting {source.dtype.name} to {cast.name}" if cast is not None else ""))  # fmt: skip
        total = sum(s.voxels for s in slabs) * target.voxel_bytes
        done_bytes = sum(s.voxels for s in slabs if s.index in done) * target.voxel_bytes
        with progress_bar(total, done_bytes, f"ingest {target.name}", quiet) as bar:
            wrote = write_slabs(
                clients, source, target, opts.offset, slabs, checkpoint,
                cast=cast, workers=opts.workers, progress=bar,
            )  # fmt: skip
        result = IngestResult(
            source.describe(), target, len(slabs), wrote.written, wrote.skipped, wrote.bytes_written,
            wrote.seconds, checkpoint.path,
        )  # fmt: skip
        if opts.pyramid and target.typename != "labelmap":
            log(f"building pyramid levels 1..{opts.pyramid}")
            result.pyramid = client.build_pyramid(opts.uuid, opts.instance, opts.pyramid)
        elif opts.pyramid:
            result.pyramid = target.max_downres
        if opts.verify:
            result.mismatches = _verify(clients, target, opts, slabs, checkpoint.done, quiet)
            result.verified = len(slabs)
        return result
    finally:
        clients.close()
        source.close()


def _verify(
    clients: ThreadClients, target: Target, opts: IngestOptions, slabs: list[Slab], digests: dict[int, str],
    quiet: bool,
) -> list[Mismatch]:  # fmt: skip
    total = sum(s.voxels for s in slabs) * target.voxel_bytes
    with progress_bar(total, 0, f"verify {target.name}", quiet) as bar:
        return verify_slabs(clients, target, opts.offset, slabs, digests, workers=opts.workers, progress=bar)


__all__ = ["IngestOptions", "IngestResult", "ingest"]
