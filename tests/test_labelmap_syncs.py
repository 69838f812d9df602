"""annotation (and labelsz through it) synced to a labelmap over real HTTP: the label index follows
voxel writes, merges, cleaves and body splits, all in the labelmap's own batch (spec
annotation-roi-keyvalue.md §5 A15-A19, A21 as DVID's TestMappedLabels: labelmap, BlockSize 32)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import requests

from dvid.datatype import registry
from dvid.datatype.base import Datatype
from dvid.datatype.common.sync import BodyListener, LabelProvider, body_listeners
from dvid.errors import BadRequest
from tests.test_annotation import TEST_DATA, TIMEOUT, delete, get, post, same, url
from tests.test_annotation_sync import (
    BS,
    FIXTURE,
    MUTATED,
    label_positions,
    post_volume,
    rle,
    runs_volume,
    sync,
)

EL1, EL2, EL3, EL5, EL6 = (tuple(TEST_DATA[i]["Pos"]) for i in (0, 1, 2, 4, 5))
KINDS = ("PreSyn", "PostSyn")


class FailingBodies(Datatype):
    """A body listener that refuses every merge and cleave (after the annotation took its turn)."""

    type_name = "failingbodies"
    type_url = "test"
    type_version = "0"
    help_text = "test listener"
    sync_requires = (LabelProvider,)
    listens = (BodyListener,)

    def bodies_merged(self, batch, ancestry, target, merged) -> None:
        raise BadRequest("merge refused")

    def body_cleaved(self, batch, ancestry, body, cleaved, moved) -> None:
        raise BadRequest("cleave refused")


@pytest.fixture(autouse=True)
def failing_bodies():
    registry.register(FailingBodies)
    yield
    registry._TYPES.pop("failingbodies", None)


@pytest.fixture
def mapped(server_factory):
    """A labelmap seg (BlockSize 32) holding FIXTURE, an annotation synapses (not yet synced) and a
    labelsz counts synced to it; the server serves labelmap's split."""
    server = server_factory(allow_labelmap_split=True)
    uuid = server.new_repo()
    server.new_instance(uuid, "labelmap", "seg", BlockSize=f"{BS},{BS},{BS}")
    server.new_instance(uuid, "annotation", "synapses")
    server.new_instance(uuid, "labelsz", "counts")
    sync(server, uuid, "counts", "synapses")
    post_volume(server, uuid, runs_volume(FIXTURE))
    return server, uuid


def seg(server, uuid, path, body, status=200, **params):
    return post(server, uuid, path, body, name="seg", status=status, **params)


def kind_counts(server, uuid, labels) -> dict[tuple[str, int], int]:
    """Elements per (kind, label) in the annotation's label index."""
    out: Counter = Counter()
    for label in labels:
        out.update((e["Kind"], label) for e in get(server, uuid, f"label/{label}").json())
    return {k: v for k, v in out.items() if v}


def labelsz_counts(server, uuid, labels) -> dict[tuple[str, int], int]:
    out = {}
    for label in labels:
        for kind in KINDS:
            n = get(server, uuid, f"count/{label}/{kind}", name="counts").json()[kind]
            if n:
                out[(kind, label)] = n
    return out


def check_counts(server, uuid, labels) -> dict[tuple[str, int], int]:
    """labelsz's counts equal the annotation's label index, label by label."""
    want = kind_counts(server, uuid, labels)
    assert labelsz_counts(server, uuid, labels) == want
    return want


def supervoxels(server, uuid, body) -> list[int]:
    r = requests.get(url(server, uuid, f"supervoxels/{body}", name="seg"), timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()


def test_mapped_labels_follow_writes_merges_splits_and_cleaves(mapped):
    server, uuid = mapped
    d = TEST_DATA
    # A15
    assert get(server, uuid, "label/1").content == b"[]"
    assert get(server, uuid, "label/1", relationships="true").content == b"[]"
    sync(server, uuid, "synapses", "seg")
    post(server, uuid, "elements", TEST_DATA)
    # A16
    same(get(server, uuid, "label/1", relationships="true").json(), [d[0]])
    same(get(server, uuid, "label/2").json(), [d[1]], rels=False)
    same(get(server, uuid, "label/3", relationships="true").json(), [d[2], d[4]])
    same(get(server, uuid, "label/3").json(), [d[2], d[4]], rels=False)
    same(get(server, uuid, "label/4").json(), [d[5]], rels=False)
    assert check_counts(server, uuid, range(1, 5)) == {
        ("PreSyn", 1): 1, ("PostSyn", 2): 1, ("PostSyn", 3): 1, ("PreSyn", 3): 1, ("PostSyn", 4): 1,
    }  # fmt: skip
    # A17: the volume re-POSTed with supervoxels 2 and 3 changed (voxel writes reach the
    # annotation with blocks decoded through the mapping)
    post_volume(server, uuid, runs_volume(MUTATED))
    assert label_positions(server, uuid, 2) == [EL3]
    assert label_positions(server, uuid, 3) == [EL2, EL5]
    assert label_positions(server, uuid, 1) == [EL1]
    assert label_positions(server, uuid, 4) == [EL6]
    check_counts(server, uuid, range(1, 5))
    # A18: merge, the target's entries first, the merged body's key gone
    seg(server, uuid, "merge", [2, 3])
    assert [tuple(e["Pos"]) for e in get(server, uuid, "label/2").json()] == [EL3, EL5, EL2]
    assert get(server, uuid, "label/3").content == b"[]"
    assert check_counts(server, uuid, range(1, 5))[("PreSyn", 2)] == 1
    # voxel writes after the merge see bodies: element 6 joins body 2 when supervoxel 4 is written
    # as supervoxel 3 (mapped to 2)
    post_volume(server, uuid, runs_volume({**MUTATED, 3: [*MUTATED[3], (80, 47, 87, 89)], 4: []}))
    assert label_positions(server, uuid, 2) == [EL3, EL2, EL6, EL5]
    assert label_positions(server, uuid, 4) == []
    post_volume(server, uuid, runs_volume(MUTATED))
    assert label_positions(server, uuid, 4) == [EL6]
    # A19: split of body 2 (x19-20 where DVID's runs said x19-21: x21 is not in the body)
    runs = [(4, 8, 12, 5), (8, 25, 37, 3), (13, 25, 37, 3), (19, 30, 40, 2)]
    new = seg(server, uuid, "split/2", rle(runs)).json()["label"]
    assert label_positions(server, uuid, new) == [EL3, EL2]
    assert label_positions(server, uuid, 2) == [EL5]
    check_counts(server, uuid, [1, 2, 3, 4, new])
    # re-merge, then cleave the split body's supervoxels off again
    split_svs = supervoxels(server, uuid, new)
    seg(server, uuid, "merge", [2, new])
    assert label_positions(server, uuid, 2) == [EL3, EL2, EL5]
    assert get(server, uuid, f"label/{new}").content == b"[]"
    cleaved = seg(server, uuid, "cleave/2", split_svs).json()["CleavedLabel"]
    assert label_positions(server, uuid, cleaved) == [EL3, EL2]
    assert label_positions(server, uuid, 2) == [EL5]
    assert check_counts(server, uuid, [1, 2, 3, 4, new, cleaved]) == {
        ("PreSyn", 1): 1, ("PreSyn", 2): 1, ("PostSyn", cleaved): 2, ("PostSyn", 4): 1,
    }  # fmt: skip
    delete(server, uuid, "element/20_30_40")
    assert label_positions(server, uuid, cleaved) == [EL3]
    check_counts(server, uuid, [1, 2, 3, 4, new, cleaved])
    # labels edits touch neither the block nor the tag index
    assert len(get(server, uuid, "tag/Synapse2").json()) == 4
    kept = [tuple(e["Pos"]) for e in get(server, uuid, "elements/1000_1000_1000/0_0_0").json()]
    assert sorted(kept) == sorted(tuple(e["Pos"]) for e in d if e["Pos"] != [20, 30, 40])


def test_cleaves_move_only_the_marked_elements(mapped):
    server, uuid = mapped
    post_volume(server, uuid, runs_volume({**FIXTURE, 9: [(0, 0, 0, 5)]}))  # 9 holds no element
    sync(server, uuid, "synapses", "seg")
    post(server, uuid, "elements", TEST_DATA)
    seg(server, uuid, "merge", [1, 3, 9])
    assert label_positions(server, uuid, 1) == [EL3, EL1, EL5]
    # a cleave of supervoxels without elements moves none
    before = get(server, uuid, "label/1").content
    empty = seg(server, uuid, "cleave/1", [9]).json()["CleavedLabel"]
    assert get(server, uuid, "label/1").content == before
    assert get(server, uuid, f"label/{empty}").content == b"[]"
    # a cleave of supervoxel 3 takes its two elements, one in each of two blocks
    cleaved = seg(server, uuid, "cleave/1", [3]).json()["CleavedLabel"]
    assert label_positions(server, uuid, cleaved) == [EL3, EL5]
    assert label_positions(server, uuid, 1) == [EL1]
    # cleaving every element away leaves an empty label
    seg(server, uuid, "merge", [1, empty])
    last = seg(server, uuid, "cleave/1", [1]).json()["CleavedLabel"]
    assert label_positions(server, uuid, last) == [EL1]
    assert get(server, uuid, "label/1").content == b"[]"
    check_counts(server, uuid, [1, 2, 3, 4, 9, empty, cleaved, last])


def test_split_supervoxel_changes_no_body(mapped):
    server, uuid = mapped
    sync(server, uuid, "synapses", "seg")
    post(server, uuid, "elements", TEST_DATA)
    before = get(server, uuid, "label/3").content
    # split supervoxel 3 between its two runs: body 3 keeps both elements
    out = seg(server, uuid, "split-supervoxel/3", rle([(13, 25, 37, 3)])).json()
    assert get(server, uuid, "label/3").content == before
    assert supervoxels(server, uuid, 3) == sorted([out["SplitSupervoxel"], out["RemainSupervoxel"]])
    check_counts(server, uuid, range(1, 5))
    # and a cleave of one half moves the element there
    cleaved = seg(server, uuid, "cleave/3", [out["SplitSupervoxel"]]).json()["CleavedLabel"]
    assert label_positions(server, uuid, cleaved) == [EL3]
    assert label_positions(server, uuid, 3) == [EL5]
    check_counts(server, uuid, [1, 2, 3, 4, cleaved])


def test_renumber_moves_the_elements(mapped):
    server, uuid = mapped
    sync(server, uuid, "synapses", "seg")
    post(server, uuid, "elements", TEST_DATA)
    seg(server, uuid, "renumber", [1000, 3])
    assert label_positions(server, uuid, 1000) == [EL3, EL5]
    assert get(server, uuid, "label/3").content == b"[]"
    check_counts(server, uuid, [1, 2, 3, 4, 1000])


def test_failed_edits_leave_the_annotation_unchanged(mapped):
    server, uuid = mapped
    sync(server, uuid, "synapses", "seg")
    post(server, uuid, "elements", TEST_DATA)
    seg(server, uuid, "merge", [2, 3])

    def state():
        return [get(server, uuid, f"label/{label}").content for label in range(1, 8)]

    before, counts = state(), check_counts(server, uuid, range(1, 8))
    mutations = requests.get(url(server, uuid, "mutations", name="seg"), timeout=TIMEOUT).json()
    seg(server, uuid, "cleave/2", [999], status=400)  # not a supervoxel of body 2
    seg(server, uuid, "cleave/2", [2, 3], status=400)  # all of it
    seg(server, uuid, "merge", [2, 77], status=400)  # no such body
    seg(server, uuid, "split/2", rle([(0, 0, 0, 5)]), status=400)  # runs outside the body
    seg(server, uuid, "renumber", [1, 2], status=400)  # target exists
    assert state() == before and check_counts(server, uuid, range(1, 8)) == counts
    # a listener failing after the annotation wrote into the labelmap's batch: nothing is stored
    server.new_instance(uuid, "failingbodies", "broken")
    sync(server, uuid, "broken", "seg")
    repo, _ = server.manager.resolve(uuid)
    assert [i.type_name for i in body_listeners(repo.instance("seg"))] == ["annotation", "failingbodies"]
    for path, body in (("merge", [2, 4]), ("cleave/2", [3]), ("split/2", rle([(12, 30, 40, 3)]))):
        data = json.dumps(body) if isinstance(body, list) else body
        r = requests.post(url(server, uuid, path, name="seg"), data=data, timeout=TIMEOUT)
        assert r.status_code == 400 and "refused" in r.text, (path, r.text)
    assert supervoxels(server, uuid, 2) == [2, 3] and supervoxels(server, uuid, 4) == [4]
    assert requests.get(url(server, uuid, "mutations", name="seg"), timeout=TIMEOUT).json() == mutations
    assert state() == before and check_counts(server, uuid, range(1, 8)) == counts


def test_edits_at_a_child_leave_the_parent(mapped):
    server, uuid = mapped
    sync(server, uuid, "synapses", "seg")
    post(server, uuid, "elements", TEST_DATA)
    server.commit(uuid)
    child = server.newversion(uuid)
    seg_child = lambda path, body: post(server, child, path, body, name="seg")  # noqa: E731
    seg_child("merge", [1, 3])
    assert label_positions(server, child, 1) == [EL3, EL1, EL5]
    cleaved = seg_child("cleave/1", [3]).json()["CleavedLabel"]
    assert label_positions(server, child, cleaved) == [EL3, EL5]
    assert label_positions(server, uuid, 1) == [EL1]
    assert label_positions(server, uuid, 3) == [EL3, EL5]
    assert labelsz_counts(server, uuid, [1, 3, cleaved]) == {
        ("PreSyn", 1): 1,
        ("PostSyn", 3): 1,
        ("PreSyn", 3): 1,
    }
    assert labelsz_counts(server, child, [1, 3, cleaved]) == {
        ("PreSyn", 1): 1, ("PostSyn", cleaved): 1, ("PreSyn", cleaved): 1,
    }  # fmt: skip


@pytest.mark.parametrize("check", ["false", "true"])
def test_reload_after_late_sync(mapped, check):
    # A21: elements posted before the sync (block size 64), then sync to the labelmap (32) and reload
    server, uuid = mapped
    post(server, uuid, "elements", TEST_DATA)
    sync(server, uuid, "synapses", "seg")
    assert get(server, uuid, "label/1").json() == []
    assert post(server, uuid, "reload", b"", check=check).json()["elements"] == 8
    assert label_positions(server, uuid, 1) == [EL1]
    assert label_positions(server, uuid, 2) == [EL2]
    assert label_positions(server, uuid, 3) == [EL3, EL5]
    assert label_positions(server, uuid, 4) == [EL6]
    assert "3,1,3" in get(server, uuid, "blocks/32_32_32/96_32_96").json()
    post(server, uuid, "reload", b"", name="counts")
    check_counts(server, uuid, range(1, 5))
    # a reload sees bodies, not supervoxels
    seg(server, uuid, "merge", [2, 3])
    post(server, uuid, "reload", b"")
    assert label_positions(server, uuid, 2) == [EL3, EL2, EL5]
    assert get(server, uuid, "label/3").json() == []
    post_volume(server, uuid, runs_volume(MUTATED))  # A17 then after the reload
    assert label_positions(server, uuid, 2) == [EL3, EL2, EL5]
    check_counts(server, uuid, range(1, 5))
