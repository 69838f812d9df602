"""labelvol POST resync over real HTTP: indexing FIB-19 label data written before the sync existed."""

from __future__ import annotations

import numpy as np
import requests

from tests.test_labelvol import BS, OFFSET, TIMEOUT, api, decode, post_raw, rasterize, sparsevol, sync, volume
from tests.test_labelvol_edits import raw

__all__ = ["volume"]  # the module fixture, shared with test_labelvol

SHAPE = (64, 64, 64)


def setup_unsynced(server, volume) -> str:
    """A labelblk holding the volume, then a labelvol synced to it afterwards (so nothing indexed)."""
    uuid = server.new_repo()
    server.new_instance(uuid, "labelblk", "seg", BlockSize=f"{BS},{BS},{BS}")
    post_raw(server, uuid, volume, OFFSET)
    server.new_instance(uuid, "labelvol", "bodies", BlockSize=f"{BS},{BS},{BS}")
    for name, target in (("bodies", "seg"), ("seg", "bodies")):
        assert sync(server, uuid, name, target).status_code == 200
    return uuid


def resync(server, uuid) -> requests.Response:
    return requests.post(api(server, uuid, "bodies", "resync"), timeout=TIMEOUT)


def head(server, uuid, label) -> int:
    return requests.head(api(server, uuid, "bodies", f"sparsevol/{label}"), timeout=TIMEOUT).status_code


def get_json(server, uuid, path):
    r = requests.get(api(server, uuid, "bodies", path), timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()


def check_all(server, uuid, vol: np.ndarray, labels) -> list[bytes]:
    """Every label's sparsevol has numpy's voxel count and exactly its voxels; returns the bodies."""
    bodies = []
    for label in labels:
        want = vol == label
        r = sparsevol(server, uuid, label)
        if not want.any():
            assert r.status_code == 404, label
            assert head(server, uuid, label) == 204
            bodies.append(b"")
            continue
        assert r.status_code == 200, (label, r.text)
        runs = decode(r.content)
        assert int(runs[:, 3].sum()) == int(want.sum()), label
        np.testing.assert_array_equal(rasterize(runs, OFFSET, SHAPE), want, err_msg=f"label {label}")
        bodies.append(r.content)
    return bodies


def test_resync_indexes_data_written_before_the_sync(server, volume):
    uuid = setup_unsynced(server, volume)
    labels = [int(v) for v in np.unique(volume) if v != 0]
    assert len(labels) > 10
    for label in labels[:5]:
        assert sparsevol(server, uuid, label).status_code == 404
        assert head(server, uuid, label) == 204
    assert get_json(server, uuid, "maxlabel") == {"maxlabel": 0}

    r = resync(server, uuid)
    assert r.status_code == 200, r.text
    # the volume at OFFSET (40, -8, 16), 64^3, meets 3 x 3 x 3 blocks of 32^3
    assert r.json() == {"blocks": 27, "labels": len(labels)}
    first = check_all(server, uuid, volume, labels)
    top = int(volume.max())
    assert get_json(server, uuid, "maxlabel") == {"maxlabel": top}
    assert get_json(server, uuid, "nextlabel") == {"nextlabel": top + 1}
    coarse = requests.get(api(server, uuid, "bodies", f"sparsevol-coarse/{labels[0]}"), timeout=TIMEOUT)
    assert coarse.status_code == 200

    # idempotent: the same answer and the same runs
    r = resync(server, uuid)
    assert r.status_code == 200 and r.json() == {"blocks": 27, "labels": len(labels)}
    assert check_all(server, uuid, volume, labels) == first
    assert get_json(server, uuid, "maxlabel") == {"maxlabel": top}

    # writes after the sync are still indexed as they happen, and agree with a resync
    patch = np.full((8, 8, 8), top + 7, dtype=np.uint64)
    post_raw(server, uuid, patch, (60, 10, 30))
    vol = raw(server, uuid)
    after_write = check_all(server, uuid, vol, [*labels, top + 7])
    assert resync(server, uuid).json() == {"blocks": 27, "labels": len(np.unique(vol[vol != 0]))}
    assert check_all(server, uuid, vol, [*labels, top + 7]) == after_write


def test_resync_at_child_repairs_only_the_child(server, volume):
    uuid = setup_unsynced(server, volume)
    assert resync(server, uuid).status_code == 200
    labels = [int(v) for v in np.unique(volume) if v != 0]
    root_bodies = check_all(server, uuid, volume, labels)
    server.commit(uuid)
    child = server.newversion(uuid)

    # unsynced, a write at the child is not indexed: the child's runs go stale
    assert sync(server, child, "bodies", "", replace="true").status_code == 200
    new_label = int(volume.max()) + 100
    patch = np.full((48, 64, 64), new_label, dtype=np.uint64)  # all but the first 16 z planes
    post_raw(server, child, patch, (OFFSET[0], OFFSET[1], OFFSET[2] + 16))
    vol = raw(server, child)
    gone = [label for label in labels if not (vol == label).any()]
    assert gone, "the patch should wipe out some labels entirely"
    assert sparsevol(server, child, new_label).status_code == 404
    assert sparsevol(server, child, gone[0]).status_code == 200  # stale

    assert sync(server, child, "bodies", "seg").status_code == 200
    r = resync(server, child)
    assert r.status_code == 200, r.text
    assert r.json() == {"blocks": 27, "labels": len(np.unique(vol[vol != 0]))}
    check_all(server, child, vol, [*labels, new_label])
    assert get_json(server, child, "maxlabel") == {"maxlabel": new_label}

    # the committed root keeps its runs, its maxlabel, and refuses a resync
    assert check_all(server, uuid, volume, labels) == root_bodies
    assert sparsevol(server, uuid, new_label).status_code == 404
    assert get_json(server, uuid, "maxlabel") == {"maxlabel": int(volume.max())}
    assert resync(server, uuid).status_code == 409


def test_resync_needs_a_synced_labelblk(server, volume):
    uuid = server.new_repo()
    server.new_instance(uuid, "labelvol", "bodies", BlockSize=f"{BS},{BS},{BS}")
    r = resync(server, uuid)
    assert r.status_code == 400
    assert "not synced" in r.text
    # an empty synced labelblk: nothing to index
    server.new_instance(uuid, "labelblk", "seg", BlockSize=f"{BS},{BS},{BS}")
    assert sync(server, uuid, "bodies", "seg").status_code == 200
    r = resync(server, uuid)
    assert r.status_code == 200 and r.json() == {"blocks": 0, "labels": 0}
    assert get_json(server, uuid, "maxlabel") == {"maxlabel": 0}
