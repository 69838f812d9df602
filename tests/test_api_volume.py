"""dvid.api volumes against a live server: numpy slicing in (z, y, x), reads and writes checked
byte for byte against the raw endpoint, pieces in parallel, scales, and refused indexes."""

from __future__ import annotations

import numpy as np
import pytest
import requests

import dvid.api
from dvid.api import volume as volume_module
from dvid.api.box import Box, aligned_pieces, parse_index


@pytest.fixture
def node(server):
    return dvid.api.connect(server.url, progress=False).new_repo("vol", "volumes")


@pytest.fixture
def gray(node):
    return node.create("uint8blk", "grayscale", BlockSize=(32, 32, 32))


def raw_get(server, node, name, box: Box, dtype="<u1") -> np.ndarray:
    size, offset = box.raw_path()
    r = requests.get(server.api(f"node/{node.uuid}/{name}/raw/0_1_2/{size}/{offset}"), timeout=30)
    assert r.status_code == 200, r.text
    return np.frombuffer(r.content, dtype).reshape(box.shape)


def test_write_then_read_unaligned_box_byte_for_byte(server, node, gray):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, (37, 45, 51), dtype=np.uint8)
    gray[5:42, 17:62, 3:54] = data
    assert np.array_equal(gray[5:42, 17:62, 3:54], data)
    # the server holds exactly that: read through the raw endpoint, x fastest
    assert np.array_equal(raw_get(server, node, "grayscale", Box((5, 17, 3), (42, 62, 54))), data)
    # and a box around it reads the background (0) outside
    around = gray[0:50, 10:70, 0:60]
    assert np.array_equal(around[5:42, 7:52, 3:54], data)
    around[5:42, 7:52, 3:54] = 0
    assert not around.any()


def test_shape_dtype_extents_come_from_the_instance(gray):
    assert gray.dtype == np.uint8 and gray.block_shape == (32, 32, 32) and gray.ndim == 3
    assert gray.extents is None and gray.shape == (0, 0, 0)
    assert gray[:].shape == (0, 0, 0)
    gray[10:20, 30:40, 50:60] = 7
    assert gray.extents == Box((10, 30, 50), (20, 40, 60))
    assert gray.shape == (20, 40, 60)
    whole = gray[...]
    assert whole.shape == (20, 40, 60) and int(whole.sum()) == 7 * 1000
    assert gray[12].shape == (40, 60) and gray[12, 35].shape == (60,)


def test_single_voxel_and_empty_boxes(gray):
    gray[3, 4, 5] = 200
    value = gray[3, 4, 5]
    assert value.shape == () and int(value) == 200
    assert gray[3:4, 4:5, 5:6].shape == (1, 1, 1)
    empty = gray[3:3, 0:10, 0:10]
    assert empty.shape == (0, 10, 10) and empty.dtype == np.uint8
    gray[3:3, 0:10, 0:10] = np.zeros((0, 10, 10), np.uint8)  # writes nothing, no error


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ((slice(-5, None), 0, 0), "negative"),
        ((0, -1, 0), "negative"),
        ((slice(0, 10, 2), 0, 0), "steps"),
        ((slice(10, 5), 0, 0), "before start"),
        ((0, 0, 0, 0), "too many"),
        ((Ellipsis, 0, Ellipsis), "single ellipsis"),
        ((slice(0, 2**32), 0, 0), "coordinate range"),
        ((1.5, 0, 0), "integer"),
        ((True, 0, 0), "integer"),
    ],
)
def test_refused_indexes_say_why(gray, key, message):
    with pytest.raises(dvid.api.BadIndex, match=message):
        gray[key]
    with pytest.raises(IndexError, match=message):
        gray[key] = 0


def test_write_checks_shape_and_dtype(gray):
    with pytest.raises(ValueError, match="shape"):
        gray[0:4, 0:4, 0:4] = np.zeros((4, 4, 5), np.uint8)
    with pytest.raises(TypeError, match="float64"):
        gray[0:4, 0:4, 0:4] = np.zeros((4, 4, 4))
    with pytest.raises(OverflowError):
        gray[0:4, 0:4, 0:4] = 300
    gray[0:4, 0:4, 0:4] = 9  # a scalar broadcasts
    assert (gray[0:4, 0:4, 0:4] == 9).all()
    assert gray.extents == Box((0, 0, 0), (4, 4, 4))


def test_negative_coordinates_through_read_and_write(gray):
    data = np.arange(8 * 9 * 10, dtype=np.uint32).astype(np.uint8).reshape(8, 9, 10)
    gray.write((-4, -40, 7), data)
    assert np.array_equal(gray.read((-4, -40, 7), (4, -31, 17)), data)


def test_large_box_moves_in_parallel_pieces(server, node, monkeypatch):
    """Pieces of 32 KiB: a 96x100x130 box of a 16^3-block volume is many requests in 4 threads."""
    v = node.create("uint16blk", "sixteen", BlockSize=(16, 16, 16))
    monkeypatch.setattr(volume_module, "PIECE_BYTES", 32 << 10)
    box = Box((3, 7, 11), (99, 107, 141))
    pieces = aligned_pieces(box, v.block_shape, 2, volume_module.PIECE_BYTES)
    assert len(pieces) > 20
    rng = np.random.default_rng(2)
    data = rng.integers(0, 2**16, box.shape, dtype=np.uint16)
    v[3:99, 7:107, 11:141] = data
    assert np.array_equal(raw_get(server, node, "sixteen", box, "<u2"), data)
    assert np.array_equal(v[3:99, 7:107, 11:141], data)
    assert np.array_equal(v.read((0, 0, 0), (99, 107, 141), progress=True)[3:, 7:, 11:], data)


def test_aligned_pieces_cover_the_box_once_and_never_share_a_block():
    box = Box((5, 3, 2), (150, 70, 300))
    block = (32, 16, 64)
    for target in (1 << 10, 40 << 10, 1 << 20, 64 << 20):
        pieces = aligned_pieces(box, block, 8, target)
        count = np.zeros(box.shape, np.int32)
        blocks = set()
        for p in pieces:
            count[p.within(box)] += 1
            assert p.voxels * 8 <= max(target, 8 * int(np.prod(block)))
            owned = {
                (z, y, x)
                for z in range(p.start[0] // 32, (p.stop[0] - 1) // 32 + 1)
                for y in range(p.start[1] // 16, (p.stop[1] - 1) // 16 + 1)
                for x in range(p.start[2] // 64, (p.stop[2] - 1) // 64 + 1)
            }
            assert not owned & blocks
            blocks |= owned
        assert (count == 1).all()
    assert aligned_pieces(Box((0, 0, 0), (0, 5, 5)), block, 1, 1 << 20) == []


def test_parse_index_fills_open_bounds_from_the_shape():
    assert parse_index(..., (4, 5, 6)) == (Box((0, 0, 0), (4, 5, 6)), ())
    assert parse_index((1, ..., 2), (4, 5, 6)) == (Box((1, 0, 2), (2, 5, 3)), (0, 2))
    assert parse_index(np.int64(3), (4, 5, 6)) == (Box((3, 0, 0), (4, 5, 6)), (0,))


def test_image_pyramid_levels(server, node, gray):
    data = np.random.default_rng(3).integers(0, 256, (64, 64, 64), dtype=np.uint8)
    gray[0:64, 0:64, 0:64] = data
    r = requests.post(server.api(f"node/{node.uuid}/grayscale/pyramid?levels=2"), timeout=60)
    assert r.status_code == 200, r.text
    level1 = gray.scale(1)
    assert level1.name == "grayscale_1" and gray.scale(0) is gray
    expected = data.reshape(32, 2, 32, 2, 32, 2).astype(np.uint32).sum(axis=(1, 3, 5)) // 8
    assert np.array_equal(level1[0:32, 0:32, 0:32], expected.astype(np.uint8))
    assert gray.scale(2)[0:16, 0:16, 0:16].shape == (16, 16, 16)
    with pytest.raises(dvid.api.NotFound, match="grayscale_3"):
        gray.scale(3)[0:1, 0:1, 0:1]
    with pytest.raises(ValueError, match="0 or more"):
        gray.scale(-1)


def test_rgba_voxels_have_a_channel_axis(server, node):
    v = node.create("rgba8blk", "color")
    assert v.dtype == np.uint8 and v.channels == (4,)
    data = np.random.default_rng(4).integers(0, 256, (5, 6, 7, 4), dtype=np.uint8)
    v[1:6, 2:8, 3:10] = data
    assert np.array_equal(v[1:6, 2:8, 3:10], data)


def test_float_volume_round_trips(node):
    v = node.create("float32blk", "floats")
    data = np.random.default_rng(5).standard_normal((9, 10, 11)).astype(np.float32)
    v[0:9, 0:10, 0:11] = data
    assert v.dtype == np.float32 and np.array_equal(v[0:9, 0:10, 0:11], data)


def test_write_to_a_committed_version_is_a_conflict_and_changes_nothing(node, gray):
    gray[0:8, 0:8, 0:8] = 1
    node.commit("done")
    with pytest.raises(dvid.api.Conflict) as info:
        gray[0:8, 0:8, 0:8] = 2
    assert info.value.status == 409 and "locked" in info.value.message
    assert (gray[0:8, 0:8, 0:8] == 1).all()


def test_an_error_in_a_parallel_piece_is_raised_typed(node, gray, monkeypatch):
    monkeypatch.setattr(volume_module, "PIECE_BYTES", 32 << 10)
    gray[0:64, 0:64, 0:64] = 3
    node.commit("locked")
    with pytest.raises(dvid.api.Conflict, match="locked node"):
        gray[0:64, 0:64, 0:64] = np.ones((64, 64, 64), np.uint8)
    assert (gray[0:64, 0:64, 0:64] == 3).all()
