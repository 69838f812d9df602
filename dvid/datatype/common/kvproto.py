"""DVID's keyvalue protobuf messages, built at import time (no generated ``_pb2`` module, no protoc).

The schema is DVID's ``datatype/common/proto/keyvalue.proto`` (proto3, package ``proto``)::

    message KeyValue  { string key = 1; bytes value = 2; }
    message KeyRange  { string key = 1; uint64 byte_start = 2; uint64 byte_end = 3; }
    message Keys      { repeated string keys = 1; repeated KeyRange key_ranges = 2; }
    message KeyValues { repeated KeyValue kvs = 1; }

Wire tags: KeyValues.kvs ``0x0A``; KeyValue.key ``0x0A``, value ``0x12``; Keys.keys ``0x0A``,
key_ranges ``0x12``; KeyRange.key ``0x0A``, byte_start ``0x10``, byte_end ``0x18``.
The messages live in a private descriptor pool so they never collide with other protobuf users.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto

FILE_NAME = "datatype/common/proto/keyvalue.proto"
PACKAGE = "proto"


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(name=FILE_NAME, package=PACKAGE, syntax="proto3")

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> None:
        msg = fdp.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            f = msg.field.add(name=fname, number=number, type=ftype, label=label, json_name=_camel(fname))
            if type_name:
                f.type_name = type_name

    opt, rep = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
    message("KeyValue", ("key", 1, _F.TYPE_STRING, opt, ""), ("value", 2, _F.TYPE_BYTES, opt, ""))
    message(
        "KeyRange",
        ("key", 1, _F.TYPE_STRING, opt, ""),
        ("byte_start", 2, _F.TYPE_UINT64, opt, ""),
        ("byte_end", 3, _F.TYPE_UINT64, opt, ""),
    )
    message(
        "Keys",
        ("keys", 1, _F.TYPE_STRING, rep, ""),
        ("key_ranges", 2, _F.TYPE_MESSAGE, rep, ".proto.KeyRange"),
    )
    message("KeyValues", ("kvs", 1, _F.TYPE_MESSAGE, rep, ".proto.KeyValue"))
    return fdp


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


POOL = descriptor_pool.DescriptorPool()
POOL.Add(_file_descriptor())

KeyValue: Any = message_factory.GetMessageClass(POOL.FindMessageTypeByName("proto.KeyValue"))
KeyRange: Any = message_factory.GetMessageClass(POOL.FindMessageTypeByName("proto.KeyRange"))
Keys: Any = message_factory.GetMessageClass(POOL.FindMessageTypeByName("proto.Keys"))
KeyValues: Any = message_factory.GetMessageClass(POOL.FindMessageTypeByName("proto.KeyValues"))


_ONE_BYTE = [bytes((i,)) for i in range(0x80)]


def varint(n: int) -> bytes:
    """A protobuf varint of a non-negative integer."""
    if n < 0x80:
        return _ONE_BYTE[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def encode_kvs_entry(key: str, value: bytes) -> tuple[bytes, ...]:
    """One ``KeyValues.kvs`` field, as pieces whose concatenation equals what protobuf writes.

    Repeated fields concatenate, so the pieces of successive entries form a valid ``KeyValues``
    message; the value is passed through without being copied into a message object.
    """
    kb = key.encode("utf-8")
    inner = b"\x0a" + varint(len(kb)) + kb
    if not value:  # proto3 omits empty bytes
        return (b"\x0a" + varint(len(inner)) + inner,)
    vhead = b"\x12" + varint(len(value))
    return (b"\x0a" + varint(len(inner) + len(vhead) + len(value)) + inner + vhead, value)


__all__ = ["KeyRange", "KeyValue", "KeyValues", "Keys", "encode_kvs_entry"]
