"""The ``dvid ingest`` and ``dvid export`` commands (registered in :mod:`dvid.cli`; see docs/cli.md)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from dvid.client import DVIDClient
from dvid.ingest import EXPORT_FORMATS, SOURCE_FORMATS, VOXEL_TYPE_NAMES, IngestError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
_SETTING = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$", re.DOTALL)


def _global(ctx: click.Context) -> tuple[str, float]:
    """The server and timeout given to the ``dvid`` group (its ``Obj``)."""
    obj: Any = ctx.find_root().obj
    return obj.server, obj.timeout


def _ints(text: str, count: int, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.replace("_", ",").split(","))
    except ValueError:
        values = ()
    if len(values) != count:
        raise click.BadParameter(
            f"expected {count} integers separated by commas, got {text!r}", param_hint=what
        )
    return values


def _settings(tokens: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for token in tokens:
        m = _SETTING.match(token)
        if not m:
            raise click.UsageError(f"unexpected argument {token!r}: settings are KEY=VALUE")
        out[m.group(1)] = m.group(2)
    return out


@click.command("ingest", context_settings=CONTEXT_SETTINGS)
@click.argument("source")
@click.argument("uuid")
@click.argument("instance")
@click.argument("settings", nargs=-1, metavar="[KEY=VALUE ...]")
@click.option("--dataset", "-d", metavar="NAME", help="HDF5 dataset, zarr array or N5 dataset in SOURCE.")
@click.option("--format", "fmt", type=click.Choice(SOURCE_FORMATS), help="SOURCE's format [from its name].")
@click.option(
    "--create", "create_type", type=click.Choice(VOXEL_TYPE_NAMES), metavar="TYPE",
    help="Create INSTANCE as TYPE if it does not exist (settings: KEY=VALUE arguments).",
)  # fmt: skip
@click.option("--offset", default="0,0,0", show_default=True, metavar="X,Y,Z", help="Where voxel 0,0,0 goes.")
@click.option(
    "--workers", "-j", type=click.IntRange(1, 256), default=4, show_default=True, help="Slabs in flight."
)
@click.option("--slab-depth", type=click.IntRange(1), metavar="Z", help="Planes per slab [the block depth].")
@click.option("--slab-mb", type=click.IntRange(1), default=256, show_default=True, help="Largest slab (MiB).")
@click.option("--verify", is_flag=True, help="Read every slab back and compare digests.")
@click.option(
    "--pyramid", type=click.IntRange(0, 30), default=0, metavar="LEVELS", help="Build levels 1..LEVELS."
)
@click.option(
    "--checkpoint", type=click.Path(dir_okay=False, path_type=Path), help="Checkpoint file [cache]."
)
@click.option("--restart", is_flag=True, help="Ignore the checkpoint: write every slab again.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or notes.")
@click.pass_context
def ingest_command(
    ctx: click.Context,
    source: str,
    uuid: str,
    instance: str,
    settings: tuple[str, ...],
    dataset: str | None,
    fmt: str | None,
    create_type: str | None,
    offset: str,
    workers: int,
    slab_depth: int | None,
    slab_mb: int,
    verify: bool,
    pyramid: int,
    checkpoint: Path | None,
    restart: bool,
    quiet: bool,
) -> None:
    """Write the volume SOURCE into voxel instance INSTANCE at version UUID.

    SOURCE is a TIFF stack (a directory or a glob pattern such as 'z/*.tif'), a multi-page TIFF,
    a PNG or JPEG stack, an HDF5 file, a zarr v2/v3 array or group, an N5 container, a neuroglancer
    precomputed volume or a .npy file. Slabs are written in parallel and recorded in a checkpoint:
    the same command run again after an interruption writes only what is missing.
    """
    from dvid.ingest.run import IngestOptions, ingest

    if settings and not create_type:
        raise click.UsageError("KEY=VALUE settings are for a new instance: give --create TYPE", ctx=ctx)
    opts = IngestOptions(
        source, uuid, instance, dataset=dataset, fmt=fmt, create=create_type, settings=_settings(settings),
        offset=_ints(offset, 3, "--offset"),  # type: ignore[arg-type]
        workers=workers, slab_depth=slab_depth, max_slab_bytes=slab_mb << 20, verify=verify, pyramid=pyramid,
        checkpoint=checkpoint, restart=restart,
    )  # fmt: skip
    server, timeout = _global(ctx)
    say = (lambda _: None) if quiet else (lambda m: click.echo(m, err=True))
    try:
        result = ingest(server, opts, timeout=timeout, quiet=quiet, log=say)
    except IngestError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        raise click.ClickException("interrupted: run the same command again to continue") from None
    t = result.target
    click.echo(
        f"ingested {result.written} of {result.slabs} slabs ({result.skipped} done before),"
        f" {result.bytes_written / (1 << 20):.1f} MiB in {result.seconds:.2f} s ({result.mb_per_s:.1f} MB/s)"
        f" into {t.typename} {t.name!r} at {uuid}"
    )
    if result.pyramid:
        click.echo(f"pyramid: levels 1..{result.pyramid}")
    if verify:
        if result.mismatches:
            listed = ", ".join(str(m) for m in result.mismatches[:10])
            more = f" and {len(result.mismatches) - 10} more" if len(result.mismatches) > 10 else ""
            raise click.ClickException(
                f"verify: {len(result.mismatches)} of {result.verified} slabs differ from the source:"
                f" {listed}{more} (rerun with --restart to write them again)"
            )
        click.echo(f"verified {result.verified} slabs: the server holds exactly what was sent")


@click.command("export", context_settings=CONTEXT_SETTINGS)
@click.argument("uuid")
@click.argument("instance")
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--box", metavar="X0,Y0,Z0,X1,Y1,Z1", help="Voxels from X0,Y0,Z0 up to (not including) X1,Y1,Z1."
)
@click.option("--offset", metavar="X,Y,Z", help="With --size: the box's first voxel.")
@click.option("--size", metavar="NX,NY,NZ", help="With --offset: the box's size.")
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), help="[from OUT's suffix]")
@click.option(
    "--scale", type=click.IntRange(0, 30), default=0, help="Pyramid level (box in its coordinates)."
)
@click.option("--supervoxels", is_flag=True, help="labelmap: supervoxel ids instead of bodies.")
@click.option("--chunk", type=click.IntRange(1), default=64, show_default=True, help="zarr/HDF5 chunk edge.")
@click.option(
    "--workers", "-j", type=click.IntRange(1, 256), default=4, show_default=True, help="Reads in flight."
)
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def export_command(
    ctx: click.Context,
    uuid: str,
    instance: str,
    out: Path,
    box: str | None,
    offset: str | None,
    size: str | None,
    fmt: str | None,
    scale: int,
    supervoxels: bool,
    chunk: int,
    workers: int,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Write a box of voxel instance INSTANCE at version UUID to OUT: a zarr v3 array (.zarr), a
    multi-page TIFF (.tif), an HDF5 file (.h5, dataset "data") or a .npy file.

    Without --box (or --offset and --size) the box is everything written at the version. Reads are
    streamed a slab at a time, so memory stays bounded whatever the box.
    """
    from dvid.ingest.export import Box, check_box, export_box, format_of
    from dvid.ingest.progress import progress_bar
    from dvid.ingest.target import describe, extents
    from dvid.ingest.writer import ThreadClients

    if box and (offset or size):
        raise click.UsageError("give --box, or --offset with --size, not both", ctx=ctx)
    if bool(offset) != bool(size):
        raise click.UsageError("--offset and --size go together", ctx=ctx)
    server, timeout = _global(ctx)
    clients = ThreadClients(lambda: DVIDClient(server, timeout=timeout))
    try:
        fmt = format_of(out, fmt)
        target = describe(clients.get(), uuid, instance)
        written = extents(clients.get(), target)
        if written is not None and scale:
            written = (
                tuple(v >> scale for v in written[0]),  # type: ignore[assignment]
                tuple(v >> scale for v in written[1]),
            )
        if box:
            v = _ints(box, 6, "--box")
            the_box = Box((v[0], v[1], v[2]), (v[3], v[4], v[5]))
        elif offset and size:
            o, n = _ints(offset, 3, "--offset"), _ints(size, 3, "--size")
            the_box = Box((o[0], o[1], o[2]), (o[0] + n[0], o[1] + n[1], o[2] + n[2]))
        elif written is None:
            raise IngestError(f"nothing is written in {instance!r} at {uuid}: give --box")
        else:
            lo, hi = written
            the_box = Box(lo, (hi[0] + 1, hi[1] + 1, hi[2] + 1))
        check_box(the_box, written)
        attrs = {
            "server": clients.get().server, "uuid": uuid, "instance": instance, "type": target.typename,
            "scale": scale, "offset": list(the_box.lo), "size": list(the_box.size),
        }  # fmt: skip
        nbytes = the_box.size[0] * the_box.size[1] * the_box.size[2] * target.voxel_bytes
        with progress_bar(nbytes, 0, f"export {instance}", quiet) as bar:
            result = export_box(
                clients, target, the_box, out, fmt, scale=scale, supervoxels=supervoxels, chunk=chunk,
                workers=workers, overwrite=overwrite, progress=bar, attrs=attrs,
            )  # fmt: skip
    except IngestError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        raise click.ClickException("interrupted: nothing written") from None
    finally:
        clients.close()
    dims = "x".join(str(v) for v in the_box.size)
    click.echo(
        f"exported {dims} {result.dtype.name} voxels of {instance!r} at {uuid} ({the_box}) to {out} [{fmt}],"
        f" {result.nbytes / (1 << 20):.1f} MiB in {result.seconds:.2f} s ({result.mb_per_s:.1f} MB/s)"
    )


__all__ = ["export_command", "ingest_command"]
