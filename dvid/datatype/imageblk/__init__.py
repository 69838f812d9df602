"""The imageblk family: uint8blk (grayscale), uint16blk, uint32blk, uint64blk, float32blk, rgba8blk.

One implementation with the voxel type as a parameter. Volumes are stored as blocks (see
``common/blockstore.py``); reads of any box are assembled with numpy and streamed slab by slab;
writes of any box (aligned or not) are atomic per request. ``NAME_1``, ``NAME_2``, ... hold the
2x-downsampled levels of ``NAME`` (neuroglancer's convention), built and kept current by
``POST .../pyramid``.

The class is built in layers, one file each, every layer on the one before:

- ``core.py``      :class:`ImageCore`: settings, block store, info, extents, block commits
- ``read.py``      slices, streamed volumes, block payloads
- ``pyramid.py``   the downsampled levels
- ``write.py``     box writes, label edits, the receive path of a raw POST
- ``handlers.py``  :class:`ImageBlk`: the route table and the HTTP handlers
- ``types.py``     the registered subclasses, one per voxel kind

beside ``settings.py`` (:class:`ImageSettings`, stored extents), ``params.py`` (route parameters)
and ``help.py`` (the help text). Wire codecs are in ``dvid/datatype/common/wire.py``.
"""

from dvid.datatype.imageblk.core import ImageCore
from dvid.datatype.imageblk.handlers import ImageBlk
from dvid.datatype.imageblk.help import HELP_TEMPLATE
from dvid.datatype.imageblk.params import ROI_QUERY, SCALE
from dvid.datatype.imageblk.pyramid import PYRAMID_TILE, ImagePyramid, _block_row_boxes, _tiles
from dvid.datatype.imageblk.read import ImageReads, _plane, stream_volume
from dvid.datatype.imageblk.settings import ImageSettings
from dvid.datatype.imageblk.types import Float32Blk, Rgba8Blk, Uint8Blk, Uint16Blk, Uint32Blk, Uint64Blk
from dvid.datatype.imageblk.write import ImageWrites

__all__ = [
    "HELP_TEMPLATE",
    "PYRAMID_TILE",
    "ROI_QUERY",
    "SCALE",
    "Float32Blk",
    "ImageBlk",
    "ImageCore",
    "ImagePyramid",
    "ImageReads",
    "ImageSettings",
    "ImageWrites",
    "Rgba8Blk",
    "Uint8Blk",
    "Uint16Blk",
    "Uint32Blk",
    "Uint64Blk",
    "_block_row_boxes",
    "_plane",
    "_tiles",
    "stream_volume",
]
