"""``dvid export``: a box of a voxel instance at a version, streamed to zarr v3, TIFF, HDF5 or ``.npy``.

The box is read with parallel ``GET raw/0_1_2`` requests, a slab at a time, and each slab is
written to the output as it arrives, so memory holds at most ``workers`` slabs whatever the box.
Slabs follow the output's chunk grid (zarr and HDF5 chunks are ``chunk`` voxels a side, clipped to
the box), so no chunk is written twice. TIFF pages are written in z order, one per plane; the other
formats take slabs in the order they come.

Outputs hold the voxels in z, y, x order (x fastest), the dtype of the instance (uint64 for labels),
and, in zarr and HDF5, attributes saying where the box came from (``dvid`` attribute: server,
version, instance, scale, offset and size in voxels x, y, z, voxel size).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dvid.client import DVIDClientError
from dvid.ingest import EXPORT_FORMATS, IngestError
from dvid.ingest.plan import Slab, plan_slabs
from dvid.ingest.sources import need_module
from dvid.ingest.target import Target
from dvid.ingest.verify import read_params
from dvid.ingest.writer import ThreadClients, bounded_map

_SUFFIXES = {".zarr": "zarr", ".tif": "tiff", ".tiff": "tiff", ".h5": "hdf5", ".hdf5": "hdf5", ".npy": "npy"}


def format_of(out: Path, fmt: str | None) -> str:
    """The output format: ``fmt``, else from the suffix of ``out``."""
    if fmt:
        return fmt
    try:
        return _SUFFIXES[out.suffix.lower()]
    except KeyError:
        raise IngestError(
            f"cannot tell the format of {out} from its suffix: give --format ({', '.join(EXPORT_FORMATS)})"
        ) from None


@dataclass(frozen=True)
class Box:
    """A half-open voxel box ``[lo, hi)``, coordinates x, y, z."""

    lo: tuple[int, int, int]
    hi: tuple[int, int, int]

    @property
    def size(self) -> tuple[int, int, int]:
        return (self.hi[0] - self.lo[0], self.hi[1] - self.lo[1], self.hi[2] - self.lo[2])

    def __str__(self) -> str:
        return f"{','.join(map(str, self.lo))} to {','.join(map(str, self.hi))} (x,y,z; end excluded)"


@dataclass
class ExportResult:
    out: Path
    fmt: str
    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / self.seconds / 1e6 if self.seconds > 0 else 0.0


# ---- outputs -------------------------------------------------------------------------------------
class Sink:
    """Where the slabs go; ``write_all`` consumes (slab, array) pairs in any order unless ``ordered``."""

    ordered = False

    def __init__(self, out: Path, shape: tuple[int, ...], dtype: np.dtype, chunks: tuple[int, ...]) -> None:
        self.out, self.shape, self.dtype, self.chunks = out, shape, dtype, chunks

    def write_all(self, slabs: Iterator[tuple[Slab, np.ndarray]], attrs: dict[str, Any]) -> None:
        raise NotImplementedError


class ZarrSink(Sink):
    def write_all(self, slabs: Iterator[tuple[Slab, np.ndarray]], attrs: dict[str, Any]) -> None:
        zarr = need_module("zarr", "zarr arrays")
        arr = zarr.create_array(
            store=str(self.out), shape=self.shape, chunks=self.chunks, dtype=self.dtype,
            zarr_format=3, attributes={"dvid": attrs}, fill_value=0,
        )  # fmt: skip
        for s, data in slabs:
            arr[s.z0 : s.z1, s.y0 : s.y1, s.x0 : s.x1] = data


class Hdf5Sink(Sink):
    dataset = "data"

    def write_all(self, slabs: Iterator[tuple[Slab, np.ndarray]], attrs: dict[str, Any]) -> None:
        h5py = need_module("h5py", "HDF5 files")
        with h5py.File(self.out, "w") as f:
            ds = f.create_dataset(self.dataset, shape=self.shape, dtype=self.dtype, chunks=self.chunks)
            for key, value in attrs.items():
                ds.attrs[key] = value
            for s, data in slabs:
                ds[s.z0 : s.z1, s.y0 : s.y1, s.x0 : s.x1] = data


class NpySink(Sink):
    def write_all(self, slabs: Iterator[tuple[Slab, np.ndarray]], attrs: dict[str, Any]) -> None:
        arr = np.lib.format.open_memmap(self.out, mode="w+", dtype=self.dtype, shape=self.shape)
        for s, data in slabs:
            arr[s.z0 : s.z1, s.y0 : s.y1, s.x0 : s.x1] = data
        arr.flush()
        del arr


class TiffSink(Sink):
    """One page per z plane, written in order (BigTIFF above 2 GiB)."""

    ordered = True

    def write_all(self, slabs: Iterator[tuple[Slab, np.ndarray]], attrs: dict[str, Any]) -> None:
        tifffile = need_module("tifffile", "TIFF files")

        def planes() -> Iterator[np.ndarray]:
            for _, data in slabs:
                yield from data

        rgba = len(self.shape) == 4
        big = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize > (2 << 30) - (16 << 20)
        tifffile.imwrite(
            self.out, data=planes(), shape=self.shape, dtype=self.dtype, bigtiff=big,
            photometric="rgb" if rgba else "minisblack", extrasamples=["unassalpha"] if rgba else None,
        )  # fmt: skip


SINKS: dict[str, type[Sink]] = {"zarr": ZarrSink, "tiff": TiffSink, "hdf5": Hdf5Sink, "npy": NpySink}


# ---- the export ----------------------------------------------------------------------------------
def check_box(box: Box, data_extents: tuple[tuple[int, int, int], tuple[int, int, int]] | None) -> None:
    """IngestError for an empty box, or one that misses the data written at the version."""
    if any(n <= 0 for n in box.size):
        raise IngestError(f"the box {box} is empty: each end must exceed its start")
    if data_extents is None:
        return
    lo, hi = data_extents
    if any(box.hi[i] <= lo[i] or box.lo[i] > hi[i] for i in range(3)):
        raise IngestError(
            f"the box {box} lies outside the data written at this version"
            f" ({','.join(map(str, lo))} to {','.join(map(str, hi))}, inclusive)"
        )


def export_box(
    clients: ThreadClients,
    target: Target,
    box: Box,
    out: Path,
    fmt: str,
    *,
    scale: int = 0,
    supervoxels: bool = False,
    chunk: int = 64,
    workers: int = 4,
    max_slab_bytes: int = 256 << 20,
    overwrite: bool = False,
    progress: Any,
    attrs: dict[str, Any] | None = None,
) -> ExportResult:
    """Stream ``box`` of ``target`` (coordinates at ``scale``) into ``out`` as ``fmt``."""
    if out.exists():
        if not overwrite:
            raise IngestError(f"{out} exists: give --overwrite to replace it")
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    nx, ny, nz = box.size
    shape: tuple[int, ...] = (nz, ny, nx, *((target.channels,) if target.channels > 1 else ()))
    chunks = (min(chunk, nz), min(chunk, ny), min(chunk, nx), *shape[3:])
    max_bytes = 1 << 62 if fmt == "tiff" else max_slab_bytes  # TIFF: whole planes, in order
    slabs = plan_slabs(
        (nz, ny, nx), (0, 0, 0), (chunks[2], chunks[1], chunks[0]),
        slab_depth=chunks[0], voxel_bytes=target.voxel_bytes, max_bytes=max_bytes,
    )  # fmt: skip
    params = read_params(target) if supervoxels else {}
    if scale:
        params["scale"] = str(scale)

    def fetch(slab: Slab) -> tuple[Slab, np.ndarray]:
        sx, sy, sz = slab.size_xyz
        x, y, z = slab.target_offset(box.lo)
        try:
            r = clients.get().instance_request(
                "GET", target.uuid, target.name, "raw", "0_1_2", f"{sx}_{sy}_{sz}", f"{x}_{y}_{z}",
                params=params, timeout=None,
            )  # fmt: skip
        except DVIDClientError as exc:
            raise IngestError(f"reading {sx}x{sy}x{sz} at {x},{y},{z} failed: {exc}") from None
        want = (sz, sy, sx, *shape[3:])
        data = np.frombuffer(r.content, dtype=target.dtype)
        if data.size != int(np.prod(want)):
            raise IngestError(f"the server sent {len(r.content)} bytes for {sx}x{sy}x{sz} at {x},{y},{z}")
        progress.update(len(r.content))
        return slab, data.reshape(want)

    sink = SINKS[fmt](out, shape, target.dtype, chunks)
    t0 = time.perf_counter()
    try:
        sink.write_all(bounded_map(fetch, slabs, workers, ordered=sink.ordered), attrs or {})
    except BaseException:
        if out.exists():  # no half-written output left behind
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        raise
    nbytes = int(np.prod(shape, dtype=np.int64)) * target.dtype.itemsize
    return ExportResult(out, fmt, shape, target.dtype, nbytes, time.perf_counter() - t0)


__all__ = ["EXPORT_FORMATS", "SINKS", "Box", "ExportResult", "check_box", "export_box", "format_of"]
