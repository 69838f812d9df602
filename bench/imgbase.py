"""Image baselines that use none of dvid's code: the in-process limit, EM-like test data, PNG decoding.

- :class:`InprocBlocks` is the in-process limit a uint8blk (or, with ``dtype="<u8"``, a labelblk)
  raw GET/POST is compared with: plyvel + lz4 + numpy directly on a LevelDB (LevelDB's
  compression off, 64 MiB write buffer, as dvid opens its store). Blocks of ``bs``^3 voxels are
  stored as lz4 blocks (python-lz4's ``lz4.block`` with its 4-byte length prefix) under 1 +
  12-byte keys, the block's (z, y, x) sign-biased big-endian like DVID's IZYX index so one X-row
  of blocks is one key range. A GET
  scans one iterator range per (z, y) row of blocks, decompresses each block and assembles a
  fresh numpy array; a POST splits an array into blocks, compresses them and writes them in one
  write batch; ``labels_at`` reads the voxels at many points (one get + decompression per block).
- :class:`EMVolumes` makes realistic grayscale: a smooth random field (blurred Gaussian noise,
  mean 128) plus per-voxel noise, which lz4 barely compresses, like real EM.
- :func:`decode_png_gray8` decodes an 8-bit grayscale PNG (zlib + PNG row filters; no Pillow).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import lz4.block
import numpy as np
import numpy.typing as npt
import plyvel

MiB = 1 << 20
_BIAS = 1 << 31
_MASK = 0xFFFFFFFF
_PREFIX = b"\x01"
Point = tuple[int, int, int]  # (x, y, z)


def block_key(bx: int, by: int, bz: int) -> bytes:
    """Prefix + (z, y, x) as sign-biased u32 big-endian: byte order = numeric (z, y, x) order."""
    return _PREFIX + struct.pack(">III", (bz + _BIAS) & _MASK, (by + _BIAS) & _MASK, (bx + _BIAS) & _MASK)


def _key_x(key: bytes) -> int:
    return int.from_bytes(key[9:13], "big") - _BIAS


class InprocBlocks:
    """``bs``^3 blocks of ``dtype`` voxels stored lz4-compressed in a LevelDB of their own (see the
    module doc)."""

    def __init__(self, path: Path, block: int, dtype: npt.DTypeLike = np.uint8) -> None:
        self.bs = block
        self.dtype = np.dtype(dtype)
        self.db = plyvel.DB(str(path), create_if_missing=True, compression=None, write_buffer_size=64 * MiB)
        self.raw_bytes = 0  # totals of every POST, for the compression ratio
        self.stored_bytes = 0

    def close(self) -> None:
        self.db.close()

    def _grid(self, shape: tuple[int, ...], offset: Point) -> tuple[int, int, int, int, int, int]:
        bs = self.bs
        nz, ny, nx = shape
        x, y, z = offset
        if any(v % bs for v in (nx, ny, nz, x, y, z)):
            raise ValueError(f"{shape} at {offset} is not aligned to {bs}^3 blocks")
        return x // bs, y // bs, z // bs, nx // bs, ny // bs, nz // bs

    def post(self, volume: np.ndarray, offset: Point) -> None:
        """Split a block-aligned (z, y, x) ``volume`` at voxel ``offset`` into blocks; one batch."""
        bs = self.bs
        if volume.dtype != self.dtype:
            raise ValueError(f"volume of {volume.dtype}, store of {self.dtype}")
        bx0, by0, bz0, nbx, nby, nbz = self._grid(volume.shape, offset)
        blocks = volume.reshape(nbz, bs, nby, bs, nbx, bs)
        compress = lz4.block.compress
        stored = 0
        with self.db.write_batch() as wb:
            for kz in range(nbz):
                for ky in range(nby):
                    for kx in range(nbx):
                        value = compress(np.ascontiguousarray(blocks[kz, :, ky, :, kx, :]))
                        stored += len(value)
                        wb.put(block_key(bx0 + kx, by0 + ky, bz0 + kz), value)
        self.raw_bytes += volume.nbytes
        self.stored_bytes += stored

    def get(self, size: Point, offset: Point) -> np.ndarray:
        """The block-aligned box of ``size`` (nx, ny, nz) at ``offset`` as a new (z, y, x) array."""
        bs = self.bs
        nx, ny, nz = size
        bx0, by0, bz0, nbx, nby, nbz = self._grid((nz, ny, nx), offset)
        out = np.zeros((nz, ny, nx), self.dtype)  # missing blocks read as 0, as in DVID
        decompress = lz4.block.decompress
        for kz in range(nbz):
            zs = slice(kz * bs, (kz + 1) * bs)
            for ky in range(nby):
                ys = slice(ky * bs, (ky + 1) * bs)
                start = block_key(bx0, by0 + ky, bz0 + kz)
                stop = block_key(bx0 + nbx, by0 + ky, bz0 + kz)
                for key, value in self.db.iterator(start=start, stop=stop):
                    kx = _key_x(key) - bx0
                    block = np.frombuffer(decompress(value), self.dtype).reshape(bs, bs, bs)
                    out[zs, ys, kx * bs : (kx + 1) * bs] = block
        return out

    def labels_at(self, points: np.ndarray) -> np.ndarray:
        """The voxels at (n, 3) integer (x, y, z) ``points``: one get and decompression per distinct
        block, numpy fancy indexing within it; 0 where no block is stored."""
        bs = self.bs
        out = np.zeros(len(points), self.dtype)
        blocks = points // bs
        local = points - blocks * bs
        uniq, inverse = np.unique(blocks, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(uniq) + 1))
        decompress = lz4.block.decompress
        for i, (bx, by, bz) in enumerate(uniq.tolist()):
            value = self.db.get(block_key(bx, by, bz))
            if value is None:
                continue
            block = np.frombuffer(decompress(value), self.dtype).reshape(bs, bs, bs)
            sel = order[bounds[i] : bounds[i + 1]]
            out[sel] = block[local[sel, 2], local[sel, 1], local[sel, 0]]
        return out

    @property
    def compression_ratio(self) -> float:
        """Stored / raw bytes over every POST (about 1.0 for EM-like data)."""
        return self.stored_bytes / self.raw_bytes if self.raw_bytes else float("nan")


# ---- EM-like data ----------------------------------------------------------------------------
def _box_blur(f: np.ndarray, axis: int, radius: int) -> np.ndarray:
    """Periodic box filter of width 2*radius+1 along ``axis`` (cumulative sums; float32)."""
    g = np.moveaxis(f, axis, 0)
    n, width = g.shape[0], 2 * radius + 1
    c = np.cumsum(np.concatenate([g[n - radius - 1 :], g, g[:radius]]), axis=0, dtype=np.float32)
    return np.moveaxis((c[width:] - c[:n]) / np.float32(width), 0, axis)


class EMVolumes:
    """Grayscale volumes that look like EM to a compressor: a periodic smooth field (Gaussian noise
    box-blurred twice per axis, std ~28 around 128) shifted at random per 256^3 tile, plus
    triangular per-voxel noise of +-24. lz4 stores it at ~100% of its size, like real EM."""

    TILE = 256

    def __init__(self, seed: int, radius: int = 3) -> None:
        self.rng = np.random.default_rng(seed)
        t = self.TILE
        f = self.rng.standard_normal((t, t, t), dtype=np.float32)
        for _ in range(2):
            for axis in range(3):
                f = _box_blur(f, axis, radius)
        f -= f.mean()
        f *= np.float32(28.0 / float(f.std()))
        f += np.float32(128.0)
        self.base = np.clip(f, 0, 255).astype(np.int16)

    def volume(self, shape: tuple[int, int, int]) -> np.ndarray:
        """A new (z, y, x) uint8 array of ``shape``."""
        out = np.empty(shape, np.uint8)
        t = self.TILE
        rng = self.rng
        for z in range(0, shape[0], t):
            for y in range(0, shape[1], t):
                for x in range(0, shape[2], t):
                    tz, ty, tx = min(t, shape[0] - z), min(t, shape[1] - y), min(t, shape[2] - x)
                    shift = [int(v) for v in rng.integers(0, t, 3)]
                    if (tz, ty, tx) == (t, t, t):
                        tile = np.roll(self.base, shift, axis=(0, 1, 2))
                    else:  # a small piece: gather only what is needed
                        idx = [(np.arange(n) - s) % t for n, s in zip((tz, ty, tx), shift, strict=True)]
                        tile = self.base[np.ix_(*idx)]
                    noise = rng.integers(-12, 13, (tz, ty, tx), dtype=np.int16)
                    noise += rng.integers(-12, 13, (tz, ty, tx), dtype=np.int16)
                    noise += tile
                    np.clip(noise, 0, 255, out=noise)
                    out[z : z + tz, y : y + ty, x : x + tx] = noise
        return out


# ---- PNG -------------------------------------------------------------------------------------
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def decode_png_gray8(data: bytes) -> np.ndarray:
    """Decode a non-interlaced 8-bit grayscale PNG into a (height, width) uint8 array."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG (bad signature)")
    pos = len(PNG_SIGNATURE)
    idat = bytearray()
    width = height = -1
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _comp, _filt, interlace = struct.unpack(">IIBBBBB", body)
            if (depth, color, interlace) != (8, 0, 0):
                raise ValueError(f"PNG is not 8-bit gray non-interlaced (depth {depth}, color type {color})")
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    if width < 0:
        raise ValueError("PNG has no IHDR")
    raw = np.frombuffer(zlib.decompress(bytes(idat)), np.uint8)
    if raw.size != height * (width + 1):
        raise ValueError(f"PNG data holds {raw.size} bytes, expected {height * (width + 1)}")
    rows = raw.reshape(height, width + 1)
    out = np.zeros((height, width), np.uint8)
    prev = np.zeros(width, np.uint8)
    for i in range(height):
        kind, line = int(rows[i, 0]), rows[i, 1:]
        if kind == 0:
            cur = line.copy()
        elif kind == 1:  # sub: running sum mod 256
            cur = np.cumsum(line, dtype=np.uint8)
        elif kind == 2:  # up
            cur = line + prev
        elif kind in (3, 4):  # average, Paeth: sequential, per pixel
            cur = np.zeros(width, np.uint8)
            left = 0
            for j in range(width):
                up = int(prev[j])
                if kind == 3:
                    pred = (left + up) // 2
                else:
                    ul = int(prev[j - 1]) if j else 0
                    p = left + up - ul
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - ul)
                    pred = left if pa <= pb and pa <= pc else (up if pb <= pc else ul)
                left = (int(line[j]) + pred) & 0xFF
                cur[j] = left
        else:
            raise ValueError(f"bad PNG filter type {kind} in row {i}")
        out[i] = cur
        prev = cur
    return out
