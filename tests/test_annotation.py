"""annotation over real HTTP: DVID's conformance cases (spec §5, A1-A14, A22) and bad input."""

from __future__ import annotations

import json

import pytest
import requests

from dvid.datatype import annotation as ann
from dvid.datatype.common import elements as el

TIMEOUT = 30

PROP1 = {"Im a T-Bar": "yes", "I'm not a PSD": "sure", "i'm really special": ""}
PROP5 = {"Im a T-Bar": "no", "I'm not a PSD": "not really", "i'm not really special": "at all"}


def E(pos, kind, tags, rels=(), prop=None):
    out = {"Pos": list(pos), "Kind": kind, "Tags": list(tags)}
    if prop is not None:
        out["Prop"] = prop
    out["Rels"] = [{"Rel": r, "To": list(t)} for r, t in rels]
    return out


TEST_DATA = [
    E((15, 27, 35), "PreSyn", ["Synapse1", "Zlt90"],
      [("PreSynTo", (20, 30, 40)), ("PreSynTo", (14, 25, 37)), ("PreSynTo", (33, 30, 31))], PROP1),
    E((20, 30, 40), "PostSyn", ["Synapse1"], [("PostSynTo", (15, 27, 35))]),
    E((14, 25, 37), "PostSyn", ["Synapse1", "Zlt90"], [("PostSynTo", (15, 27, 35))]),
    E((33, 30, 31), "PostSyn", ["Synapse1", "Zlt90"], [("PostSynTo", (15, 27, 35))]),
    E((127, 63, 99), "PreSyn", ["Synapse2"],
      [("PreSynTo", (88, 47, 80)), ("PreSynTo", (120, 65, 100)), ("PreSynTo", (126, 67, 98))], PROP5),
    E((88, 47, 80), "PostSyn", ["Synapse2"],
      [("GroupedWith", (14, 25, 37)), ("PostSynTo", (127, 63, 99)), ("GroupedWith", (20, 30, 40))]),
    E((120, 65, 100), "PostSyn", ["Synapse2"], [("PostSynTo", (127, 63, 99))]),
    E((126, 67, 98), "PostSyn", ["Synapse2"], [("PostSynTo", (127, 63, 99))]),
]  # fmt: skip

TEST_TAG_DATA = [
    E((15, 27, 35), "PreSyn", ["Synapse1", "Zlt90"],
      [("PreSynTo", (21, 33, 40)), ("PreSynTo", (20, 30, 40)), ("PreSynTo", (14, 25, 37)),
       ("PreSynTo", (33, 30, 31))], PROP1),
    E((21, 33, 40), "PostSyn", ["Synapse1"], [("PostSynTo", (15, 27, 35))]),
    E((20, 30, 40), "PostSyn", ["Synapse10"], [("PostSynTo", (15, 27, 35))]),
    E((14, 25, 37), "PostSyn", ["Synapse11", "Zlt90"], [("PostSynTo", (15, 27, 35))]),
    E((33, 30, 31), "PostSyn", ["Synapse111", "Zlt90"], [("PostSynTo", (15, 27, 35))]),
]  # fmt: skip


def url(server, uuid, path, name="synapses"):
    return server.api(f"node/{uuid}/{name}/{path}")


def get(server, uuid, path, name="synapses", **params):
    r = requests.get(url(server, uuid, path, name), params=params, timeout=TIMEOUT)
    assert r.status_code == 200, (path, r.text)
    return r


def post(server, uuid, path, body, name="synapses", status=200, **params):
    data = body if isinstance(body, bytes) else json.dumps(body)
    r = requests.post(url(server, uuid, path, name), data=data, params=params, timeout=TIMEOUT)
    assert r.status_code == status, (path, r.status_code, r.text)
    return r


def delete(server, uuid, path, name="synapses", status=200):
    r = requests.delete(url(server, uuid, path, name), timeout=TIMEOUT)
    assert r.status_code == status, (path, r.text)
    return r


def norm(e):
    """An element for comparison: sorted tags and rels, null lists as empty, Prop as given."""
    out = {
        "Pos": e["Pos"],
        "Kind": e["Kind"],
        "Tags": sorted(e.get("Tags") or []),
        "Prop": e.get("Prop") or {},
    }
    if "Rels" in e:
        out["Rels"] = sorted((r["Rel"], tuple(r["To"])) for r in e["Rels"] or [])
    return out


def same(got, want, *, rels=True):
    """Same elements in any order (want given with Rels; dropped when not rels)."""
    want = [{k: v for k, v in w.items() if rels or k != "Rels"} for w in want]
    key = lambda e: (e["Pos"][2], e["Pos"][1], e["Pos"][0])  # noqa: E731
    assert sorted(map(norm, got), key=key) == sorted(map(norm, want), key=key)


@pytest.fixture
def repo(server):
    uuid = server.new_repo()
    server.new_instance(uuid, "annotation", "synapses")
    return server, uuid


# ---- key layout ------------------------------------------------------------------------------


def test_key_layout_is_dvids():
    assert ann.block_tkey(1, 0, 1) == bytes([72, 1]) + bytes.fromhex("800000018000000080000001")
    assert ann.block_tkey(-1, 0, 0) == bytes([72, 1]) + bytes.fromhex("80000000800000007fffffff")
    assert ann.label_tkey(258) == bytes([71, 1, 0, 0, 0, 0, 0, 0, 1, 2])
    assert ann.tag_tkey("Synapse1") == bytes([70, 1]) + b"Synapse1\x00"


def test_elements_json_parsing():
    e = el.parse_element({"pos": [1, 2, 3], "KIND": "Note", "prop": {"b": "1", "a": "2"}, "x": 1}, "e")
    assert e == {"Pos": [1, 2, 3], "Kind": "Note", "Tags": None, "Prop": {"a": "2", "b": "1"}, "Rels": None}
    assert el.dumps(e) == b'{"Pos":[1,2,3],"Kind":"Note","Tags":null,"Prop":{"a":"2","b":"1"},"Rels":null}'
    assert el.dumps({"a": "<&>"}) == b'{"a":"\\u003c\\u0026\\u003e"}'
    assert el.parse_element({"Pos": [0, 0, 0]}, "e")["Kind"] == "Unknown"


# ---- A1-A8: TestRequests ---------------------------------------------------------------------


def test_requests_roundtrip_blocks_tags_move_delete(repo):
    server, uuid = repo
    post(server, uuid, "elements", TEST_DATA)
    # A1
    same(get(server, uuid, "elements/1000_1000_1000/0_0_0").json(), TEST_DATA)
    # A2: exact bytes, posting order, {} for absent Prop, sorted Prop keys
    body = get(server, uuid, "blocks/96_63_97/31_15_0").content
    assert list(json.loads(body)) == ["0,0,0", "1,0,1", "1,1,1"]
    expect = (
        b'{"0,0,0":[{"Pos":[15,27,35],"Kind":"PreSyn","Tags":["Synapse1","Zlt90"],'
        b'"Prop":{"I\'m not a PSD":"sure","Im a T-Bar":"yes","i\'m really special":""},'
        b'"Rels":[{"Rel":"PreSynTo","To":[20,30,40]},{"Rel":"PreSynTo","To":[14,25,37]},'
        b'{"Rel":"PreSynTo","To":[33,30,31]}]},'
        b'{"Pos":[20,30,40],"Kind":"PostSyn","Tags":["Synapse1"],"Prop":{},'
        b'"Rels":[{"Rel":"PostSynTo","To":[15,27,35]}]},'
    )
    assert body.startswith(expect)
    # A3: ScanAllForBlocks
    post(server, uuid, "tags", {"ScanAllForBlocks": "true"})
    body = get(server, uuid, "blocks/45_23_40/66_10_70").content
    assert body == (
        b'{"1,0,1":[{"Pos":[127,63,99],"Kind":"PreSyn","Tags":["Synapse2"],"Prop":{"I\'m not a PSD":'
        b'"not really","Im a T-Bar":"no","i\'m not really special":"at all"},"Rels":[{"Rel":"PreSynTo",'
        b'"To":[88,47,80]},{"Rel":"PreSynTo","To":[120,65,100]},{"Rel":"PreSynTo","To":[126,67,98]}]},'
        b'{"Pos":[88,47,80],"Kind":"PostSyn","Tags":["Synapse2"],"Prop":{},"Rels":[{"Rel":"GroupedWith",'
        b'"To":[14,25,37]},{"Rel":"PostSynTo","To":[127,63,99]},{"Rel":"GroupedWith","To":[20,30,40]}]}]}'
    )
    post(server, uuid, "tags", {"ScanAllForBlocks": "false"})
    assert get(server, uuid, "blocks/45_23_40/66_10_70").content == body
    # A4: subvolume filter
    same(get(server, uuid, "elements/5_5_5/126_60_97").json(), [TEST_DATA[4]])
    assert get(server, uuid, "elements/5_5_5/500_500_500").content == b"null"
    # A6: tags
    same(get(server, uuid, "tag/Synapse2", relationships="true").json(), TEST_DATA[4:8])
    same(get(server, uuid, "tag/Zlt90", relationships="true").json(), [TEST_DATA[i] for i in (0, 2, 3)])
    assert all("Rels" not in e for e in get(server, uuid, "tag/Zlt90").json())
    # A7: move
    post(server, uuid, "move/127_63_99/127_64_100", b"")
    moved = json.loads(json.dumps(TEST_DATA))
    moved[4]["Pos"] = [127, 64, 100]
    for i in (5, 6, 7):
        for r in moved[i]["Rels"]:
            if r["To"] == [127, 63, 99]:
                r["To"] = [127, 64, 100]
    all_blocks = get(server, uuid, "all-elements").json()
    same([e for b in all_blocks.values() for e in b], moved)
    same(get(server, uuid, "tag/Synapse2", relationships="true").json(), moved[4:8])
    # A8: delete
    delete(server, uuid, "element/127_64_100")
    after = [moved[i] for i in (0, 1, 2, 3, 5, 6, 7)]
    after[4]["Rels"] = [r for r in after[4]["Rels"] if r["Rel"] == "GroupedWith"]
    after[5]["Rels"] = after[6]["Rels"] = []
    same(get(server, uuid, "elements/1000_1000_1000/0_0_0").json(), after)
    same(get(server, uuid, "tag/Synapse2", relationships="true").json(), after[4:])
    delete(server, uuid, "element/127_64_100", status=400)


def test_roi_query(repo):
    # A5
    server, uuid = repo
    server.new_instance(uuid, "roi", "myroi", BlockSize="64,64,64")
    post(server, uuid, "roi", [[0, 0, 0, 1], [1, 0, 1, 2]], name="myroi")
    post(server, uuid, "elements", TEST_DATA)
    same(get(server, uuid, f"roi/myroi,{uuid}").json(), TEST_DATA[:6])
    same(get(server, uuid, "roi/myroi").json(), TEST_DATA[:6])
    server.new_instance(uuid, "roi", "small", BlockSize="32,32,32")
    r = requests.get(url(server, uuid, "roi/small"), timeout=TIMEOUT)
    assert r.status_code == 400 and "BlockSize" in r.text
    assert requests.get(url(server, uuid, "roi/nothere"), timeout=TIMEOUT).status_code in (400, 404)
    assert requests.get(url(server, uuid, "roi/a,b,c"), timeout=TIMEOUT).status_code == 400
    server.new_instance(uuid, "roi", "empty", BlockSize="64,64,64")
    assert get(server, uuid, "roi/empty").content == b"null"
    # the ROI as it was at another version, named by a UUID prefix
    server.commit(uuid)
    child = server.newversion(uuid)
    requests.delete(url(server, child, "roi", name="myroi"), timeout=TIMEOUT).raise_for_status()
    assert get(server, child, "roi/myroi").content == b"null"
    same(get(server, child, f"roi/myroi,{uuid[:8]}").json(), TEST_DATA[:6])
    r = requests.get(url(server, child, "roi/myroi,ffffffffffff"), timeout=TIMEOUT)
    assert r.status_code == 400 and "exactly one version" in r.text


def test_post_blocks_and_all(repo):
    # A9
    server, uuid = repo
    prop = {"Im a T-Bar": "yes", "I'm not a PSD": "sure", "i'm really special": ""}
    blocks = {
        "1,1,1": [
            {"Pos": [65, 70, 75], "Kind": "PostSyn", "Tags": ["Synapse1"],
             "Rels": [{"Rel": "PostSynTo", "To": [129, 130, 131]}]}
        ],
        "2,2,2": [
            {"Pos": [129, 130, 131], "Kind": "PreSyn", "Tags": ["Synapse1"], "Prop": prop,
             "Rels": [{"Rel": "PreSynTo", "To": [129, 130, 131]}, {"Rel": "PreSynTo", "To": [65, 70, 75]}]},
            {"Pos": [130, 131, 132], "Kind": "PostSyn", "Tags": ["Synapse1"],
             "Rels": [{"Rel": "PostSynTo", "To": [129, 130, 131]}]},
        ],
    }  # fmt: skip
    post(server, uuid, "blocks", blocks)
    assert len(get(server, uuid, "elements/1000_1000_1000/0_0_0").json()) == 3
    all_body = get(server, uuid, "all-elements").content
    assert all_body == get(server, uuid, "blocks/128_128_128/64_64_64").content
    assert all_body.startswith(
        b'{"1,1,1":[{"Pos":[65,70,75],"Kind":"PostSyn","Tags":["Synapse1"],"Prop":null,'
        b'"Rels":[{"Rel":"PostSynTo","To":[129,130,131]}]}],'
    )
    for params in ({}, {"keysOnly": "true"}, {"byCoord": "true"}, {"keysOnly": "true", "byCoord": "true"}):
        assert get(server, uuid, "scan", **params).json() == {"num kv pairs": 2, "num empty blocks": 0}
    # indexed at once (DVID waits for a reload), so a reload finds nothing to do
    assert len(get(server, uuid, "tag/Synapse1").json()) == 3
    r = post(server, uuid, "reload", b"")
    assert r.json() == {"elements": 3, "blocks moved": 0, "index keys written": 0}
    post(server, uuid, "blocks", {"2,2,2": []})
    assert [e["Pos"] for e in get(server, uuid, "tag/Synapse1").json()] == [[65, 70, 75]]
    post(server, uuid, "blocks", {"2,2,2": blocks["2,2,2"]})
    assert len(get(server, uuid, "tag/Synapse1").json()) == 3
    assert get(server, uuid, "all-elements").content == all_body  # nothing misplaced: unchanged
    for bad in ({"1,1": []}, {"a,b,c": []}, {"1,1,1": [{"Kind": "PreSyn"}]}, {"1,1,1": {}}):
        post(server, uuid, "blocks", bad, status=400)
    assert get(server, uuid, "all-elements").content == all_body
    assert requests.get(url(server, uuid, "all-elements/extra"), timeout=TIMEOUT).status_code == 400
    assert get(server, uuid, "blocks/10_10_10/5000_0_0").content == b"{}"


def test_post_labels(repo):
    # A10
    server, uuid = repo
    l42 = [
        {"Pos": [31, 54, 17], "Kind": "PreSyn", "Tags": None, "Prop": {"Some prop": "yes"}},
        {"Pos": [65, 70, 75], "Kind": "PostSyn", "Tags": None, "Prop": None},
    ]
    l67 = [
        {"Pos": [1, 2, 3], "Kind": "Note", "Tags": ["x"], "Prop": None},
        {"Pos": [4, 5, 6], "Kind": "Gap", "Tags": None, "Prop": {"a": "b"}},
    ]
    post(server, uuid, "labels", {"42": json.dumps(l42), "67": json.dumps(l67), "0": "[]"})
    assert get(server, uuid, "label/42").json() == l42
    assert get(server, uuid, "label/67").json() == l67
    post(server, uuid, "labels", {"abc": "[]"}, status=400)
    post(server, uuid, "labels", {"5": 7}, status=400)


def test_tag_requests(repo):
    # A11-A13
    server, uuid = repo
    post(server, uuid, "elements", TEST_TAG_DATA)
    d = TEST_TAG_DATA
    same(get(server, uuid, "tag/Synapse1").json(), [d[0], d[1]], rels=False)
    for tag, i in (("Synapse10", 2), ("Synapse11", 3), ("Synapse111", 4)):
        same(get(server, uuid, f"tag/{tag}").json(), [d[i]], rels=False)
    same(get(server, uuid, "tag/Zlt90").json(), [d[0], d[3], d[4]], rels=False)
    assert get(server, uuid, "tag/nonesuch").json() == []
    # A12
    delete(server, uuid, "element/15_27_35")
    got = get(server, uuid, "tag/Synapse1", relationships="true").json()
    assert got == [{**d[1], "Prop": {}, "Rels": []}]
    same(
        get(server, uuid, "tag/Zlt90", relationships="true").json(),
        [{**d[3], "Rels": []}, {**d[4], "Rels": []}],
    )
    # A13
    post(server, uuid, "elements", [{"Pos": [33, 30, 31], "Kind": "PostSyn",
                                     "Rels": [{"Rel": "PostSynTo", "To": [15, 27, 35]}]}])  # fmt: skip
    assert get(server, uuid, "tag/Synapse111").json() == []
    same(get(server, uuid, "tag/Zlt90").json(), [d[3]], rels=False)
    post(server, uuid, "elements", [{"Pos": [33, 30, 31], "Kind": "PostSyn", "Tags": ["foobar", "foobaz"]}])
    for tag in ("foobar", "foobaz"):
        assert [e["Pos"] for e in get(server, uuid, f"tag/{tag}").json()] == [[33, 30, 31]]
    new_prop = {"Im a T-Bar": "no", "I'm not a PSD": "unsure"}
    e0 = E((15, 27, 35), "PreSyn", ["Synapse1"], [("PreSynTo", (14, 25, 37))], new_prop)
    e3 = E((14, 25, 37), "PostSyn", ["Synapse11", "Zlt90"], [("PostSynTo", (15, 27, 35))])
    post(server, uuid, "elements", [e0, e3])
    same(get(server, uuid, "tag/Synapse1", relationships="true").json(), [e0, {**d[1], "Rels": []}])
    same(get(server, uuid, "tag/Zlt90", relationships="true").json(), [e3])


def test_prop_change(repo):
    # A14
    server, uuid = repo
    post(server, uuid, "elements", TEST_TAG_DATA)
    prop = {"Im a T-Bar": "no", "I'm not a PSD": "unsure", "i'm NOT really special": ""}
    post(server, uuid, "elements", [{**TEST_TAG_DATA[0], "Prop": prop}])
    for tag in ("Synapse1", "Zlt90"):
        for params in ({}, {"relationships": "true"}):
            got = [e for e in get(server, uuid, f"tag/{tag}", **params).json() if e["Pos"] == [15, 27, 35]]
            assert len(got) == 1 and got[0]["Prop"] == prop


def test_label_query_errors(repo):
    # A15 (unsynced, empty) and A22
    server, uuid = repo
    assert get(server, uuid, "label/1").content == b"[]"
    assert get(server, uuid, "label/1", relationships="true").content == b"[]"
    for bad in ("label/0", "label/abc", "label/-1", f"label/{2**64}"):
        assert requests.get(url(server, uuid, bad), timeout=TIMEOUT).status_code == 400, bad
    r = requests.get(url(server, uuid, "label/0"), timeout=TIMEOUT)
    assert "Label 0 is protected background value" in r.text
    assert requests.post(url(server, uuid, "label/1"), timeout=TIMEOUT).status_code == 405


# ---- bad input: precise statuses, nothing half-written ---------------------------------------


def test_bad_elements_write_nothing(repo):
    server, uuid = repo
    post(server, uuid, "elements", TEST_DATA[:4])
    before = get(server, uuid, "all-elements").content
    tags_before = get(server, uuid, "tag/Synapse1").content
    good = {"Pos": [1, 2, 3], "Kind": "Note", "Tags": ["new"]}
    bad_bodies = [
        b"[{",
        b"",
        b"{}",
        b"[1]",
        [good, {"Kind": "PreSyn"}],
        [good, {"Pos": [1, 2], "Kind": "PreSyn"}],
        [good, {"Pos": [1, 2, "3"]}],
        [good, {"Pos": [1.5, 2, 3]}],
        [good, {"Pos": [1, 2, 2**31]}],
        [good, {"Pos": [1, 2, 3], "Kind": "Synapse"}],
        [good, {"Pos": [1, 2, 3], "Prop": {"a": 1}}],
        [good, {"Pos": [1, 2, 3], "Prop": []}],
        [good, {"Pos": [1, 2, 3], "Tags": "x"}],
        [good, {"Pos": [1, 2, 3], "Tags": [""]}],
        [good, {"Pos": [1, 2, 3], "Tags": [3]}],
        [good, {"Pos": [1, 2, 3], "Rels": {}}],
        [good, {"Pos": [1, 2, 3], "Rels": [{"Rel": "Friend", "To": [1, 1, 1]}]}],
        [good, {"Pos": [1, 2, 3], "Rels": [{"Rel": "PreSynTo"}]}],
        [good, {"Pos": [1, 2, 3], "Rels": [{"Rel": "PreSynTo", "To": [1, 1]}]}],
        [good, {"Pos": [1, 2, 3], "Rels": ["x"]}],
    ]
    for body in bad_bodies:
        r = post(server, uuid, "elements", body, status=400)
        assert r.text.strip().endswith(").") and "/elements" in r.text
    assert get(server, uuid, "all-elements").content == before
    assert get(server, uuid, "tag/Synapse1").content == tags_before
    assert get(server, uuid, "tag/new").json() == []
    r = post(server, uuid, "elements", [good, {"Pos": [1, 2, 3], "Kind": "Bogus"}], status=400)
    assert "element 1" in r.text and "Bogus" in r.text
    post(server, uuid, "elements", [])  # an empty array is fine
    # bad geometry
    for path in (
        "elements/10_10/0_0_0",
        "elements/0_10_10/0_0_0",
        "elements/10_10_10",
        "elements/a_b_c/0_0_0",
    ):
        assert requests.get(url(server, uuid, path), timeout=TIMEOUT).status_code == 400, path
    for path in ("blocks/10_10_10", "blocks/-1_10_10/0_0_0"):
        assert requests.get(url(server, uuid, path), timeout=TIMEOUT).status_code == 400, path
    # move and delete with bad or missing points
    assert requests.post(url(server, uuid, "move/1_2_3"), timeout=TIMEOUT).status_code == 400
    assert requests.post(url(server, uuid, "move/1_2/3_4_5"), timeout=TIMEOUT).status_code == 400
    post(server, uuid, "move/1_1_1/2_2_2", b"", status=400)  # nothing at 1,1,1
    post(server, uuid, "move/15_27_35/20_30_40", b"", status=400)  # occupied destination
    delete(server, uuid, "element/1_2", status=400)
    assert get(server, uuid, "all-elements").content == before


def test_huge_response_is_refused(server_factory):
    server = server_factory(max_body_bytes=4096)
    uuid = server.new_repo()
    server.new_instance(uuid, "annotation", "synapses")
    for start in range(0, 200, 40):
        post(server, uuid, "elements", [{"Pos": [i, 0, 0], "Kind": "Note"} for i in range(start, start + 40)])
    r = requests.get(url(server, uuid, "elements/1000_10_10/0_0_0"), timeout=TIMEOUT)
    assert r.status_code == 413, r.text


def test_versioning(repo):
    server, uuid = repo
    post(server, uuid, "elements", TEST_DATA)
    server.commit(uuid)
    # committed: writes refused
    post(server, uuid, "elements", [{"Pos": [1, 1, 1]}], status=409)
    child = server.newversion(uuid)
    delete(server, child, "element/15_27_35")
    post(server, child, "move/127_63_99/1_1_1", b"")
    post(server, child, "elements", [{"Pos": [5, 5, 5], "Kind": "Note", "Tags": ["Synapse1"]}])
    same(get(server, uuid, "elements/1000_1000_1000/0_0_0").json(), TEST_DATA)
    same(get(server, uuid, "tag/Synapse2", relationships="true").json(), TEST_DATA[4:8])
    assert len(get(server, uuid, "tag/Synapse1").json()) == 4
    tags = {tuple(e["Pos"]) for e in get(server, child, "tag/Synapse1").json()}
    assert tags == {(20, 30, 40), (14, 25, 37), (33, 30, 31), (5, 5, 5)}
    assert [1, 1, 1] in [e["Pos"] for e in get(server, child, "tag/Synapse2").json()]


def test_unversioned_instance(server):
    uuid = server.new_repo()
    server.new_instance(uuid, "annotation", "notes", Versioned="false")
    server.commit(uuid)
    child = server.newversion(uuid)
    post(server, child, "elements", [{"Pos": [1, 2, 3], "Kind": "Note", "Tags": ["a"]}], name="notes")
    post(server, uuid, "elements", [{"Pos": [4, 5, 6], "Kind": "Note", "Tags": ["a"]}], name="notes")
    for v in (uuid, child):
        assert len(get(server, v, "tag/a", name="notes").json()) == 2


def test_help_and_info(repo):
    server, uuid = repo
    info = get(server, uuid, "info").json()
    assert info["Base"]["TypeName"] == "annotation" and info["Extended"] == {}
    assert "POST elements" in get(server, uuid, "help").text
    r = requests.get(server.api("help/annotation"), timeout=TIMEOUT)
    assert r.status_code == 200 and "move/" in r.text
