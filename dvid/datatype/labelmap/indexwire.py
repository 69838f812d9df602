"""The ``blocks`` map of a ``LabelIndex`` protobuf to and from numpy rows.

A label index's rows are ``(block key, supervoxel, count)``; on the wire they are the map
``blocks = 1`` of ``map<uint64, SVCount>``, each ``SVCount`` holding ``map<uint64, uint32> counts = 1`` and
``uint64 surface_mutid = 2`` (see :mod:`.proto`). Every field inside that map is a varint or a nested
message with a one-byte tag, so the map's bytes are a flat sequence of ``(tag, varint)`` pairs, where a
length-delimited tag's varint is the length of the nested message that follows as further pairs. Both
directions work on that pair sequence with numpy, without a loop per row or per block:

- :func:`encode_blocks` writes every pair's varint at once: blocks in key order, supervoxels in order
  within a block (the bytes protoc's deterministic mode and Go's give; Go's default map order is
  random, which is equally valid protobuf);
- :func:`decode_blocks` decodes every varint, finds each pair's nesting depth from the lengths, checks
  the structure is exactly what the schema allows, and reads the fields by (depth, tag); anything
  unusual is left to python-protobuf.

Below :data:`SMALL_ROWS` rows or :data:`SMALL_BYTES` bytes, a loop over the entries costs less than
numpy's fixed cost per call, and is used instead (:func:`rows_of_message` reads a parsed message).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from dvid.datatype.common.kvproto import varint

_U64 = np.uint64
_U8 = np.uint8

# One-byte tags: (field number << 3) | wire type (0 varint, 2 length-delimited).
_ENTRY = 0x0A  # LabelIndex.blocks / SVCount.counts entry (field 1, message)
_KEY = 0x08  # map entry key (field 1, varint)
_SVCOUNT = 0x12  # BlocksEntry.value (field 2, message)
_VALUE = 0x10  # CountsEntry.value (field 2, varint); SVCount.surface_mutid (field 2, varint)


#: Below this many rows, or bytes of protobuf, a Python loop costs less than numpy's fixed cost per call.
SMALL_ROWS = 128
SMALL_BYTES = 8192


class BlockRows(NamedTuple):
    """The rows of a ``blocks`` map: one per (block, supervoxel) entry, plus the blocks with a non-zero
    ``surface_mutid``."""

    blocks: np.ndarray  # uint64 packed block keys
    svs: np.ndarray  # uint64
    counts: np.ndarray  # uint32
    surface_blocks: np.ndarray  # uint64, sorted
    surface_mutids: np.ndarray  # uint64


# ---- varints ------------------------------------------------------------------------------------


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


def decode_varints(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every complete varint of a buffer read as a sequence of varints: ``(start offsets, sizes,
    values)``; bytes after the last complete one are not read, and a value longer than 10 bytes is
    garbage (callers check the sizes)."""
    ends = np.flatnonzero(buf < 0x80)
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    sizes = ends - starts + 1
    values = (buf[starts] & 0x7F).astype(_U64)
    wide = np.flatnonzero(sizes > 1)
    k = 1
    while len(wide) and k < 10:
        values[wide] |= (buf[starts[wide] + k] & 0x7F).astype(_U64) << _U64(7 * k)
        k += 1
        wide = wide[sizes[wide] > k]
    return starts, sizes, values


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
    if nrows < SMALL_ROWS:
        return _encode_blocks_loop(blocks, svs, counts, surface_blocks, surface_mutids)
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


def _encode_blocks_loop(
    blocks: np.ndarray,
    svs: np.ndarray,
    counts: np.ndarray,
    surface_blocks: np.ndarray,
    surface_mutids: np.ndarray,
) -> bytes:
    """:func:`encode_blocks` for a few rows: the same bytes, written entry by entry."""
    surface = dict(zip(surface_blocks.tolist(), surface_mutids.tolist(), strict=True))
    out: list[bytes] = []
    keys, sv_list, count_list = blocks.tolist(), svs.tolist(), counts.tolist()
    i, n = 0, len(keys)
    while i < n:
        block, entries = keys[i], []
        while i < n and keys[i] == block:
            entry = b"\x08" + varint(sv_list[i]) + b"\x10" + varint(count_list[i])
            entries.append(b"\x0a" + varint(len(entry)) + entry)
            i += 1
        if block in surface:
            entries.append(b"\x10" + varint(surface[block]))
        svcount = b"".join(entries)
        body = b"\x08" + varint(block) + b"\x12" + varint(len(svcount)) + svcount
        out.append(b"\x0a" + varint(len(body)) + body)
    return b"".join(out)


def rows_of_message(msg: Any) -> BlockRows:
    """The rows of a parsed ``proto.LabelIndex`` message's ``blocks``, entry by entry (for small ones)."""
    keys, lengths, svs, counts, surface = [], [], [], [], {}
    for block, svcount in msg.blocks.items():
        entries = svcount.counts
        keys.append(block)
        lengths.append(len(entries))
        svs.extend(entries)
        counts.extend(entries.values())
        if svcount.surface_mutid:
            surface[block] = svcount.surface_mutid
    b = np.repeat(np.array(keys, _U64), lengths)
    s, c = np.array(svs, _U64), np.array(counts, np.uint32)
    order = np.lexsort((s, b))
    b, s, c = b[order], s[order], c[order]
    nonzero = c != 0
    if not nonzero.all():
        b, s, c = b[nonzero], s[nonzero], c[nonzero]
    present = set(b.tolist()) if surface else set()
    marked = sorted((k, v) for k, v in surface.items() if k in present)
    return BlockRows(b, s, c, np.array([k for k, _ in marked], _U64), np.array([v for _, v in marked], _U64))


_KNOWN = np.array(
    [
        _ENTRY,  # depth 0: a blocks entry
        0x100 + _KEY,  # depth 1: its block key
        0x100 + _SVCOUNT,  # depth 1: its SVCount
        0x200 + _ENTRY,  # depth 2: a counts entry
        0x200 + _VALUE,  # depth 2: surface_mutid
        0x300 + _KEY,  # depth 3: the supervoxel
        0x300 + _VALUE,  # depth 3: its count
    ]
)


def decode_blocks(data: bytes) -> tuple[BlockRows, int] | None:
    """The leading ``blocks`` entries of a ``LabelIndex`` message, read from its bytes with numpy:
    ``(rows sorted by (block, sv) with zero counts dropped, offset of the first other field)``.

    Protobuf writes fields in number order, so in DVID's, protoc's and this module's bytes the entries
    come first and the rest (label, strings) is a short tail for python-protobuf. None when the entries
    are not plain enough to read this way with certainty: an unknown field, a field given twice in one
    message (protobuf would merge or overwrite), a key twice in one map, a varint beyond 64 bits, a
    malformed entry. The caller then parses the message with python-protobuf, whose re-serialization
    of ``blocks`` alone (unknown fields discarded) this function always reads.
    """
    buf = np.frombuffer(data, _U8)
    starts, sizes, tokens = decode_varints(buf)
    npairs = len(tokens) // 2
    tags, values = tokens[0 : 2 * npairs : 2], tokens[1 : 2 * npairs : 2]
    pair_at = starts[0 : 2 * npairs : 2]
    after = (starts + sizes)[1 : 2 * npairs : 2]  # the byte after each pair's varint

    # Every field here is a varint or a nested message, so the bytes are (tag, varint) pairs; a nested
    # message's pairs follow its length. Count the messages open at each pair: its depth.
    nested = np.flatnonzero((tags & _U64(7)) == 2)
    close_at = after[nested] + np.minimum(values[nested], len(buf) + 1).astype(np.int64)
    # the pair starting at each byte (npairs at the end of the pairs, -1 inside a pair or beyond)
    pair_starting = np.full(len(buf) + 2, -1, np.int64)
    pair_starting[pair_at] = np.arange(npairs)
    pair_starting[after[-1] if npairs else 0] = npairs
    closes = pair_starting[np.minimum(close_at, len(buf) + 1)]
    closes[closes < 0] = npairs  # not at a pair: invalid, if in the head
    depth = np.cumsum(
        np.bincount(nested + 1, minlength=npairs + 1) - np.bincount(closes, minlength=npairs + 1)
    )[:npairs]
    others = np.flatnonzero((depth == 0) & (tags != _ENTRY))
    head = int(others[0]) if len(others) else npairs
    tail_at = int(pair_at[head]) if head < npairs else (int(after[-1]) if npairs else 0)
    if head == npairs and tail_at != len(buf):
        return None  # ends inside a varint or with a lone tag

    # From here on only the head's pairs, which must be exactly what the schema allows.
    tags, values, depth = tags[:head].astype(np.int64), values[:head], depth[:head]
    in_head = nested < head
    nested, close_at, closes = nested[in_head], close_at[in_head], closes[in_head]
    token_sizes = sizes[: 2 * head]
    if len(token_sizes) and token_sizes.max() >= 10:
        ten = starts[: 2 * head][token_sizes >= 10]
        if token_sizes.max() > 10 or buf[ten + 9].max() > 1:
            return None  # beyond 64 bits
    if np.any(closes > head) or np.any(np.r_[pair_at[:head], tail_at][closes] != close_at):
        return None  # a message ending inside a field, or beyond the head
    field = depth * 256 + np.minimum(tags, 0xFF)
    if not np.isin(field, _KNOWN).all():
        return None
    for level in (1, 2):  # each nested message ends within the one holding it
        parents = nested[depth[nested] == level - 1]
        children = np.flatnonzero(depth[nested] == level)
        holder = np.searchsorted(parents, nested[children]) - 1
        parent_close = close_at[np.searchsorted(nested, parents[holder])]
        if np.any(holder < 0) or np.any(close_at[children] > parent_close):
            return None

    is_block = field == _ENTRY
    block_of = np.cumsum(is_block) - 1
    nblocks = int(is_block.sum())
    is_entry = field == 0x200 + _ENTRY
    entry_of = np.cumsum(is_entry) - 1
    nentries = int(is_entry.sum())
    for code, owner, n in (
        (0x100 + _KEY, block_of, nblocks),
        (0x100 + _SVCOUNT, block_of, nblocks),
        (0x200 + _VALUE, block_of, nblocks),
        (0x300 + _KEY, entry_of, nentries),
        (0x300 + _VALUE, entry_of, nentries),
    ):
        if n and np.bincount(owner[field == code], minlength=n).max(initial=0) > 1:
            return None  # a field given twice in one message

    keys = np.zeros(nblocks, _U64)
    sel = field == 0x100 + _KEY
    keys[block_of[sel]] = values[sel]
    surface = np.zeros(nblocks, _U64)
    sel = field == 0x200 + _VALUE
    surface[block_of[sel]] = values[sel]
    svs = np.zeros(nentries, _U64)
    counts = np.zeros(nentries, _U64)
    sel = field == 0x300 + _KEY
    svs[entry_of[sel]] = values[sel]
    sel = field == 0x300 + _VALUE
    counts[entry_of[sel]] = values[sel]
    if len(counts) and counts.max() > 0xFFFFFFFF:
        return None
    if nblocks > 1 and not np.all(keys[1:] > keys[:-1]) and len(np.unique(keys)) != nblocks:
        return None  # a block twice in the map
    blocks = keys[block_of[is_entry]]
    if not _strictly_increasing(blocks, svs):
        order = np.lexsort((svs, blocks))
        blocks, svs, counts = blocks[order], svs[order], counts[order]
        if not _strictly_increasing(blocks, svs):
            return None  # a supervoxel twice in one block's map
    nonzero = counts != 0
    if not nonzero.all():
        blocks, svs, counts = blocks[nonzero], svs[nonzero], counts[nonzero]
    with_surface = surface != 0
    order = np.argsort(keys[with_surface])
    rows = BlockRows(
        blocks, svs, counts.astype(np.uint32), keys[with_surface][order], surface[with_surface][order]
    )
    return rows, tail_at


def _strictly_increasing(blocks: np.ndarray, svs: np.ndarray) -> bool:
    """Whether the (block, sv) pairs are sorted and unique."""
    if len(blocks) < 2:
        return True
    b0, b1, s0, s1 = blocks[:-1], blocks[1:], svs[:-1], svs[1:]
    return bool(np.all((b1 > b0) | ((b1 == b0) & (s1 > s0))))
