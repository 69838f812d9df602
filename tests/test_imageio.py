"""Image output, the JPEG block codec and isotropic resizing (dvid.datatype.common.imageio)."""

from __future__ import annotations

import dataclasses
import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from dvid.datatype.common.imageio import (
    JPEG_DEFAULT_QUALITY,
    ImageFormat,
    encode_bmp_rgba,
    encode_png_rgba16,
    encode_slice,
    encode_volume_jpeg,
    isotropic_resize,
    jpeg_decode_block,
    jpeg_encode_block,
    parse_image_format,
)
from dvid.datatype.common.voxels import VOXEL_FORMATS
from dvid.errors import BadRequest

PNG = ImageFormat("png")
JPEG = ImageFormat("jpeg")
TIFF = ImageFormat("tiff")
BMP = ImageFormat("bmp")


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def parse_png(data: bytes) -> tuple[dict[bytes, bytes], bytes]:
    """Minimal PNG reader: check signature and CRCs; return IHDR/IEND payloads and the joined IDAT."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, idat, order = 8, {}, b"", []
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        ctype, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        assert crc == zlib.crc32(ctype + body)
        order.append(ctype)
        if ctype == b"IDAT":
            idat += body
        else:
            chunks[ctype] = body
        pos += 12 + length
    assert order[0] == b"IHDR" and order[-1] == b"IEND" and b"IDAT" in order
    return chunks, zlib.decompress(idat)


def smooth_block(bz: int, by: int, bx: int) -> np.ndarray:
    z, y, x = np.meshgrid(np.arange(bz), np.arange(by), np.arange(bx), indexing="ij")
    return (40 + 3 * x + 2 * y + z).astype(np.uint8)


# ---------------------------------------------------------------- format parsing


@pytest.mark.parametrize(
    ("text", "kind", "quality", "ctype"),
    [
        (None, "png", 80, "image/png"),
        ("", "png", 80, "image/png"),
        ("png", "png", 80, "image/png"),
        ("PNG", "png", 80, "image/png"),
        ("jpg", "jpeg", 80, "image/jpeg"),
        ("jpeg", "jpeg", 80, "image/jpeg"),
        ("jpg:95", "jpeg", 95, "image/jpeg"),
        ("jpeg:1", "jpeg", 1, "image/jpeg"),
        ("jpeg:100", "jpeg", 100, "image/jpeg"),
        ("jpg:007", "jpeg", 7, "image/jpeg"),
        ("tif", "tiff", 80, "image/tiff"),
        ("tiff", "tiff", 80, "image/tiff"),
        ("bmp", "bmp", 80, "image/bmp"),
    ],
)
def test_parse_image_format(text, kind, quality, ctype):
    fmt = parse_image_format(text)
    assert (fmt.kind, fmt.quality, fmt.content_type) == (kind, quality, ctype)


@pytest.mark.parametrize("text", ["gif", "jpgx", "webp", "png:5", "tif:9", " png", "raw"])
def test_parse_unknown_format(text):
    with pytest.raises(BadRequest) as err:
        parse_image_format(text)
    assert err.value.message == f'unknown image format "{text}"'
    assert err.value.status == 400


@pytest.mark.parametrize("text", ["jpg:0", "jpg:101", "jpeg:", "jpg:abc", "jpg:-5", "jpg:8.5", "jpg:1000"])
def test_parse_bad_jpeg_quality(text):
    with pytest.raises(BadRequest, match="bad JPEG quality"):
        parse_image_format(text)


def test_image_format_is_frozen_and_validated():
    fmt = parse_image_format("jpg:50")
    assert fmt == ImageFormat("jpeg", 50)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fmt.quality = 3  # type: ignore[misc]
    with pytest.raises(ValueError):
        ImageFormat("gif")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ImageFormat("jpeg", 0)
    assert JPEG_DEFAULT_QUALITY == 80


# ---------------------------------------------------------------- slices


def test_uint8_png_tiff_bmp_round_trip():
    plane = np.arange(7 * 5, dtype=np.uint8).reshape(7, 5) * 7
    for fmt in (PNG, TIFF, BMP):
        img = decode(encode_slice(plane, "uint8", fmt))
        assert img.mode in ("L", "P")
        assert img.size == (5, 7)
        np.testing.assert_array_equal(np.asarray(img.convert("L")), plane)
    assert encode_slice(plane, "uint8", TIFF)[:2] in (b"II", b"MM")
    assert decode(encode_slice(plane, "uint8", TIFF)).info["compression"] == "tiff_adobe_deflate"


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.dtype("<u2"), hnp.array_shapes(min_dims=2, max_dims=2, max_side=9)))
def test_uint16_png_is_16bit_gray(plane):
    data = encode_slice(plane, "uint16", PNG)
    chunks, _ = parse_png(data)
    assert chunks[b"IHDR"][8:10] == bytes([16, 0])  # bit depth 16, gray
    img = decode(data)
    assert img.mode == "I;16"
    np.testing.assert_array_equal(np.asarray(img), plane)


def test_uint16_tiff_and_bmp():
    plane = np.array([[0, 1, 256, 65535], [300, 4096, 40000, 255]], dtype="<u2")
    np.testing.assert_array_equal(np.asarray(decode(encode_slice(plane, "uint16", TIFF))), plane)
    bmp = decode(encode_slice(plane, "uint16", BMP)).convert("L")
    np.testing.assert_array_equal(np.asarray(bmp), plane >> 8)


def test_big_endian_input_encodes_like_little_endian():
    plane = np.array([[1, 2], [513, 65534]], dtype="<u2")
    assert encode_slice(plane.astype(">u2"), "uint16", PNG) == encode_slice(plane, "uint16", PNG)


@pytest.mark.parametrize("fmt", [PNG, TIFF, BMP])
@pytest.mark.parametrize("kind", ["uint32", "float32"])
def test_four_byte_kinds_are_rgba_of_le_bytes(kind, fmt):
    if kind == "uint32":
        plane = np.array([[0, 1, 0x01020304], [0xFFFFFFFF, 0x80000000, 12345678]], dtype="<u4")
    else:
        plane = np.array([[0.0, -1.5, np.inf], [np.nan, 3.25e-20, -0.0]], dtype="<f4")
    img = decode(encode_slice(plane, kind, fmt))
    assert img.mode == "RGBA"
    pixels = np.asarray(img)
    assert pixels.shape == (2, 3, 4)
    assert pixels.tobytes() == plane.tobytes()  # R,G,B,A = the LE value bytes


def test_rgba8_png_and_jpeg():
    plane = np.random.default_rng(1).integers(0, 256, (6, 9, 4), dtype=np.uint8)
    img = decode(encode_slice(plane, "rgba8", PNG))
    assert img.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(img), plane)
    flat = np.zeros((16, 16, 4), dtype=np.uint8)
    flat[...] = (200, 100, 50, 7)
    jpg = decode(encode_slice(flat, "rgba8", JPEG))
    assert jpg.format == "JPEG" and jpg.mode == "RGB" and jpg.size == (16, 16)
    assert np.abs(np.asarray(jpg).astype(int) - (200, 100, 50)).max() <= 3


def parse_rgba16_png(data: bytes) -> tuple[int, int, bytes]:
    chunks, raw = parse_png(data)
    width, height, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, ctype, comp, filt, interlace) == (16, 6, 0, 0, 0)
    assert chunks[b"IEND"] == b""
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, 1 + 8 * width)
    assert not rows[:, 0].any()  # filter type 0 on every row
    return width, height, rows[:, 1:].tobytes()


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.dtype("<u8"), hnp.array_shapes(min_dims=2, max_dims=2, max_side=8)))
def test_uint64_png_sample_stream_is_le_bytes(plane):
    width, height, samples = parse_rgba16_png(encode_slice(plane, "uint64", PNG))
    assert (width, height) == (plane.shape[1], plane.shape[0])
    assert samples == plane.tobytes()
    # The big-endian 16-bit samples a PNG decoder reports are pairs of LE value bytes.
    rgba16 = np.frombuffer(samples, dtype=">u2").reshape(height, width, 4).astype(np.uint64)
    le = plane.astype("<u8").view(np.uint8).reshape(height, width, 8).astype(np.uint64)
    np.testing.assert_array_equal(rgba16, (le[..., 0::2] << np.uint64(8)) | le[..., 1::2])


def test_uint64_png_readable_by_pillow():
    plane = np.array([[0x0102030405060708, 2**64 - 1]], dtype="<u8")
    img = decode(encode_slice(plane, "uint64", PNG))
    assert img.size == (2, 1) and img.mode == "RGBA"  # Pillow keeps the high byte of each sample
    np.testing.assert_array_equal(np.asarray(img)[0, 0], [8, 6, 4, 2])


def test_encode_png_rgba16_direct():
    samples = np.arange(2 * 3 * 8, dtype=np.uint8).reshape(2, 3, 8)
    width, height, raw = parse_rgba16_png(encode_png_rgba16(samples, level=1))
    assert (width, height, raw) == (3, 2, samples.tobytes())
    with pytest.raises(ValueError):
        encode_png_rgba16(np.zeros((2, 3, 4), dtype=np.uint8))


def test_encode_bmp_rgba_header():
    rgba = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    data = encode_bmp_rgba(rgba)
    assert data[:2] == b"BM" and struct.unpack_from("<I", data, 2)[0] == len(data)
    assert struct.unpack_from("<IiiHHI", data, 14) == (108, 3, 2, 1, 32, 3)
    np.testing.assert_array_equal(np.asarray(decode(data)), rgba)


def test_non_contiguous_views():
    vol = np.arange(4 * 5 * 6, dtype="<u4").reshape(4, 5, 6) * 1000003
    xz = vol[:, 2, :]  # (nz, nx) view
    yz = vol[:, :, 3]
    for plane in (xz, yz, vol[::2, 1, ::-1], vol[1].T):
        assert not plane.flags.c_contiguous
        pixels = np.asarray(decode(encode_slice(plane, "uint32", PNG)))
        assert pixels.tobytes() == np.ascontiguousarray(plane).tobytes()
    gray = (np.arange(64, dtype=np.uint8).reshape(8, 8))[:, ::2]
    np.testing.assert_array_equal(np.asarray(decode(encode_slice(gray, "uint8", PNG))), gray)


def test_uint8_jpeg_slice_and_quality():
    plane = smooth_block(1, 48, 40)[0]
    low = encode_slice(plane, "uint8", ImageFormat("jpeg", 10))
    high = encode_slice(plane, "uint8", parse_image_format("jpeg:95"))
    assert len(low) < len(high)
    img = decode(high)
    assert img.format == "JPEG" and img.mode == "L" and img.size == (40, 48)
    assert np.abs(np.asarray(img).astype(int) - plane).max() <= 3


@pytest.mark.parametrize("kind", ["uint16", "uint32", "uint64", "float32"])
def test_jpeg_needs_uint8(kind):
    plane = np.zeros((4, 4), dtype=VOXEL_FORMATS[kind].dtype)
    with pytest.raises(BadRequest, match="JPEG output needs uint8 data"):
        encode_slice(plane, kind, JPEG)


@pytest.mark.parametrize("fmt", [TIFF, BMP])
def test_uint64_only_png(fmt):
    with pytest.raises(BadRequest, match="not supported for uint64"):
        encode_slice(np.zeros((2, 2), dtype="<u8"), "uint64", fmt)


def test_slice_input_errors():
    with pytest.raises(BadRequest, match="empty"):
        encode_slice(np.zeros((0, 4), dtype=np.uint8), "uint8", PNG)
    with pytest.raises(BadRequest, match="too large for JPEG"):
        encode_slice(np.zeros((65536, 1), dtype=np.uint8), "uint8", JPEG)
    with pytest.raises(ValueError, match="dtype"):
        encode_slice(np.zeros((2, 2), dtype=np.int16), "uint16", PNG)
    with pytest.raises(ValueError, match="shape"):
        encode_slice(np.zeros((2, 2, 3), dtype=np.uint8), "rgba8", PNG)
    with pytest.raises(ValueError, match="shape"):
        encode_slice(np.zeros((2, 2, 2), dtype=np.uint8), "uint8", PNG)
    with pytest.raises(ValueError, match="unknown value kind"):
        encode_slice(np.zeros((2, 2), dtype=np.uint8), "int8", PNG)


# ---------------------------------------------------------------- volumes and JPEG blocks


def test_encode_volume_jpeg_stacks_xy_slices():
    vol = np.zeros((3, 16, 24), dtype=np.uint8)
    vol[0], vol[1], vol[2] = 20, 120, 230
    img = decode(encode_volume_jpeg(vol, 90))
    assert img.format == "JPEG" and img.mode == "L" and img.size == (24, 48)
    pixels = np.asarray(img).astype(int).reshape(3, 16, 24)
    for z, value in enumerate((20, 120, 230)):
        assert np.abs(pixels[z, 2:-2] - value).max() <= 4  # away from the seams
    assert len(encode_volume_jpeg(vol)) > 0


def test_encode_volume_jpeg_errors():
    with pytest.raises(BadRequest, match="quality"):
        encode_volume_jpeg(np.zeros((1, 8, 8), dtype=np.uint8), 0)
    with pytest.raises(BadRequest, match="too large for JPEG"):
        encode_volume_jpeg(np.zeros((1100, 60, 1), dtype=np.uint8), 80)
    with pytest.raises(BadRequest, match="empty"):
        encode_volume_jpeg(np.zeros((0, 8, 8), dtype=np.uint8), 80)
    with pytest.raises(ValueError):
        encode_volume_jpeg(np.zeros((1, 8, 8), dtype=np.uint16), 80)
    with pytest.raises(ValueError):
        encode_volume_jpeg(np.zeros((8, 8), dtype=np.uint8), 80)


@pytest.mark.parametrize("shape", [(8, 16, 32), (32, 32, 32), (2, 3, 5)])
def test_jpeg_block_round_trip(shape):
    block = smooth_block(*shape)
    data = jpeg_encode_block(block)
    img = decode(data)
    assert img.mode == "L" and img.size == (shape[2], shape[1] * shape[0])
    out = jpeg_decode_block(data, shape)
    assert out.shape == shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - block).max() <= 4
    assert np.abs(jpeg_decode_block(jpeg_encode_block(block, 100), shape).astype(int) - block).max() <= 1


def test_jpeg_block_decode_errors():
    data = jpeg_encode_block(smooth_block(4, 8, 8))
    with pytest.raises(BadRequest, match=r"JPEG block is 8x32 pixels, expected 8x64"):
        jpeg_decode_block(data, (8, 8, 8))
    with pytest.raises(BadRequest, match="cannot decode JPEG block"):
        jpeg_decode_block(b"not a jpeg", (4, 8, 8))
    with pytest.raises(BadRequest, match="cannot decode JPEG block"):
        jpeg_decode_block(data[: len(data) // 2], (4, 8, 8))
    color = io.BytesIO()
    Image.new("RGB", (8, 32), (1, 2, 3)).save(color, format="JPEG")
    with pytest.raises(BadRequest, match="grayscale"):
        jpeg_decode_block(color.getvalue(), (4, 8, 8))


# ---------------------------------------------------------------- isotropic resize


def box_reference(src: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Literal definition: magnify each pixel to out_h x out_w, then average in_h x in_w cells."""
    in_h, in_w = src.shape[:2]
    big = np.repeat(np.repeat(src.astype(object), out_h, axis=0), out_w, axis=1)
    cells = big.reshape(out_h, in_h, out_w, in_w, *src.shape[2:]).sum(axis=(1, 3))
    return cells / (in_h * in_w) if src.dtype.kind == "f" else cells // (in_h * in_w)


sizes = st.integers(1, 7)
uint_dtypes = st.sampled_from([np.dtype("u1"), np.dtype("<u2"), np.dtype("<u4"), np.dtype("<u8")])


@settings(max_examples=60, deadline=None)
@given(st.data(), uint_dtypes, sizes, sizes, sizes, sizes)
def test_box_resize_matches_reference(data, dtype, in_h, in_w, out_h, out_w):
    elements = st.integers(0, int(np.iinfo(dtype).max))
    src = data.draw(hnp.arrays(dtype, (in_h, in_w), elements=elements))
    out = isotropic_resize(src, out_h, out_w, True)
    assert out.dtype == dtype and out.shape == (out_h, out_w)
    np.testing.assert_array_equal(out.astype(object), box_reference(src, out_h, out_w))
    assert out.max() <= src.max() and out.min() >= src.min()


def test_box_resize_uint64_extremes():
    src = np.array([[2**64 - 1, 2**64 - 2, 2**63 + 5], [2**64 - 1, 7, 2**64 - 3]], dtype="<u8")
    for out_h, out_w in [(1, 1), (3, 2), (5, 7), (2, 3)]:
        out = isotropic_resize(src, out_h, out_w, True)
        np.testing.assert_array_equal(out.astype(object), box_reference(src, out_h, out_w))
    const = np.full((3, 5), 2**64 - 1, dtype="<u8")
    assert (isotropic_resize(const, 7, 2, True) == 2**64 - 1).all()


def test_box_resize_integer_factors_and_channels():
    src = np.random.default_rng(2).integers(0, 256, (4, 6, 4), dtype=np.uint8)
    up = isotropic_resize(src, 12, 6, True)
    np.testing.assert_array_equal(up, np.repeat(src, 3, axis=0))
    down = isotropic_resize(src, 2, 3, True)
    expect = src.reshape(2, 2, 3, 2, 4).astype(int).sum(axis=(1, 3)) // 4
    np.testing.assert_array_equal(down, expect)
    assert down.shape == (2, 3, 4) and down.dtype == np.uint8


def test_box_resize_float32():
    src = np.array([[0.0, 1.0, 2.0], [4.0, np.nan, 8.0], [1.5, 2.5, -3.0]], dtype="<f4")
    out = isotropic_resize(src, 5, 3, True)
    assert out.dtype == np.float32 and out.shape == (5, 3)
    np.testing.assert_allclose(out[0], src[0])
    assert np.isnan(out[1:4, 1]).all() and not np.isnan(np.delete(out, 1, axis=1)).any()  # NaN stays local
    finite = np.where(np.isnan(src), 0, src)
    np.testing.assert_allclose(
        isotropic_resize(finite, 2, 2, True), box_reference(finite, 2, 2).astype(float), rtol=1e-6
    )


@settings(max_examples=30, deadline=None)
@given(sizes, sizes, sizes, sizes)
def test_nearest_resize(in_h, in_w, out_h, out_w):
    src = np.arange(in_h * in_w, dtype="<u8").reshape(in_h, in_w) + 2**63
    out = isotropic_resize(src, out_h, out_w, False)
    for i in range(out_h):
        for j in range(out_w):
            assert out[i, j] == src[i * in_h // out_h, j * in_w // out_w]


def test_resize_edge_cases():
    src = np.arange(6, dtype=np.uint8).reshape(2, 3)
    same = isotropic_resize(src, 2, 3, True)
    np.testing.assert_array_equal(same, src)
    assert same is not src
    assert isotropic_resize(src, 0, 3, True).shape == (0, 3)
    np.testing.assert_array_equal(isotropic_resize(src[:0], 2, 2, True), np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError):
        isotropic_resize(src, -1, 3, False)
