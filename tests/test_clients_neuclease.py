"""dvid driven exactly as neuclease drives DVID (spec/clients.md §1), over real HTTP.

The module's server runs as neuclease's test server does (``dvid -fullwrite``), and its setup is
neuclease's ``conftest.labelmap_setup``: a repo, a labelmap ``segmentation`` (MaxDownresLevel 2) holding
five 1x3x3 supervoxels in a row, written through libdvid's ``put_labels3D`` (an lz4 raw POST), the root
committed, then every supervoxel merged into body 1 on the committed root. The first tests are
neuclease's own (``tests/test_dvid.py``) against that state; the rest cover every call the spec lists
for server.py, repo.py, node.py, labelmap raw voxels, labelmap, annotation, roi and keyvalue, each with
neuclease's parameters and parsing (``tests/neuclease_client.py``). Edits run on child versions of the
committed root so that the neuclease tests keep their state.
"""

from __future__ import annotations

import io
import re
import tarfile

import lz4.block
import networkx as nx
import numpy as np
import pytest
import requests

from dvid.datatype.labelmap import proto
from tests.neuclease_client import (
    MUTATION_TIMESTAMP,
    Neuclease,
    construct_rle_payload,
    decode_labelindex_blocks,
    inflate_labelarray_blocks,
    parse_dvid_version,
)
from tests.serverutil import ServerThread

SEG = "segmentation"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)")
SCRATCH = "segmentation-scratch"
ADMIN_TOKEN = "neuclease-admin"


def supervoxel_vol() -> np.ndarray:
    """neuclease's five supervoxels: each 1x3x3, in one row along x (labels 1..5)."""
    vol = np.zeros((1, 3, 15), np.uint64)
    vol[:] = (np.arange(15, dtype=np.uint64) // 3).reshape(1, 1, 15)
    return vol + 1


class Scenario:
    def __init__(self, server: ServerThread, neu: Neuclease, root: str) -> None:
        self.server, self.neu, self.root = server, neu, root
        self.branches = 0

    def child(self, note: str) -> str:
        """A fresh open child of the committed root, for edits: a branch of its own."""
        self.branches += 1
        return self.neu.post_branch(self.root, f"{note} {self.branches}", note)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Scenario:
    server = ServerThread(tmp_path_factory.mktemp("neuclease"), rwmode="fullwrite",
                          admin_token=ADMIN_TOKEN).start()  # fmt: skip
    neu = Neuclease(server.url, admin_token=ADMIN_TOKEN)
    try:
        root = neu.create_repo("neuclease-test", "Test repo for neuclease integration tests")
        # conftest.create_test_labelmap_instance
        r = requests.post(server.api(f"repo/{root}/instance"), timeout=30, json={
            "typename": "labelmap", "dataname": SEG, "BlockSize": "64,64,64",
            "IndexedLabels": "true", "CountLabels": "true", "MaxDownresLevel": "2"})  # fmt: skip
        r.raise_for_status()
        neu.create_labelmap_instance(root, SCRATCH, max_scale=1)
        # DVIDNodeService.put_labels3D: lz4-compressed raw POST of a whole block, throttled
        block = np.zeros((64, 64, 64), np.uint64)
        block[:1, :3, :15] = supervoxel_vol()
        body = lz4.block.compress(block.tobytes(), store_size=False)
        neu.ok("POST", f"node/{root}/{SEG}/raw/0_1_2/64_64_64/0_0_0",
               params={"throttle": "on", "compression": "lz4"}, data=body)  # fmt: skip
        requests.post(server.api(f"node/{root}/commit"), json={"note": "supervoxels"}, timeout=30)
        # merge everything, on the committed root (-fullwrite)
        r = requests.post(server.api(f"node/{root}/{SEG}/merge"), json=[1, 2, 3, 4, 5], timeout=30)
        r.raise_for_status()
        yield Scenario(server, neu, root)
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------
# neuclease's tests/test_dvid.py against its conftest state
# ---------------------------------------------------------------------------------------------


def test_fetch_maxlabel(scenario):
    assert scenario.neu.fetch_maxlabel(scenario.root, SEG) == 5


def test_fetch_supervoxels_for_body(scenario):
    assert scenario.neu.fetch_supervoxels(scenario.root, SEG, 1).tolist() == [1, 2, 3, 4, 5]


def test_fetch_supervoxel_sizes_for_body(scenario):
    """neuclease reads these from the body's label index, summing each supervoxel's block counts."""
    index = scenario.neu.fetch_labelindex(scenario.root, SEG, 1)
    sizes: dict[int, int] = {}
    for svc in index.blocks.values():
        for sv, count in svc.counts.items():
            sizes[sv] = sizes.get(sv, 0) + count
    assert sizes == {1: 9, 2: 9, 3: 9, 4: 9, 5: 9}


def test_fetch_label_for_coordinate(scenario):
    neu = scenario.neu
    assert neu.fetch_label(scenario.root, SEG, (0, 1, 3), supervoxels=False) == 1
    assert neu.fetch_label(scenario.root, SEG, (0, 1, 3), supervoxels=True) == 2


@pytest.mark.parametrize("fmt", [None, "csv", "binary"])
def test_fetch_mappings_omit_identity_rows(scenario, fmt):
    mapping = scenario.neu.fetch_mappings(scenario.root, SEG, format=fmt)
    assert sorted(mapping[:, 0].tolist()) == [2, 3, 4, 5]  # no identity row for sv 1, the merge target
    assert (mapping[:, 1] == 1).all()


def test_fetch_complete_mappings(scenario):
    """fetch_complete_mappings: /mutations, /supervoxel-splits and /mappings, identities added back."""
    neu, root = scenario.neu, scenario.root
    mutations = neu.fetch_mutations(root, SEG)
    splits = neu.fetch_supervoxel_splits_from_dvid(root, SEG)
    assert [m["Action"] for m in mutations] == ["merge-complete"]
    retired = {e[1] for events in splits.values() for e in events}
    retired |= {m["CleavedLabel"] for m in mutations if m["Action"] in ("cleave", "cleave-complete")}
    base = {int(sv): int(body) for sv, body in neu.fetch_mappings(root, SEG)}
    complete = dict(base)
    for sv in retired:
        complete.setdefault(sv, 0)
    for body in set(base.values()) - {0}:
        complete.setdefault(body, body)
    assert complete == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1}


def test_fetch_mutation_id(scenario):
    assert isinstance(scenario.neu.fetch_mutation_id(scenario.root, SEG, 1), int)


def test_generate_sample_coordinate(scenario):
    """sparsevol-coarse picks the middle block, /blocks fetches it, the middle voxel of the label."""
    neu, root = scenario.neu, scenario.root
    for label, supervoxels in ((1, False), (2, True)):
        coarse = neu.fetch_sparsevol_coarse(root, SEG, label, supervoxels)
        corner = 64 * coarse[len(coarse) // 2] // 64 * 64
        block = neu.fetch_labelmap_voxels(root, SEG, (corner, corner + 64), supervoxels=supervoxels)
        coords = np.transpose((block == label).nonzero())
        coord = corner + coords[len(coords) // 2]
        assert neu.fetch_label(root, SEG, coord.tolist(), supervoxels=supervoxels) == label


def test_fetch_labelarray_voxels(scenario):
    neu, root, vol = scenario.neu, scenario.root, supervoxel_vol()
    box = [(0, 0, 0), vol.shape]
    assert (neu.fetch_labelmap_voxels(root, SEG, box, supervoxels=True) == vol).all()
    assert (neu.fetch_labelmap_voxels(root, SEG, box, supervoxels=False) == 1).all()
    content = neu.fetch_labelmap_voxels(root, SEG, [(0, 0, 0), (64, 64, 64)], supervoxels=True,
                                        raw_response=True)  # fmt: skip
    assert len(content) < vol.nbytes, "Fetched data was apparently not compressed"  # neuclease's check
    inflated = inflate_labelarray_blocks(content, (64, 64, 64), (0, 0, 0))
    assert (inflated[:1, :3, :15] == vol).all() and inflated.sum() == vol.sum()


def test_post_labelarray_voxels(scenario):
    neu, root = scenario.neu, scenario.root
    blocks = np.random.default_rng(0).integers(10, size=(3, 64, 64, 64), dtype=np.uint64)
    corners = [[0, 0, 0], [0, 64, 0], [0, 0, 64]]
    neu.post_labelmap_blocks(root, SCRATCH, corners, blocks, 0)
    vol = neu.fetch_labelmap_voxels(root, SCRATCH, [(0, 0, 0), (128, 128, 128)], supervoxels=True)
    assert (vol[0:64, 0:64, 0:64] == blocks[0]).all()
    assert (vol[0:64, 64:128, 0:64] == blocks[1]).all()
    assert (vol[0:64, 0:64, 64:128] == blocks[2]).all()


def test_fetch_raw(scenario):
    vol = supervoxel_vol()
    voxels = scenario.neu.fetch_raw(scenario.root, SEG, [(0, 0, 0), vol.shape], dtype=np.uint64)
    assert (voxels == 1).all()


def test_post_raw(scenario):
    neu, root = scenario.neu, scenario.root
    data = np.random.default_rng(1).integers(10, size=(64, 64, 64 * 3), dtype=np.uint64)
    neu.post_raw(root, SCRATCH, (0, 64, 0), data)
    vol = neu.fetch_labelmap_voxels(root, SCRATCH, [(0, 0, 0), (128, 128, 192)], supervoxels=True)
    assert (vol[0:64, 64:128, :] == data).all()


# ---------------------------------------------------------------------------------------------
# server.py, repo.py, node.py
# ---------------------------------------------------------------------------------------------


def test_server_info_dvid_version_parses_as_neuclease_reads_it(scenario):
    info = scenario.neu.fetch_server_info()
    parts = parse_dvid_version(info["DVID Version"])
    assert len(parts) >= 3 and all(isinstance(p, int) for p in parts)
    assert parts >= (0, 8, 24, 15)  # so fetch_mappings asks for format=binary
    assert info["Mode"] == "allow writes on committed nodes"


def test_reload_metadata_keeps_repos_and_data(scenario):
    neu, root = scenario.neu, scenario.root
    before = neu.fetch_repos_info()
    neu.reload_metadata()
    after = neu.fetch_repos_info()
    for repo in before:  # mutation ids resume at the saved stride, as after a restart: never reused
        assert after[repo].pop("MutationID") >= before[repo].pop("MutationID")
    assert after == before
    assert neu.fetch_supervoxels(root, SEG, 1).tolist() == [1, 2, 3, 4, 5]
    assert neu.fetch_mappings(root, SEG).shape == (4, 2)
    anonymous = Neuclease(scenario.server.url)  # without DVID_ADMIN_TOKEN: DVID's reload-* are admin only
    with pytest.raises(requests.HTTPError) as err:
        anonymous.reload_metadata()
    assert err.value.response.status_code == 403


def test_reload_metadata_shows_what_another_server_wrote(postgres_server_factory, tmp_path):
    """Two servers on one PostgreSQL store: the second sees the first's new repo and instance only
    after reload-metadata (regression: the endpoint was missing)."""
    writer = postgres_server_factory(store_dir=tmp_path / "shared", admin_token=ADMIN_TOKEN)
    reader = postgres_server_factory(store_dir=tmp_path / "shared", admin_token=ADMIN_TOKEN)
    a, b = Neuclease(writer.url, admin_token=ADMIN_TOKEN), Neuclease(reader.url, admin_token=ADMIN_TOKEN)
    repo = a.create_repo("shared", "written by the first server")
    a.create_labelmap_instance(repo, "seg", max_scale=1)
    vol = np.zeros((64, 64, 64), np.uint64)
    vol[:2] = 9
    a.post_labelmap_blocks(repo, "seg", [(0, 0, 0)], [vol])
    assert repo not in b.fetch_repos_info()
    b.reload_metadata()
    assert b.fetch_repo_info(repo)["DataInstances"]["seg"]["Base"]["TypeName"] == "labelmap"
    assert b.fetch_size(repo, "seg", 9) == 2 * 64 * 64
    b.post_commit(repo, "by the second server")
    a.reload_metadata()
    assert a.fetch_commit(repo) is True


def test_repo_calls_and_dag_parsing(scenario):
    neu = scenario.neu
    repo = neu.create_repo("dag", "neuclease's DAG helpers")
    assert repo in neu.fetch_repos_info()
    neu.post_repo_info(repo, alias="dag2")
    neu.post_repo_info(repo, description="described")
    info = neu.fetch_repo_info(repo)
    assert (info["Alias"], info["Description"], info["Root"]) == ("dag2", "described", repo)
    assert isinstance(info["MutationID"], int)
    neu.post_repo_log(repo, ["first", "second"])
    log = neu.fetch_repo_log(repo)[-2:]  # DVID stamps each entry: "<RFC 3339>  message"
    assert [entry.split("  ", 1)[1] for entry in log] == ["first", "second"]
    assert all(RFC3339.fullmatch(entry.split("  ", 1)[0]) for entry in log)

    neu.create_instance(repo, "kv-unversioned", "keyvalue", versioned=False, compression="lz4",
                        tags=["type=meshes"])  # fmt: skip
    neu.create_voxel_instance(repo, "gray", "uint8blk", compression="jpeg")
    neu.create_labelmap_instance(repo, "seg", max_scale=3)
    insts = neu.fetch_repo_info(repo)["DataInstances"]
    assert insts["kv-unversioned"]["Base"]["Versioned"] is False
    assert insts["kv-unversioned"]["Base"]["Tags"] == {"type": "meshes"}
    assert insts["gray"]["Base"]["Compression"].startswith("jpeg")
    assert insts["seg"]["Base"]["TypeName"] == "labelmap"

    first = neu.post_commit(repo, "first", log=["committed"])
    assert first == repo and neu.fetch_commit(repo) is True and neu.is_locked(repo[:6])
    master = neu.post_newversion(repo, "next")
    side = neu.post_branch(repo, "side", "a branch")
    neu.post_commit(master, "m")
    neu.post_tag(master, "v1", "tagged")
    dag = neu.fetch_repo_dag(repo)
    nodes = dag.nodes
    assert nodes[side]["Branch"] == "side" and nodes[master]["Branch"] == ""
    assert all(isinstance(p, int) for u in dag for p in nodes[u]["Parents"] + nodes[u]["Children"])
    for u in dag:
        for field in ("Created", "Updated"):  # what pd.to_datetime reads: RFC 3339, up to nanoseconds
            assert RFC3339.fullmatch(nodes[u][field]), nodes[u][field]
    assert neu.find_repo_root(side) == repo
    assert set(dag.successors(repo)) == {master, side}
    assert neu.find_branch_nodes(repo, "side") == [side]
    master_nodes = neu.find_branch_nodes(repo)
    assert master_nodes[:2] == [repo, master] and neu.find_master(repo) == master_nodes[-1]
    assert neu.expand_uuid(side[:5], repo) == side
    assert nx.is_directed_acyclic_graph(dag)


def test_node_calls(scenario):
    neu = scenario.neu
    uuid = scenario.child("node calls")
    neu.post_note(uuid, "a note")
    assert neu.fetch_note(uuid) == "a note"
    neu.post_node_log(uuid, ["one", "two"])
    assert [entry.split("  ", 1)[1] for entry in neu.fetch_node_log(uuid)[-2:]] == ["one", "two"]
    info = neu.fetch_instance_info(uuid, SEG)
    ext = info["Extended"]
    assert info["Base"]["TypeName"] == "labelmap" and ext["MaxDownresLevel"] == 2
    assert ext["Values"][0]["DataType"] == "uint64" and ext["BlockSize"] == [64, 64, 64]
    assert len(ext["VoxelSize"]) == 3 and "MinPoint" in ext and "MaxPoint" in ext
    neu.post_tags(uuid, SEG, {"type": "segmentation"})
    assert neu.fetch_tags(uuid, SEG) == {"Tags": {"type": "segmentation"}}


def test_instance_info_post_changes_max_downres_level(scenario):
    neu, root = scenario.neu, scenario.root
    repo = neu.create_repo("info", "post info")
    neu.create_labelmap_instance(repo, "seg", max_scale=1)
    neu.post_instance_info(repo, "seg", {"MaxDownresLevel": "3"})
    assert neu.fetch_instance_info(repo, "seg")["Extended"]["MaxDownresLevel"] == 3
    with pytest.raises(requests.HTTPError) as err:
        neu.post_instance_info(repo, "seg", {"MaxDownresLevel": "many"})
    assert err.value.response.status_code == 400
    assert neu.fetch_instance_info(root, SEG)["Extended"]["MaxDownresLevel"] == 2


def test_blobstore_round_trip(scenario):
    neu, root = scenario.neu, scenario.root
    ref = neu.post_blob(root, SEG, data=b"\x00\x01 some bytes")
    assert len(ref) == 24 and ref.endswith("==")  # base64 URL encoding of FNV-128
    assert neu.fetch_blob(root, SEG, ref) == b"\x00\x01 some bytes"
    ref2 = neu.post_blob(root, SEG, json={"a": [1, 2]})
    assert ref2 != ref
    assert neu.ok("GET", f"node/{root}/{SEG}/blobstore/{ref2}").json() == {"a": [1, 2]}
    missing = neu.get(f"node/{root}/{SEG}/blobstore/AAAAAAAAAAAAAAAAAAAAAA==")
    assert missing.status_code == 404


# ---------------------------------------------------------------------------------------------
# labelmap
# ---------------------------------------------------------------------------------------------


def test_label_counters(scenario):
    neu = scenario.neu
    uuid = scenario.child("counters")
    assert neu.fetch_maxlabel(uuid, SEG) == 5
    neu.post_maxlabel(uuid, SEG, 20)
    assert neu.fetch_maxlabel(uuid, SEG) == 20
    nxt = neu.fetch_nextlabel(uuid, SEG)
    assert nxt == 21
    start, end = neu.post_nextlabel(uuid, SEG, 5)
    assert (start, end) == (21, 25) and neu.fetch_nextlabel(uuid, SEG) == 26
    neu.post_set_nextlabel(uuid, SEG, 1000)
    assert neu.fetch_nextlabel(uuid, SEG) == 1000
    assert neu.post_nextlabel(uuid, SEG, 1) == (1000, 1000)


def test_sizes_listlabels_and_labels(scenario):
    neu, root = scenario.neu, scenario.root
    assert neu.fetch_size(root, SEG, 1) == 45
    assert neu.fetch_size(root, SEG, 3, supervoxels=True) == 9
    assert neu.fetch_sizes(root, SEG, [1, 77]) == [45, 0]
    assert neu.fetch_sizes(root, SEG, [2, 5, 77], supervoxels=True) == [9, 9, 0]
    assert neu.fetch_listlabels(root, SEG).tolist() == [1]
    assert neu.fetch_listlabels(root, SEG, start=0, number=10, sizes=True).tolist() == [[1, 45]]
    coords = [(0, 0, 0), (0, 2, 14), (0, 1, 7), (10, 10, 10)]
    assert neu.fetch_labels(root, SEG, coords).tolist() == [1, 1, 1, 0]
    assert neu.fetch_labels(root, SEG, coords, supervoxels=True).tolist() == [1, 5, 3, 0]
    assert neu.fetch_label(root, SEG, (0, 0, 3), supervoxels=True, scale=1) == 3  # x 6-7 at scale 0
    assert neu.fetch_labels(root, SEG, [(0, 1, 7)], scale=1, supervoxels=True).tolist() == [5]
    lastmod = neu.fetch_lastmod(root, SEG, 1)
    assert set(lastmod) == {"mutation id", "last mod user", "last mod time", "last mod app"}
    with pytest.raises(requests.HTTPError) as err:
        neu.fetch_lastmod(root, SEG, 77)
    assert err.value.response.status_code == 404


def test_sparsevol_and_head(scenario):
    neu, root = scenario.neu, scenario.root
    rles = neu.fetch_sparsevol_rles(root, SEG, 1)
    assert rles[:4] == bytes([0, 3, 0, 0])
    assert int(np.frombuffer(rles[4:8], np.uint32)[0]) in (0, 45)  # the voxel count may be 0
    ranges = neu.fetch_sparsevol(root, SEG, 1)
    assert sorted(map(tuple, ranges.tolist())) == [(0, y, 0, 14) for y in range(3)]
    sv = neu.fetch_sparsevol(root, SEG, 3, supervoxels=True)
    assert sorted(map(tuple, sv.tolist())) == [(0, y, 6, 8) for y in range(3)]
    clipped = neu.fetch_sparsevol(root, SEG, 1, box_zyx=np.array([(0, 1, 4), (1, 2, 10)]))
    assert sorted(map(tuple, clipped.tolist())) == [(0, 1, 4, 9)]
    coarse = neu.fetch_sparsevol(root, SEG, 1, scale=1)
    assert len(coarse) >= 1 and (coarse[:, 0] == 0).all()
    assert neu.fetch_sparsevol_head(root, SEG, 1) is True
    assert neu.fetch_sparsevol_head(root, SEG, 4, supervoxels=True) is True
    assert neu.fetch_sparsevol_head(root, SEG, 4) is False  # merged away
    assert neu.fetch_sparsevol_head(root, SEG, 999) is False
    assert neu.fetch_sparsevol_coarse(root, SEG, 1).tolist() == [[0, 0, 0]]


def test_mapping_with_get_body(scenario):
    neu, root = scenario.neu, scenario.root
    assert neu.fetch_mapping(root, SEG, [1, 2, 5, 77]).tolist() == [1, 1, 1, 0]
    assert neu.fetch_mapping(root, SEG, [3, 77], nolookup=True).tolist() == [1, 77]
    assert neu.fetch_mappings(root, SEG, format="binary", consistent=True).shape == (4, 2)


def test_cleave_mutations_and_lastmod(scenario):
    neu = scenario.neu
    uuid = scenario.child("cleave")
    cleaved = neu.post_cleave(uuid, SEG, 1, [4, 5])
    assert cleaved > 5  # from the instance-wide next label (other tests may have reserved some)
    assert neu.fetch_supervoxels(uuid, SEG, cleaved).tolist() == [4, 5]
    assert neu.fetch_supervoxels(uuid, SEG, 1).tolist() == [1, 2, 3]
    mutations = neu.fetch_mutations(uuid, SEG)
    assert [m["Action"] for m in mutations] == ["cleave-complete"]
    m = mutations[0]
    assert m["UUID"] == uuid and m["OrigLabel"] == 1 and m["CleavedLabel"] == cleaved
    assert sorted(m["CleavedSupervoxels"]) == [4, 5] and m["User"] == neu.user
    assert isinstance(m["MutationID"], int) and MUTATION_TIMESTAMP.match(m["Timestamp"]), m["Timestamp"]
    assert neu.fetch_mutation_id(uuid, SEG, cleaved) == m["MutationID"]
    assert neu.fetch_lastmod(uuid, SEG, cleaved)["last mod user"] == neu.user
    assert neu.fetch_lastmod(uuid, SEG, cleaved)["last mod app"] == "neuclease"
    assert neu.fetch_mutations(uuid, SEG, userid="somebody-else") is not None
    history = neu.fetch_history(uuid, SEG, cleaved, scenario.root, uuid)
    assert {"Action": "cleave", "OrigLabel": 1, "CleavedLabel": cleaved, "CleavedSupervoxels": [4, 5]} in [
        {**h, "CleavedSupervoxels": sorted(h.get("CleavedSupervoxels", []))} for h in history
    ]


def test_split_supervoxel_and_supervoxel_splits(scenario):
    neu = scenario.neu
    uuid = scenario.child("split-supervoxel")
    payload = construct_rle_payload([[0, y, 6, 6] for y in range(3)])  # the x=6 column of sv 3
    split, remain = neu.post_split_supervoxel(uuid, SEG, 3, payload, downres=False)
    assert split != remain and {split, remain}.isdisjoint({1, 2, 3, 4, 5})
    vol = neu.fetch_labelmap_voxels(uuid, SEG, [(0, 0, 0), (1, 3, 15)], supervoxels=True)
    assert (vol[0, :, 6] == split).all() and (vol[0, :, 7:9] == remain).all()
    assert neu.fetch_mapping(uuid, SEG, [split, remain]).tolist() == [1, 1]
    events = neu.fetch_supervoxel_splits_from_dvid(uuid, SEG)
    assert next(iter(events)) == uuid  # the version asked for comes first
    (mutid, old, got_remain, got_split), *_ = events[uuid]
    assert (old, got_remain, got_split) == (3, remain, split) and isinstance(mutid, int)
    actions = [m["Action"] for m in neu.fetch_mutations(uuid, SEG)]
    assert actions == ["split-supervoxel-complete"]
    # with explicit ids
    payload = construct_rle_payload([[0, 0, 12, 12]])
    assert neu.post_split_supervoxel(uuid, SEG, 5, payload, split_id=100, remain_id=101) == (100, 101)
    assert neu.fetch_label(uuid, SEG, (0, 0, 12), supervoxels=True) == 100


def test_merge_renumber_and_post_mappings(scenario):
    neu = scenario.neu
    uuid = scenario.child("renumber")
    cleaved = neu.post_cleave(uuid, SEG, 1, [5])
    neu.post_merge(uuid, SEG, 1, [cleaved])
    assert neu.fetch_supervoxels(uuid, SEG, 1).tolist() == [1, 2, 3, 4, 5]
    neu.post_renumber(uuid, SEG, {1: 500})
    assert neu.fetch_supervoxels(uuid, SEG, 500).tolist() == [1, 2, 3, 4, 5]
    assert neu.fetch_label(uuid, SEG, (0, 0, 0)) == 500
    actions = [m["Action"] for m in neu.fetch_mutations(uuid, SEG)]
    assert actions == ["cleave-complete", "merge-complete", "renumber-complete"]


def test_ingestion_blocks_mappings_then_label_indexes(scenario):
    """neuclease's ingestion: supervoxel blocks without indexing, the mapping (post_mappings, a mutid
    from the repo info as copy_mappings picks it), then the bodies' label indexes (post_labelindices)."""
    neu = scenario.neu
    repo = neu.create_repo("mappings", "post mappings")
    neu.create_labelmap_instance(repo, "seg")
    vol = np.zeros((64, 64, 64), np.uint64)
    vol[0, 0, :4] = [1, 2, 3, 4]
    neu.post_labelmap_blocks(repo, "seg", [(0, 0, 0)], [vol], noindexing=True)
    mutid = neu.fetch_repo_info(repo)["MutationID"]
    neu.post_mappings(repo, "seg", {2: 1, 3: 1}, mutid)
    got = neu.fetch_mappings(repo, "seg")
    assert sorted(map(tuple, got.tolist())) == [(2, 1), (3, 1)]
    assert neu.fetch_mapping(repo, "seg", [1, 2, 3, 4], nolookup=True).tolist() == [1, 1, 1, 4]
    indexes = []
    for body, svs in ((1, (1, 2, 3)), (4, (4,))):
        index = proto.LabelIndexMsg()
        index.label = body
        for sv in svs:
            index.blocks[0].counts[sv] = 1
        indexes.append(index)
    neu.post_labelindices(repo, "seg", indexes)
    assert neu.fetch_mapping(repo, "seg", [1, 2, 3, 4, 5]).tolist() == [1, 1, 1, 4, 0]
    assert neu.fetch_size(repo, "seg", 1) == 3 and neu.fetch_supervoxels(repo, "seg", 1).tolist() == [1, 2, 3]
    assert (neu.fetch_labelmap_voxels(repo, "seg", [(0, 0, 0), (1, 1, 4)]) == [1, 1, 1, 4]).all()


def test_label_indexes(scenario):
    neu, root = scenario.neu, scenario.root
    index = neu.fetch_labelindex(root, SEG, 1)
    assert index.label == 1 and isinstance(index.last_mutid, int)
    (block_id,) = index.blocks.keys()
    assert decode_labelindex_blocks([block_id]).tolist() == [[0, 0, 0]]
    assert dict(index.blocks[block_id].counts) == {1: 9, 2: 9, 3: 9, 4: 9, 5: 9}
    indices = neu.fetch_labelindices(root, SEG, [1, 999])
    assert [i.label for i in indices.indices] == [1, 999]
    assert len(indices.indices[1].blocks) == 0  # missing: an empty index

    uuid = scenario.child("indexes")
    new = proto.LabelIndexMsg()
    new.label = 900
    new.last_mutid = 7
    new.last_mod_user = "tester"
    new.blocks[(1 << 42) | (2 << 21) | 3].counts[900] = 12
    neu.post_labelindex(uuid, SEG, 900, new)
    back = neu.fetch_labelindex(uuid, SEG, 900)
    assert decode_labelindex_blocks(list(back.blocks)).tolist() == [[1, 2, 3]]
    assert dict(back.blocks[(1 << 42) | (2 << 21) | 3].counts) == {900: 12}
    gone = proto.LabelIndexMsg()
    gone.label = 900
    neu.post_labelindices(uuid, SEG, [gone])  # no blocks: delete
    assert neu.get(f"node/{uuid}/{SEG}/index/900").status_code == 404


def test_blocks_specificblocks_and_ingest(scenario):
    neu, root = scenario.neu, scenario.root
    raw = neu.fetch_labelmap_voxels(root, SEG, [(0, 0, 0), (64, 64, 64)], supervoxels=True,
                                    raw_response=True)  # fmt: skip
    assert len(raw) < 64**3 * 8
    blocks = neu.fetch_labelmap_specificblocks(root, SEG, [(0, 0, 0), (64, 0, 0)], supervoxels=True)
    assert blocks[(64, 0, 0)] is None  # no data: omitted
    assert (blocks[(0, 0, 0)][:1, :3, :15] == supervoxel_vol()).all()
    bodies = neu.fetch_labelmap_specificblocks(root, SEG, [(0, 0, 0)])
    assert set(np.unique(bodies[(0, 0, 0)]).tolist()) == {0, 1}
    scale1 = neu.fetch_labelmap_voxels(root, SEG, [(0, 0, 0), (1, 2, 8)], scale=1, supervoxels=True)
    assert scale1.shape == (1, 2, 8) and scale1[0, 0, 0] == 1

    repo = neu.create_repo("ingest", "blocks")
    neu.create_labelmap_instance(repo, "seg", max_scale=1)
    vol = np.zeros((64, 64, 64), np.uint64)
    vol[:, :, 32:] = 7
    vol[:32] = 8
    neu.post_labelmap_blocks(repo, "seg", [(64, 0, 0)], [vol], downres=True, throttle=True)
    assert neu.fetch_size(repo, "seg", 7) == 32 * 64 * 32
    low = neu.fetch_labelmap_voxels(repo, "seg", [(32, 0, 0), (64, 32, 32)], scale=1)
    assert low[0, 0, 0] == 8 and low[-1, 0, -1] == 7
    neu.post_labelmap_blocks(repo, "seg", [(0, 64, 0)], [vol], noindexing=True, ingestion_mode=True)
    got = neu.fetch_labelmap_voxels(repo, "seg", [(0, 64, 0), (64, 128, 64)], supervoxels=True)
    assert (got == vol).all()


def test_voxels_extents_and_resolution(scenario):
    neu = scenario.neu
    uuid = scenario.child("extents")
    neu.post_extents(uuid, SEG, [(0, 0, 0), (128, 256, 512)])
    neu.post_resolution(uuid, SEG, (4.0, 4.0, 40.0))
    ext = neu.fetch_instance_info(uuid, SEG)["Extended"]
    assert ext["MinPoint"] == [0, 0, 0] and ext["MaxPoint"] == [511, 255, 127]
    assert ext["VoxelSize"] == [4.0, 4.0, 40.0]
    vol = neu.fetch_raw(uuid, SEG, [(0, 0, 0), (1, 3, 15)], throttle=True, dtype=np.uint64)
    assert (vol == 1).all()
    low = neu.fetch_raw(uuid, SEG, [(0, 0, 0), (1, 2, 8)], dtype=np.uint64, scale=1)
    assert low[0, 0, 0] == 1


# ---------------------------------------------------------------------------------------------
# annotation, roi, keyvalue
# ---------------------------------------------------------------------------------------------


def test_annotation_calls(scenario):
    neu = scenario.neu
    uuid = scenario.child("annotations")
    neu.create_instance(uuid, "synapses", "annotation")
    neu.create_instance(uuid, "roi1", "roi", type_specific_settings={"BlockSize": "64,64,64"})
    neu.post_roi(uuid, "roi1", [[0, 0, 0, 0]])  # block (0,0,0), as the annotation's blocks of 64
    neu.post_sync(uuid, "synapses", [SEG], replace=True)
    pre = {"Pos": [1, 1, 0], "Kind": "PreSyn", "Tags": ["t1"], "Prop": {"conf": "0.9"},
           "Rels": [{"Rel": "PreSynTo", "To": [13, 1, 0]}]}  # fmt: skip
    post = {"Pos": [13, 1, 0], "Kind": "PostSyn", "Tags": [], "Prop": {},
            "Rels": [{"Rel": "PostSynTo", "To": [1, 1, 0]}]}  # fmt: skip
    neu.post_elements(uuid, "synapses", [pre, post], kafkalog=False)
    in_body = neu.fetch_annotation_label(uuid, "synapses", 1, relationships=True)
    assert sorted(e["Pos"] for e in in_body) == [[1, 1, 0], [13, 1, 0]]
    assert all(e["Rels"] for e in in_body)
    assert all("Rels" not in e or not e["Rels"] for e in neu.fetch_annotation_label(uuid, "synapses", 1))
    assert [e["Pos"] for e in neu.fetch_annotation_tag(uuid, "synapses", "t1")] == [[1, 1, 0]]
    assert len(neu.fetch_annotation_roi(uuid, "synapses", "roi1")) == 2
    assert len(neu.fetch_annotation_roi(uuid, "synapses", "roi1", uuid)) == 2
    assert [e["Pos"] for e in neu.fetch_elements(uuid, "synapses", [(0, 0, 0), (1, 2, 5)])] == [[1, 1, 0]]
    assert set(neu.fetch_all_elements(uuid, "synapses")) == {"0,0,0"}
    blocks = neu.fetch_blocks(uuid, "synapses", [(0, 0, 0), (64, 64, 64)])
    assert len(blocks["0,0,0"]) == 2
    extra = {"Pos": [100, 100, 100], "Kind": "Note", "Tags": None, "Prop": {"k": "v"}, "Rels": []}
    neu.post_blocks(uuid, "synapses", {"1,1,1": [extra]}, kafkalog=False)
    assert len(neu.fetch_blocks(uuid, "synapses", [(64, 64, 64), (128, 128, 128)])["1,1,1"]) == 1
    neu.post_move(uuid, "synapses", (100, 100, 100), (101, 100, 100), kafkalog=False)
    assert [e["Pos"] for e in neu.fetch_elements(uuid, "synapses", [(64, 64, 64), (128, 128, 128)])] == [
        [100, 100, 101]
    ]
    neu.delete_element(uuid, "synapses", (101, 100, 100), kafkalog=False)
    assert neu.fetch_elements(uuid, "synapses", [(64, 64, 64), (128, 128, 128)]) == []
    neu.post_reload(uuid, "synapses", check=True, inmemory=False)
    assert isinstance(neu.fetch_tags(uuid, "synapses"), dict)


def test_roi_calls(scenario):
    neu = scenario.neu
    uuid = scenario.child("roi")
    neu.create_instance(uuid, "roi2", "roi")
    assert neu.fetch_roi(uuid, "roi2") == []
    runs = [[0, 0, 0, 3], [0, 1, 2, 2], [5, 5, 5, 7]]  # z, y, x0, x1 (inclusive), 32-px blocks
    neu.post_roi(uuid, "roi2", runs)
    assert neu.fetch_roi(uuid, "roi2") == runs
    neu.post_roi(uuid, "roi2", [[1, 1, 1, 1]])  # overwrites the whole ROI
    assert neu.fetch_roi(uuid, "roi2") == [[1, 1, 1, 1]]


def test_keyvalue_calls(scenario):
    neu = scenario.neu
    uuid = scenario.child("keyvalue")
    neu.create_instance(uuid, "kv", "keyvalue")
    neu.post_key(uuid, "kv", "a", b"\x00bytes")
    neu.post_key(uuid, "kv", "b", json={"x": 1})
    neu.post_keyvalues(uuid, "kv", {"c": b"three", "d": b"four"})
    assert neu.fetch_keys(uuid, "kv") == ["a", "b", "c", "d"]
    assert neu.fetch_keyrange(uuid, "kv") == ["a", "b", "c", "d"]
    assert neu.fetch_keyrange(uuid, "kv", "b", "c") == ["b", "c"]
    assert neu.fetch_key(uuid, "kv", "a") == b"\x00bytes"
    assert neu.fetch_key_exists(uuid, "kv", "a") and not neu.fetch_key_exists(uuid, "kv", "zz")
    assert neu.fetch_keyrangevalues(uuid, "kv", "c", "d") == {"c": b"three", "d": b"four"}
    assert neu.fetch_keyrangevalues(uuid, "kv", "b", "b", fmt="json") == {"b": {"x": 1}}
    tar = neu.fetch_keyrangevalues(uuid, "kv", "c", "d", fmt="tar")
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        assert {m.name: tf.extractfile(m).read() for m in tf.getmembers()} == {"c": b"three", "d": b"four"}
    assert neu.fetch_keyvalues(uuid, "kv", ["a", "d", "missing"]) == {"a": b"\x00bytes", "d": b"four",
                                                                     "missing": b""}  # fmt: skip
    assert neu.fetch_keyvalues(uuid, "kv", ["b"], fmt="json") == {"b": {"x": 1}}
    tar = neu.fetch_keyvalues(uuid, "kv", ["b"], fmt="jsontar")
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        assert [m.name for m in tf.getmembers()] == ["b"]
    neu.delete_key(uuid, "kv", "a")
    assert not neu.fetch_key_exists(uuid, "kv", "a")


def test_blobstore_is_not_lock_checked_but_post_info_is(server):
    """DVID writes blobs on committed versions (content-addressed, unversioned); POST info on a
    committed version is a write like any other (409 without --fullwrite or the admin token)."""
    neu = Neuclease(server.url)
    repo = neu.create_repo("locked", "lock checks")
    neu.create_labelmap_instance(repo, "seg", max_scale=1)
    neu.post_commit(repo, "locked")
    ref = neu.post_blob(repo, "seg", data=b"mutation record")
    assert neu.fetch_blob(repo, "seg", ref) == b"mutation record"
    with pytest.raises(requests.HTTPError) as err:
        neu.post_instance_info(repo, "seg", {"MaxDownresLevel": 2})
    assert err.value.response.status_code == 409
    assert neu.fetch_maxlabel(repo, "seg") == 0  # nothing written: 0, no "No maximum label" error
    bad = neu.get(f"node/{repo}/seg/blobstore/not-a-reference")
    assert bad.status_code == 400 and "FNV-128" in bad.text


def test_neuronjson_through_the_keyvalue_calls(scenario):
    """neuclease reads and writes body annotations (a Clio ``segmentation_annotations`` instance) with
    its keyvalue calls; its session sends ``u=`` with every request, which neuronjson writes need."""
    neu = scenario.neu
    uuid = scenario.child("neuronjson")
    neu.create_instance(uuid, "segmentation_annotations", "neuronjson")
    neu.post_key(uuid, "segmentation_annotations", "1000", json={"bodyid": 1000, "status": "Traced"})
    big = 2**63 + 5
    neu.post_keyvalues(uuid, "segmentation_annotations", {str(big): b'{"bodyid": %d, "type": "LC10"}' % big})
    assert neu.fetch_keys(uuid, "segmentation_annotations") == ["1000", str(big)]
    assert neu.fetch_keyrange(uuid, "segmentation_annotations") == ["1000", str(big)]  # ' ' .. '\x7f'
    assert neu.fetch_key_exists(uuid, "segmentation_annotations", "1000")
    assert not neu.fetch_key_exists(uuid, "segmentation_annotations", "7")
    assert neu.fetch_key(uuid, "segmentation_annotations", "1000") == b'{"bodyid":1000,"status":"Traced"}'
    got = neu.fetch_keyvalues(uuid, "segmentation_annotations", ["1000", str(big)], fmt="json")
    assert got == {"1000": {"bodyid": 1000, "status": "Traced"}, str(big): {"bodyid": big, "type": "LC10"}}
    protobuf = neu.fetch_keyvalues(uuid, "segmentation_annotations", ["1000", "7"])
    assert protobuf == {"1000": b'{"bodyid":1000,"status":"Traced"}', "7": b""}
    assert neu.fetch_keyrangevalues(uuid, "segmentation_annotations", "0", "5000", fmt="json") == {
        "1000": {"bodyid": 1000, "status": "Traced"}
    }
    neu.delete_key(uuid, "segmentation_annotations", "1000")
    assert neu.fetch_keys(uuid, "segmentation_annotations") == [str(big)]
