"""labelmap's sparse volumes over real HTTP, from the label index and blocks of DVID's real
segmentations: the rles, srles and blocks formats, bounds, scales, supervoxels, HEAD, coarse forms
and proximity."""

from __future__ import annotations

import gzip
import struct

import lz4.block
import numpy as np
import pytest

from dvid.datatype.common import rle
from dvid.datatype.labelmap import proto
from tests.test_labelmap import Client, volume  # noqa: F401  (the fixture)


@pytest.fixture
def lm(server, volume) -> Client:  # noqa: F811
    uuid = server.new_repo()
    server.new_instance(uuid, "labelmap", "seg", MaxDownresLevel="1")
    c = Client(server, uuid)
    c.ok("POST", "raw/0_1_2/128_128_64/0_0_0", data=volume.tobytes())
    return c


def voxels_of(runs: np.ndarray) -> set[tuple[int, int, int]]:
    out = set()
    for x, y, z, n in runs.tolist():
        out.update((x + i, y, z) for i in range(n))
    return out


def mask_voxels(mask: np.ndarray, offset=(0, 0, 0)) -> set[tuple[int, int, int]]:
    z, y, x = np.nonzero(mask)
    return {
        (int(a) + offset[0], int(b) + offset[1], int(c) + offset[2]) for a, b, c in zip(x, y, z, strict=True)
    }


def biggest(volume) -> int:  # noqa: F811
    labels, counts = np.unique(volume, return_counts=True)
    return int(labels[np.argmax(counts)])


def test_sparsevol_rles_match_the_voxels(lm, volume):  # noqa: F811
    label = biggest(volume)
    r = lm.get(f"sparsevol/{label}")
    assert r.status_code == 200
    assert r.content[:4] == bytes([0, 3, 0, 0]) and struct.unpack_from("<I", r.content, 4)[0] == 0
    runs = rle.decode_sparsevol(r.content)
    assert voxels_of(runs) == mask_voxels(volume == label)
    srles = lm.get(f"sparsevol/{label}", params={"format": "srles"}).content
    assert srles == r.content[12:]
    lz = lm.get(f"sparsevol/{label}", params={"compression": "lz4"}).content
    assert lz4.block.decompress(lz, uncompressed_size=len(r.content)) == r.content
    gz = lm.get(f"sparsevol/{label}", params={"compression": "gzip"}).content
    assert gzip.decompress(gz) == r.content


def test_sparsevol_bounds_exact_and_scale(lm, volume):  # noqa: F811
    label = biggest(volume)
    bounds = {"minx": "10", "maxx": "70", "miny": "5", "maxy": "100", "minz": "3", "maxz": "40"}
    runs = rle.decode_sparsevol(lm.get(f"sparsevol/{label}", params=bounds).content)
    box = np.zeros_like(volume, dtype=bool)
    box[3:41, 5:101, 10:71] = True
    assert voxels_of(runs) == mask_voxels((volume == label) & box)
    loose = rle.decode_sparsevol(lm.get(f"sparsevol/{label}", params={**bounds, "exact": "false"}).content)
    assert voxels_of(runs) < voxels_of(loose)
    from dvid.datatype.common.labels import downsample_labels_2x

    half = downsample_labels_2x(volume)
    scaled = rle.decode_sparsevol(lm.get(f"sparsevol/{label}", params={"scale": "1"}).content)
    assert voxels_of(scaled) == mask_voxels(half == label)


def test_sparsevol_of_a_body_covers_its_supervoxels(lm, volume):  # noqa: F811
    labels = np.unique(volume[:, :64, :64])
    a, b = int(labels[0]), int(labels[1])
    ops = proto.MappingOps()
    op = ops.mappings.add()
    op.mapped, op.original[:] = a, [b]
    lm.ok("POST", "mappings", data=ops.SerializeToString())
    lm.ok("POST", "index/" + str(a), data=_merged_index(lm, a, b))
    lm.ok("POST", "index/" + str(b), data=b"")
    body = rle.decode_sparsevol(lm.get(f"sparsevol/{a}").content)
    assert voxels_of(body) == mask_voxels((volume == a) | (volume == b))
    only_b = rle.decode_sparsevol(lm.get(f"sparsevol/{b}", params={"supervoxels": "true"}).content)
    assert voxels_of(only_b) == mask_voxels(volume == b)
    z, y, x = (int(v[0]) for v in np.nonzero(volume == b))
    by_point = rle.decode_sparsevol(lm.get(f"sparsevol-by-point/{x}_{y}_{z}").content)
    assert voxels_of(by_point) == voxels_of(body)


def _merged_index(c: Client, a: int, b: int) -> bytes:
    from dvid.datatype.labelmap.labelindex import LabelIndex

    ia = LabelIndex.from_bytes(c.get(f"index/{a}").content)
    ib = LabelIndex.from_bytes(c.get(f"index/{b}").content)
    return ia.merged(ib, label=a).to_bytes()


def test_head_and_missing(lm, volume):  # noqa: F811
    label = biggest(volume)
    assert lm.head_status(f"sparsevol/{label}") == 200
    assert lm.head_status("sparsevol/123") == 204
    far = {"minx": "1000", "maxx": "2000"}
    assert lm.head_status(f"sparsevol/{label}", params=far) == 204
    r = lm.get("sparsevol/123")
    assert r.status_code == 404 and r.content == b""
    assert lm.get(f"sparsevol/{label}", params={"format": "xml"}).status_code == 400
    assert lm.get("sparsevol-by-point/500_500_500").status_code == 404


def test_blocks_format(lm, volume):  # noqa: F811
    label = biggest(volume)
    body = lm.get(f"sparsevol/{label}", params={"format": "blocks"}).content
    gx, gy, gz, got_label = struct.unpack_from("<IIIQ", body, 0)
    assert (gx, gy, gz, got_label) == (8, 8, 8, label)
    pos, seen = 20, set()
    while pos < len(body):
        x0, y0, z0 = struct.unpack_from("<iii", body, pos)
        flag = body[pos + 12]
        pos += 13
        truth = volume[z0 : z0 + 64, y0 : y0 + 64, x0 : x0 + 64] == label
        if flag == 1:
            assert truth.all()
            continue
        assert flag == 2
        sub = truth.reshape(8, 8, 8, 8, 8, 8).transpose(0, 2, 4, 1, 3, 5).reshape(512, 512)
        for i in range(512):
            f = body[pos]
            pos += 1
            if f == 2:
                bits = np.unpackbits(np.frombuffer(body, np.uint8, 64, pos), bitorder="little").astype(bool)
                pos += 64
                assert np.array_equal(bits, sub[i])
            else:
                assert (f == 1 and sub[i].all()) or (f == 0 and not sub[i].any())
        seen.add((x0, y0, z0))
    assert seen == {
        (x * 64, y * 64, 0)
        for x in range(2)
        for y in range(2)
        if np.any(volume[:, y * 64 : y * 64 + 64, x * 64 : x * 64 + 64] == label)
    }


def test_coarse_forms_and_size(lm, volume):  # noqa: F811
    label = biggest(volume)
    blocks = {
        (x, y, 0)
        for x in range(2)
        for y in range(2)
        if np.any(volume[:, y * 64 : y * 64 + 64, x * 64 : x * 64 + 64] == label)
    }
    coarse = rle.decode_sparsevol(lm.get(f"sparsevol-coarse/{label}").content)
    assert voxels_of(coarse) == blocks
    assert lm.get("sparsevol-coarse/123").status_code == 404
    size = lm.get(f"sparsevol-size/{label}").json()
    assert size["voxels"] == int(np.count_nonzero(volume == label)) and size["numblocks"] == len(blocks)
    xs = [b[0] for b in blocks]
    assert size["minvoxel"][0] == min(xs) * 64 and size["maxvoxel"][0] == max(xs) * 64 + 63
    labels = np.unique(volume)
    stream = lm.get(f"sparsevols-coarse/{labels[0]}/{labels[2]}").content
    pos, got = 0, []
    while pos < len(stream):
        lab, n = struct.unpack_from("<Qi", stream, pos)
        spans = np.frombuffer(stream, "<i4", 4 * n, pos + 12).reshape(n, 4)
        got.append((lab, voxels_of(spans)))
        pos += 12 + 16 * n
    assert [g[0] for g in got] == labels[:3].tolist()
    for lab, cov in got:
        assert cov == {
            (x, y, 0)
            for x in range(2)
            for y in range(2)
            if np.any(volume[:, y * 64 : y * 64 + 64, x * 64 : x * 64 + 64] == lab)
        }


def test_runs_continue_across_block_edges(server):
    uuid = server.new_repo()
    server.new_instance(uuid, "labelmap", "seg")
    c = Client(server, uuid)
    vol = np.zeros((64, 64, 192), "<u8")
    vol[5, 7, 10:150] = 9
    vol[6, 7, 64:128] = 9
    c.ok("POST", "raw/0_1_2/192_64_64/0_0_0", data=vol.tobytes())
    runs = rle.decode_sparsevol(c.get("sparsevol/9").content)
    assert sorted(map(tuple, runs.tolist())) == [(10, 7, 5, 140), (64, 7, 6, 64)]


def test_proximity(server):
    uuid = server.new_repo()
    server.new_instance(uuid, "labelmap", "seg")
    c = Client(server, uuid)
    vol = np.zeros((64, 64, 64), "<u8")
    vol[10, 10, 10] = 1
    vol[10, 10, 15] = 2
    vol[13, 14, 10] = 3
    c.ok("POST", "raw/0_1_2/64_64_64/0_0_0", data=vol.tobytes())
    assert c.get("proximity/1,2").json() == [{"Block": [0, 0, 0], "Distance": 5}]
    got = c.get("proximity/1,2,3").json()
    assert got == [
        {"Block": [0, 0, 0], "Label": 2, "Distance": 5},
        {"Block": [0, 0, 0], "Label": 3, "Distance": 5},
    ]
    assert c.get("proximity/1,1").status_code == 400
    assert c.get("proximity/1").status_code == 400
