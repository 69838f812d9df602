"""Datatypes: importing this package registers every compiled-in type."""

from dvid.datatype import (  # noqa: F401
    annotation,
    imageblk,
    keyvalue,
    labelblk,
    labelgraph,
    labelmap,
    labelsz,
    labelvol,
    neuronjson,
    roi,
    tarsupervoxels,
)
