"""A seed corpus: valid requests to the fuzzed repo's instances, which the fuzzer sends mutated.

Route declarations tell a path's shape and a body's media type, not what makes a body valid, so
merges, splits, syncs, moves and block posts would rarely succeed from declarations alone. These
seeds (one or a few per such endpoint, paths under ``/api/node/{uuid}/``) get the fuzz past the
first checks; :func:`bench.fuzzing.generate.build_request` changes their version, a path segment,
the query, the method or the body before sending them.
"""

from __future__ import annotations

import gzip
import json
import struct
from dataclasses import dataclass

import lz4.block
import numpy as np

from dvid.datatype.common import kvproto


@dataclass(frozen=True)
class Seed:
    """A valid request: ``path`` is under ``/api/node/{uuid}/`` (``{uuid}``: the version fuzzed),
    or, starting with ``/api/``, a whole path (``{root}``: the committed root)."""

    method: str
    path: str
    body: bytes = b""


def _json(obj: object) -> bytes:
    return json.dumps(obj).encode()


def _rle(runs: list[tuple[int, int, int, int]]) -> bytes:
    """DVID's legacy sparsevol: header, voxel count, run count, runs (x, y, z, length) as int32."""
    return bytes([0, 3, 0, 0]) + struct.pack("<II", 0, len(runs)) + np.asarray(runs, "<i4").tobytes()


def _key_values() -> bytes:
    msg = kvproto.KeyValues()
    for key, value in (("seeded", b"\x00\x01"), ("a", b"x" * 100)):
        msg.kvs.add(key=key, value=value)
    return msg.SerializeToString()


def seeds(points: tuple[tuple[int, int, int], ...]) -> tuple[Seed, ...]:
    """The corpus for the repo :class:`bench.fuzzing.fixture.Populator` builds (``points``: where
    its annotation elements are)."""
    p0, p1 = ("_".join(map(str, p)) for p in points[:2])
    labels16 = np.full((16, 16, 16), 5, "<u8").tobytes()
    element = {
        "Pos": [70, 71, 72],
        "Kind": "PreSyn",
        "Tags": ["t0"],
        "Rels": [{"Rel": "PreSynTo", "To": [1, 2, 3]}],
    }
    return (
        Seed("POST", "bodies/merge", b"[3,4]"),
        Seed("POST", "bodies/split/2", _rle([(5, 20, 0, 10), (5, 21, 0, 10), (40, 30, 9, 3)])),
        Seed("POST", "bodies/split/1?splitlabel=77", _rle([(0, 0, 0, 64)])),
        Seed("POST", "bodies/split-coarse/2", _rle([(0, 0, 0, 1)])),
        Seed("DELETE", "bodies/area/3/32_32_32/0_32_0"),
        Seed("POST", "bodies/nextlabel/5"),
        Seed("POST", "bodies/resync"),
        Seed("GET", "bodies/sparsevol-by-point/10_25_3"),
        Seed("GET", "bodies/sparsevol/2?minx=0&maxx=20&exact=false&compression=lz4"),
        Seed("HEAD", "bodies/sparsevol/3?minz=5&maxz=8"),
        Seed("GET", "bodies/sparsevol-coarse/2"),
        Seed("POST", "segmentation/sync", _json({"sync": "bodies"})),
        Seed("POST", "bodies/sync", _json({"sync": "segmentation"})),
        Seed("POST", "synapses/sync", _json({"sync": "segmentation"})),
        Seed("POST", "sizes/sync", _json({"sync": "synapses"})),
        Seed("GET", "segmentation/labels", _json([[1, 2, 3], [10, 30, 5]])),
        Seed("GET", "segmentation/label/10_30_5"),
        Seed("GET", "segmentation/blocks/32_32_32/0_0_0?compression=uncompressed"),
        Seed("GET", "segmentation/pseudocolor/xy/64_64/0_0_3/png"),
        Seed("POST", "segmentation/raw/0_1_2/16_16_16/3_3_3", labels16),
        Seed(
            "POST",
            "segmentation/raw/0_1_2/16_16_16/3_3_3?compression=lz4",
            lz4.block.compress(labels16, store_size=False),
        ),
        Seed("POST", "segmentation/raw/0_1_2/16_16_16/3_3_3?compression=gzip", gzip.compress(labels16)),
        Seed("POST", "segmentation/pyramid?levels=1"),
        Seed("GET", "sizes/counts/PostSyn", b"[1,2,3]"),
        Seed("GET", "sizes/threshold/1/AllSyn?offset=1&n=2"),
        Seed("POST", "sizes/reload"),
        Seed("POST", "synapses/labels", _json({"3": json.dumps([element])})),
        Seed("POST", f"synapses/move/{p0}/70_70_70"),
        Seed("DELETE", f"synapses/element/{p1}"),
        Seed("POST", "synapses/elements", _json([element])),
        Seed("POST", "synapses/blocks", _json({"1,1,1": [element]})),
        Seed("POST", "synapses/reload?check=true"),
        Seed("GET", "synapses/tag/t0?relationships=true"),
        Seed("GET", "synapses/label/2?relationships=verbose"),
        Seed("GET", "synapses/roi/region"),
        Seed("GET", "synapses/scan?keysOnly=true&byCoord=true"),
        Seed("POST", "region/ptquery", b"[[1,2,3],[40,40,40]]"),
        Seed("POST", "region/roi", b"[[0,0,0,3],[1,1,-2,2]]"),
        Seed("DELETE", "region/roi"),
        Seed("GET", "region/mask/0_1_2/64_64_64/0_0_0"),
        Seed("GET", "region/partition?batchsize=2&optimized=true"),
        Seed("POST", "grayscale/resolution", b"[4,4,40]"),
        Seed("POST", "grayscale/extents", _json({"MinPoint": [0, 0, 0], "MaxPoint": [100, 100, 100]})),
        Seed("GET", "grayscale/rawkey?x=1&y=2&z=3"),
        Seed("GET", "grayscale/subvolblocks/64_64_64/0_0_0"),
        Seed("GET", "grayscale/specificblocks?blocks=0,0,0,1,0,0&compression=uncompressed"),
        Seed("POST", "grayscale/blocks/0_0_2/2", bytes(range(256)) * 256),
        Seed("POST", "grayscale/pyramid?levels=2"),
        Seed("GET", "grayscale/raw/xy/64_64/0_0_5/jpg:80"),
        Seed("GET", "grayscale/isotropic/xz/64_64/0_5_0/png"),
        Seed("GET", "grayscale/raw/0_1_2/64_64_64/0_0_0?roi=region"),
        Seed("GET", "gray16/raw/0_1_2/32_32_32/0_0_0?compression=lz4"),
        Seed("POST", "floats/raw/0_1_2/8_8_8/0_0_0?compression=gzip", gzip.compress(bytes(8**3 * 4))),
        Seed("POST", "kv/keyvalues", _key_values()),
        Seed("GET", "kv/keyvalues?json=true", b'["canary","a"]'),
        Seed("GET", "kv/keyrangevalues/a/z?tar=true"),
        Seed("GET", "kv/key/canary?byte_start=3&byte_end=10"),
        Seed("POST", "kv/key/new", b"\x00\xff" * 50),
        Seed("POST", "/api/node/{root}/branch", _json({"branch": "side", "note": "fuzz"})),
        Seed("POST", "/api/node/{root}/tag", _json({"tag": "v1"})),
        Seed(
            "POST",
            "/api/repo/{uuid}/merge",
            b'{"mergeType": "conflict-free", "parents": ["{root}", "{root}"]}',
        ),
        Seed(
            "POST",
            "/api/repo/{uuid}/instance",
            _json({"typename": "labelblk", "dataname": "more", "BlockSize": "16,16,16"}),
        ),
        Seed("POST", "/api/repo/{uuid}/transfer/check", b"\x80"),
        Seed("POST", "/api/repo/{uuid}/log", _json({"log": ["a", "b"]})),
        Seed("POST", "/api/node/{uuid}/note", _json({"note": "fuzzed"})),
        *_labelmap_seeds(),
    )


def _labelmap_seeds() -> tuple[Seed, ...]:
    """Valid edits and reads of the labelmap ``supervoxels`` (bodies 1 (supervoxels 1, 2), 3, 4)."""
    block = np.zeros((32, 32, 32), "<u8")
    block[:, :, 16:] = 7
    from dvid.datatype.labelmap import codec, proto

    stream = struct.pack("<iiiI", 3, 0, 0, 0) + gzip.compress(codec.encode_block(block))
    stream = stream[:12] + struct.pack("<I", len(stream) - 16) + stream[16:]
    ops = proto.MappingOps()
    op = ops.mappings.add()
    op.mapped, op.original[:] = 3, [9]
    lm = "supervoxels"
    return (
        Seed("POST", f"{lm}/merge", b"[1, 3]"),
        Seed("POST", f"{lm}/cleave/1", b"[2]"),
        Seed("POST", f"{lm}/renumber", b"[40, 4]"),
        Seed("POST", f"{lm}/split-supervoxel/3?downres=true", _rle([(0, 40, 10, 30), (0, 41, 10, 30)])),
        Seed("POST", f"{lm}/blocks?downres=true", stream),
        Seed("POST", f"{lm}/ingest-supervoxels?scale=1", stream),
        Seed("POST", f"{lm}/mappings", ops.SerializeToString()),
        Seed("GET", f"{lm}/mapping?nolookup=true", b"[1, 2, 3, 99]"),
        Seed("GET", f"{lm}/labels?supervoxels=true", b"[[1, 2, 3], [40, 40, 40]]"),
        Seed("GET", f"{lm}/sizes", b"[1, 3, 4, 77]"),
        Seed("GET", f"{lm}/indices-compressed", b"[1, 3]"),
        Seed("GET", f"{lm}/sparsevol-by-point/10_10_10?format=blocks"),
        Seed("GET", f"{lm}/sparsevols-coarse/1/10"),
        Seed("GET", f"{lm}/proximity/1,3,4"),
        Seed("GET", f"{lm}/history/1/{{root}}/{{uuid}}"),
        Seed("GET", f"{lm}/mutations-range/{{root}}/{{uuid}}"),
        Seed("GET", f"{lm}/blocks/64_64_64/0_0_0?compression=gzip&scale=1"),
        Seed("GET", f"{lm}/raw/0_1_2/64_64_32/0_0_0?compression=googlegzip&scale=1"),
        Seed("GET", f"{lm}/pseudocolor/xy/64_64/0_0_5"),
        Seed(
            "POST",
            f"{lm}/raw/0_1_2/32_32_32/32_0_0?compression=lz4",
            lz4.block.compress(block.tobytes(), store_size=False),
        ),
    )
