"""labelvol over real HTTP: synced to a labelblk holding the real FIB-19 segmentation."""

from __future__ import annotations

import gzip
import struct

import lz4.block
import numpy as np
import pytest
import requests

from tests.shared_data import DATA

TIMEOUT = 30
OFFSET = (40, -8, 16)  # x, y, z of the volume's first voxel: not block-aligned, partly negative
BS = 32


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    path = DATA / "fib19-64x64x64-sample1.dat.gz"
    assert path.exists(), f"missing test data {path} (see tests/data/README.md)"
    return np.frombuffer(gzip.open(path).read(), dtype="<u8").reshape(64, 64, 64)


def api(server, uuid, name, path):
    return server.api(f"node/{uuid}/{name}/{path}")


def post_raw(server, uuid, vol: np.ndarray, offset) -> None:
    nz, ny, nx = vol.shape
    url = api(server, uuid, "seg", f"raw/0_1_2/{nx}_{ny}_{nz}/{offset[0]}_{offset[1]}_{offset[2]}")
    r = requests.post(url, data=np.ascontiguousarray(vol, dtype="<u8").tobytes(), timeout=TIMEOUT)
    assert r.status_code == 200, r.text


def sync(server, uuid, name, targets, **params):
    url = api(server, uuid, name, "sync")
    return requests.post(url, json={"sync": targets}, params=params, timeout=TIMEOUT)


@pytest.fixture
def synced(server, volume):
    uuid = server.new_repo()
    server.new_instance(uuid, "labelblk", "seg", BlockSize=f"{BS},{BS},{BS}")
    server.new_instance(uuid, "labelvol", "bodies", BlockSize=f"{BS},{BS},{BS}")
    assert sync(server, uuid, "bodies", "seg").status_code == 200
    assert sync(server, uuid, "seg", "bodies").status_code == 200
    post_raw(server, uuid, volume, OFFSET)
    return server, uuid


def sparsevol(server, uuid, label, **params) -> requests.Response:
    return requests.get(api(server, uuid, "bodies", f"sparsevol/{label}"), params=params, timeout=TIMEOUT)


def decode(body: bytes) -> np.ndarray:
    assert body[:4] == bytes([0, 3, 0, 0])
    (n,) = struct.unpack_from("<I", body, 8)
    assert len(body) == 12 + 16 * n
    return np.frombuffer(body, dtype="<i4", offset=12).reshape(-1, 4)


def rasterize(runs: np.ndarray, offset, shape) -> np.ndarray:
    """Independent of dvid's rle helpers: one slice assignment per run."""
    mask = np.zeros(shape, dtype=bool)
    ox, oy, oz = offset
    for x, y, z, n in runs.tolist():
        assert n > 0
        mask[z - oz, y - oy, x - ox : x - ox + n] = True
    return mask


def test_every_label_round_trips(synced, volume):
    server, uuid = synced
    labels, counts = np.unique(volume, return_counts=True)
    assert len(labels) > 10
    for label, count in zip(labels.tolist(), counts.tolist(), strict=True):
        if label == 0:
            continue
        r = sparsevol(server, uuid, label)
        assert r.status_code == 200, (label, r.text)
        runs = decode(r.content)
        assert int(runs[:, 3].sum()) == count
        # sorted by (z, y, x), no two runs touching on a row
        order = np.lexsort((runs[:, 0], runs[:, 1], runs[:, 2]))
        assert (order == np.arange(len(runs))).all()
        np.testing.assert_array_equal(rasterize(runs, OFFSET, volume.shape), volume == label)


def test_bounds_exact_and_block_granular(synced, volume):
    server, uuid = synced
    labels, counts = np.unique(volume[volume != 0], return_counts=True)
    label = int(labels[np.argmax(counts)])
    bounds = {"minx": 50, "maxx": 90, "miny": 0, "maxy": 30, "minz": 20, "maxz": 60}
    runs = decode(sparsevol(server, uuid, label, **bounds).content)
    ox, oy, oz = OFFSET
    sub = np.zeros_like(volume, dtype=bool)
    sub[20 - oz : 61 - oz, 0 - oy : 31 - oy, 50 - ox : 91 - ox] = True
    np.testing.assert_array_equal(rasterize(runs, OFFSET, volume.shape), (volume == label) & sub)
    # exact=false: the whole blocks meeting the bounds
    whole = decode(sparsevol(server, uuid, label, exact="false", minz=20, maxz=31).content)
    assert set(np.unique(whole[:, 2] // BS).tolist()) == {0}
    assert int(whole[:, 3].sum()) == int((volume[: 32 - oz] == label).sum())
    # only some bounds
    below = decode(sparsevol(server, uuid, label, maxy=-1).content)
    assert int(below[:, 3].sum()) == int((volume[:, :-oy] == label).sum())
    # bounds missing the label entirely
    assert sparsevol(server, uuid, label, minz=1000).status_code == 404
    # compressed answers
    plain = sparsevol(server, uuid, label).content
    lz = sparsevol(server, uuid, label, compression="lz4").content
    assert lz4.block.decompress(lz, uncompressed_size=len(plain)) == plain
    assert gzip.decompress(sparsevol(server, uuid, label, compression="gzip").content) == plain
    assert sparsevol(server, uuid, label, compression="zip").status_code == 400


def test_head_missing_and_label_zero(synced, volume):
    server, uuid = synced
    label = int(volume[10, 10, 10])
    url = api(server, uuid, "bodies", "sparsevol")
    assert requests.head(f"{url}/{label}", timeout=TIMEOUT).status_code == 200
    missing = int(volume.max()) + 12345
    assert requests.head(f"{url}/{missing}", timeout=TIMEOUT).status_code == 204
    assert requests.head(f"{url}/{label}", params={"minz": 500}, timeout=TIMEOUT).status_code == 204
    r = sparsevol(server, uuid, missing)
    assert r.status_code == 404 and r.content == b""
    for path in ("sparsevol/0", "sparsevol-coarse/0", "sparsevol/abc", "sparsevol-coarse/-3"):
        assert requests.get(api(server, uuid, "bodies", path), timeout=TIMEOUT).status_code == 400
    for path in ("resyncs", "nosuch"):
        assert requests.post(api(server, uuid, "bodies", path), timeout=TIMEOUT).status_code == 404
    for path in ("merge", "split/5", "split-coarse/5"):  # empty bodies (the edits: test_labelvol_edits.py)
        assert requests.post(api(server, uuid, "bodies", path), timeout=TIMEOUT).status_code == 400


def test_sparsevol_by_point(synced, volume):
    server, uuid = synced
    ox, oy, oz = OFFSET
    x, y, z = 70, 20, 50
    label = int(volume[z - oz, y - oy, x - ox])
    r = requests.get(api(server, uuid, "bodies", f"sparsevol-by-point/{x}_{y}_{z}"), timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.content == sparsevol(server, uuid, label).content
    outside = requests.get(api(server, uuid, "bodies", "sparsevol-by-point/0_0_0"), timeout=TIMEOUT)
    assert outside.status_code == 404
    bad = requests.get(api(server, uuid, "bodies", "sparsevol-by-point/1_2"), timeout=TIMEOUT)
    assert bad.status_code == 400


def test_sparsevol_coarse(synced, volume):
    server, uuid = synced
    ox, oy, oz = OFFSET
    for label in np.unique(volume[volume != 0]).tolist():
        r = requests.get(api(server, uuid, "bodies", f"sparsevol-coarse/{label}"), timeout=TIMEOUT)
        assert r.status_code == 200
        spans = decode(r.content)
        got = {(x + i, y, z) for x, y, z, n in spans.tolist() for i in range(n)}
        zs, ys, xs = np.nonzero(volume == label)
        coords = np.stack([xs + ox, ys + oy, zs + oz], axis=1) // BS
        want = set(map(tuple, coords.tolist()))
        assert got == want
    missing = int(volume.max()) + 1
    r = requests.get(api(server, uuid, "bodies", f"sparsevol-coarse/{missing}"), timeout=TIMEOUT)
    assert r.status_code == 404


def test_maxlabel_and_nextlabel(synced, volume):
    server, uuid = synced
    top = int(volume.max())

    def get(path):
        return requests.get(api(server, uuid, "bodies", path), timeout=TIMEOUT)

    def post(path):
        return requests.post(api(server, uuid, "bodies", path), timeout=TIMEOUT)

    assert get("maxlabel").json() == {"maxlabel": top}
    assert get("nextlabel").json() == {"nextlabel": top + 1}
    assert post("nextlabel/5").json() == {"start": top + 1, "end": top + 5}
    assert post("nextlabel/1").json() == {"start": top + 6, "end": top + 6}
    assert get("nextlabel").json() == {"nextlabel": top + 7}
    assert get("maxlabel").json() == {"maxlabel": top}  # reservations are repo-wide, not written labels
    for bad in ("nextlabel/0", "nextlabel/x", "nextlabel"):
        assert post(bad).status_code == 400
    info = get("info").json()
    assert info["Base"]["TypeName"] == "labelvol" and info["Base"]["Syncs"] == ["seg"]
    assert info["Extended"]["BlockSize"] == [BS, BS, BS] and info["Extended"]["MaxRepoLabel"] == top + 6


def test_child_version_write_updates_child_only(synced, volume):
    server, uuid = synced
    server.commit(uuid)
    child = server.newversion(uuid)
    new_label = int(volume.max()) + 1000
    # an unaligned 40x20x24 patch of a new label, over the middle of the volume
    patch_off = (60, 10, 30)
    patch = np.full((24, 20, 40), new_label, dtype=np.uint64)
    post_raw(server, child, patch, patch_off)
    updated = volume.copy()
    px, py, pz = (p - o for p, o in zip(patch_off, OFFSET, strict=True))
    updated[pz : pz + 24, py : py + 20, px : px + 40] = new_label

    touched = np.unique(volume[pz : pz + 24, py : py + 20, px : px + 40]).tolist()
    for label in [*touched, new_label]:
        want_child = int((updated == label).sum())
        want_root = int((volume == label).sum())
        r_child = sparsevol(server, child, label)
        r_root = sparsevol(server, uuid, label)
        if want_child:
            runs = decode(r_child.content)
            np.testing.assert_array_equal(rasterize(runs, OFFSET, volume.shape), updated == label)
        else:
            assert r_child.status_code == 404
        if want_root:
            assert int(decode(r_root.content)[:, 3].sum()) == want_root
        else:
            assert r_root.status_code == 404
    maxlabel = api(server, child, "bodies", "maxlabel")
    assert requests.get(maxlabel, timeout=TIMEOUT).json() == {"maxlabel": new_label}
    root_max = requests.get(api(server, uuid, "bodies", "maxlabel"), timeout=TIMEOUT).json()
    assert root_max == {"maxlabel": int(volume.max())}
    nxt = requests.get(api(server, uuid, "bodies", "nextlabel"), timeout=TIMEOUT).json()
    assert nxt == {"nextlabel": new_label + 1}  # repo-wide
    # a grandchild without writes of its own sees its parent's max label (no DVID "No maximum label")
    server.commit(child)
    grandchild = server.newversion(child)
    r = requests.get(api(server, grandchild, "bodies", "maxlabel"), timeout=TIMEOUT)
    assert r.json() == {"maxlabel": new_label}


def test_sync_errors_and_replace(server):
    uuid = server.new_repo()
    server.new_instance(uuid, "labelblk", "seg64")  # default BlockSize 64
    server.new_instance(uuid, "labelblk", "seg32", BlockSize="32,32,32")
    server.new_instance(uuid, "labelvol", "bodies", BlockSize="32,32,32")
    server.new_instance(uuid, "uint8blk", "gray")
    assert sync(server, uuid, "bodies", "nosuch").status_code == 404
    r = sync(server, uuid, "bodies", "gray")
    assert r.status_code == 400 and "labelblk" in r.text
    r = sync(server, uuid, "bodies", "seg64")
    assert r.status_code == 400 and "BlockSize" in r.text
    assert sync(server, uuid, "seg64", "bodies").status_code == 400
    r = requests.post(api(server, uuid, "bodies", "sync"), data=b"[1]", timeout=TIMEOUT)
    assert r.status_code == 400
    r = requests.post(api(server, uuid, "gray", "sync"), json={"sync": "seg32"}, timeout=TIMEOUT)
    assert r.status_code == 404  # uint8blk has no sync endpoint

    def syncs():
        info = requests.get(api(server, uuid, "bodies", "info"), timeout=TIMEOUT).json()
        return info["Base"]["Syncs"]

    assert syncs() == []
    assert sync(server, uuid, "bodies", "seg32").status_code == 200
    assert sync(server, uuid, "bodies", "seg32, seg32").status_code == 200
    assert syncs() == ["seg32"]
    assert sync(server, uuid, "bodies", "", replace="true").status_code == 200
    assert syncs() == []
    # without a sync the labelvol holds nothing and cannot look up points
    vol = np.full((32, 32, 32), 7, dtype=np.uint64)
    url = api(server, uuid, "seg32", "raw/0_1_2/32_32_32/0_0_0")
    assert requests.post(url, data=vol.tobytes(), timeout=TIMEOUT).status_code == 200
    assert sparsevol(server, uuid, 7).status_code == 404
    r = requests.get(api(server, uuid, "bodies", "sparsevol-by-point/1_1_1"), timeout=TIMEOUT)
    assert r.status_code == 400
    # syncs are persisted with the repo
    repo = server.manager.resolve(uuid)[0]
    assert sync(server, uuid, "bodies", "seg32").status_code == 200
    record = next(i for i in repo.to_record()["instances"] if i["name"] == "bodies")
    assert record["syncs"] == [repo.instance("seg32").meta.data_uuid]


def test_restart_keeps_syncs_and_overwrites_at_one_version(server_factory, tmp_path):
    store = tmp_path / "labelvol-store"
    srv = server_factory(store_dir=store)
    uuid = srv.new_repo()
    srv.new_instance(uuid, "labelblk", "seg", BlockSize="32,32,32")
    srv.new_instance(uuid, "labelvol", "bodies", BlockSize="32,32,32")
    assert sync(srv, uuid, "bodies", "seg").status_code == 200
    srv.stop()
    srv = server_factory(store_dir=store)
    vol = np.zeros((32, 64, 64), dtype=np.uint64)
    vol[:, :, :40] = 5
    vol[:, :, 40:] = 6
    post_raw(srv, uuid, vol, (0, 0, 0))
    assert int(decode(sparsevol(srv, uuid, 6).content)[:, 3].sum()) == 32 * 64 * 24
    # a whole-block overwrite at the same version: label 6 leaves block (1, 0, 0) for 8
    post_raw(srv, uuid, np.full((32, 32, 32), 8, dtype=np.uint64), (32, 0, 0))
    vol[:, :32, 32:] = 8
    for label in (5, 6, 8):
        runs = decode(sparsevol(srv, uuid, label).content)
        np.testing.assert_array_equal(rasterize(runs, (0, 0, 0), vol.shape), vol == label)
    coarse = requests.get(api(srv, uuid, "bodies", "sparsevol-coarse/6"), timeout=TIMEOUT)
    assert decode(coarse.content).tolist() == [[1, 1, 0, 1]]
    # an unsynced-after-the-fact write is not indexed: clear the sync, write label 9
    assert sync(srv, uuid, "bodies", "", replace="true").status_code == 200
    post_raw(srv, uuid, np.full((32, 32, 32), 9, dtype=np.uint64), (0, 0, 0))
    head = requests.head(api(srv, uuid, "bodies", "sparsevol/9"), timeout=TIMEOUT)
    assert head.status_code == 204


def test_shared_batch_needs_one_engine():
    from dvid.dag.ancestry import Ancestry
    from dvid.storage.memory import MemoryEngine
    from dvid.storage.versioned import VersionedStore

    a = VersionedStore(MemoryEngine()).context(1, Ancestry.root(1))
    b = VersionedStore(MemoryEngine()).context(2, Ancestry.root(1))
    c = VersionedStore(a.engine).context(3, Ancestry.root(1))
    batch = a.batch()
    with pytest.raises(ValueError):
        batch.for_context(b)
    batch.put(b"k", b"1")
    batch.for_context(c).put(b"k", b"2")
    assert a.get(b"k") is None and c.get(b"k") is None
    batch.commit()
    assert a.get(b"k") == b"1" and c.get(b"k") == b"2"


def test_labelvol_synced_to_a_pyramid_level_follows_level_0_writes(server, volume):
    """Writes to a labelblk update its pyramid levels; a labelvol synced to level 1 sees them too."""
    from dvid.datatype.common.labels import downsample_labels_2x

    uuid = server.new_repo()
    server.new_instance(uuid, "labelblk", "seg", BlockSize=f"{BS},{BS},{BS}")
    post_raw(server, uuid, np.zeros((64, 64, 64), "<u8"), (0, 0, 0))
    assert requests.post(api(server, uuid, "seg", "pyramid?levels=1"), timeout=TIMEOUT).status_code == 200
    server.new_instance(uuid, "labelvol", "half", BlockSize=f"{BS},{BS},{BS}")
    assert sync(server, uuid, "half", "seg_1").status_code == 200
    post_raw(server, uuid, volume, (0, 0, 0))
    half = downsample_labels_2x(volume)
    labels = [int(v) for v in np.unique(half) if v]
    assert len(labels) > 5
    for label in labels:
        r = requests.get(api(server, uuid, "half", f"sparsevol/{label}"), timeout=TIMEOUT)
        assert r.status_code == 200, (label, r.text)
        np.testing.assert_array_equal(rasterize(decode(r.content), (0, 0, 0), half.shape), half == label)
