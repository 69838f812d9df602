"""Datatypes: importing this package registers every compiled-in type."""

from dvid.datatype import keyvalue  # noqa: F401
