"""``dvid export`` from a live server to zarr v3, TIFF, HDF5 and .npy, read back with each format's
own library (zarr-python and tensorstore for zarr) and compared byte for byte."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import requests
import tensorstore as ts
import tifffile
import zarr

from tests.ingest_files import failed, grey_volume, label_volume, ok, post_raw, read_raw

OFFSET = (5, -3, 17)  # x, y, z of the volume's first voxel at the server


@pytest.fixture
def grey(server):
    repo = server.new_repo("export")
    server.new_instance(repo, "uint8blk", "grey", BlockSize="32,32,32")
    vol = grey_volume()
    post_raw(server.url, repo, "grey", vol, OFFSET)
    return repo, vol


def read_back(fmt: str, path) -> np.ndarray:
    if fmt == "zarr":
        return np.asarray(zarr.open_array(str(path), mode="r")[:])
    if fmt == "tiff":
        return tifffile.imread(path)
    if fmt == "hdf5":
        with h5py.File(path, "r") as f:
            return f["data"][:]
    return np.load(path)


@pytest.mark.parametrize(
    ("fmt", "name"), [("zarr", "out.zarr"), ("tiff", "out.tif"), ("hdf5", "out.h5"), ("npy", "out.npy")]
)
def test_export_box_byte_for_byte(server, grey, tmp_path, fmt, name):
    repo, vol = grey
    out = tmp_path / name
    # a box across block boundaries, inside the volume: voxels 10..90 (x), 20..120 (y), 3..63 (z) of it
    x0, y0, z0 = OFFSET[0] + 10, OFFSET[1] + 20, OFFSET[2] + 3
    box = f"{x0},{y0},{z0},{x0 + 80},{y0 + 100},{z0 + 60}"
    said = ok(server.url, "export", repo, "grey", str(out), "--box", box, "--chunk", "16", "-j", "3")
    assert f"exported 80x100x60 uint8 voxels of 'grey' at {repo}" in said and f"[{fmt}]" in said
    got = read_back(fmt, out)
    want = vol[3:63, 20:120, 10:90]
    assert got.shape == want.shape and got.dtype == np.uint8
    assert got.tobytes() == want.tobytes()


def test_zarr_export_is_readable_by_tensorstore_with_its_origin(server, grey, tmp_path):
    repo, vol = grey
    out = tmp_path / "all.zarr"
    ok(server.url, "export", repo, "grey", str(out), "-q")  # no box: everything written
    store = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": str(out)}}).result()
    assert store.read().result().tobytes() == vol.tobytes()
    attrs = zarr.open_array(str(out), mode="r").attrs["dvid"]
    assert attrs["offset"] == list(OFFSET) and attrs["size"] == [100, 130, 70] and attrs["instance"] == "grey"


def test_export_labels_bodies_and_supervoxels_and_scale(server, tmp_path):
    repo = server.new_repo("export")
    server.new_instance(repo, "labelmap", "seg", MaxDownresLevel="1")
    labels = label_volume()
    post_raw(server.url, repo, "seg", labels, (0, 0, 0))
    a, b = int(labels[5, 5, 5]), int(labels[40, 100, 90])
    assert a != b
    r = requests.post(server.api(f"node/{repo}/seg/merge"), json=[a, b], timeout=10)
    assert r.status_code == 200, r.text
    bodies = np.where(labels == b, a, labels)
    ok(server.url, "export", repo, "seg", str(tmp_path / "bodies.npy"), "--box", "0,0,0,100,128,64", "-q")
    assert np.load(tmp_path / "bodies.npy").tobytes() == bodies.astype("<u8").tobytes()
    ok(
        server.url,
        "export",
        repo,
        "seg",
        str(tmp_path / "sv.h5"),
        "--box",
        "0,0,0,100,128,64",
        "--supervoxels",
    )
    with h5py.File(tmp_path / "sv.h5", "r") as f:
        assert f["data"].dtype == np.uint64 and f["data"][:].tobytes() == labels.tobytes()
    ok(server.url, "export", repo, "seg", str(tmp_path / "s1.zarr"), "--scale", "1", "-q")
    scale1 = read_raw(server.url, repo, "seg", (32, 64, 50), (0, 0, 0), "<u8", scale="1")
    assert read_back("zarr", tmp_path / "s1.zarr").tobytes() == scale1.tobytes()


def test_export_with_offset_and_size_to_tiff_of_uint16(server, tmp_path):
    repo = server.new_repo("export")
    server.new_instance(repo, "uint16blk", "u16")
    vol = grey_volume().astype(np.uint16) * 257
    post_raw(server.url, repo, "u16", vol, (0, 0, 0))
    ok(server.url, "export", repo, "u16", str(tmp_path / "v.tiff"), "--offset", "1,2,3", "--size", "50,60,40")
    assert tifffile.imread(tmp_path / "v.tiff").tobytes() == vol[3:43, 2:62, 1:51].tobytes()


def test_export_errors(server, grey, tmp_path):
    repo, _ = grey
    server.new_instance(repo, "uint8blk", "empty")
    existing = tmp_path / "there.npy"
    existing.write_bytes(b"keep me")
    cases = {
        "lies outside the data written at this version": ("--box", "1000,1000,1000,1010,1010,1010"),
        "is empty: each end must exceed its start": ("--box", "10,10,10,10,20,20"),
        "expected 6 integers": ("--box", "1,2,3"),
    }
    for message, extra in cases.items():
        assert message in failed(server.url, "export", repo, "grey", str(tmp_path / "x.npy"), *extra)
    assert "exists: give --overwrite" in failed(server.url, "export", repo, "grey", str(existing))
    assert existing.read_bytes() == b"keep me"
    assert "cannot tell the format" in failed(server.url, "export", repo, "grey", str(tmp_path / "x.raw"))
    assert "nothing is written in 'empty'" in failed(
        server.url, "export", repo, "empty", str(tmp_path / "e.npy")
    )
    assert "no data instance 'nope'" in failed(server.url, "export", repo, "nope", str(tmp_path / "n.npy"))
    err = failed(
        server.url, "export", repo, "grey", str(tmp_path / "s.npy"), "--scale", "3", "--box", "0,0,0,8,8,8"
    )
    assert "failed" in err and not (tmp_path / "s.npy").exists()  # no pyramid level 3: nothing left behind
    ok(server.url, "export", repo, "grey", str(existing), "--overwrite", "--box", "5,-3,17,15,7,27", "-q")
    assert np.load(existing).shape == (10, 10, 10)
