"""dvid.api annotations: elements as lists of dicts and pandas DataFrames, against a live server."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import dvid.api

ELEMENTS = [
    {"Pos": [10, 20, 30], "Kind": "PreSyn", "Tags": ["a"], "Prop": {"conf": "0.9"},
     "Rels": [{"Rel": "PreSynTo", "To": [11, 21, 31]}]},
    {"Pos": [11, 21, 31], "Kind": "PostSyn", "Tags": [], "Prop": {},
     "Rels": [{"Rel": "PostSynTo", "To": [10, 20, 30]}]},
    {"Pos": [100, 5, 70], "Kind": "Note", "Tags": ["a", "b"], "Prop": {}, "Rels": []},
]  # fmt: skip


@pytest.fixture
def ann(server):
    node = dvid.api.connect(server.url, progress=False).new_repo("ann", "annotations")
    ann = node.create("annotation", "synapses")
    ann.add(ELEMENTS)
    return ann


def positions(elements):
    return sorted(tuple(e["Pos"]) for e in elements)


def test_elements_in_a_box_and_by_tag(ann):
    assert isinstance(ann, dvid.api.Annotations)
    # (z, y, x) box: z 30..31 and y 20..21 and x 10..11 hold the two synapse elements
    assert positions(ann[30:32, 20:22, 10:12]) == [(10, 20, 30), (11, 21, 31)]
    assert positions(ann[30:31, 20:21, 10:11]) == [(10, 20, 30)]
    assert ann[30:30, 0:100, 0:100] == []
    assert positions(ann.elements((0, 0, 0), (100, 100, 200))) == positions(ELEMENTS)
    assert positions(ann.all()) == positions(ELEMENTS)
    assert positions(ann.by_tag("b")) == [(100, 5, 70)]
    with pytest.raises(dvid.api.BadIndex, match="negative"):
        ann[-1:5, 0:5, 0:5]
    with pytest.raises(dvid.api.BadIndex, match=r"or use all\(\)"):
        ann[:, 0:5, 0:5]
    with pytest.raises(dvid.api.BadIndex, match="every bound"):
        ann[0:5]


def test_delete_and_move(ann):
    ann.move((70, 5, 100), (71, 6, 101))
    assert positions(ann.by_tag("b")) == [(101, 6, 71)]
    ann.delete((71, 6, 101))
    assert positions(ann.all()) == [(10, 20, 30), (11, 21, 31)]
    with pytest.raises(dvid.api.BadRequest):
        ann.delete((1, 1, 1))


def test_dataframe(ann):
    frame = ann.dataframe()
    assert list(frame.columns) == ["z", "y", "x", "kind", "tags", "prop", "rels"]
    frame = frame.sort_values("x").reset_index(drop=True)
    assert frame[["z", "y", "x"]].to_numpy().tolist() == [[30, 20, 10], [31, 21, 11], [70, 5, 100]]
    assert frame["z"].dtype == np.int32
    assert frame["kind"].tolist() == ["PreSyn", "PostSyn", "Note"]
    assert frame.loc[0, "rels"] == [{"Rel": "PreSynTo", "To": [11, 21, 31]}]
    assert len(ann.dataframe(ann[30:31, 20:21, 10:11])) == 1
    assert list(dvid.api.dataframe([]).columns) == ["z", "y", "x", "kind", "tags", "prop", "rels"]


def test_dataframe_without_pandas_says_what_to_install(ann, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(ImportError, match="pip install pandas"):
        ann.dataframe()
    assert positions(ann.all()) == positions(ELEMENTS)  # lists of dicts still work
