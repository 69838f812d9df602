"""Request body decoding (dvid.datatype.common.body): properties over gzip and deflate streams that
arrive in arbitrary pieces. The HTTP side is in test_error_paths.py."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import zlib
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st

from dvid.datatype.common.body import body_encoding, decode_chunks
from dvid.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

LIMIT = 1 << 16


def decode(body: bytes, encoding: str | None, cuts: list[int], limit: int = LIMIT) -> bytes:
    """The decoded body when ``body`` arrives in the pieces ``cuts`` make of it."""
    bounds = sorted({0, len(body), *(c % (len(body) + 1) for c in cuts)})

    async def pieces() -> AsyncIterator[bytes]:
        for start, end in itertools.pairwise(bounds):
            yield body[start:end]

    async def run() -> bytes:
        request = make_mocked_request(
            "POST", "/x", headers={"Content-Encoding": encoding} if encoding else {}
        )
        return b"".join([p async for p in decode_chunks(pieces(), body_encoding(request), limit)])

    return asyncio.run(run())


def raw_deflate(data: bytes) -> bytes:
    comp = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return comp.compress(data) + comp.flush()


ENCODERS = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
}
payloads = st.binary(max_size=4096) | st.builds(
    lambda b, n: b * n, st.binary(min_size=1, max_size=8), st.integers(1, 500)
)
cut_lists = st.lists(st.integers(0, 1 << 20), max_size=8)


@settings(max_examples=150, deadline=None)
@given(data=payloads, cuts=cut_lists, encoding=st.sampled_from(sorted(ENCODERS)))
def test_any_stream_in_any_pieces_decodes_to_what_was_encoded(data, cuts, encoding):
    assert decode(ENCODERS[encoding](data), encoding, cuts) == data


@settings(max_examples=60, deadline=None)
@given(data=payloads, cuts=cut_lists)
def test_raw_deflate_and_gzip_members_decode(data, cuts):
    assert decode(raw_deflate(data), "deflate", cuts) == data
    half = len(data) // 2
    assert decode(gzip.compress(data[:half]) + gzip.compress(data[half:]), "gzip", cuts) == data


@settings(max_examples=100, deadline=None)
@given(data=payloads, cuts=cut_lists, encoding=st.sampled_from(sorted(ENCODERS)), keep=st.floats(0, 0.999))
def test_a_stream_cut_short_is_400(data, cuts, encoding, keep):
    encoded = ENCODERS[encoding](data)
    with pytest.raises(BadRequest, match=f"Content-Encoding: {encoding}"):
        decode(encoded[: int(len(encoded) * keep)], encoding, cuts)


@settings(max_examples=60, deadline=None)
@given(junk=st.binary(min_size=1, max_size=64), cuts=cut_lists)
def test_junk_after_a_deflate_stream_is_400(junk, cuts):
    with pytest.raises(BadRequest, match="deflate"):
        decode(zlib.compress(b"payload") + junk, "deflate", cuts)


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(0, 3 * LIMIT),
    cuts=cut_lists,
    encoding=st.sampled_from([None, "identity", "gzip", "deflate"]),
)
def test_the_limit_holds_for_decoded_bytes(size, cuts, encoding):
    data = b"\0" * size  # compresses ~1000:1, as a bomb would
    body = ENCODERS[encoding](data) if encoding in ENCODERS else data
    if size > LIMIT:
        with pytest.raises(PayloadTooLarge):
            decode(body, encoding, cuts)
    else:
        assert decode(body, encoding, cuts) == data


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, deflate", "identity;q=1"])
def test_other_encodings_are_refused_before_reading(encoding):
    with pytest.raises(UnsupportedMediaType, match="use one of: identity, gzip, x-gzip, deflate"):
        decode(b"anything", encoding, [])
