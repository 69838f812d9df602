"""``dvid ingest`` and ``dvid export``: volumes between the files labs hold and a dvid server.

- :mod:`dvid.ingest.sources` reads TIFF stacks and multi-page TIFF, PNG/JPEG stacks, HDF5, zarr,
  N5, neuroglancer precomputed and ``.npy`` as one kind of :class:`~dvid.ingest.sources.VolumeSource`.
- :mod:`dvid.ingest.target` describes (and creates) the data instance written or read.
- :mod:`dvid.ingest.plan` cuts a volume into block-aligned slabs and keeps the checkpoint of those done.
- :mod:`dvid.ingest.writer` posts the slabs in parallel with a bounded number in memory.
- :mod:`dvid.ingest.verify` reads slabs back and compares their digests.
- :mod:`dvid.ingest.export` streams a box out to zarr v3, TIFF, HDF5 or ``.npy``.
- :mod:`dvid.ingest.run` is one ingest from start to end; :mod:`dvid.ingest.progress` its bars.
- :mod:`dvid.ingest.cli` is the two commands.

Everything talks to the server through :class:`dvid.client.DVIDClient`.
"""

from __future__ import annotations


class IngestError(Exception):
    """An ingest or export that cannot go on; the message says why (shown as ``dvid: <message>``)."""


INSTALL_HINT = "pip install 'dvid[ingest]'"
#: What ``dvid ingest`` reads (``--format``), what ``dvid export`` writes, and the instance types of both.
SOURCE_FORMATS = ("tiff", "png", "jpeg", "hdf5", "zarr", "n5", "precomputed", "npy")
EXPORT_FORMATS = ("zarr", "tiff", "hdf5", "npy")
VOXEL_TYPE_NAMES = (
    *("uint8blk", "uint16blk", "uint32blk", "uint64blk", "float32blk", "rgba8blk"),
    *("labelblk", "labelmap"),
)

__all__ = ["EXPORT_FORMATS", "INSTALL_HINT", "SOURCE_FORMATS", "VOXEL_TYPE_NAMES", "IngestError"]
