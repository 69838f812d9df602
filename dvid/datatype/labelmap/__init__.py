"""labelmap: supervoxel label volumes with a body mapping, label indexes and proofreading edits.

The class is built in layers, one file each, every layer on the one before:

- ``core.py``      :class:`LabelMapCore`: settings, scale views, mapping and indexes, block commits
- ``voxels.py``    volume reads through the mapping, block streams out and in, raw POSTs
- ``bodies.py``    label counters, the mapping and label-index endpoints
- ``handlers.py``  :class:`LabelMap`: the route table

beside ``codec.py`` (DVID's compressed label Block), ``labelindex.py`` (label indexes),
``mapping.py`` (the versioned supervoxel -> body mapping), ``proto.py`` (DVID's labelops protobuf
messages), ``blocks.py`` (the block codec and per-scale stores), ``tkeys.py`` (type keys),
``settings.py`` and ``help.py``.
"""

from dvid.datatype.labelmap.handlers import LabelMap

__all__ = ["LabelMap"]
