"""Voxel blocks in the versioned store (spec image-label.md §0.4-0.6, §1.3): codec bytes, key layout,
box reads/writes against a numpy reference, concurrency and versioning."""

from __future__ import annotations

import gzip
import io
import struct
import threading

import lz4.block
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from dvid.dag.dag import Node, VersionDAG
from dvid.datatype.common import envelope
from dvid.datatype.common.blockstore import (
    BLOCK_CLASS,
    EXTENTS_CLASS,
    BlockCodec,
    BlockStore,
    block_coord,
    block_tkey,
    frame_block,
)
from dvid.datatype.common.envelope import Compression
from dvid.datatype.common.geometry import Box
from dvid.datatype.common.voxels import VOXEL_FORMATS
from dvid.storage import keys
from dvid.storage.memory import MemoryEngine
from dvid.storage.versioned import VersionedStore

IID = 11


def uid(v: int) -> str:
    return f"{v:032x}"


class Repo:
    """A memory engine, a VersionedStore and a VersionDAG: DataContexts of one instance at any version."""

    def __init__(self) -> None:
        self.engine = MemoryEngine()
        self.store = VersionedStore(self.engine)
        self.dag = VersionDAG(Node(uuid=uid(1), version=1))
        self.next = 2

    def ctx(self, version: int = 1):
        return self.store.context(IID, self.dag.ancestry(version))

    def child(self, parent: int) -> int:
        if not self.dag.node(parent).locked:
            self.dag.commit(parent)
        v, self.next = self.next, self.next + 1
        self.dag.new_version(parent, v, uid(v))
        return v

    def keys_at(self, version: int) -> list[bytes]:
        return [k for k, _ in self.engine.scan(b"", None, keys_only=True) if keys.version_of(k) == version]


def make_store(kind: str, bs=(8, 8, 8), compression: str | None = None, background: int = 0) -> BlockStore:
    codec = BlockCodec(VOXEL_FORMATS[kind], bs, Compression.parse(compression))
    return BlockStore(codec, background)


def write_box(store: BlockStore, ctx, box: Box, data: np.ndarray, lock=None, *, also=None) -> list:
    """A box's write as the datatypes make it: whole blocks encoded first, the rest merged under the lock."""
    return store.commit_write(ctx, data, store.plan_write(box, data), lock or threading.Lock(), also=also)


def random_voxels(rng: np.random.Generator, kind: str, shape_zyx) -> np.ndarray:
    fmt = VOXEL_FORMATS[kind]
    shape = fmt.array_shape(tuple(shape_zyx))
    if fmt.dtype.kind == "f":
        return rng.standard_normal(shape).astype(fmt.dtype)
    info = np.iinfo(fmt.dtype)
    return rng.integers(0, info.max, size=shape, dtype=fmt.dtype, endpoint=True)


class Reference:
    """A numpy volume covering [lo, lo + n) on every axis, initialised to background."""

    def __init__(self, kind: str, lo: int, n: int, background: int) -> None:
        fmt = VOXEL_FORMATS[kind]
        self.lo = lo
        self.vol = np.full(fmt.array_shape((n, n, n)), background, dtype=fmt.dtype)

    def index(self, box: Box):
        (x, y, z), (nx, ny, nz) = box.offset, box.size
        lo = self.lo
        return (slice(z - lo, z - lo + nz), slice(y - lo, y - lo + ny), slice(x - lo, x - lo + nx))

    def write(self, box: Box, data: np.ndarray) -> None:
        self.vol[self.index(box)] = data

    def read(self, box: Box) -> np.ndarray:
        return self.vol[self.index(box)]


# ---- key layout and framing --------------------------------------------------------------------------


def test_block_tkey_layout():
    """class 23, 0x01, then z, y, x each as u32 BE of coord + 2^31 (spec §0.4)."""
    assert BLOCK_CLASS == 23 and EXTENTS_CLASS == 24
    tk = block_tkey(1, 2, 3)
    assert tk == bytes.fromhex("1701" + "80000003" + "80000002" + "80000001")
    assert block_tkey(-1, 0, -2) == bytes.fromhex("1701" + "7ffffffe" + "80000000" + "7fffffff")
    assert block_tkey(5, -6, 7) == b"\x17\x01" + keys.zyx_bytes(5, -6, 7)
    assert block_coord(block_tkey(-7, 8, -9)) == (-7, 8, -9)
    # byte order equals numeric (z, y, x) order, so a range scan returns an x-row in ascending x
    coords = [(x, y, z) for z in (-2, 0, 3) for y in (-1, 1) for x in (-3, -1, 0, 2)]
    assert sorted(coords, key=lambda c: block_tkey(*c)) == sorted(coords, key=lambda c: (c[2], c[1], c[0]))


def test_frame_block_bytes():
    assert frame_block((1, -2, 3), b"abc") == struct.pack("<iiii", 1, -2, 3, 3) + b"abc"
    assert frame_block((0, 0, 0), b"") == bytes(16)
    assert frame_block((-1, 0, 2**31 - 1), b"\x00") == (
        b"\xff\xff\xff\xff" + b"\x00" * 4 + b"\xff\xff\xff\x7f" + b"\x01\x00\x00\x00" + b"\x00"
    )


# ---- codec -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(VOXEL_FORMATS))
def test_codec_lz4_bytes(kind):
    """byte0 0x80, then u32 LE length + LZ4 block; the payload (what block streams send) decompresses."""
    codec = BlockCodec(VOXEL_FORMATS[kind], (4, 5, 6), Compression())
    block = random_voxels(np.random.default_rng(1), kind, (6, 5, 4))
    stored = codec.encode(block)
    raw = block.tobytes()
    assert stored[0] == 0x80
    assert struct.unpack_from("<I", stored, 1)[0] == len(raw) == codec.block_nbytes
    assert lz4.block.decompress(stored[1:]) == raw
    assert envelope.payload(stored) == stored[1:]
    out = codec.decode(stored)
    assert out.dtype == VOXEL_FORMATS[kind].dtype and out.shape == block.shape
    assert out.tobytes() == raw


def test_codec_none_and_gzip_bytes():
    fmt = VOXEL_FORMATS["uint16"]
    block = random_voxels(np.random.default_rng(2), "uint16", (4, 4, 4))
    raw = block.astype("<u2").tobytes()

    none = BlockCodec(fmt, (4, 4, 4), Compression.parse("none"))
    stored = none.encode(block)
    assert stored == b"\x00" + raw
    assert none.decode(stored).tobytes() == raw

    gz = BlockCodec(fmt, (4, 4, 4), Compression.parse("gzip:9"))
    stored = gz.encode(block)
    assert stored[0] == 0x40
    assert gzip.decompress(stored[1:]) == raw
    assert gz.decode(stored).tobytes() == raw
    assert envelope.payload(stored) == stored[1:]


def test_codec_crc32_payload_skips_checksum():
    codec = BlockCodec(VOXEL_FORMATS["uint8"], (4, 4, 4), Compression.parse("lz4", "crc32"))
    block = np.arange(64, dtype=np.uint8).reshape(4, 4, 4)
    stored = codec.encode(block)
    assert stored[0] == 0x88
    assert envelope.payload(stored) == stored[5:]
    assert lz4.block.decompress(envelope.payload(stored)) == block.tobytes()
    assert codec.decode(stored).tobytes() == block.tobytes()


def test_codec_encodes_non_contiguous_views():
    codec = BlockCodec(VOXEL_FORMATS["uint32"], (4, 4, 4), Compression())
    big = np.arange(8 * 8 * 8, dtype=np.uint32).reshape(8, 8, 8)
    view = big[2:6, 1:5, 3:7]
    assert codec.decode(codec.encode(view)).tobytes() == np.ascontiguousarray(view).tobytes()


def test_codec_jpeg_is_a_gray_image_bx_wide_and_approximately_lossless():
    codec = BlockCodec(VOXEL_FORMATS["uint8"], (16, 8, 4), Compression.parse("jpeg"))
    assert codec.is_jpeg
    z, y, x = np.mgrid[0:4, 0:8, 0:16]
    block = (40 + 6 * x + 4 * y + 10 * z).astype(np.uint8)  # smooth, so JPEG keeps it close
    stored = codec.encode(block)
    assert stored[0] == 0xA0
    payload = envelope.payload(stored)
    assert payload[:2] == b"\xff\xd8"
    with Image.open(io.BytesIO(payload)) as img:
        assert img.format == "JPEG" and img.mode == "L" and img.size == (16, 8 * 4)
        pixels = np.asarray(img)
    assert np.abs(pixels.astype(int) - block.reshape(32, 16)).max() <= 8
    decoded = codec.decode(stored)
    assert decoded.shape == (4, 8, 16) and decoded.dtype == np.uint8
    assert np.array_equal(decoded, pixels.reshape(4, 8, 16))


def test_codec_refuses_wrong_length():
    codec = BlockCodec(VOXEL_FORMATS["uint8"], (4, 4, 4), Compression())
    stored = envelope.serialize(b"x" * 63, Compression())
    with pytest.raises(ValueError, match="63 bytes"):
        codec.decode(stored)


# ---- reads and writes ----------------------------------------------------------------------------------

LO, N = -24, 56  # the reference covers [-24, 32) on every axis
BS = (8, 5, 6)  # non-cubic, so an x/y/z mix-up shows


def _box_strategy():
    def build(o, s):
        size = tuple(min(si, LO + N - oi) for oi, si in zip(o, s, strict=True))
        return Box(o, size)

    starts = st.integers(LO, LO + N - 1)
    lens = st.integers(1, 30)
    return st.builds(build, st.tuples(starts, starts, starts), st.tuples(lens, lens, lens))


@pytest.mark.parametrize(("kind", "background"), [("uint8", 7), ("uint64", 0), ("rgba8", 3)])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(boxes=st.lists(_box_strategy(), min_size=1, max_size=5), reads=st.lists(_box_strategy(), max_size=3),
       seed=st.integers(0, 2**16))  # fmt: skip
def test_write_read_round_trip_against_numpy(kind, background, boxes, reads, seed):
    repo = Repo()
    ctx = repo.ctx()
    store = make_store(kind, BS, background=background)
    ref = Reference(kind, LO, N, background)
    rng = np.random.default_rng(seed)
    lock = threading.Lock()
    for box in boxes:
        data = random_voxels(rng, kind, box.shape)
        written = write_box(store, ctx, box, data, lock)
        first, last = box.block_range(BS)
        expect = {(x, y, z) for z in range(first[2], last[2] + 1)
                  for y in range(first[1], last[1] + 1) for x in range(first[0], last[0] + 1)}  # fmt: skip
        assert set(written) == expect and len(written) == len(expect)
        ref.write(box, data)
    for box in [*reads, *boxes, Box((LO, LO, LO), (N, N, N))]:
        got = store.read_box(ctx, box)
        assert got.shape == ref.read(box).shape
        assert got.dtype == VOXEL_FORMATS[kind].dtype
        np.testing.assert_array_equal(got, ref.read(box))
    # only touched blocks are stored, each under its block tkey
    stored = {block_coord(tk) for tk, _ in ctx.range(block_tkey(-99, -99, -99), block_tkey(99, 99, 99))}
    touched = set()
    for box in boxes:
        first, last = box.block_range(BS)
        touched |= {(x, y, z) for z in range(first[2], last[2] + 1)
                    for y in range(first[1], last[1] + 1) for x in range(first[0], last[0] + 1)}  # fmt: skip
    assert stored == touched


def test_never_written_reads_background_for_multibyte_value():
    store = make_store("uint16", (4, 4, 4), background=0x0102)
    got = store.read_box(Repo().ctx(), Box((-3, 0, 9), (6, 2, 3)))
    assert got.dtype == np.dtype("<u2")
    assert (got == 0x0102).all()


def test_read_box_returns_little_endian_zyx():
    repo = Repo()
    store = make_store("uint32", (4, 4, 4))
    data = np.arange(4 * 4 * 8, dtype="<u4").reshape(4, 4, 8)  # (z, y, x): x fastest
    write_box(store, repo.ctx(), Box((0, 0, 0), (8, 4, 4)), data, threading.Lock())
    got = store.read_box(repo.ctx(), Box((2, 1, 3), (5, 2, 1)))
    assert got.tobytes() == data[3:4, 1:3, 2:7].astype("<u4").tobytes()
    assert store.read_box(repo.ctx(), Box((5, 3, 2), (1, 1, 1)))[0, 0, 0] == 2 * 32 + 3 * 8 + 5


def test_iter_stored_order():
    repo = Repo()
    ctx = repo.ctx()
    store = make_store("uint8", (2, 2, 2))
    blocks = [((x, y, z), np.full((2, 2, 2), 10 * (x + 5) + y + z, np.uint8)) for z, y, x in
              [(1, 0, 2), (-1, 0, 0), (0, 1, -3), (0, 0, 1), (0, 0, -1)]]  # fmt: skip
    for coord, block in blocks:
        assert write_box(store, ctx, Box(tuple(2 * c for c in coord), (2, 2, 2)), block) == [coord]
    order = [coord for coord, _ in store.iter_stored(ctx, (-5, -5, -5), (5, 5, 5))]
    assert order == sorted((c for c, _ in blocks), key=lambda c: (c[2], c[1], c[0]))
    # a sub-range only returns its own blocks
    assert [c for c, _ in store.iter_stored(ctx, (0, 0, 0), (3, 0, 0))] == [(1, 0, 0)]
    for coord, value in store.iter_stored(ctx, (-5, -5, -5), (5, 5, 5)):
        assert (store.codec.decode(value) == 10 * (coord[0] + 5) + coord[1] + coord[2]).all()


def test_commit_write_also_runs_in_the_same_batch():
    repo = Repo()
    ctx = repo.ctx()
    store = make_store("uint8", (4, 4, 4))
    extra = keys.tkey(EXTENTS_CLASS)

    def also(batch):
        assert ctx.get(extra) is None  # not yet visible: it is part of the batch
        batch.put(extra, b"\x00{}")

    write_box(store, ctx, Box((1, 1, 1), (2, 2, 2)), np.ones((2, 2, 2), np.uint8), also=also)
    assert ctx.get(extra) == b"\x00{}"


def test_concurrent_unaligned_writes_never_lose_a_write():
    """Each thread writes its own x-columns of the same 8 blocks, all partial: every write survives."""
    repo = Repo()
    ctx = repo.ctx()
    store = make_store("uint16", (8, 8, 8), background=0)
    lock = threading.Lock()
    threads = 8
    region = Box((-8, 0, 0), (16, 16, 16))  # 2x2x2 blocks; thread t owns x = -8 + 2t, -7 + 2t
    rounds = 6
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for r in range(rounds):
                barrier.wait()
                for part in range(2):  # two writes per round, each 1 voxel thick in x
                    box = Box((-8 + 2 * t + part, 0, 0), (1, 16, 16))
                    value = 1000 * (r + 1) + 10 * t + part
                    write_box(store, ctx, box, np.full(box.shape, value, "<u2"), lock)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert not errors
    got = store.read_box(ctx, region)
    expect = np.empty(region.shape, "<u2")
    for t in range(threads):
        for part in range(2):
            expect[:, :, 2 * t + part] = 1000 * rounds + 10 * t + part
    np.testing.assert_array_equal(got, expect)


# ---- versions ----------------------------------------------------------------------------------------------


def test_versions_store_only_touched_blocks():
    repo = Repo()
    store = make_store("uint8", (4, 4, 4))
    lock = threading.Lock()
    rng = np.random.default_rng(5)
    root = 1
    box = Box((-4, 0, 0), (12, 8, 4))  # 3x2x1 blocks
    base = random_voxels(rng, "uint8", box.shape)
    write_box(store, repo.ctx(root), box, base, lock)
    child = repo.child(root)
    assert repo.keys_at(child) == []

    patch = Box((1, 5, 1), (2, 2, 2))  # inside block (0, 1, 0) only
    write_box(store, repo.ctx(child), patch, np.full(patch.shape, 255, np.uint8), lock)
    child_keys = repo.keys_at(child)
    assert [keys.tkey_of(k) for k in child_keys] == [block_tkey(0, 1, 0)]
    assert all(keys.instance_of(k) == IID for k in child_keys)

    np.testing.assert_array_equal(store.read_box(repo.ctx(root), box), base)
    expect = base.copy()
    expect[1:3, 5:7, 5:7] = 255
    np.testing.assert_array_equal(store.read_box(repo.ctx(child), box), expect)

    # a grandchild sees the child's block and the root's others; its own write is separate again
    grandchild = repo.child(child)
    np.testing.assert_array_equal(store.read_box(repo.ctx(grandchild), box), expect)
    write_box(store, repo.ctx(grandchild), Box((-4, 0, 0), (4, 4, 4)), np.zeros((4, 4, 4), np.uint8), lock)
    assert [keys.tkey_of(k) for k in repo.keys_at(grandchild)] == [block_tkey(-1, 0, 0)]
    expect[:, 0:4, 0:4] = 0
    np.testing.assert_array_equal(store.read_box(repo.ctx(grandchild), box), expect)
    np.testing.assert_array_equal(store.read_box(repo.ctx(root), box), base)
