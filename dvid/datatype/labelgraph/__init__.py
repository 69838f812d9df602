"""The ``labelgraph`` datatype: an undirected weighted graph of labels with vertex and edge
properties (spec more-types.md §2; DVID's type, removed from DVID in 2023).

The package, layer on layer: ``records`` (tkeys and the stored vertex and edge records, byte for
byte as DVID), ``wire`` (the LabelGraph JSON in and out, the propertytransaction binary formats),
``transactions`` (vertex locks in memory, transaction ids persisted), ``graph`` (reads and the
edits, each one atomic batch), ``bodysync`` (following a labelmap's body merges), ``help``,
``settings`` and ``handlers`` (the registered :class:`LabelGraph`).
"""

from dvid.datatype.labelgraph.handlers import LabelGraph

__all__ = ["LabelGraph"]
