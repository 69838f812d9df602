"""annotation's fast paths give exactly what the general ones do: element validation, the one-call
encoding of many elements, row reads of blocks, and the batched POST (block, label and tag bytes)."""

from __future__ import annotations

import copy
import gc
import json

import numpy as np
import pytest
import requests

from dvid.datatype import annotation as ann
from dvid.datatype.common import elements as el
from dvid.errors import BadRequest
from dvid.storage import keys
from tests.test_annotation import TIMEOUT, url

TRICKY = ["a", "<b>&", "é", "\u2028x", '{"Pos":[1,2,3]', ',"Rels":[', 'q"uote', "back\\slash", "Pos", "Rels"]


def slow(raw, with_rels=True):
    """parse_element through the general path (field names lowercased: never the fast path)."""
    return el.parse_element({k.lower(): v for k, v in raw.items()}, "e", with_rels=with_rels)


@pytest.mark.parametrize(
    "raw",
    [
        {"Pos": [1, 2, 3], "Kind": "PreSyn", "Tags": ["t"], "Prop": {"b": "1", "a": "2"}, "Rels": None},
        {"Pos": [1, 2, 3], "Kind": "Note", "Tags": None, "Prop": None, "Rels": []},
        {"Pos": [-(2**31), 0, 2**31 - 1], "Kind": "Unknown", "Tags": [], "Prop": {}, "Rels": [
            {"Rel": "PostSynTo", "To": [4, 5, 6]}, {"Rel": "GroupedWith", "To": [0, 0, 0]}]},
    ],
)  # fmt: skip
def test_fast_path_is_the_general_one(raw):
    want = slow(copy.deepcopy(raw))
    got = el.parse_element(copy.deepcopy(raw), "e")
    assert got == want and list(got) == list(want) and list(got["Prop"] or {}) == list(want["Prop"] or {})
    nr = {k: v for k, v in raw.items() if k != "Rels"}
    assert el.parse_element(copy.deepcopy(nr), "e", with_rels=False) == slow(nr, with_rels=False)


@pytest.mark.parametrize(
    "raw",
    [
        {"Pos": [1, 2], "Kind": "PreSyn", "Tags": None, "Prop": None, "Rels": None},
        {"Pos": [1, 2, 2**31], "Kind": "PreSyn", "Tags": None, "Prop": None, "Rels": None},
        {"Pos": [1, 2, True], "Kind": "PreSyn", "Tags": None, "Prop": None, "Rels": None},
        {"Pos": [1, 2, 3.0], "Kind": "PreSyn", "Tags": None, "Prop": None, "Rels": None},
        {"Pos": [1, 2, 3], "Kind": "Bad", "Tags": None, "Prop": None, "Rels": None},
        {"Pos": [1, 2, 3], "Kind": ["PreSyn"], "Tags": None, "Prop": None, "Rels": None},
        {"Pos": [1, 2, 3], "Kind": "PreSyn", "Tags": [""], "Prop": None, "Rels": None},
        {"Pos": [1, 2, 3], "Kind": "PreSyn", "Tags": None, "Prop": {"a": 1}, "Rels": None},
        {"Pos": [1, 2, 3], "Kind": "PreSyn", "Tags": None, "Prop": None, "Rels": [{"Rel": "X", "To": [1]}]},
        {"Pos": [1, 2, 3], "Kind": "PreSyn", "Tags": None, "Prop": None, "Rels": [{"Rel": {}, "To": [1]}]},
        {"Pos": [1, 2, 3], "Kind": "PreSyn", "Tags": None, "Prop": None, "Rels": [{"Rel": "PreSynTo"}]},
        {"Pos": [1, 2, 3], "Kind": "PreSyn", "Tags": None, "Prop": None, "Rels": [{"To": [1], "Rel": "X"}]},
    ],
)  # fmt: skip
def test_bad_elements_get_the_general_errors(raw):
    with pytest.raises(BadRequest) as fast:
        el.parse_elements([copy.deepcopy(raw)])
    with pytest.raises(BadRequest) as general:
        el.parse_element({k.lower(): v for k, v in raw.items()}, "element 0")
    assert str(fast.value) == str(general.value)


def test_dumps_filled_is_per_element_dumps():
    elements = [
        {"Pos": [i, -i, 7], "Kind": "PreSyn", "Tags": [t, "x"] if i % 3 else None,
         "Prop": {t: t, "Rels": t} if i % 4 else None,
         "Rels": [{"Rel": "PreSynTo", "To": [1, 2, 3]}] if i % 2 else None}
        for i, t in enumerate(TRICKY * 3)
    ]  # fmt: skip
    got = el.dumps_filled(elements)
    for e, (full, nr) in zip(elements, got, strict=True):
        assert full == el.dumps(el.filled(e))
        assert nr == el.dumps(el.no_rels(el.filled(e)))
    assert el.dumps_filled([]) == []


@pytest.fixture
def synced(server):
    uuid = server.new_repo()
    server.new_instance(uuid, "labelblk", "seg", BlockSize="16,16,16")
    server.new_instance(uuid, "annotation", "synapses")
    r = requests.post(url(server, uuid, "sync"), json={"sync": "seg"}, timeout=TIMEOUT)
    assert r.status_code == 200
    vol = np.zeros((32, 32, 64), dtype="<u8")  # z, y, x
    vol[:, :, :32] = 5
    r = requests.post(
        url(server, uuid, "raw/0_1_2/64_32_32/0_0_0", name="seg"), data=vol.tobytes(), timeout=TIMEOUT
    )
    assert r.status_code == 200
    repo, node = server.manager.resolve(uuid)
    inst = repo.instance("synapses")
    return server, uuid, inst, inst.context(repo.dag.ancestry(node.version))


def test_read_blocks_matches_single_reads(synced):
    ctx = synced[3]
    coords = [(x, y, 0) for x in range(0, 40, 3) for y in (0, 1)] + [(-5, 0, 0), (10**6, 0, 0), (7, 9, 9)]
    with ctx.batch() as b:
        for c in coords[::2]:
            b.put(ann.block_tkey(*c), json.dumps(list(c)).encode())
    want = {c: v for c in coords if (v := ctx.get(ann.block_tkey(*c))) is not None}
    assert ann.read_blocks(ctx, coords) == want
    assert ann.read_blocks(ctx, coords[5:9]) == {c: v for c, v in want.items() if c in coords[5:9]}


def test_batched_post_writes_the_general_bytes(synced):
    """A POST of new elements (spliced) and one replacing some (decoded): blocks, label and tag lists
    byte for byte as encoding each key's list whole gives them (label lists keep nulls)."""
    server, uuid, _, ctx = synced
    first = [
        {"Pos": [1, 2, 3], "Kind": "PreSyn", "Tags": ["t", "<u>"], "Prop": {"z": "1", "a": "é"},
         "Rels": [{"Rel": "PreSynTo", "To": [40, 2, 3]}]},
        {"Pos": [40, 2, 3], "Kind": "PostSyn", "Rels": [{"Rel": "PostSynTo", "To": [1, 2, 3]}]},
        {"Pos": [2, 2, 3], "Kind": "Note", "Tags": ["t"]},
        {"Pos": [3, 2, 3], "Kind": "Note", "Tags": None, "Prop": {"k": "v"}, "Rels": None},
    ]  # fmt: skip
    second = [
        {"Pos": [2, 2, 3], "Kind": "PostSyn", "Tags": ["u"], "Prop": {}, "Rels": []},
        {"Pos": [4, 2, 3], "Kind": "PreSyn", "Tags": ["t"], "Prop": {"b": "2"}, "Rels": []},
    ]
    for body in (first, second):
        r = requests.post(url(server, uuid, "elements"), data=json.dumps(body), timeout=TIMEOUT)
        assert r.status_code == 200, r.text
    parsed = {tuple(e["Pos"]): e for e in el.parse_elements(copy.deepcopy(first + second))}
    stored = {tk: v for cls in (70, 71, 72) for tk, v in ctx.range(keys.min_tkey(cls), keys.max_tkey(cls))}
    origin = [el.filled(parsed[p]) for p in ((1, 2, 3), (2, 2, 3), (3, 2, 3), (4, 2, 3))]
    origin[1] = parsed[(2, 2, 3)]  # a replaced element is stored as posted
    assert stored[ann.block_tkey(0, 0, 0)] == el.dumps(origin)
    assert stored[ann.block_tkey(2, 0, 0)] == el.dumps([el.filled(parsed[(40, 2, 3)])])
    label5 = [el.no_rels(parsed[p]) for p in ((1, 2, 3), (2, 2, 3), (3, 2, 3), (4, 2, 3))]
    assert stored[ann.label_tkey(5)] == el.dumps(label5)
    assert b'"Tags":null' in stored[ann.label_tkey(5)]
    assert stored[ann.tag_tkey("t")] == el.dumps(
        [el.no_rels(el.filled(parsed[p])) for p in ((1, 2, 3), (4, 2, 3))]
    )
    assert stored[ann.tag_tkey("u")] == el.dumps([el.no_rels(parsed[(2, 2, 3)])])
    assert ann.label_tkey(0) not in stored


def test_duplicate_positions_in_one_body_last_wins(synced):
    server, uuid = synced[:2]
    body = [
        {"Pos": [1, 1, 1], "Kind": "PreSyn", "Tags": ["a"]},
        {"Pos": [1, 1, 1], "Kind": "Note", "Tags": ["b"]},
    ]
    r = requests.post(url(server, uuid, "elements"), data=json.dumps(body), timeout=TIMEOUT)
    assert r.status_code == 200
    got = json.loads(requests.get(url(server, uuid, "elements/1_1_1/1_1_1"), timeout=TIMEOUT).content)
    assert [(e["Kind"], e["Tags"]) for e in got] == [("Note", ["b"])]
    assert json.loads(requests.get(url(server, uuid, "tag/a"), timeout=TIMEOUT).content) == []


def test_gc_paused_nests_and_restores():
    assert gc.isenabled()
    with ann.gc_paused():
        assert not gc.isenabled()
        with ann.gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with ann.gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
