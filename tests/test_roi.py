"""roi over HTTP: a real dvid server on loopback with LevelDB, driven with ``requests``.

R1-R8 are the conformance cases of spec/annotation-roi-keyvalue.md §5 (distilled from DVID's Go
tests). Statuses are this project's: a write at a committed version is 409, a method an endpoint
does not take is 405. Masking of uint8blk and labelblk (``?roi=``) is spec §2.6 and
spec/image-label.md "ROI masking".
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import requests

from dvid.datatype import roi as roi_mod
from dvid.storage import keys

TIMEOUT = 60

R1_SPANS = [
    [100, 101, 200, 210], [100, 102, 200, 210], [100, 103, 201, 212],
    [101, 101, 201, 213], [101, 102, 202, 215], [101, 103, 202, 216],
    [102, 101, 200, 210], [102, 103, 201, 216], [102, 104, 203, 217],
    [103, 101, 200, 210], [103, 103, 200, 210], [103, 105, 201, 212],
]  # fmt: skip


class ROI:
    def __init__(self, server, uuid: str, name: str = "roi") -> None:
        self.server = server
        self.uuid = uuid
        self.name = name

    def url(self, tail: str, uuid: str | None = None) -> str:
        return self.server.api(f"node/{uuid or self.uuid}/{self.name}/{tail}")

    def call(self, method: str, tail: str, uuid: str | None = None, **kw) -> requests.Response:
        return requests.request(method, self.url(tail, uuid), timeout=TIMEOUT, **kw)

    def post(self, spans, uuid: str | None = None) -> None:
        body = spans if isinstance(spans, bytes | str) else json.dumps(spans)
        r = self.call("POST", "roi", uuid, data=body)
        assert r.status_code == 200, r.text
        assert r.content == b""

    def get(self, uuid: str | None = None) -> list:
        r = self.call("GET", "roi", uuid)
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].startswith("application/json")
        return r.json()

    def ptquery(self, points, uuid: str | None = None) -> list:
        r = self.call("POST", "ptquery", uuid, data=json.dumps(points))
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def roi(server):
    uuid = server.new_repo("roi")
    server.new_instance(uuid, "roi", "roi")
    return ROI(server, uuid)


def brute_mask(spans, offset, size, bs=(32, 32, 32)) -> np.ndarray:
    blocks = {(x, y, z) for z, y, x0, x1 in spans for x in range(x0, x1 + 1)}
    nx, ny, nz = size
    out = np.zeros((nz, ny, nx), np.uint8)
    zs = (np.arange(nz) + offset[2]) // bs[2]
    ys = (np.arange(ny) + offset[1]) // bs[1]
    xs = (np.arange(nx) + offset[0]) // bs[0]
    for k, bz in enumerate(zs):
        for j, by in enumerate(ys):
            for i, bx in enumerate(xs):
                if (bx, by, bz) in blocks:
                    out[k, j, i] = 1
    return out


# ---- R1-R8 -----------------------------------------------------------------------------------


def test_r1_roundtrip(roi):
    assert roi.get() == []
    roi.post(R1_SPANS)
    assert roi.get() == R1_SPANS
    r = roi.call("GET", "roi")
    assert r.content == json.dumps(R1_SPANS, separators=(",", ":")).encode()


def test_r2_ptquery(roi):
    roi.post(R1_SPANS)
    points = [
        [6400, 3232, 3167], [6400, 3232, 3200], [6719, 3232, 3200], [6720, 3232, 3200],
        [6720, 4100, 3263], [6720, 3233, 3201], [6720, 3234, 3200],
    ]  # fmt: skip
    r = roi.call("POST", "ptquery", data=json.dumps(points))
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.content == b"[false,true,true,true,false,true,true]"


def test_r3_mask_outside(roi):
    roi.post(R1_SPANS)
    r = roi.call("GET", "mask/0_1_2/100_100_100/10_40_70")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert len(r.content) == 1_000_000
    assert not any(r.content)


def test_r4_mask_inside(roi):
    roi.post(R1_SPANS)
    r = roi.call("GET", "mask/0_1_2/100_100_100/6350_3232_3200")
    assert r.status_code == 200
    mask = np.frombuffer(r.content, np.uint8).reshape(100, 100, 100)
    # plane z=0: x<50 -> 0; y<64,x>=50 -> 1; 64<=y<96 -> 1 iff x>81
    z0 = mask[0]
    assert not z0[:, :50].any()
    assert z0[:64, 50:].all()
    assert z0[64:96, 82:].all() and not z0[64:96, :82].any()
    # plane z=32: x<=81 or y>=32 -> 0, else 1
    z32 = mask[32]
    assert z32[:32, 82:].all()
    assert not z32[:, :82].any() and not z32[32:].any()
    # plane z=96: x>=50 and (y<32 or 64<=y<96) -> 1; y in [32,64) or y>=96 -> 0
    z96 = mask[96]
    assert z96[:32, 50:].all() and z96[64:96, 50:].all()
    assert not z96[32:64].any() and not z96[96:].any()
    np.testing.assert_array_equal(mask, brute_mask(R1_SPANS, (6350, 3232, 3200), (100, 100, 100)))


def test_r5_post_and_delete_versions(roi, server):
    roi.post(R1_SPANS)
    server.commit(roi.uuid)
    child = server.newversion(roi.uuid)
    r = roi.call("DELETE", "roi", child)
    assert r.status_code == 200, r.text
    assert roi.get() == R1_SPANS
    assert roi.get(child) == []
    assert roi.get(child[:8] + ":master") == []
    # a change at the child never shows at the parent; a POST at the child replaces only there
    roi.post(R1_SPANS[:3], child)
    assert roi.get(child) == R1_SPANS[:3]
    assert roi.get() == R1_SPANS
    info = roi.call("GET", "info").json()
    assert info["Extended"]["MinZ"] == 100 and info["Extended"]["MaxZ"] == 100


def test_r6_partition_optimized(roi):
    roi.post(R1_SPANS)
    r = roi.call("GET", "partition?batchsize=5&optimized=true")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["NumTotalBlocks"] == 450
    assert body["NumActiveBlocks"] == 152
    assert body["NumSubvolumes"] == 3
    assert body["ROI"] == {"MinChunk": [0, 0, 100], "MaxChunk": [217, 105, 103]}
    subs = body["Subvolumes"]
    assert [(s["MinChunk"][0], s["MaxChunk"][0]) for s in subs] == [(200, 205), (206, 211), (212, 217)]
    assert [s["ActiveBlocks"] for s in subs] == [61, 67, 24]
    for s, x0, x1 in zip(subs, (6400, 6592, 6784), (6591, 6783, 6975), strict=True):
        assert s["TotalBlocks"] == 150
        assert (s["MinChunk"][1], s["MaxChunk"][1], s["MinChunk"][2], s["MaxChunk"][2]) == (
            101,
            105,
            100,
            104,
        )
        assert s["MinPoint"] == [x0, 3232, 3200]
        assert s["MaxPoint"] == [x1, 3391, 3359]
        assert list(s) == ["MinPoint", "MaxPoint", "MinChunk", "MaxChunk", "TotalBlocks", "ActiveBlocks"]
    assert list(body) == ["NumTotalBlocks", "NumActiveBlocks", "NumSubvolumes", "ROI", "Subvolumes"]
    assert r.text.startswith('{\n    "NumTotalBlocks": 450,\n')  # Go's MarshalIndent with 4 spaces


def test_r7_partition_simple(roi):
    roi.post(R1_SPANS)
    r = roi.call("GET", "partition?batchsize=5")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["NumTotalBlocks"] == 1375
    assert body["NumActiveBlocks"] == 152
    assert body["NumSubvolumes"] == 10
    assert body["ROI"] == {"MinChunk": [0, 0, 100], "MaxChunk": [217, 105, 103]}
    got = [
        (s["MinChunk"][2], s["MaxChunk"][2], s["MinChunk"][1], s["MaxChunk"][1], s["MinChunk"][0],
         s["MaxChunk"][0], s["ActiveBlocks"])
        for s in body["Subvolumes"]
    ]  # fmt: skip
    assert got == [
        (98, 102, 99, 103, 199, 203, 25), (98, 102, 99, 103, 204, 208, 40),
        (98, 102, 99, 103, 209, 213, 30), (98, 102, 99, 103, 214, 218, 8),
        (98, 102, 104, 108, 203, 207, 5), (98, 102, 104, 108, 208, 212, 5),
        (98, 102, 104, 108, 213, 217, 5),
        (103, 107, 101, 105, 199, 203, 11), (103, 107, 101, 105, 204, 208, 15),
        (103, 107, 101, 105, 209, 213, 8),
    ]  # fmt: skip
    assert all(s["TotalBlocks"] == 125 for s in body["Subvolumes"])


def test_r8_create_blocksize(server):
    uuid = server.new_repo("roi")
    server.new_instance(uuid, "roi", "odd", BlockSize="15,16,17")
    info = requests.get(server.api(f"node/{uuid}/odd/info"), timeout=TIMEOUT).json()
    assert info["Extended"]["BlockSize"] == [15, 16, 17]
    assert info["Base"]["TypeName"] == "roi"
    assert info["Extended"]["MinZ"] == 2147483647 and info["Extended"]["MaxZ"] == -2147483648
    for bad in ("15,16", "1,2,3,4", "a,b,c", "0,32,32"):
        body = {"typename": "roi", "dataname": "bad", "BlockSize": bad}
        r = requests.post(server.api(f"repo/{uuid}/instance"), json=body, timeout=TIMEOUT)
        assert r.status_code == 400, (bad, r.text)


# ---- POST semantics and bad input ------------------------------------------------------------


def test_post_sorts_collapses_duplicates_keeps_overlaps(roi):
    spans = [[5, 1, 10, 20], [1, 2, 3, 4], [5, 1, 10, 20], [5, 1, 12, 30], [-3, -1, -10, -2]]
    roi.post(spans)
    assert roi.get() == [[-3, -1, -10, -2], [1, 2, 3, 4], [5, 1, 10, 20], [5, 1, 12, 30]]
    # a second POST replaces the first
    roi.post([[7, 7, 7, 7]])
    assert roi.get() == [[7, 7, 7, 7]]
    roi.post("null")
    assert roi.get() == []


@pytest.mark.parametrize(
    "body,fragment",
    [
        ("[[1,2,3]]", "item 0"),
        ("[[1,2,3,4],[1,2,5,4]]", "x1 < x0"),
        ('[[1,2,3,"4"]]', "item 0"),
        ("[[1,2,3,4.5]]", "item 0"),
        ("[[1,2,true,4]]", "item 0"),
        ("[[1,2,3,4],5]", "item 1"),
        ('{"a": 1}', "JSON array"),
        ("[[1,2,3,", "JSON array"),
        ("[[1,2,3,4294967296]]", "32-bit"),
        ("", "JSON array"),
        ("[[1,2,3," + "9" * 5000 + "]]", "JSON array"),  # int()'s digit limit: was a 500 (fuzz, issue 11)
    ],
)
def test_post_bad_spans_is_400_and_writes_nothing(roi, body, fragment):
    roi.post(R1_SPANS)
    r = roi.call("POST", "roi", data=body)
    assert r.status_code == 400, r.text
    assert fragment in r.text
    assert r.text.rstrip().endswith(f"({roi.url('roi').split('127.0.0.1')[1].split(':', 1)[1][5:]}).")
    assert roi.get() == R1_SPANS


def test_store_layout_is_dvids(server):
    """The span keys sit in the store exactly as DVID writes them: class 90, ZYX(x0, y, z), run
    length, empty value; a POST at a child writes only the difference (tombstones + new keys)."""
    uuid = server.new_repo("roi")
    server.new_instance(uuid, "roi", "r")
    ROI(server, uuid, "r").post([[3, -2, 5, 9], [0, 0, 0, 0]])
    inst = server.manager.resolve(uuid)[0].instance("r")
    tk = roi_mod.span_tkey(3, -2, 5, 9)
    assert tk == bytes([0x5A, 0x01]) + keys.zyx_bytes(5, -2, 3) + struct.pack(">I", 5)
    assert roi_mod.decode_span_tkeys([tk]).tolist() == [[3, -2, 5, 9]]
    prefix = keys.instance_prefix(inst.meta.instance_id)
    raw = list(inst.store.engine.scan(prefix, prefix + b"\xff"))
    assert sorted(keys.tkey_of(k) for k, _ in raw) == sorted([tk, roi_mod.span_tkey(0, 0, 0, 0)])
    assert all(v == b"" and not keys.is_tombstone(k) for k, v in raw)
    server.commit(uuid)
    child = server.newversion(uuid)
    ROI(server, uuid, "r").post([[3, -2, 5, 9], [1, 1, 1, 1]], child)
    raw = list(inst.store.engine.scan(prefix, prefix + b"\xff"))
    assert len(raw) == 4  # root's two keys, a tombstone of [0,0,0,0] and the new [1,1,1,1] at the child
    assert sum(keys.is_tombstone(k) for k, _ in raw) == 1


def test_ptquery_bad_bodies(roi):
    roi.post(R1_SPANS)
    for body, fragment in (
        ("[[1,2]]", "item 0"),
        ("[[1,2,3],[1,2,false]]", "item 1"),
        ('"points"', "JSON array"),
        ("[[1,2,3.5]]", "item 0"),
        ("nonsense", "JSON array"),
        ("[[1,2,99999999999]]", "32-bit"),
        ("[[1,2," + "9" * 5000 + "]]", "JSON array"),
    ):
        r = roi.call("POST", "ptquery", data=body)
        assert r.status_code == 400, (body, r.text)
        assert fragment in r.text, (body, r.text)
    assert roi.ptquery([]) == []
    r = roi.call("GET", "ptquery")
    assert r.status_code == 400
    assert "POST" in r.text


def test_ptquery_allowed_on_committed_node_but_post_is_not(roi, server):
    roi.post(R1_SPANS)
    server.commit(roi.uuid)
    assert roi.ptquery([[6400, 3232, 3200]]) == [True]
    r = roi.call("POST", "roi", data="[]")
    assert r.status_code == 409, r.text
    r = roi.call("DELETE", "roi")
    assert r.status_code == 409, r.text
    assert roi.get() == R1_SPANS


def test_ptquery_negative_points_and_block_size(server):
    uuid = server.new_repo("roi")
    server.new_instance(uuid, "roi", "r", BlockSize="10,20,30")
    r = ROI(server, uuid, "r")
    r.post([[-1, -1, -1, 0]])  # z=-1, y=-1, x in [-1, 0]
    pts = [[-1, -1, -1], [-10, -20, -30], [-11, -1, -1], [9, -20, -30], [10, -1, -1], [0, 0, -1], [0, -1, 0]]
    assert r.ptquery(pts) == [True, True, False, True, False, False, False]


def test_mask_errors(roi):
    roi.post(R1_SPANS)
    assert roi.call("GET", "mask/0_1/100_100/0_0_0").status_code == 400
    assert roi.call("GET", "mask/0_1_2/100_100_100").status_code == 400
    assert roi.call("GET", "mask/0_1_2/100_0_100/0_0_0").status_code == 400
    assert roi.call("POST", "mask/0_1_2/10_10_10/0_0_0").status_code == 405


def test_mask_negative_offset(server):
    uuid = server.new_repo("roi")
    server.new_instance(uuid, "roi", "r", BlockSize="8,8,8")
    spans = [[-1, -1, -2, -1], [0, 0, 0, 0], [-2, 1, -1, 1]]
    ROI(server, uuid, "r").post(spans)
    r = requests.get(server.api(f"node/{uuid}/r/mask/0_1_2/30_30_30/-17_-15_-20"), timeout=TIMEOUT)
    assert r.status_code == 200
    got = np.frombuffer(r.content, np.uint8).reshape(30, 30, 30)
    np.testing.assert_array_equal(got, brute_mask(spans, (-17, -15, -20), (30, 30, 30), (8, 8, 8)))


def test_partition_errors_and_empty(roi):
    assert roi.call("GET", "partition").status_code == 400
    assert "batchsize" in roi.call("GET", "partition?batchsize=").text
    assert roi.call("GET", "partition?batchsize=0").status_code == 400
    assert roi.call("POST", "partition?batchsize=4").status_code == 405
    body = roi.call("GET", "partition?batchsize=4").json()
    assert body["NumSubvolumes"] == 0 and body["Subvolumes"] == []


def test_partition_optimized_with_holes(roi):
    # columns cut at gaps: the part before a gap extends the previous subvolume, whose MaxPoint
    # becomes the first voxel of its last chunk (DVID's quirk)
    roi.post([[0, 0, 0, 5], [0, 0, 8, 9]])
    body = roi.call("GET", "partition?batchsize=4&optimized=on").json()
    assert body["NumSubvolumes"] == 1
    (sub,) = body["Subvolumes"]
    assert sub["MinChunk"] == [0, 0, 0] and sub["MaxChunk"] == [9, 4, 3]
    assert sub["MaxPoint"] == [9 * 32, 4 * 32, 3 * 32]
    assert sub["ActiveBlocks"] == 8 and sub["TotalBlocks"] == 100 + 20 + 40
    assert body["NumActiveBlocks"] == 8 and body["NumTotalBlocks"] == 160
    # a gap in the very first column: DVID would index a subvolume that does not exist; we start one
    roi.post([[0, 0, 0, 3], [0, 0, 8, 9], [0, 0, 12, 13]])
    body = roi.call("GET", "partition?batchsize=4&optimized=on").json()
    assert [s["ActiveBlocks"] for s in body["Subvolumes"]] == [8]
    assert body["Subvolumes"][0]["MaxChunk"] == [13, 4, 3]


def test_help_and_info(roi):
    r = roi.call("GET", "help")
    assert r.status_code == 200 and "ptquery" in r.text and "partition" in r.text
    info = roi.call("GET", "info").json()
    assert info["Extended"] == {"BlockSize": [32, 32, 32], "MinZ": 2147483647, "MaxZ": -2147483648}
    roi.post(R1_SPANS)
    assert roi.call("GET", "info").json()["Extended"]["MinZ"] == 100
    assert roi.call("GET", "info").json()["Extended"]["MaxZ"] == 103
    r = requests.get(roi.server.api("help/roi"), timeout=TIMEOUT)
    assert r.status_code == 200


def test_unversioned_roi(server):
    uuid = server.new_repo("roi")
    server.new_instance(uuid, "roi", "r", Versioned="false")
    r = ROI(server, uuid, "r")
    server.commit(uuid)
    child = server.newversion(uuid)
    r.post([[1, 1, 1, 1]], child)
    assert r.get(uuid) == [[1, 1, 1, 1]]
    r.post([[2, 2, 2, 2]], uuid)  # committed, but unversioned instances take writes anywhere
    assert r.get(child) == [[2, 2, 2, 2]]


# ---- ROI masking of image data ---------------------------------------------------------------


def _vol_url(server, uuid, name, size, offset, query=""):
    s = "_".join(map(str, size))
    o = "_".join(map(str, offset))
    return server.api(f"node/{uuid}/{name}/raw/0_1_2/{s}/{o}{query}")


@pytest.fixture
def masked_repo(server):
    uuid = server.new_repo("mask")
    server.new_instance(uuid, "uint8blk", "gray")  # 32^3 blocks
    server.new_instance(uuid, "labelblk", "seg", BlockSize="32,32,32")
    server.new_instance(uuid, "roi", "r")
    server.new_instance(uuid, "roi", "r64", BlockSize="64,64,64")
    spans = [[0, 0, 0, 0], [0, 1, 1, 2], [1, 1, 0, 1], [2, 0, 2, 2]]
    ROI(server, uuid, "r").post(spans)
    return uuid, spans


def _block_inside_mask(spans, size, bs=32):
    blocks = {(x, y, z) for z, y, x0, x1 in spans for x in range(x0, x1 + 1)}
    nx, ny, nz = size
    m = np.zeros((nz, ny, nx), bool)
    for z in range(nz // bs):
        for y in range(ny // bs):
            for x in range(nx // bs):
                if (x, y, z) in blocks:
                    m[z * bs : (z + 1) * bs, y * bs : (y + 1) * bs, x * bs : (x + 1) * bs] = True
    return m


@pytest.mark.parametrize("name,dtype", [("gray", np.uint8), ("seg", np.dtype("<u8"))])
def test_get_masked_by_roi(server, masked_repo, name, dtype):
    uuid, spans = masked_repo
    size = (96, 64, 96)
    rng = np.random.default_rng(1)
    vol = rng.integers(1, 250, size=(96, 64, 96)).astype(dtype)
    r = requests.post(_vol_url(server, uuid, name, size, (0, 0, 0)), data=vol.tobytes(), timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    r = requests.get(_vol_url(server, uuid, name, size, (0, 0, 0), "?roi=r"), timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    got = np.frombuffer(r.content, dtype).reshape(vol.shape)
    inside = _block_inside_mask(spans, size)
    np.testing.assert_array_equal(got, np.where(inside, vol, 0))
    # an unaligned sub-box
    off, sub = (10, 20, 30), (70, 40, 50)
    r = requests.get(_vol_url(server, uuid, name, sub, off, "?roi=r"), timeout=TIMEOUT)
    got = np.frombuffer(r.content, dtype).reshape(50, 40, 70)
    want = np.where(inside, vol, 0)[30:80, 20:60, 10:80]
    np.testing.assert_array_equal(got, want)
    # without roi the data is all there
    r = requests.get(_vol_url(server, uuid, name, size, (0, 0, 0)), timeout=TIMEOUT)
    np.testing.assert_array_equal(np.frombuffer(r.content, dtype).reshape(vol.shape), vol)


def test_get_masked_attenuation_and_slices(server, masked_repo):
    uuid, spans = masked_repo
    size = (96, 64, 96)
    vol = np.full((96, 64, 96), 200, np.uint8)
    requests.post(_vol_url(server, uuid, "gray", size, (0, 0, 0)), data=vol.tobytes(), timeout=TIMEOUT)
    r = requests.get(_vol_url(server, uuid, "gray", size, (0, 0, 0), "?roi=r&attenuation=2"), timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    got = np.frombuffer(r.content, np.uint8).reshape(vol.shape)
    inside = _block_inside_mask(spans, size)
    np.testing.assert_array_equal(got, np.where(inside, 200, 50))
    for att in ("0", "8", "x"):
        r = requests.get(_vol_url(server, uuid, "gray", size, (0, 0, 0), f"?roi=r&attenuation={att}"))
        assert r.status_code == 400, r.text
    r = requests.get(_vol_url(server, uuid, "seg", size, (0, 0, 0), "?roi=r&attenuation=2"), timeout=TIMEOUT)
    assert r.status_code == 400
    # a 2-D slice is masked too (PNG)
    import io

    from PIL import Image

    url = server.api(f"node/{uuid}/gray/raw/0_1/96_64/0_0_40?roi=r")
    r = requests.get(url, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    img = np.asarray(Image.open(io.BytesIO(r.content)))
    np.testing.assert_array_equal(img, np.where(inside[40], 200, 0))


def test_roi_mask_errors(server, masked_repo):
    uuid, _ = masked_repo
    size = (32, 32, 32)
    assert requests.get(_vol_url(server, uuid, "gray", size, (0, 0, 0), "?roi=nope")).status_code == 400
    r = requests.get(_vol_url(server, uuid, "gray", size, (0, 0, 0), "?roi=r64"), timeout=TIMEOUT)
    assert r.status_code == 400 and "BlockSize" in r.text
    r = requests.get(_vol_url(server, uuid, "gray", size, (0, 0, 0), "?roi=seg"), timeout=TIMEOUT)
    assert r.status_code == 400 and "not roi" in r.text


@pytest.mark.parametrize("name,dtype", [("gray", np.uint8), ("seg", np.dtype("<u8"))])
def test_post_masked_by_roi_writes_only_inside_blocks(server, masked_repo, name, dtype):
    uuid, spans = masked_repo
    size = (96, 64, 96)
    first = np.full((96, 64, 96), 7, dtype)
    r = requests.post(_vol_url(server, uuid, name, size, (0, 0, 0)), data=first.tobytes(), timeout=TIMEOUT)
    assert r.status_code == 200
    second = np.full((96, 64, 96), 9, dtype)
    r = requests.post(
        _vol_url(server, uuid, name, size, (0, 0, 0), "?roi=r"), data=second.tobytes(), timeout=TIMEOUT
    )
    assert r.status_code == 200, r.text
    r = requests.get(_vol_url(server, uuid, name, size, (0, 0, 0)), timeout=TIMEOUT)
    got = np.frombuffer(r.content, dtype).reshape(first.shape)
    inside = _block_inside_mask(spans, size)
    np.testing.assert_array_equal(got, np.where(inside, 9, 7))
    # unaligned write with a roi: partial blocks inside are merged, outside untouched
    third = np.full((40, 40, 40), 3, dtype)
    r = requests.post(
        _vol_url(server, uuid, name, (40, 40, 40), (16, 16, 16), "?roi=r"),
        data=third.tobytes(),
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    r = requests.get(_vol_url(server, uuid, name, size, (0, 0, 0)), timeout=TIMEOUT)
    got = np.frombuffer(r.content, dtype).reshape(first.shape)
    want = np.where(inside, 9, 7).astype(dtype)
    region = np.zeros(first.shape, bool)
    region[16:56, 16:56, 16:56] = True
    want[region & inside] = 3
    np.testing.assert_array_equal(got, want)


def test_post_masked_by_roi_into_fresh_volume(server, masked_repo):
    """Blocks outside the ROI are not written at all: they stay missing (background)."""
    uuid, spans = masked_repo
    size = (96, 64, 96)
    vol = np.full((96, 64, 96), 5, np.uint8)
    r = requests.post(_vol_url(server, uuid, "gray", size, (0, 0, 0), "?roi=r"), data=vol.tobytes())
    assert r.status_code == 200, r.text
    r = requests.get(server.api(f"node/{uuid}/gray/subvolblocks/96_64_96/0_0_0"), timeout=TIMEOUT)
    coords = []
    buf = r.content
    pos = 0
    while pos < len(buf):
        x, y, z, n = struct.unpack_from("<iiii", buf, pos)
        coords.append([z, y, x, x])
        pos += 16 + n
    blocks = sorted((z, y, x) for z, y, x0, x1 in spans for x in range(x0, x1 + 1))
    assert sorted((c[0], c[1], c[2]) for c in coords) == blocks
