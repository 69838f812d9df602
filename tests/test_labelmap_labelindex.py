"""labelmap label indices: block key packing, LabelIndex against a dict model and python-protobuf, and
IndexStore over every engine with versions."""

from __future__ import annotations

import struct

import lz4.block
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dvid.datatype.common import envelope
from dvid.datatype.labelmap import indexwire, proto
from dvid.datatype.labelmap.labelindex import (
    IndexStore,
    LabelIndex,
    decode_label_indices,
    encode_label_indices,
    index_tkey,
    pack_block_coords,
    unpack_block_keys,
)
from dvid.errors import BadRequest
from tests.test_labelmap_proto import blocks_entry, counts_entry, lfield, tag, varint, vfield
from tests.test_versioned_store import Repo

M20 = (1 << 20) - 1
coords = st.integers(-M20, M20)

# ---- block keys ------------------------------------------------------------------------------------


def test_pack_examples():
    assert pack_block_coords([[1, 2, 3]]).tolist() == [3 << 42 | 2 << 21 | 1]
    assert pack_block_coords([[-1, -2, -3]]).tolist() == [0x100003 << 42 | 0x100002 << 21 | 0x100001]
    assert pack_block_coords([[M20, -M20, 0]]).tolist() == [0x1FFFFF << 21 | M20]
    assert pack_block_coords(np.zeros((0, 3), int)).dtype == np.uint64
    # a "negative zero" field decodes to 0, as DVID's decoder
    assert unpack_block_keys([0x100000 << 21]).tolist() == [[0, 0, 0]]


def test_pack_refuses_coordinates_it_cannot_hold():
    with pytest.raises(BadRequest, match="within"):
        pack_block_coords([[0, 1 << 20, 0]])
    with pytest.raises(BadRequest):
        pack_block_coords([[-(1 << 20), 0, 0]])


@given(st.lists(st.tuples(coords, coords, coords), max_size=50))
def test_pack_round_trip(points):
    arr = np.array(points, dtype=np.int64).reshape(-1, 3)
    packed = pack_block_coords(arr)
    assert packed.dtype == np.uint64
    assert np.array_equal(unpack_block_keys(packed), arr)
    # each field by DVID's rule
    for (x, y, z), key in zip(points, packed.tolist(), strict=True):
        fields = [abs(v) | (0x100000 if v < 0 else 0) for v in (x, y, z)]
        assert key == fields[2] << 42 | fields[1] << 21 | fields[0]


# ---- a dict model ----------------------------------------------------------------------------------

Model = dict[tuple[int, int], int]  # (block key, sv) -> count


def model_of(index: LabelIndex) -> Model:
    rows = zip(index.blocks.tolist(), index.svs.tolist(), index.counts.tolist(), strict=True)
    return {(b, s): c for b, s, c in rows}


def index_of(label: int, model: Model, **meta) -> LabelIndex:
    rows = sorted(model.items())
    return LabelIndex(
        label,
        [b for (b, _), _ in rows],
        [s for (_, s), _ in rows],
        [c for _, c in rows],
        **meta,
    )


def message_of(label: int, model: Model, surface: dict[int, int] | None = None) -> proto.LabelIndexMsg:
    """The protobuf message of a model, built with python-protobuf's own map API."""
    msg = proto.LabelIndexMsg(label=label, last_mutid=7, last_mod_time="2024-01-02T03:04:05Z")
    for (b, s), c in model.items():
        msg.blocks[b].counts[s] = c
    for b, mutid in (surface or {}).items():
        msg.blocks[b].surface_mutid = mutid
    return msg


def model_of_message(msg) -> Model:
    return {(b, s): c for b, svc in msg.blocks.items() for s, c in svc.counts.items() if c}


u64 = st.integers(0, 2**64 - 1)
block_keys = st.one_of(st.integers(0, 40), u64)
svs = st.one_of(st.integers(1, 12), u64)
models = st.dictionaries(st.tuples(block_keys, svs), st.integers(1, 2**32 - 1), max_size=40)


def test_rows_are_canonical():
    index = LabelIndex(9, [5, 1, 5, 1, 3], [2, 7, 2, 1, 4], [1, 2, 3, 4, 0])
    assert index.blocks.tolist() == [1, 1, 5]
    assert index.svs.tolist() == [1, 7, 2]
    assert index.counts.tolist() == [4, 2, 4]
    assert index.counts.dtype == np.uint32
    assert not index.blocks.flags.writeable
    with pytest.raises(AttributeError):
        index.label = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="negative"):
        LabelIndex(1, [1], [1], [-1])
    with pytest.raises(ValueError, match="uint32"):
        LabelIndex(1, [1, 1], [1, 1], [2**32 - 1, 1])


# ---- protobuf bytes ------------------------------------------------------------------------------


@pytest.fixture(params=["loop", "numpy"])
def codec(request, monkeypatch):
    """Both codecs of the blocks map: entry by entry (small indices) and numpy (large ones)."""
    threshold = 10**9 if request.param == "loop" else 0
    monkeypatch.setattr(indexwire, "SMALL_ROWS", threshold)
    monkeypatch.setattr(indexwire, "SMALL_BYTES", threshold)
    return request.param


def test_to_bytes_is_the_hand_encoded_message(codec):
    index = LabelIndex(
        5,
        [3, 3, 0],
        [300, 7, 2**63],
        [2, 70000, 1],
        last_mutid=12,
        last_mod_time="t",
        last_mod_user="u",
        last_mod_app="a",
        surface_blocks=[3],
        surface_mutids=[11],
    )
    expected = (
        blocks_entry(0, counts_entry(2**63, 1))
        + blocks_entry(3, counts_entry(7, 70000) + counts_entry(300, 2) + vfield(2, 11))
        + vfield(2, 5)
        + vfield(3, 12)
        + lfield(4, b"t")
        + lfield(5, b"u")
        + lfield(6, b"a")
    )
    assert index.to_bytes() == expected
    assert LabelIndex.from_bytes(expected) == index
    assert LabelIndex.empty(4).to_bytes() == vfield(2, 4)
    assert LabelIndex.empty(0).to_bytes() == b""


def test_from_bytes_drops_unknown_fields_and_zero_counts(codec):
    fixed32 = tag(9, 5) + b"\x01\x02\x03\x04"
    fixed64 = tag(10, 1) + b"\x00" * 8
    svcount = counts_entry(4, 5) + fixed32 + lfield(7, b"\x0a\x0a\x0a") + counts_entry(6, 0) + fixed64
    data = (
        lfield(15, b"unknown \x0a\x08")
        + lfield(1, lfield(2, svcount) + vfield(1, 77))  # value before key
        + blocks_entry(78, counts_entry(1, 0))  # only a zero count: the block vanishes
        + vfield(2, 3)
    )
    index = LabelIndex.from_bytes(data)
    assert model_of(index) == {(77, 4): 5}
    assert index.label == 3


def test_from_bytes_map_duplicates_last_wins(codec):
    data = blocks_entry(1, counts_entry(2, 3) + counts_entry(2, 9)) + blocks_entry(1, counts_entry(4, 4))
    assert model_of(LabelIndex.from_bytes(data)) == model_of_message(proto.LabelIndexMsg.FromString(data))


def test_from_bytes_rejects_garbage(codec):
    with pytest.raises(BadRequest, match="LabelIndex"):
        LabelIndex.from_bytes(b"\x0a\x09\x08\x01")
    with pytest.raises(BadRequest):
        LabelIndex.from_bytes(vfield(2, 5) + b"\x18\xff")  # ends inside a varint
    # a known field number with another wire type is an unknown field to protobuf
    assert LabelIndex.from_bytes(tag(1, 0) + varint(5) + vfield(2, 6)) == LabelIndex.empty(6)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(models, st.integers(0, 2**64 - 1), st.dictionaries(st.integers(0, 40), st.integers(1, 2**64 - 1)))
def test_bytes_agree_with_python_protobuf(codec, model, label, surface):
    msg = message_of(label, model, surface)
    index = LabelIndex.from_bytes(msg.SerializeToString())
    assert model_of(index) == model
    assert index.metadata() == (label, 7, "2024-01-02T03:04:05Z", "", "")
    present = {b for b, _ in model}
    expected_surface = sorted((b, m) for b, m in surface.items() if b in present)
    assert list(zip(index.surface_blocks.tolist(), index.surface_mutids.tolist(), strict=True)) == (
        expected_surface
    )
    back = proto.LabelIndexMsg.FromString(index.to_bytes())
    assert model_of_message(back) == model
    assert {b: v.surface_mutid for b, v in back.blocks.items() if v.surface_mutid} == dict(expected_surface)
    assert LabelIndex.from_bytes(index.to_bytes()) == index
    assert LabelIndex.from_message(index.to_message()) == index


def test_label_indices(codec):
    a = LabelIndex(3, [1, 2], [30, 31], [200, 1], last_mod_app="x")
    b = LabelIndex.empty(4)
    c = LabelIndex(2**64 - 1, [5] * 40, range(1, 41), [2**31] * 40)  # > 127 bytes: a 2-byte length
    data = encode_label_indices([a, b, c])
    assert data == b"".join(lfield(1, i.to_bytes()) for i in (a, b, c))
    msg = proto.LabelIndices.FromString(data)
    assert [m.label for m in msg.indices] == [3, 4, 2**64 - 1]
    assert decode_label_indices(data) == [a, b, c]
    assert decode_label_indices(b"") == []
    assert encode_label_indices([]) == b""
    with pytest.raises(BadRequest, match="LabelIndices"):
        decode_label_indices(b"\x0a\x05\x10")


# Differential: odd but possible encodings, read by LabelIndex (numpy where the entries are plain,
# python-protobuf otherwise) and by python-protobuf alone.

wire_u64 = st.sampled_from([0, 1, 2, 127, 128, 300, 2**32 - 1, 2**32, 2**63, 2**64 - 1])


def unknown_field() -> st.SearchStrategy[bytes]:
    number = st.integers(7, 40)
    return st.one_of(
        st.builds(lambda n, v: vfield(n, v), number, wire_u64),
        st.builds(lambda n: tag(n, 5) + b"\x01\x02\x03\x04", number),
        st.builds(lambda n: tag(n, 1) + b"\x80" * 8, number),
        st.builds(lambda n, b: lfield(n, b), number, st.binary(max_size=6)),
    )


def shuffled(parts: st.SearchStrategy[list[bytes]]) -> st.SearchStrategy[bytes]:
    return parts.flatmap(lambda ps: st.permutations(ps)).map(b"".join)


def fields_of(*choices: st.SearchStrategy[bytes], odd: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Each field zero or one time (rarely twice), in any order, rarely an odd one among them."""
    field_lists = st.tuples(
        *(st.lists(c, min_size=0, max_size=2) for c in choices), st.lists(odd, max_size=1)
    )
    return shuffled(field_lists.map(lambda ls: [f for group in ls for f in group]))


small_keys = st.sampled_from([0, 1, 2, 2**63])
small_svs = st.sampled_from([0, 1, 2, 3, 2**64 - 1])
counts_wire = st.sampled_from([0, 1, 7, 2**32 - 1, 2**32 + 5])
counts_entries = fields_of(
    st.builds(lambda s: vfield(1, s), small_svs),
    st.builds(lambda c: vfield(2, c), counts_wire),
    odd=unknown_field(),
).map(lambda b: lfield(1, b))
svcounts = st.tuples(
    st.lists(counts_entries, max_size=4),
    st.lists(st.builds(lambda m: vfield(2, m), wire_u64), max_size=2),
    st.lists(unknown_field(), max_size=1),
).map(lambda t: b"".join(t[0] + t[1] + t[2]))
block_entries = fields_of(
    st.builds(lambda k: vfield(1, k), small_keys),
    st.builds(lambda c: lfield(2, c), svcounts),
    odd=unknown_field(),
).map(lambda b: lfield(1, b))
scalars = st.one_of(
    st.builds(lambda v: vfield(2, v), wire_u64),
    st.builds(lambda v: vfield(3, v), wire_u64),
    st.builds(lambda n, t: lfield(n, t.encode()), st.sampled_from([4, 5, 6]), st.text(max_size=5)),
    unknown_field(),
)
messages = st.tuples(
    st.lists(block_entries, max_size=5),
    st.lists(scalars, max_size=3),
    st.lists(block_entries, max_size=1),  # an entry after the other fields
).map(lambda t: b"".join(b"".join(part) for part in t))


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages, st.integers(0, 4), st.binary(max_size=3))
def test_odd_encodings_read_as_python_protobuf_does(codec, data, cut, junk):
    for candidate in (data, data[: len(data) - cut], data + junk):
        try:
            msg = proto.LabelIndexMsg.FromString(candidate)
        except Exception:
            with pytest.raises(BadRequest):
                LabelIndex.from_bytes(candidate)
            continue
        index = LabelIndex.from_bytes(candidate)
        model = {(b, s): c for b, svc in msg.blocks.items() for s, c in svc.counts.items() if c}
        assert model_of(index) == model
        present = {b for b, _ in model}
        surface = {b: v.surface_mutid for b, v in msg.blocks.items() if v.surface_mutid and b in present}
        assert dict(zip(index.surface_blocks.tolist(), index.surface_mutids.tolist(), strict=True)) == surface
        meta = (msg.label, msg.last_mutid, msg.last_mod_time, msg.last_mod_user, msg.last_mod_app)
        assert index.metadata() == meta


def test_large_index_round_trip():
    rng = np.random.default_rng(3)
    n = 100_000
    index = LabelIndex(
        2**40 + 1,
        rng.integers(0, 2**62, n, dtype=np.uint64) // 7,
        rng.integers(1, 2**63, n, dtype=np.uint64),
        rng.integers(1, 2**32, n, dtype=np.uint64),
    )
    data = index.to_bytes()
    assert LabelIndex.from_bytes(data) == index
    msg = proto.LabelIndexMsg.FromString(data)
    assert sum(len(v.counts) for v in msg.blocks.values()) == n


# ---- queries and derived indices ----------------------------------------------------------------------


def test_queries():
    blocks = pack_block_coords([[0, 0, 1], [-1, 0, 0], [5, -2, 0], [0, 0, 1], [-3, 0, 0]])
    index = LabelIndex(1, blocks, [10, 11, 10, 12, 10], [5, 6, 7, 8, 9])
    assert index.supervoxels().tolist() == [10, 11, 12]
    assert index.num_voxels() == 35
    assert index.num_voxels([10, 12, 99]) == 29
    sv, sizes = index.sv_sizes()
    assert (sv.tolist(), sizes.tolist()) == ([10, 11, 12], [21, 6, 8])
    # sorted by z, then y, then x, negatives first
    assert index.block_coords().tolist() == [[5, -2, 0], [-3, 0, 0], [-1, 0, 0], [0, 0, 1]]
    assert index.block_coords([11, 12]).tolist() == [[-1, 0, 0], [0, 0, 1]]
    assert index.block_coords([99]).shape == (0, 3)
    assert LabelIndex.empty(3).is_empty and LabelIndex.empty(3).num_voxels() == 0
    assert LabelIndex.empty(3).sv_sizes()[0].tolist() == []


def test_with_counts_errors_are_the_callers():
    index = LabelIndex(1, [1], [2], [3])
    with pytest.raises(ValueError, match=r"supervoxel 2 .* negative"):
        index.with_counts([1], [2], [-4])
    with pytest.raises(ValueError, match=r"supervoxel 5 .* negative"):
        index.with_counts([1], [5], [-1])
    assert index.with_counts([1, 1], [2, 2], [-1, -2]).is_empty


def test_modification_fields_and_labels():
    index = LabelIndex(1, [1], [2], [3], last_mutid=4, last_mod_user="a")
    mod = index.with_mod(9, "2025-01-01T00:00:00Z", "bob", "neu3")
    assert mod.metadata() == (1, 9, "2025-01-01T00:00:00Z", "bob", "neu3")
    assert model_of(mod) == model_of(index)
    assert index.last_mutid == 4
    assert index.relabeled(8).metadata() == (8, 4, "", "a", "")


def test_surface_mutid_marks_changed_blocks():
    a = LabelIndex(1, [1, 2], [10, 11], [1, 1])
    b = LabelIndex(2, [2, 3], [20, 21], [1, 1])
    merged = a.merged(b, surface_mutid=5)
    assert (merged.surface_blocks.tolist(), merged.surface_mutids.tolist()) == ([2], [5])
    assert merged.label == 1
    assert a.merged(b).surface_blocks.tolist() == []
    remaining, taken = merged.split([11], label=9, surface_mutid=6)
    assert (remaining.surface_blocks.tolist(), remaining.surface_mutids.tolist()) == ([2], [6])
    assert (taken.surface_blocks.tolist(), taken.surface_mutids.tolist()) == ([2], [6])
    assert taken.label == 9 and remaining.label == 1
    # a block that leaves the index takes its surface mutation id with it
    assert remaining.split([20])[0].surface_blocks.tolist() == []


deltas = st.lists(st.tuples(st.integers(0, 6), st.integers(1, 6), st.integers(-3, 3)), max_size=30)
small_models = st.dictionaries(
    st.tuples(st.integers(0, 6), st.integers(1, 6)), st.integers(1, 5), max_size=20
)


@given(small_models, deltas)
def test_with_counts_matches_model(model, changes):
    index = index_of(3, model, last_mutid=2)
    expected = dict(model)
    for b, s, d in changes:
        expected[(b, s)] = expected.get((b, s), 0) + d
    b, s, d = zip(*changes, strict=True) if changes else ((), (), ())
    if any(c < 0 for c in expected.values()):
        with pytest.raises(ValueError, match="negative"):
            index.with_counts(b, s, d)
        return
    out = index.with_counts(np.array(b, np.uint64), np.array(s, np.uint64), np.array(d, np.int64))
    assert model_of(out) == {k: c for k, c in expected.items() if c}
    assert out.metadata() == index.metadata()


@given(st.lists(small_models, min_size=1, max_size=4), st.frozensets(st.integers(1, 6)))
def test_merged_split_restricted_match_model(parts, chosen):
    indices = [index_of(i + 1, m) for i, m in enumerate(parts)]
    merged = indices[0].merged(*indices[1:], label=40)
    union: Model = {}
    for m in parts:
        for k, c in m.items():
            union[k] = union.get(k, 0) + c
    assert model_of(merged) == union and merged.label == 40
    svs = sorted(chosen)
    remaining, taken = merged.split(svs)
    assert model_of(taken) == {k: c for k, c in union.items() if k[1] in chosen}
    assert model_of(remaining) == {k: c for k, c in union.items() if k[1] not in chosen}
    assert model_of(merged.restricted(svs)) == model_of(taken)
    assert remaining.merged(taken) == merged
    assert merged.num_voxels() == remaining.num_voxels() + taken.num_voxels()
    blocks = sorted({b for b, s in union if s in chosen})
    assert merged.block_keys(svs).tolist() == blocks


# ---- storage ---------------------------------------------------------------------------------------


def test_index_store_versions(engine):
    repo = Repo(engine)
    store = IndexStore()
    root = repo.ctx(1)
    a = LabelIndex(7, [1, 2], [70, 71], [5, 6], last_mod_user="u")
    b = LabelIndex(2**64 - 1, [3], [4], [1])
    with root.batch() as batch:
        store.put(batch, a)
        store.put(batch, b)
    assert store.get(root, 7) == a
    assert store.get(root, 8) is None
    stored = store.stored(root, 7)
    assert stored is not None and stored[0] == 0x80  # LZ4, no checksum
    assert struct.unpack_from("<I", stored, 1)[0] == len(a.to_bytes())
    assert lz4.block.decompress(stored[1:]) == a.to_bytes()
    assert envelope.deserialize(stored) == a.to_bytes()
    assert root.get(index_tkey(7)) == stored

    child = repo.ctx(repo.new(1))
    assert store.get(child, 7) == a
    grown = a.with_counts([9], [72], [1])
    with child.batch() as batch:
        store.put(batch, grown)
        store.put(batch, LabelIndex.empty(2**64 - 1))  # empty: deleted
    assert store.get(child, 7) == grown
    assert store.get(child, 2**64 - 1) is None
    assert store.get(root, 7) == a
    assert store.get(root, 2**64 - 1) == b
    assert store.get_many(child, [2**64 - 1, 7, 5]) == [None, grown, None]
    assert store.get_many(root, []) == []

    with child.batch() as batch:
        for label in (3, 12, 2**63):
            store.put(batch, LabelIndex(label, [0], [label], [1]))
        store.delete(batch, 3)
    assert list(store.labels(child)) == [7, 12, 2**63]
    assert list(store.labels(child, 8, 2**63)) == [12, 2**63]
    assert list(store.labels(child, 13, 2**63 - 1)) == []
    assert list(store.labels(root)) == [7, 2**64 - 1]
