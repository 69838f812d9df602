"""Volumes and real files of every format ``dvid ingest`` reads, written with each format's own library,
and the CLI run in process, for tests/test_ingest*.py and tests/test_export.py."""

from __future__ import annotations

import gzip
from pathlib import Path

import h5py
import numpy as np
import requests
import tensorstore as ts
import tifffile
import zarr
from click.testing import CliRunner, Result
from PIL import Image

from dvid.cli import cli
from tests.shared_data import DATA

GREY_SHAPE = (70, 130, 100)  # z, y, x: 100 x 130 x 70 voxels


def grey_volume(seed: int = 7) -> np.ndarray:
    """uint8 noise over a gradient (every byte matters: nothing compresses it away)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(GREY_SHAPE)
    return ((x + 2 * y + 3 * z) % 256).astype(np.uint8) ^ rng.integers(0, 256, GREY_SHAPE, dtype=np.uint8)


def label_volume() -> np.ndarray:
    """Real fib19 and cx labels: four 64^3 samples side by side, cropped to 64 x 128 x 100 (z, y, x)."""
    names = ("fib19-64x64x64-sample1", "fib19-64x64x64-sample2", "cx-64x64x64-sample1", "cx-64x64x64-sample2")
    parts = [np.frombuffer(gzip.decompress((DATA / f"{n}.dat.gz").read_bytes()), "<u8") for n in names]
    parts = [p.reshape(64, 64, 64) for p in parts]
    top = np.concatenate(parts[:2], axis=2)
    bottom = np.concatenate(parts[2:], axis=2)
    return np.ascontiguousarray(np.concatenate([top, bottom], axis=1)[:, :, :100])


def write_source(kind: str, vol: np.ndarray, folder: Path) -> tuple[str, list[str]]:
    """``vol`` written as ``kind`` under ``folder``; returns the SOURCE argument and extra CLI options."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "tiff-stack":
        for z, plane in enumerate(vol):
            tifffile.imwrite(folder / f"z{z}.tif", plane)  # natural order: z2 before z10
        return str(folder), []
    if kind == "tiff-glob":
        for z, plane in enumerate(vol):
            tifffile.imwrite(folder / f"slice_{z:04d}.tiff", plane)
        (folder / "notes.txt").write_text("not an image")
        return str(folder / "slice_*.tiff"), []
    if kind == "multipage-tiff":
        tifffile.imwrite(folder / "vol.tif", vol, photometric="minisblack")
        return str(folder / "vol.tif"), []
    if kind in ("png-stack", "jpeg-stack"):
        ext = "png" if kind == "png-stack" else "jpg"
        for z, plane in enumerate(vol):
            Image.fromarray(plane).save(folder / f"{z}.{ext}")
        return str(folder), []
    if kind == "hdf5":
        with h5py.File(folder / "vol.h5", "w") as f:
            f.create_dataset("other/small", data=np.zeros((4, 4, 4), vol.dtype))
            f.create_dataset("volumes/raw", data=vol, chunks=(16, 32, 32), compression="gzip")
        return str(folder / "vol.h5"), ["--dataset", "volumes/raw"]
    if kind in ("zarr2", "zarr3"):
        fmt = 2 if kind == "zarr2" else 3
        group = zarr.open_group(str(folder / "vol.zarr"), mode="w", zarr_format=fmt)
        arr = group.create_array("raw", shape=vol.shape, chunks=(32, 32, 32), dtype=vol.dtype)
        arr[:] = vol
        return str(folder / "vol.zarr"), ["--dataset", "raw"]
    if kind == "n5":
        spec = {
            "driver": "n5",
            "kvstore": {"driver": "file", "path": str(folder / "vol.n5" / "raw")},
            "metadata": {
                "dimensions": list(reversed(vol.shape)),
                "blockSize": [32, 32, 32],
                "dataType": vol.dtype.name,
                "compression": {"type": "gzip"},
            },
            "create": True,
        }
        ts.open(spec).result().write(vol.T).result()  # N5 is x, y, z
        return str(folder / "vol.n5"), ["--dataset", "raw"]
    if kind == "precomputed":
        spec = {
            "driver": "neuroglancer_precomputed",
            "kvstore": {"driver": "file", "path": str(folder / "precomputed")},
            "multiscale_metadata": {"data_type": vol.dtype.name, "num_channels": 1, "type": "image"},
            "scale_metadata": {
                "size": list(reversed(vol.shape)),
                "encoding": "raw",
                "chunk_size": [32, 32, 32],
                "resolution": [8, 8, 8],
                "voxel_offset": [10, 20, 30],
            },
            "create": True,
        }
        store = ts.open(spec).result()
        store[ts.d[:].translate_to[0]].write(vol.T[..., None]).result()
        return str(folder / "precomputed"), []
    if kind == "npy":
        np.save(folder / "vol.npy", vol)
        return str(folder / "vol.npy"), []
    raise ValueError(kind)


def decoded_by_pillow(folder: Path, ext: str, n: int) -> np.ndarray:
    """What Pillow decodes from a stack (JPEG is lossy: ingest must store exactly this)."""
    return np.stack([np.asarray(Image.open(folder / f"{z}.{ext}")) for z in range(n)])


def read_raw(url: str, uuid: str, name: str, shape_zyx, offset_xyz, dtype, **params) -> np.ndarray:
    nz, ny, nx = shape_zyx[:3]
    x, y, z = offset_xyz
    r = requests.get(
        f"{url}/api/node/{uuid}/{name}/raw/0_1_2/{nx}_{ny}_{nz}/{x}_{y}_{z}", params=params, timeout=60
    )
    assert r.status_code == 200, r.text
    return np.frombuffer(r.content, dtype).reshape(shape_zyx)


def post_raw(url: str, uuid: str, name: str, vol: np.ndarray, offset_xyz) -> None:
    nz, ny, nx = vol.shape[:3]
    x, y, z = offset_xyz
    r = requests.post(
        f"{url}/api/node/{uuid}/{name}/raw/0_1_2/{nx}_{ny}_{nz}/{x}_{y}_{z}", data=vol.tobytes(), timeout=60
    )
    assert r.status_code == 200, r.text


def dvid(url: str, *args: str) -> Result:
    """The CLI in process against ``url``."""
    return CliRunner().invoke(cli, ["--server", url, *args])


def ok(url: str, *args: str) -> str:
    result = dvid(url, *args)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.stdout


def failed(url: str, *args: str) -> str:
    """A command that must fail cleanly: exit 1, one ``dvid: ...`` line on stderr, no traceback."""
    result = dvid(url, *args)
    assert result.exit_code == 1, (args, result.output)
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.stderr.startswith("dvid: "), result.stderr
    assert "Traceback" not in result.output
    return result.stderr
