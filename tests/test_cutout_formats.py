"""Cutout formats (?format=npz|hdf5|tiff|blosc, or Accept) of 3-D raw GETs over a live server.

Each answer is opened with numpy, h5py, tifffile or blosc2 alone and compared byte for byte with
the raw read of the same box: every voxel type, labelblk and labelmap (bodies, supervoxels, a
scale) on DVID's real label volumes, roi masking; the errors (unknown format, 406, 413, format
with compression) and the Accept negotiation rules.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator

import blosc2
import h5py
import numpy as np
import pytest
import requests
import tifffile

from dvid.datatype.common import cutout
from dvid.datatype.common.voxels import VOXEL_FORMATS
from dvid.errors import NotAcceptable
from tests.serverutil import ServerThread
from tests.shared_data import DATA

TIMEOUT = 60
IMAGE_TYPES = {"uint8blk": "uint8", "uint16blk": "uint16", "uint32blk": "uint32", "uint64blk": "uint64",
               "float32blk": "float32", "rgba8blk": "rgba8"}  # fmt: skip
FORMATS = tuple(cutout.FORMATS)
#: The box every image type is read in: unaligned, partly outside what was written (background).
SIZE, OFFSET = (37, 29, 21), (-3, 5, 2)


def read(fmt: str, body: bytes) -> tuple[np.ndarray, dict]:
    """The array and metadata of a cutout file, opened with its format's own library only."""
    if fmt == "npz":
        with np.load(io.BytesIO(body)) as npz:  # allow_pickle stays False
            return npz["data"], {k: npz[k].tolist() for k in npz.files if k != "data"}
    if fmt == "hdf5":
        with h5py.File(io.BytesIO(body), "r") as f:
            attrs = {k: v.tolist() if hasattr(v, "tolist") else v for k, v in f["data"].attrs.items()}
            return f["data"][()], attrs
    if fmt == "tiff":
        with tifffile.TiffFile(io.BytesIO(body)) as tif:
            assert len(tif.pages) == tif.series[0].shape[0]  # one page per z
            meta = dict(tif.shaped_metadata[0])
        meta.pop("shape")
        return tifffile.imread(io.BytesIO(body)), meta
    assert fmt == "blosc"
    return blosc2.unpack_tensor(body), {}


def load_labels(name: str) -> np.ndarray:
    return np.frombuffer(gzip.decompress((DATA / name).read_bytes()), dtype="<u8").reshape(64, 64, 64)


class Node:
    def __init__(self, server: ServerThread, uuid: str) -> None:
        self.server, self.uuid = server, uuid

    def url(self, name: str, path: str) -> str:
        return self.server.api(f"node/{self.uuid}/{name}/{path}")

    def get(self, name: str, path: str, **kw) -> requests.Response:
        return requests.get(self.url(name, path), timeout=TIMEOUT, **kw)

    def ok(self, method: str, name: str, path: str, **kw) -> requests.Response:
        r = requests.request(method, self.url(name, path), timeout=TIMEOUT, **kw)
        assert r.status_code == 200, (name, path, r.status_code, r.text)
        return r


def box_path(size: tuple[int, int, int], offset: tuple[int, int, int]) -> str:
    return f"raw/0_1_2/{'_'.join(map(str, size))}/{'_'.join(map(str, offset))}"


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Iterator[Node]:
    """A repo holding a volume of every image type, a labelblk and a labelmap (two scales) of
    DVID's real segmentation, and a body merge that makes the labelmap's bodies differ from its
    supervoxels."""
    server = ServerThread(tmp_path_factory.mktemp("cutout") / "store").start()
    try:
        uuid = server.new_repo("cutout")
        n = Node(server, uuid)
        rng = np.random.default_rng(16)
        for type_name, kind in IMAGE_TYPES.items():
            server.new_instance(uuid, type_name, type_name, BlockSize="16,16,16", VoxelSize="4,5,6.5")
            fmt = VOXEL_FORMATS[kind]
            shape = fmt.array_shape((20, 30, 40))
            if kind == "float32":
                data = rng.normal(0, 1e3, shape).astype("<f4")
            else:
                data = rng.integers(0, np.iinfo(fmt.dtype).max, shape, dtype=fmt.dtype, endpoint=True)
            n.ok("POST", type_name, box_path((40, 30, 20), (0, 0, 0)), data=data.tobytes())
        labels = np.ascontiguousarray(
            np.concatenate(
                [load_labels("fib19-64x64x64-sample1.dat.gz"), load_labels("fib19-64x64x64-sample2.dat.gz")],
                axis=2,
            )
        )
        server.new_instance(uuid, "labelblk", "labelblk")
        n.ok("POST", "labelblk", box_path((128, 64, 64), (0, 0, 0)), data=labels.tobytes())
        server.new_instance(uuid, "labelmap", "labelmap", MaxDownresLevel="1")
        n.ok("POST", "labelmap", box_path((128, 64, 64), (0, 0, 0)), data=labels.tobytes())
        ids, counts = np.unique(labels, return_counts=True)
        biggest = ids[np.argsort(counts)[::-1][:3]]
        n.ok("POST", "labelmap", "merge", json=[int(v) for v in biggest if v][:2])
        server.new_instance(uuid, "roi", "roi16", BlockSize="16,16,16")
        n.ok("POST", "roi16", "roi", json=[[0, 0, 0, 0], [0, 1, 1, 1]])  # blocks (0,0,0) and (1,1,0)
        server.new_instance(uuid, "roi", "roi64", BlockSize="64,64,64")
        n.ok("POST", "roi64", "roi", json=[[0, 0, 1, 1]])  # block (1,0,0)
        yield n
    finally:
        server.stop()


def check_cutout(r: requests.Response, fmt: str, raw: bytes, dtype: str, shape: tuple[int, ...]) -> dict:
    """The cutout ``r`` holds exactly the voxels ``raw`` does, as ``shape`` of ``dtype``; its metadata."""
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == cutout.FORMATS[fmt].media_type
    assert r.headers["Content-Disposition"].endswith(f'.{cutout.FORMATS[fmt].extension}"')
    arr, meta = read(fmt, r.content)
    assert arr.dtype == np.dtype(dtype) and arr.shape == shape
    assert arr.tobytes() == raw
    return meta


@pytest.mark.parametrize("type_name", IMAGE_TYPES)
def test_every_format_of_every_image_type_holds_the_raw_voxels_via_query_and_accept(node, type_name):
    kind = IMAGE_TYPES[type_name]
    fmt = VOXEL_FORMATS[kind]
    path = box_path(SIZE, OFFSET)
    raw = node.ok("GET", type_name, path).content
    assert len(raw) == np.prod(SIZE) * fmt.bytes_per_voxel
    shape = fmt.array_shape(SIZE[::-1])
    for name, spec in cutout.FORMATS.items():
        by_query = node.get(type_name, f"{path}?format={name}")
        meta = check_cutout(by_query, name, raw, fmt.dtype.str, shape)
        by_accept = node.get(type_name, path, headers={"Accept": spec.media_type})
        check_cutout(by_accept, name, raw, fmt.dtype.str, shape)
        assert by_accept.headers["Vary"] == "Accept"
        if name != "blosc":  # a Blosc2 frame carries the array only
            assert meta == {
                "instance": type_name, "uuid": node.uuid, "offset": list(OFFSET),
                "voxel_size": [4.0, 5.0, 6.5], "voxel_units": ["nanometers"] * 3,
            }  # fmt: skip


def test_aliases_and_case_name_the_same_formats(node):
    path = box_path(SIZE, OFFSET)
    raw = node.ok("GET", "uint16blk", path).content
    for alias, name in (("h5", "hdf5"), ("TIF", "tiff"), ("Blosc2", "blosc"), ("NPZ", "npz")):
        check_cutout(node.get("uint16blk", f"{path}?format={alias}"), name, raw, "<u2", SIZE[::-1])


def test_isotropic_volumes_and_pyramid_levels_answer_cutouts_too(node):
    path = box_path(SIZE, OFFSET)
    raw = node.ok("GET", "uint8blk", path).content
    iso = node.get("uint8blk", "iso" + path.replace("raw", "tropic", 1) + "?format=npz")
    check_cutout(iso, "npz", raw, "|u1", SIZE[::-1])
    node.ok("POST", "uint8blk", "pyramid?levels=1")
    level = node.ok("GET", "uint8blk", box_path((20, 15, 10), (0, 0, 0)) + "?scale=1").content
    r = node.get("uint8blk", box_path((20, 15, 10), (0, 0, 0)) + "?scale=1&format=hdf5")
    meta = check_cutout(r, "hdf5", level, "|u1", (10, 15, 20))
    assert meta["instance"] == "uint8blk_1" and meta["voxel_size"] == [8.0, 10.0, 13.0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_labelblk_real_segmentation_in_every_format(node, fmt):
    size, offset = (100, 50, 40), (10, 7, 12)
    raw = node.ok("GET", "labelblk", box_path(size, offset)).content
    assert len(np.unique(np.frombuffer(raw, "<u8"))) > 10  # real labels, not a constant
    r = node.get("labelblk", box_path(size, offset), params={"format": fmt})
    check_cutout(r, fmt, raw, "<u8", size[::-1])


@pytest.mark.parametrize("fmt", FORMATS)
def test_labelmap_bodies_supervoxels_and_scales_in_every_format(node, fmt):
    size, offset = (120, 60, 50), (4, 2, 6)
    path = box_path(size, offset)
    bodies = node.ok("GET", "labelmap", path).content
    supervoxels = node.ok("GET", "labelmap", path + "?supervoxels=true").content
    assert bodies != supervoxels  # the merge is seen by body reads only
    meta = check_cutout(node.get("labelmap", path + f"?format={fmt}"), fmt, bodies, "<u8", size[::-1])
    sv = node.get(
        "labelmap", path, params={"supervoxels": "true"}, headers={"Accept": cutout.FORMATS[fmt].media_type}
    )
    sv_meta = check_cutout(sv, fmt, supervoxels, "<u8", size[::-1])
    half = box_path((60, 30, 25), (2, 1, 3))
    scaled = node.ok("GET", "labelmap", half + "?scale=1").content
    scaled_meta = check_cutout(
        node.get("labelmap", half + f"?scale=1&format={fmt}"), fmt, scaled, "<u8", (25, 30, 60)
    )
    if fmt != "blosc":
        assert (meta["scale"], meta["supervoxels"], sv_meta["supervoxels"]) == (0, False, True)
        assert scaled_meta["scale"] == 1 and scaled_meta["voxel_size"] == [16.0, 16.0, 16.0]
        assert meta["instance"] == "labelmap" and meta["offset"] == list(offset)


def test_labelmap_google_compression_of_one_block_with_a_format_is_refused(node):
    r = node.get("labelmap", box_path((64, 64, 64), (0, 0, 0)) + "?compression=google&format=npz")
    assert r.status_code == 400 and "compression" in r.text


@pytest.mark.parametrize(
    ("type_name", "roi", "size"),
    [
        ("uint8blk", "roi16", (40, 30, 20)),
        ("labelblk", "roi64", (100, 30, 20)),
        ("labelmap", "roi64", (100, 30, 20)),
    ],
)
def test_roi_masking_applies_to_cutouts(node, type_name, roi, size):
    path = box_path(size, (0, 0, 0))
    whole = node.ok("GET", type_name, path).content
    masked = node.ok("GET", type_name, path + f"?roi={roi}").content
    assert masked != whole and any(masked)
    dtype = "|u1" if type_name == "uint8blk" else "<u8"
    for fmt in FORMATS:
        r = node.get(type_name, path + f"?roi={roi}&format={fmt}")
        check_cutout(r, fmt, masked, dtype, size[::-1])


# ---- choosing the answer --------------------------------------------------------------------------
def test_query_beats_accept_and_compression_leaves_accept_unread(node):
    path = box_path(SIZE, OFFSET)
    raw = node.ok("GET", "uint8blk", path).content
    r = node.get("uint8blk", path + "?format=tiff", headers={"Accept": "application/x-npz"})
    check_cutout(r, "tiff", raw, "|u1", SIZE[::-1])
    r = node.get("uint8blk", path + "?compression=gzip", headers={"Accept": "application/x-npz"})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/octet-stream"
    assert gzip.decompress(r.content) == raw  # a gzip stream, not a Content-Encoding


@pytest.mark.parametrize(
    "accept",
    ["*/*", "", "application/*", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
     "application/octet-stream", "application/x-npz;q=0.5, application/octet-stream"],
)  # fmt: skip
def test_accept_headers_that_allow_raw_get_the_raw_stream(node, accept):
    path = box_path(SIZE, OFFSET)
    raw = node.ok("GET", "uint32blk", path).content
    r = node.get("uint32blk", path, headers={"Accept": accept})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/octet-stream"
    assert r.content == raw


def test_accept_naming_only_types_no_volume_has_is_406_and_slices_ignore_accept(node):
    path = box_path(SIZE, OFFSET)
    for accept in ("image/png", "text/html, application/json", "application/octet-stream;q=0"):
        r = node.get("uint8blk", path, headers={"Accept": accept})
        assert r.status_code == 406, (accept, r.text)
        assert all(t in r.text for t in cutout.MEDIA_TYPES)
    r = node.get("uint8blk", "raw/0_1/16_16/0_0_0", headers={"Accept": "application/x-npz"})
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    assert node.get("uint8blk", "raw/0_1/16_16/0_0_0", headers={"Accept": "image/png"}).status_code == 200


def test_bad_format_requests_are_400_naming_the_choices(node):
    path = box_path(SIZE, OFFSET)
    r = node.get("uint8blk", path + "?format=zarr")
    assert r.status_code == 400 and all(name in r.text for name in FORMATS) and '"zarr"' in r.text
    for query in ("?format=npz&compression=lz4", "?format=hdf5&compression=gzip"):
        r = node.get("uint16blk", path + query)
        assert r.status_code == 400 and "compression" in r.text
    r = node.get("labelblk", path + "?format=tiff&compression=google")
    assert r.status_code == 400 and "compression" in r.text
    assert node.get("uint8blk", "raw/0_1/16_16/0_0_0?format=npz").status_code == 400
    assert node.get("uint8blk", path + "/jpg?format=npz").status_code == 400
    assert node.get("uint8blk", path + "?format=").status_code == 400
    assert node.ok("GET", "uint8blk", path).content  # the server is still up


def test_cutouts_over_the_limits_are_413_while_raw_still_streams(server_factory):
    server = server_factory(max_request_voxels=1 << 20, max_body_bytes=3 << 19)
    uuid = server.new_repo("limits")
    server.new_instance(uuid, "uint64blk", "big")
    n = Node(server, uuid)
    data = np.arange(64**3, dtype="<u8")
    n.ok("POST", "big", box_path((64, 64, 32), (0, 0, 0)), data=data[: 64 * 64 * 32].tobytes())
    n.ok("POST", "big", box_path((64, 64, 32), (0, 0, 32)), data=data[64 * 64 * 32 :].tobytes())
    path = box_path((64, 64, 64), (0, 0, 0))  # 2 MiB: streamed raw, but over the in-memory limit
    assert n.ok("GET", "big", path).content == data.tobytes()
    for fmt, spec in cutout.FORMATS.items():
        r = n.get("big", path + f"?format={fmt}")
        assert r.status_code == 413 and "in memory" in r.text, r.text[:300]
        assert n.get("big", path, headers={"Accept": spec.media_type}).status_code == 413
    r = n.get("big", box_path((128, 128, 128), (0, 0, 0)) + "?format=npz")  # over max_request_voxels
    assert r.status_code == 413 and "max_request_voxels" in r.text
    small = box_path((64, 64, 16), (0, 0, 8))
    raw = n.ok("GET", "big", small).content
    check_cutout(n.get("big", small + "?format=npz"), "npz", raw, "<u8", (16, 64, 64))


# ---- the negotiation rules, as a function -----------------------------------------------------------
@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, None), ("", None), ("*/*", None), ("application/*", None),
        ("application/x-hdf5", "hdf5"), ("APPLICATION/X-HDF5", "hdf5"),
        ("image/tiff;q=0.9, application/x-blosc", "blosc"),
        ("application/x-npz, */*;q=0.1", "npz"),
        ("application/x-npz;q=0.1, */*", None),
        ("application/x-npz, application/octet-stream", None),  # equal q: raw
        ("image/*", "tiff"), ("image/png, image/*;q=0.5", "tiff"),
        ("application/octet-stream;q=0, application/x-npz;q=0.2", "npz"),
        ("text/plain, application/x-npz;q=bad, image/tiff", "tiff"),
    ],
)  # fmt: skip
def test_negotiate(accept, expected):
    fmt = cutout.negotiate(accept)
    assert (fmt.name if fmt else None) == expected


@pytest.mark.parametrize(
    "accept", ["image/png", "text/*", "application/x-npz;q=0", "application/octet-stream;q=0"]
)
def test_negotiate_refuses_accept_headers_that_match_nothing(accept):
    with pytest.raises(NotAcceptable):
        cutout.negotiate(accept)


def test_encoded_files_carry_metadata_as_plain_values():
    vol = np.arange(2 * 3 * 4 * 4, dtype=np.uint8).reshape(2, 3, 4, 4)  # rgba8
    meta = {"instance": "rgb", "uuid": "abc", "offset": [1, 2, 3], "voxel_size": [8.0, 8.0, 8.0]}
    for name, fmt in cutout.FORMATS.items():
        arr, got = read(name, bytes(cutout.encode(fmt, vol, meta)))
        assert arr.shape == vol.shape and (arr == vol).all()
        if name != "blosc":
            assert got == meta, name
