"""dvid.api labels on real label volumes (tests/data): labels at points, sparse volumes as
coordinates and masks, sizes, supervoxels, merge, cleave and splits, on labelmap, labelblk, labelvol."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

import dvid.api
from dvid.api import rle
from tests.shared_data import DATA

OFFSET = (64, 0, 128)  # (z, y, x): block-aligned for 64^3 blocks


def sample(name: str = "fib19-64x64x64-sample1") -> np.ndarray:
    return np.frombuffer(gzip.decompress((DATA / f"{name}.dat.gz").read_bytes()), "<u8").reshape(64, 64, 64)


def coords_of(volume: np.ndarray, label: int, offset=OFFSET) -> np.ndarray:
    return (np.argwhere(volume == label) + np.asarray(offset)).astype(np.int32)


def sorted_rows(a: np.ndarray) -> np.ndarray:
    return a[np.lexsort(a.T[::-1])]


@pytest.fixture
def labels():
    return sample()


@pytest.fixture
def seg(server_factory, labels):
    server = server_factory(allow_labelmap_split=True)
    node = dvid.api.connect(server.url, progress=False).new_repo("labels", "real data")
    seg = node.create("labelmap", "segmentation", MaxDownresLevel=1)
    z, y, x = OFFSET
    seg[z : z + 64, y : y + 64, x : x + 64] = labels
    return seg


def test_voxels_round_trip_and_scale(seg, labels):
    assert seg.dtype == np.uint64 and seg.block_shape == (64, 64, 64)
    assert np.array_equal(seg[64:128, 0:64, 128:192], labels)
    assert seg.shape == (128, 64, 192)
    half = seg.scale(1)
    assert half.extents == dvid.api.Box((32, 0, 64), (64, 32, 96))
    low = half[32:64, 0:32, 64:96]
    assert low.shape == (32, 32, 32)
    # every label at scale 1 is one of the labels of its 2x2x2 cube at scale 0
    cubes = labels.reshape(32, 2, 32, 2, 32, 2).transpose(0, 2, 4, 1, 3, 5).reshape(32, 32, 32, 8)
    assert ((cubes == low[..., None]).any(axis=-1)).all()
    with pytest.raises(ValueError, match="read-only"):
        half[32:33, 0:1, 64:65] = 1


def test_labels_at_points(seg, labels):
    rng = np.random.default_rng(6)
    rel = rng.integers(0, 64, (200, 3))
    points = rel + np.asarray(OFFSET)
    found = seg.label_at(points)
    assert found.dtype == np.uint64
    assert np.array_equal(found, labels[rel[:, 0], rel[:, 1], rel[:, 2]])
    assert seg.label_at(points[0]) == int(labels[tuple(rel[0])])
    assert seg.label_at((0, 0, 0)) == 0
    with pytest.raises(ValueError, match="points"):
        seg.label_at([[1, 2]])


def test_sparsevol_coords_mask_and_sizes(seg, labels):
    ids, counts = np.unique(labels[labels != 0], return_counts=True)
    body = int(ids[np.argmax(counts)])
    coords = seg.sparsevol(body)
    assert coords.dtype == np.int32 and coords.shape[1] == 3
    assert np.array_equal(sorted_rows(coords), sorted_rows(coords_of(labels, body)))
    mask, start = seg.mask(body)
    expected = coords_of(labels, body)
    assert start == tuple(int(v) for v in expected.min(axis=0))
    assert mask.sum() == len(expected) and mask.shape == tuple(
        expected.max(axis=0) - expected.min(axis=0) + 1
    )
    assert seg.size(body) == int(counts.max())
    some = [int(v) for v in ids[:5]] + [987654321]
    assert seg.sizes(some).tolist() == [*(int(c) for c in counts[:5]), 0]
    assert seg.supervoxels(body).tolist() == [body]
    assert seg.supervoxel_sizes(body) == {body: int(counts.max())}
    with pytest.raises(dvid.api.NotFound):
        seg.size(987654321)
    with pytest.raises(dvid.api.NotFound):
        seg.sparsevol(987654321)


def test_merge_cleave_split(seg, labels):
    ids, counts = np.unique(labels[labels != 0], return_counts=True)
    order = np.argsort(counts)[::-1]
    a, b, c = (int(ids[i]) for i in order[:3])
    mutation = seg.merge(a, [b, c])
    assert mutation >= 1
    assert seg.supervoxels(a).tolist() == sorted([a, b, c])
    merged = seg[64:128, 0:64, 128:192]
    assert np.array_equal(merged == a, np.isin(labels, [a, b, c]))
    assert np.array_equal(seg.view(supervoxels=True)[64:128, 0:64, 128:192], labels)
    assert seg.mapping([b, c, 987654321]).tolist() == [a, a, 0]

    new = seg.cleave(a, [c])
    assert new not in (a, b, c)
    assert seg.supervoxels(new).tolist() == [c]
    assert seg.size(new) == int(counts[order[2]])

    # split the body a (supervoxels a, b) by the voxels of supervoxel b below its median z
    part = coords_of(labels, b)
    part = part[part[:, 0] < np.median(part[:, 0])]
    assert len(part)
    split = seg.split(a, part)
    assert np.array_equal(sorted_rows(seg.sparsevol(split)), sorted_rows(part))
    assert seg.size(a) == int(counts[order[0]] + counts[order[1]]) - len(part)


def test_split_supervoxel_by_mask(seg, labels):
    ids, counts = np.unique(labels[labels != 0], return_counts=True)
    sv = int(ids[np.argmax(counts)])
    mask = labels == sv
    mask[32:] = False
    cut, remain = seg.split_supervoxel(sv, mask=mask, offset=OFFSET)
    assert seg.size(cut, supervoxels=True) == int(mask.sum())
    assert seg.size(remain, supervoxels=True) == int(counts.max()) - int(mask.sum())
    with pytest.raises(ValueError, match="either"):
        seg.split_supervoxel(sv)
    with pytest.raises(ValueError, match="no voxels"):
        seg.split(sv, mask=np.zeros((2, 2, 2), bool))


def test_labelblk_and_labelvol(server):
    labels = sample("cx-64x64x64-sample1")
    node = dvid.api.connect(server.url, progress=False).new_repo("blk", "labelblk")
    blk = node.create("labelblk", "labels", BlockSize=(32, 32, 32))
    vol = node.create("labelvol", "bodies", BlockSize=(32, 32, 32))
    vol.request("POST", "sync", json={"sync": "labels"})
    blk[0:64, 0:64, 0:64] = labels
    assert isinstance(blk, dvid.api.LabelBlk) and isinstance(vol, dvid.api.LabelVol)
    assert np.array_equal(blk[0:64, 0:64, 0:64], labels)
    rel = np.random.default_rng(7).integers(0, 64, (50, 3))
    assert np.array_equal(blk.label_at(rel), labels[rel[:, 0], rel[:, 1], rel[:, 2]])
    ids, counts = np.unique(labels[labels != 0], return_counts=True)
    a, b = (int(ids[i]) for i in np.argsort(counts)[::-1][:2])
    assert np.array_equal(sorted_rows(vol.sparsevol(a)), sorted_rows(coords_of(labels, a, (0, 0, 0))))
    assert vol.merge(a, [b]) == [b]
    assert np.array_equal(blk[0:64, 0:64, 0:64] == a, np.isin(labels, [a, b]))
    part = coords_of(labels, b, (0, 0, 0))[:100]
    new = vol.split(a, part)
    assert np.array_equal(sorted_rows(vol.sparsevol(new)), sorted_rows(part))
    assert vol.max_label() >= new


def test_rle_round_trip_matches_numpy():
    rng = np.random.default_rng(8)
    mask = rng.random((7, 9, 11)) < 0.3
    runs = rle.mask_to_runs(mask, (10, -5, 3))
    coords = rle.runs_to_coords(rle.decode_runs(rle.encode_runs(runs)))
    expected = (np.argwhere(mask) + np.array([10, -5, 3])).astype(np.int32)
    assert np.array_equal(sorted_rows(coords), sorted_rows(expected))
    back, start = rle.coords_to_mask(coords)
    assert start == tuple(int(v) for v in expected.min(axis=0))
    lo = expected.min(axis=0) - np.array([10, -5, 3])
    assert np.array_equal(
        back, mask[lo[0] :, lo[1] :, lo[2] :][: back.shape[0], : back.shape[1], : back.shape[2]]
    )
    with pytest.raises(ValueError, match="not a legacy sparsevol"):
        rle.decode_runs(b"\x01\x02")
    with pytest.raises(ValueError, match="does not hold"):
        rle.decode_runs(rle.HEADER + np.array([0, 3], "<u4").tobytes())
