"""Datatypes: importing this package registers every compiled-in type."""

from dvid.datatype import imageblk, keyvalue  # noqa: F401
