"""labelmap's blocks: compressed label Blocks in the instance's envelope, one key space per scale.

A :class:`LabelBlockCodec` is the image types' ``BlockCodec`` for DVID's compressed label Block
(``codec.py``); given a ``table_map`` it decodes blocks with their label tables mapped (supervoxels
to bodies), at a cost proportional to the number of labels in a block, not to its voxels.
"""

from __future__ import annotations

import copy
import gzip
import zlib
from collections.abc import Callable

import numpy as np

from dvid.datatype.common import envelope
from dvid.datatype.common.blockstore import BlockCodec, BlockStore
from dvid.datatype.common.envelope import Compression
from dvid.datatype.common.geometry import Point
from dvid.datatype.common.voxels import VOXEL_FORMATS
from dvid.datatype.labelmap import codec
from dvid.datatype.labelmap.slabcache import SLABS, SUB, Region, thin_axis
from dvid.datatype.labelmap.tkeys import block_prefix
from dvid.errors import BadRequest

TableMap = Callable[[np.ndarray], np.ndarray]
#: The largest encoded Block a POST may carry (a 1024^3 block of 512 labels per sub-block).
MAX_BLOCK_BYTES = 16 + 8 * 2**24 + 2 * 2**21 + 4 * 512 * 2**21 + 9 * 64 * 2**21


class LabelBlockCodec(BlockCodec):
    """Compressed label Blocks, enveloped with the instance's compression."""

    def __init__(
        self, block_size: Point, compression: Compression, table_map: TableMap | None = None
    ) -> None:
        super().__init__(VOXEL_FORMATS["uint64"], block_size, compression)
        self.table_map = table_map

    def mapped(self, table_map: TableMap | None) -> LabelBlockCodec:
        """This codec decoding label tables through ``table_map`` (None: supervoxels as stored)."""
        twin = copy.copy(self)
        twin.table_map = table_map
        return twin

    def encode(self, block: np.ndarray) -> bytes:
        return self.envelope(codec.encode_block(block))

    def envelope(self, block_bytes: bytes) -> bytes:
        """The stored value of an encoded Block."""
        return envelope.serialize(block_bytes, self.compression)

    def block_bytes(self, stored: bytes) -> bytes:
        """The encoded Block inside a stored value."""
        return envelope.deserialize(stored)

    def decode(self, stored: bytes) -> np.ndarray:
        raw = envelope.deserialize(stored)
        if self.table_map is None:
            return codec.decode_block(raw)
        return codec.decode_block(raw, self.table_map(codec.label_table(raw)))

    def decode_part(self, stored: bytes, region: tuple[slice, ...]) -> np.ndarray:
        """The box ``region`` of a stored block, mapped if this codec maps. A box inside one layer
        of 8^3 sub-blocks (a plane) is cut from that layer, decoded once and kept for the next
        planes (``slabcache``); other boxes decode only the sub-blocks they meet."""
        box: Region = region  # type: ignore[assignment]
        axis = thin_axis(box, self.block_size[::-1])
        if axis is None:
            raw = envelope.deserialize(stored)
            table = None if self.table_map is None else self.table_map(codec.label_table(raw))
            return codec.decode_region(raw, box, table)
        start, stop, _ = box[axis].indices(self.block_size[::-1][axis])
        index = start // SUB
        labels, indices = SLABS.layer(stored, lambda: envelope.deserialize(stored), axis, index)
        local = list(box)
        local[axis] = slice(start - index * SUB, stop - index * SUB)
        table = labels if self.table_map is None else self.table_map(labels)
        return np.asarray(table, dtype=np.uint64)[indices[tuple(local)]]

    def decode_into(self, stored: bytes, out: np.ndarray) -> None:
        raw = envelope.deserialize(stored)
        table = None if self.table_map is None else self.table_map(codec.label_table(raw))
        if out.dtype == np.uint64:
            codec.decode_block(raw, table, out=out)
        else:
            out[...] = codec.decode_block(raw, table)

    def values_at(self, stored: bytes, local: np.ndarray) -> np.ndarray:
        """The labels at (n, 3) z, y, x positions inside a stored block, mapped if this codec maps,
        read from the compressed Block without decoding it (a few points cost far less than a block)."""
        raw = envelope.deserialize(stored)
        if self.table_map is None:
            return codec.labels_at(raw, local)
        return codec.labels_at(raw, local, self.table_map(codec.label_table(raw)))

    def google(self, stored: bytes) -> bytes:
        """A stored block's labels, mapped if this codec maps, in neuroglancer's compressed_segmentation
        (8x8x8 blocks), transcoded from the compressed Block without decoding it."""
        raw = envelope.deserialize(stored)
        if self.table_map is None:
            return codec.google_block(raw)
        return codec.google_block(raw, self.table_map(codec.label_table(raw)))

    def wire_blocks_payload(self, stored: bytes) -> bytes:
        """A stored block as ``compression=blocks`` sends it: the gzip of the encoded Block, mapped if
        this codec maps; the stored gzip bytes themselves when they need no change."""
        stored_gzip = envelope.read_header(stored) == (envelope.GZIP, envelope.CHECKSUM_NONE)
        if self.table_map is None and stored_gzip:
            return envelope.payload(stored)
        raw = envelope.deserialize(stored)
        if self.table_map is not None:
            table = codec.label_table(raw)
            mapped = self.table_map(table)
            if np.array_equal(mapped, table):
                if stored_gzip:
                    return envelope.payload(stored)
            else:
                raw = codec.with_table(raw, mapped)
        return gzip.compress(raw, compresslevel=1)

    def check_block(self, raw: bytes, where: str) -> None:
        """400 unless ``raw`` is a well-formed Block of this instance's block size."""
        try:
            shape = codec.block_shape(raw)
            codec.label_table(raw)
        except (codec.BlockFormatError, ValueError) as exc:
            raise BadRequest(f"{where}: not a compressed label block: {exc}") from None
        if shape != self.block_shape:
            want = list(reversed(self.block_shape))
            raise BadRequest(
                f"{where}: a block of {list(reversed(shape))} voxels, the instance's blocks are {want}"
            )


def scale_store(
    block_size: Point, compression: Compression, scale: int, table_map: TableMap | None = None
) -> BlockStore:
    """The blocks of one scale, decoded through ``table_map`` if given."""
    return BlockStore(LabelBlockCodec(block_size, compression, table_map), 0, block_prefix(scale))


def gunzip_block(payload: bytes, coord: Point) -> bytes:
    """The Block inside a posted payload (gzip, as DVID requires), bounded in size."""
    try:
        inflater = zlib.decompressobj(wbits=31)
        raw = inflater.decompress(payload, MAX_BLOCK_BYTES)
        if inflater.unconsumed_tail or not inflater.eof:
            raise BadRequest(f"block {list(coord)}: the gzip payload is cut short or inflates too far")
    except zlib.error as exc:
        raise BadRequest(f"block {list(coord)}: the payload is not gzip data ({exc})") from None
    return raw
