"""labelmap's proofreading edits over real HTTP: merge, cleave, split-supervoxel, split, renumber,
their mutation ids and log records (DVID's test cases, more-types.md §8.9), and what bad edits leave."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import requests

from dvid.datatype.common import rle
from tests.test_labelmap import Client

TIMEOUT = 30
START = 1_000_000_000
HALF = 2 * 64**3  # voxels of each supervoxel of four_bodies()


def four_bodies() -> np.ndarray:
    """(128, 128, 128) supervoxels 1-4 of 2 * 64^3 voxels each (1, 2: y < 64, x halves; 3, 4: y >= 64,
    z halves), ids equal to their bodies."""
    vol = np.zeros((128, 128, 128), dtype="<u8")
    vol[:, :64, :64] = 1
    vol[:, :64, 64:] = 2
    vol[:64, 64:, :] = 3
    vol[64:, 64:, :] = 4
    return vol


@pytest.fixture
def lm(server) -> Client:
    uuid = server.new_repo()
    server.new_instance(uuid, "labelmap", "seg", MaxDownresLevel="1")
    c = Client(server, uuid)
    c.ok("POST", "raw/0_1_2/128_128_128/0_0_0", data=four_bodies().tobytes())
    return c


def bodies(c: Client, uuid: str | None = None) -> np.ndarray:
    return np.frombuffer(c.get("raw/0_1_2/128_128_128/0_0_0", uuid).content, "<u8").reshape(128, 128, 128)


def test_merge_then_cleave_as_dvids_tests(lm):
    # case 1: the POST used mutation id START; the merge gets the next
    assert lm.post("merge", data="[4, 3]").json() == {"MutationID": START + 1}
    assert lm.get("lastmod/4").text == (
        '{"mutation id": 1000000001, "last mod user": "", "last mod app": "", "last mod time": '
        + json.dumps(lm.get("index/4", params={"metadata-only": "true"}).json()["last_mod_time"])
        + " }"
    )
    vol = bodies(lm)
    assert not np.any(vol == 3) and np.count_nonzero(vol == 4) == HALF * 2
    assert sorted(lm.get("supervoxels/4").json()) == [3, 4]
    assert lm.get("size/3").status_code == 404
    assert lm.get("mapping", data="[3, 4]").json() == [4, 4]
    # case 2: cleave with user and app
    r = lm.post("cleave/4", params={"u": "mrsmith", "app": "myapp"}, data="[3]")
    assert r.json() == {"CleavedLabel": 5, "MutationID": START + 2}
    last = lm.get("lastmod/4").json()
    assert (last["mutation id"], last["last mod user"], last["last mod app"]) == (
        START + 2,
        "mrsmith",
        "myapp",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d([+-]\d\d:\d\d|Z)", last["last mod time"])
    assert lm.get("maxlabel").json() == {"maxlabel": 5}
    vol = bodies(lm)
    assert np.count_nonzero(vol == 5) == HALF and np.count_nonzero(vol == 4) == HALF
    assert lm.get("size/5").json() == {"voxels": HALF}
    # case 3
    assert lm.get("lastmod/999").status_code == 404 and lm.get("lastmod/999").content == b""
    assert lm.get("lastmod/0").status_code == 400
    # case 4: the log
    records = lm.get("mutations").json()
    assert [r["Action"] for r in records] == ["merge-complete", "cleave-complete"]
    merge, cleave = records
    assert merge["UUID"] == lm.uuid and merge["Target"] == 4 and merge["Labels"] == [3]
    assert "User" not in merge and "App" not in merge
    assert (cleave["OrigLabel"], cleave["CleavedLabel"], cleave["CleavedSupervoxels"]) == (4, 5, [3])
    assert (cleave["CleavedSize"], cleave["RemainSize"]) == (HALF, HALF)
    assert (cleave["User"], cleave["App"]) == ("mrsmith", "myapp")
    raw = lm.get("mutations").text
    assert raw.index('"Action"') < raw.index('"Labels"') < raw.index('"MutationID"') < raw.index('"Target"')
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} [+-]\d{4} \S+ m=\+", merge["Timestamp"])


def test_versions_keep_their_own_log_and_mapping(lm):
    lm.post("merge", data="[4, 3]")
    lm.post("cleave/4", data="[3]")
    lm.server.commit(lm.uuid)
    child = lm.server.newversion(lm.uuid)
    assert lm.post("merge", uuid=child, data="[1, 2]").status_code == 200
    assert len(lm.get("mutations", child).json()) == 1
    assert len(lm.get("mutations").json()) == 2
    ranged = lm.get(f"mutations-range/{lm.uuid}/{child}").json()
    assert [r["Action"] for r in ranged] == ["merge-complete", "merge-complete", "cleave-complete"]
    assert ranged[0]["UUID"] == child
    assert np.count_nonzero(bodies(lm, child) == 1) == 2 * HALF
    assert np.count_nonzero(bodies(lm) == 1) == HALF
    assert lm.get("mapping", uuid=child, data="[2]").json() == [1]
    assert lm.get("mapping", data="[2]").json() == [2]


def test_bad_merges_change_nothing(lm):
    before = bodies(lm)
    for body, words in (
        ("[]", "need at least"),
        ("[4]", "need at least"),
        ("[4, 0]", "background label 0"),
        ("[4, 4]", "into itself"),
        ("[4, 77]", "77 has no voxels"),
        ("[77, 4]", "77 has no voxels"),
        ("{", "Bad merge op JSON"),
        ('["a"]', "unsigned"),
    ):
        r = lm.post("merge", data=body)
        assert r.status_code == 400 and words in r.text, (body, r.text)
    assert np.array_equal(bodies(lm), before)
    assert lm.get("mutations").json() == []


def test_bad_cleaves_change_nothing(lm):
    before = bodies(lm)
    for path, body, words in (
        ("cleave/4", "[3]", "not in body 4"),
        ("cleave/4", "[4]", "leave it empty"),
        ("cleave/4", "", "no cleave supervoxels"),
        ("cleave/4", "[]", "no cleave supervoxels"),
        ("cleave/0", "[3]", "0"),
        ("cleave/99", "[3]", "99 has no voxels"),
    ):
        r = lm.post(path, data=body)
        assert r.status_code == 400 and words in r.text, (path, body, r.text)
    assert np.array_equal(bodies(lm), before)


def test_renumber(lm):
    r = lm.post("renumber", data="[21, 1]")
    assert r.status_code == 200 and r.content == b""
    assert lm.get("size/21").json() == {"voxels": HALF} and lm.get("size/1").status_code == 404
    r = lm.post("renumber", data="[21, 2]")
    assert r.status_code == 400 and "(21) already exists" in r.text
    assert lm.post("renumber", data="[5]").status_code == 400
    last = lm.get("mutations").json()[-1]
    assert (last["Action"], last["NewLabel"], last["OrigLabel"]) == ("renumber-complete", 21, 1)
    assert np.count_nonzero(bodies(lm) == 21) == HALF


def split_payload(runs) -> bytes:
    return rle.encode_sparsevol(np.array(runs, dtype=np.int32))


def test_split_supervoxel(lm):
    lm.post("merge", data="[1, 2]")
    # the half of supervoxel 2 with z < 32
    runs = [(64, y, z, 64) for z in range(32) for y in range(64)]
    r = lm.post("split-supervoxel/2", params={"u": "ann"}, data=split_payload(runs))
    assert r.status_code == 200, r.text
    out = r.json()
    split, remain = out["SplitSupervoxel"], out["RemainSupervoxel"]
    assert {split, remain}.isdisjoint({1, 2, 3, 4}) and split != remain
    sv = np.frombuffer(lm.get("raw/0_1_2/128_128_128/0_0_0", params={"supervoxels": "true"}).content, "<u8")
    sv = sv.reshape(128, 128, 128)
    assert np.all(sv[:32, :64, 64:] == split) and np.all(sv[32:, :64, 64:] == remain)
    assert np.count_nonzero(sv == 2) == 0
    assert np.count_nonzero(bodies(lm) == 1) == 2 * HALF  # still one body
    assert sorted(lm.get("supervoxels/1").json()) == sorted([1, split, remain])
    assert lm.get("mapping", data=f"[2, {split}, {remain}]").json() == [0, 1, 1]
    assert lm.get(f"size/{split}", params={"supervoxels": "true"}).json() == {"voxels": 32 * 64 * 64}
    rec = lm.get("mutations").json()[-1]
    assert rec["Action"] == "split-supervoxel-complete" and rec["Body"] == 1
    assert rec["SplitSize"] + rec["RemainSize"] == HALF
    assert lm.get("supervoxel-splits").json() == [lm.uuid, [[out["MutationID"], 2, remain, split]]]
    # the pyramid follows the rewrite
    lo = np.frombuffer(
        lm.get("raw/0_1_2/64_64_64/0_0_0", params={"scale": "1", "supervoxels": "true"}).content, "<u8"
    ).reshape(64, 64, 64)
    assert np.all(lo[:16, :32, 32:] == split) and np.all(lo[16:32, :32, 32:] == remain)


def test_split_supervoxel_with_given_ids_and_bad_runs(lm):
    good = split_payload([(0, 0, 0, 10)])
    r = lm.post("split-supervoxel/1", params={"split": "100", "remain": "101", "downres": "false"}, data=good)
    assert r.json()["SplitSupervoxel"] == 100 and r.json()["RemainSupervoxel"] == 101
    before = bodies(lm)
    for sv, payload, words in (
        (3, split_payload([(0, 0, 0, 5)]), "outside supervoxel 3"),  # voxels of supervoxel 100
        (3, split_payload([(0, 127, 127, 5)]), "outside supervoxel 3"),  # supervoxel 4's block
        (3, b"\x00\x03", "not a sparse volume"),
        (55, good, "55 has no voxels"),
    ):
        r = lm.post(f"split-supervoxel/{sv}", data=payload)
        assert r.status_code == 400 and words in r.text, (sv, r.text)
    assert np.array_equal(bodies(lm), before)


def test_history_follows_a_body(lm):
    lm.post("merge", data="[4, 3]")
    lm.post("cleave/4", data="[3]")
    text = lm.get(f"history/4/{lm.uuid}/{lm.uuid}").text
    assert text == (
        '{"Action":"merge","Target":4,"Labels":[3]}'
        '{"Action":"cleave","OrigLabel":4,"CleavedLabel":5,"CleavedSupervoxels":[3]}'
    )
    assert lm.get(f"history/77/{lm.uuid}/{lm.uuid}").content == b""
    assert lm.get(f"history/4/{lm.uuid}").status_code == 400


def test_split_of_a_body_needs_the_server_setting(lm, server_factory):
    r = lm.post("split/1", data=split_payload([(0, 0, 0, 64)]))
    assert r.status_code == 400 and "deactivated" in r.text
    server = server_factory(allow_labelmap_split=True)
    uuid = server.new_repo()
    server.new_instance(uuid, "labelmap", "seg")
    c = Client(server, uuid)
    c.ok("POST", "raw/0_1_2/128_128_128/0_0_0", data=four_bodies().tobytes())
    c.ok("POST", "merge", data="[1, 2]")
    # all of supervoxel 2 and the z < 10 part of supervoxel 1
    runs = [(64, y, z, 64) for z in range(128) for y in range(64)] + [
        (0, y, z, 64) for z in range(10) for y in range(64)
    ]
    r = c.post("split/1", data=split_payload(runs))
    assert r.status_code == 200, r.text
    new = r.json()["label"]
    vol = bodies(c)
    assert (
        np.all(vol[:, :64, 64:] == new)
        and np.all(vol[:10, :64, :64] == new)
        and np.all(vol[10:, :64, :64] == 1)
    )
    assert c.get(f"size/{new}").json() == {"voxels": 64 * 64 * 128 + 64 * 64 * 10}
    rec = c.get("mutations").json()[-1]
    assert rec["Action"] == "split-complete" and rec["Target"] == 1 and rec["NewLabel"] == new
    assert list(rec["SVSplits"]) == ["1"]
    assert requests.get(c.url("supervoxel-splits"), timeout=TIMEOUT).json()[0] == uuid


def test_index_as_of_an_edit_and_index_version(lm):
    from dvid.datatype.labelmap.labelindex import LabelIndex

    before = LabelIndex.from_bytes(lm.get("index/4").content)
    merge_id = lm.post("merge", data="[4, 3]").json()["MutationID"]
    cleave_id = lm.post("cleave/4", data="[3]").json()["MutationID"]
    as_of_post = LabelIndex.from_bytes(lm.get("index/4", params={"mutid": str(merge_id - 1)}).content)
    assert as_of_post == before
    after_merge = LabelIndex.from_bytes(lm.get("index/4", params={"mutid": str(merge_id)}).content)
    assert sorted(after_merge.supervoxels().tolist()) == [3, 4]
    now = LabelIndex.from_bytes(lm.get("index/4", params={"mutid": str(cleave_id)}).content)
    assert now.supervoxels().tolist() == [4]
    assert lm.get("index/5", params={"mutid": str(merge_id)}).status_code == 404  # not made yet
    assert lm.get("index/5").status_code == 200
    assert lm.get("index-version/4").text == lm.uuid
    lm.server.commit(lm.uuid)
    child = lm.server.newversion(lm.uuid)
    assert lm.get("index-version/4", child).text == lm.uuid
    lm.post("merge", uuid=child, data="[4, 5]")
    assert lm.get("index-version/4", child).text == child
    assert lm.get("index-version/77").status_code == 404


def test_post_info_changes_the_pyramid_depth(lm):
    lm.ok("POST", "info", json={"MaxDownresLevel": 3})
    assert lm.get("info").json()["Extended"]["MaxDownresLevel"] == 3
    for bad in ({"MaxDownresLevel": 256}, {"MaxDownresLevel": "x"}, {"BlockSize": [8, 8, 8]}):
        assert lm.post("info", json=bad).status_code == 400
    assert lm.get("info").json()["Extended"]["MaxDownresLevel"] == 3
