"""DVID's labelops protobuf messages, built at import time (no generated ``_pb2`` module, no protoc).

The schema is DVID's ``datatype/common/proto/labelops.proto`` (proto3, package ``proto``), the
messages a labelmap stores and serves::

    message SVCount      { map<uint64, uint32> counts = 1; uint64 surface_mutid = 2; }
    message LabelIndex   { map<uint64, SVCount> blocks = 1;  // key: packed block coordinate
                           uint64 label = 2; uint64 last_mutid = 3; string last_mod_time = 4;
                           string last_mod_user = 5; string last_mod_app = 6; }
    message LabelIndices { repeated LabelIndex indices = 1; }
    message MappingOp    { uint64 mutid = 1; uint64 mapped = 2; repeated uint64 original = 3; }
    message MappingOps   { repeated MappingOp mappings = 1; }

A map field is, as protoc declares it, a repeated nested ``<Name>Entry`` message (``key = 1``,
``value = 2``) with the ``map_entry`` option, so each entry is a length-delimited message on the wire:
``SVCount.counts`` entries are ``0x0A len 0x08 <sv varint> 0x10 <count varint>``, ``LabelIndex.blocks``
entries ``0x0A len 0x08 <block varint> 0x12 len <SVCount>``. ``MappingOp.original`` is packed (proto3).

Exported classes: :data:`SVCount`, :data:`LabelIndexMsg` (``proto.LabelIndex``; named apart from the
numpy-backed :class:`~dvid.datatype.labelmap.labelindex.LabelIndex`), :data:`LabelIndices`,
:data:`MappingOp`, :data:`MappingOps`. They live in a private descriptor pool, so they never collide with
other protobuf users.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto

FILE_NAME = "datatype/common/proto/labelops.proto"
PACKAGE = "proto"

_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_U32, _U64, _STR, _MSG = _F.TYPE_UINT32, _F.TYPE_UINT64, _F.TYPE_STRING, _F.TYPE_MESSAGE

# (name, number, type, label, type_name)
_Field = tuple[str, int, int, int, str]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


def _add_fields(msg: descriptor_pb2.DescriptorProto, fields: tuple[_Field, ...]) -> None:
    for fname, number, ftype, label, type_name in fields:
        f = msg.field.add(name=fname, number=number, type=ftype, label=label, json_name=_camel(fname))
        if type_name:
            f.type_name = type_name


def _map_field(
    msg: descriptor_pb2.DescriptorProto, name: str, number: int, key: int, value: int, value_type: str = ""
) -> None:
    """A ``map<key, value> name = number`` field, as protoc declares it."""
    entry_name = "".join(p.capitalize() for p in name.split("_")) + "Entry"
    entry = msg.nested_type.add(name=entry_name)
    entry.options.map_entry = True
    _add_fields(entry, (("key", 1, key, _OPT, ""), ("value", 2, value, _OPT, value_type)))
    _add_fields(msg, ((name, number, _MSG, _REP, f".{PACKAGE}.{msg.name}.{entry_name}"),))


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(name=FILE_NAME, package=PACKAGE, syntax="proto3")

    sv_count = fdp.message_type.add(name="SVCount")
    _map_field(sv_count, "counts", 1, _U64, _U32)
    _add_fields(sv_count, (("surface_mutid", 2, _U64, _OPT, ""),))

    index = fdp.message_type.add(name="LabelIndex")
    _map_field(index, "blocks", 1, _U64, _MSG, ".proto.SVCount")
    _add_fields(
        index,
        (
            ("label", 2, _U64, _OPT, ""),
            ("last_mutid", 3, _U64, _OPT, ""),
            ("last_mod_time", 4, _STR, _OPT, ""),
            ("last_mod_user", 5, _STR, _OPT, ""),
            ("last_mod_app", 6, _STR, _OPT, ""),
        ),
    )
    _add_fields(fdp.message_type.add(name="LabelIndices"), (("indices", 1, _MSG, _REP, ".proto.LabelIndex"),))
    _add_fields(
        fdp.message_type.add(name="MappingOp"),
        (("mutid", 1, _U64, _OPT, ""), ("mapped", 2, _U64, _OPT, ""), ("original", 3, _U64, _REP, "")),
    )
    _add_fields(fdp.message_type.add(name="MappingOps"), (("mappings", 1, _MSG, _REP, ".proto.MappingOp"),))
    return fdp


POOL = descriptor_pool.DescriptorPool()
POOL.Add(_file_descriptor())


def _message_class(name: str) -> Any:
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(f"{PACKAGE}.{name}"))


SVCount: Any = _message_class("SVCount")
LabelIndexMsg: Any = _message_class("LabelIndex")
LabelIndices: Any = _message_class("LabelIndices")
MappingOp: Any = _message_class("MappingOp")
MappingOps: Any = _message_class("MappingOps")

__all__ = ["FILE_NAME", "POOL", "LabelIndexMsg", "LabelIndices", "MappingOp", "MappingOps", "SVCount"]
