"""Volume sources: the file formats labs hold, each read as z-y-x slabs of one numpy dtype.

Every source has a ``shape`` of ``(z, y, x)`` (or ``(z, y, x, channels)``), a ``dtype``, and
``read(z0, z1, y0, y1, x0, x1)`` returning that box as a C-ordered array, reading only what the box
needs where the format allows. Arrays stored in files are taken to be in z, y, x order (C order, x
fastest: numpy's, h5py's and zarr's convention); N5 and neuroglancer precomputed, which store x, y, z,
are transposed. :func:`open_source` picks the reader from the path (or ``fmt``).

The optional readers (tifffile, h5py, zarr, tensorstore) are imported when used; a missing one is an
:class:`~dvid.ingest.IngestError` that says how to install it.
"""

from __future__ import annotations

import glob
import importlib
import json
import os
import re
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from dvid.ingest import INSTALL_HINT, SOURCE_FORMATS, IngestError

TIFF_EXTS = (".tif", ".tiff")
PILLOW_EXTS = (".png", ".jpg", ".jpeg")
HDF5_EXTS = (".h5", ".hdf5", ".hdf", ".he5")
FORMATS = SOURCE_FORMATS


def need_module(name: str, what: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise IngestError(f"reading {what} needs the Python package {name}: {INSTALL_HINT}") from None


def _stat(path: Path) -> list[Any]:
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def _natural_key(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


#: A slab thinner than a chunk shares the chunk's box only if that is at most this many chunks deep.
MAX_UNIT_CHUNKS = 4


class _Unit:
    """A chunk-deep box being read (or read) for the slabs that share it."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.array: np.ndarray | None = None
        self.error: BaseException | None = None
        self.taken = 0  # planes handed out


class VolumeSource(ABC):
    """A volume to read slab by slab (thread-safe: the writer reads slabs from several threads)."""

    kind: str = ""
    shape: tuple[int, ...] = ()
    dtype: np.dtype = np.dtype("u1")

    def __init__(self) -> None:
        self._units: dict[tuple[int, ...], _Unit] = {}
        self._units_lock = threading.Lock()

    @property
    def zyx(self) -> tuple[int, int, int]:
        z, y, x = self.shape[:3]
        return z, y, x

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    @abstractmethod
    def identity(self) -> list[Any]:
        """What makes the source this source: files with sizes and mtimes, the dataset read."""

    @abstractmethod
    def _read(self, z0: int, z1: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """The box, any layout (``read`` makes it C-ordered)."""

    def read(
        self, z0: int, z1: int, y0: int = 0, y1: int | None = None, x0: int = 0, x1: int | None = None
    ) -> np.ndarray:
        """Voxels ``[z0:z1, y0:y1, x0:x1]`` (y and x default to the whole plane), C-ordered.

        A box thinner than the source's chunks is cut from the chunk-deep box around it, read once
        for all the slabs that share it (by whichever thread asks first) and let go when they have
        all taken their planes: a chunk is decoded once, however the slabs cut it."""
        nz, ny, nx = self.zyx
        y1 = ny if y1 is None else y1
        x1 = nx if x1 is None else x1
        if not (0 <= z0 < z1 <= nz and 0 <= y0 < y1 <= ny and 0 <= x0 < x1 <= nx):
            raise IngestError(f"box z {z0}:{z1} y {y0}:{y1} x {x0}:{x1} is outside the source {self.shape}")
        depth = self.chunk_depth
        u0, u1 = z0 // depth * depth, min(nz, -(-z1 // depth) * depth)
        if depth > 1 and (u0, u1) != (z0, z1) and u1 - u0 <= MAX_UNIT_CHUNKS * depth:
            return np.ascontiguousarray(self._shared_unit((u0, u1, y0, y1, x0, x1), z0, z1))
        return self._box(z0, z1, y0, y1, x0, x1)

    def _box(self, z0: int, z1: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        arr = np.asarray(self._read(z0, z1, y0, y1, x0, x1))
        want = (z1 - z0, y1 - y0, x1 - x0, *self.shape[3:])
        if arr.shape != want:
            arr = arr.reshape(want)
        return np.ascontiguousarray(arr)

    def _shared_unit(self, key: tuple[int, ...], z0: int, z1: int) -> np.ndarray:
        """Planes ``z0:z1`` of the chunk-aligned box ``key``, read once by the first thread asking."""
        with self._units_lock:
            unit = self._units.get(key)
            owner = unit is None
            if owner:
                unit = self._units[key] = _Unit()
        assert unit is not None
        if owner:
            try:
                unit.array = self._box(*key)
            except BaseException as exc:
                unit.error = exc
            unit.ready.set()
        unit.ready.wait()
        with self._units_lock:
            unit.taken += z1 - z0
            if unit.error is not None or unit.taken >= key[1] - key[0]:
                self._units.pop(key, None)
        if unit.error is not None:
            raise unit.error
        assert unit.array is not None
        return unit.array[z0 - key[0] : z1 - key[0]]

    @property
    def chunk_depth(self) -> int:
        """Planes per chunk of a chunked source (zarr, N5, precomputed, chunked HDF5): slabs that
        start and end on chunk boundaries decode each chunk once. 1 for the others."""
        return 1

    def describe(self) -> str:
        dims = "x".join(str(v) for v in reversed(self.zyx))
        channels = f"x{self.shape[3]} channels" if len(self.shape) > 3 else ""
        return f"{self.kind} {dims}{channels} {self.dtype.name} (x, y, z)"

    def close(self) -> None:  # noqa: B027 (most sources hold nothing open)
        """Release open files."""


def _check_ndim(shape: tuple[int, ...], where: str) -> tuple[int, ...]:
    if len(shape) == 2:
        return (1, *shape)
    if len(shape) not in (3, 4):
        raise IngestError(
            f"{where} has shape {shape}: expected a 3-D volume (z, y, x) or (z, y, x, channels)"
        )
    return tuple(int(v) for v in shape)


# ---- image stacks: one file per z plane -----------------------------------------------------------
class ImageStack(VolumeSource):
    """A stack of 2-D images, one per z plane, in natural file-name order (``img2`` before ``img10``)."""

    def __init__(self, files: list[Path], kind: str) -> None:
        super().__init__()
        if not files:
            raise IngestError("the image stack has no files")
        self.files = files
        self.kind = kind
        first = self._plane(files[0])
        self.plane_shape = first.shape
        self.shape = (len(files), *first.shape)
        self.dtype = first.dtype

    def _plane(self, path: Path) -> np.ndarray:
        if self.kind == "tiff-stack":
            tifffile = need_module("tifffile", "TIFF files")
            plane = tifffile.imread(path)
        else:
            from PIL import Image

            with Image.open(path) as img:
                plane = np.asarray(img)
        if plane.ndim not in (2, 3):
            raise IngestError(f"{path} is not a 2-D image (shape {plane.shape})")
        return plane

    def identity(self) -> list[Any]:
        return [self.kind, *(_stat(f) for f in self.files)]

    def _read(self, z0: int, z1: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        out = np.empty((z1 - z0, y1 - y0, x1 - x0, *self.shape[3:]), self.dtype)
        for i, path in enumerate(self.files[z0:z1]):
            plane = self._plane(path)
            if plane.shape != self.plane_shape or plane.dtype != self.dtype:
                raise IngestError(
                    f"{path} is {plane.shape} {plane.dtype}, unlike the stack's first image"
                    f" {self.plane_shape} {self.dtype}"
                )
            out[i] = plane[y0:y1, x0:x1]
        return out


# ---- one multi-page TIFF ------------------------------------------------------------------------
class MultiPageTiff(VolumeSource):
    """One TIFF file whose first series is the volume (a page per z plane, or a 3-D image)."""

    kind = "tiff"

    def __init__(self, path: Path) -> None:
        super().__init__()
        tifffile = need_module("tifffile", "TIFF files")
        self.path = path
        self._lock = threading.Lock()
        try:
            self._tif = tifffile.TiffFile(path)
        except Exception as exc:
            raise IngestError(f"{path} is not a readable TIFF file: {exc}") from None
        series = self._tif.series[0]
        self.shape = _check_ndim(tuple(series.shape), str(path))
        self.dtype = np.dtype(series.dtype)
        self._page_per_plane = len(series.pages) == self.shape[0]
        self._whole: np.ndarray | None = None

    def identity(self) -> list[Any]:
        return [self.kind, _stat(self.path)]

    def _read(self, z0: int, z1: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        with self._lock:  # a TiffFile is one file handle
            if self._page_per_plane:
                arr = self._tif.asarray(key=list(range(z0, z1)), series=0)
                arr = arr.reshape((z1 - z0, *self.shape[1:]))
            else:  # one 3-D page (or another layout): read once, then slice
                if self._whole is None:
                    self._whole = self._tif.asarray(series=0).reshape(self.shape)
                arr = self._whole[z0:z1]
        return arr[:, y0:y1, x0:x1]

    def close(self) -> None:
        self._tif.close()


# ---- arrays in containers: HDF5, zarr, .npy -----------------------------------------------------
class ArraySource(VolumeSource):
    """Any array indexable as ``array[z0:z1, y0:y1, x0:x1]`` (h5py dataset, zarr array, numpy memmap)."""

    def __init__(
        self, kind: str, array: Any, files: list[Path], dataset: str = "", closer: Any = None
    ) -> None:
        super().__init__()
        self.kind = kind
        self.array = array
        self.files = files
        self.dataset = dataset
        self._closer = closer
        self.shape = _check_ndim(tuple(array.shape), f"{files[0]}{'/' + dataset if dataset else ''}")
        self.dtype = np.dtype(array.dtype)
        self._flat = len(array.shape) == 2

    def identity(self) -> list[Any]:
        return [self.kind, self.dataset, *(_stat(f) for f in self.files if f.exists())]

    @property
    def chunk_depth(self) -> int:
        chunks = getattr(self.array, "chunks", None)  # zarr and chunked h5py datasets; None otherwise
        return int(chunks[0]) if chunks and not self._flat else 1

    def _read(self, z0: int, z1: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        if self._flat:
            return np.asarray(self.array[y0:y1, x0:x1])
        return np.asarray(self.array[z0:z1, y0:y1, x0:x1])

    def close(self) -> None:
        if self._closer is not None:
            self._closer()


def _hdf5(path: Path, dataset: str | None) -> ArraySource:
    h5py = need_module("h5py", "HDF5 files")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise IngestError(f"{path} is not a readable HDF5 file: {exc}") from None
    volumes: list[str] = []
    f.visititems(lambda name, obj: volumes.append(name) if getattr(obj, "ndim", 0) >= 3 else None)
    if dataset is None:
        if len(volumes) != 1:
            f.close()
            found = ", ".join(volumes) or "none"
            raise IngestError(f"{path}: name the dataset with --dataset (3-D datasets: {found})")
        dataset = volumes[0]
    obj = f.get(dataset)
    if obj is None or not hasattr(obj, "shape"):
        f.close()
        raise IngestError(f"{path} has no dataset {dataset!r} (3-D datasets: {', '.join(volumes) or 'none'})")
    return ArraySource("hdf5", obj, [path], dataset, closer=f.close)


def _zarr(path: Path, dataset: str | None) -> ArraySource:
    zarr = need_module("zarr", "zarr arrays")
    try:
        node = zarr.open(store=str(path), mode="r")
    except Exception as exc:
        raise IngestError(f"{path} is not a readable zarr array or group: {exc}") from None
    if dataset:
        try:
            node = node[dataset]
        except (KeyError, TypeError):
            raise IngestError(f"{path} has no zarr array {dataset!r}") from None
    elif not hasattr(node, "shape"):
        names = [name for name, _ in node.arrays()]
        if len(names) != 1:
            raise IngestError(f"{path} is a zarr group: name the array with --dataset ({', '.join(names)})")
        dataset = names[0]
        node = node[dataset]
    if not hasattr(node, "shape"):
        raise IngestError(f"{path}/{dataset} is a zarr group, not an array")
    meta = [path / n for n in ("zarr.json", ".zarray", ".zgroup")]
    if dataset:
        meta += [path / dataset / n for n in ("zarr.json", ".zarray")]
    array = _tensorstore_zarr(path / dataset if dataset else path, node) or node
    return ArraySource("zarr", array, [path, *meta], dataset or "")


class _TensorStoreArray:
    """A zarr array read through TensorStore (C++ codecs: ~4x less CPU than zarr-python's for
    zstd chunks), indexable as ``array[z0:z1, y0:y1, x0:x1]`` like the array it stands for."""

    def __init__(self, store: Any, chunks: tuple[int, ...]) -> None:
        self.store = store
        self.shape = tuple(int(n) for n in store.shape)
        self.dtype = np.dtype(store.dtype.numpy_dtype)
        self.chunks = chunks

    def __getitem__(self, box: Any) -> np.ndarray:
        return np.asarray(self.store[box].read().result())


def _tensorstore_zarr(path: Path, node: Any) -> _TensorStoreArray | None:
    """The zarr array at ``path`` opened with TensorStore, or None (then zarr-python reads it)."""
    try:
        import tensorstore as ts
    except ImportError:
        return None
    driver = "zarr3" if getattr(node.metadata, "zarr_format", 3) == 3 else "zarr"
    try:
        store = ts.open(
            {"driver": driver, "kvstore": {"driver": "file", "path": str(path)}}, read=True
        ).result()
    except Exception:  # a codec or layout TensorStore does not read: zarr-python does
        return None
    if tuple(store.shape) != tuple(node.shape):
        return None
    return _TensorStoreArray(store, tuple(int(c) for c in node.chunks))


def _npy(path: Path) -> ArraySource:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise IngestError(f"{path} is not a readable .npy file: {exc}") from None
    return ArraySource("npy", arr, [path])


# ---- tensorstore: N5 and neuroglancer precomputed -----------------------------------------------
class TensorStoreSource(VolumeSource):
    """An N5 dataset or a neuroglancer precomputed volume (scale 0), both stored x, y, z."""

    def __init__(self, kind: str, path: Path, dataset: str | None) -> None:
        super().__init__()
        ts = need_module("tensorstore", "N5 and neuroglancer precomputed volumes")
        self.kind = kind
        self.path = path
        self.dataset = dataset or ""
        root = path / self.dataset if kind == "n5" else path
        spec: dict[str, Any] = {"kvstore": {"driver": "file", "path": str(root)}}
        if kind == "n5":
            spec["driver"] = "n5"
        else:
            spec.update(driver="neuroglancer_precomputed", scale_index=0)
        try:
            store = ts.open(spec, read=True).result()
        except Exception as exc:
            raise IngestError(f"{root} is not a readable {kind} volume: {exc}") from None
        store = store[ts.d[:].translate_to[0]]  # precomputed's voxel_offset: the box starts at 0
        xyz = tuple(int(v) for v in store.shape)
        self.channels = xyz[3] if kind == "precomputed" else 1
        if len(xyz) != (4 if kind == "precomputed" else 3):
            raise IngestError(f"{root} has {len(xyz)} dimensions: expected x, y, z")
        self.store = store
        self.shape = (xyz[2], xyz[1], xyz[0], *((self.channels,) if self.channels > 1 else ()))
        self.dtype = np.dtype(store.dtype.numpy_dtype)
        self.meta = root / ("attributes.json" if kind == "n5" else "info")

    def identity(self) -> list[Any]:
        return [self.kind, self.dataset, _stat(self.meta)]

    @property
    def chunk_depth(self) -> int:
        try:
            return int(self.store.chunk_layout.read_chunk.shape[2])  # x, y, z
        except (AttributeError, TypeError, IndexError):
            return 1

    def _read(self, z0: int, z1: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        box = self.store[x0:x1, y0:y1, z0:z1]
        arr = np.asarray(box.read().result())
        if self.kind == "precomputed":
            arr = arr.transpose(2, 1, 0, 3)
            return arr[..., 0] if self.channels == 1 else arr
        return arr.transpose(2, 1, 0)


# ---- choosing the reader ------------------------------------------------------------------------
def _images_in(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in TIFF_EXTS + PILLOW_EXTS]


def _stack(files: list[Path], where: str) -> ImageStack:
    files = sorted(files, key=_natural_key)
    if not files:
        raise IngestError(f"{where} holds no TIFF, PNG or JPEG images")
    suffixes = {p.suffix.lower() for p in files}
    if suffixes <= set(TIFF_EXTS):
        return ImageStack(files, "tiff-stack")
    if suffixes <= set(PILLOW_EXTS):
        return ImageStack(files, "image-stack")
    raise IngestError(f"{where} mixes image formats ({', '.join(sorted(suffixes))}): give a glob pattern")


def _is_precomputed(folder: Path) -> bool:
    info = folder / "info"
    if not info.is_file():
        return False
    try:
        return "scales" in json.loads(info.read_text())
    except (ValueError, UnicodeDecodeError):
        return False


def detect_format(path: Path, dataset: str | None) -> str:
    """The format of ``path`` from its name and contents (see :data:`FORMATS`)."""
    if path.is_dir():
        inner = path / dataset if dataset else path
        if any((path / n).exists() for n in ("zarr.json", ".zarray", ".zgroup")):
            return "zarr"
        if (path / "attributes.json").exists() or (inner / "attributes.json").exists():
            return "n5"
        if _is_precomputed(path):
            return "precomputed"
        return "stack"
    suffix = path.suffix.lower()
    if suffix in TIFF_EXTS:
        return "tiff"
    if suffix in HDF5_EXTS:
        return "hdf5"
    if suffix == ".npy":
        return "npy"
    if suffix in PILLOW_EXTS:
        return "stack"
    raise IngestError(f"cannot tell the format of {path}: give --format ({', '.join(FORMATS)})")


def open_source(spec: str, dataset: str | None = None, fmt: str | None = None) -> VolumeSource:
    """The volume at ``spec``: a file, a directory, or a glob pattern of image files (``'z/*.tif'``)."""
    if any(c in spec for c in "*?["):
        files = [Path(p) for p in glob.glob(os.path.expanduser(spec))]
        if not files:
            raise IngestError(f"no files match {spec}")
        return _stack(files, spec)
    path = Path(spec).expanduser()
    if not path.exists():
        raise IngestError(f"no such file or directory: {spec}")
    kind = fmt or detect_format(path, dataset)
    if kind in ("png", "jpeg", "stack") or (kind == "tiff" and path.is_dir()):
        return _stack(_images_in(path) if path.is_dir() else [path], spec)
    if kind == "tiff":
        return MultiPageTiff(path)
    if kind == "hdf5":
        return _hdf5(path, dataset)
    if kind == "zarr":
        return _zarr(path, dataset)
    if kind == "npy":
        return _npy(path)
    if kind in ("n5", "precomputed"):
        return TensorStoreSource(kind, path, dataset)
    raise IngestError(f"unknown format {kind!r}: choose from {', '.join(FORMATS)}")


__all__ = ["FORMATS", "ArraySource", "ImageStack", "MultiPageTiff", "TensorStoreSource", "VolumeSource",
           "detect_format", "open_source"]  # fmt: skip
