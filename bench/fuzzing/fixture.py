"""The fuzzed repo: every datatype instantiated, synced and populated at a committed root, and an
open child version for the fuzz; canaries read back at the root.

The canaries (a kv value, volume boxes, a label body's sparsevol, annotation elements, label
counts, an roi's spans) live at the committed root, so no fuzz request may change them: a write
that reached them would be a real bug, not a side effect of the fuzz.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote

import numpy as np
import requests

from bench.fuzzing.generate import Target
from bench.fuzzing.seeds import seeds
from bench.fuzzing.values import Names
from dvid.datatype.registry import all_types
from dvid.server.app import api_router

TIMEOUT = 60.0
#: Server settings of a fuzzed server: limits small enough that no single request takes long.
SERVER_LIMITS = {"max_request_voxels": 1 << 22, "max_body_bytes": 1 << 26}
BLOCK = 32
EDGE = 64

#: name -> (type, creation settings); created in this order.
INSTANCES: dict[str, tuple[str, dict[str, str]]] = {
    "kv": ("keyvalue", {}),
    "grayscale": ("uint8blk", {"BlockSize": f"{BLOCK},{BLOCK},{BLOCK}"}),
    "gray16": ("uint16blk", {}),
    "gray32": ("uint32blk", {}),
    "gray64": ("uint64blk", {}),
    "floats": ("float32blk", {}),
    "colors": ("rgba8blk", {}),
    "segmentation": ("labelblk", {"BlockSize": f"{BLOCK},{BLOCK},{BLOCK}"}),
    "bodies": ("labelvol", {"BlockSize": f"{BLOCK},{BLOCK},{BLOCK}"}),
    "synapses": ("annotation", {}),
    "sizes": ("labelsz", {}),
    "region": ("roi", {}),
    "supervoxels": ("labelmap", {"BlockSize": f"{BLOCK},{BLOCK},{BLOCK}", "MaxDownresLevel": "1"}),
}
#: (instance, the instance it receives changes from).
SYNCS = (("bodies", "segmentation"), ("segmentation", "bodies"), ("synapses", "segmentation"),
         ("sizes", "synapses"))  # fmt: skip
KEYS = ("canary", "a", "key with space", "a/b", "ключ", "x" * 300)
LABELS = (1, 2, 3, 4)


@dataclass(frozen=True)
class Canary:
    """A value read at the committed root before and after the fuzz: ``GET`` of ``path`` under
    ``/api/node/<root>/``."""

    name: str
    path: str


CANARIES = (
    Canary("kv key", "kv/key/canary"),
    Canary("uint8 box", "grayscale/raw/0_1_2/40_30_20/10_5_3"),
    Canary("float32 box", "floats/raw/0_1_2/16_16_16/0_0_0"),
    Canary("label box", "segmentation/raw/0_1_2/64_64_64/0_0_0"),
    Canary("label body sparsevol", "bodies/sparsevol/2"),
    Canary("annotation elements", "synapses/elements/64_64_64/0_0_0"),
    Canary("annotation label", "synapses/label/3"),
    Canary("label counts", "sizes/top/10/PostSyn"),
    Canary("roi spans", "region/roi"),
    Canary("labelmap bodies", "supervoxels/raw/0_1_2/64_64_64/0_0_0"),
    Canary("labelmap supervoxels", "supervoxels/raw/0_1_2/32_32_32/0_0_0?supervoxels=true&scale=1"),
    Canary("labelmap body", "supervoxels/sparsevol/1"),
    Canary("labelmap index", "supervoxels/index/1"),
    Canary("labelmap mapping", "supervoxels/mappings"),
    Canary("labelmap log", "supervoxels/mutations"),
)


#: Real payloads read back at the root, for the fuzzer to send again, mutated: name -> (method,
#: path under /api/ with {root} for the root UUID, request body).
SAMPLES: dict[str, tuple[str, str, bytes | None]] = {
    "sparsevol": ("GET", "node/{root}/bodies/sparsevol/2", None),
    "block stream": ("GET", "node/{root}/grayscale/blocks/0_0_0/2", None),
    "label blocks": ("GET", "node/{root}/segmentation/blocks/64_64_64/0_0_0", None),
    "subvolblocks": ("GET", "node/{root}/grayscale/subvolblocks/64_64_64/0_0_0", None),
    "elements": ("GET", "node/{root}/synapses/elements/64_64_64/0_0_0", None),
    "annotation blocks": ("GET", "node/{root}/synapses/blocks/64_64_64/0_0_0", None),
    "roi spans": ("GET", "node/{root}/region/roi", None),
    "labelmap blocks": ("GET", "node/{root}/supervoxels/blocks/64_64_64/0_0_0?compression=blocks", None),
    "labelmap sparsevol": ("GET", "node/{root}/supervoxels/sparsevol/1", None),
    "label index": ("GET", "node/{root}/supervoxels/index/1", None),
    "keyvalues": ("GET", "node/{root}/kv/keyvalues", b"\x0a\x06canary\x0a\x01a"),
    "transfer stream": ("POST", "repo/{root}/transfer/export", b'{"data": ["kv", "region"]}'),
}


class Populator:
    """Builds the fuzzed repo on a server at ``base`` (``http://host:port``)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()

    def call(self, method: str, path: str, *, body: bytes | None = None, json_body: object = None) -> bytes:
        r = self.http.request(method, f"{self.base}/api/{path}", data=body, json=json_body, timeout=TIMEOUT)
        if r.status_code != 200:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r.content

    def populate(self, extra: dict[str, str] | None = None) -> Target:
        """Create, sync and fill every instance at a new repo's root, commit it, and open a child.
        ``extra`` names more instances (name -> type) to create, empty, at the root."""
        root = json.loads(self.call("POST", "repos", json_body={"alias": "fuzz"}))["root"]
        instances = {**INSTANCES, **{name: (type_name, {}) for name, type_name in (extra or {}).items()}}
        for name, (type_name, settings) in instances.items():
            config = {"typename": type_name, "dataname": name, **settings}
            self.call("POST", f"repo/{root}/instance", json_body=config)
        for name, source in SYNCS:
            self.call("POST", f"node/{root}/{name}/sync", json_body={"sync": source})
        points = self._fill(root)
        self.call("POST", f"node/{root}/commit", json_body={"note": "canaries"})
        child = json.loads(self.call("POST", f"node/{root}/newversion", json_body={"note": "fuzz"}))["child"]
        names = Names(
            uuids=(child, root),
            instances=tuple(instances),
            types=tuple(all_types()),
            keys=KEYS,
            labels=LABELS,
            points=points,
        )
        types = {name: type_name for name, (type_name, _) in instances.items()}
        samples = {
            name: self.call(method, path.format(root=root), body=body)
            for name, (method, path, body) in SAMPLES.items()
        }
        return Target(names, types, (root,), tuple(api_router().routes), samples, seeds(points))

    def _fill(self, uuid: str) -> tuple[tuple[int, int, int], ...]:
        """Write every instance's data at ``uuid``; the positions of the annotation elements."""
        rng = np.random.default_rng(7)
        node = f"node/{uuid}"
        for key in KEYS:
            self.call("POST", f"{node}/kv/key/{quote(key, safe='')}", body=bytes(range(256)) * 3)
        cube = f"raw/0_1_2/{EDGE}_{EDGE}_{EDGE}/0_0_0"
        shape = (EDGE, EDGE, EDGE)
        self.call("POST", f"{node}/grayscale/{cube}", body=rng.integers(0, 256, shape, np.uint8).tobytes())
        for name, dtype in (("gray16", "<u2"), ("gray32", "<u4"), ("gray64", "<u8")):
            self.call(
                "POST", f"{node}/{name}/{cube}", body=rng.integers(0, 1000, shape).astype(dtype).tobytes()
            )
        self.call("POST", f"{node}/floats/{cube}", body=rng.random(shape, np.float32).tobytes())
        self.call("POST", f"{node}/colors/{cube}", body=rng.integers(0, 256, (*shape, 4), np.uint8).tobytes())
        labels = np.zeros(shape, "<u8")
        labels[:, :20, :] = 1
        labels[:, 20:40, 5:50] = 2
        labels[10:30, 40:, :] = 3
        labels[40:, 50:, 60:] = 4
        self.call("POST", f"{node}/segmentation/{cube}", body=labels.tobytes())
        self.call("POST", f"{node}/supervoxels/{cube}", body=labels.tobytes())
        self.call("POST", f"{node}/supervoxels/merge", json_body=[1, 2])
        elements = []
        for i, (x, y, z) in enumerate(rng.integers(0, EDGE, (24, 3)).tolist()):
            kind = "PreSyn" if i % 3 == 0 else "PostSyn"
            elements.append({"Pos": [x, y, z], "Kind": kind, "Tags": [f"t{i % 2}"], "Prop": {"i": str(i)}})
        self.call("POST", f"{node}/synapses/elements", json_body=elements)
        self.call("POST", f"{node}/region/roi", json_body=[[0, 0, 0, 1], [0, 1, 0, 0], [1, 0, 1, 1]])
        return tuple(tuple(e["Pos"]) for e in elements)


def read_canaries(base: str, uuid: str) -> dict[str, bytes]:
    """Every canary's bytes at version ``uuid``."""
    values = {}
    with requests.Session() as http:
        for canary in CANARIES:
            r = http.get(f"{base}/api/node/{uuid}/{canary.path}", timeout=TIMEOUT)
            values[canary.name] = b"%d:" % r.status_code + r.content
    return values


def changed_canaries(before: dict[str, bytes], after: dict[str, bytes]) -> list[str]:
    """The canaries whose bytes differ."""
    return [name for name in before if before[name] != after.get(name)]
