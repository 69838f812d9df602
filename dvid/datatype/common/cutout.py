"""Cutouts: a 3-D volume read answered as a file analysts open without dvid (ndstore's formats).

A raw volume GET answers raw little-endian voxels by default. ``?format=`` (or, without it, the
``Accept`` header) asks for the same voxels, shaped (z, y, x) (rgba8: (z, y, x, 4) uint8) in the
instance's dtype, as one of:

========  =========================  =========================================================
npz       application/x-npz          ``np.load(io.BytesIO(body))["data"]`` (a stored zip: no
                                     deflate), beside 0-d arrays of the metadata below
hdf5      application/x-hdf5         ``h5py.File(io.BytesIO(body))["data"]``, the metadata as
                                     the dataset's attributes
tiff      image/tiff                 ``tifffile.imread(io.BytesIO(body))``: one page per z, the
                                     metadata as JSON in the first page's ImageDescription
blosc     application/x-blosc        ``blosc2.unpack_tensor(body)``: a Blosc2 frame (zstd,
                                     shuffle) with the shape and dtype
========  =========================  =========================================================

The metadata: ``instance`` and ``uuid`` read, ``offset`` and ``voxel_size`` as [x, y, z] (DVID's
order, as in the request path and the instance's info), ``voxel_units``, and what the type adds
(labelmap: ``scale``, ``supervoxels``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dvid.errors import BadRequest, NotAcceptable

#: The raw default's media type.
RAW_MEDIA_TYPE = "application/octet-stream"

Metadata = Mapping[str, Any]


@dataclass(frozen=True)
class CutoutFormat:
    name: str
    media_type: str
    extension: str
    encode: Callable[[np.ndarray, Metadata], bytes | memoryview]


def _npz(vol: np.ndarray, meta: Metadata) -> memoryview:
    out = io.BytesIO()
    arrays: dict[str, Any] = {"data": vol, **{key: np.asarray(value) for key, value in meta.items()}}
    np.savez(out, **arrays)
    return out.getbuffer()


def _hdf5(vol: np.ndarray, meta: Metadata) -> memoryview:
    import h5py

    out = io.BytesIO()
    with h5py.File(out, "w") as f:
        dataset = f.create_dataset("data", data=vol)
        dataset.attrs.update(meta)
    return out.getbuffer()


def _tiff(vol: np.ndarray, meta: Metadata) -> memoryview:
    import tifffile

    out = io.BytesIO()
    rgba = vol.ndim == 4
    tifffile.imwrite(
        out,
        vol,
        photometric="rgb" if rgba else "minisblack",
        extrasamples=("unassalpha",) if rgba else None,
        metadata=json.loads(json.dumps(dict(meta))),  # plain JSON values (tuples as lists)
    )
    return out.getbuffer()


def _blosc(vol: np.ndarray, meta: Metadata) -> bytes:
    import blosc2

    return blosc2.pack_tensor(vol)  # bytes when not written to a path


#: The cutout formats by name, in the order they are listed.
FORMATS: dict[str, CutoutFormat] = {
    f.name: f
    for f in (
        CutoutFormat("npz", "application/x-npz", "npz", _npz),
        CutoutFormat("hdf5", "application/x-hdf5", "h5", _hdf5),
        CutoutFormat("tiff", "image/tiff", "tif", _tiff),
        CutoutFormat("blosc", "application/x-blosc", "b2frame", _blosc),
    )
}
#: Other names ``?format=`` takes for them.
ALIASES = {"h5": "hdf5", "tif": "tiff", "blosc2": "blosc"}
#: The media types a volume read may answer with: the raw default first.
MEDIA_TYPES = (RAW_MEDIA_TYPE, *(f.media_type for f in FORMATS.values()))


def parse_format(value: str) -> CutoutFormat:
    """The cutout format ``?format=`` names (case-insensitive; h5, tif, blosc2 accepted), or a 400."""
    name = value.strip().lower()
    fmt = FORMATS.get(ALIASES.get(name, name))
    if fmt is None:
        raise BadRequest(f'unknown volume format "{value}": use one of {", ".join(FORMATS)}')
    return fmt


def _accept_ranges(accept: str) -> list[tuple[str, float]]:
    """``(media range, q)`` of each entry of an Accept header, lower-cased; malformed q counts as 0."""
    out = []
    for entry in accept.split(","):
        media, *params = (part.strip() for part in entry.split(";"))
        if not media:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        out.append((media.lower(), q))
    return out


def negotiate(accept: str | None) -> CutoutFormat | None:
    """The answer an Accept header asks of a volume read: a cutout format, or None for raw voxels.

    Each media type the read can answer (raw first, then the cutout formats in order) takes the q
    of the most specific range matching it (exact, then ``type/*``, then ``*/*``); the highest q
    wins, and among equal q the more specific match, then the earlier type, so ``*/*`` (and no
    Accept at all) stays raw. A header none of whose ranges matches any of them is a 406.
    """
    if accept is None or not accept.strip():
        return None
    ranges = _accept_ranges(accept)
    best: tuple[float, int, int] | None = None
    choice = None
    for order, media_type in enumerate(MEDIA_TYPES):
        kind = media_type.split("/")[0]
        matches = [
            (specificity, q)
            for media, q in ranges
            for specificity, pattern in ((2, media_type), (1, f"{kind}/*"), (0, "*/*"))
            if media == pattern
        ]
        if not matches:
            continue
        specificity, q = max(matches)
        if q > 0 and (best is None or (q, specificity, -order) > best):
            best, choice = (q, specificity, -order), media_type
    if choice is None:
        raise NotAcceptable(
            f'no volume answer matches Accept "{accept}": the media types are {", ".join(MEDIA_TYPES)}'
        )
    return None if choice == RAW_MEDIA_TYPE else next(f for f in FORMATS.values() if f.media_type == choice)


def requested(query: Mapping[str, str], accept: str | None) -> CutoutFormat | None:
    """The cutout format of a 3-D volume read, or None for raw voxels: ``?format=`` first (with
    ``compression=`` a 400: a cutout format is the whole answer), else, without ``compression=``,
    the Accept header (:func:`negotiate`)."""
    value = query.get("format")
    if value is not None:
        fmt = parse_format(value)
        if query.get("compression"):
            raise BadRequest(f"format={fmt.name} and compression= cannot be combined: choose one")
        return fmt
    if query.get("compression"):
        return None
    return negotiate(accept)


def encode(fmt: CutoutFormat, vol: np.ndarray, meta: Metadata) -> bytes | memoryview:
    """``vol`` (z, y, x[, channels]) with its metadata as a file of format ``fmt``."""
    return fmt.encode(np.ascontiguousarray(vol), meta)


def filename(fmt: CutoutFormat, instance: str, size: tuple[int, ...], offset: tuple[int, ...]) -> str:
    """A file name for the Content-Disposition of a cutout: instance, size and offset (x, y, z)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in instance)
    return f"{safe}_{'x'.join(map(str, size))}_at_{'_'.join(map(str, offset))}.{fmt.extension}"


#: The help text's description of the formats, shared by every type whose volumes they serve.
HELP = """\
Cutout formats. A 3-D raw (or isotropic) GET also answers as a file analysts open without dvid,
chosen by ?format= or, without it, by the Accept header:
    format=npz    application/x-npz    np.load(io.BytesIO(body))["data"]
    format=hdf5   application/x-hdf5   h5py.File(io.BytesIO(body), "r")["data"]   (also h5)
    format=tiff   image/tiff           tifffile.imread(io.BytesIO(body)), a page per z (also tif)
    format=blosc  application/x-blosc  blosc2.unpack_tensor(body)   (a Blosc2 frame, zstd + shuffle)
The array is (z, y, x) in the instance's dtype ((z, y, x, 4) uint8 for rgba8), the voxels of the
raw read byte for byte (scale, roi and the type's other read options apply). Metadata: instance,
uuid, offset and voxel_size as [x, y, z], voxel_units (and what the type adds) as the npz's
other arrays, the HDF5 dataset's attributes, or JSON in the TIFF's ImageDescription. The file is
built in memory, so the box must fit max_body_bytes (413 otherwise, as for compressed reads).
?format= beats Accept; format= with compression= is a 400, and so is format= on a 2-D slice or
with a /jpg volume; compression= without format= leaves Accept unread. Accept picks the type of
highest q among application/octet-stream (raw) and the four above (an exact match beats type/*,
which beats */*; ties go to raw), so */* or no Accept stays raw; an Accept that matches none of
them (e.g. only image/png) is a 406. Unknown formats are a 400 listing these.
"""
