"""The label index of one body: which blocks hold which of its supervoxels, and how many voxels of each.

A :class:`LabelIndex` is a value: numpy rows ``(block key, supervoxel, count)``, unique per (block,
supervoxel), sorted by (block, supervoxel), counts > 0, plus the body's label, the id of the last
mutation that changed it and who made it when. Every method returns a new index. Block keys are DVID's
packed coordinates (:func:`pack_block_coords`, spec §4.4), the key of the protobuf ``blocks`` map.

Stored (:class:`IndexStore`) under tkey class 187 + label (u64 BE) as the ``LabelIndex`` protobuf in
DVID's LZ4 envelope, as DVID stores it whatever the instance's compression, so ``indices-compressed`` can
serve the stored bytes as they are.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError

from dvid.datatype.common import envelope
from dvid.datatype.labelmap import indexwire
from dvid.datatype.labelmap.proto import LabelIndexMsg
from dvid.datatype.labelmap.proto import LabelIndices as LabelIndicesMsg
from dvid.datatype.labelmap.tkeys import INDEX_CLASS
from dvid.errors import BadRequest
from dvid.storage import keys
from dvid.storage.versioned import DataContext, VersionedBatch

__all__ = [
    "INDEX_CLASS",
    "IndexStore",
    "LabelIndex",
    "decode_label_indices",
    "encode_label_indices",
    "index_tkey",
    "label_of_tkey",
    "pack_block_coords",
    "unpack_block_keys",
]

_U64 = np.uint64
_U32_MAX = 0xFFFFFFFF

# ---- block keys (spec §4.4) -----------------------------------------------------------------------

#: Largest block coordinate magnitude a packed key holds (20 bits; bit 20 of each field is the sign).
MAX_BLOCK_COORD = (1 << 20) - 1
_MAGNITUDE = _U64(0xFFFFF)
_SIGN = _U64(0x100000)
_FIELD = _U64(0x1FFFFF)


def pack_block_coords(coords: np.ndarray | Sequence[Sequence[int]]) -> np.ndarray:
    """Packed block keys of ``(n, 3)`` block coordinates ``x, y, z``: ``Z<<42 | Y<<21 | X``, each field
    ``|v|`` with bit 20 set when ``v < 0``. BadRequest for a coordinate beyond ±(2**20 - 1)."""
    c = np.asarray(coords, dtype=np.int64).reshape(-1, 3)
    magnitude = np.abs(c)
    if len(c) and magnitude.max() > MAX_BLOCK_COORD:
        raise BadRequest(f"block coordinates must lie within ±{MAX_BLOCK_COORD} to be indexed")
    fields = magnitude.astype(_U64) | np.where(c < 0, _SIGN, _U64(0))
    return (fields[:, 2] << _U64(42)) | (fields[:, 1] << _U64(21)) | fields[:, 0]


def unpack_block_keys(block_keys: np.ndarray | Sequence[int]) -> np.ndarray:
    """Block coordinates ``(n, 3)`` int64 ``x, y, z`` of packed keys (:func:`pack_block_coords` undone)."""
    k = np.asarray(block_keys, dtype=_U64).reshape(-1)
    fields = np.stack([(k >> _U64(shift)) & _FIELD for shift in (0, 21, 42)], axis=1)
    magnitude = (fields & _MAGNITUDE).astype(np.int64)
    return np.where((fields & _SIGN) != 0, -magnitude, magnitude)


def _zyx_order(coords: np.ndarray) -> np.ndarray:
    return np.lexsort((coords[:, 0], coords[:, 1], coords[:, 2]))


# ---- rows ------------------------------------------------------------------------------------------


def _as_u64(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=_U64).reshape(-1)


_Rows = tuple[np.ndarray, np.ndarray, np.ndarray]


def _sum_rows(blocks: np.ndarray, svs: np.ndarray, counts: np.ndarray) -> _Rows:
    """Rows summed per (block, sv), sorted by (block, sv); ``counts`` int64, zeros kept."""
    order = np.lexsort((svs, blocks))
    blocks, svs, counts = blocks[order], svs[order], counts[order]
    if len(blocks) < 2:
        return blocks, svs, counts
    starts = np.flatnonzero(np.r_[True, (blocks[1:] != blocks[:-1]) | (svs[1:] != svs[:-1])])
    if len(starts) == len(blocks):
        return blocks, svs, counts
    return blocks[starts], svs[starts], np.add.reduceat(counts, starts)


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


_EMPTY = _frozen(np.zeros(0, _U64))
_EMPTY_COUNTS = _frozen(np.zeros(0, np.uint32))


class LabelIndex:
    """The index of one body (immutable). Rows: ``blocks`` (packed keys), ``svs``, ``counts`` (uint32),
    sorted by (block, sv), unique, counts > 0. ``surface_blocks``/``surface_mutids``: the blocks whose
    ``SVCount.surface_mutid`` is non-zero (DVID sets it on blocks whose supervoxels a merge or cleave
    changed), sorted by block."""

    __slots__ = (
        "blocks",
        "counts",
        "label",
        "last_mod_app",
        "last_mod_time",
        "last_mod_user",
        "last_mutid",
        "surface_blocks",
        "surface_mutids",
        "svs",
    )

    label: int
    blocks: np.ndarray
    svs: np.ndarray
    counts: np.ndarray
    surface_blocks: np.ndarray
    surface_mutids: np.ndarray
    last_mutid: int
    last_mod_time: str
    last_mod_user: str
    last_mod_app: str

    def __init__(
        self,
        label: int,
        blocks: Any = _EMPTY,
        svs: Any = _EMPTY,
        counts: Any = _EMPTY_COUNTS,
        *,
        last_mutid: int = 0,
        last_mod_time: str = "",
        last_mod_user: str = "",
        last_mod_app: str = "",
        surface_blocks: Any = _EMPTY,
        surface_mutids: Any = _EMPTY,
    ) -> None:
        """An index of any rows: summed per (block, sv), sorted, zero counts dropped. ValueError for a
        negative count or one beyond uint32."""
        b, s = _as_u64(blocks), _as_u64(svs)
        c = np.asarray(counts).reshape(-1)
        if not len(c):  # [] reads as float64
            c = c.astype(np.int64)
        if not (len(b) == len(s) == len(c)):
            raise ValueError("blocks, svs and counts must have the same length")
        if c.dtype.kind not in "iu":
            raise ValueError(f"counts must be integers, not {c.dtype}")
        if c.dtype == _U64 and len(c) and c.max() > np.iinfo(np.int64).max:
            raise ValueError("a voxel count beyond uint32")
        b, s, c = _sum_rows(b, s, c.astype(np.int64))
        self._set(
            label, *_checked_rows(b, s, c), last_mutid, last_mod_time, last_mod_user, last_mod_app,
            _as_u64(surface_blocks), _as_u64(surface_mutids),
        )  # fmt: skip

    def _set(
        self,
        label: int,
        blocks: np.ndarray,
        svs: np.ndarray,
        counts: np.ndarray,
        last_mutid: int,
        last_mod_time: str,
        last_mod_user: str,
        last_mod_app: str,
        surface_blocks: np.ndarray,
        surface_mutids: np.ndarray,
    ) -> None:
        """Set every field from canonical rows; surface entries are kept for blocks still present."""
        setattr_ = object.__setattr__
        setattr_(self, "label", int(label))
        setattr_(self, "blocks", _frozen(blocks))
        setattr_(self, "svs", _frozen(svs))
        setattr_(self, "counts", _frozen(counts))
        setattr_(self, "last_mutid", int(last_mutid))
        setattr_(self, "last_mod_time", last_mod_time)
        setattr_(self, "last_mod_user", last_mod_user)
        setattr_(self, "last_mod_app", last_mod_app)
        if len(surface_blocks):
            keep = (surface_mutids != 0) & np.isin(surface_blocks, blocks)
            surface_blocks, surface_mutids = surface_blocks[keep], surface_mutids[keep]
            order = np.argsort(surface_blocks, kind="stable")
            surface_blocks, surface_mutids = surface_blocks[order], surface_mutids[order]
            if len(surface_blocks) > 1:  # one per block: the largest mutation id
                last = np.r_[surface_blocks[1:] != surface_blocks[:-1], True]
                if not last.all():
                    order = np.lexsort((surface_mutids, surface_blocks))
                    surface_blocks, surface_mutids = surface_blocks[order][last], surface_mutids[order][last]
        else:
            surface_blocks = surface_mutids = _EMPTY
        setattr_(self, "surface_blocks", _frozen(surface_blocks))
        setattr_(self, "surface_mutids", _frozen(surface_mutids))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("LabelIndex is immutable")

    def _derived(
        self,
        blocks: np.ndarray,
        svs: np.ndarray,
        counts: np.ndarray,
        *,
        label: int | None = None,
        surface: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> LabelIndex:
        """A new index of canonical rows, with this one's label (unless given) and modification fields."""
        out = LabelIndex.__new__(LabelIndex)
        sb, sm = surface if surface is not None else (self.surface_blocks, self.surface_mutids)
        out._set(
            self.label if label is None else label, blocks, svs, counts, self.last_mutid,
            self.last_mod_time, self.last_mod_user, self.last_mod_app, sb, sm,
        )  # fmt: skip
        return out

    @classmethod
    def empty(cls, label: int) -> LabelIndex:
        return cls(label)

    @property
    def is_empty(self) -> bool:
        """No rows: the body has no voxels (an empty index is stored as a deletion)."""
        return len(self.svs) == 0

    def __len__(self) -> int:
        return len(self.svs)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelIndex):
            return NotImplemented
        return (
            self.metadata() == other.metadata()
            and np.array_equal(self.blocks, other.blocks)
            and np.array_equal(self.svs, other.svs)
            and np.array_equal(self.counts, other.counts)
            and np.array_equal(self.surface_blocks, other.surface_blocks)
            and np.array_equal(self.surface_mutids, other.surface_mutids)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"LabelIndex(label={self.label}, rows={len(self)}, blocks={len(np.unique(self.blocks))},"
            f" last_mutid={self.last_mutid})"
        )

    def metadata(self) -> tuple[int, int, str, str, str]:
        """``(label, last_mutid, last_mod_time, last_mod_user, last_mod_app)``."""
        return self.label, self.last_mutid, self.last_mod_time, self.last_mod_user, self.last_mod_app

    # ---- queries ------------------------------------------------------------------------------

    def _rows_of(self, svs: Any) -> np.ndarray:
        return np.isin(self.svs, _as_u64(svs))

    def supervoxels(self) -> np.ndarray:
        """The body's supervoxels, sorted, unique (uint64)."""
        return np.unique(self.svs)

    def num_voxels(self, svs: Any = None) -> int:
        """Voxels of the body, or of the given supervoxels in it."""
        counts = self.counts if svs is None else self.counts[self._rows_of(svs)]
        return int(counts.sum(dtype=_U64))

    def sv_sizes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(supervoxels, voxel counts)``, sorted by supervoxel; uint64 both."""
        if self.is_empty:
            return _EMPTY.copy(), _EMPTY.copy()
        order = np.argsort(self.svs, kind="stable")
        svs = self.svs[order]
        starts = np.flatnonzero(np.r_[True, svs[1:] != svs[:-1]])
        return svs[starts], np.add.reduceat(self.counts[order].astype(_U64), starts)

    def block_keys(self, svs: Any = None) -> np.ndarray:
        """Packed keys of the blocks holding any (or any of the given) supervoxels, sorted, unique."""
        blocks = self.blocks if svs is None else self.blocks[self._rows_of(svs)]
        if svs is None:  # rows are sorted by block already
            return blocks[np.r_[True, blocks[1:] != blocks[:-1]]] if len(blocks) else _EMPTY.copy()
        return np.unique(blocks)

    def block_coords(self, svs: Any = None) -> np.ndarray:
        """``(n, 3)`` int64 ``x, y, z`` of the blocks holding any (or any of the given) supervoxels,
        unique, sorted by z, then y, then x."""
        coords = unpack_block_keys(self.block_keys(svs))
        return coords[_zyx_order(coords)]

    # ---- derived indices ------------------------------------------------------------------------

    def with_counts(self, blocks: Any, svs: Any, deltas: Any, *, clamp: bool = False) -> LabelIndex:
        """Signed voxel count changes per (block key, sv) applied; rows reaching 0 vanish.

        ValueError if a count would become negative (or exceed uint32): the caller's bookkeeping is
        wrong; with ``clamp``, negative counts become 0 instead (an index already out of date).
        """
        b, s, d = _as_u64(blocks), _as_u64(svs), np.asarray(deltas, dtype=np.int64).reshape(-1)
        if not (len(b) == len(s) == len(d)):
            raise ValueError("blocks, svs and deltas must have the same length")
        rows = _sum_rows(
            np.concatenate([self.blocks, b]), np.concatenate([self.svs, s]),
            np.concatenate([self.counts.astype(np.int64), d]),
        )  # fmt: skip
        if clamp:
            rows = (rows[0], rows[1], np.maximum(rows[2], 0))
        return self._derived(*_checked_rows(*rows))

    def merged(self, *others: LabelIndex, label: int | None = None, surface_mutid: int = 0) -> LabelIndex:
        """The union of this index and ``others`` (counts of a shared (block, sv) summed), labelled
        ``label`` (default: this index's). With ``surface_mutid``, blocks held by more than one of the
        indices get it as their ``surface_mutid`` (as DVID's merge marks changed surfaces)."""
        parts = (self, *others)
        blocks = np.concatenate([p.blocks for p in parts])
        rows = _sum_rows(
            blocks,
            np.concatenate([p.svs for p in parts]),
            np.concatenate([p.counts for p in parts]).astype(np.int64),
        )
        sb = [p.surface_blocks for p in parts]
        sm = [p.surface_mutids for p in parts]
        if surface_mutid and others:
            shared = np.unique(np.concatenate([p.block_keys() for p in parts]), return_counts=True)
            touched = shared[0][shared[1] > 1]
            sb.append(touched)
            sm.append(np.full(len(touched), surface_mutid, _U64))
        return self._derived(
            *_checked_rows(*rows), label=label, surface=(np.concatenate(sb), np.concatenate(sm))
        )

    def split(
        self, svs: Any, *, label: int | None = None, surface_mutid: int = 0
    ) -> tuple[LabelIndex, LabelIndex]:
        """``(remaining, taken)``: the rows of ``svs`` move to a new index labelled ``label`` (default:
        this index's). With ``surface_mutid``, every block that lost supervoxels gets it as its
        ``surface_mutid`` in both (as DVID's cleave)."""
        taken = self._rows_of(svs)
        keep = ~taken
        surface = (self.surface_blocks, self.surface_mutids)
        if surface_mutid:
            touched = np.unique(self.blocks[taken])
            surface = (
                np.concatenate([self.surface_blocks, touched]),
                np.concatenate([self.surface_mutids, np.full(len(touched), surface_mutid, _U64)]),
            )
        remaining = self._derived(self.blocks[keep], self.svs[keep], self.counts[keep], surface=surface)
        cut = self._derived(
            self.blocks[taken], self.svs[taken], self.counts[taken], label=label, surface=surface
        )
        return remaining, cut

    def restricted(self, svs: Any) -> LabelIndex:
        """Only the rows of the given supervoxels (e.g. a supervoxel's view of its body's index)."""
        rows = self._rows_of(svs)
        return self._derived(self.blocks[rows], self.svs[rows], self.counts[rows])

    def relabeled(self, label: int) -> LabelIndex:
        return self._derived(self.blocks, self.svs, self.counts, label=label)

    def with_mod(self, mutid: int, time: str, user: str, app: str) -> LabelIndex:
        """The same rows with new last-modification fields (``time`` RFC 3339)."""
        out = self._derived(self.blocks, self.svs, self.counts)
        for name, value in (
            ("last_mutid", int(mutid)),
            ("last_mod_time", time),
            ("last_mod_user", user),
            ("last_mod_app", app),
        ):
            object.__setattr__(out, name, value)
        return out

    # ---- protobuf ---------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The ``LabelIndex`` protobuf: blocks sorted by key, supervoxels sorted within a block, then the
        scalar fields (protobuf's field order; proto3 omits zero and empty values)."""
        tail = LabelIndexMsg(
            label=self.label,
            last_mutid=self.last_mutid,
            last_mod_time=self.last_mod_time,
            last_mod_user=self.last_mod_user,
            last_mod_app=self.last_mod_app,
        ).SerializeToString()
        head = indexwire.encode_blocks(
            self.blocks, self.svs, self.counts, self.surface_blocks, self.surface_mutids
        )
        return head + tail

    @classmethod
    def from_bytes(cls, pb: bytes | memoryview) -> LabelIndex:
        """Parse a ``LabelIndex`` protobuf (any valid encoding: Go's, protoc's, ours). Unknown fields are
        dropped, as are entries with a zero count. BadRequest if it does not parse.

        The ``blocks`` entries are read with numpy where they are plain (as DVID and this class write
        them) and only the short tail of other fields with python-protobuf; anything else is parsed by
        python-protobuf whole."""
        data = bytes(pb)
        if len(data) < indexwire.SMALL_BYTES:
            return cls._from_parsed(_parse(data))
        head = indexwire.decode_blocks(data)
        if head is not None:
            rows, tail_at = head
            tail = _parse(data[tail_at:])
            if not len(tail.blocks):
                return cls._from_rows(tail, rows)
        return cls._from_parsed(_parse(data))

    @classmethod
    def from_message(cls, msg: Any) -> LabelIndex:
        """From a ``proto.LabelIndex`` message (left unchanged)."""
        own = LabelIndexMsg()
        own.CopyFrom(msg)
        return cls._from_parsed(own)

    def to_message(self) -> Any:
        """A ``proto.LabelIndex`` message of this index."""
        return LabelIndexMsg.FromString(self.to_bytes())

    @classmethod
    def _from_parsed(cls, msg: Any) -> LabelIndex:
        """From a message this call may change: python-protobuf validated it; its ``blocks`` are read
        entry by entry if small, else re-serialized alone without unknown fields and read with numpy."""
        if msg.ByteSize() < indexwire.SMALL_BYTES:
            return cls._from_rows(msg, indexwire.rows_of_message(msg))
        meta = LabelIndexMsg(
            label=msg.label,
            last_mutid=msg.last_mutid,
            last_mod_time=msg.last_mod_time,
            last_mod_user=msg.last_mod_user,
            last_mod_app=msg.last_mod_app,
        )
        msg.DiscardUnknownFields()
        for name in ("label", "last_mutid", "last_mod_time", "last_mod_user", "last_mod_app"):
            msg.ClearField(name)
        data = msg.SerializeToString()
        head = indexwire.decode_blocks(data)
        if head is None or head[1] != len(data):
            raise RuntimeError("python-protobuf wrote a blocks map the numpy reader does not accept")
        return cls._from_rows(meta, head[0])

    @classmethod
    def _from_rows(cls, meta: Any, rows: indexwire.BlockRows) -> LabelIndex:
        """From canonical rows and a message holding the other fields."""
        out = LabelIndex.__new__(LabelIndex)
        out._set(
            meta.label, rows.blocks, rows.svs, rows.counts, meta.last_mutid, meta.last_mod_time,
            meta.last_mod_user, meta.last_mod_app, rows.surface_blocks, rows.surface_mutids,
        )  # fmt: skip
        return out


def _parse(data: bytes) -> Any:
    try:
        return LabelIndexMsg.FromString(data)
    except DecodeError as e:
        raise BadRequest(f"cannot parse a LabelIndex protobuf: {e}") from None


def encode_label_indices(indices: Iterable[LabelIndex]) -> bytes:
    """A ``LabelIndices`` protobuf (``repeated LabelIndex indices = 1``) of several indices."""
    parts = []
    for index in indices:
        data = index.to_bytes()
        parts.append(b"\x0a" + indexwire.varint(len(data)))
        parts.append(data)
    return b"".join(parts)


def decode_label_indices(pb: bytes | memoryview) -> list[LabelIndex]:
    """The indices of a ``LabelIndices`` protobuf, in order. BadRequest if it does not parse."""
    try:
        msg = LabelIndicesMsg.FromString(bytes(pb))
    except DecodeError as e:
        raise BadRequest(f"cannot parse a LabelIndices protobuf: {e}") from None
    return [LabelIndex._from_parsed(m) for m in msg.indices]


def _checked_rows(blocks: np.ndarray, svs: np.ndarray, counts: np.ndarray) -> _Rows:
    """Summed int64 rows as canonical ones: zero rows dropped, counts uint32; ValueError if out of range."""
    if len(counts):
        if counts.min() < 0:
            at = int(np.argmin(counts))
            block = unpack_block_keys(blocks[at : at + 1])[0].tolist()
            raise ValueError(
                f"voxel count of supervoxel {int(svs[at])} in block {block} would become negative"
                f" ({int(counts[at])})"
            )
        if counts.max() > _U32_MAX:
            raise ValueError("a voxel count per block and supervoxel beyond uint32")
    nonzero = counts != 0
    if nonzero.all():
        return blocks, svs, counts.astype(np.uint32)
    return blocks[nonzero], svs[nonzero], counts[nonzero].astype(np.uint32)


# ---- storage -----------------------------------------------------------------------------------------

_LABEL = struct.Struct(">Q")
_LZ4 = envelope.Compression(envelope.LZ4)


def index_tkey(label: int) -> bytes:
    """``187 | 0x01 | label u64 BE``."""
    return keys.tkey(INDEX_CLASS, _LABEL.pack(label))


def label_of_tkey(tk: bytes) -> int:
    return _LABEL.unpack_from(tk, 2)[0]


class IndexStore:
    """Label indices of one labelmap instance, read and written through its versioned context."""

    def stored(self, ctx: DataContext, label: int) -> bytes | None:
        """The stored value (LZ4 envelope) of ``label``'s index at the context's version, or None."""
        return ctx.get(index_tkey(label))

    def get(self, ctx: DataContext, label: int) -> LabelIndex | None:
        """``label``'s index at the context's version, or None if it has none."""
        value = self.stored(ctx, label)
        return None if value is None else decode_stored(value)

    def get_many(self, ctx: DataContext, labels: Iterable[int]) -> list[LabelIndex | None]:
        """The indices of ``labels`` in order (None where absent), read in one query where the engine
        charges a round trip per query."""
        return [None if v is None else decode_stored(v) for v in self.stored_many(ctx, labels)]

    def stored_many(self, ctx: DataContext, labels: Iterable[int]) -> list[bytes | None]:
        """The stored values of ``labels``' indices, in order (None where absent)."""
        tks = [index_tkey(label) for label in labels]
        return [rows[0][1] if rows else None for rows in ctx.ranges([(tk, tk) for tk in tks])]

    def put(self, batch: VersionedBatch, index: LabelIndex) -> None:
        """Store ``index`` in ``batch``; an empty index deletes the label's index (a tombstone)."""
        if index.is_empty:
            self.delete(batch, index.label)
        else:
            batch.put(index_tkey(index.label), encode_stored(index))

    def delete(self, batch: VersionedBatch, label: int) -> None:
        batch.delete(index_tkey(label))

    def labels(self, ctx: DataContext, start: int = 0, stop: int = 2**64 - 1) -> Iterator[int]:
        """Labels with an index visible at the context's version, ``start <= label <= stop``, ascending
        (a keys-only scan)."""
        for tk in ctx.keys(index_tkey(start), index_tkey(stop)):
            yield label_of_tkey(tk)


def encode_stored(index: LabelIndex) -> bytes:
    """The stored form of an index: its protobuf in DVID's LZ4 envelope."""
    return envelope.serialize(index.to_bytes(), _LZ4)


def decode_stored(value: bytes) -> LabelIndex:
    """An index from its stored form (any DVID envelope)."""
    return LabelIndex.from_bytes(envelope.deserialize(value))
