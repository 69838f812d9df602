"""DVID's value envelope: header bytes, round trips for every compression, legacy forms, CRC."""

from __future__ import annotations

import gzip
import struct
import zlib

import cramjam
import lz4.block
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dvid.datatype.common import envelope
from dvid.datatype.common.envelope import Compression, deserialize, serialize

COMPRESSIONS = {
    "none": Compression(envelope.NONE),
    "none+crc": Compression(envelope.NONE, checksum=envelope.CHECKSUM_CRC32),
    "lz4": Compression(envelope.LZ4),
    "lz4+crc": Compression(envelope.LZ4, checksum=envelope.CHECKSUM_CRC32),
    "gzip": Compression(envelope.GZIP),
    "gzip:9": Compression(envelope.GZIP, level=9),
    "snappy": Compression(envelope.SNAPPY),
    "snappy+crc": Compression(envelope.SNAPPY, checksum=envelope.CHECKSUM_CRC32),
}

HEADERS = {"none": 0x00, "none+crc": 0x08, "lz4": 0x80, "lz4+crc": 0x88, "gzip": 0x40, "snappy": 0x20}


@pytest.mark.parametrize("name", sorted(HEADERS))
def test_header_byte(name):
    out = serialize(b"hello hello hello", COMPRESSIONS[name])
    assert out[0] == HEADERS[name]


@pytest.mark.parametrize("name", sorted(COMPRESSIONS))
def test_read_header_and_payload(name):
    c = COMPRESSIONS[name]
    out = serialize(b"hello hello hello", c)
    checksum = c.checksum if c.format != envelope.GZIP else envelope.CHECKSUM_NONE
    head = envelope.read_header(out)
    assert head == (c.format, checksum) and head.to_bytes() == out[:1]
    assert envelope.payload(out) == out[5 if checksum == envelope.CHECKSUM_CRC32 else 1 :]
    assert envelope.Header(envelope.JPEG).to_bytes() == b"\xa0"
    assert envelope.payload(b"") == b""


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=3000), name=st.sampled_from(sorted(COMPRESSIONS)))
def test_payload_length_is_the_unwrapped_length(data, name):
    assert envelope.payload_length(serialize(data, COMPRESSIONS[name])) == len(data)


def test_payload_length_of_legacy_lz4_size_zero():
    assert envelope.payload_length(b"\x80" + struct.pack("<I", 0) + b"raw bytes") == len(b"raw bytes")


def test_lz4_layout():
    data = b"abcabcabcabc" * 50
    out = serialize(data)  # default: LZ4, no checksum
    assert out[:1] == b"\x80"
    assert struct.unpack_from("<I", out, 1)[0] == len(data)
    assert out[1:] == lz4.block.compress(data, store_size=True)


def test_crc_layout():
    data = b"some data to checksum"
    out = serialize(data, COMPRESSIONS["none+crc"])
    assert out[0] == 0x08
    assert out[1:5] == struct.pack("<I", zlib.crc32(data))
    assert out[5:] == data


def test_gzip_never_checksummed():
    out = serialize(b"gzip me", Compression(envelope.GZIP, checksum=envelope.CHECKSUM_CRC32))
    assert out[0] == 0x40
    assert gzip.decompress(out[1:]) == b"gzip me"


@pytest.mark.parametrize("name", sorted(COMPRESSIONS))
def test_empty_is_empty(name):
    assert serialize(b"", COMPRESSIONS[name]) == b""
    assert deserialize(b"") == b""


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=5000), name=st.sampled_from(sorted(COMPRESSIONS)))
def test_round_trip(data, name):
    assert deserialize(serialize(data, COMPRESSIONS[name])) == data


@given(data=st.binary(min_size=1, max_size=2000))
def test_round_trip_memoryview(data):
    assert deserialize(serialize(memoryview(data))) == data


def test_reads_what_dvid_writes():
    """Envelopes built by hand, as Go DVID writes them."""
    data = b"The quick brown fox jumps over the lazy dog" * 3
    assert deserialize(b"\x00" + data) == data
    assert deserialize(b"\x80" + lz4.block.compress(data, store_size=True)) == data
    assert deserialize(b"\x40" + gzip.compress(data)) == data
    assert deserialize(b"\x20" + bytes(cramjam.snappy.compress_raw(data))) == data
    payload = lz4.block.compress(data, store_size=True)
    assert deserialize(b"\x88" + struct.pack("<I", zlib.crc32(payload)) + payload) == data


def test_legacy_lz4_size_zero_is_raw():
    assert deserialize(b"\x80" + struct.pack("<I", 0) + b"raw bytes follow") == b"raw bytes follow"


def test_crc_mismatch_raises():
    payload = lz4.block.compress(b"checked value", store_size=True)
    good = b"\x88" + struct.pack("<I", zlib.crc32(payload)) + payload
    assert deserialize(good) == b"checked value"
    bad = good[:1] + struct.pack("<I", zlib.crc32(payload) ^ 1) + payload
    with pytest.raises(ValueError):
        deserialize(bad)
    with pytest.raises(ValueError):
        deserialize(b"\x08\x01\x02")  # too short for its CRC


def test_unknown_format_raises():
    with pytest.raises(ValueError):
        deserialize(b"\xe0abc")  # format 7


@pytest.mark.parametrize(
    ("setting", "checksum", "expected"),
    [
        (None, None, Compression(envelope.LZ4, -1, envelope.CHECKSUM_NONE)),
        ("none", None, Compression(envelope.NONE, -1, envelope.CHECKSUM_NONE)),
        ("LZ4", "crc32", Compression(envelope.LZ4, -1, envelope.CHECKSUM_CRC32)),
        ("gzip:7", "crc32", Compression(envelope.GZIP, 7, envelope.CHECKSUM_NONE)),
        ("snappy", "none", Compression(envelope.SNAPPY, -1, envelope.CHECKSUM_NONE)),
    ],
)
def test_parse_settings(setting, checksum, expected):
    assert Compression.parse(setting, checksum) == expected
