"""annotation synced to labels over real HTTP: the label index follows voxel writes, labelvol merges,
splits and area deletes (spec §5 A16-A21, labelblk/labelvol variant), and counts listeners (labelsz)
get exact per-(Kind, label) deltas in the same batch."""

from __future__ import annotations

import struct
from collections import Counter
from typing import Any, ClassVar

import numpy as np
import pytest
import requests

from dvid.datatype import registry
from dvid.datatype.base import Datatype
from dvid.datatype.common.sync import CountListener, CountSource
from tests.test_annotation import TEST_DATA, TIMEOUT, delete, get, post, same, url

BS = 32
EDGE = 128


def runs_volume(labels: dict[int, list[tuple[int, int, int, int]]]) -> np.ndarray:
    """A 128^3 (z, y, x) volume with each label on its runs (z, y, x0, x1 inclusive)."""
    vol = np.zeros((EDGE, EDGE, EDGE), dtype="<u8")
    for label, runs in labels.items():
        for z, y, x0, x1 in runs:
            vol[z, y, x0 : x1 + 1] = label
    return vol


FIXTURE = {
    1: [(35, 27, 11, 28), (36, 28, 13, 25)],
    2: [(40, 30, 12, 20)],
    3: [(37, 25, 13, 15), (99, 63, 126, 127)],
    4: [(80, 47, 87, 89)],
}
MUTATED = {
    1: FIXTURE[1],
    2: [(12, 8, 0, 10), (37, 25, 8, 15)],
    3: [(40, 30, 12, 20), (99, 63, 126, 127)],
    4: FIXTURE[4],
}


def post_volume(server, uuid, vol: np.ndarray) -> None:
    r = requests.post(
        url(server, uuid, f"raw/0_1_2/{EDGE}_{EDGE}_{EDGE}/0_0_0", name="seg"),
        data=vol.tobytes(),
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text


def sync(server, uuid, name, target):
    r = requests.post(url(server, uuid, "sync", name=name), json={"sync": target}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text


def rle(runs) -> bytes:
    """A legacy sparsevol body of runs (x, y, z, length)."""
    arr = np.asarray(runs, dtype="<i4").reshape(-1, 4)
    return bytes([0, 3, 0, 0]) + struct.pack("<II", 0, len(arr)) + arr.tobytes()


def positions(elements) -> list[tuple[int, ...]]:
    return sorted(tuple(e["Pos"]) for e in elements)


def label_positions(server, uuid, label) -> list[tuple[int, ...]]:
    return positions(get(server, uuid, f"label/{label}").json())


class FakeCounts(Datatype):
    """A minimal labelsz stand-in: keeps the deltas it is told about."""

    type_name = "fakecounts"
    type_url = "test"
    type_version = "0"
    help_text = "test listener"
    sync_requires = (CountSource,)
    listens = (CountListener,)
    calls: ClassVar[list[Any]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counts: Counter = Counter()

    def annotation_counts_changed(self, batch, ancestry, deltas) -> None:
        assert batch is not None and all(v != 0 for v in deltas.values())
        assert all(isinstance(k, str) and isinstance(label, int) for k, label in deltas)
        self.calls.append(dict(deltas))
        self.counts.update(deltas)


@pytest.fixture
def fakecounts():
    registry.register(FakeCounts)
    FakeCounts.calls.clear()
    yield FakeCounts
    registry._TYPES.pop("fakecounts", None)


def instance(server, uuid, name):
    repo, node = server.manager.resolve(uuid)
    inst = repo.instance(name)
    return inst, inst.context(repo.dag.ancestry(node.version))


def check_counts(server, uuid):
    """The listener's running totals equal the annotation's full counts."""
    ann, ctx = instance(server, uuid, "synapses")
    fake, _ = instance(server, uuid, "counts")
    want = ann.label_kind_counts(ctx)
    got = {k: v for k, v in fake.counts.items() if v}
    assert got == want
    return want


@pytest.fixture
def labelled(server):
    """A labelblk seg and labelvol bodies (BlockSize 32, synced both ways) holding FIXTURE, and an
    annotation synapses synced to seg."""
    uuid = server.new_repo()
    server.new_instance(uuid, "labelblk", "seg", BlockSize=f"{BS},{BS},{BS}")
    server.new_instance(uuid, "labelvol", "bodies", BlockSize=f"{BS},{BS},{BS}")
    sync(server, uuid, "bodies", "seg")
    sync(server, uuid, "seg", "bodies")
    server.new_instance(uuid, "annotation", "synapses")
    post_volume(server, uuid, runs_volume(FIXTURE))
    return server, uuid


def test_mapped_labels_merge_split_delete(labelled):
    server, uuid = labelled
    d = TEST_DATA
    # A15
    assert get(server, uuid, "label/1").content == b"[]"
    sync(server, uuid, "synapses", "seg")
    post(server, uuid, "elements", TEST_DATA)
    # A16
    same(get(server, uuid, "label/1", relationships="true").json(), [d[0]])
    same(get(server, uuid, "label/2").json(), [d[1]], rels=False)
    same(get(server, uuid, "label/3", relationships="true").json(), [d[2], d[4]])
    same(get(server, uuid, "label/3").json(), [d[2], d[4]], rels=False)
    assert all("Rels" not in e for e in get(server, uuid, "label/3").json())
    same(get(server, uuid, "label/4").json(), [d[5]], rels=False)
    # A17: re-POST the volume with labels 2 and 3 changed
    post_volume(server, uuid, runs_volume(MUTATED))
    same(get(server, uuid, "label/2").json(), [d[2]], rels=False)
    same(get(server, uuid, "label/3").json(), [d[1], d[4]], rels=False)
    same(get(server, uuid, "label/1").json(), [d[0]], rels=False)
    same(get(server, uuid, "label/4").json(), [d[5]], rels=False)
    # A18: labelvol merge
    post(server, uuid, "merge", [2, 3], name="bodies")
    assert [tuple(e["Pos"]) for e in get(server, uuid, "label/2").json()] == [
        (14, 25, 37),
        (20, 30, 40),
        (127, 63, 99),
    ]
    assert get(server, uuid, "label/3").content == b"[]"
    # A19: split (x19-20: labelvol refuses voxels outside the body, where DVID's runs said x19-21)
    runs = [(4, 8, 12, 5), (8, 25, 37, 3), (13, 25, 37, 3), (19, 30, 40, 2)]
    new = post(server, uuid, "split/2", rle(runs), name="bodies").json()["label"]
    assert label_positions(server, uuid, new) == [(14, 25, 37), (20, 30, 40)]
    assert label_positions(server, uuid, 2) == [(127, 63, 99)]
    delete(server, uuid, "element/20_30_40")
    assert label_positions(server, uuid, new) == [(14, 25, 37)]
    # coarse split of block (3, 1, 3) moves element 5 off label 2
    coarse = post(server, uuid, "split-coarse/2", rle([(3, 1, 3, 1)]), name="bodies").json()["label"]
    assert label_positions(server, uuid, 2) == []
    assert label_positions(server, uuid, coarse) == [(127, 63, 99)]
    # area delete: the voxels become background, the element leaves every label
    r = requests.delete(url(server, uuid, f"area/{coarse}/32_32_32/96_32_96", name="bodies"), timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert label_positions(server, uuid, coarse) == []
    # block and tag indexes are untouched by label edits
    assert len(get(server, uuid, "tag/Synapse2").json()) == 4


def test_labelvol_sync_and_move(labelled):
    server, uuid = labelled
    sync(server, uuid, "synapses", "bodies")  # resolved to its labelblk, which joins the syncs
    syncs = get(server, uuid, "info").json()["Base"]["Syncs"]
    assert sorted(syncs) == ["bodies", "seg"]
    post(server, uuid, "elements", TEST_DATA)
    assert label_positions(server, uuid, 1) == [(15, 27, 35)]
    # move within label 1: the label index gets the new Pos (DVID would keep the stale one)
    post(server, uuid, "move/15_27_35/20_27_35", b"")
    assert label_positions(server, uuid, 1) == [(20, 27, 35)]
    full = get(server, uuid, "label/1", relationships="true").json()
    assert len(full) == 1 and full[0]["Rels"][0]["To"] == [20, 30, 40]
    # partners point at the new place
    partner = get(server, uuid, "elements/1_1_1/20_30_40").json()
    assert partner[0]["Rels"] == [{"Rel": "PostSynTo", "To": [20, 27, 35]}]
    # move onto label 4, then onto background
    post(server, uuid, "move/20_27_35/88_47_80", b"", status=400)  # occupied
    post(server, uuid, "move/20_27_35/87_47_80", b"")
    assert label_positions(server, uuid, 1) == []
    assert label_positions(server, uuid, 4) == [(87, 47, 80), (88, 47, 80)]
    post(server, uuid, "move/87_47_80/5_5_5", b"")
    assert label_positions(server, uuid, 4) == [(88, 47, 80)]
    # and back into label 1 across blocks
    post(server, uuid, "move/5_5_5/12_27_35", b"")
    assert label_positions(server, uuid, 1) == [(12, 27, 35)]
    assert [t["Pos"] for t in get(server, uuid, "tag/Zlt90").json()].count([12, 27, 35]) == 1


def test_verbose_relationships(labelled):
    # A20
    server, uuid = labelled
    sync(server, uuid, "synapses", "seg")
    els = [
        {"Pos": [15, 27, 35], "Kind": "PreSyn", "Tags": ["TestSynapse"],
         "Prop": {"conf": "0.95", "type": "T-Bar"},
         "Rels": [{"Rel": "PreSynTo", "To": [20, 28, 36]}]},
        {"Pos": [20, 28, 36], "Kind": "PostSyn", "Tags": ["TestSynapse"],
         "Prop": {"conf": "0.87", "type": "PSD"},
         "Rels": [{"Rel": "PostSynTo", "To": [15, 27, 35]}, {"Rel": "GroupedWith", "To": [1, 1, 1]}]},
    ]  # fmt: skip
    post(server, uuid, "elements", els)
    got = get(server, uuid, "label/1", relationships="verbose").json()
    assert len(got) == 2
    pre = next(e for e in got if e["Kind"] == "PreSyn")
    assert pre["Rels"] == [
        {"Rel": "PreSynTo", "To": [20, 28, 36], "Kind": "PostSyn", "Tags": ["TestSynapse"],
         "Prop": {"conf": "0.87", "type": "PSD"}}
    ]  # fmt: skip
    post_ = next(e for e in got if e["Kind"] == "PostSyn")
    assert post_["Rels"][1] == {"Rel": "GroupedWith", "To": [1, 1, 1]}  # unresolved partner
    got = get(server, uuid, "tag/TestSynapse", relationships="verbose").json()
    assert len(got) == 2
    for e in got:
        resolved = [r for r in e["Rels"] if r["To"] != [1, 1, 1]]
        assert all(r["Kind"] and r["Prop"] for r in resolved)


def test_reload_after_late_sync(labelled):
    # A21: elements posted before the sync (block size 64), then sync (32) and reload
    server, uuid = labelled
    post(server, uuid, "elements", TEST_DATA)
    sync(server, uuid, "synapses", "seg")
    assert get(server, uuid, "label/1").json() == []
    r = post(server, uuid, "reload", b"")
    assert r.json()["elements"] == 8
    assert label_positions(server, uuid, 1) == [(15, 27, 35)]
    assert label_positions(server, uuid, 3) == [(14, 25, 37), (127, 63, 99)]
    # elements were moved to their 32^3 blocks: subvolume and move/delete work at the new size
    same(get(server, uuid, "elements/1000_1000_1000/0_0_0").json(), TEST_DATA)
    assert "3,1,3" in get(server, uuid, "blocks/32_32_32/96_32_96").json()
    delete(server, uuid, "element/127_63_99")
    assert label_positions(server, uuid, 3) == [(14, 25, 37)]
    # a second reload changes nothing
    assert post(server, uuid, "reload", b"").json()["index keys written"] == 0


def test_label_edits_at_child_leave_parent(labelled):
    server, uuid = labelled
    sync(server, uuid, "synapses", "seg")
    post(server, uuid, "elements", TEST_DATA)
    server.commit(uuid)
    child = server.newversion(uuid)
    post(server, child, "merge", [1, 3], name="bodies")
    assert label_positions(server, child, 1) == [(14, 25, 37), (15, 27, 35), (127, 63, 99)]
    assert label_positions(server, uuid, 1) == [(15, 27, 35)]
    assert label_positions(server, uuid, 3) == [(14, 25, 37), (127, 63, 99)]
    post_volume(server, child, runs_volume({}))
    for label in (1, 2, 3, 4):
        assert label_positions(server, child, label) == []
    assert label_positions(server, uuid, 4) == [(88, 47, 80)]


def test_counts_listener_gets_exact_deltas(labelled, fakecounts):
    server, uuid = labelled
    sync(server, uuid, "synapses", "seg")
    server.new_instance(uuid, "fakecounts", "counts")
    sync(server, uuid, "counts", "synapses")
    post(server, uuid, "elements", TEST_DATA)
    assert fakecounts.calls[-1] == {
        ("PreSyn", 1): 1, ("PostSyn", 2): 1, ("PostSyn", 3): 1, ("PostSyn", 0): 3,
        ("PreSyn", 3): 1, ("PostSyn", 4): 1,
    }  # fmt: skip
    check_counts(server, uuid)
    # a Kind change at the same Pos: -1 old kind, +1 new
    post(server, uuid, "elements", [{"Pos": [20, 30, 40], "Kind": "Note"}])
    assert fakecounts.calls[-1] == {("PostSyn", 2): -1, ("Note", 2): 1}
    n = len(fakecounts.calls)
    post(server, uuid, "elements", [{"Pos": [20, 30, 40], "Kind": "Note"}])  # no change: no call
    assert len(fakecounts.calls) == n
    post_volume(server, uuid, runs_volume(MUTATED))
    check_counts(server, uuid)
    post(server, uuid, "merge", [2, 3], name="bodies")
    assert fakecounts.calls[-1] == {("Note", 3): -1, ("PreSyn", 3): -1, ("Note", 2): 1, ("PreSyn", 2): 1}
    check_counts(server, uuid)
    post(server, uuid, "move/14_25_37/5_5_5", b"")
    assert fakecounts.calls[-1] == {("PostSyn", 2): -1, ("PostSyn", 0): 1}
    delete(server, uuid, "element/15_27_35")
    assert fakecounts.calls[-1] == {("PreSyn", 1): -1}
    r = requests.delete(url(server, uuid, "area/2/128_128_128/0_0_0", name="bodies"), timeout=TIMEOUT)
    assert r.status_code == 200
    counts = check_counts(server, uuid)
    assert not any(label == 2 for _, label in counts)
    # a failed request tells the listener nothing
    n = len(fakecounts.calls)
    post(server, uuid, "elements", [{"Pos": [1, 1, 1]}, {"Pos": [1, 1]}], status=400)
    assert len(fakecounts.calls) == n
    # reload after raw block writes reports the difference
    post(server, uuid, "blocks", {"0,0,0": [{"Pos": [1, 2, 3], "Kind": "Gap"}]})
    post(server, uuid, "reload", b"")
    check_counts(server, uuid)
