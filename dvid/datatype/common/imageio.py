"""2-D image output for the imageblk family, the JPEG block codec, and isotropic slice resizing.

Pure numpy/Pillow helpers with no storage or HTTP knowledge.  Arrays follow the DVID voxel order: a 2-D
plane is ``(height, width)`` C-order (rows = the slower slice axis), rgba8 planes are ``(height, width, 4)``,
volumes and blocks are ``(nz, ny, nx)``; multi-byte values are little-endian (any byte order is accepted on
input).

How each value kind becomes an image (spec §1.1):

=========  ===================================================================================
uint8      8-bit gray (PNG, JPEG, TIFF, BMP)
uint16     16-bit gray (PNG, TIFF); BMP gets the high byte as 8-bit gray (what Go's BMP encoder does)
uint32     8-bit RGBA whose R,G,B,A bytes are the little-endian value bytes (PNG, TIFF, BMP)
float32    as uint32 (the little-endian IEEE-754 bytes)
uint64     16-bit RGBA PNG whose sample byte stream is the little-endian value bytes (PNG only)
rgba8      8-bit RGBA (PNG, TIFF, BMP); JPEG drops alpha (RGB)
=========  ===================================================================================

JPEG is only possible for one-byte channels (uint8, rgba8).  Unlike Go's PNG encoder, which silently drops
the alpha channel when every alpha byte is 255, RGBA outputs here always carry alpha (decoded pixels are the
same either way).
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
from PIL import Image

from dvid.datatype.common.voxels import voxel_format
from dvid.errors import BadRequest

ImageKind = Literal["png", "jpeg", "tiff", "bmp"]

JPEG_DEFAULT_QUALITY: Final = 80
JPEG_MAX_DIMENSION: Final = 65535
"""Largest width or height a baseline JPEG can describe."""

"""Little-endian numpy dtype of one channel of each value kind (rgba8 has 4 channels)."""

_CONTENT_TYPES: Final[dict[str, str]] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "tiff": "image/tiff",
    "bmp": "image/bmp",
}
_FORMAT_NAMES: Final[dict[str, ImageKind]] = {
    "": "png",
    "png": "png",
    "jpg": "jpeg",
    "jpeg": "jpeg",
    "tif": "tiff",
    "tiff": "tiff",
    "bmp": "bmp",
}
_QUALITY_RE: Final = re.compile(r"[0-9]{1,3}")


@dataclass(frozen=True, slots=True)
class ImageFormat:
    """An output image format: ``kind`` plus the JPEG ``quality`` (1..100, ignored by other kinds)."""

    kind: ImageKind = "png"
    quality: int = JPEG_DEFAULT_QUALITY

    def __post_init__(self) -> None:
        if self.kind not in _CONTENT_TYPES:
            raise ValueError(f"unknown image kind {self.kind!r}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"JPEG quality {self.quality} outside 1..100")

    @property
    def content_type(self) -> str:
        """The HTTP Content-Type of this format."""
        return _CONTENT_TYPES[self.kind]


PNG: Final = ImageFormat("png")


def parse_image_format(fmt: str | None) -> ImageFormat:
    """Parse the optional trailing ``/<format>`` path part: ``png`` (default), ``jpg[:Q]``/``jpeg[:Q]``,
    ``tif``/``tiff``, ``bmp`` (case-insensitive).  A ``:Q`` suffix is only valid for JPEG."""
    if fmt is None:
        return PNG
    name, sep, qtext = fmt.lower().partition(":")
    kind = _FORMAT_NAMES.get(name)
    if kind is None or (sep and kind != "jpeg"):
        raise BadRequest(f'unknown image format "{fmt}"')
    if not sep:
        return ImageFormat(kind)
    quality = int(qtext) if _QUALITY_RE.fullmatch(qtext) else 0
    if not 1 <= quality <= 100:
        raise BadRequest(f'bad JPEG quality "{qtext}" in image format "{fmt}": must be an integer 1..100')
    return ImageFormat("jpeg", quality)


def _check_quality(quality: int) -> None:
    if not 1 <= quality <= 100:
        raise BadRequest(f"JPEG quality {quality} outside 1..100")


def _normalize(plane: np.ndarray, value_kind: str) -> np.ndarray:
    """Check a plane against its value kind; return it C-contiguous and little-endian."""
    fmt = voxel_format(value_kind)
    fmt.check(plane, 2, "plane", "height, width")
    return np.ascontiguousarray(plane, dtype=fmt.dtype)


def _check_size(width: int, height: int, kind: str) -> None:
    if width <= 0 or height <= 0:
        raise BadRequest(f"cannot encode an empty {width}x{height} image")
    if kind == "jpeg" and max(width, height) > JPEG_MAX_DIMENSION:
        raise BadRequest(
            f"{width}x{height} image is too large for JPEG (at most {JPEG_MAX_DIMENSION} pixels per side)"
        )


def _save(img: Image.Image, **params: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, **params)
    return buf.getvalue()


def _png_chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))


def encode_png_rgba16(samples: np.ndarray, level: int = 6) -> bytes:
    """Write a 16-bit RGBA PNG (IHDR bit depth 16, colour type 6, no interlace) from raw sample bytes.

    ``samples`` is a uint8 array of shape ``(height, width, 8)`` holding each pixel's bytes exactly as PNG
    stores them: R high, R low, G high, G low, B high, B low, A high, A low.  Every row is emitted with
    filter type 0 in a single zlib stream (split into IDAT chunks of at most 1 GiB), so the decompressed
    IDAT is ``b"\\x00" + row bytes`` per row.
    """
    if samples.dtype != np.uint8 or samples.ndim != 3 or samples.shape[2] != 8:
        raise ValueError(f"samples must be uint8 (height, width, 8), got {samples.dtype} {samples.shape}")
    height, width = samples.shape[:2]
    _check_size(width, height, "png")
    rows = np.zeros((height, 1 + 8 * width), dtype=np.uint8)
    rows[:, 1:] = samples.reshape(height, 8 * width)
    idat = zlib.compress(rows.data, level)
    step = 1 << 30
    out = [b"\x89PNG\r\n\x1a\n", _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0))]
    out += [_png_chunk(b"IDAT", idat[i : i + step]) for i in range(0, len(idat), step)]
    out.append(_png_chunk(b"IEND", b""))
    return b"".join(out)


def encode_bmp_rgba(rgba: np.ndarray) -> bytes:
    """Write a 32-bit BMP with an alpha channel (BITMAPV4HEADER, BI_BITFIELDS, bottom-up BGRA rows).

    Pillow's own BMP writer drops alpha, which would lose the high byte of uint32/float32 values.
    """
    height, width = rgba.shape[:2]
    _check_size(width, height, "bmp")
    pixels = np.ascontiguousarray(rgba[::-1, :, [2, 1, 0, 3]]).tobytes()
    offset = 14 + 108
    file_header = struct.pack("<2sIHHI", b"BM", offset + len(pixels), 0, 0, offset)
    masks = (0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000)
    dib = struct.pack("<IiiHHIIiiII", 108, width, height, 1, 32, 3, len(pixels), 2835, 2835, 0, 0)
    dib += struct.pack("<4I4s", *masks, b"BGRs") + bytes(48)  # sRGB colour space; no endpoints/gamma
    return file_header + dib + pixels


def encode_slice(plane: np.ndarray, value_kind: str, fmt: ImageFormat) -> bytes:
    """Encode one 2-D slice of ``value_kind`` voxels (see the module table) in ``fmt``.

    Raises BadRequest for an empty plane, JPEG of multi-byte data, TIFF/BMP of uint64, or a JPEG side
    longer than 65535; ValueError if the plane's shape or dtype does not fit ``value_kind``.
    """
    arr = _normalize(plane, value_kind)
    height, width = arr.shape[:2]
    _check_size(width, height, fmt.kind)
    if fmt.kind == "jpeg":
        if value_kind not in ("uint8", "rgba8"):
            raise BadRequest(f"JPEG output needs uint8 data, not {value_kind}")
        img = Image.fromarray(arr[:, :, :3] if value_kind == "rgba8" else arr)
        return _save(img, format="JPEG", quality=fmt.quality)
    if value_kind == "uint64":
        if fmt.kind != "png":
            raise BadRequest(f"{fmt.kind.upper()} output is not supported for uint64 data; use png")
        return encode_png_rgba16(arr.view(np.uint8).reshape(height, width, 8))
    if value_kind in ("uint32", "float32"):
        arr = arr.view(np.uint8).reshape(height, width, 4)
    elif value_kind == "uint16" and fmt.kind == "bmp":
        arr = (arr >> 8).astype(np.uint8)
    if fmt.kind == "bmp":
        return encode_bmp_rgba(arr) if arr.ndim == 3 else _save(Image.fromarray(arr), format="BMP")
    if fmt.kind == "tiff":
        return _save(Image.fromarray(arr), format="TIFF", compression="tiff_adobe_deflate")
    return _save(
        Image.fromarray(arr), format="PNG", compress_level=1
    )  # speed over size: slices are transient


def _gray_jpeg(vol: np.ndarray, quality: int, what: str) -> bytes:
    if vol.ndim != 3 or vol.dtype != np.uint8:
        raise ValueError(f"{what} must be a uint8 (nz, ny, nx) array, got {vol.dtype} {vol.shape}")
    _check_quality(quality)
    nz, ny, nx = vol.shape
    _check_size(nx, ny * nz, "jpeg")
    img = Image.fromarray(np.ascontiguousarray(vol).reshape(nz * ny, nx))
    return _save(img, format="JPEG", quality=quality)


def encode_volume_jpeg(vol: np.ndarray, quality: int = JPEG_DEFAULT_QUALITY) -> bytes:
    """Encode a uint8 ``(nz, ny, nx)`` volume as one gray JPEG of width nx and height ny*nz (XY slices
    stacked top to bottom by increasing z), as neuroglancer's RAW path expects."""
    return _gray_jpeg(vol, quality, "volume")


def jpeg_encode_block(block: np.ndarray, quality: int = JPEG_DEFAULT_QUALITY) -> bytes:
    """Encode a uint8 ``(bz, by, bx)`` block for JPEG storage: gray JPEG of width bx, height by*bz."""
    return _gray_jpeg(block, quality, "block")


def jpeg_decode_block(data: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """Decode a gray JPEG block back to a ``(bz, by, bx)`` uint8 array (lossy).

    Raises BadRequest if the bytes are not a gray JPEG or its size is not ``bx`` x ``by*bz``.
    """
    bz, by, bx = shape
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as img:
            if img.mode != "L":
                raise BadRequest(f"JPEG block must be grayscale, got mode {img.mode}")
            if img.size != (bx, by * bz):
                raise BadRequest(
                    f"JPEG block is {img.size[0]}x{img.size[1]} pixels, expected {bx}x{by * bz} "
                    f"for block size {bx}x{by}x{bz}"
                )
            pixels = np.asarray(img, dtype=np.uint8)
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise BadRequest(f"cannot decode JPEG block: {exc}") from None
    return pixels.reshape(bz, by, bx)


def _box_axis(a: np.ndarray, dst_n: int) -> np.ndarray:
    """Box-filter sums along axis 0: source sample k spans ``[k*dst_n, (k+1)*dst_n)`` of an implied
    intermediate axis of length src_n*dst_n, and destination i sums ``[i*src_n, (i+1)*src_n)`` of it.

    Built from at most src_n+dst_n (source, destination, overlap) segments and ``np.add.reduceat``: exact
    for integers (wrapping arithmetic is fine as long as true sums fit) and NaN stays local for floats.
    """
    src_n = a.shape[0]
    bounds = np.union1d(np.arange(dst_n + 1, dtype=np.int64) * src_n, np.arange(src_n + 1) * dst_n)
    starts = bounds[:-1]
    lengths = np.diff(bounds).astype(a.dtype).reshape(-1, *([1] * (a.ndim - 1)))
    firsts = np.searchsorted(starts, np.arange(dst_n, dtype=np.int64) * src_n)
    return np.add.reduceat(a[starts // dst_n] * lengths, firsts, axis=0)


def _box_sums(a: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    return np.swapaxes(_box_axis(np.swapaxes(_box_axis(a, out_h), 0, 1), out_w), 0, 1)


def isotropic_resize(plane: np.ndarray, out_h: int, out_w: int, interpolable: bool) -> np.ndarray:
    """Resize a ``(h, w[, channels])`` plane to ``(out_h, out_w[, channels])`` keeping its dtype.

    Interpolable data: box filter (nearest-neighbour magnify by ``out`` to an implied intermediate of
    ``h*out_h`` x ``w*out_w``, then average each ``h`` x ``w`` cell), integer results floored, per channel;
    floats are averaged in float64.  Supported interpolable dtypes: unsigned ints up to 64 bits and floats.
    Otherwise nearest neighbour with ``src = dst * srcN // dstN``.  An empty source gives zeros.
    """
    if out_h < 0 or out_w < 0:
        raise ValueError(f"negative output size {out_w}x{out_h}")
    in_h, in_w = plane.shape[:2]
    out_shape = (out_h, out_w, *plane.shape[2:])
    if (in_h, in_w) == (out_h, out_w):
        return plane.copy()
    if 0 in (in_h, in_w, out_h, out_w):
        return np.zeros(out_shape, dtype=plane.dtype)
    if not interpolable:
        ys = np.arange(out_h, dtype=np.int64) * in_h // out_h
        xs = np.arange(out_w, dtype=np.int64) * in_w // out_w
        return plane[ys[:, None], xs[None, :]]
    count = in_h * in_w
    if plane.dtype.kind == "f":
        return (_box_sums(plane.astype(np.float64), out_h, out_w) / count).astype(plane.dtype)
    if plane.dtype.kind not in "ub":
        raise ValueError(f"box resize does not support dtype {plane.dtype}")
    if count > 1 << 32:
        raise BadRequest(f"{in_w}x{in_h} image is too large to resize")
    n = np.uint64(count)
    if plane.dtype.itemsize < 8:
        return (_box_sums(plane.astype(np.uint64), out_h, out_w) // n).astype(plane.dtype)
    # uint64: sum the 32-bit halves separately (each sum < 2**32 * count <= 2**64), then
    # floor((hi*2**32 + lo) / n) = qh*2**32 + ql + floor((rh*2**32 + rl) / n) with rh, rl < n.
    wide = plane.astype(np.uint64)
    qh, rh = np.divmod(_box_sums(wide >> np.uint64(32), out_h, out_w), n)
    ql, rl = np.divmod(_box_sums(wide & np.uint64(0xFFFFFFFF), out_h, out_w), n)
    result = (qh << np.uint64(32)) + ql + ((rh << np.uint64(32)) + rl) // n
    return result.astype(plane.dtype)
