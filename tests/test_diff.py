"""``GET .../<dataname>/diff/<uuid>``: what changed in an instance between two versions, per type."""

from __future__ import annotations

import json

import numpy as np
import pytest
import requests

from tests.test_server_core import assert_error

T = 30


def url(server, uuid: str, name: str, path: str) -> str:
    return server.api(f"node/{uuid}/{name}/{path}")


def diff(server, uuid: str, name: str, since: str, **params) -> dict:
    r = requests.get(url(server, uuid, name, f"diff/{since}"), params=params, timeout=T)
    assert r.status_code == 200, r.text
    return r.json()


def ok(method: str, u: str, **kw) -> requests.Response:
    r = requests.request(method, u, timeout=T, **kw)
    assert r.status_code == 200, (u, r.status_code, r.text)
    return r


@pytest.fixture
def kv_versions(server):
    """keyvalue ``kv``: a, b, c at the root; the child rewrites a unchanged, changes b, deletes c,
    adds d."""
    root = server.new_repo()
    server.new_instance(root, "keyvalue", "kv")
    for key, value in (("a", b"1"), ("b", b"2"), ("c", b"3")):
        ok("POST", url(server, root, "kv", f"key/{key}"), data=value)
    server.commit(root)
    child = server.newversion(root)
    ok("POST", url(server, child, "kv", "key/a"), data=b"1")
    ok("POST", url(server, child, "kv", "key/b"), data=b"22")
    ok("DELETE", url(server, child, "kv", "key/c"))
    ok("POST", url(server, child, "kv", "key/d"), data=b"4444")
    return root, child


def test_keyvalue_keys_added_changed_deleted_and_identical_rewrites_dropped(server, kv_versions):
    root, child = kv_versions
    got = diff(server, child, "kv", root)
    assert got == {
        "from": root, "to": child, "instance": "kv", "type": "keyvalue",
        "added": 1, "changed": 1, "deleted": 1, "truncated": False,
        "changes": [
            {"change": "changed", "key": "b", "old_bytes": 1, "new_bytes": 2},
            {"change": "deleted", "key": "c", "old_bytes": 1, "new_bytes": None},
            {"change": "added", "key": "d", "old_bytes": None, "new_bytes": 4},
        ],
    }  # fmt: skip
    back = diff(server, root, "kv", child[:8])  # the other way, by a prefix
    assert back["from"] == child
    assert [(c["change"], c["key"]) for c in back["changes"]] == [
        ("changed", "b"),
        ("added", "c"),
        ("deleted", "d"),
    ]
    assert diff(server, child, "kv", child)["changes"] == []


def test_limit_truncates_the_list_not_the_counts(server, kv_versions):
    root, child = kv_versions
    got = diff(server, child, "kv", root, limit=1)
    assert (got["added"], got["changed"], got["deleted"], got["truncated"]) == (1, 1, 1, True)
    assert [c["key"] for c in got["changes"]] == ["b"]
    assert diff(server, child, "kv", root, limit=0)["changes"] == []
    assert diff(server, child, "kv", root, limit=3)["truncated"] is False


def test_diff_errors(server, kv_versions):
    root, child = kv_versions
    for bad in ("-1", "100001", "x"):
        assert_error(
            requests.get(url(server, child, "kv", f"diff/{root}"), params={"limit": bad}, timeout=T),
            400,
            "limit",
        )
    assert_error(requests.get(url(server, child, "kv", "diff"), timeout=T), 400, "expect")
    assert_error(requests.get(url(server, child, "kv", "diff/ffffffff"), timeout=T), 400, "ffffffff")
    other = server.new_repo()
    assert_error(requests.get(url(server, child, "kv", f"diff/{other}"), timeout=T), 400, "this repo")
    assert_error(requests.post(url(server, child, "kv", f"diff/{root}"), timeout=T), 405, "diff")


def test_sibling_branches_and_unversioned_instances(server):
    root = server.new_repo()
    server.new_instance(root, "keyvalue", "kv")
    server.new_instance(root, "keyvalue", "flat", versioned="false")
    server.commit(root)
    left = server.newversion(root)
    right = ok("POST", server.api(f"node/{root}/branch"), json={"branch": "right"}).json()["child"]
    ok("POST", url(server, left, "kv", "key/l"), data=b"L")
    ok("POST", url(server, right, "kv", "key/r"), data=b"R")
    ok("POST", url(server, right, "flat", "key/x"), data=b"X")
    got = diff(server, right, "kv", left)
    assert [(c["change"], c["key"]) for c in got["changes"]] == [("deleted", "l"), ("added", "r")]
    assert diff(server, right, "flat", root)["changes"] == []  # one copy, at the root, for every version


def test_volume_blocks_touched(server):
    root = server.new_repo()
    server.new_instance(root, "uint8blk", "grey")
    vol = np.random.default_rng(3).integers(0, 255, (64, 64, 128), dtype=np.uint8)
    ok("POST", url(server, root, "grey", "raw/0_1_2/128_64_64/0_0_0"), data=vol.tobytes())
    server.commit(root)
    child = server.newversion(root)
    patch = np.full((8, 8, 8), 7, np.uint8)
    ok("POST", url(server, child, "grey", "raw/0_1_2/8_8_8/70_3_3"), data=patch.tobytes())
    ok("POST", url(server, child, "grey", "raw/0_1_2/8_8_8/0_0_64"), data=patch.tobytes())
    got = diff(server, child, "grey", root)
    assert got["changes"] == [
        {"change": "changed", "block": [2, 0, 0]},  # 32^3 blocks (uint8blk's default)
        {"change": "added", "block": [0, 0, 2]},
    ]
    assert (got["added"], got["changed"], got["deleted"]) == (1, 1, 0)


def test_labelmap_blocks_bodies_and_supervoxels(server):
    root = server.new_repo()
    server.new_instance(root, "labelmap", "seg", MaxDownresLevel="1")
    labels = np.zeros((64, 64, 64), np.uint64)
    labels[:, :, :32], labels[:, :, 32:] = 1, 2
    ok("POST", url(server, root, "seg", "raw/0_1_2/64_64_64/0_0_0"), data=labels.tobytes())
    server.commit(root)
    child = server.newversion(root)
    ok("POST", url(server, child, "seg", "merge"), data=b"[1, 2]")
    got = diff(server, child, "seg", root)
    # a merge changes no voxel: body 2's index goes into body 1's, supervoxel 2 now maps to 1
    assert got["changes"] == [
        {"change": "changed", "body": 1},
        {"change": "deleted", "body": 2},
        {"change": "added", "supervoxel": 2},
    ]
    first = server.new_repo()
    server.new_instance(first, "labelmap", "seg", MaxDownresLevel="1")
    server.commit(first)
    nxt = server.newversion(first)
    ok("POST", url(server, nxt, "seg", "raw/0_1_2/64_64_64/0_0_0"), data=labels.tobytes())
    blocks = [c for c in diff(server, nxt, "seg", first)["changes"] if "block" in c]
    assert blocks == [
        {"change": "added", "scale": 0, "block": [0, 0, 0]},
        {"change": "added", "scale": 1, "block": [0, 0, 0]},
    ]


def test_annotation_elements_added_changed_deleted(server):
    root = server.new_repo()
    server.new_instance(root, "annotation", "syn")
    elements = [
        {"Kind": "PreSyn", "Pos": [10, 10, 10], "Tags": ["a"]},
        {"Kind": "PostSyn", "Pos": [20, 10, 10]},
        {"Kind": "PostSyn", "Pos": [30, 10, 10]},
    ]
    ok("POST", url(server, root, "syn", "elements"), data=json.dumps(elements))
    server.commit(root)
    child = server.newversion(root)
    ok("DELETE", url(server, child, "syn", "element/30_10_10"))
    moved = [{"Kind": "PreSyn", "Pos": [10, 10, 10], "Tags": ["b"]}, {"Kind": "Note", "Pos": [200, 5, 5]}]
    ok("POST", url(server, child, "syn", "elements"), data=json.dumps(moved))
    got = diff(server, child, "syn", root)
    summary = [(c["change"], c["pos"], c["element"]["Kind"]) for c in got["changes"]]
    assert summary == [
        ("changed", [10, 10, 10], "PreSyn"),
        ("deleted", [30, 10, 10], "PostSyn"),
        ("added", [200, 5, 5], "Note"),
    ]
    assert got["changes"][0]["element"]["Tags"] == ["b"]
    assert (got["added"], got["changed"], got["deleted"]) == (1, 1, 1)


def test_tarsupervoxels_files_and_labelgraph_vertices_edges(server):
    root = server.new_repo()
    server.new_instance(root, "labelmap", "seg")
    server.new_instance(root, "tarsupervoxels", "meshes", Extension="drc")
    server.new_instance(root, "labelgraph", "graph")
    ok("POST", url(server, root, "meshes", "supervoxel/5"), data=b"abc")
    graph = {"Vertices": [{"Id": 1, "Weight": 1}, {"Id": 2, "Weight": 2}], "Edges": []}
    ok("POST", url(server, root, "graph", "subgraph"), data=json.dumps(graph))
    server.commit(root)
    child = server.newversion(root)
    ok("POST", url(server, child, "meshes", "supervoxel/5"), data=b"abcd")
    ok("POST", url(server, child, "meshes", "supervoxel/6"), data=b"x")
    edge = {"Vertices": [], "Edges": [{"Id1": 1, "Id2": 2, "Weight": 3}]}
    ok("POST", url(server, child, "graph", "subgraph"), data=json.dumps(edge))
    ok("POST", url(server, child, "graph", "property/1/2/kind"), data=b"touching")
    assert diff(server, child, "meshes", root)["changes"] == [
        {"change": "changed", "file": "5.drc", "old_bytes": 3, "new_bytes": 4},
        {"change": "added", "file": "6.drc", "old_bytes": None, "new_bytes": 1},
    ]
    got = diff(server, child, "graph", root)["changes"]
    assert {"change": "added", "edge": [1, 2]} in got
    assert {"change": "added", "edge": [1, 2], "property": "kind"} in got
    assert {"change": "changed", "vertex": 1} in got  # its adjacency list gained 2
