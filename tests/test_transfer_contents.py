"""What a transfer carries: renamed and deleted instances, a subset of instances without dangling
syncs, values larger than a stream record, merge nodes, and every datatype reading the same after."""

from __future__ import annotations

import os
import time

import numpy as np
import requests

from dvid.transfer import stream
from tests.test_transfer import T, build_repo, cli_ok, dag_of, get, post, snapshot_kv


def test_instance_renamed_and_old_name_reused_on_the_sender(pair):
    src, dst = pair
    root = src.new_repo("rename")
    src.new_instance(root, "keyvalue", "kv")
    post(src, f"node/{root}/kv/key/a", data=b"root")
    src.commit(root)
    cli_ok("--server", src.url, "push", root, dst.url, "-q")
    repo = src.manager.resolve(root)[0]
    v2 = src.newversion(root)
    src.manager.rename_instance(repo, "kv", "kv2")
    post(src, f"node/{v2}/kv2/key/b", data=b"b")
    src.commit(v2)
    cli_ok("--server", src.url, "push", v2, dst.url, "-q")
    assert set(get(dst, f"repo/{root}/info").json()["DataInstances"]) == {"kv2"}
    assert get(dst, f"node/{v2}/kv2/keys").json() == ["a", "b"]
    # renamed again, and a new instance takes the freed name: both travel in one push
    v3 = src.newversion(v2)
    src.manager.rename_instance(repo, "kv2", "kv3")
    src.new_instance(v3, "keyvalue", "kv2")
    post(src, f"node/{v3}/kv2/key/n", data=b"n")
    src.commit(v3)
    cli_ok("--server", src.url, "push", v3, dst.url, "-q")
    src_info = get(src, f"repo/{root}/info").json()["DataInstances"]
    dst_info = get(dst, f"repo/{root}/info").json()["DataInstances"]
    assert {n: i["Base"]["DataUUID"] for n, i in src_info.items()} == {
        n: i["Base"]["DataUUID"] for n, i in dst_info.items()
    }
    for u in (root, v2, v3):
        for name in ("kv3", "kv2"):
            a, b = get(src, f"node/{u}/{name}/keys"), get(dst, f"node/{u}/{name}/keys")
            assert (a.status_code, a.content) == (b.status_code, b.content)
    assert get(dst, f"node/{v3}/kv2/key/n").content == b"n"
    assert get(dst, f"node/{v3}/kv3/key/b").content == b"b"


def test_instance_deleted_on_the_sender_stays_on_the_receiver(pair):
    src, dst = pair
    root = src.new_repo("del")
    src.new_instance(root, "keyvalue", "kv")
    src.new_instance(root, "keyvalue", "gone")
    post(src, f"node/{root}/gone/key/a", data=b"x")
    src.commit(root)
    cli_ok("--server", src.url, "push", root, dst.url, "-q")
    v2 = src.newversion(root)
    src.manager.delete_instance(src.manager.resolve(root)[0], "gone")
    post(src, f"node/{v2}/kv/key/k", data=b"k")
    src.commit(v2)
    cli_ok("--server", src.url, "push", v2, dst.url, "-q")
    assert snapshot_kv(dst, v2) == {"k": b"k"}
    assert get(dst, f"node/{root}/gone/key/a").content == b"x"


def test_data_subset_leaves_no_dangling_syncs(pair):
    src, dst = pair
    root, v2, _ = build_repo(src)
    cli_ok("--server", src.url, "push", v2, dst.url, "--data", "bodies", "-q")
    info = get(dst, f"repo/{root}/info").json()["DataInstances"]
    assert set(info) == {"bodies"}
    assert info["bodies"]["Base"]["Syncs"] == []
    assert get(dst, f"node/{v2}/bodies/sparsevol/5").status_code == 200
    # a later push of everything brings the partner and the syncs back
    cli_ok("--server", src.url, "push", v2, dst.url, "-q")
    info = get(dst, f"repo/{root}/info").json()["DataInstances"]
    assert info["bodies"]["Base"]["Syncs"] == ["seg"] and info["seg"]["Base"]["Syncs"] == ["bodies"]


def test_value_larger_than_the_record_limit_transfers(pair, monkeypatch):
    # the receiver accepts records as large as its request bodies (a keyvalue value that this
    # server would accept in a POST must also arrive by push)
    monkeypatch.setattr(stream, "MAX_RECORD", 1 << 20)
    src, dst = pair
    root = src.new_repo("big")
    src.new_instance(root, "keyvalue", "kv")
    big = os.urandom(2 << 20)
    post(src, f"node/{root}/kv/key/big", data=big)
    cli_ok("--server", src.url, "push", root, dst.url, "-q")
    assert get(dst, f"node/{root}/kv/key/big").content == big


def _anon_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon"):
                return int(line.split()[1]) * 1024
    return 0


def test_export_of_large_values_streams_in_bounded_memory(pair):
    src, _ = pair
    root = src.new_repo("mem")
    src.new_instance(root, "keyvalue", "kv")
    val = os.urandom(1 << 20)
    with requests.Session() as s:
        for i in range(120):
            data = val[: -i - 1] + bytes([i])
            s.post(src.api(f"node/{root}/kv/key/k{i:04d}"), data=data, timeout=T).raise_for_status()
    base = peak = _anon_rss()
    r = requests.get(src.api(f"repo/{root}/transfer/export"), json={"have": None}, stream=True, timeout=T)
    total = 0
    for chunk in r.iter_content(1 << 16):
        total += len(chunk)
        time.sleep(0.0005)  # a slower reader than the exporter
        peak = max(peak, _anon_rss())
    assert total > 120 << 20
    # before: values fetched 256 at a time held the whole 120 MiB at once
    assert peak - base < 60 << 20, (peak - base) >> 20


def test_merge_node_pushed_and_pulled(pair):
    src, dst = pair
    root = src.new_repo("merge")
    src.new_instance(root, "keyvalue", "kv")
    post(src, f"node/{root}/kv/key/a", data=b"root")
    post(src, f"node/{root}/kv/key/b", data=b"root")
    src.commit(root)
    a = src.newversion(root)
    b = requests.post(src.api(f"node/{root}/branch"), json={"branch": "side"}, timeout=T).json()["child"]
    post(src, f"node/{a}/kv/key/x", data=b"ax")
    post(src, f"node/{b}/kv/key/y", data=b"by")
    requests.delete(src.api(f"node/{b}/kv/key/b"), timeout=T).raise_for_status()
    src.commit(a)
    src.commit(b)
    cli_ok("--server", src.url, "push", a, dst.url, "-q")
    r = requests.post(
        src.api(f"repo/{root}/merge"), json={"mergeType": "conflict-free", "parents": [a, b]}, timeout=T
    )
    assert r.status_code == 200, r.text
    m = r.json()["child"]
    post(src, f"node/{m}/kv/key/z", data=b"mz")
    src.commit(m)
    cli_ok("--server", src.url, "push", m, dst.url, "-q")
    c = src.newversion(m)
    post(src, f"node/{c}/kv/key/c", data=b"c")
    cli_ok("--server", dst.url, "pull", src.url, c, "-q")
    assert dag_of(dst, root) == dag_of(src, root)
    for u in (root, a, b, m, c):
        assert snapshot_kv(src, u) == snapshot_kv(dst, u), u
    assert snapshot_kv(dst, m) == {"a": b"root", "x": b"ax", "y": b"by", "z": b"mz"}


def _strip_local(info: dict) -> dict:
    return {
        n: {"Base": {k: v for k, v in i["Base"].items() if k != "KVStore"}, "Extended": i["Extended"]}
        for n, i in info["DataInstances"].items()
    }


def test_every_datatype_reads_equal(pair):
    src, dst = pair
    root = src.new_repo("all")
    for typename, name, extra in [
        ("keyvalue", "kv", {}),
        ("uint8blk", "gray", {}),
        ("labelblk", "seg", {"BlockSize": "32,32,32"}),
        ("labelvol", "bodies", {"BlockSize": "32,32,32"}),
        ("annotation", "syn", {}),
        ("roi", "r", {}),
        ("labelsz", "sz", {}),
    ]:
        src.new_instance(root, typename, name, **extra)
    for name, partner in [("bodies", "seg"), ("seg", "bodies"), ("syn", "seg"), ("sz", "syn")]:
        post(src, f"node/{root}/{name}/sync", json={"sync": partner})
    labels = np.zeros((64, 64, 64), np.uint64)
    labels[:, :32] = 7
    labels[:, 32:] = 8
    post(src, f"node/{root}/seg/raw/0_1_2/64_64_64/0_0_0", data=labels.tobytes())
    post(src, f"node/{root}/gray/raw/0_1_2/64_64_64/0_0_0", data=(labels * 3).astype(np.uint8).tobytes())
    post(src, f"node/{root}/r/roi", json=[[0, 0, 0, 1], [1, 0, 1, 1]])
    els = [
        {"Pos": [x, 5, 5], "Kind": "PreSyn", "Tags": ["t"], "Prop": {}, "Rels": []} for x in range(0, 60, 7)
    ]
    post(src, f"node/{root}/syn/elements", json=els)
    post(src, f"node/{root}/kv/key/k", data=b"v")
    src.commit(root)
    v2 = src.newversion(root)
    post_syn = [{"Pos": [1, 40, 5], "Kind": "PostSyn", "Tags": [], "Prop": {}, "Rels": []}]
    post(src, f"node/{v2}/syn/elements", json=post_syn)
    post(src, f"node/{v2}/r/roi", json=[[2, 2, 2, 3]])
    src.commit(v2)
    cli_ok("--server", src.url, "push", root, dst.url, "-q")
    cli_ok("--server", src.url, "push", v2, dst.url, "-q")
    assert _strip_local(get(src, f"repo/{root}/info").json()) == _strip_local(
        get(dst, f"repo/{root}/info").json()
    )
    paths = [
        "seg/raw/0_1_2/64_64_64/0_0_0",
        "gray/raw/0_1_2/64_64_64/0_0_0",
        "r/roi",
        "bodies/sparsevol/7",
        "bodies/sparsevol/8",
        "syn/label/7",
        "syn/label/8",
        "syn/tag/t",
        "syn/elements/64_64_64/0_0_0",
        "sz/top/5/PreSyn",
        "sz/top/5/AllSyn",
        "sz/count/7/PreSyn",
        "kv/keys",
    ]
    for u in (root, v2):
        for path in paths:
            a, b = get(src, f"node/{u}/{path}"), get(dst, f"node/{u}/{path}")
            assert (a.status_code, a.content) == (b.status_code, b.content), (u, path)
