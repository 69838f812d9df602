"""labelvol edits over real HTTP (merge, split, split-coarse, area DELETE) on the FIB-19 segmentation."""

from __future__ import annotations

import struct

import numpy as np
import requests

from tests.test_labelvol import BS, OFFSET, TIMEOUT, api, decode, post_raw, rasterize, sparsevol, volume

__all__ = ["volume"]  # the module fixture, shared with test_labelvol

SHAPE = (64, 64, 64)


def raw(server, uuid) -> np.ndarray:
    x, y, z = OFFSET
    url = api(server, uuid, "seg", f"raw/0_1_2/64_64_64/{x}_{y}_{z}")
    r = requests.get(url, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return np.frombuffer(r.content, dtype="<u8").reshape(SHAPE)


def setup(server, volume):
    uuid = server.new_repo()
    server.new_instance(uuid, "labelblk", "seg", BlockSize=f"{BS},{BS},{BS}")
    server.new_instance(uuid, "labelvol", "bodies", BlockSize=f"{BS},{BS},{BS}")
    for name, target in (("bodies", "seg"), ("seg", "bodies")):
        r = requests.post(api(server, uuid, name, "sync"), json={"sync": target}, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
    post_raw(server, uuid, volume, OFFSET)
    return uuid


def body_mask(server, uuid, label) -> np.ndarray:
    r = sparsevol(server, uuid, label)
    if r.status_code == 404:
        return np.zeros(SHAPE, dtype=bool)
    assert r.status_code == 200
    return rasterize(decode(r.content), OFFSET, SHAPE)


def check_consistent(server, uuid, labels) -> np.ndarray:
    """Every label's sparsevol equals its voxels in the labelblk; returns the labelblk volume."""
    vol = raw(server, uuid)
    for label in labels:
        np.testing.assert_array_equal(body_mask(server, uuid, label), vol == label, err_msg=f"label {label}")
    return vol


def snapshot(server, uuid, labels) -> tuple[bytes, list[bytes]]:
    return raw(server, uuid).tobytes(), [sparsevol(server, uuid, label).content for label in labels]


def rle_payload(runs) -> bytes:
    runs = np.asarray(runs, dtype="<i4").reshape(-1, 4)
    return bytes([0, 3, 0, 0]) + struct.pack("<II", 0, len(runs)) + runs.tobytes()


def mask_runs(mask: np.ndarray) -> np.ndarray:
    """Runs of a boolean mask over the volume (one per set voxel: simple, and overlapping-free)."""
    z, y, x = np.nonzero(mask)
    ox, oy, oz = OFFSET
    return np.stack([x + ox, y + oy, z + oz, np.ones_like(x)], axis=1)


def big_labels(volume, n=3) -> list[int]:
    labels, counts = np.unique(volume[volume != 0], return_counts=True)
    return [int(v) for v in labels[np.argsort(-counts)][:n]]


def post(server, uuid, path, **kw) -> requests.Response:
    return requests.post(api(server, uuid, "bodies", path), timeout=TIMEOUT, **kw)


def test_merge_at_child_leaves_parent(server, volume):
    uuid = setup(server, volume)
    a, b, c = big_labels(volume)
    server.commit(uuid)
    child = server.newversion(uuid)
    r = post(server, child, "merge", json=[a, b, c])
    assert r.status_code == 200, r.text
    assert r.json()["label"] == a and r.json()["merged"] == [b, c]
    want = volume.copy()
    want[np.isin(volume, [b, c])] = a
    np.testing.assert_array_equal(check_consistent(server, child, [a]), want)
    for gone in (b, c):
        assert sparsevol(server, child, gone).status_code == 404
        r = requests.head(api(server, child, "bodies", f"sparsevol/{gone}"), timeout=TIMEOUT)
        assert r.status_code == 204
    # the parent is untouched
    np.testing.assert_array_equal(check_consistent(server, uuid, [a, b, c]), volume)
    # and the committed parent refuses edits
    assert post(server, uuid, "merge", json=[a, b]).status_code == 409
    assert post(server, uuid, f"split-coarse/{a}", data=rle_payload([[1, 0, 0, 1]])).status_code == 409
    r = requests.delete(api(server, uuid, "bodies", f"area/{a}/8_8_8/40_0_16"), timeout=TIMEOUT)
    assert r.status_code == 409


def test_merge_errors_change_nothing(server, volume):
    uuid = setup(server, volume)
    a, b, _ = big_labels(volume)
    missing = int(volume.max()) + 77
    before = snapshot(server, uuid, [a, b])
    cases = [
        ([a, b, missing], 404),
        ([a, 0], 400),
        ([a], 400),
        ([a, a], 400),
        ([a, "b"], 400),
        ({"a": 1}, 400),
    ]
    for body, status in cases:
        r = post(server, uuid, "merge", json=body)
        assert r.status_code == status, (body, r.text)
        if status == 404:
            assert str(missing) in r.text
    assert post(server, uuid, "merge", data=b"[1, 2").status_code == 400
    assert snapshot(server, uuid, [a, b]) == before


def test_split_part_of_a_body(server, volume):
    uuid = setup(server, volume)
    a = big_labels(volume, 1)[0]
    old = volume == a
    # the label's voxels in the lower half of z (crosses block edges), sent as unsorted coalesced runs
    sel = old.copy()
    sel[40:] = False
    sel[:, :, ::7] = False
    runs = mask_runs(sel)[::-1]
    r = post(server, uuid, f"split/{a}", data=rle_payload(runs))
    assert r.status_code == 200, r.text
    new = r.json()["label"]
    assert new > int(volume.max())
    vol = check_consistent(server, uuid, [a, new])
    np.testing.assert_array_equal(vol == new, sel)
    np.testing.assert_array_equal(vol == a, old & ~sel)
    np.testing.assert_array_equal(vol[~old], volume[~old])
    maxlabel = requests.get(api(server, uuid, "bodies", "maxlabel"), timeout=TIMEOUT).json()["maxlabel"]
    nextlabel = requests.get(api(server, uuid, "bodies", "nextlabel"), timeout=TIMEOUT).json()["nextlabel"]
    assert maxlabel >= new and nextlabel > new

    # an explicit splitlabel
    chosen = new + 1000
    sel2 = (vol == a) & (np.arange(64)[None, :, None] < 20)
    r = post(server, uuid, f"split/{a}", data=rle_payload(mask_runs(sel2)), params={"splitlabel": chosen})
    assert r.status_code == 200 and r.json() == {"label": chosen}
    vol2 = check_consistent(server, uuid, [a, chosen])
    np.testing.assert_array_equal(vol2 == chosen, sel2)
    assert requests.get(api(server, uuid, "bodies", "maxlabel"), timeout=TIMEOUT).json()["maxlabel"] >= chosen
    # a splitlabel already in use
    body = rle_payload(mask_runs(vol2 == a)[:5])
    r = post(server, uuid, f"split/{a}", data=body, params={"splitlabel": new})
    assert r.status_code == 400


def test_split_errors_change_nothing(server, volume):
    uuid = setup(server, volume)
    a, b, _ = big_labels(volume)
    before = snapshot(server, uuid, [a, b])
    inside = mask_runs(volume == a)[:50]
    outside = mask_runs(volume == b)[:1]
    far = [[10_000, 10_000, 10_000, 3]]
    bad = [
        rle_payload(np.concatenate([inside, outside])),  # one voxel of another body
        rle_payload(np.concatenate([inside, far])),  # a block never written
        rle_payload(inside)[:-3],  # truncated
        bytes([1, 3, 0, 0]) + rle_payload(inside)[4:],  # bad descriptor
        rle_payload([[0, 0, 0, 0]]),  # zero length
        rle_payload(np.zeros((0, 4))),  # no runs
        b"",
    ]
    for body in bad:
        r = post(server, uuid, f"split/{a}", data=body)
        assert r.status_code == 400, r.text
    assert post(server, uuid, "split/0", data=rle_payload(inside)).status_code == 400
    r = post(server, uuid, f"split/{a}", data=rle_payload(inside), params={"splitlabel": a})
    assert r.status_code == 400
    # one run of 2^29 voxels crosses 16 million blocks: cutting it took minutes and gigabytes
    # before anything was checked (fuzz, issue 11); now refused up front
    long_run = rle_payload(np.concatenate([inside, [[0, 0, 0, 2**29]]]))
    r = post(server, uuid, f"split/{a}", data=long_run)
    assert r.status_code == 413 and "blocks" in r.text, r.text
    assert snapshot(server, uuid, [a, b]) == before


def test_split_body_within_the_voxel_limit(server_factory, volume):
    server = server_factory(max_request_voxels=64**3)  # the setup volume's
    uuid = setup(server, volume)
    a = big_labels(volume, 1)[0]
    r = post(server, uuid, f"split/{a}", data=rle_payload([[0, 0, 0, 64**3 + 1]]))
    assert r.status_code == 413 and "max_request_voxels" in r.text, r.text


def test_split_coarse(server, volume):
    uuid = setup(server, volume)
    a = big_labels(volume, 1)[0]
    oz = OFFSET[2]
    # blocks with bz == 1 (voxels z in [32, 64)), all x and y
    spans = [[-1, by, 1, 6] for by in range(-1, 3)]
    r = post(server, uuid, f"split-coarse/{a}", data=rle_payload(spans))
    assert r.status_code == 200, r.text
    new = r.json()["label"]
    zs = np.arange(64)[:, None, None] + oz
    sel = (volume == a) & (zs >= 32) & (zs < 64)
    assert sel.any() and ((volume == a) & ~sel).any()
    vol = check_consistent(server, uuid, [a, new])
    np.testing.assert_array_equal(vol == new, sel)
    np.testing.assert_array_equal(vol[volume != a], volume[volume != a])
    # absurd and malformed bodies
    huge = rle_payload([[0, y, 0, 2**30] for y in range(4)])
    assert post(server, uuid, f"split-coarse/{a}", data=huge).status_code == 413
    assert post(server, uuid, f"split-coarse/{a}", data=b"\x00\x03").status_code == 400
    missing = int(volume.max()) + 99_999
    assert post(server, uuid, f"split-coarse/{missing}", data=rle_payload(spans)).status_code == 404


def test_delete_area(server, volume):
    uuid = setup(server, volume)
    a, b, _ = big_labels(volume)
    size, off = (30, 20, 40), (50, 0, 20)  # not block-aligned
    url = api(server, uuid, "bodies", f"area/{a}/{size[0]}_{size[1]}_{size[2]}/{off[0]}_{off[1]}_{off[2]}")
    r = requests.delete(url, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    inbox = np.zeros(SHAPE, dtype=bool)
    lo = [o - v for o, v in zip(off, OFFSET, strict=True)]
    inbox[lo[2] : lo[2] + size[2], lo[1] : lo[1] + size[1], lo[0] : lo[0] + size[0]] = True
    want = volume.copy()
    want[inbox & (volume == a)] = 0
    assert (inbox & (volume == a)).any()
    np.testing.assert_array_equal(check_consistent(server, uuid, [a, b]), want)
    bad = api(server, uuid, "bodies", f"area/{a}/0_1_1/0_0_0")
    assert requests.delete(bad, timeout=TIMEOUT).status_code == 400


def test_merge_updates_pyramid(server, volume):
    from dvid.datatype.common.labels import downsample_labels_2x

    uuid = setup(server, volume)
    a, b, _ = big_labels(volume)
    r = requests.post(api(server, uuid, "seg", "pyramid"), params={"levels": 1}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert post(server, uuid, "merge", json=[b, a]).status_code == 200
    want = volume.copy()
    want[volume == a] = b
    x, y, z = (v // 2 for v in OFFSET)
    url = api(server, uuid, "seg", f"raw/0_1_2/32_32_32/{x}_{y}_{z}")
    half = requests.get(url, params={"scale": "1"}, timeout=TIMEOUT).content
    assert half == downsample_labels_2x(want).tobytes()


def test_split_updates_two_pyramid_levels_block_by_block(server, volume):
    from dvid.datatype.common.labels import downsample_labels_2x

    uuid = setup(server, volume)
    a, _, _ = big_labels(volume)
    r = requests.post(api(server, uuid, "seg", "pyramid"), params={"levels": 2}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    part = (volume == a) & (np.arange(64)[:, None, None] < 20)  # the body's voxels with z < 20
    r = post(server, uuid, f"split/{a}", data=rle_payload(mask_runs(part)))
    assert r.status_code == 200, r.text
    want = volume.copy()
    want[part] = r.json()["label"]
    half = downsample_labels_2x(want)
    for level, expected in ((1, half), (2, downsample_labels_2x(half))):
        x, y, z = (v // 2**level for v in OFFSET)
        n = 64 // 2**level
        url = api(server, uuid, "seg", f"raw/0_1_2/{n}_{n}_{n}/{x}_{y}_{z}")
        got = requests.get(url, params={"scale": str(level)}, timeout=TIMEOUT).content
        np.testing.assert_array_equal(np.frombuffer(got, "<u8").reshape(expected.shape), expected)


def test_block_row_boxes_cover_exactly_the_blocks():
    from dvid.datatype.imageblk import _block_row_boxes

    coords = np.array([[3, 0, 0], [1, 0, 0], [2, 0, 0], [-1, 0, 0], [5, -2, 1], [6, -2, 1], [0, 1, 0]])
    boxes = _block_row_boxes(coords, (8, 4, 2))
    assert [(b.offset, b.size) for b in boxes] == [
        ((-8, 0, 0), (8, 4, 2)),
        ((8, 0, 0), (24, 4, 2)),
        ((0, 4, 0), (8, 4, 2)),
        ((40, -8, 2), (16, 4, 2)),
    ]
    assert _block_row_boxes(np.zeros((0, 3), np.int64), (8, 8, 8)) == []
