"""Wire compression of raw volume bodies (``?compression=lz4|gzip`` on GET and POST).

``lz4`` is a bare LZ4 block without a size prefix, as DVID's label types and their clients use it;
``gzip`` is a gzip stream. Compressed POST bodies are inflated to exactly the size the request's
geometry needs, or refused with a 400.
"""

from __future__ import annotations

import gzip
import zlib
from typing import Any, cast

import cramjam
import lz4.block
import numpy as np

from dvid.datatype.common.request import InstanceRequest
from dvid.errors import BadRequest

#: The ``?compression=`` values a raw volume POST body may have.
INPUT_COMPRESSIONS = ("lz4", "gzip")


def wire_compression(req: InstanceRequest, allowed: tuple[str, ...]) -> str:
    """``?compression=`` on raw volume GET/POST: "" (none) or one of ``allowed`` (``lz4`` is a bare
    LZ4 block, as DVID's label types use it)."""
    value = req.query.get("compression", "")
    if value and value not in allowed:
        raise BadRequest(f'compression for raw volumes must be one of {", ".join(allowed)}, got "{value}"')
    return value


def compress_wire(raw: memoryview, wire: str) -> bytes:
    """A raw volume's bytes compressed for a response: a bare LZ4 block, or gzip at level 1."""
    if wire == "lz4":
        return lz4.block.compress(raw, store_size=False)
    return gzip.compress(raw, compresslevel=1)


def lz4_decompress_into(body: bytes, out: np.ndarray) -> None:
    """Inflate an lz4 block (no size prefix, as DVID's clients send) into exactly ``out``, or refuse it."""
    try:
        written = cramjam.lz4.decompress_block_into(body, cast(Any, out))  # a writable buffer
    except cramjam.DecompressionError as exc:
        raise BadRequest(f"body is not valid lz4 data for {out.nbytes} bytes: {exc}") from None
    if written != out.nbytes:
        raise BadRequest(f"lz4 body inflates to {written} bytes, expected {out.nbytes}")


def gunzip_body(body: bytes, expected: int) -> bytes:
    """Inflate a gzip POST body to exactly ``expected`` bytes, or refuse it."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        raw = inflater.decompress(body, expected + 1)  # a gzip bomb stops one byte past the size
    except zlib.error as exc:
        raise BadRequest(f"body is not valid gzip data: {exc}") from None
    if len(raw) > expected:
        raise BadRequest(f"gzip body inflates to more than the {expected} bytes expected")
    if not inflater.eof:
        raise BadRequest("gzip body is truncated")
    if len(raw) != expected:
        raise BadRequest(f"gzip body inflates to {len(raw)} bytes, expected {expected}")
    return raw
