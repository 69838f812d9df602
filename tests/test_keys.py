"""DVID's key byte layout (spec core.md §5.2-5.3), byte for byte."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dvid.errors import BadRequest
from dvid.storage import keys

I32 = st.integers(-(2**31), 2**31 - 1)
U32 = st.integers(0, 2**32 - 1)


def kv_tkey(name: bytes) -> bytes:
    """keyvalue's tkey: class 0xB1, payload = key bytes + 0x00 terminator."""
    return keys.tkey(0xB1, name + b"\x00")


# ---- the spec's worked example ---------------------------------------------------------------------


def test_keyvalue_tkey_bytes():
    assert kv_tkey(b"foo") == bytes.fromhex("B1 01 66 6F 6F 00")


def test_data_key_spec_example():
    k = keys.data_key(7, kv_tkey(b"foo"), 2)
    assert k == bytes.fromhex("01 00000007 B1 01 66 6F 6F 00 00000002 00000000 03")
    assert len(k) == 1 + 4 + 6 + 4 + 4 + 1


def test_tombstone_key_spec_example():
    k = keys.data_key(7, kv_tkey(b"foo"), 2, tombstone=True)
    assert k == bytes.fromhex("01 00000007 B1 01 66 6F 6F 00 00000002 00000000 4F")
    assert k[-1] == 0x4F == keys.MARK_TOMBSTONE
    assert keys.is_tombstone(k)
    assert not keys.is_tombstone(keys.data_key(7, kv_tkey(b"foo"), 2))


def test_client_id_field():
    k = keys.data_key(1, b"\x05\x01", 3, client=0x01020304)
    assert k == bytes.fromhex("01 00000001 05 01 00000003 01020304 03")


def test_tkey_class_bounds():
    assert keys.tkey(5) == b"\x05\x01"
    assert keys.tkey(5, b"xy") == b"\x05\x01xy"
    assert keys.min_tkey(5) == b"\x05\x00"
    assert keys.max_tkey(5) == b"\x05\xff"
    for payload in (b"", b"\x00", b"\xff" * 20):
        assert keys.min_tkey(5) < keys.tkey(5, payload) < keys.max_tkey(5)
    assert keys.max_tkey(4) < keys.min_tkey(5)


def test_prefixes_and_metadata_keys():
    assert keys.METADATA_PREFIX == b"\x00"
    assert keys.DATA_PREFIX == b"\x01"
    assert keys.metadata_key(4, keys.u32be(3)) == bytes.fromhex("00 04 01 00000003")
    assert keys.metadata_key(1) == bytes.fromhex("00 01 01")
    assert keys.instance_prefix(7) == bytes.fromhex("01 00000007")
    assert keys.u32be(0xDEADBEEF) == bytes.fromhex("DEADBEEF")


def test_version_key_bounds():
    tk = kv_tkey(b"foo")
    lo = keys.min_version_key(7, tk)
    hi = keys.max_version_key(7, tk)
    assert lo == bytes.fromhex("01 00000007 B1 01 66 6F 6F 00 00000000 00000000 00")
    assert hi == bytes.fromhex("01 00000007 B1 01 66 6F 6F 00 FFFFFFFF FFFFFFFF FF")
    assert keys.versions_stop(7, tk) == hi + b"\x00"
    for version in (0, 1, 2, 2**31, 2**32 - 1):
        for tomb in (False, True):
            assert lo <= keys.data_key(7, tk, version, tombstone=tomb) <= hi


def test_instance_range_brackets_instance_keys():
    inside = keys.data_key(7, keys.tkey(0xFF, b"\xff" * 8), 2**32 - 1, tombstone=True)
    assert keys.instance_prefix(7) <= inside < keys.instance_prefix(8)
    assert keys.data_key(6, keys.tkey(0xFF, b"\xff"), 2**32 - 1) < keys.instance_prefix(7)


def test_tombstone_sorts_after_value_of_same_version():
    tk = kv_tkey(b"k")
    assert keys.data_key(1, tk, 5) < keys.data_key(1, tk, 5, tombstone=True) < keys.data_key(1, tk, 6)


# ---- round trips -----------------------------------------------------------------------------------


@given(iid=U32, tk=st.binary(min_size=2, max_size=40), version=U32, tomb=st.booleans(), client=U32)
def test_key_field_round_trips(iid, tk, version, tomb, client):
    k = keys.data_key(iid, tk, version, tombstone=tomb, client=client)
    assert keys.instance_of(k) == iid
    assert keys.tkey_of(k) == tk
    assert keys.version_of(k) == version
    assert keys.is_tombstone(k) == tomb
    assert k[:1] == keys.DATA_PREFIX
    assert len(k) == keys.HEAD_LEN + len(tk) + keys.SUFFIX_LEN


@given(
    iid=U32,
    tk=st.binary(min_size=2, max_size=20),
    version=U32,
    tomb=st.booleans(),
    client=U32,
    iid2=U32,
    version2=U32,
)
def test_with_ids(iid, tk, version, tomb, client, iid2, version2):
    k = keys.data_key(iid, tk, version, tombstone=tomb, client=client)
    moved = keys.with_ids(k, iid2, version2)
    assert moved == keys.data_key(iid2, tk, version2, tombstone=tomb)  # client id reset to 0
    assert keys.instance_of(moved) == iid2
    assert keys.version_of(moved) == version2
    assert keys.tkey_of(moved) == tk
    assert keys.is_tombstone(moved) == tomb


def test_with_ids_example():
    k = bytes.fromhex("01 00000007 B1 01 66 6F 6F 00 00000002 00000009 4F")
    assert keys.with_ids(k, 9, 0x0A0B0C0D) == bytes.fromhex(
        "01 00000009 B1 01 66 6F 6F 00 0A0B0C0D 00000000 4F"
    )


@given(iid=U32, tk=st.binary(min_size=2, max_size=20), version=U32, tomb=st.booleans(), client=U32,
       iid2=U32, version2=U32)  # fmt: skip
def test_portable_key_round_trip(iid, tk, version, tomb, client, iid2, version2):
    k = keys.data_key(iid, tk, version, tombstone=tomb, client=client)
    pk = keys.portable_key(k)
    assert pk == tk + bytes((keys.MARK_TOMBSTONE if tomb else keys.MARK_DATA,))
    assert keys.from_portable_key(pk, iid2, version2) == keys.with_ids(k, iid2, version2)


def test_portable_key_without_a_mark_is_refused():
    for pk in (b"", b"\xb1\x01x\x00", b"\xb1\x01x\x00\x04"):
        with pytest.raises(ValueError, match="mark byte"):
            keys.from_portable_key(pk, 1, 1)


# ---- block coordinates -----------------------------------------------------------------------------


def test_zyx_bytes_examples():
    assert keys.zyx_bytes(0, 0, 0) == bytes.fromhex("80000000 80000000 80000000")
    assert keys.zyx_bytes(1, 2, 3) == bytes.fromhex("80000003 80000002 80000001")
    assert keys.zyx_bytes(-1, 0, 0) == bytes.fromhex("80000000 80000000 7FFFFFFF")
    assert keys.zyx_bytes(-(2**31), 2**31 - 1, 0) == bytes.fromhex("80000000 FFFFFFFF 00000000")
    assert keys.zyx_from_bytes(bytes.fromhex("80000003 80000002 80000001")) == (1, 2, 3)
    assert keys.zyx_from_bytes(b"pad" + keys.zyx_bytes(-5, 6, -7), offset=3) == (-5, 6, -7)


@pytest.mark.parametrize("coord", [(2**31, 0, 0), (0, -(2**31) - 1, 0), (0, 0, 2**32), (2**64, 0, 0)])
def test_zyx_bytes_refuses_coordinates_outside_32_bits(coord):
    # wrapped, (2**32, 0, 0) would be block (0, 0, 0)'s key (fuzz, issue 11)
    with pytest.raises(BadRequest, match="32-bit"):
        keys.zyx_bytes(*coord)


@given(x=I32, y=I32, z=I32)
def test_zyx_round_trip(x, y, z):
    b = keys.zyx_bytes(x, y, z)
    assert len(b) == 12
    assert keys.zyx_from_bytes(b) == (x, y, z)


@given(a=st.tuples(I32, I32, I32), b=st.tuples(I32, I32, I32))
def test_zyx_bytes_order_is_z_then_y_then_x(a, b):
    """Bytewise order of the encoding equals numeric order of (z, y, x), negatives before positives."""
    (ax, ay, az), (bx, by, bz) = a, b
    assert (keys.zyx_bytes(ax, ay, az) < keys.zyx_bytes(bx, by, bz)) == ((az, ay, ax) < (bz, by, bx))
    assert (keys.zyx_bytes(ax, ay, az) == keys.zyx_bytes(bx, by, bz)) == (a == b)


def test_zyx_negatives_sort_before_positives():
    coords = [(x, y, z) for z in (-2, -1, 0, 1) for y in (-1, 0, 1) for x in (-(2**31), -1, 0, 2**31 - 1)]
    encoded = sorted(coords, key=lambda c: keys.zyx_bytes(*c))
    assert encoded == coords  # coords was built in z, y, x order
    assert keys.zyx_bytes(-1, -1, -1) < keys.zyx_bytes(0, 0, 0) < keys.zyx_bytes(1, 1, 1)
    # z dominates y dominates x
    assert keys.zyx_bytes(100, 100, -1) < keys.zyx_bytes(-100, -100, 0)
    assert keys.zyx_bytes(100, -1, 0) < keys.zyx_bytes(-100, 0, 0)


# ---- prefix-freeness -------------------------------------------------------------------------------


def test_all_versions_of_a_key_sort_before_longer_keys():
    """With terminated payloads, every version of "a" sorts before any version of "a0", "a\\xff", "b"."""
    tk_a = kv_tkey(b"a")
    a_keys = [keys.data_key(3, tk_a, v, tombstone=t) for v in (0, 1, 2**31, 2**32 - 1) for t in (False, True)]
    for longer in (b"a0", b"a\x01", b"a\xff", b"aa", b"b"):
        tk = kv_tkey(longer)
        assert tk_a < tk
        first = keys.data_key(3, tk, 0)
        assert max(a_keys) < keys.versions_stop(3, tk_a) <= keys.min_version_key(3, tk) <= first


@given(
    names=st.lists(
        st.binary(max_size=6).filter(lambda b: b"\x00" not in b), min_size=1, max_size=8, unique=True
    ),
    versions=st.lists(st.tuples(U32, st.booleans()), min_size=1, max_size=4),
)
def test_sorted_data_keys_group_by_tkey_in_tkey_order(names, versions):
    """Sorting full keys never interleaves versions of different terminated tkeys."""
    full = [keys.data_key(9, kv_tkey(n), v, tombstone=t) for n in names for v, t in versions]
    full.sort()
    seen = [keys.tkey_of(k) for k in full]
    groups = [tk for i, tk in enumerate(seen) if i == 0 or seen[i - 1] != tk]
    assert groups == sorted(kv_tkey(n) for n in names)
    # Within one tkey, versions appear in increasing order.
    for tk in groups:
        vs = [keys.version_of(k) for k in full if keys.tkey_of(k) == tk]
        assert vs == sorted(vs)


@given(a=st.tuples(I32, I32, I32), b=st.tuples(I32, I32, I32), va=U32, vb=U32)
def test_fixed_width_block_keys_do_not_interleave(a, b, va, vb):
    ka = keys.data_key(2, keys.tkey(0xD1, keys.zyx_bytes(*a)), va)
    kb = keys.data_key(2, keys.tkey(0xD1, keys.zyx_bytes(*b)), vb)
    if a != b:
        assert (ka < kb) == (keys.zyx_bytes(*a) < keys.zyx_bytes(*b))
