"""labelmap over real HTTP: supervoxel volumes, the mapping, label indexes, block streams, the
pyramid and the label counters, with DVID's real segmentations and compressed Blocks."""

from __future__ import annotations

import gzip
import struct

import lz4.block
import numpy as np
import pytest
import requests

from dvid.datatype.labelmap import codec, proto
from dvid.datatype.labelmap.labelindex import LabelIndex, unpack_block_keys
from tests.shared_data import DATA

TIMEOUT = 30


def load(name: str) -> np.ndarray:
    return np.frombuffer(gzip.decompress((DATA / name).read_bytes()), dtype="<u8").reshape(64, 64, 64)


def dvid_block() -> bytes:
    """DVID's own compressed label Block of fib19 sample 1 (22,512 bytes)."""
    return gzip.decompress((DATA / "fib19-64x64x64-sample1-block.dat.gz").read_bytes())


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    """(64, 128, 128): four real 64^3 segmentations side by side in x and y."""
    parts = [load(n) for n in ("fib19-64x64x64-sample1.dat.gz", "fib19-64x64x64-sample2.dat.gz",
                               "cx-64x64x64-sample1.dat.gz", "cx-64x64x64-sample2.dat.gz")]  # fmt: skip
    top = np.concatenate(parts[:2], axis=2)
    bottom = np.concatenate(parts[2:], axis=2)
    return np.ascontiguousarray(np.concatenate([top, bottom], axis=1))


class Client:
    def __init__(self, server, uuid: str, name: str = "seg") -> None:
        self.server, self.uuid, self.name = server, uuid, name

    def url(self, path: str, uuid: str | None = None) -> str:
        return self.server.api(f"node/{uuid or self.uuid}/{self.name}/{path}")

    def get(self, path: str, uuid: str | None = None, **kw) -> requests.Response:
        return requests.get(self.url(path, uuid), timeout=TIMEOUT, **kw)

    def post(self, path: str, uuid: str | None = None, **kw) -> requests.Response:
        return requests.post(self.url(path, uuid), timeout=TIMEOUT, **kw)

    def head_status(self, path: str, uuid: str | None = None, **kw) -> int:
        return requests.head(self.url(path, uuid), timeout=TIMEOUT, **kw).status_code

    def ok(self, method: str, path: str, uuid: str | None = None, **kw) -> requests.Response:
        r = requests.request(method, self.url(path, uuid), timeout=TIMEOUT, **kw)
        assert r.status_code == 200, (path, r.status_code, r.text)
        return r


@pytest.fixture
def lm(server, volume) -> Client:
    uuid = server.new_repo()
    server.new_instance(uuid, "labelmap", "seg", MaxDownresLevel="2")
    c = Client(server, uuid)
    c.ok("POST", "raw/0_1_2/128_128_64/0_0_0", data=volume.tobytes())
    return c


def framed(coord, payload: bytes) -> bytes:
    return struct.pack("<iiiI", *coord, len(payload)) + payload


def read_frames(body: bytes) -> dict[tuple[int, int, int], bytes]:
    out, pos = {}, 0
    while pos < len(body):
        bx, by, bz, n = struct.unpack_from("<iiii", body, pos)
        out[(bx, by, bz)] = body[pos + 16 : pos + 16 + n]
        pos += 16 + n
    return out


def test_info_names_labelmap_and_its_settings(lm):
    info = lm.get("info").json()
    assert info["Base"]["TypeName"] == "labelmap"
    assert info["Base"]["Compression"].startswith("gzip compression")
    ext = info["Extended"]
    assert ext["Values"] == [{"DataType": "uint64", "Label": "labelmap"}]
    assert ext["BlockSize"] == [64, 64, 64] and ext["MaxDownresLevel"] == 2 and ext["IndexedLabels"] is True
    assert info["Extents"] == {"MinPoint": [0, 0, 0], "MaxPoint": [127, 127, 63]}


def test_raw_round_trip_as_supervoxels_and_unmapped_bodies(lm, volume):
    assert lm.get("raw/0_1_2/128_128_64/0_0_0").content == volume.tobytes()
    sub = lm.get("raw/0_1_2/50_70_30/33_17_9", params={"supervoxels": "true"}).content
    assert sub == volume[9:39, 17:87, 33:83].tobytes()
    lz = lm.get("raw/0_1_2/64_64_64/64_0_0", params={"compression": "lz4"}).content
    assert lz4.block.decompress(lz, uncompressed_size=64**3 * 8) == volume[:, :64, 64:].tobytes()
    assert lm.get("raw/0_1_2/8_8_8/500_500_500").content == bytes(8 * 512)


def test_stored_blocks_are_dvids_compressed_blocks(lm, volume):
    frames = read_frames(lm.get("blocks/128_128_64/0_0_0", params={"compression": "blocks"}).content)
    assert set(frames) == {(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0)}
    for (bx, by, _), payload in frames.items():
        block = codec.decode_block(gzip.decompress(payload))
        assert np.array_equal(block, volume[:, by * 64 : by * 64 + 64, bx * 64 : bx * 64 + 64])
    lz = read_frames(lm.get("blocks/64_64_64/64_64_0").content)
    assert lz4.block.decompress(lz[(1, 1, 0)], uncompressed_size=8 * 64**3) == volume[:, 64:, 64:].tobytes()
    spec = read_frames(lm.get("specificblocks", params={"blocks": "1,0,0,9,9,9"}).content)
    assert list(spec) == [(1, 0, 0)]
    assert np.array_equal(codec.decode_block(gzip.decompress(spec[(1, 0, 0)])), volume[:, :64, 64:])


def test_post_blocks_stores_dvids_real_block_and_indexes_it(server):
    uuid = server.new_repo()
    server.new_instance(uuid, "labelmap", "seg")
    c = Client(server, uuid)
    block = dvid_block()
    payload = gzip.compress(block)
    c.ok("POST", "blocks", data=framed((2, 1, 0), payload))
    sample1 = load("fib19-64x64x64-sample1.dat.gz")
    assert c.get("raw/0_1_2/64_64_64/128_64_0").content == sample1.tobytes()
    stored = read_frames(c.get("specificblocks", params={"blocks": "2,1,0"}).content)
    assert stored[(2, 1, 0)] == payload  # gzip bytes passed through untouched
    labels, counts = np.unique(sample1, return_counts=True)
    sizes = c.get("sizes", data=str(labels.tolist())).json()
    assert sizes == counts.tolist()
    assert c.get("maxlabel").json() == {"maxlabel": int(labels.max())}
    # the worst-case stream of DVID's tests: one block of uniformly random labels 0-9
    c.ok("POST", "blocks", data=(DATA / "stream_1block.dat").read_bytes())
    random_block = c.get("raw/0_1_2/64_64_64/0_0_0").content
    values = np.frombuffer(random_block, "<u8")
    assert set(np.unique(values).tolist()) == set(range(10))


def test_post_blocks_errors_store_nothing(server):
    uuid = server.new_repo()
    server.new_instance(uuid, "labelmap", "seg")
    c = Client(server, uuid)
    good = gzip.compress(dvid_block())
    for body, words in (
        (b"", "at least one block"),
        (framed((0, 0, 0), b""), "zero-length"),
        (framed((0, 0, 0), b"not gzip"), "gzip"),
        (framed((0, 0, 0), gzip.compress(b"\x01\x00")), "compressed label block"),
        (framed((0, 0, 0), gzip.compress(codec.solid_block(5, (32, 32, 32)))), "[32, 32, 32]"),
        (framed((0, 0, 0), good)[:-10], "ends inside a record"),
    ):
        r = c.post("blocks", data=body)
        assert r.status_code == 400 and words in r.text, (words, r.text)
    assert c.get("raw/0_1_2/64_64_64/0_0_0").content == bytes(8 * 64**3)
    assert c.get("blocks/64_64_64/0_0_0").content == b""


def test_label_indexes_count_every_voxel(lm, volume):
    labels, counts = np.unique(volume, return_counts=True)
    assert lm.get("sizes", data=str(labels.tolist())).json() == counts.tolist()
    label = int(labels[3])
    assert lm.get(f"size/{label}").json() == {"voxels": int(counts[3])}
    assert lm.get(f"supervoxels/{label}").json() == [label]
    index = LabelIndex.from_bytes(lm.get(f"index/{label}").content)
    zs, ys, xs = np.nonzero(volume == label)
    expected_blocks = {(int(x) // 64, int(y) // 64, int(z) // 64) for x, y, z in zip(xs, ys, zs, strict=True)}
    got_blocks = {tuple(map(int, b)) for b in unpack_block_keys(np.unique(index.blocks))}
    assert got_blocks == expected_blocks
    assert index.num_voxels() == counts[3]
    listed = np.frombuffer(lm.get("listlabels").content, "<u8")
    assert listed.tolist() == labels.tolist()
    pairs = np.frombuffer(
        lm.get("listlabels", params={"start": str(label), "number": "2", "sizes": "true"}).content, "<u8"
    )
    assert pairs.tolist() == [int(labels[3]), int(counts[3]), int(labels[4]), int(counts[4])]
    assert lm.get("existing-labels").json() == labels.tolist()
    assert lm.get("size/1").status_code == 404


def test_rewriting_voxels_moves_counts(lm, volume):
    labels = np.unique(volume)
    lm.ok("POST", "raw/0_1_2/64_64_64/0_0_0", data=np.full((64, 64, 64), 7, "<u8").tobytes())
    expected = np.array(volume)
    expected[:, :64, :64] = 7
    new_labels, new_counts = np.unique(expected, return_counts=True)
    got = lm.get("sizes", data=str([*labels.tolist(), 7])).json()
    want = dict(zip(new_labels.tolist(), new_counts.tolist(), strict=True))
    assert got == [want.get(int(lab), 0) for lab in [*labels.tolist(), 7]]


def test_mapping_applies_at_read_time(lm, volume):
    a, b = (int(v) for v in np.unique(volume[:, :64, :64])[:2])
    ops = proto.MappingOps()
    op = ops.mappings.add()
    op.mapped = a
    op.original.extend([b])
    lm.ok("POST", "mappings", data=ops.SerializeToString())
    bodies = np.where(volume == b, a, volume)
    assert lm.get("raw/0_1_2/128_128_64/0_0_0").content == bodies.tobytes()
    assert lm.get("raw/0_1_2/128_128_64/0_0_0", params={"supervoxels": "true"}).content == volume.tobytes()
    assert lm.get("mapping", data=f"[{a}, {b}, 123456]", params={"nolookup": "true"}).json() == [a, a, 123456]
    assert lm.get("mappings").text == f"{b} {a}\n"
    binary = np.frombuffer(lm.get("mappings", params={"format": "binary"}).content, "<u8")
    assert binary.tolist() == [b, a]
    z, y, x = (int(v[0]) for v in np.nonzero(volume == b))
    assert lm.get(f"label/{x}_{y}_{z}").json() == {"Label": a}
    assert lm.get(f"label/{x}_{y}_{z}", params={"supervoxels": "true"}).json() == {"Label": b}
    blocks = read_frames(lm.get("blocks/64_64_64/0_0_0", params={"compression": "blocks"}).content)
    assert np.array_equal(codec.decode_block(gzip.decompress(blocks[(0, 0, 0)])), bodies[:, :64, :64])


def test_edits_at_a_child_are_invisible_at_its_parent(lm, volume):
    lm.server.commit(lm.uuid)
    child = lm.server.newversion(lm.uuid)
    lm.ok("POST", "raw/0_1_2/64_64_64/0_0_0", uuid=child, data=np.full((64, 64, 64), 9, "<u8").tobytes())
    assert lm.get("raw/0_1_2/64_64_64/0_0_0").content == volume[:, :64, :64].tobytes()
    assert np.all(np.frombuffer(lm.get("raw/0_1_2/64_64_64/0_0_0", uuid=child).content, "<u8") == 9)
    assert lm.get("size/9").status_code == 404
    assert lm.get("size/9", uuid=child).json() == {"voxels": 64**3}
    assert lm.post("raw/0_1_2/64_64_64/0_0_0", data=bytes(8 * 64**3)).status_code == 409


def test_pyramid_scales_follow_writes(lm, volume):
    from dvid.datatype.common.labels import downsample_labels_2x

    level1 = downsample_labels_2x(volume)
    got = lm.get("raw/0_1_2/64_64_32/0_0_0", params={"scale": "1"}).content
    assert got == level1.tobytes()
    level2 = downsample_labels_2x(level1)
    got2 = lm.get("raw/0_1_2/32_32_16/0_0_0", params={"scale": "2"}).content
    assert got2 == level2.tobytes()
    lm.ok("POST", "raw/0_1_2/64_64_64/64_64_0", data=np.full((64, 64, 64), 3, "<u8").tobytes())
    changed = np.array(volume)
    changed[:, 64:, 64:] = 3
    got = lm.get("raw/0_1_2/64_64_32/0_0_0", params={"scale": "1"}).content
    assert got == downsample_labels_2x(changed).tobytes()


def test_label_counters(lm, volume):
    top = int(volume.max())
    assert lm.get("maxlabel").json() == {"maxlabel": top}
    assert lm.get("nextlabel").json() == {"nextlabel": top + 1}
    assert lm.post("nextlabel/5").json() == {"start": top + 1, "end": top + 5}
    assert lm.get("nextlabel").json() == {"nextlabel": top + 6}
    lm.ok("POST", "set-nextlabel/1000", params={"ceiling": "1002"})
    assert lm.post("nextlabel/2").json() == {"start": 1000, "end": 1001}
    r = lm.post("nextlabel/2")
    assert r.status_code == 400 and "ceiling" in r.text
    lm.ok("POST", "set-nextlabel/0")
    assert lm.get("nextlabel").json() == {"nextlabel": top + 6}
    for bad in ("nextlabel/0", "nextlabel/x", "maxlabel/0", f"maxlabel/{2**48 + 1}"):
        assert lm.post(bad).status_code == 400, bad


def test_index_and_indices_round_trip(lm, volume):
    labels = np.unique(volume)[:3].tolist()
    msg = proto.LabelIndices.FromString(lm.get("indices", data=str([*labels, 77])).content)
    assert [m.label for m in msg.indices] == [*labels, 77]
    assert len(msg.indices[3].blocks) == 0
    raw = lm.get(f"index/{labels[0]}").content
    lm.ok("POST", "index/424242", data=raw)
    assert lm.get("size/424242").json() == lm.get(f"size/{labels[0]}").json()
    lm.ok("POST", "index/424242", data=b"")
    assert lm.get("index/424242").status_code == 404
    framed_out = lm.get("indices-compressed", data=f"[{labels[0]}, 99]").content
    n, label = struct.unpack_from("<QQ", framed_out, 0)
    assert label == labels[0] and n > 0
    assert struct.unpack_from("<QQ", framed_out, 16 + n) == (0, 99)
    meta = lm.get(f"index/{labels[0]}", params={"metadata-only": "true"}).json()
    assert meta["num_voxels"] == int(np.count_nonzero(volume == labels[0]))
    assert lm.post("index/5", data=b"\xff\xff").status_code == 400


def test_unindexed_instances_refuse_index_endpoints(server):
    uuid = server.new_repo()
    server.new_instance(uuid, "labelmap", "seg", IndexedLabels="false")
    c = Client(server, uuid)
    c.ok("POST", "raw/0_1_2/64_64_64/0_0_0", data=np.full((64, 64, 64), 4, "<u8").tobytes())
    for path in ("size/4", "supervoxels/4", "listlabels", "index/4"):
        r = c.get(path)
        assert r.status_code == 400 and "IndexedLabels" in r.text, path
    assert c.get("label/1_1_1").json() == {"Label": 4}


def test_bad_requests(lm):
    for path, params in (
        ("raw/0_1_2/64_64_64/0_0_0", {"scale": "256"}),
        ("blocks/64_64_64/1_0_0", {}),
        ("blocks/64_64_64/0_0_0", {"compression": "jpeg"}),
        ("size/abc", {}),
        ("size/0", {}),
        ("supervoxels/18446744073709551616", {}),
    ):
        r = lm.get(path, params=params)
        assert r.status_code == 400, (path, r.status_code, r.text)
    assert lm.get("sizes", data=b"[1, -2]").status_code == 400
    assert lm.get("mapping", data=b"{").status_code == 400
    assert lm.post("mappings", data=b"\x0a\xff").status_code == 400
    zero = proto.MappingOps()
    zero.mappings.add(mapped=5, original=[0])
    assert lm.post("mappings", data=zero.SerializeToString()).status_code == 400
    assert lm.post("blocks", params={"scale": "1", "downres": "true"}, data=b"x").status_code == 400


def test_writes_over_unindexed_blocks_keep_indexes_sane(server):
    """Blocks ingested without indexing leave indexes behind; a later write must neither fail nor
    leave negative counts (found by the fuzzer: a 500)."""
    uuid = server.new_repo()
    server.new_instance(uuid, "labelmap", "seg")
    c = Client(server, uuid)
    c.ok("POST", "raw/0_1_2/64_64_64/0_0_0", data=np.full((64, 64, 64), 1, "<u8").tobytes())
    other = np.full((64, 64, 64), 2, "<u8")
    c.ok("POST", "ingest-supervoxels", data=framed((0, 0, 0), gzip.compress(codec.encode_block(other))))
    assert c.get("size/1").json() == {"voxels": 64**3}  # stale, as DVID: ingest does not index
    c.ok("POST", "raw/0_1_2/64_64_64/0_0_0", data=np.full((64, 64, 64), 3, "<u8").tobytes())
    assert c.get("sizes", data="[1, 2, 3]").json() == [64**3, 0, 64**3]


def test_roi_masks_reads_and_writes(lm, volume):
    """?roi=: blocks outside the ROI read as 0 (bodies and supervoxels alike), and a raw POST writes
    (and indexes) only the blocks inside it."""
    lm.server.new_instance(lm.uuid, "roi", "inside", BlockSize="64,64,64")
    spans = [[0, 0, 0, 0], [0, 1, 1, 1]]  # blocks (0, 0, 0) and (1, 1, 0): z, y, x0, x1
    r = requests.post(lm.server.api(f"node/{lm.uuid}/inside/roi"), json=spans, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    inside = np.zeros(volume.shape, bool)
    inside[:, :64, :64] = inside[:, 64:, 64:] = True
    a, b = (int(v) for v in np.unique(volume[:, 64:, 64:])[1:3])
    lm.ok("POST", "merge", data=f"[{a}, {b}]")
    bodies = np.where(volume == b, a, volume)
    got = lm.get("raw/0_1_2/128_128_64/0_0_0", params={"roi": "inside"}).content
    assert got == np.where(inside, bodies, 0).astype("<u8").tobytes()
    got = lm.get("raw/0_1_2/128_128_64/0_0_0", params={"roi": "inside", "supervoxels": "true"}).content
    assert got == np.where(inside, volume, 0).astype("<u8").tobytes()
    sub = lm.get("raw/0_1_2/70_50_20/30_40_10", params={"roi": "inside"}).content
    assert sub == np.where(inside, bodies, 0)[10:30, 40:90, 30:100].astype("<u8").tobytes()
    assert lm.get("raw/0_1_2/64_64_64/0_0_0", params={"roi": "inside", "scale": "1"}).status_code == 400
    # a write through the ROI: the blocks inside take the new label, the others keep theirs
    before = {int(v): int(n) for v, n in zip(*np.unique(volume, return_counts=True), strict=True)}
    lm.ok(
        "POST",
        "raw/0_1_2/128_128_64/0_0_0",
        params={"roi": "inside"},
        data=np.full(volume.shape, 9, "<u8").tobytes(),
    )
    after = np.where(inside, 9, volume)
    assert lm.get("raw/0_1_2/128_128_64/0_0_0", params={"supervoxels": "true"}).content == after.tobytes()
    assert lm.get("size/9").json() == {"voxels": 2 * 64**3}
    labels, counts = np.unique(after, return_counts=True)
    want = dict(zip(labels.tolist(), counts.tolist(), strict=True))
    listed = [*before, 9]
    sizes = lm.get("sizes", data=str(listed), params={"supervoxels": "true"}).json()
    assert sizes == [want.get(label, 0) for label in listed]
    # an unaligned write: only the part inside blocks of the ROI lands
    lm.ok(
        "POST",
        "raw/0_1_2/40_40_40/40_40_10",
        params={"roi": "inside"},
        data=np.full((40, 40, 40), 11, "<u8").tobytes(),
    )
    after[10:50, 40:80, 40:80] = np.where(inside[10:50, 40:80, 40:80], 11, after[10:50, 40:80, 40:80])
    assert lm.get("raw/0_1_2/128_128_64/0_0_0", params={"supervoxels": "true"}).content == after.tobytes()
    assert lm.get("size/11").json() == {"voxels": int(np.count_nonzero(after == 11))}
    assert lm.get("size/9").json() == {"voxels": int(np.count_nonzero(after == 9))}
    # the pyramid follows what was written
    from dvid.datatype.common.labels import downsample_labels_2x

    assert lm.get("raw/0_1_2/64_64_32/0_0_0", params={"scale": "1", "supervoxels": "true"}).content == (
        downsample_labels_2x(after).tobytes()
    )


def test_google_chunks_of_one_block_equal_the_raw_reads(lm, volume):
    from tests.test_labelmap_codec import google_decode

    a, b = (int(v) for v in np.unique(volume[:, 64:, 64:])[:2])
    ops = proto.MappingOps()
    op = ops.mappings.add()
    op.mapped = a
    op.original.extend([b])
    lm.ok("POST", "mappings", data=ops.SerializeToString())
    cases = [
        ("64_64_64/64_64_0", {}),  # one block: transcoded from the stored Block
        ("64_64_64/64_64_0", {"supervoxels": "true"}),
        ("64_64_64/0_0_0", {"scale": "1"}),
        ("32_32_32/0_0_0", {"scale": "2"}),
        ("32_32_32/16_16_16", {}),  # not a block: the volume path
        ("64_64_64/64_0_0", {"roi": ""}),
        ("64_64_64/6400_0_0", {}),  # no block stored there
    ]
    for path, params in cases:
        raw = np.frombuffer(lm.ok("GET", f"raw/0_1_2/{path}", params=params).content, "<u8")
        nx, ny, nz = (int(v) for v in path.split("/")[0].split("_"))
        raw = raw.reshape(nz, ny, nx)
        r = requests.get(lm.url(f"raw/0_1_2/{path}"), params={**params, "compression": "googlegzip"},
                         timeout=TIMEOUT, stream=True)  # fmt: skip
        assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip", (path, r.text)
        assert np.array_equal(google_decode(gzip.decompress(r.raw.read()), raw.shape), raw), (path, params)
        plain = lm.ok("GET", f"raw/0_1_2/{path}", params={**params, "compression": "google"}).content
        assert np.array_equal(google_decode(plain, raw.shape), raw), (path, params)
    bodies = np.where(volume == b, a, volume)
    one = lm.ok("GET", "raw/0_1_2/64_64_64/64_64_0", params={"compression": "google"}).content
    assert np.array_equal(google_decode(one, (64, 64, 64)), bodies[:, 64:, 64:])
    assert b in volume[:, 64:, 64:] and b not in google_decode(one, (64, 64, 64))
    bad_scale = {"compression": "google", "scale": "x"}
    assert lm.get("raw/0_1_2/64_64_64/0_0_0", params=bad_scale).status_code == 400
