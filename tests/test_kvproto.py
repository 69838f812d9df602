"""Wire bytes of the keyvalue protobuf messages (DVID's datatype/common/proto/keyvalue.proto)."""

from __future__ import annotations

import pytest
from google.protobuf.message import DecodeError
from hypothesis import given
from hypothesis import strategies as st

from dvid.datatype.common import kvproto


def test_keyvalue_tags():
    assert kvproto.KeyValue(key="a", value=b"xy").SerializeToString() == b"\x0a\x01a\x12\x02xy"
    # proto3: an empty value is omitted
    assert kvproto.KeyValue(key="b").SerializeToString() == b"\x0a\x01b"


def test_keyvalues_tags():
    msg = kvproto.KeyValues(kvs=[kvproto.KeyValue(key="a", value=b"xy"), kvproto.KeyValue(key="b")])
    assert msg.SerializeToString() == b"\x0a\x07\x0a\x01a\x12\x02xy" + b"\x0a\x03\x0a\x01b"


def test_keys_and_keyrange_tags():
    kr = kvproto.KeyRange(key="p", byte_start=1, byte_end=300)
    assert kr.SerializeToString() == b"\x0a\x01p\x10\x01\x18\xac\x02"
    msg = kvproto.Keys(keys=["k1", "k2"], key_ranges=[kvproto.KeyRange(key="p", byte_start=1, byte_end=3)])
    assert msg.SerializeToString() == (
        b"\x0a\x02k1" + b"\x0a\x02k2" + b"\x12\x07" + b"\x0a\x01p\x10\x01\x18\x03"
    )


def test_parse_hand_encoded():
    msg = kvproto.Keys.FromString(b"\x0a\x03abc\x12\x07\x0a\x01z\x10\x05\x18\x09")
    assert list(msg.keys) == ["abc"]
    assert [(r.key, r.byte_start, r.byte_end) for r in msg.key_ranges] == [("z", 5, 9)]


def test_package_and_names():
    assert kvproto.KeyValues.DESCRIPTOR.full_name == "proto.KeyValues"
    assert kvproto.KeyRange.DESCRIPTOR.file.package == "proto"
    assert kvproto.KeyRange.DESCRIPTOR.file.name == "datatype/common/proto/keyvalue.proto"


def test_corrupt_input_raises():
    with pytest.raises(DecodeError):
        kvproto.KeyValues.FromString(b"\x0a\x05\x0a\x03")


@given(st.lists(st.tuples(st.text(min_size=1, max_size=20), st.binary(max_size=300)), max_size=8))
def test_encode_kvs_entry_matches_protobuf(pairs):
    expected = kvproto.KeyValues(kvs=[kvproto.KeyValue(key=k, value=v) for k, v in pairs]).SerializeToString()
    assert b"".join(p for k, v in pairs for p in kvproto.encode_kvs_entry(k, v)) == expected
