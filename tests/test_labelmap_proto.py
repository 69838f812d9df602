"""Wire bytes of DVID's labelops protobuf messages (datatype/common/proto/labelops.proto), built by hand
from the protobuf wire rules and compared with what the message classes write and read."""

from __future__ import annotations

import pytest
from google.protobuf.message import DecodeError

from dvid.datatype.labelmap import proto


def varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def vfield(number: int, value: int) -> bytes:
    """A varint field."""
    return tag(number, 0) + varint(value)


def lfield(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return tag(number, 2) + varint(len(payload)) + payload


def counts_entry(sv: int, count: int) -> bytes:
    return lfield(1, vfield(1, sv) + vfield(2, count))


def blocks_entry(block: int, svcount: bytes) -> bytes:
    return lfield(1, vfield(1, block) + lfield(2, svcount))


def test_small_label_index_bytes():
    msg = proto.LabelIndexMsg(label=5, last_mutid=300, last_mod_user="bob")
    msg.blocks[3].counts[7] = 2
    msg.blocks[3].surface_mutid = 1
    expected = bytes.fromhex("0a0c 0803 1208 0a04 0807 1002 1001 1005 18ac02 2a03626f62".replace(" ", ""))
    by_rule = blocks_entry(3, counts_entry(7, 2) + vfield(2, 1))
    by_rule += vfield(2, 5) + vfield(3, 300) + lfield(5, b"bob")
    assert by_rule == expected
    assert msg.SerializeToString() == expected
    back = proto.LabelIndexMsg.FromString(expected)
    assert back == msg
    assert dict(back.blocks[3].counts) == {7: 2}


def test_map_entry_declared_as_protoc_does():
    counts = proto.SVCount.DESCRIPTOR.fields_by_name["counts"]
    entry = counts.message_type
    assert entry.full_name == "proto.SVCount.CountsEntry"
    assert entry.GetOptions().map_entry
    assert [(f.name, f.number) for f in entry.fields] == [("key", 1), ("value", 2)]
    blocks = proto.LabelIndexMsg.DESCRIPTOR.fields_by_name["blocks"]
    assert blocks.message_type.full_name == "proto.LabelIndex.BlocksEntry"
    assert blocks.message_type.fields_by_name["value"].message_type.full_name == "proto.SVCount"
    assert proto.LabelIndexMsg.DESCRIPTOR.full_name == "proto.LabelIndex"
    assert proto.LabelIndexMsg.DESCRIPTOR.file.name == "datatype/common/proto/labelops.proto"


def test_parse_hand_encoded_maps():
    """Several entries, large varints, a block entry without its key (0), entries out of field order."""
    big_sv = 2**63 + 12345
    data = (
        vfield(2, 99)
        + blocks_entry(2**62, counts_entry(big_sv, 4_000_000_000) + counts_entry(1, 1))
        + lfield(1, lfield(2, counts_entry(5, 6)))  # BlocksEntry with no key: block 0
        + lfield(6, "app-é".encode())
    )
    msg = proto.LabelIndexMsg.FromString(data)
    assert msg.label == 99
    assert msg.last_mod_app == "app-é"
    assert {k: dict(v.counts) for k, v in msg.blocks.items()} == {
        2**62: {big_sv: 4_000_000_000, 1: 1},
        0: {5: 6},
    }


def test_label_indices_is_repeated_label_index():
    one = blocks_entry(1, counts_entry(2, 3)) + vfield(2, 10)
    two = vfield(2, 11)
    msg = proto.LabelIndices.FromString(lfield(1, one) + lfield(1, two))
    assert [m.label for m in msg.indices] == [10, 11]
    assert msg.SerializeToString() == lfield(1, one) + lfield(1, two)


def test_mapping_ops_bytes():
    op = proto.MappingOp(mutid=1, mapped=2, original=[3, 300])
    packed = vfield(1, 1) + vfield(2, 2) + lfield(3, varint(3) + varint(300))  # proto3 packs repeated
    assert op.SerializeToString() == packed
    ops = proto.MappingOps(mappings=[op, proto.MappingOp(mapped=7)])
    assert ops.SerializeToString() == lfield(1, packed) + lfield(1, vfield(2, 7))
    # a parser accepts the unpacked form too
    unpacked = vfield(2, 2) + vfield(3, 3) + vfield(3, 300)
    assert list(proto.MappingOp.FromString(unpacked).original) == [3, 300]


def test_corrupt_input_raises():
    with pytest.raises(DecodeError):
        proto.LabelIndexMsg.FromString(b"\x0a\x05\x08\x01")
