"""The ``labelmap-codec`` workload: DVID's compressed label Block codec, in this process, per 64^3 block.

``dvid.datatype.labelmap.codec`` next to the plain numpy reference of the spec (image-label.md §4.3,
below as ``reference_encode``/``reference_decode``: one ``np.unique`` for the labels, one for the
per-sub-block palettes, a bit array per bit width), on DVID's test data: the four real 64^3
segmentations (FIB-19 and CX samples), DVID's own encoded Block of FIB-19 sample 1, and the random
10-label block of ``stream_1block.dat`` (every sub-block holds all 10 labels: 4 bits per voxel, the
codec's worst case among realistic blocks).  Figures are p50 ms per block over interleaved rounds (ours,
then the reference, order alternating), so machine drift hits both alike; targets: encode <= 5 ms and
decode <= 2 ms per real block.  Also timed: decode with a replacement label table (``table=``, how a
body mapping is applied) and ``label_counts``, next to decode + ``np.unique``.
"""

from __future__ import annotations

import gzip
import struct
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from bench.harness import BenchError
from bench.report import Ratio, TimedFigure, WorkloadReport
from bench.workloads import Env
from dvid.datatype.labelmap import codec

DATA_DIR = Path(__file__).resolve().parents[1] / "tests" / "data"
SAMPLES = {
    "fib19-1": "fib19-64x64x64-sample1.dat.gz",
    "fib19-2": "fib19-64x64x64-sample2.dat.gz",
    "cx-1": "cx-64x64x64-sample1.dat.gz",
    "cx-2": "cx-64x64x64-sample2.dat.gz",
}
DVID_BLOCK = "fib19-64x64x64-sample1-block.dat.gz"
STREAM = "stream_1block.dat"
EDGE = 64
BLOCK_BYTES = EDGE**3 * 8
ENCODE_TARGET_MS = 5.0
DECODE_TARGET_MS = 2.0


# ---- the spec's reference implementation (plain numpy) ---------------------------------------
def _widths(ns: np.ndarray) -> np.ndarray:
    return np.where(ns > 1, np.ceil(np.log2(np.maximum(ns, 2))), 0).astype(np.int64)


def reference_decode(buf: bytes) -> np.ndarray:
    """Spec §4.3's reference decoder: a Block -> (nz, ny, nx) uint64 (no validation)."""
    gx, gy, gz, n = struct.unpack_from("<4I", buf, 0)
    lab = np.frombuffer(buf, "<u8", n, 16)
    if n == 1:
        return np.full((gz * 8, gy * 8, gx * 8), lab[0], np.uint64)
    nsb = gx * gy * gz
    p = 16 + 8 * n
    ns = np.frombuffer(buf, "<u2", nsb, p).astype(np.int64)
    p += 2 * nsb
    pal = np.frombuffer(buf, "<u4", int(ns.sum()), p)
    p += 4 * int(ns.sum())
    vals = np.frombuffer(buf, np.uint8, -1, p)
    bits = _widths(ns)
    vstart = np.concatenate([[0], np.cumsum(64 * bits)[:-1]])
    pstart = np.concatenate([[0], np.cumsum(ns)[:-1]])
    out = np.zeros((nsb, 512), np.uint64)
    one = ns == 1
    out[one] = lab[pal[pstart[one]]][:, None]
    for b in np.unique(bits[bits > 0]):
        sel = np.nonzero(bits == b)[0]
        raw = vals[(vstart[sel][:, None] + np.arange(64 * b))]
        idx = np.unpackbits(raw, axis=1).reshape(len(sel), 512, b) @ (1 << np.arange(b - 1, -1, -1))
        out[sel] = lab[pal[pstart[sel][:, None] + idx]]
    return out.reshape(gz, gy, gx, 8, 8, 8).transpose(0, 3, 1, 4, 2, 5).reshape(gz * 8, gy * 8, gx * 8)


def reference_encode(vol: np.ndarray) -> bytes:
    """Spec §4.3's reference encoder: sorted label table, palettes in table order (as dvid's codec)."""
    nz, ny, nx = vol.shape
    gz, gy, gx = nz // 8, ny // 8, nx // 8
    nsb = gz * gy * gx
    sb = vol.astype(np.uint64).reshape(gz, 8, gy, 8, gx, 8).transpose(0, 2, 4, 1, 3, 5).reshape(nsb, 512)
    labels, inv = np.unique(sb, return_inverse=True)
    n = labels.size
    if n == 1:
        return struct.pack("<4IQ", gx, gy, gz, 1, int(labels[0]))
    keys, kinv = np.unique(np.arange(nsb)[:, None] * n + inv.reshape(nsb, 512), return_inverse=True)
    ns = np.bincount(keys // n, minlength=nsb)
    local = kinv.reshape(nsb, 512) - (np.cumsum(ns) - ns)[:, None]
    bits = _widths(ns)
    chunks: dict[int, bytes] = {}
    for b in np.unique(bits[bits > 0]).tolist():
        sel = np.nonzero(bits == b)[0]
        bitarr = (local[sel][:, :, None] >> np.arange(b - 1, -1, -1)) & 1
        packed = np.packbits(bitarr.astype(np.uint8).reshape(len(sel), 512 * b), axis=1)
        chunks.update(zip(sel.tolist(), (row.tobytes() for row in packed), strict=True))
    return b"".join(
        [
            struct.pack("<4I", gx, gy, gz, n),
            labels.astype("<u8").tobytes(),
            ns.astype("<u2").tobytes(),
            (keys % n).astype("<u4").tobytes(),
            *(chunks[i] for i in range(nsb) if bits[i]),
        ]
    )


# ---- data ------------------------------------------------------------------------------------
def _read(name: str) -> bytes:
    path = DATA_DIR / name
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BenchError(f"labelmap-codec data {path}: {exc}") from None


def stream_block(raw: bytes) -> bytes:
    """The one Block of a framed ``POST blocks`` stream (``i32 bx, by, bz; u32 n; gzip``)."""
    (n,) = struct.unpack_from("<I", raw, 12)
    if len(raw) != 16 + n:
        raise BenchError(f"{STREAM}: frame of {n} bytes in a {len(raw)}-byte stream")
    return gzip.decompress(raw[16:])


def volumes() -> dict[str, np.ndarray]:
    """The real 64^3 segmentations and the random 10-label block, by short name."""
    out = {}
    for short, name in SAMPLES.items():
        raw = gzip.decompress(_read(name))
        if len(raw) != BLOCK_BYTES:
            raise BenchError(f"{name} holds {len(raw):,} bytes, expected {BLOCK_BYTES:,}")
        out[short] = np.frombuffer(raw, "<u8").reshape(EDGE, EDGE, EDGE)
    out["random-10"] = reference_decode(stream_block(_read(STREAM)))
    return out


# ---- timing ----------------------------------------------------------------------------------
def decode_and_count(block: bytes) -> tuple[np.ndarray, np.ndarray]:
    """label_counts' baseline: the whole volume, then np.unique."""
    labels, counts = np.unique(codec.decode_block(block), return_counts=True)
    return labels, counts


def interleaved_ms(fns: list[Callable[[], object]], rounds: int) -> list[list[float]]:
    """Per-call seconds of each fn over ``rounds`` rounds, the order reversed every other round."""
    times: list[list[float]] = [[] for _ in fns]
    for fn in fns:  # warm-up: caches, lazy imports
        fn()
    order = list(range(len(fns)))
    for r in range(rounds):
        for i in order if r % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            fns[i]()
            times[i].append(time.perf_counter() - t0)
    return times


def labelmap_codec(env: Env) -> WorkloadReport:
    """Encode/decode ms per 64^3 block, dvid's codec vs the spec's numpy reference (see the module doc)."""
    rounds = env.options.codec_rounds
    report = WorkloadReport("labelmap-codec")
    vols = volumes()
    dvid_block = gzip.decompress(_read(DVID_BLOCK))
    if not np.array_equal(codec.decode_block(dvid_block), vols["fib19-1"]):
        raise BenchError("dvid's own block of fib19 sample 1 did not decode to the sample (codec bug)")
    report.notes.append(
        f"p50 over {rounds} interleaved rounds per figure, this process, one thread; 'ref' is the"
        " spec's plain numpy codec (image-label.md §4.3)"
    )

    def figure(name: str, seconds: list[float]) -> float:
        fig = TimedFigure.of(name, seconds, BLOCK_BYTES)
        report.timed.append(fig)
        return fig.p50_ms

    for short, vol in vols.items():
        block = codec.encode_block(vol)
        if block != reference_encode(vol) or not np.array_equal(codec.decode_block(block), vol):
            raise BenchError(f"{short}: the codec disagrees with the reference (codec bug)")
        real = short != "random-10"
        enc, ref_enc = interleaved_ms(
            [partial(codec.encode_block, vol), partial(reference_encode, vol)],
            rounds if real else max(rounds // 4, 3),
        )
        enc_ms = figure(f"encode {short} ({len(block):,} B)", enc)
        ref_enc_ms = figure(f"encode {short}, ref", ref_enc)
        table = codec.label_table(block) % np.uint64(1000) + np.uint64(1)  # a body per label
        dec, ref_dec, mapped, counts, unique = interleaved_ms(
            [
                partial(codec.decode_block, block),
                partial(reference_decode, block),
                partial(codec.decode_block, block, table=table),
                partial(codec.label_counts, block),
                partial(decode_and_count, block),
            ],
            rounds,
        )
        dec_ms = figure(f"decode {short}", dec)
        ref_dec_ms = figure(f"decode {short}, ref", ref_dec)
        figure(f"decode {short} table= (mapped)", mapped)
        counts_ms = figure(f"label_counts {short}", counts)
        unique_ms = figure(f"decode + np.unique {short}", unique)
        op = "<=" if real else ""  # targets for the real segmentations only
        report.ratios += [
            Ratio(f"encode {short} ms", enc_ms, "ms", op, ENCODE_TARGET_MS if real else None),
            Ratio(f"decode {short} ms", dec_ms, "ms", op, DECODE_TARGET_MS if real else None),
            Ratio(f"encode {short}: ref / ours", ref_enc_ms / enc_ms),
            Ratio(f"decode {short}: ref / ours", ref_dec_ms / dec_ms),
            Ratio(f"label_counts {short}: decode+unique / ours", unique_ms / counts_ms),
        ]
    (dec,) = interleaved_ms([lambda: codec.decode_block(dvid_block)], rounds)
    figure("decode dvid's own fib19-1 block", dec)
    return report
