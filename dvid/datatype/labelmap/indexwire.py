"""The ``blocks`` map of a ``LabelIndex`` protobuf to and from numpy rows, without a per-row Python loop.

A label index's rows are ``(block key, supervoxel, count)``; on the wire they are the map
``blocks = 1`` of ``map<uint64, SVCount>``, each ``SVCount`` holding ``map<uint64, uint32> counts = 1`` and
``uint64 surface_mutid = 2`` (see :mod:`.proto`). Every field inside that map is a varint or a nested
message with a one-byte tag, so the map's bytes are a flat sequence of ``(tag, varint)`` pairs, where a
length-delimited tag's varint is the length of the nested message that follows as further pairs. Both
directions work on that pair sequence with numpy:

- :func:`encode_blocks` writes every pair's varint at once (DVID's and protoc's bytes for the same map
  in sorted order; Go writes maps in random order, which is equally valid protobuf);
- :func:`decode_blocks` reads a well-formed map (as python-protobuf re-serializes a parsed message with
  its unknown fields discarded): it decodes every varint, finds each pair's nesting depth from the
  lengths, and reads the fields by (depth, tag).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

_U64 = np.uint64
_U8 = np.uint8

# One-byte tags: (field number << 3) | wire type (0 varint, 2 length-delimited).
_ENTRY = 0x0A  # LabelIndex.blocks / SVCount.counts entry (field 1, message)
_KEY = 0x08  # map entry key (field 1, varint)
_SVCOUNT = 0x12  # BlocksEntry.value (field 2, message)
_VALUE = 0x10  # CountsEntry.value (field 2, varint); SVCount.surface_mutid (field 2, varint)


class BlockRows(NamedTuple):
    """The rows of a ``blocks`` map: one per (block, supervoxel) entry, in wire order, plus the blocks
    with a non-zero ``surface_mutid``."""

    blocks: np.ndarray  # uint64 packed block keys
    svs: np.ndarray  # uint64
    counts: np.ndarray  # uint64 (uint32 on the wire)
    surface_blocks: np.ndarray  # uint64
    surface_mutids: np.ndarray  # uint64


# ---- varints ------------------------------------------------------------------------------------


def varint(n: int) -> bytes:
    """One varint."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def varint_sizes(values: np.ndarray) -> np.ndarray:
    """Bytes of each uint64's varint (1..10), as int64."""
    sizes = np.ones(values.shape, np.int64)
    for k in range(1, 10):
        wider = values >= _U64(1 << (7 * k))
        if not wider.any():
            break
        sizes += wider
    return sizes


def encode_varints(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The varints of ``values`` (with their ``sizes``) concatenated, as a uint8 array."""
    offsets = np.cumsum(sizes) - sizes
    out = np.empty(int(offsets[-1] + sizes[-1]) if len(sizes) else 0, _U8)
    v, o, n = values.astype(_U64), offsets, sizes
    k = 0
    while len(v):  # byte k of every varint longer than k bytes
        more = n > k + 1
        byte = (v & _U64(0x7F)).astype(_U8)
        byte[more] |= 0x80
        out[o + k] = byte
        v, o, n = v[more] >> _U64(7), o[more], n[more]
        k += 1
    return out


def decode_varints(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every varint of a buffer made only of varints: ``(start offsets, values)``.

    ValueError if the buffer ends inside a varint.
    """
    ends = np.flatnonzero(buf < 0x80)
    if len(buf) and (not len(ends) or ends[-1] != len(buf) - 1):
        raise ValueError("the buffer ends inside a varint")
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    values = (buf[starts] & 0x7F).astype(_U64)
    sizes = ends - starts + 1
    wide = np.flatnonzero(sizes > 1)
    k = 1
    while len(wide):
        values[wide] |= (buf[starts[wide] + k] & 0x7F).astype(_U64) << _U64(7 * k)
        k += 1
        wide = wide[sizes[wide] > k]
    return starts, values


# ---- the blocks map -----------------------------------------------------------------------------


def encode_blocks(
    blocks: np.ndarray,
    svs: np.ndarray,
    counts: np.ndarray,
    surface_blocks: np.ndarray,
    surface_mutids: np.ndarray,
) -> bytes:
    """The ``blocks`` field of a ``LabelIndex`` for rows sorted by block (one entry per block, its
    supervoxels in row order); ``surface_blocks`` (a sorted subset of the blocks) get ``surface_mutid``."""
    nrows = len(blocks)
    if nrows == 0:
        return b""
    starts = np.flatnonzero(np.r_[True, blocks[1:] != blocks[:-1]])
    nblocks = len(starts)
    rows_per_block = np.diff(np.r_[starts, nrows])
    keys = blocks[starts]
    surface = np.zeros(nblocks, _U64)
    if len(surface_blocks):
        surface[np.searchsorted(keys, surface_blocks)] = surface_mutids
    has_surface = surface != 0

    # Sizes, innermost first: CountsEntry, SVCount, BlocksEntry.
    svs_size, counts_size = varint_sizes(svs), varint_sizes(counts)
    entry_len = (2 + svs_size + counts_size).astype(_U64)
    entry_len_size = varint_sizes(entry_len)
    surface_size = np.where(has_surface, 1 + varint_sizes(surface), 0)
    svcount_len = (
        np.add.reduceat(1 + entry_len_size + entry_len.astype(np.int64), starts) + surface_size
    ).astype(_U64)
    svcount_len_size = varint_sizes(svcount_len)
    key_size = varint_sizes(keys)
    block_len = (2 + key_size + svcount_len_size + svcount_len.astype(np.int64)).astype(_U64)
    block_len_size = varint_sizes(block_len)

    # The pairs in wire order: per block 3 pairs (entry, key, SVCount), its rows' 3 pairs each
    # (entry, key, value), then the surface pair if any; 2 tokens (tag, varint) per pair.
    block_tokens = 6 + 6 * rows_per_block + 2 * has_surface
    block_at = np.cumsum(block_tokens) - block_tokens
    row_block = np.repeat(np.arange(nblocks), rows_per_block)
    row_at = block_at[row_block] + 6 + 6 * (np.arange(nrows) - starts[row_block])
    tokens = np.empty(int(block_tokens.sum()), _U64)
    sizes = np.ones(len(tokens), np.int64)
    block_pairs: list[tuple[Any, Any]] = [
        (_ENTRY, 1),
        (block_len, block_len_size),
        (_KEY, 1),
        (keys, key_size),
        (_SVCOUNT, 1),
        (svcount_len, svcount_len_size),
    ]
    row_pairs: list[tuple[Any, Any]] = [
        (_ENTRY, 1),
        (entry_len, entry_len_size),
        (_KEY, 1),
        (svs, svs_size),
        (_VALUE, 1),
        (counts, counts_size),
    ]
    for at, pairs in ((block_at, block_pairs), (row_at, row_pairs)):
        for j, (value, size) in enumerate(pairs):
            tokens[at + j] = value
            sizes[at + j] = size
    surface_at = (block_at + 6 + 6 * rows_per_block)[has_surface]
    tokens[surface_at] = _VALUE
    tokens[surface_at + 1] = surface[has_surface]
    sizes[surface_at + 1] = surface_size[has_surface] - 1
    return encode_varints(tokens, sizes).tobytes()


def decode_blocks(data: bytes) -> BlockRows:
    """The rows of a ``LabelIndex`` whose only fields are well-formed ``blocks`` entries with no unknown
    fields (python-protobuf's re-serialization of a parsed message after ``DiscardUnknownFields`` and with
    the other fields cleared). Missing map keys and values read as 0, as protobuf's defaults.

    ValueError if the bytes are not of that form.
    """
    buf = np.frombuffer(data, _U8)
    starts, tokens = decode_varints(buf)
    if len(tokens) % 2:
        raise ValueError("the blocks map does not consist of (tag, varint) pairs")
    tags, values = tokens[0::2].astype(np.int64), tokens[1::2]
    pair_at = starts[0::2]
    npairs = len(tags)
    # A nested message starts after its length varint and spans that many bytes; mark where each opens
    # (the next pair) and closes (the pair starting at its end), and count the open ones: the depth.
    nested = np.flatnonzero((tags & 7) == 2)
    content_at = np.r_[starts[1:], len(buf)][1::2][nested]
    ends = content_at + values[nested].astype(np.int64)
    closes = np.searchsorted(pair_at, ends)
    if np.any(np.r_[pair_at, len(buf)][closes] != ends):
        raise ValueError("a nested message of the blocks map ends inside a field")
    depth = np.cumsum(
        np.bincount(nested + 1, minlength=npairs + 1) - np.bincount(closes, minlength=npairs + 1)
    )[:npairs]
    field = depth * 256 + tags  # (depth, tag)
    known = (
        0x0A,
        0x100 + _KEY,
        0x100 + _SVCOUNT,
        0x200 + _ENTRY,
        0x200 + _VALUE,
        0x300 + _KEY,
        0x300 + _VALUE,
    )
    if not np.isin(field, known).all():
        raise ValueError("the blocks map holds a field it should not")

    is_block = field == _ENTRY
    block_of = np.cumsum(is_block) - 1
    keys = np.zeros(int(is_block.sum()), _U64)
    sel = field == 0x100 + _KEY
    keys[block_of[sel]] = values[sel]
    surface = np.zeros(len(keys), _U64)
    sel = field == 0x200 + _VALUE
    surface[block_of[sel]] = values[sel]

    is_entry = field == 0x200 + _ENTRY
    entry_of = np.cumsum(is_entry) - 1
    svs = np.zeros(int(is_entry.sum()), _U64)
    counts = np.zeros(len(svs), _U64)
    sel = field == 0x300 + _KEY
    svs[entry_of[sel]] = values[sel]
    sel = field == 0x300 + _VALUE
    counts[entry_of[sel]] = values[sel]
    with_surface = surface != 0
    return BlockRows(keys[block_of[is_entry]], svs, counts, keys[with_surface], surface[with_surface])
