"""labelblk over real HTTP, with the real FIB-19 and CX segmentations from DVID's tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import struct

import lz4.block
import numpy as np
import pytest
import requests
from PIL import Image

from tests.shared_data import DATA

TIMEOUT = 30


def load(name: str) -> np.ndarray:
    path = DATA / name
    assert path.exists(), f"missing test data {path} (see tests/data/README.md)"
    return np.frombuffer(gzip.open(path).read(), dtype="<u8").reshape(64, 64, 64)


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    """A 128x128x64 label volume: four real 64^3 segmentations side by side."""
    parts = [load(n) for n in ("fib19-64x64x64-sample1.dat.gz", "fib19-64x64x64-sample2.dat.gz",
                               "cx-64x64x64-sample1.dat.gz", "cx-64x64x64-sample2.dat.gz")]  # fmt: skip
    top = np.concatenate(parts[:2], axis=2)
    bottom = np.concatenate(parts[2:], axis=2)
    return np.ascontiguousarray(np.concatenate([top, bottom], axis=1))  # (64, 128, 128)


@pytest.fixture
def seg(server, volume):
    uuid = server.new_repo()
    server.new_instance(uuid, "labelblk", "seg")
    r = requests.post(
        server.api(f"node/{uuid}/seg/raw/0_1_2/128_128_64/0_0_0"), data=volume.tobytes(), timeout=TIMEOUT
    )
    assert r.status_code == 200, r.text
    return server, uuid


def get(server, uuid, path, **kw):
    return requests.get(server.api(f"node/{uuid}/seg/{path}"), timeout=TIMEOUT, **kw)


def test_info_is_dvids_labelblk(seg):
    server, uuid = seg
    info = get(server, uuid, "info").json()
    assert set(info) == {"Base", "Extended"}
    ext = info["Extended"]
    assert ext["Values"] == [{"DataType": "uint64", "Label": "labelblk"}]
    assert ext["Interpolable"] is False and ext["BlockSize"] == [64, 64, 64]
    assert ext["MinPoint"] == [0, 0, 0] and ext["MaxPoint"] == [127, 127, 63]
    assert info["Base"]["TypeName"] == "labelblk"
    assert info["Base"]["TypeURL"] == "github.com/janelia-flyem/dvid/datatype/labelblk"


def test_raw_round_trip_unaligned_and_compressed(seg, volume):
    server, uuid = seg
    full = get(server, uuid, "raw/0_1_2/128_128_64/0_0_0")
    assert full.content == volume.tobytes()
    sub = get(server, uuid, "raw/0_1_2/50_70_30/33_17_9").content
    assert sub == volume[9:39, 17:87, 33:83].tobytes()
    lz = get(server, uuid, "raw/0_1_2/64_64_64/64_0_0", params={"compression": "lz4"}).content
    assert lz4.block.decompress(lz, uncompressed_size=64**3 * 8) == volume[:, :64, 64:].tobytes()
    gz = get(server, uuid, "raw/0_1_2/64_64_64/0_64_0", params={"compression": "gzip"}).content
    assert gzip.decompress(gz) == volume[:, 64:, :64].tobytes()
    outside = get(server, uuid, "raw/0_1_2/8_8_8/500_500_500").content
    assert outside == bytes(8 * 512)


def test_label_and_labels(seg, volume):
    server, uuid = seg
    assert get(server, uuid, "label/100_70_40").json() == {"Label": int(volume[40, 70, 100])}
    assert get(server, uuid, "label/-5_0_0").json() == {"Label": 0}
    points = [[0, 0, 0], [127, 127, 63], [65, 3, 10], [1000, 0, 0]]
    body = json.dumps(points).encode()
    r = get(server, uuid, "labels", data=body)
    expected = [int(volume[z, y, x]) if x < 128 else 0 for x, y, z in points]
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.text == "[" + ",".join(map(str, expected)) + "]"
    ok = get(server, uuid, "labels", data=body, params={"hash": hashlib.md5(body).hexdigest()})
    assert ok.json() == expected
    bad_hash = get(server, uuid, "labels", data=body, params={"hash": "0" * 32})
    assert bad_hash.status_code == 400 and "MD5" in bad_hash.text
    for bad in (b"[[1,2]]", b'[["a",1,2]]', b"{}", b"[[1,2,true]]", b"not json"):
        r = get(server, uuid, "labels", data=bad)
        assert r.status_code == 400, bad
    assert get(server, uuid, "label/1_2").status_code == 400


def test_framed_blocks_stream(seg, volume):
    server, uuid = seg
    r = get(server, uuid, "blocks/128_64_64/0_64_0")
    data, seen = r.content, []
    while data:
        x, y, z, n = struct.unpack_from("<iiii", data)
        payload, data = data[16 : 16 + n], data[16 + n :]
        block = np.frombuffer(lz4.block.decompress(payload, uncompressed_size=64**3 * 8), "<u8")
        assert np.array_equal(
            block.reshape(64, 64, 64), volume[:, 64 * y : 64 * y + 64, 64 * x : 64 * x + 64]
        )
        seen.append((x, y, z))
    assert seen == [(0, 1, 0), (1, 1, 0)]
    raw = get(server, uuid, "blocks/64_64_64/64_0_0", params={"compression": "uncompressed"}).content
    assert struct.unpack_from("<iiii", raw) == (1, 0, 0, 64**3 * 8)
    assert raw[16:] == volume[:, :64, 64:].tobytes()
    assert get(server, uuid, "blocks/64_64_64/64_0_64").content == b""
    assert get(server, uuid, "blocks/60_64_64/0_0_0").status_code == 400
    assert get(server, uuid, "blocks/64_64_64/0_0_0", params={"compression": "zstd"}).status_code == 400


def test_google_and_googlegzip_output(seg, volume):
    import compressed_segmentation as cseg

    server, uuid = seg
    r = get(server, uuid, "raw/0_1_2/64_64_64/32_32_0", params={"compression": "googlegzip"})
    assert r.status_code == 200
    assert r.headers.get("Content-Encoding") == "gzip"  # requests already inflated it
    plain = get(server, uuid, "raw/0_1_2/64_64_64/32_32_0", params={"compression": "google"}).content
    assert plain == r.content
    assert struct.unpack_from("<I", plain)[0] == 1
    decoded = cseg.decompress(plain, (64, 64, 64), np.uint64, order="F")
    expected = volume[0:64, 32:96, 32:96].transpose(2, 1, 0)  # (x, y, z) in Fortran order
    assert np.array_equal(np.asarray(decoded).reshape(64, 64, 64, order="F"), expected)
    assert get(server, uuid, "raw/0_1_2/60_64_64/0_0_0", params={"compression": "google"}).status_code == 400


def test_slices_pseudocolor_and_png(seg, volume):
    server, uuid = seg
    png = Image.open(io.BytesIO(get(server, uuid, "pseudocolor/xy/128_128/0_0_20").content))
    assert png.size == (128, 128) and png.mode in ("RGBA", "RGB")
    pix = np.asarray(png.convert("RGBA"))
    labels = volume[20]
    # one color per label: equal labels have equal colors, and the alpha is opaque
    for label in np.unique(labels)[:5]:
        colors = pix[labels == label]
        assert (colors == colors[0]).all()
    assert (pix[..., 3] == 255).all()
    raw_png = get(server, uuid, "raw/xy/128_128/0_0_20")
    assert raw_png.headers["Content-Type"] == "image/png" and raw_png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert get(server, uuid, "pseudocolor/0_1_2/8_8_8/0_0_0").status_code == 400


def test_mode_pyramid_and_scale_reads(seg, volume):
    from dvid.datatype.common.labels import downsample_labels_2x

    server, uuid = seg
    r = requests.post(server.api(f"node/{uuid}/seg/pyramid?levels=1"), timeout=TIMEOUT)
    assert r.json() == {"levels": 1}
    half = get(server, uuid, "raw/0_1_2/64_64_32/0_0_0", params={"scale": "1"}).content
    assert half == downsample_labels_2x(volume).tobytes()
    info = requests.get(server.api(f"repo/{uuid}/info"), timeout=TIMEOUT).json()["DataInstances"]
    assert info["seg_1"]["Base"]["TypeName"] == "labelblk"


def test_versioned_edits_touch_only_their_blocks(seg, volume):
    server, uuid = seg
    server.commit(uuid)
    child = server.newversion(uuid)
    patch = np.full((8, 8, 8), 7, dtype="<u8")
    r = requests.post(
        server.api(f"node/{child}/seg/raw/0_1_2/8_8_8/70_70_10"), data=patch.tobytes(), timeout=TIMEOUT
    )
    assert r.status_code == 200
    assert get(server, child, "label/72_72_12").json() == {"Label": 7}
    assert get(server, uuid, "label/72_72_12").json() == {"Label": int(volume[12, 72, 72])}
    assert get(server, child, "raw/0_1_2/64_64_64/0_0_0").content == volume[:, :64, :64].tobytes()


def test_bad_bodies_leave_data_intact(seg, volume):
    server, uuid = seg
    path = "raw/0_1_2/64_64_64/0_0_0"
    assert (
        requests.post(server.api(f"node/{uuid}/seg/{path}"), data=b"\x00" * 100, timeout=TIMEOUT).status_code
        == 400
    )
    bad_lz4 = requests.post(
        server.api(f"node/{uuid}/seg/{path}?compression=lz4"), data=b"junk", timeout=TIMEOUT
    )
    assert bad_lz4.status_code == 400
    assert get(server, uuid, path).content == volume[:, :64, :64].tobytes()
