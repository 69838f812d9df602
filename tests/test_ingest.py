"""``dvid ingest`` from real files of every format into a live server, read back byte for byte."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
import requests

from dvid import ingest as ingest_pkg
from dvid.ingest.plan import plan_slabs
from dvid.ingest.target import VOXEL_TYPES
from tests.ingest_files import (
    GREY_SHAPE,
    decoded_by_pillow,
    failed,
    grey_volume,
    label_volume,
    ok,
    read_raw,
    write_source,
)

FORMATS = [
    "tiff-stack", "tiff-glob", "multipage-tiff", "png-stack", "jpeg-stack", "hdf5", "zarr2", "zarr3", "n5",
    "precomputed", "npy",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _checkpoints_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def repo(server):
    return server.new_repo("ingest")


@pytest.mark.parametrize("kind", FORMATS)
def test_ingest_every_format_byte_for_byte(server, repo, tmp_path, kind):
    vol = grey_volume()
    src, extra = write_source(kind, vol, tmp_path / kind)
    offset = (5, -3, 17)  # not on the block grid: edge blocks are merged with what is stored
    out = ok(
        server.url, "ingest", src, repo, "grey", *extra, "--create", "uint8blk", "BlockSize=32,32,32",
        "--offset", "5,-3,17", "--workers", "3",
    )  # fmt: skip
    # 70 planes starting at z=17: slabs cut at z=32, 64 (block grid) -> 15 + 32 + 23 planes
    assert "ingested 3 of 3 slabs (0 done before)" in out
    want = decoded_by_pillow(tmp_path / kind, "jpg", GREY_SHAPE[0]) if kind == "jpeg-stack" else vol
    got = read_raw(server.url, repo, "grey", GREY_SHAPE, offset, np.uint8)
    assert got.tobytes() == want.tobytes()
    # nothing outside the source's box was written
    around = read_raw(server.url, repo, "grey", (1, GREY_SHAPE[1], GREY_SHAPE[2]), (5, -3, 16), np.uint8)
    assert not around.any()


def test_ingest_labels_into_labelblk_and_labelmap(server, repo, tmp_path):
    labels = label_volume()
    src, extra = write_source("hdf5", labels, tmp_path / "h5")
    for typename in ("labelblk", "labelmap"):
        ok(server.url, "ingest", src, repo, typename, *extra, "--create", typename, "--workers", "2", "-q")
        got = read_raw(server.url, repo, typename, labels.shape, (0, 0, 0), "<u8")
        assert got.tobytes() == labels.tobytes()
    sv = read_raw(server.url, repo, "labelmap", labels.shape, (0, 0, 0), "<u8", supervoxels="true")
    assert sv.tobytes() == labels.tobytes()
    sizes = requests.get(
        server.api(f"node/{repo}/labelmap/size/{int(labels[10, 10, 10])}"), timeout=10
    ).json()
    assert sizes["voxels"] == int((labels == labels[10, 10, 10]).sum())  # label indexes were kept


def test_uint32_labels_are_widened_losslessly(server, repo, tmp_path):
    labels = label_volume()
    small = (labels % 1_000_003).astype(np.uint32)
    src, _ = write_source("npy", small, tmp_path / "npy")
    out = dvid_ingest_notes(server.url, src, repo, "seg", "--create", "labelmap")
    assert "converting uint32 to uint64" in out
    got = read_raw(server.url, repo, "seg", small.shape, (0, 0, 0), "<u8", supervoxels="true")
    assert got.tobytes() == small.astype("<u8").tobytes()


def dvid_ingest_notes(url: str, *args: str) -> str:
    from tests.ingest_files import dvid

    result = dvid(url, "ingest", *args)
    assert result.exit_code == 0, result.output
    return result.stderr + result.stdout


def test_ingest_into_an_existing_instance_and_big_endian_hdf5(server, repo, tmp_path):
    server.new_instance(repo, "uint16blk", "u16", BlockSize="16,16,16")
    vol = (grey_volume().astype(np.uint16) * 251).astype(">u2")  # big-endian on disk
    src, extra = write_source("hdf5", vol, tmp_path / "h5")
    ok(server.url, "ingest", src, repo, "u16", *extra, "--slab-depth", "48", "-q")
    got = read_raw(server.url, repo, "u16", GREY_SHAPE, (0, 0, 0), "<u2")
    assert got.tobytes() == vol.astype("<u2").tobytes()


def test_rgba_stack_into_rgba8blk(server, repo, tmp_path):
    rgba = np.random.default_rng(3).integers(0, 256, (20, 40, 50, 4), dtype=np.uint8)
    folder = tmp_path / "rgba"
    src, _ = write_source("png-stack", rgba, folder)
    ok(server.url, "ingest", src, repo, "color", "--create", "rgba8blk", "-q")
    got = read_raw(server.url, repo, "color", (20, 40, 50, 4), (0, 0, 0), np.uint8)
    assert got.tobytes() == rgba.tobytes()


def test_slab_size_limit_cuts_along_y_and_x(server, repo, tmp_path):
    vol = grey_volume()
    src, _ = write_source("npy", vol, tmp_path / "npy")
    out = ok(
        server.url, "ingest", src, repo, "grey", "--create", "uint8blk", "BlockSize=16,16,16",
        "--slab-depth", "16", "--slab-mb", "1", "-q", "--verify",
    )  # fmt: skip
    assert "verified" in out
    assert read_raw(server.url, repo, "grey", GREY_SHAPE, (0, 0, 0), np.uint8).tobytes() == vol.tobytes()


# ---- pyramid ------------------------------------------------------------------------------------
def test_pyramid_of_an_image_type(server, repo, tmp_path):
    vol = grey_volume()[:64, :128, :96]
    src, _ = write_source("zarr3", vol, tmp_path / "z")
    out = ok(
        server.url, "ingest", src, repo, "grey", "--dataset", "raw", "--create", "uint8blk", "--pyramid", "2"
    )
    assert "pyramid: levels 1..2" in out
    level1 = read_raw(server.url, repo, "grey", (32, 64, 48), (0, 0, 0), np.uint8, scale="1")
    want = vol.reshape(32, 2, 64, 2, 48, 2).astype(np.uint32).sum(axis=(1, 3, 5)) // 8  # 2x2x2 mean, floor
    assert level1.tobytes() == want.astype(np.uint8).tobytes()


def test_pyramid_of_a_labelmap(server, repo, tmp_path):
    labels = label_volume()
    src, _ = write_source("npy", labels, tmp_path / "npy")
    out = ok(server.url, "ingest", src, repo, "seg", "--create", "labelmap", "--pyramid", "1", "-q")
    assert "pyramid: levels 1..1" in out
    info = requests.get(server.api(f"node/{repo}/seg/info"), timeout=10).json()
    assert info["Extended"]["MaxDownresLevel"] == 1
    level1 = read_raw(server.url, repo, "seg", (32, 64, 50), (0, 0, 0), "<u8", scale="1")
    assert set(np.unique(level1)) <= set(np.unique(labels))  # a label of each 2x2x2 cube
    assert level1[0, 0, 0] in set(labels[:2, :2, :2].ravel())


# ---- verify -------------------------------------------------------------------------------------
def test_verify_passes_then_catches_a_changed_slab(server, repo, tmp_path):
    vol = grey_volume()
    src, _ = write_source("multipage-tiff", vol, tmp_path / "t")
    args = ("ingest", src, repo, "grey", "--create", "uint8blk", "--verify", "-q")
    assert "verified 3 slabs: the server holds exactly what was sent" in ok(server.url, *args)
    patch = np.full((4, 4, 4), 1, np.uint8) + vol[40:44, 0:4, 0:4]  # differs in every voxel
    requests.post(server.api(f"node/{repo}/grey/raw/0_1_2/4_4_4/0_0_40"), data=patch.tobytes(), timeout=10)
    err = failed(server.url, *args)  # same command: nothing left to write, then the check
    assert "verify: 1 of 3 slabs differ from the source: slab 1 (100_130_32 at 0_0_32)" in err
    # --restart writes everything again and the check passes
    assert "verified 3 slabs" in ok(server.url, *args, "--restart")
    assert read_raw(server.url, repo, "grey", GREY_SHAPE, (0, 0, 0), np.uint8).tobytes() == vol.tobytes()


# ---- bad input ----------------------------------------------------------------------------------
def test_clean_errors(server, repo, tmp_path):
    vol = grey_volume()
    h5, _ = write_source("hdf5", vol, tmp_path / "h5")
    npy16, _ = write_source("npy", vol.astype(np.uint16) * 3, tmp_path / "n16")
    server.new_instance(repo, "uint8blk", "grey")
    server.new_instance(repo, "keyvalue", "kv")
    cases = {
        "no such file or directory": ("ingest", str(tmp_path / "missing.tif"), repo, "grey"),
        "has no dataset 'nope'": ("ingest", h5, repo, "grey", "--dataset", "nope"),
        "--dataset (3-D datasets: other/small, volumes/raw)": ("ingest", h5, repo, "grey"),
        "the source's voxels are uint16, uint8blk 'grey' holds uint8": ("ingest", npy16, repo, "grey"),
        "no data instance 'absent'": ("ingest", npy16, repo, "absent"),
        "'kv' is a keyvalue": ("ingest", npy16, repo, "kv"),
        "'grey' exists and is a uint8blk, not a labelmap": (
            "ingest", npy16, repo, "grey", "--create", "labelmap",
        ),
        "the slab depth 40 is not a multiple of the block depth 32": (
            "ingest", h5, repo, "grey", "-d", "volumes/raw", "--slab-depth", "40",
        ),
        "no files match": ("ingest", str(tmp_path / "none" / "*.tif"), repo, "grey"),
        "KEY=VALUE settings are for a new instance": ("ingest", h5, repo, "grey", "BlockSize=8,8,8"),
    }  # fmt: skip
    for message, args in cases.items():
        err = failed(server.url, *args)
        assert message in err, (args, err)
    (tmp_path / "bad.tif").write_bytes(b"not a tiff at all")
    assert "is not a readable TIFF file" in failed(
        server.url, "ingest", str(tmp_path / "bad.tif"), repo, "grey"
    )
    assert "--offset" in failed(server.url, "ingest", h5, repo, "grey", "--offset", "1,2")
    # nothing was written by the failures, and the server still answers
    assert not read_raw(server.url, repo, "grey", GREY_SHAPE, (0, 0, 0), np.uint8).any()


def test_missing_optional_reader_names_the_extra(monkeypatch, tmp_path):
    from dvid.ingest import IngestError
    from dvid.ingest.sources import open_source

    src, _ = write_source("hdf5", grey_volume(), tmp_path)
    monkeypatch.setitem(sys.modules, "h5py", None)  # as if not installed: importing it fails
    with pytest.raises(
        IngestError, match=re.escape("needs the Python package h5py: pip install 'dvid[ingest]'")
    ):
        open_source(src)


# ---- slab planning ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "offset", "block", "depth", "max_bytes"),
    [
        ((70, 130, 100), (5, -3, 17), (32, 32, 32), 32, 1 << 30),
        ((70, 130, 100), (5, -3, 17), (16, 16, 16), 48, 40_000),
        ((9, 300, 500), (-40, 7, -1), (32, 16, 8), 8, 5_000),
        ((1, 1, 1), (0, 0, 0), (64, 64, 64), 64, 1),
    ],
)
def test_slabs_cover_the_volume_once_on_the_block_grid(shape, offset, block, depth, max_bytes):
    slabs = plan_slabs(shape, offset, block, slab_depth=depth, voxel_bytes=1, max_bytes=max_bytes)
    cover = np.zeros(shape, np.uint8)
    for s in slabs:
        cover[s.z0 : s.z1, s.y0 : s.y1, s.x0 : s.x1] += 1
        for lo, hi, n, o, b in (
            (s.x0, s.x1, shape[2], offset[0], block[0]),
            (s.y0, s.y1, shape[1], offset[1], block[1]),
        ):
            assert lo == 0 or (lo + o) % b == 0
            assert hi == n or (hi + o) % b == 0
        assert s.z0 == 0 or (s.z0 + offset[2]) % depth == 0
        assert s.z1 == shape[0] or (s.z1 + offset[2]) % depth == 0
    assert (cover == 1).all()
    assert [s.index for s in slabs] == list(range(len(slabs)))


def test_voxel_type_names_agree():
    assert tuple(VOXEL_TYPES) == ingest_pkg.VOXEL_TYPE_NAMES


@pytest.mark.parametrize(
    ("kind", "depth"),
    [
        ("hdf5", 16),
        ("zarr2", 32),
        ("zarr3", 32),
        ("n5", 32),
        ("precomputed", 32),
        ("npy", 1),
        ("tiff-stack", 1),
    ],
)
def test_sources_report_their_chunk_depth(tmp_path, kind, depth):
    from dvid.ingest.sources import open_source
    from tests.ingest_files import grey_volume, write_source

    spec, options = write_source(kind, grey_volume(), tmp_path / kind)
    source = open_source(spec, options[1] if options else None)
    try:
        assert source.chunk_depth == depth
    finally:
        source.close()


def test_slabs_thinner_than_a_chunk_decode_it_once(tmp_path):
    """Two 16-plane slabs of a zarr array chunked 32 deep: the chunk is read from the store once,
    and both slabs hold the right voxels, from any number of threads."""
    import threading

    from dvid.ingest.sources import open_source
    from tests.ingest_files import grey_volume, write_source

    vol = grey_volume()
    spec, options = write_source("zarr3", vol, tmp_path / "z")
    source = open_source(spec, options[1])
    reads = []
    inner = source._read
    source._read = lambda *box: reads.append(box) or inner(*box)  # count what reaches zarr
    out = {}
    threads = [
        threading.Thread(target=lambda z=z: out.__setitem__(z, source.read(z, z + 16))) for z in (0, 16)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert np.array_equal(out[0], vol[0:16]) and np.array_equal(out[16], vol[16:32])
    assert reads == [(0, 32, 0, 130, 0, 100)]
    assert source.read(64, 70).shape == (6, 130, 100) and reads[-1][:2] == (64, 70)  # the short last chunk
    assert not source._units  # consumed units are let go


@pytest.mark.parametrize("kind", ["zarr2", "zarr3"])
def test_zarr_arrays_are_read_through_tensorstore(tmp_path, kind):
    """zarr-python finds the array (groups, --dataset); TensorStore's codecs read it."""
    from dvid.ingest.sources import _TensorStoreArray, open_source
    from tests.ingest_files import grey_volume, write_source

    vol = grey_volume()
    spec, options = write_source(kind, vol, tmp_path / kind)
    source = open_source(spec, options[1])
    assert isinstance(source.array, _TensorStoreArray)
    assert np.array_equal(source.read(3, 40, 5, 100, 7, 90), vol[3:40, 5:100, 7:90])
