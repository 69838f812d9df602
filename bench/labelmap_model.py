"""The data of the ``labelmap`` workload, and the in-process limit: dvid's labelmap model, no HTTP.

Data (synthetic supervoxel tilings, deterministic):

- **R1**, bodies for the edits: x, y in [0, 512), z in [0, 80). Supervoxels tile it in cells of
  40^3 voxels (~64,000 each) whose faces wave by a few voxels (so every supervoxel touches up to 8
  blocks of 64^3, as real ones do), except the corner x, y >= 384, which is one supervoxel S of
  1.31 million voxels. Body A gathers the supervoxels whose cell lies at x < 256, body B the others
  and S: ~10^7 voxels each, formed by one ``merge`` each.
- **R2**, the volume of the voxel reads and writes: 256^3 at (0, 0, 128), tiled the same way with
  two variants of supervoxel ids (the POSTs alternate them), mapped to bodies of 3x3x3 cells by one
  ``POST mappings`` before any voxel is written (27 bodies; reads apply a mapping of 892 supervoxels).

:class:`InprocLabelmap` holds the same instances in a :class:`dvid.repos.RepoManager` on a temporary
LevelDB store in this process and makes the model calls the HTTP handlers make, so each HTTP figure
can stand next to the same work without HTTP.
"""

from __future__ import annotations

import gzip
import os
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dvid.datatype.common import rle
from dvid.datatype.common.geometry import Box
from dvid.datatype.common.labels import GOOGLEGZIP_LEVEL, encode_googlegzip
from dvid.datatype.labelmap import codec
from dvid.datatype.labelmap.mutationlog import ModInfo
from dvid.datatype.labelmap.proto import MappingOps
from dvid.repos import RepoManager
from dvid.storage.leveldb import LevelDBEngine
from dvid.storage.stores import Stores

VOXEL = np.dtype("<u8")
BS = 64
TILE = 40
MAX_DOWNRES = 3
#: R1: x, y in [0, R1_XY), z in [0, R1_Z)
R1_XY, R1_Z = 512, 80
#: The corner x, y >= S_XY of R1 is supervoxel S.
S_XY = 384
#: The split-supervoxel piece: the voxels of S with x < S_XY + SPLIT_DX (about 10^6).
SPLIT_DX = 98
#: R2: a cube of R2_EDGE at R2_OFFSET.
R2_EDGE = 256
R2_OFFSET = (0, 0, 128)
SV_BASE = 1_000_000_000
S_ID = 2_000_000_000
R2_BASE = (3_000_000_000, 3_100_000_000)
BODY_BASE = 4_000_000_000
_SHIFT = 1000  # keeps cell indices positive under the waves


def _cells(shape_zyx: tuple[int, int, int], origin_xyz: tuple[int, int, int]) -> tuple[np.ndarray, ...]:
    """The (ix, iy, iz) cell of every voxel of a box: cells of TILE voxels with waving faces."""
    nz, ny, nx = shape_zyx
    x0, y0, z0 = origin_xyz
    z, y, x = np.ogrid[z0 : z0 + nz, y0 : y0 + ny, x0 : x0 + nx]
    jx = np.rint(5 * np.sin(y / 7.0 + z / 11.0)).astype(np.int64)
    jy = np.rint(5 * np.sin(x / 9.0 + z / 5.0)).astype(np.int64)
    jz = np.rint(4 * np.sin(x / 13.0 + y / 6.0)).astype(np.int64)
    return (x + jx + _SHIFT) // TILE, (y + jy + _SHIFT) // TILE, (z + jz + _SHIFT) // TILE


def _ids(base: int, ix: np.ndarray, iy: np.ndarray, iz: np.ndarray) -> np.ndarray:
    return (base + ix + 100 * (iy + 100 * iz)).astype(VOXEL)


@dataclass
class Volumes:
    """Every array and id the workload uses (see the module doc)."""

    r1: np.ndarray  # (z, y, x) supervoxels of R1
    body_a: list[int]  # the merge that forms body A: target first
    body_b: list[int]  # ... body B (with S)
    r2: list[np.ndarray]  # the two variants of R2
    mapping: bytes  # MappingOps: R2's supervoxels of both variants -> bodies
    split_runs: np.ndarray  # (n, 4) x, y, z, length: the piece of S split off
    split_voxels: int
    frames: list[list[tuple[tuple[int, int, int], bytes]]]  # R2's blocks per variant, gzip'd Blocks

    @property
    def a(self) -> int:
        return self.body_a[0]

    @property
    def b(self) -> int:
        return self.body_b[0]

    def cleave_half(self) -> list[int]:
        """Every other supervoxel of body A (half of them)."""
        return sorted(self.body_a)[1::2]


def build_volumes() -> Volumes:
    ix, iy, iz = _cells((R1_Z, R1_XY, R1_XY), (0, 0, 0))
    r1 = _ids(SV_BASE, ix, iy, iz)
    r1[:, S_XY:, S_XY:] = S_ID
    svs = np.unique(r1)
    cell_x = (((svs - SV_BASE) % 100).astype(np.int64) * TILE) - _SHIFT + TILE // 2
    in_a = (cell_x < R1_XY // 2) & (svs != S_ID)
    body_a = [int(v) for v in svs[in_a]]
    body_b = [int(v) for v in svs[~in_a]]
    mask = np.zeros((R1_Z, R1_XY, R1_XY), dtype=bool)
    mask[:, S_XY:, S_XY : S_XY + SPLIT_DX] = True
    split_runs = _mask_runs(mask)

    cx, cy, cz = _cells((R2_EDGE,) * 3, R2_OFFSET)
    r2 = [_ids(base, cx, cy, cz) for base in R2_BASE]
    ops = MappingOps()
    for base, variant in zip(R2_BASE, r2, strict=True):
        svs2 = np.unique(variant)
        rel = (svs2 - np.uint64(base)).astype(np.int64)  # the cell digits: ix + 100 (iy + 100 iz)
        gx, gy, gz = (rel % 100) // 3, (rel // 100 % 100) // 3, (rel // 10000) // 3
        bodies = BODY_BASE + gx + 100 * (gy + 100 * gz)
        for body in np.unique(bodies).tolist():
            op = ops.mappings.add()
            op.mapped = int(body)
            op.original.extend(int(v) for v in svs2[bodies == body])
    frames = [_block_frames(v) for v in r2]
    return Volumes(r1, body_a, body_b, r2, ops.SerializeToString(), split_runs, int(mask.sum()), frames)


def _block_frames(vol: np.ndarray) -> list[tuple[tuple[int, int, int], bytes]]:
    """R2's 64^3 blocks as POST blocks sends them: block coordinate and gzip'd compressed Block."""
    n = R2_EDGE // BS
    bz0 = R2_OFFSET[2] // BS
    out = []
    for bz in range(n):
        for by in range(n):
            for bx in range(n):
                block = vol[bz * BS : (bz + 1) * BS, by * BS : (by + 1) * BS, bx * BS : (bx + 1) * BS]
                payload = gzip.compress(codec.encode_block(np.ascontiguousarray(block)), 1, mtime=0)
                out.append(((bx, by, bz + bz0), payload))
    return out


def _mask_runs(mask: np.ndarray) -> np.ndarray:
    """The x-runs of a (z, y, x) mask at the origin as (n, 4) int32 x, y, z, length."""
    nz, ny, nx = mask.shape
    pad = np.zeros((nz * ny, nx + 2), np.int8)
    pad[:, 1:-1] = mask.reshape(-1, nx)
    d = np.diff(pad, axis=1)
    rows, xs = np.nonzero(d == 1)
    _, xe = np.nonzero(d == -1)
    zz, yy = np.divmod(rows, ny)
    return np.stack([xs, yy, zz, xe - xs], axis=1).astype(np.int32)


def sparsevol_payload(runs: np.ndarray) -> bytes:
    return rle.encode_sparsevol(runs)


def box_of(size: tuple[int, int, int], offset: tuple[int, int, int]) -> Box:
    return Box(offset, size)


class InprocLabelmap:
    """The workload's instances in this process (see the module doc): labelmap ``seg`` (R1 and R2,
    MaxDownresLevel 3), labelmap ``ingest`` (POST blocks) and labelblk ``legacy`` (R2 variant 0,
    converted into fresh labelmaps)."""

    def __init__(self, path: Path | None = None) -> None:
        self._tmp = None if path else tempfile.TemporaryDirectory(prefix="dvid-bench-labelmap-")
        self.engine = LevelDBEngine(path or self._tmp.name)  # type: ignore[union-attr]
        self.manager = RepoManager(Stores.single(self.engine))
        self.repo = self.manager.new_repo("bench-labelmap")
        self.root = self.repo.dag.root
        self.work = self.root
        self.seg = self._new("labelmap", "seg", MaxDownresLevel=str(MAX_DOWNRES))
        self.ingest = self._new("labelmap", "ingest")
        self.legacy = self._new("labelblk", "legacy")
        self.children = 0
        self.converted: dict[str, Any] = {}
        self.mod = ModInfo.now("bench", "bench")

    def close(self) -> None:
        self.engine.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def _new(self, typename: str, name: str, **settings: str) -> Any:
        config = {"typename": typename, "dataname": name, "BlockSize": "64,64,64", **settings}
        return self.manager.new_instance(self.repo, self.work, config)

    def ctx(self, inst: Any, node: Any = None) -> Any:
        node = node or self.work
        return inst.context(self.repo.dag.ancestry(node.version))

    # ---- setup (as the HTTP side does it) -------------------------------------------------------
    def setup(self, vols: Volumes) -> None:
        ctx = self.ctx(self.seg, self.root)
        ops = MappingOps.FromString(vols.mapping)
        svs = np.concatenate([np.array(op.original, dtype=np.uint64) for op in ops.mappings])
        bodies = np.concatenate([np.full(len(op.original), op.mapped, np.uint64) for op in ops.mappings])
        self.seg.store_mapping(ctx, svs, bodies)
        self.post_raw(vols.r1, (0, 0, 0), self.root)
        for merge in (vols.body_a, vols.body_b):
            self.seg.merge(ctx, merge[0], merge[1:], self.seg.new_mutation_id(), self.mod)
        self.post_raw(vols.r2[0], R2_OFFSET, self.root)
        self.legacy.write(self.ctx(self.legacy, self.root), Box(R2_OFFSET, (R2_EDGE,) * 3), vols.r2[0])
        self.manager.commit(self.repo, self.root, "volumes")
        self.work = self.manager.new_version(self.repo, self.root, "work")

    def fresh_child(self) -> Any:
        """A new branch off the committed root (where bodies A and B are apart, S is whole)."""
        self.children += 1
        return self.manager.branch(self.repo, self.root, f"inproc-{self.children}")

    # ---- the model calls the handlers make -------------------------------------------------------
    def post_raw(self, vol: np.ndarray, offset: tuple[int, int, int], node: Any = None) -> None:
        """``POST raw``: a mutation id; blocks encoded in parallel layers (as the handler); write."""
        self.seg.new_mutation_id()
        nz, ny, nx = vol.shape
        box = Box(offset, (nx, ny, nz))
        first, last = box.block_range(self.seg.block_size)
        layers = range(first[2], last[2] + 1)
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            parts = list(pool.map(lambda z: self.seg.blocks.plan_write(box, vol, range(z, z + 1)), layers))
        plan = parts[0]
        for part in parts[1:]:
            plan.merge(part)
        self.seg.write(self.ctx(self.seg, node), box, vol, plan)

    def get_raw(self, size: tuple[int, int, int], offset: tuple[int, int, int], scale: int = 0) -> np.ndarray:
        ctx = self.ctx(self.seg)
        return self.seg.view(ctx, scale, False).blocks.read_box(ctx, Box(offset, size))

    def googlegzip(self, offset: tuple[int, int, int], scale: int) -> bytes:
        """``GET raw/0_1_2/64_64_64/<offset>?compression=googlegzip&scale=``, a chunk of one block: the
        stored Block transcoded (the handler's path)."""
        ctx = self.ctx(self.seg)
        view = self.seg.view(ctx, scale, False)
        stored = ctx.get(view.blocks.tkey(*(o // BS for o in offset)))
        if stored is None:
            return self.googlegzip_decoded(offset, scale)
        return zlib.compress(view.label_codec.google(stored), GOOGLEGZIP_LEVEL, wbits=31)

    def googlegzip_decoded(self, offset: tuple[int, int, int], scale: int) -> bytes:
        """The same chunk by the general path: the volume read, then encoded (what any box costs)."""
        return encode_googlegzip(self.get_raw((BS, BS, BS), offset, scale))

    def labels(self, points: np.ndarray) -> np.ndarray:
        return self.seg.labels_at(self.ctx(self.seg), points)

    def sparsevol(self, body: int) -> bytes:
        ctx = self.ctx(self.seg)
        index = self.seg.body_index(ctx, body)
        coords = self.seg.label_blocks(index, 0, None)
        runs = rle.merge_runs(np.concatenate(list(self.seg.body_runs(ctx, index, 0, coords))))
        return rle.encode_sparsevol(runs)

    def post_blocks(self, frames: list[tuple[tuple[int, int, int], bytes]]) -> None:
        """``POST blocks`` (indexing, extents, max labels) in its batches of 64 blocks."""
        self.ingest.new_mutation_id()
        ctx = self.ctx(self.ingest)
        for i in range(0, len(frames), 64):
            self.ingest.store_blocks(ctx, frames[i : i + 64], True, True)

    def merge(self, node: Any, target: int, merged: list[int]) -> None:
        self.seg.merge(self.ctx(self.seg, node), target, merged, self.seg.new_mutation_id(), self.mod)

    def cleave(self, node: Any, body: int, svs: list[int]) -> None:
        mutid = self.seg.new_mutation_id()
        ctx = self.ctx(self.seg, node)
        new_label, _ = self.seg.reserve_labels(ctx.ancestry, 1)
        self.seg.cleave(ctx, body, svs, new_label, mutid, self.mod)

    def split_supervoxel(self, node: Any, sv: int, runs: np.ndarray) -> None:
        mutid = self.seg.new_mutation_id()
        ctx = self.ctx(self.seg, node)
        start, _ = self.seg.reserve_labels(ctx.ancestry, 2)
        self.seg.split_supervoxel(ctx, sv, runs, (start, start + 1), mutid, self.mod, True)

    def new_labelmap(self, name: str) -> Any:
        """A labelmap ``name`` (MaxDownresLevel 3) at the work version, to convert into."""
        self.converted[name] = self._new("labelmap", name, MaxDownresLevel=str(MAX_DOWNRES))
        return self.converted[name]

    def convert(self, name: str) -> None:
        """``POST <name>/ingest-labelblk?source=legacy`` to its end (``name`` made by new_labelmap)."""
        target = self.converted[name]
        ctx = self.ctx(target)
        while not target.ingest_labelblk(ctx, "legacy", 1 << 16).complete:
            pass
