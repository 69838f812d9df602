"""Volume POST bodies: pooled receive buffers, encoding while the body arrives, wire compression."""

from __future__ import annotations

import gzip

import cramjam
import numpy as np
import pytest
import requests

from dvid.datatype.common.buffers import MIN_POOLED_BYTES, BufferPool
from tests.test_labelblk import load

TIMEOUT = 60


# ---- the pool ----------------------------------------------------------------------------------
def test_pool_reuses_the_smallest_fitting_buffer():
    pool = BufferPool(max_idle_bytes=64 << 20)
    with pool.borrow(MIN_POOLED_BYTES) as small:
        small_base = small.base if small.base is not None else small
    with pool.borrow(2 * MIN_POOLED_BYTES) as big:
        big_base = big.base
    with pool.borrow(MIN_POOLED_BYTES) as again:
        assert again.nbytes == MIN_POOLED_BYTES
        assert again.base is small_base  # the 8 MiB one, not the 16 MiB one
        with pool.borrow(MIN_POOLED_BYTES + 1) as other:
            assert other.base is big_base and other.nbytes == MIN_POOLED_BYTES + 1
    assert pool.idle_bytes == 3 * MIN_POOLED_BYTES


def test_pool_keeps_at_most_its_idle_budget_and_drops_small_ones_first():
    pool = BufferPool(max_idle_bytes=3 * MIN_POOLED_BYTES)
    with pool.borrow(MIN_POOLED_BYTES), pool.borrow(2 * MIN_POOLED_BYTES), pool.borrow(MIN_POOLED_BYTES):
        pass
    assert pool.idle_bytes == 3 * MIN_POOLED_BYTES
    with pool.borrow(4 * MIN_POOLED_BYTES) as too_big:  # over the budget: never pooled
        assert too_big.nbytes == 4 * MIN_POOLED_BYTES
    assert pool.idle_bytes == 3 * MIN_POOLED_BYTES


def test_pool_does_not_take_back_a_buffer_after_an_error():
    pool = BufferPool()
    with pytest.raises(RuntimeError), pool.borrow(MIN_POOLED_BYTES):
        raise RuntimeError("a worker may still be reading it")
    assert pool.idle_bytes == 0
    with pool.borrow(1000) as tiny:  # small requests are plain allocations
        assert tiny.nbytes == 1000
    assert pool.idle_bytes == 0


# ---- over HTTP ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tall() -> np.ndarray:
    """A (136, 128, 128) uint64 segmentation (17 MiB): real samples stacked, every label distinct."""
    a, b = load("fib19-64x64x64-sample1.dat.gz"), load("cx-64x64x64-sample1.dat.gz")
    layer = np.concatenate([np.concatenate([a, b], axis=2), np.concatenate([b, a], axis=2)], axis=1)
    vol = np.concatenate([layer, layer + (1 << 40), layer[:8] + (2 << 40)], axis=0)
    return np.ascontiguousarray(vol)


@pytest.fixture
def seg(server):
    uuid = server.new_repo()
    server.new_instance(uuid, "labelblk", "seg")
    return server, uuid


def _pieces(body: bytes, size: int):
    for i in range(0, len(body), size):
        yield body[i : i + size]


def _raw(server, uuid, vol: np.ndarray, offset=(0, 0, 0), query: str = "") -> str:
    nz, ny, nx = vol.shape
    size = f"{nx}_{ny}_{nz}"
    return server.api(f"node/{uuid}/seg/raw/0_1_2/{size}/{'_'.join(map(str, offset))}{query}")


def test_chunked_label_post_unaligned_in_z_round_trips(seg, tall):
    """A chunked body (no Content-Length) spanning three block layers, starting mid-layer: the
    layers encoded while the body arrives and those encoded after it agree with the voxels sent."""
    server, uuid = seg
    offset = (0, 0, 37)
    r = requests.post(
        _raw(server, uuid, tall, offset), data=_pieces(tall.tobytes(), 300_000), timeout=TIMEOUT
    )
    assert r.status_code == 200, r.text
    got = requests.get(_raw(server, uuid, tall, offset), timeout=TIMEOUT).content
    assert got == tall.tobytes()
    above = requests.get(server.api(f"node/{uuid}/seg/raw/0_1_2/128_128_37/0_0_0"), timeout=TIMEOUT)
    assert not np.frombuffer(above.content, "<u8").any()


def test_repeated_posts_through_pooled_buffers_store_each_body(seg, tall):
    """Two different bodies of the same size, one after the other (the second reuses the first's
    buffer): each read back is exactly what was sent."""
    server, uuid = seg
    for vol in (tall, tall[::-1] + np.uint64(5)):
        vol = np.ascontiguousarray(vol)
        assert requests.post(_raw(server, uuid, vol), data=vol.tobytes(), timeout=TIMEOUT).status_code == 200
        assert requests.get(_raw(server, uuid, vol), timeout=TIMEOUT).content == vol.tobytes()
    body = cramjam.lz4.compress_block(tall.tobytes(), store_size=False)
    assert (
        requests.post(_raw(server, uuid, tall, query="?compression=lz4"), data=bytes(body)).status_code == 200
    )
    assert requests.get(_raw(server, uuid, tall), timeout=TIMEOUT).content == tall.tobytes()


@pytest.mark.parametrize("extra", [-8, 8])
def test_chunked_body_of_the_wrong_size_is_refused_and_changes_nothing(seg, tall, extra):
    server, uuid = seg
    assert requests.post(_raw(server, uuid, tall), data=tall.tobytes(), timeout=TIMEOUT).status_code == 200
    other = np.ascontiguousarray(tall[::-1]).tobytes()
    body = other[:extra] if extra < 0 else other + bytes(extra)
    r = requests.post(_raw(server, uuid, tall), data=_pieces(body, 1 << 20), timeout=TIMEOUT)
    assert r.status_code == 400
    assert ("more bytes than" in r.text) if extra > 0 else (f"holds {len(body)} bytes" in r.text)
    assert requests.get(_raw(server, uuid, tall), timeout=TIMEOUT).content == tall.tobytes()


def test_compressed_bodies_that_inflate_to_the_wrong_size_are_refused(seg, tall):
    server, uuid = seg
    raw = tall.tobytes()
    lz4_url = _raw(server, uuid, tall, query="?compression=lz4")
    short = bytes(cramjam.lz4.compress_block(raw[:-8], store_size=False))
    r = requests.post(lz4_url, data=short, timeout=TIMEOUT)
    assert r.status_code == 400 and f"inflates to {len(raw) - 8} bytes" in r.text
    long = bytes(cramjam.lz4.compress_block(raw + bytes(64), store_size=False))
    assert requests.post(lz4_url, data=long, timeout=TIMEOUT).status_code == 400
    # a gzip bomb (64 MiB of zeros in 64 KiB) is refused after inflating one byte past the volume
    bomb = gzip.compress(bytes(64 << 20), compresslevel=9)
    r = requests.post(_raw(server, uuid, tall, query="?compression=gzip"), data=bomb, timeout=TIMEOUT)
    assert r.status_code == 400 and "more than the" in r.text
    assert not np.frombuffer(requests.get(_raw(server, uuid, tall), timeout=TIMEOUT).content, "<u8").any()


def test_pool_picks_among_several_idle_buffers_of_other_sizes():
    pool = BufferPool(max_idle_bytes=1 << 30)
    sizes = [3 * MIN_POOLED_BYTES, MIN_POOLED_BYTES, 2 * MIN_POOLED_BYTES]
    with pool.borrow(sizes[0]), pool.borrow(sizes[1]), pool.borrow(sizes[2]):
        pass
    with pool.borrow(2 * MIN_POOLED_BYTES) as mid, pool.borrow(2 * MIN_POOLED_BYTES) as big:
        assert mid.base.nbytes == 2 * MIN_POOLED_BYTES and big.base.nbytes == 3 * MIN_POOLED_BYTES
    assert pool.idle_bytes == sum(sizes)
