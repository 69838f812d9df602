"""DVID's compressed label Block (``labels.Block``, spec §4.3): encode, decode and cheap table reads.

A Block of ``nz x ny x nx`` voxels (each a multiple of 8) is cut into 8x8x8 sub-blocks in z, y, x order.
Its bytes: ``u32 gx, gy, gz, N``; ``N x u64`` block label table; then, unless ``N == 1`` (a solid block),
``u16 Ns`` per sub-block, ``u32`` palette entries (indices into the label table, ``Ns[i]`` per sub-block)
and, per sub-block with ``Ns >= 2``, 512 palette indices of ``ceil(log2(Ns))`` bits packed MSB-first.
``Ns == 0`` means a sub-block of label 0.  Everything is little-endian.

How it is fast without per-voxel Python: a sub-block row of 8 voxels holds ``8 * b`` bits, i.e. exactly
``b`` bytes, so a row is one right-aligned big-endian uint64 word (plus a high byte when b = 9, for
257..512 labels in a sub-block).  Decoding shifts every row word by ``b * (7 - x)`` for its 8 voxels at
once; encoding finds runs of equal labels along x (real segmentations have few), sums each run's
``index * weight`` into its row word and writes each row's last ``b`` bytes.  The encoder's label table
is sorted and its palettes are in table order: DVID's decoder takes any order, so only the table order
differs from DVID's encoder (Go map order); sizes are the same.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from dvid.errors import BadRequest

__all__ = [
    "BlockFormatError",
    "block_shape",
    "decode_block",
    "encode_block",
    "google_block",
    "label_counts",
    "label_table",
    "labels_at",
    "relabel_block",
    "solid_block",
    "with_table",
]

SUB = 8  #: sub-block edge in voxels
SUB_VOXELS = SUB**3
MAX_SUBBLOCKS = 128  #: per axis: DVID's blocks are at most 1024 voxels along each axis
MAX_WIDTH = 9  #: bits per index for 257..512 labels in a sub-block
_HEADER = struct.Struct("<4I")
_SOLID = struct.Struct("<4IQ")
_U64 = np.uint64
_LE_U64 = np.dtype("<u8")

#: Blocks whose (sub-blocks x labels) exceed this use a sort instead of a presence matrix to build palettes.
_PRESENCE_CELLS = 1 << 22
#: Decoding fills whole rows first when fewer than this fraction of sub-blocks have packed indices.
_SPARSE = 0.3
#: Label candidates are first drawn from a sample of this many run values (verified, else a full sort).
_LABEL_SAMPLE = 2048

#: Index mask for each width 0..9.
_WIDTH_MASK = np.array([(1 << b) - 1 for b in range(MAX_WIDTH + 1)], _U64)


def _row_weights() -> np.ndarray:
    """``W[b, a, L]`` = sum of ``2**(b * (7 - x))`` for x in ``a..a+L-1``, mod 2**64: a run of L voxels
    from x = a, all of index i, adds ``i * W`` (uint64 arithmetic) to its row word.  For b = 9 the
    voxel at x = 0 keeps only its low bit there (bit 63); its high 8 bits are the row's high byte."""
    weights = np.zeros((MAX_WIDTH + 1, SUB, SUB + 1), _U64)
    for b in range(1, MAX_WIDTH + 1):
        for a in range(SUB):
            for length in range(1, SUB + 1 - a):
                total = sum(1 << (b * (SUB - 1 - x)) for x in range(a, a + length))
                weights[b, a, length] = total & ((1 << 64) - 1)
    return weights.reshape(-1)


_RUN_WEIGHT = _row_weights()


class BlockFormatError(BadRequest, ValueError):
    """An encoded Block that is malformed, truncated or inconsistent (a 400 when it came with a request)."""


@dataclass(frozen=True, slots=True)
class _Layout:
    """A validated Block's sections, as views of its bytes (non-solid parts empty for a solid block)."""

    grid: tuple[int, int, int]  # (gz, gy, gx) sub-blocks
    labels: np.ndarray  # N x '<u8'
    counts: np.ndarray  # Ns per sub-block, int64
    palette: np.ndarray  # sum(Ns) x '<u4'
    widths: np.ndarray  # bits per index per sub-block, int64
    values: np.ndarray  # the packed index bytes, uint8
    end: int  # bytes the Block occupies (trailing bytes are ignored, as DVID does)

    @property
    def shape(self) -> tuple[int, int, int]:
        gz, gy, gx = self.grid
        return gz * SUB, gy * SUB, gx * SUB

    @property
    def solid(self) -> bool:
        return self.labels.size == 1

    @property
    def palette_starts(self) -> np.ndarray:
        """First palette entry of each sub-block (int64)."""
        return np.cumsum(self.counts) - self.counts

    @property
    def value_starts(self) -> np.ndarray:
        """Offset of each sub-block's packed indices in ``values`` (int64)."""
        nbytes = self.widths * (SUB_VOXELS // 8)
        return np.cumsum(nbytes) - nbytes


# ---- parsing and validation ----------------------------------------------------------------------
def _bytes_of(buf: bytes | bytearray | memoryview) -> np.ndarray:
    try:
        return np.frombuffer(buf, np.uint8)
    except (TypeError, ValueError) as exc:
        raise BlockFormatError(f"an encoded block must be a bytes-like object: {exc}") from None


def _header(data: np.ndarray) -> tuple[int, int, int, int]:
    """(gx, gy, gz, N) of a Block, checked."""
    if data.size < _HEADER.size:
        raise BlockFormatError(f"block of {data.size} bytes is shorter than its {_HEADER.size}-byte header")
    gx, gy, gz, n = _HEADER.unpack_from(data.data)
    if not all(1 <= g <= MAX_SUBBLOCKS for g in (gx, gy, gz)):
        raise BlockFormatError(
            f"block header gives {gx}x{gy}x{gz} (x, y, z) sub-blocks; each must be 1..{MAX_SUBBLOCKS}"
            f" ({SUB}..{SUB * MAX_SUBBLOCKS} voxels)"
        )
    if n == 0:
        raise BlockFormatError("block header declares 0 labels; a block holds at least 1")
    return gx, gy, gz, n


def _table_view(data: np.ndarray, n: int) -> np.ndarray:
    end = _HEADER.size + 8 * n
    if data.size < end:
        raise BlockFormatError(
            f"block truncated in its label table: {n} labels need {end} bytes, got {data.size}"
        )
    return data[_HEADER.size : end].view(_LE_U64)


def _bit_widths(counts: np.ndarray) -> np.ndarray:
    """DVID's bits per palette index: ceil(log2(Ns)), 0 for Ns <= 1 (int64)."""
    return np.frexp(np.maximum(counts - 1, 0).astype(np.float64))[1].astype(np.int64)


def _parse(buf: bytes | bytearray | memoryview) -> _Layout:
    """Check a Block's structure (all but the range of its packed indices) and view its sections."""
    data = _bytes_of(buf)
    gx, gy, gz, n = _header(data)
    labels = _table_view(data, n)
    pos = _HEADER.size + 8 * n
    empty = np.zeros(0, np.int64)
    if n == 1:
        return _Layout((gz, gy, gx), labels, empty, empty, empty, data[:0], pos)
    nsb = gx * gy * gz
    if data.size < pos + 2 * nsb:
        raise BlockFormatError(
            f"block truncated in its sub-block label counts: {nsb} sub-blocks need {pos + 2 * nsb} bytes,"
            f" got {data.size}"
        )
    counts = data[pos : pos + 2 * nsb].view("<u2").astype(np.int64)
    pos += 2 * nsb
    if counts.max() > SUB_VOXELS:
        bad = int(np.argmax(counts > SUB_VOXELS))
        raise BlockFormatError(
            f"sub-block {bad} declares {counts[bad]} labels; an 8x8x8 sub-block holds at most {SUB_VOXELS}"
        )
    total = int(counts.sum())
    if data.size < pos + 4 * total:
        raise BlockFormatError(
            f"block truncated in its sub-block palettes: {total} entries need {pos + 4 * total} bytes,"
            f" got {data.size}"
        )
    palette = data[pos : pos + 4 * total].view("<u4")
    pos += 4 * total
    if total and int(palette.max()) >= n:
        entry = int(np.argmax(palette >= n))
        owner = int(np.searchsorted(np.cumsum(counts), entry, side="right"))
        raise BlockFormatError(
            f"sub-block {owner} palette entry {int(palette[entry])} indexes past the {n}-entry label table"
        )
    widths = _bit_widths(counts)
    nvalues = int(widths.sum()) * (SUB_VOXELS // 8)
    if data.size < pos + nvalues:
        raise BlockFormatError(
            f"block truncated in its packed voxel indices: needs {pos + nvalues} bytes, got {data.size}"
        )
    return _Layout((gz, gy, gx), labels, counts, palette, widths, data[pos : pos + nvalues], pos + nvalues)


def _check_table(table: np.ndarray, n: int) -> np.ndarray:
    arr = np.asarray(table)
    if arr.ndim != 1 or arr.size != n:
        raise BlockFormatError(f"replacement label table has shape {arr.shape}; the block's table has {n}")
    if arr.dtype.kind not in "ui" or (arr.dtype.kind == "i" and arr.size and int(arr.min()) < 0):
        raise BlockFormatError(f"replacement label table must hold unsigned integer labels, got {arr.dtype}")
    return arr.astype(_U64, copy=False)


# ---- packed index rows ----------------------------------------------------------------------------
def _packed_rows(blk: _Layout) -> tuple[np.ndarray, np.ndarray | None]:
    """Each sub-block row's 8 packed indices: its last 8 bytes as one big-endian word, (nsb, 64) uint64,
    and, if any sub-block has 9-bit indices, the 9th-from-last byte of each row, (nsb, 64) uint8."""
    nsb = blk.counts.size
    rows = np.zeros((nsb, SUB * SUB), _U64)
    high = np.zeros((nsb, SUB * SUB), np.uint8) if (blk.widths == MAX_WIDTH).any() else None
    starts = blk.value_starts
    for b in np.unique(blk.widths).tolist():
        if b == 0:
            continue
        sel = np.flatnonzero(blk.widths == b)
        nbytes = b * SUB * SUB
        if sel.size == nsb:  # every sub-block has this width: the values are one (nsb, 64 b) array
            packed = blk.values[: nsb * nbytes].reshape(nsb, SUB * SUB, b)
        else:
            packed = blk.values[starts[sel][:, None] + np.arange(nbytes)].reshape(sel.size, SUB * SUB, b)
        if b == SUB:
            words = packed.view(">u8")[..., 0]
        else:
            word_bytes = np.zeros((sel.size, SUB * SUB, SUB), np.uint8)
            word_bytes[:, :, max(SUB - b, 0) :] = packed[:, :, max(b - SUB, 0) :]
            words = word_bytes.view(">u8")[..., 0]
        rows[sel] = words
        if b == MAX_WIDTH and high is not None:
            high[sel] = packed[:, :, 0]
    return rows, high


def _row_entries(
    rows: np.ndarray, high: np.ndarray | None, widths: np.ndarray, first: np.ndarray, sizes: np.ndarray
) -> Iterator[tuple[int, np.ndarray]]:
    """For x = 7 down to 0, ``(x, entries)``: the palette entry (``first + index``, int64) of voxel x of
    every row, in one reused buffer.  ``rows`` and ``high`` are as from ``_packed_rows``; ``widths``,
    ``first`` and ``sizes`` (palette size, at least 1) are per row.

    An index past its palette raises BlockFormatError when the iteration ends: until then an entry
    may be out of range, so consumers must not index with them unchecked.  By x slices, not as one
    (8, nrows) array: a few large temporaries cost more in fresh pages than the arithmetic does."""
    bits = widths.astype(_U64)
    mask = _WIDTH_MASK[widths]
    word = rows.copy()
    index = np.empty(rows.size, _U64)
    entries = index.view(np.int64)
    top = np.zeros(rows.size, _U64)
    for x in range(SUB - 1, -1, -1):
        np.bitwise_and(word, mask, out=index)
        if x == 0 and high is not None:  # 9-bit rows: x = 0 has its low bit at bit 63, the rest in high
            index |= high.astype(_U64) << _U64(1)
        np.maximum(top, index, out=top)
        entries += first
        yield x, entries
        word >>= bits
    if (top >= sizes).any():
        raise BlockFormatError("block has a packed voxel index beyond its sub-block's palette size")


# ---- public API ---------------------------------------------------------------------------------------
def block_shape(buf: bytes | bytearray | memoryview) -> tuple[int, int, int]:
    """(nz, ny, nx) voxels of an encoded Block, from its header."""
    gx, gy, gz, _ = _header(_bytes_of(buf))
    return gz * SUB, gy * SUB, gx * SUB


def label_table(buf: bytes | bytearray | memoryview) -> np.ndarray:
    """The Block's N stored labels (uint64) in table order, duplicates and zeros as stored."""
    data = _bytes_of(buf)
    _, _, _, n = _header(data)
    return _table_view(data, n).astype(_U64)


def with_table(buf: bytes | bytearray | memoryview, table: np.ndarray) -> bytes:
    """The same Block with its label table replaced by ``table`` (length N); trailing bytes dropped.

    Checks the Block's structure, not its packed indices (which would cost an unpacking)."""
    blk = _parse(buf)
    new = _check_table(table, blk.labels.size).astype(_LE_U64, copy=False)
    data = _bytes_of(buf)
    start = _HEADER.size + 8 * blk.labels.size
    return b"".join((data[: _HEADER.size].tobytes(), new.tobytes(), data[start : blk.end].tobytes()))


def relabel_block(
    buf: bytes | bytearray | memoryview, mapping_from: np.ndarray, mapping_to: np.ndarray
) -> bytes:
    """The Block with each table entry found in ``mapping_from`` replaced by its ``mapping_to`` partner
    (others kept); the packed voxels are untouched.  ``mapping_from`` must not repeat a label."""
    src = np.asarray(mapping_from).astype(_U64, copy=False).reshape(-1)
    dst = np.asarray(mapping_to).astype(_U64, copy=False).reshape(-1)
    if src.size != dst.size:
        raise ValueError(f"mapping_from has {src.size} labels, mapping_to {dst.size}")
    table = label_table(buf)
    if src.size:
        order = np.argsort(src, kind="stable")
        keys = src[order]
        if (keys[1:] == keys[:-1]).any():
            raise ValueError("mapping_from repeats a label")
        pos = np.minimum(np.searchsorted(keys, table), keys.size - 1)
        hit = keys[pos] == table
        table[hit] = dst[order[pos[hit]]]
    return with_table(buf, table)


def solid_block(label: int, shape: tuple[int, int, int]) -> bytes:
    """The 24-byte Block of ``shape`` (nz, ny, nx) voxels all ``label``."""
    gz, gy, gx = _grid(shape)
    if not 0 <= label < 1 << 64:
        raise BadRequest(f"label {label} is not a uint64")
    return _SOLID.pack(gx, gy, gz, 1, label)


def _grid(shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) != 3 or not all(
        isinstance(s, int | np.integer) and 0 < s <= SUB * MAX_SUBBLOCKS and s % SUB == 0 for s in shape
    ):
        raise BadRequest(
            f"a label block must be 3-D, sides multiples of {SUB} up to {SUB * MAX_SUBBLOCKS}, got {shape}"
        )
    nz, ny, nx = (int(s) for s in shape)
    return nz // SUB, ny // SUB, nx // SUB


def _check_out(out: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    if not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != np.dtype(_U64):
        what = f"{out.shape} {out.dtype}" if isinstance(out, np.ndarray) else type(out).__name__
        raise ValueError(f"out must be a {shape} native uint64 array to decode this block into, got {what}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    return out


def decode_block(
    buf: bytes | bytearray | memoryview, table: np.ndarray | None = None, out: np.ndarray | None = None
) -> np.ndarray:
    """The (nz, ny, nx) uint64 volume of an encoded Block (C-ordered, unless ``out`` is a view).

    ``table``, if given, stands in for the Block's label table (same length N): how a supervoxel to
    body mapping is applied at O(N) cost.  ``out``, if given, is a native uint64 array of the Block's
    shape to decode into and return, e.g. a view into a larger volume (saves a copy).  Raises
    BlockFormatError on a malformed Block; ``out`` is then partly written."""
    blk = _parse(buf)
    labels = blk.labels if table is None else _check_table(table, blk.labels.size)
    target = np.empty(blk.shape, _U64) if out is None else _check_out(out, blk.shape)
    return _decode_layout(blk, labels, target)


def decode_region(
    buf: bytes | bytearray | memoryview, region: tuple[slice, slice, slice], table: np.ndarray | None = None
) -> np.ndarray:
    """``decode_block(buf, table)[region]`` (a (z, y, x) box of whole-number slices with step 1),
    decoding only the sub-blocks the box meets: a one-voxel plane through a 64^3 block unpacks an
    eighth of it. Raises BlockFormatError as decode_block does."""
    blk = _parse(buf)
    labels = blk.labels if table is None else _check_table(table, blk.labels.size)
    bounds = [sl.indices(n) for sl, n in zip(region, blk.shape, strict=True)]
    if any(step != 1 for _, _, step in bounds):
        raise ValueError(f"decode_region takes boxes (slices of step 1), got {region}")
    shape = tuple(max(0, stop - start) for start, stop, _ in bounds)
    if blk.solid or 0 in shape:
        return np.full(shape, labels[0] if labels.size else 0, _U64)
    ranges = [range(start // SUB, (stop - 1) // SUB + 1) for start, stop, _ in bounds]
    part = _restricted(blk, ranges)
    decoded = _decode_layout(part, labels, np.empty(part.shape, _U64))
    origin = [r.start * SUB for r in ranges]
    return decoded[tuple(slice(b[0] - o, b[1] - o) for b, o in zip(bounds, origin, strict=True))]


def _spans(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenated ranges ``[start, start + length)`` as one index array."""
    ends = np.cumsum(lengths)
    return np.repeat(starts - (ends - lengths), lengths) + np.arange(int(ends[-1]) if ends.size else 0)


def _restricted(blk: _Layout, ranges: list[range]) -> _Layout:
    """The layout of the sub-blocks ``ranges`` (z, y, x ranges of sub-block indices) of ``blk``, as a
    Block of that grid over the same label table."""
    _, gy, gx = blk.grid
    zr, yr, xr = (np.arange(r.start, r.stop) for r in ranges)
    ids = ((zr[:, None, None] * gy + yr[None, :, None]) * gx + xr[None, None, :]).reshape(-1)
    counts, widths = blk.counts[ids], blk.widths[ids]
    palette = blk.palette[_spans(blk.palette_starts[ids], counts)]
    values = blk.values[_spans(blk.value_starts[ids], widths * (SUB_VOXELS // 8))]
    return _Layout((zr.size, yr.size, xr.size), blk.labels, counts, palette, widths, values, blk.end)


def _decode_layout(blk: _Layout, labels: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Decode a parsed Block with label table ``labels`` into ``target`` (of the Block's shape)."""
    if blk.solid:
        target[...] = labels[0]
        return target
    gz, gy, gx = blk.grid
    nz, ny, _ = blk.shape
    total = blk.palette.size
    # palette entry -> label; one extra entry 0 for the sub-blocks without data (Ns == 0)
    entry_labels = np.zeros(total + 1, _U64)
    entry_labels[:total] = labels[blk.palette]
    first = blk.palette_starts
    first[blk.counts == 0] = total
    sizes = np.maximum(blk.counts, 1)

    def per_row(per_subblock: np.ndarray) -> np.ndarray:  # (nsb,) -> rows in output order (z, y, sx)
        grid = per_subblock.reshape(gz, 1, gy, 1, gx)
        return np.broadcast_to(grid, (gz, SUB, gy, SUB, gx)).reshape(-1)

    def in_output_order(rows: np.ndarray) -> np.ndarray:  # (nsb, 64) -> rows in order (z, y, sx)
        return rows.reshape(gz, gy, gx, SUB, SUB).transpose(0, 3, 1, 4, 2).reshape(-1)

    # the target as (z, y, sx, x): a row of 8 voxels per (z, y, sx)
    sz, sy, sx = target.strides
    grid_rows = as_strided(target, (nz, ny, gx, SUB), (sz, sy, SUB * sx, sx))
    row_first = per_row(first)
    row_widths = per_row(blk.widths)
    rows, high = _packed_rows(blk)
    rows, high = in_output_order(rows), None if high is None else in_output_order(high)
    row_sizes = per_row(sizes)
    sparse = np.count_nonzero(blk.widths) < _SPARSE * blk.widths.size
    if sparse:  # mostly one-label sub-blocks: fill every row with its first label, then unpack the rest
        grid_rows[...] = entry_labels.take(row_first).reshape(nz, ny, gx, 1)
        packed = np.flatnonzero(row_widths)
        rows, row_widths, row_first, row_sizes = (
            a.take(packed) for a in (rows, row_widths, row_first, row_sizes)
        )
        high = None if high is None else high.take(packed)
        if target.flags.c_contiguous:
            flat, first_voxels = target.reshape(-1), packed * SUB
        else:
            at_z, at_y, at_sx = np.unravel_index(packed, (nz, ny, gx))
    voxel_labels = np.empty(rows.size, _U64)
    for x, entries in _row_entries(rows, high, row_widths, row_first, row_sizes):
        np.take(entry_labels, entries, out=voxel_labels, mode="clip")
        if not sparse:
            grid_rows[..., x] = voxel_labels.reshape(nz, ny, gx)
        elif target.flags.c_contiguous:
            flat[first_voxels + x] = voxel_labels
        else:
            grid_rows[at_z, at_y, at_sx, x] = voxel_labels
    return target


def label_counts(
    buf: bytes | bytearray | memoryview, table: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct labels (uint64, ascending) of a Block and their voxel counts (int64), label 0 included
    when present; duplicate table entries merged.  ``table`` as in ``decode_block``.

    Counts palette indices per sub-block (solid sub-blocks cost nothing) without building the volume."""
    blk = _parse(buf)
    labels = blk.labels if table is None else _check_table(table, blk.labels.size)
    nz, ny, nx = blk.shape
    if blk.solid:
        return labels.astype(_U64), np.array([nz * ny * nx], np.int64)
    total = blk.palette.size
    first = blk.palette_starts
    first[blk.counts == 0] = total
    sizes = np.maximum(blk.counts, 1)
    per_entry = np.bincount(first[blk.widths == 0], minlength=total + 1) * SUB_VOXELS
    packed = np.flatnonzero(blk.widths > 0)
    if packed.size:
        rows, high = _packed_rows(blk)
        repeat = functools.partial(np.repeat, repeats=SUB * SUB)
        each_x = _row_entries(
            rows[packed].reshape(-1),
            None if high is None else high[packed].reshape(-1),
            repeat(blk.widths[packed]),
            repeat(first[packed]),
            repeat(sizes[packed]),
        )
        for _, entries in each_x:  # bincount grows past total + 1 on a bad index; _row_entries raises
            per_entry += np.bincount(entries, minlength=total + 1)[: total + 1]
    entry_labels = np.zeros(total + 1, _U64)
    entry_labels[:total] = labels[blk.palette]
    distinct, which = _unique_inverse(entry_labels)
    counts = np.zeros(distinct.size, np.int64)
    np.add.at(counts, which, per_entry)
    present = counts > 0
    return distinct[present], counts[present]


def labels_at(
    buf: bytes | bytearray | memoryview, points: np.ndarray, table: np.ndarray | None = None
) -> np.ndarray:
    """The labels (uint64) at (n, 3) z, y, x voxel positions inside a Block, read from the palettes and
    packed indices without building the volume; ``table`` as in ``decode_block``.  Raises ValueError
    for a position outside the Block, BlockFormatError for an index beyond its sub-block's palette."""
    blk = _parse(buf)
    labels = blk.labels if table is None else _check_table(table, blk.labels.size)
    pts = np.asarray(points, dtype=np.int64).reshape(-1, 3)
    if pts.size and ((pts < 0).any() or (pts >= np.array(blk.shape)).any()):
        raise ValueError(f"a position lies outside the block's {blk.shape} (z, y, x) voxels")
    if blk.solid:
        return np.full(len(pts), labels[0], _U64)
    _, gy, gx = blk.grid
    z, y, x = pts[:, 0], pts[:, 1], pts[:, 2]
    sub = ((z >> 3) * gy + (y >> 3)) * gx + (x >> 3)
    width = blk.widths[sub]
    # the index's first bit in the sub-block's MSB-first bit stream: row (z, y) of 8 b bits, then x
    bit = blk.value_starts[sub] * 8 + (((z & 7) * SUB + (y & 7)) * SUB + (x & 7)) * width
    values = np.concatenate((blk.values, np.zeros(2, np.uint8)))  # a 9-bit index spans 2 bytes at most
    byte = bit >> 3
    word = (values[byte].astype(np.int64) << 8) | values[byte + 1]
    index = (word >> (16 - (bit & 7) - width)) & ((1 << width) - 1)
    counts = blk.counts[sub]
    if (index >= np.maximum(counts, 1)).any():
        raise BlockFormatError("block has a packed voxel index beyond its sub-block's palette size")
    out = np.zeros(len(pts), _U64)
    held = counts > 0  # Ns == 0: a sub-block of label 0
    out[held] = labels[blk.palette[blk.palette_starts[sub[held]] + index[held]]]
    return out


#: Neuroglancer's bits per index (0, 1, 2, 4, 8, 16 or 32) for each of DVID's widths 0..9.
_GOOGLE_WIDTHS = np.array([0, 1, 2, 4, 4, 8, 8, 8, 8, 16], np.int64)


def google_block(buf: bytes | bytearray | memoryview, table: np.ndarray | None = None) -> bytes:
    """The Block's volume in neuroglancer's compressed_segmentation (one channel, 8x8x8 blocks: the
    same layout as ``dvid.datatype.common.labels.encode_google``), transcoded from its sub-block
    palettes without building the volume; ``table`` as in ``decode_block``.

    Each sub-block's palette, mapped through the table and with repeats dropped (supervoxels of one
    body), is its lookup table (label 0 for an empty sub-block); its indices are re-packed LSB-first
    into 32-bit words at neuroglancer's next width.  Lookup tables are not shared between sub-blocks,
    so the output can be larger than encode_google's; decoded, it is the same volume."""
    blk = _parse(buf)
    labels = blk.labels if table is None else _check_table(table, blk.labels.size)
    gz, gy, gx = blk.grid
    nsb = gz * gy * gx
    if blk.solid:
        lut = np.full(nsb, labels[0], _U64)
        lut_sizes = np.ones(nsb, np.int64)
        widths = np.zeros(nsb, np.int64)
        new_index = None
    else:
        lut, lut_sizes, new_index = _lookup_tables(blk, labels)
        widths = _GOOGLE_WIDTHS[_bit_widths(lut_sizes)]
    block_words = 2 * lut_sizes + 16 * widths
    lut_at = 2 * nsb + np.cumsum(block_words) - block_words  # in words from the channel's start
    out = np.empty(1 + 2 * nsb + int(block_words.sum()), "<u4")
    out[0] = 1  # where channel 0 starts, in words
    channel = out[1:]
    channel[0 : 2 * nsb : 2] = lut_at | (widths << 24)
    channel[1 : 2 * nsb : 2] = lut_at + 2 * lut_sizes
    entry_at = np.repeat(lut_at - 2 * (np.cumsum(lut_sizes) - lut_sizes), lut_sizes) + 2 * np.arange(lut.size)
    channel[entry_at] = (lut & _U64(0xFFFFFFFF)).astype(np.uint32)
    channel[entry_at + 1] = (lut >> _U64(32)).astype(np.uint32)
    if new_index is not None:
        _put_google_indices(blk, widths, new_index, channel, lut_at + 2 * lut_sizes)
    return out.tobytes()


def _lookup_tables(blk: _Layout, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each sub-block's distinct labels in palette order (``[0]`` for a sub-block without data), as one
    array with the sizes, and each palette entry's index in its sub-block's table."""
    nsb, total = blk.counts.size, blk.palette.size
    entry_labels = labels.take(blk.palette)
    owner = np.repeat(np.arange(nsb), blk.counts)
    order = np.lexsort((entry_labels, owner))  # stable: the first of equal entries is the earliest
    owners, values = owner[order], entry_labels[order]
    first = np.ones(total, bool)
    first[1:] = (owners[1:] != owners[:-1]) | (values[1:] != values[:-1])
    kept_entry = np.empty(total, np.int64)  # each entry's earliest twin in its sub-block
    kept_entry[order] = order[first][np.cumsum(first) - 1]
    kept = kept_entry == np.arange(total)
    rank = np.cumsum(kept) - 1
    sizes = np.bincount(owner[kept], minlength=nsb)
    new_index = rank[kept_entry] - (np.cumsum(sizes) - sizes)[owner]
    lut_sizes = np.maximum(sizes, 1)
    lut = np.zeros(int(lut_sizes.sum()), _U64)
    lut_starts = np.cumsum(lut_sizes) - lut_sizes
    lut[lut_starts[owner[kept]] + new_index[kept]] = entry_labels[kept]
    return lut, lut_sizes, new_index


def _group_reversal(width: int) -> np.ndarray:
    """Byte -> the byte with its ``8 // width`` groups of ``width`` bits in reverse order: DVID packs
    indices MSB-first, neuroglancer LSB-first, so at equal widths a byte maps to one byte."""
    value = np.arange(256)
    out = np.zeros(256, np.int64)
    per = SUB // width
    for k in range(per):
        out |= ((value >> (SUB - width * (k + 1))) & ((1 << width) - 1)) << (width * k)
    return out.astype(np.uint8)


def _group_max(width: int) -> np.ndarray:
    """Byte -> the largest of its ``8 // width`` indices of ``width`` bits."""
    value = np.arange(256)
    groups = [(value >> (width * k)) & ((1 << width) - 1) for k in range(SUB // width)]
    return np.max(groups, axis=0).astype(np.uint8)


#: For DVID widths that neuroglancer has too (1, 2, 4 and 8 bits): each packed byte's re-packing, and
#: its largest index (to check the indices against the palette sizes).
_SAME_WIDTH = {w: (_group_reversal(w), _group_max(w)) for w in (1, 2, 4, 8)}


def _put_google_indices(
    blk: _Layout, widths: np.ndarray, new_index: np.ndarray, channel: np.ndarray, values_at: np.ndarray
) -> None:
    """Write the packed sub-blocks' indices at ``values_at`` at neuroglancer's ``widths``: byte by
    byte through a table where the width and the palette stay, else unpacked, mapped to ``new_index``
    (per palette entry) and re-packed.  Raises BlockFormatError for an index beyond its palette."""
    starts, counts = blk.value_starts, blk.counts
    owner = np.repeat(np.arange(counts.size), counts)
    moved = new_index != np.arange(new_index.size) - blk.palette_starts[owner]
    same = (widths == blk.widths) & (np.bincount(owner[moved], minlength=counts.size) == 0)
    for b, (reversal, largest) in _SAME_WIDTH.items():
        sel = np.flatnonzero(same & (blk.widths == b))
        if not sel.size:
            continue
        data = blk.values[starts[sel][:, None] + np.arange(SUB * SUB * b)]
        if (largest.take(data).max(axis=1) >= counts[sel]).any():
            raise BlockFormatError("block has a packed voxel index beyond its sub-block's palette size")
        words = reversal.take(data).view("<u4")  # (sub-blocks, 16 b): a fresh C-ordered array
        channel[values_at[sel][:, None] + np.arange(16 * b)] = words
    rest = np.flatnonzero(~same & (blk.widths > 0))
    if not rest.size:
        return
    rows, high = _packed_rows(blk)
    for b in np.unique(blk.widths[rest]).tolist():
        sel = rest[blk.widths[rest] == b]
        shifts = (b * (SUB - 1 - np.arange(SUB))).astype(_U64)
        index = (rows[sel][:, :, None] >> shifts) & _WIDTH_MASK[b]  # (sub-blocks, rows, x)
        if b == MAX_WIDTH and high is not None:  # x = 0 keeps its low bit at bit 63, the rest in high
            index[:, :, 0] |= high[sel].astype(_U64) << _U64(1)
        index = index.reshape(sel.size, SUB_VOXELS).view(np.int64)  # voxel order z, y, x
        if (index.max(axis=1) >= np.maximum(counts[sel], 1)).any():
            raise BlockFormatError("block has a packed voxel index beyond its sub-block's palette size")
        index = new_index.take(blk.palette_starts[sel][:, None] + index)
        for w in np.unique(widths[sel]).tolist():
            part = np.flatnonzero(widths[sel] == w)
            if w:
                words = _pack_lsb_first(index[part], w)
                channel[values_at[sel[part]][:, None] + np.arange(16 * w)] = words


def _pack_lsb_first(index: np.ndarray, width: int) -> np.ndarray:
    """(n, 512) indices packed LSB-first at ``width`` bits into (n, 16 width) little-endian words."""
    if width == 16:
        data = index.astype("<u2")
    else:
        small = index.astype(np.uint8)
        per_byte = SUB // width
        data = small[:, ::per_byte].copy()
        for k in range(1, per_byte):  # voxel i at bit width * (i % per_byte) of byte i // per_byte
            data |= small[:, k::per_byte] << np.uint8(width * k)
    return np.ascontiguousarray(data).view("<u4")


# ---- encoding -------------------------------------------------------------------------------------------
def _check_volume(vol: np.ndarray) -> np.ndarray:
    arr = np.asarray(vol)
    if arr.dtype.kind != "u":
        raise BadRequest(f"a label block must hold unsigned integer labels, got dtype {arr.dtype}")
    _grid(arr.shape)
    return np.ascontiguousarray(arr, dtype=_U64)


@functools.lru_cache(maxsize=16)
def _segment_subblocks(nz: int, ny: int, gx: int) -> np.ndarray:
    """Sub-block number of each 8-voxel x segment of an (nz, ny, 8 gx) volume, in memory order."""
    gy = ny // SUB
    z = (np.arange(nz) // SUB * (gy * gx))[:, None, None]
    y = (np.arange(ny) // SUB * gx)[None, :, None]
    out = (z + y + np.arange(gx)[None, None, :]).reshape(-1)
    out.flags.writeable = False
    return out


def _changes(sorted_values: np.ndarray) -> np.ndarray:
    """True where a value differs from the one before it (and at 0)."""
    new = np.empty(sorted_values.size, bool)
    new[:1] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=new[1:])
    return new


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique is several times slower on many distinct values)."""
    ordered = np.sort(values)
    return ordered[_changes(ordered)]


def _unique_inverse(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and each value's position among them, by one argsort."""
    order = np.argsort(values)
    ordered = values[order]
    new = _changes(ordered)
    inverse = np.empty(values.size, np.intp)
    inverse[order] = np.cumsum(new) - 1
    return ordered[new], inverse


#: Odd 64-bit multipliers for the multiplicative hash of ``_positions`` (tried in turn).
_HASH_MULTIPLIERS = tuple(
    _U64(m)
    for m in (
        0x9E3779B97F4A7C15,
        0xBF58476D1CE4E5B9,
        0x94D049BB133111EB,
        0xFF51AFD7ED558CCD,
        0xC4CEB9FE1A85EC53,
    )
)
#: Label sets up to this size are looked up by hash, larger ones by binary search.
_HASHED_LABELS = 4096


def _positions(labels: np.ndarray, values: np.ndarray) -> np.ndarray | None:
    """Each value's position in ``labels`` (sorted, distinct), or None if a value is not among them.

    A collision-free multiplicative hash of the labels into a table of 4 to 16 slots per label makes
    the lookup two multiplies and a gather per value, several times faster than a binary search."""
    n = labels.size
    if n <= _HASHED_LABELS:
        for attempt, mult in enumerate(_HASH_MULTIPLIERS):
            bits = _U64(n.bit_length() + 2 + attempt // 2)
            slots = (labels * mult) >> (_U64(64) - bits)
            if _distinct(slots).size == n:
                table = np.zeros(1 << int(bits), np.intp)
                table[slots.view(np.int64)] = np.arange(n)
                hashed = values * mult
                hashed >>= _U64(64) - bits
                where = table.take(hashed.view(np.int64))
                break
        else:
            where = np.minimum(np.searchsorted(labels, values), n - 1)
    else:
        where = np.minimum(np.searchsorted(labels, values), n - 1)
    return where if np.array_equal(labels.take(where), values) else None


def _labels_of_runs(run_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct labels and each run's position among them."""
    candidates = run_values[_changes(run_values)]
    if candidates.size > 2 * _LABEL_SAMPLE:  # many runs (noisy labels): a sample may hold every label
        sample = candidates[:: candidates.size // _LABEL_SAMPLE]
        guess = _distinct(sample)
        if 2 * guess.size > sample.size:  # mostly distinct: far more labels than the sample has
            return _unique_inverse(run_values)
    else:
        guess = _distinct(candidates)
    where = _positions(guess, run_values)
    return (guess, where) if where is not None else _unique_inverse(run_values)


def encode_block(vol: np.ndarray) -> bytes:
    """Encode an (nz, ny, nx) uint64 label volume (sides multiples of 8) as a DVID Block.

    Deterministic: the label table is sorted and each palette in table order.  One label gives the
    24-byte solid Block."""
    arr = _check_volume(vol)
    nz, ny, nx = arr.shape
    gz, gy, gx = nz // SUB, ny // SUB, nx // SUB
    nsb = gz * gy * gx
    flat = arr.reshape(-1)
    # runs of one label along x, cut at every 8-voxel segment (a sub-block row)
    cut = np.empty(flat.size, bool)
    np.not_equal(flat[1:], flat[:-1], out=cut[1:])
    cut[::SUB] = True
    starts = np.flatnonzero(cut)
    labels, run_label = _labels_of_runs(flat[starts])
    n = labels.size
    if n == 1:
        return _SOLID.pack(gx, gy, gz, 1, int(labels[0]))
    # per run (in place where possible: with many runs, fresh pages cost more than the arithmetic)
    lengths = np.empty(starts.size, np.int64)
    np.subtract(starts[1:], starts[:-1], out=lengths[:-1])
    lengths[-1] = flat.size - starts[-1]
    subblock = _segment_subblocks(nz, ny, gx).take(starts >> 3)
    offset = starts
    offset &= SUB - 1  # x of the run's first voxel in its row
    key = subblock * n
    key += run_label

    # palettes: which labels each sub-block holds, in table order, and each run's palette index
    if nsb * n <= _PRESENCE_CELLS:
        present = np.zeros((nsb, n), bool)
        present.reshape(-1)[key] = True
        palette = np.nonzero(present)[1]
        counts = np.count_nonzero(present, axis=1)
        rank = np.cumsum(present, axis=1)
        rank -= 1
        local = rank.reshape(-1).take(key)
    else:
        palette, local = _unique_inverse(key)
        counts = np.bincount(palette // n, minlength=nsb)
        local -= (np.cumsum(counts) - counts).take(subblock)
        palette %= n
    widths = _bit_widths(counts)

    # row words: each run adds index * weight(width, start x, length) to its row's word
    weight_at = np.take(widths, subblock, out=key)
    weight_at *= SUB
    weight_at += offset
    weight_at *= SUB + 1
    weight_at += lengths
    contributions = _RUN_WEIGHT.take(weight_at)
    contributions *= local.view(_U64)
    row_first = np.flatnonzero(offset == 0)
    words = np.add.reduceat(contributions, row_first)

    def in_subblock_order(per_row: np.ndarray) -> np.ndarray:  # rows (z, y, sx) -> (nsb, 64)
        return per_row.reshape(gz, SUB, gy, SUB, gx).transpose(0, 2, 4, 1, 3).reshape(nsb, SUB * SUB)

    rows = in_subblock_order(words)

    nbytes = widths * (SUB_VOXELS // 8)
    value_starts = np.cumsum(nbytes) - nbytes
    values = np.empty(int(nbytes.sum()), np.uint8)
    for b in np.unique(widths).tolist():
        if b == 0:
            continue
        sel = np.flatnonzero(widths == b)
        word_bytes = rows[sel].astype(">u8").view(np.uint8).reshape(sel.size, SUB * SUB, SUB)
        if b == MAX_WIDTH:  # a 9-byte row: the high 8 bits of x = 0's index, then the word
            high = in_subblock_order((local[row_first] >> 1).astype(np.uint8))[sel]
            chunk = np.concatenate((high[:, :, None], word_bytes), axis=2)
        else:
            chunk = word_bytes[:, :, SUB - b :]
        if sel.size == nsb:
            values[:] = chunk.reshape(-1)
        else:
            values[value_starts[sel][:, None] + np.arange(b * SUB * SUB)] = chunk.reshape(sel.size, -1)
    return b"".join(
        (
            _HEADER.pack(gx, gy, gz, n),
            labels.astype(_LE_U64).tobytes(),
            counts.astype("<u2").tobytes(),
            palette.astype("<u4").tobytes(),
            values.tobytes(),
        )
    )
