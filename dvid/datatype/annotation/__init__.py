"""The ``annotation`` datatype: point annotations (synapses, notes) indexed by block, label and tag.

Wire-compatible with DVID's ``datatype/annotation`` (type version 0.1; spec
annotation-roi-keyvalue.md §3). Three denormalized keyspaces, all values raw compact JSON:

- class 72 ``48 01 <ZYX block>``: the elements (with relationships) whose Pos lies in the block —
  the source of truth;
- class 71 ``47 01 <u64 BE label>``: the ElementNRs of the elements whose voxel has that label in
  the synced label volume (label 0 is never indexed);
- class 70 ``46 01 <tag> 00``: the ElementNRs carrying that tag.

Every mutation updates the three in ONE atomic batch at the request's version. Label changes of the
synced ``labelblk`` (voxel writes, and labelvol merges, splits and area deletes, which rewrite the
labelblk's blocks) reach :meth:`Annotation.blocks_changed` inside the labelblk's own batch; a labelmap's
voxel writes reach it the same way (blocks decoded as bodies), its body merges, cleaves and splits
reach :meth:`Annotation.bodies_merged` and :meth:`Annotation.body_cleaved`. Per-label
element counts changes are passed on, in the same batch, to the ``sync.CountListener`` instances syncing
from this one (labelsz); see dvid.datatype.common.sync.

The package, layer on layer: ``help`` (the API text and route parameters), ``index`` (key codec and
one mutation's edit of the three indexes), ``reads`` (label source, block size, reads), ``model``
(writes, the label sync hook, reload) and ``handlers`` (the registered :class:`Annotation`: routes
and HTTP handlers).
"""

from dvid.datatype.common.gcpause import gc_paused

from .handlers import MAX_LABEL, Annotation, parse_label
from .help import HELP
from .index import (
    BLOCK_CLASS,
    LABEL_CLASS,
    TAG_CLASS,
    IndexEdit,
    block_of_tkey,
    block_tkey,
    label_tkey,
    read_blocks,
    tag_tkey,
)
from .model import AnnotationModel
from .reads import DEFAULT_BLOCK_SIZE, MAX_ROWS, AnnotationReads

__all__ = [
    "BLOCK_CLASS",
    "DEFAULT_BLOCK_SIZE",
    "HELP",
    "LABEL_CLASS",
    "MAX_LABEL",
    "MAX_ROWS",
    "TAG_CLASS",
    "Annotation",
    "AnnotationModel",
    "AnnotationReads",
    "IndexEdit",
    "block_of_tkey",
    "block_tkey",
    "gc_paused",
    "label_tkey",
    "parse_label",
    "read_blocks",
    "tag_tkey",
]
