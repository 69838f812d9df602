"""Push and pull of labelmap data between two real servers: blocks of every scale, label indexes, the
mapping and the mutation log arrive, read as on the sender, and edits continue on the receiver."""

from __future__ import annotations

import struct

import numpy as np
import requests

from tests.test_transfer import cli_ok

T = 30
EDGE = 64
BS = 32


def quadrants() -> np.ndarray:
    """(64, 64, 64) supervoxels 1-4, each a 32-voxel-high quarter (z, y, x): 1, 2 at y < 32."""
    vol = np.zeros((EDGE, EDGE, EDGE), dtype="<u8")
    vol[:, :32, :32] = 1
    vol[:, :32, 32:] = 2
    vol[:32, 32:, :] = 3
    vol[32:, 32:, :] = 4
    return vol


def split_runs(runs) -> bytes:
    """A legacy sparsevol body of runs (x, y, z, length)."""
    arr = np.asarray(runs, dtype="<i4").reshape(-1, 4)
    return bytes([0, 3, 0, 0]) + struct.pack("<II", 0, len(arr)) + arr.tobytes()


class Seg:
    """The labelmap ``seg`` of one server, over HTTP."""

    def __init__(self, server) -> None:
        self.server = server

    def url(self, uuid: str, path: str) -> str:
        return self.server.api(f"node/{uuid}/seg/{path}")

    def get(self, uuid: str, path: str, data=None, **params) -> requests.Response:
        r = requests.get(self.url(uuid, path), data=data, params=params, timeout=T)
        assert r.status_code == 200, (path, r.status_code, r.text)
        return r

    def post(self, uuid: str, path: str, data=None, **params) -> requests.Response:
        r = requests.post(self.url(uuid, path), data=data, params=params, timeout=T)
        assert r.status_code == 200, (path, r.status_code, r.text)
        return r

    def volume(self, uuid: str, scale: int = 0, supervoxels: bool = False) -> bytes:
        n = EDGE >> scale
        params = {"scale": str(scale), "supervoxels": str(supervoxels).lower()}
        return self.get(uuid, f"raw/0_1_2/{n}_{n}_{n}/0_0_0", **params).content

    def state(self, uuid: str, labels: list[int]) -> dict:
        """Everything a client reads of the labelmap at a version."""
        out: dict = {(scale, sv): self.volume(uuid, scale, sv) for scale in (0, 1) for sv in (False, True)}
        out["mapping"] = self.get(uuid, "mapping", data=str(labels)).json()
        out["mappings"] = self.get(uuid, "mappings").text
        out["sizes"] = self.get(uuid, "sizes", data=str(labels)).json()
        out["sv sizes"] = self.get(uuid, "sizes", data=str(labels), supervoxels="true").json()
        bodies = [b for b, n in zip(labels, out["sizes"], strict=True) if n]
        out["supervoxels"] = {b: sorted(self.get(uuid, f"supervoxels/{b}").json()) for b in bodies}
        out["indexes"] = {b: self.get(uuid, f"index/{b}").content for b in bodies}
        out["mutations"] = self.get(uuid, "mutations").json()
        out["maxlabel"] = self.get(uuid, "maxlabel").json()
        out["extents"] = self.get(uuid, "info").json()["Extents"]
        return out


def build(src) -> tuple[str, str, dict[str, int]]:
    """On ``src``: supervoxels 1-4 at scales 0 and 1, a merge at the root (committed) and, at an open
    child, a cleave and a voxel write."""
    root = src.new_repo("lm", "labelmap transfer")
    src.new_instance(root, "labelmap", "seg", BlockSize=f"{BS},{BS},{BS}", MaxDownresLevel="1")
    seg = Seg(src)
    seg.post(root, f"raw/0_1_2/{EDGE}_{EDGE}_{EDGE}/0_0_0", data=quadrants().tobytes())
    seg.post(root, "merge", data="[1, 2, 3]")
    src.commit(root, "merged")
    v2 = src.newversion(root)
    cleaved = seg.post(v2, "cleave/1", data="[3]").json()["CleavedLabel"]
    seg.post(v2, "raw/0_1_2/32_32_32/0_0_0", data=np.full((32, 32, 32), 7, "<u8").tobytes())
    return root, v2, {"cleaved": cleaved}


LABELS = [1, 2, 3, 4, 5, 6, 7, 8]


def version_id(server, uuid: str) -> int:
    """The server-local id of a version."""
    r = requests.get(server.api(f"repo/{uuid}/info"), timeout=T)
    assert r.status_code == 200, r.text
    return r.json()["DAG"]["Nodes"][uuid]["VersionID"]


def test_push_carries_labelmap_data_and_edits_continue(pair):
    src, dst = pair
    root, v2, _ = build(src)
    a, b = Seg(src), Seg(dst)
    cli_ok("--server", src.url, "push", v2, dst.url, "-q")
    for uuid in (root, v2):
        assert b.state(uuid, LABELS) == a.state(uuid, LABELS)
    # the reads are what the edits made, not merely equal
    vol = np.frombuffer(b.volume(v2), "<u8").reshape(EDGE, EDGE, EDGE)
    assert np.all(vol[:32, :32, :32] == 7) and np.all(vol[:32, 32:, :] == 5) and np.all(vol[32:, :32, :] == 1)
    assert b.get(root, "mapping", data="[1, 2, 3, 4]").json() == [1, 1, 1, 4]
    # the open version is refreshed by a later push: its mapping cache on the receiver follows
    a.post(v2, "merge", data="[4, 5]")
    cli_ok("--server", src.url, "push", v2, dst.url, "-q")
    assert b.state(v2, LABELS) == a.state(v2, LABELS)
    assert b.get(v2, "mapping", data="[3, 4]").json() == [4, 4]
    # edits at a new version on the receiver: mutation ids continue after the sender's
    src.commit(v2, "edited")
    cli_ok("--server", src.url, "push", v2, dst.url, "-q")
    last = a.get(v2, "mutations").json()[-1]["MutationID"]
    v3 = dst.newversion(v2)
    r = b.post(v3, "merge", data="[1, 4]")
    assert r.json()["MutationID"] > last
    assert b.get(v3, "mapping", data="[1, 2, 3, 4, 7]").json() == [1, 1, 1, 1, 7]
    assert b.get(v3, "size/1").json() == {"voxels": EDGE**3 - 32**3}
    assert b.get(v2, "mapping", data="[1, 2, 3, 4, 7]").json() == [1, 1, 4, 4, 7]
    vol3 = np.frombuffer(b.volume(v3, 1), "<u8").reshape(32, 32, 32)
    assert np.all(vol3[:16, :16, :16] == 7) and np.all(vol3[16:, 16:, :] == 1)
    assert [m["Action"] for m in b.get(v3, "mutations").json()] == ["merge-complete"]
    # and the sender can pull the receiver's new version back
    cli_ok("--server", src.url, "pull", dst.url, v3, "-q")
    assert a.state(v3, LABELS) == b.state(v3, LABELS)


def test_edits_on_both_servers_meet_in_a_merge(pair):
    """Each server edits its own child of a pulled version, the two children having the same local
    version id on their servers; the receiver merges them: the mapping reads right and the merge
    version travels on."""
    src, dst = pair
    root, v2, _ = build(src)
    a, b = Seg(src), Seg(dst)
    cli_ok("--server", dst.url, "pull", src.url, v2, "-q")
    for uuid in (root, v2):
        assert b.state(uuid, LABELS) == a.state(uuid, LABELS)
    src.commit(v2)
    cli_ok("--server", dst.url, "pull", src.url, v2, "-q")
    # both servers edit their own child of v2; the sender's comes over; a merge joins them
    r = requests.post(dst.api(f"node/{v2}/branch"), json={"branch": "mine"}, timeout=T)
    assert r.status_code == 200, r.text
    mine = r.json()["child"]
    b.post(mine, "merge", data="[7, 4]")
    dst.commit(mine)
    # the sender's child gets the local id of the receiver's (what two servers' counters often do)
    while version_id(src, src.new_repo("filler")) < version_id(dst, mine) - 1:
        pass
    theirs = src.newversion(v2)
    assert version_id(src, theirs) == version_id(dst, mine)
    a.post(theirs, "merge", data="[1, 5]")
    src.commit(theirs)
    cli_ok("--server", dst.url, "pull", src.url, theirs, "-q")
    body = {"mergeType": "conflict-free", "parents": [mine, theirs]}
    r = requests.post(dst.api(f"repo/{root}/merge"), json=body, timeout=T)
    assert r.status_code == 200, r.text
    joined = r.json()["child"]
    assert b.get(joined, "mapping", data="[1, 2, 3, 4, 7]").json() == [1, 1, 1, 7, 7]
    assert b.get(joined, "mapping", data="[1, 2, 3, 4, 7]").json() == [1, 1, 1, 7, 7]
    b.post(joined, "merge", data="[1, 7]")
    assert b.get(joined, "mapping", data="[1, 2, 3, 4, 7]").json() == [1, 1, 1, 1, 1]
    vol = np.frombuffer(b.volume(joined), "<u8")
    assert set(np.unique(vol).tolist()) == {1}
    # the mapping of the merge version is cached (its epochs hold no conflict)
    repo, node = dst.manager.resolve(joined)
    inst = repo.instance("seg")
    ctx = inst.context(repo.dag.ancestry(node.version))
    assert inst.mapping.view(ctx) is inst.mapping.view(ctx)
    # the merged version travels on, whole or flattened (its keys hold no conflict)
    dst.commit(joined)
    cli_ok("--server", src.url, "pull", dst.url, joined, "-q")
    assert a.state(joined, LABELS) == b.state(joined, LABELS)
    flat = "ab" * 16
    cli_ok("--server", src.url, "pull", dst.url, joined, "--flatten", "--uuid", flat, "-q")
    assert a.state(flat, LABELS) == {**b.state(joined, LABELS), "mutations": []}


def test_new_labels_after_an_incremental_pull_are_new(pair):
    """Labels the sender handed out at versions pulled later (kept at the repo root there, which an
    incremental transfer does not send again) are not handed out again by the receiver."""
    src, dst = pair
    root = src.new_repo("lm", "labels")
    src.new_instance(root, "labelmap", "seg", BlockSize=f"{BS},{BS},{BS}")
    a, b = Seg(src), Seg(dst)
    a.post(root, f"raw/0_1_2/{EDGE}_{EDGE}_{EDGE}/0_0_0", data=quadrants().tobytes())
    a.post(root, "merge", data="[1, 2, 3]")
    src.commit(root)
    cli_ok("--server", dst.url, "pull", src.url, root, "-q")
    v2 = src.newversion(root)
    first = a.post(v2, "cleave/1", data="[3]").json()["CleavedLabel"]
    split = a.post(v2, "split-supervoxel/4", data=split_runs([(0, 32, 32, 8)])).json()
    src.commit(v2)
    cli_ok("--server", dst.url, "pull", src.url, v2, "-q")
    used = {first, split["SplitSupervoxel"], split["RemainSupervoxel"]}
    v3 = dst.newversion(v2)
    assert b.get(v3, "nextlabel").json()["nextlabel"] > max(used)
    again = b.post(v3, "cleave/1", data="[2]").json()["CleavedLabel"]
    assert again > max(used)
    assert b.get(v3, f"size/{first}").json() == {"voxels": 32**3 * 2}
    assert b.get(v3, f"size/{again}").json() == {"voxels": 32**3 * 2}
