"""The ``neuronjson`` datatype: per-body JSON annotations (Clio, neuPrint), with field stamps and
queries. Split by concern: ``values`` (parsing, Go-compatible output), ``keys`` (tkeys, ids),
``merge`` (the write rule), ``selection`` (show/fields), ``query`` (the query language),
``index`` (per-version in-memory index and its cache), ``schema`` (json_schema validation),
``model`` (reads and writes at a version), ``output`` (response bodies), ``help``, ``settings``,
``handlers`` (the route table and HTTP handlers)."""

from dvid.datatype.neuronjson.handlers import NeuronJSON

__all__ = ["NeuronJSON"]
