"""labelsz over HTTP, fed by a small fake annotation instance (registered only in these tests).

The fake ("fakeannotation") keeps full (kind, label) counts and, like the real annotation, calls
``annotation_counts_changed(batch, ancestry, deltas)`` on every synced labelsz inside its own
atomic write batch, and offers ``label_kind_counts(ctx)`` for reload. L1 is the conformance case of
spec/annotation-roi-keyvalue.md §5 with the figures of DVID's TestLabels (exact response bytes).
"""

from __future__ import annotations

import json
import struct

import pytest
import requests
from aiohttp import web

from dvid.datatype import labelsz as lsz
from dvid.datatype import registry
from dvid.datatype.base import Datatype, Route
from dvid.datatype.common import sync
from dvid.datatype.common.request import InstanceRequest
from dvid.storage import keys

TIMEOUT = 30
FAKE_CLASS = 200


class FakeAnnotation(Datatype):
    type_name = "fakeannotation"
    type_url = "test"
    type_version = "0"
    help_text = "fake"
    routes = (Route("deltas", ("POST",), "handle_deltas"),)

    def label_kind_counts(self, ctx) -> dict[tuple[str, int], int]:
        out = {}
        for tk, v in ctx.range(keys.min_tkey(FAKE_CLASS), keys.max_tkey(FAKE_CLASS)):
            kind, label = json.loads(tk[2:].decode())
            out[kind, label] = struct.unpack("<q", v)[0]
        return out

    async def handle_deltas(self, req: InstanceRequest) -> web.StreamResponse:
        """Body [[kind, label, delta], ...]: apply to our counts and tell the synced labelsz."""
        items = json.loads(await req.body())
        current = self.label_kind_counts(req.ctx)
        deltas: dict[tuple[str, int], int] = {}
        for kind, label, d in items:
            deltas[kind, label] = deltas.get((kind, label), 0) + d
        listeners = sync.count_listeners(self)
        with req.ctx.batch() as batch:
            for (kind, label), d in deltas.items():
                tk = keys.tkey(FAKE_CLASS, json.dumps([kind, label]).encode())
                batch.put(tk, struct.pack("<q", current.get((kind, label), 0) + d))
            for inst in listeners:
                inst.annotation_counts_changed(batch, req.ctx.ancestry, deltas)
        return web.Response()


@pytest.fixture
def fake_types(monkeypatch):
    # labelsz accepts it as a sync source because it is a sync.CountSource, not by its type name
    monkeypatch.setitem(registry._TYPES, "fakeannotation", FakeAnnotation)


class Repo:
    def __init__(self, server, uuid):
        self.server, self.uuid = server, uuid

    def call(self, method, path, uuid=None, **kw) -> requests.Response:
        return requests.request(
            method, self.server.api(f"node/{uuid or self.uuid}/{path}"), timeout=TIMEOUT, **kw
        )

    def text(self, path, uuid=None, **kw) -> str:
        r = self.call("GET", path, uuid, **kw)
        assert r.status_code == 200, r.text
        return r.text

    def deltas(self, items, uuid=None) -> None:
        r = self.call("POST", "syn/deltas", uuid, data=json.dumps(items))
        assert r.status_code == 200, r.text


@pytest.fixture
def repo(server, fake_types):
    uuid = server.new_repo("labelsz")
    server.new_instance(uuid, "fakeannotation", "syn")
    server.new_instance(uuid, "labelsz", "noroi")
    rp = Repo(server, uuid)
    r = rp.call("POST", "noroi/sync", json={"sync": "syn"})
    assert r.status_code == 200, r.text
    return rp


L1_DELTAS = [
    ["PreSyn", 100, 16384], ["PreSyn", 200, 8192], ["PreSyn", 300, 8192],
    ["PostSyn", 100, 14415], ["PostSyn", 300, 7936], ["PostSyn", 200, 7440],
    ["Note", 100, 3], ["PostSyn", 0, 99],
]  # fmt: skip


def test_l1_rankings(repo):
    repo.deltas(L1_DELTAS)
    t = repo.text
    assert (
        t("noroi/top/3/PreSyn")
        == '[{"Label":100,"Size":16384},{"Label":200,"Size":8192},{"Label":300,"Size":8192}]'
    )
    assert (
        t("noroi/top/3/PostSyn")
        == '[{"Label":100,"Size":14415},{"Label":300,"Size":7936},{"Label":200,"Size":7440}]'
    )
    assert (
        t("noroi/top/3/AllSyn")
        == '[{"Label":100,"Size":30799},{"Label":300,"Size":16128},{"Label":200,"Size":15632}]'
    )
    assert t("noroi/count/100/PreSyn") == '{"Label":100,"PreSyn":16384}'
    assert t("noroi/threshold/15633/AllSyn") == '[{"Label":100,"Size":30799},{"Label":300,"Size":16128}]'
    assert (
        t("noroi/threshold/1000/AllSyn?offset=1&n=2")
        == '[{"Label":300,"Size":16128},{"Label":200,"Size":15632}]'
    )
    assert t("noroi/threshold/1000/AllSyn?offset=8&n=2") == "[]"
    assert t("noroi/top/0/AllSyn") == "[]"
    assert t("noroi/top/2/PreSyn") == '[{"Label":100,"Size":16384},{"Label":200,"Size":8192}]'
    assert (
        t("noroi/top/4/PreSyn")
        == '[{"Label":100,"Size":16384},{"Label":200,"Size":8192},{"Label":300,"Size":8192}]'
    )
    assert t("noroi/top/5/Note") == '[{"Label":100,"Size":3}]'
    assert t("noroi/count/0/PostSyn") == '{"Label":0,"PostSyn":0}'  # label 0 is never counted
    assert t("noroi/count/7/Gap") == '{"Label":7,"Gap":0}'
    body = json.dumps([300, 5, 100])
    assert t("noroi/counts/PostSyn", data=body) == (
        '[{"Label":300,"PostSyn":7936},{"Label":5,"PostSyn":0},{"Label":100,"PostSyn":14415}]'
    )
    # a move of one PostSyn from 100 to 300, then its deletion (DVID's sequence)
    repo.deltas([["PostSyn", 100, -1], ["PostSyn", 300, 1], ["PostSyn", 200, -1], ["PostSyn", 300, 1]])
    assert (
        t("noroi/top/3/PostSyn")
        == '[{"Label":100,"Size":14414},{"Label":300,"Size":7938},{"Label":200,"Size":7439}]'
    )
    repo.deltas([["PostSyn", 300, -2]])
    assert (
        t("noroi/top/3/PostSyn")
        == '[{"Label":100,"Size":14414},{"Label":300,"Size":7936},{"Label":200,"Size":7439}]'
    )
    # merge 300 into 200: counts move, 300 disappears from every index
    repo.deltas(
        [["PostSyn", 300, -7936], ["PostSyn", 200, 7936], ["PreSyn", 300, -8192], ["PreSyn", 200, 8192]]
    )
    assert t("noroi/top/3/PreSyn") == '[{"Label":100,"Size":16384},{"Label":200,"Size":16384}]'
    assert t("noroi/top/3/PostSyn") == '[{"Label":200,"Size":15375},{"Label":100,"Size":14414}]'
    assert t("noroi/top/3/AllSyn") == '[{"Label":200,"Size":31759},{"Label":100,"Size":30798}]'
    assert t("noroi/threshold/0/PostSyn?offset=1&n=1") == '[{"Label":100,"Size":14414}]'
    assert t("noroi/count/300/AllSyn") == '{"Label":300,"AllSyn":0}'


def test_store_layout(repo, server):
    repo.deltas([["PreSyn", 5, 3], ["Gap", 5, 1]])
    inst = server.manager.resolve(repo.uuid)[0].instance("noroi")
    prefix = keys.instance_prefix(inst.meta.instance_id)
    raw = {keys.tkey_of(k): v for k, v in inst.store.engine.scan(prefix, prefix + b"\xff")}
    assert raw == {
        bytes([98, 1, 2]) + struct.pack(">Q", 5): struct.pack("<I", 3),
        bytes([98, 1, 3]) + struct.pack(">Q", 5): struct.pack("<I", 1),
        bytes([98, 1, 5]) + struct.pack(">Q", 5): struct.pack("<I", 4),
        bytes([97, 1, 2]) + struct.pack(">IQ", 0xFFFFFFFF - 3, 5): b"",
        bytes([97, 1, 3]) + struct.pack(">IQ", 0xFFFFFFFF - 1, 5): b"",
        bytes([97, 1, 5]) + struct.pack(">IQ", 0xFFFFFFFF - 4, 5): b"",
    }


def test_versioned_and_clamped(repo, server):
    repo.deltas([["PreSyn", 1, 5], ["PreSyn", 2, 3]])
    server.commit(repo.uuid)
    child = server.newversion(repo.uuid)
    repo.deltas([["PreSyn", 1, -10], ["PreSyn", 2, 4]], child)  # clamped at 0, then removed
    assert repo.text("noroi/top/5/PreSyn", child) == '[{"Label":2,"Size":7}]'
    assert repo.text("noroi/top/5/PreSyn") == '[{"Label":1,"Size":5},{"Label":2,"Size":3}]'
    r = repo.call("POST", "noroi/reload")  # a write at a committed version
    assert r.status_code == 409


def test_reload(repo, server):
    uuid = repo.uuid
    repo.deltas([["PreSyn", 1, 5], ["PostSyn", 1, 2], ["Note", 2, 4], ["PreSyn", 0, 3]])
    server.new_instance(uuid, "labelsz", "late")
    assert repo.text("late/top/5/PreSyn") == "[]"
    assert repo.call("POST", "late/reload").status_code == 400  # not synced yet
    assert repo.call("POST", "late/sync", json={"sync": "syn"}).status_code == 200
    assert repo.call("POST", "late/reload").status_code == 200
    assert repo.text("late/top/5/PreSyn") == '[{"Label":1,"Size":5}]'
    # reload's AllSyn counts every kind (DVID's reload), live sync only synaptic kinds
    assert repo.text("late/top/5/AllSyn") == '[{"Label":1,"Size":7},{"Label":2,"Size":4}]'
    assert repo.text("noroi/top/5/AllSyn") == '[{"Label":1,"Size":7}]'
    # reload again after stale keys: exactly the recount remains
    assert repo.call("POST", "noroi/reload").status_code == 200
    assert repo.text("noroi/top/5/AllSyn") == '[{"Label":1,"Size":7},{"Label":2,"Size":4}]'
    assert repo.text("noroi/top/5/Note") == '[{"Label":2,"Size":4}]'


def test_bad_requests(repo, server):
    for path in (
        "noroi/top/3/Bogus",
        "noroi/top/3/Voxels",
        "noroi/top/x/PreSyn",
        "noroi/top/-1/PreSyn",
        "noroi/count/abc/PreSyn",
        "noroi/count/1",
        "noroi/threshold/5/PreSyn?offset=-1",
        "noroi/threshold/5/PreSyn?n=x",
        "noroi/top/" + "9" * 5000 + "/PreSyn",  # past int()'s 4300 digits: was a 500 (fuzz, issue 11)
        "noroi/threshold/" + "9" * 5000 + "/PreSyn",
        "noroi/count/" + "9" * 5000 + "/PreSyn",
        "noroi/top/\u00b2/PreSyn",
    ):
        r = repo.call("GET", path)
        assert r.status_code == 400, (path, r.text)
    for body in ("[1,-2]", '["a"]', "{}", "nonsense", "[true]", "[" + "9" * 5000 + "]"):
        assert repo.call("GET", "noroi/counts/PreSyn", data=body).status_code == 400, body
    r = requests.post(
        server.api(f"repo/{repo.uuid}/instance"),
        json={"typename": "labelsz", "dataname": "withroi", "ROI": "myroi"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 400 and "comma" in r.text
    server.new_instance(repo.uuid, "roi", "aroi")
    r = repo.call("POST", "noroi/sync", json={"sync": "aroi"})
    assert r.status_code == 400
    info = repo.call("GET", "noroi/info").json()
    assert info["Extended"] == {"StaticROI": ""}
    assert info["Base"]["Syncs"] == ["syn"]


def test_direct_hook_ignores_label_zero_and_unknown_kinds(repo, server):
    inst = server.manager.resolve(repo.uuid)[0].instance("noroi")
    assert inst.index_deltas({("PreSyn", 0): 4, ("Unknown", 3): 2, ("Gap", 3): 2, ("Note", 3): 1}) == {
        (lsz.GAP, 3): 2,
        (lsz.ALLSYN, 3): 2,
        (lsz.NOTE, 3): 1,
    }


def test_end_to_end_with_annotation(server):
    """labelblk -> annotation -> labelsz over HTTP, with the real annotation datatype."""
    import numpy as np

    uuid = server.new_repo("e2e")
    server.new_instance(uuid, "labelblk", "labels", BlockSize="32,32,32")
    server.new_instance(uuid, "annotation", "syn")
    server.new_instance(uuid, "labelsz", "sizes")
    rp = Repo(server, uuid)
    vol = np.zeros((64, 64, 64), "<u8")
    vol[:, :, :32] = 7
    vol[:, :, 32:] = 9
    r = rp.call("POST", "labels/raw/0_1_2/64_64_64/0_0_0", data=vol.tobytes())
    assert r.status_code == 200, r.text
    assert rp.call("POST", "syn/sync", json={"sync": "labels"}).status_code == 200
    assert rp.call("POST", "sizes/sync", json={"sync": "syn"}).status_code == 200
    elements = [{"Pos": [x, 5, 5], "Kind": "PreSyn"} for x in (1, 2, 3, 40)]
    elements += [{"Pos": [x, 6, 6], "Kind": "PostSyn"} for x in (41, 42)]
    r = rp.call("POST", "syn/elements", data=json.dumps(elements))
    assert r.status_code == 200, r.text
    assert rp.text("sizes/top/2/PreSyn") == '[{"Label":7,"Size":3},{"Label":9,"Size":1}]'
    assert (
        rp.text("sizes/top/2/AllSyn") == '[{"Label":7,"Size":3},{"Label":9,"Size":3}]'
    )  # ties: smaller label first
    r = rp.call("DELETE", "syn/element/40_5_5")
    assert r.status_code == 200, r.text
    assert rp.text("sizes/count/9/PreSyn") == '{"Label":9,"PreSyn":0}'
    assert rp.call("POST", "sizes/reload").status_code == 200
    assert rp.text("sizes/top/5/AllSyn") == '[{"Label":7,"Size":3},{"Label":9,"Size":2}]'


def _sz_counts(rp: Repo, uuid: str, labels=(1, 2, 3, 4)) -> dict[str, list[int]]:
    out = {}
    for index in ("PreSyn", "PostSyn", "AllSyn"):
        r = rp.call("GET", f"sz/counts/{index}", uuid, data=json.dumps(list(labels)))
        assert r.status_code == 200, r.text
        out[index] = [d[index] for d in r.json()]
    return out


def test_labelsz_after_moves_deletes_and_merges_at_a_child(server):
    """labelsz follows element edits and label edits at a child version, and the parent keeps its counts."""
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
    rp = Repo(server, uuid)
    assert rp.call("POST", "syn/elements", data=json.dumps(TEST_DATA)).status_code == 200
    root_counts = _sz_counts(rp, uuid)
    root_label1 = rp.call("GET", "syn/label/1").json()
    server.commit(uuid)
    child = server.newversion(uuid)
    # off a body (label 3 -> background), onto a body (background -> label 4), delete, merge
    assert rp.call("POST", "syn/move/14_25_37/5_5_5", child).status_code == 200
    assert rp.call("POST", "syn/move/33_30_31/87_47_80", child).status_code == 200
    assert rp.call("POST", "syn/move/87_47_80/88_47_80", child).status_code == 400  # occupied
    assert rp.call("DELETE", "syn/element/20_30_40", child).status_code == 200
    assert rp.call("POST", "bodies/merge", child, data=json.dumps([1, 3])).status_code == 200
    live = _sz_counts(rp, child)
    assert rp.call("POST", "sz/reload", child).status_code == 200
    reloaded = _sz_counts(rp, child)
    # reload counts every kind in AllSyn; all kinds here are synaptic, so both must agree
    assert live == reloaded
    assert live["PreSyn"] == [2, 0, 0, 0] and live["PostSyn"] == [0, 0, 0, 2]
    # the parent is untouched
    assert _sz_counts(rp, uuid) == root_counts
    assert rp.call("GET", "syn/label/1").json() == root_label1
    assert rp.call("POST", "syn/elements", child, data="[]").status_code == 200
    assert rp.call("POST", "syn/elements", data="[]").status_code == 409
