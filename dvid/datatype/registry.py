"""The registry of datatypes by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dvid.errors import BadRequest

if TYPE_CHECKING:
    from dvid.datatype.base import Datatype

_TYPES: dict[str, type[Datatype]] = {}


def register(cls: type[Datatype]) -> type[Datatype]:
    """Class decorator: make a datatype available by its ``type_name``."""
    _TYPES[cls.type_name] = cls
    return cls


def get_type(name: str) -> type[Datatype]:
    try:
        return _TYPES[name]
    except KeyError:
        raise BadRequest(f'Data type "{name}" is not supported by current DVID server') from None


def all_types() -> dict[str, type[Datatype]]:
    """Every compiled-in datatype, by name, in name order."""
    return dict(sorted(_TYPES.items()))
