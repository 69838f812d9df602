"""Review findings for annotation, roi and labelsz, over real HTTP: each test pins one bug (a 500, a
silent corruption, or an unbounded loop / allocation) that bad input could trigger."""

from __future__ import annotations

import json
import random
import time

import numpy as np
import pytest
import requests

from dvid.datatype.common import spans as spans_mod

TIMEOUT = 30
DEEP = b"[" * 100_000


def call(server, uuid, method, path, data=None, **kw):
    return requests.request(method, server.api(f"node/{uuid}/{path}"), data=data, timeout=TIMEOUT, **kw)


@pytest.fixture
def repo(server):
    uuid = server.new_repo()
    server.new_instance(uuid, "annotation", "syn")
    server.new_instance(uuid, "roi", "r")
    server.new_instance(uuid, "labelsz", "sz")
    assert call(server, uuid, "POST", "sz/sync", json.dumps({"sync": "syn"})).status_code == 200
    return server, uuid


# ---- roi -------------------------------------------------------------------------------------


def test_roi_full_int32_span_is_400_not_stored_wrapped(repo):
    """A span covering all 2**32 x blocks has a run length that does not fit the key's u32: it was
    stored with length 0 and read back as [0, 0, -2**31, -2**31 - 1]."""
    server, uuid = repo
    assert call(server, uuid, "POST", "r/roi", "[[1,1,1,1]]").status_code == 200
    r = call(server, uuid, "POST", "r/roi", json.dumps([[0, 0, -(2**31), 2**31 - 1]]))
    assert r.status_code == 400, r.text
    assert "x0" in r.text or "long" in r.text
    assert call(server, uuid, "GET", "r/roi").json() == [[1, 1, 1, 1]]
    # one block shorter is representable and round-trips
    assert (
        call(server, uuid, "POST", "r/roi", json.dumps([[0, 0, -(2**31) + 1, 2**31 - 1]])).status_code == 200
    )
    assert call(server, uuid, "GET", "r/roi").json() == [[0, 0, -(2**31) + 1, 2**31 - 1]]


@pytest.mark.parametrize(
    "method,path",
    [
        ("POST", "r/roi"),
        ("POST", "r/ptquery"),
        ("POST", "syn/elements"),
        ("POST", "syn/blocks"),
        ("POST", "syn/labels"),
        ("GET", "sz/counts/PreSyn"),
    ],
)
def test_deeply_nested_json_is_400(repo, method, path):
    server, uuid = repo
    r = call(server, uuid, method, path, DEEP)
    assert r.status_code == 400, r.text[:300]


def test_partition_huge_batchsize_is_400_or_fast(repo):
    server, uuid = repo
    assert call(server, uuid, "POST", "r/roi", "[[0,0,0,3],[1,0,0,0]]").status_code == 200
    r = call(
        server, uuid, "GET", "r/partition", params={"batchsize": "99999999999999999999", "optimized": "true"}
    )
    assert r.status_code == 400, r.text
    t = time.monotonic()
    r = call(server, uuid, "GET", "r/partition", params={"batchsize": str(2**31 - 1), "optimized": "true"})
    assert r.status_code == 200, r.text
    assert r.json()["NumActiveBlocks"] == 5
    assert time.monotonic() - t < 5  # no per-block bytearray of 2**31 entries


@pytest.mark.parametrize("optimized", ["false", "true"])
def test_partition_sparse_roi_over_the_whole_int32_range_is_fast(repo, optimized):
    """Two blocks at opposite corners of the coordinate space: the partition loops must not walk every
    empty row and column in between (that was 2**32 Python iterations: a hung request)."""
    server, uuid = repo
    lo, hi = -(2**31), 2**31 - 1
    spans = [[0, lo, lo, lo], [0, hi, hi - 2, hi]]
    assert call(server, uuid, "POST", "r/roi", json.dumps(spans)).status_code == 200
    t = time.monotonic()
    r = call(server, uuid, "GET", "r/partition", params={"batchsize": "1", "optimized": optimized})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["NumActiveBlocks"] == 4
    assert time.monotonic() - t < 5
    if optimized == "false":
        assert out["NumTotalBlocks"] == 4 and out["NumSubvolumes"] == 4


def test_partition_with_too_many_subvolumes_is_413(server_factory):
    server = server_factory(max_body_bytes=1 << 20)
    uuid = server.new_repo()
    server.new_instance(uuid, "roi", "r")
    spans = [[0, 0, -(2**31) + 1, 2**31 - 1]]
    assert call(server, uuid, "POST", "r/roi", json.dumps(spans)).status_code == 200
    t = time.monotonic()
    for opt in ("false", "true"):
        r = call(server, uuid, "GET", "r/partition", params={"batchsize": "64", "optimized": opt})
        assert r.status_code == 413, r.text[:200]
    assert time.monotonic() - t < 10


def _random_spans(rng, n, spread):
    out = []
    for _ in range(n):
        z, y, x0 = (rng.randint(-spread, spread) for _ in range(3))
        out.append([z, y, x0, x0 + rng.randint(0, spread)])
    return spans_mod.canonical_spans(np.array(out, dtype=np.int64))


def _reference_partition(spans, bs, min_z, max_z, batch, optimized):
    """The literal (per-block) partition the module had before the review, kept as the oracle."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).with_name("test_review_annotation_roi_reference.py")
    spec = importlib.util.spec_from_file_location("test_review_annotation_roi_reference", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.partition(spans, bs, min_z, max_z, batch, optimized)


@pytest.mark.parametrize("seed", range(40))
def test_partition_matches_the_literal_algorithm(seed):
    rng = random.Random(seed)
    spans = _random_spans(rng, rng.randint(1, 25), rng.choice([3, 8, 20]))
    batch = rng.randint(1, 6)
    min_z, max_z = int(spans[:, 0].min()), int(spans[:, 0].max())
    for optimized in (False, True):
        want = _reference_partition(spans, (8, 8, 8), min_z, max_z, batch, optimized)
        got = spans_mod.partition(spans, (8, 8, 8), min_z, max_z, batch, optimized)
        assert got == want, (seed, optimized)


# ---- annotation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path,body",
    [
        ("syn/elements", rb'[{"Pos":[1,2,3],"Tags":["\ud800"]}]'),
        ("syn/elements", rb'[{"Pos":[1,2,3],"Prop":{"a":"\udfff"}}]'),
        ("syn/elements", rb'[{"Pos":[1,2,3],"Prop":{"\ud800":"x"}}]'),
        ("syn/blocks", rb'{"0,0,0":[{"Pos":[1,2,3],"Tags":["a\ud800"]}]}'),
        ("syn/blocks", rb'{"\ud800":[]}'),
        ("syn/labels", rb'{"6":"\ud800"}'),
    ],
)
def test_lone_surrogates_are_400_and_write_nothing(repo, path, body):
    """JSON escapes of lone UTF-16 surrogates decode in Python but cannot be stored as UTF-8: 500s."""
    server, uuid = repo
    r = call(server, uuid, "POST", path, body)
    assert r.status_code == 400, r.text[:300]
    assert call(server, uuid, "GET", "syn/all-elements").content == b"{}"
    assert call(server, uuid, "GET", "syn/label/6").content == b"[]"
    # a valid surrogate pair is fine
    ok = rb'[{"Pos":[1,2,3],"Tags":["\ud83d\ude00"]}]'
    assert call(server, uuid, "POST", "syn/elements", ok).status_code == 200
    assert call(server, uuid, "GET", "syn/tag/\U0001f600").json()[0]["Pos"] == [1, 2, 3]


@pytest.mark.parametrize("value", ["not json", "{}", "[1,2]", '[{"Kind":"PreSyn"}]', "5"])
def test_post_labels_with_a_value_that_is_not_an_element_list_is_400(repo, value):
    """POST labels stored any string: the label index was then unreadable (GET label, annotation and
    labelsz reloads all failed, and so would every label edit touching that label)."""
    server, uuid = repo
    good = json.dumps([{"Pos": [1, 2, 3], "Kind": "PreSyn", "Tags": [], "Prop": {}}])
    assert call(server, uuid, "POST", "syn/labels", json.dumps({"5": good})).status_code == 200
    r = call(server, uuid, "POST", "syn/labels", json.dumps({"6": good, "5": value}))
    assert r.status_code == 400, r.text
    assert call(server, uuid, "GET", "syn/label/5").json() == json.loads(good)
    assert call(server, uuid, "GET", "syn/label/6").json() == []
    assert call(server, uuid, "POST", "syn/reload").status_code == 200
    assert call(server, uuid, "POST", "sz/reload").status_code == 200
    # null and [] are lists; entries may carry Rels (ignored by readers)
    assert call(server, uuid, "POST", "syn/labels", json.dumps({"7": "null", "8": "[]"})).status_code == 200


# ---- labelsz ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "sz/count/%C2%B2/PreSyn",
        "sz/top/%C2%B2/PreSyn",
        "sz/threshold/%C2%B2/PreSyn",
        "sz/count/%D9%A3/PreSyn",
    ],
)
def test_labelsz_non_ascii_digits_are_400(repo, path):
    """str.isdigit() accepts superscripts (int() then raised: 500) and other scripts' digits."""
    server, uuid = repo
    r = requests.get(server.api(f"node/{uuid}/{path}"), timeout=TIMEOUT)
    assert r.status_code == 400, r.text


# ---- labelsz follows element edits and label edits at a child version --------------------------


def _sz_counts(server, uuid, labels=(1, 2, 3, 4)):
    out = {}
    for index in ("PreSyn", "PostSyn", "AllSyn"):
        r = call(server, uuid, "GET", f"sz/counts/{index}", json.dumps(list(labels)))
        assert r.status_code == 200, r.text
        out[index] = [d[index] for d in r.json()]
    return out


def test_labelsz_after_moves_deletes_and_merges_at_a_child(server):
    from tests.test_annotation import TEST_DATA
    from tests.test_annotation_sync import BS, FIXTURE, post_volume, runs_volume, sync

    uuid = server.new_repo()
    server.new_instance(uuid, "labelblk", "seg", BlockSize=f"{BS},{BS},{BS}")
    server.new_instance(uuid, "labelvol", "bodies", BlockSize=f"{BS},{BS},{BS}")
    sync(server, uuid, "bodies", "seg")
    sync(server, uuid, "seg", "bodies")
    server.new_instance(uuid, "annotation", "syn")
    server.new_instance(uuid, "labelsz", "sz")
    post_volume(server, uuid, runs_volume(FIXTURE))
    sync(server, uuid, "syn", "seg")
    sync(server, uuid, "sz", "syn")
    assert call(server, uuid, "POST", "syn/elements", json.dumps(TEST_DATA)).status_code == 200
    root_counts = _sz_counts(server, uuid)
    root_label1 = call(server, uuid, "GET", "syn/label/1").json()
    server.commit(uuid)
    child = server.newversion(uuid)
    # off a body (label 3 -> background), onto a body (background -> label 4), delete, merge
    assert call(server, child, "POST", "syn/move/14_25_37/5_5_5").status_code == 200
    assert call(server, child, "POST", "syn/move/33_30_31/87_47_80").status_code == 200
    assert call(server, child, "POST", "syn/move/87_47_80/88_47_80").status_code == 400  # occupied
    assert call(server, child, "DELETE", "syn/element/20_30_40").status_code == 200
    assert call(server, child, "POST", "bodies/merge", json.dumps([1, 3])).status_code == 200
    live = _sz_counts(server, child)
    assert call(server, child, "POST", "sz/reload").status_code == 200
    reloaded = _sz_counts(server, child)
    # reload counts every kind in AllSyn; all kinds here are synaptic, so both must agree
    assert live == reloaded
    assert live["PreSyn"] == [2, 0, 0, 0] and live["PostSyn"] == [0, 0, 0, 2]
    # the parent is untouched
    assert _sz_counts(server, uuid) == root_counts
    assert call(server, uuid, "GET", "syn/label/1").json() == root_label1
    assert call(server, child, "POST", "syn/elements", "[]").status_code == 200
    assert call(server, uuid, "POST", "syn/elements", "[]").status_code == 409


def test_gc_is_back_on_after_concurrent_failing_and_succeeding_posts(repo):
    """gc_paused is process-wide: overlapping POSTs, some failing inside the pause, leave it on."""
    import gc
    from concurrent.futures import ThreadPoolExecutor

    server, uuid = repo
    assert gc.isenabled()
    good = json.dumps([{"Pos": [i, i, i], "Kind": "PreSyn", "Tags": ["t"]} for i in range(2000)])
    bad = json.dumps([{"Pos": [i, i, i]} for i in range(2000)] + [{"Pos": [1, 2]}])
    with ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(lambda b: call(server, uuid, "POST", "syn/elements", b).status_code, [good, bad] * 12)
        )
    assert codes == [200, 400] * 12
    assert gc.isenabled()
