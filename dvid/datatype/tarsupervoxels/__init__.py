"""The ``tarsupervoxels`` datatype (DVID's): a blob per supervoxel, a body's blobs as one tar.

- ``settings.py``: the creation settings (``Extension``) and the blob key;
- ``tarstream.py``: the tar archive of a body, written piece by piece;
- ``load.py``: ``POST load``, a tar parsed as it arrives and stored in batches;
- ``datatype.py``: the model methods and the HTTP handlers; ``help.py``: the API reference.
"""

from dvid.datatype.tarsupervoxels.datatype import TarSupervoxels

__all__ = ["TarSupervoxels"]
