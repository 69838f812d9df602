"""Datatypes: importing this package registers every compiled-in type."""

from dvid.datatype import imageblk, keyvalue, labelblk, labelvol  # noqa: F401
