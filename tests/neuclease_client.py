"""The requests neuclease makes to DVID, and its parsing of the answers, for the client-scenario tests.

Each method mirrors one ``neuclease.dvid`` function (named the same): the same path, the same query
parameters (``u=<user>&app=neuclease`` on every request, booleans as ``true``/``false``), the same GET
bodies, and the same checks and parsing of the response (``raise_for_status`` first, as neuclease does).
neuclease itself is not installable from PyPI (conda only, with libdvid, vigra and dvidutils), so this
module re-states what it sends and what it accepts; it shares no code with dvid beyond the protobuf
message classes (built from the same ``.proto`` files neuclease compiles).

Blocks are decoded here as libdvid's ``inflate_labelarray_blocks3D_from_raw`` does (DVID's compressed
label Block, gzip'd, in a framed stream) and encoded as libdvid's ``encode_label_block`` does, both
straight from the format's description, independently of ``dvid.datatype.labelmap.codec``.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import struct
from typing import Any

import networkx as nx
import numpy as np
import requests

from dvid.datatype.common import kvproto
from dvid.datatype.labelmap import proto

TIMEOUT = 60

#: neuclease's reading of a mutation record's Go timestamp, "2021-02-14 00:58:02.708146297 -0500 EST m=+…".
MUTATION_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?) ([+-]\d{4})")


# ---------------------------------------------------------------------------------------------
# Payload codecs (libdvid's and neuclease.dvid.rle's, re-stated)
# ---------------------------------------------------------------------------------------------


def decode_label_block(buf: bytes) -> np.ndarray:
    """One DVID compressed label Block (not gzip'd) -> (nz, ny, nx) uint64, sub-block by sub-block."""
    gx, gy, gz, n = struct.unpack_from("<4I", buf, 0)
    labels = np.frombuffer(buf, "<u8", n, 16)
    out = np.zeros((gz * 8, gy * 8, gx * 8), np.uint64)
    if n == 1:
        out[:] = labels[0]
        return out
    nsb = gx * gy * gz
    pos = 16 + 8 * n
    ns = np.frombuffer(buf, "<u2", nsb, pos).astype(int)
    pos += 2 * nsb
    palette = np.frombuffer(buf, "<u4", int(ns.sum()), pos)
    pos += 4 * int(ns.sum())
    first = 0
    for i in range(nsb):
        sz, rem = divmod(i, gy * gx)
        sy, sx = divmod(rem, gx)
        view = out[sz * 8 : sz * 8 + 8, sy * 8 : sy * 8 + 8, sx * 8 : sx * 8 + 8]
        pal = palette[first : first + ns[i]]
        first += ns[i]
        if ns[i] == 1:
            view[:] = labels[pal[0]]
        elif ns[i] > 1:
            bits = int(np.ceil(np.log2(ns[i])))
            raw = np.frombuffer(buf, np.uint8, 64 * bits, pos)
            pos += 64 * bits
            index = np.unpackbits(raw).reshape(512, bits) @ (1 << np.arange(bits - 1, -1, -1))
            view[:] = labels[pal[index]].reshape(8, 8, 8)
    return out


def encode_label_block(block: np.ndarray) -> bytes:
    """A (64, 64, 64) uint64 block as a DVID compressed label Block (libdvid's ``encode_label_block``)."""
    labels, inverse = np.unique(block, return_inverse=True)
    inverse = inverse.reshape(block.shape)
    header = struct.pack("<4I", 8, 8, 8, len(labels)) + labels.astype("<u8").tobytes()
    if len(labels) == 1:
        return header
    counts, palettes, values = [], [], []
    for sz in range(8):
        for sy in range(8):
            for sx in range(8):
                sub = inverse[sz * 8 : sz * 8 + 8, sy * 8 : sy * 8 + 8, sx * 8 : sx * 8 + 8].ravel()
                pal, local = np.unique(sub, return_inverse=True)
                counts.append(len(pal))
                palettes.append(pal.astype("<u4"))
                if len(pal) > 1:
                    bits = int(np.ceil(np.log2(len(pal))))
                    shifts = np.arange(bits - 1, -1, -1)
                    values.append(np.packbits(((local[:, None] >> shifts) & 1).astype(np.uint8)).tobytes())
    return header + np.array(counts, "<u2").tobytes() + np.concatenate(palettes).tobytes() + b"".join(values)


def inflate_labelarray_blocks(data: bytes, shape_zyx, offset_zyx) -> np.ndarray:
    """libdvid's ``inflate_labelarray_blocks3D_from_raw``: a framed stream of gzip'd Blocks -> volume."""
    out = np.zeros(shape_zyx, np.uint64)
    pos = 0
    while pos < len(data):
        bx, by, bz, nbytes = np.frombuffer(data[pos : pos + 16], np.int32)
        pos += 16
        block = decode_label_block(gzip.decompress(data[pos : pos + nbytes]))
        pos += int(nbytes)
        z, y, x = np.array([bz, by, bx]) * 64 - np.asarray(offset_zyx)
        out[z : z + 64, y : y + 64, x : x + 64] = block
    return out


def encode_labelarray_blocks(corners_zyx, blocks) -> bytes:
    """neuclease's ``encode_labelarray_blocks``: int32 x,y,z block coordinate, int32 length, gzip(Block)."""
    stream = io.BytesIO()
    for corner, block in zip(np.asarray(corners_zyx, np.int32), blocks, strict=True):
        encoded = gzip.compress(encode_label_block(np.asarray(block, np.uint64)), 6)
        stream.write(bytes((corner[::-1] // 64).astype(np.int32)))
        stream.write(np.int32(len(encoded)).tobytes())
        stream.write(encoded)
    return stream.getvalue()


def parse_rle_response(data: bytes) -> np.ndarray:
    """neuclease.dvid.rle.parse_rle_response (format='ranges'): header checks, then [[z, y, x0, x1]]."""
    descriptor, ndim, run_dimension, _reserved = data[:4]
    assert descriptor == 0, f"Expected a descriptor of 0, got {descriptor}"
    assert ndim == 3, f"Expected dimensions of 3, got {ndim}"
    assert run_dimension == 0, f"Expected run-length to be along dimension 0 (X), got {run_dimension}"
    _voxel_count, num_spans = np.frombuffer(data[4:12], np.uint32)
    rles = np.frombuffer(data[12:], np.int32).reshape(-1, 4)
    assert len(rles) == num_spans, (len(rles), num_spans)
    x, y, z, length = rles.T
    return np.stack([z, y, x, x + length - 1], axis=1)


def construct_rle_payload(ranges_zyxx: np.ndarray) -> bytes:
    """neuclease.dvid.rle.construct_rle_payload_from_ranges: the split-supervoxel body."""
    ranges = np.asarray(ranges_zyxx, np.int32)
    z, y, x0, x1 = ranges.T
    runs = np.stack([x0, y, z, x1 - x0 + 1], axis=1).astype(np.int32)
    header = bytes([0, 3, 0, 0]) + np.array([0, len(runs)], np.uint32).tobytes()
    return header + runs.tobytes()


def decode_labelindex_blocks(block_ids: np.ndarray) -> np.ndarray:
    """neuclease's decode of a LabelIndex block key, ``(bz<<42)|(by<<21)|bx`` (21 bits, signed), to ZYX."""
    ids = np.asarray(block_ids, np.uint64)
    coords = np.zeros((len(ids), 3), np.int32)
    for i, shift in enumerate((42, 21, 0)):
        v = ((ids >> np.uint64(shift)) & np.uint64(0x1FFFFF)).astype(np.int64)
        coords[:, i] = np.where(v >= 1 << 20, v - (1 << 21), v)
    return coords


def parse_dvid_version(version: str) -> tuple[int, ...]:
    """fetch_mappings' reading of "DVID Version": a leading v, then the first 4 .- fields as ints."""
    assert version.startswith("v")
    parts = re.split(r"[.-]", version[1:])[:4]
    return tuple(int(p) for p in parts)


# ---------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------


class Neuclease:
    """neuclease.dvid's calls against one server, with a session that adds ``u`` and ``app``."""

    def __init__(self, server: str, user: str = "tester", admin_token: str | None = None) -> None:
        self.server = server
        self.user = user
        self.session = requests.Session()
        self.session.params = {"u": user, "app": "neuclease"}  # default_dvid_session()
        if admin_token:  # neuclease adds it to every request when DVID_ADMIN_TOKEN is set
            self.session.params["admintoken"] = admin_token

    def _url(self, path: str) -> str:
        return f"{self.server}/api/{path}"

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.session.get(self._url(path), timeout=TIMEOUT, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.session.post(self._url(path), timeout=TIMEOUT, **kw)

    def ok(self, method: str, path: str, **kw: Any) -> requests.Response:
        r = self.session.request(method, self._url(path), timeout=TIMEOUT, **kw)
        if r.status_code >= 400:  # what dvid_api_wrapper shows of a failed call
            raise requests.HTTPError(f"{r.status_code} {method} {r.url}: {r.text[:10_000]}", response=r)
        return r

    def fetch_generic_json(self, path: str, json: Any = None) -> Any:
        return self.ok("GET", path, json=json).json()

    # server.py
    def fetch_server_info(self) -> dict[str, Any]:
        return self.fetch_generic_json("server/info")

    def reload_metadata(self) -> None:
        self.ok("POST", "server/reload-metadata")

    # repo.py
    def fetch_repos_info(self) -> dict[str, Any]:
        return self.fetch_generic_json("repos/info")

    def create_repo(self, alias: str, description: str) -> str:
        return self.ok("POST", "repos", json={"alias": alias, "description": description}).json()["root"]

    def fetch_repo_info(self, uuid: str) -> dict[str, Any]:
        return self.fetch_generic_json(f"repo/{uuid}/info")

    def post_repo_info(self, uuid: str, **fields: str) -> None:
        self.ok("POST", f"repo/{uuid}/info", json=fields)

    def fetch_repo_log(self, uuid: str) -> list[str]:
        return self.fetch_generic_json(f"repo/{uuid}/log")["log"]

    def post_repo_log(self, uuid: str, messages: list[str]) -> None:
        self.ok("POST", f"repo/{uuid}/log", json={"log": messages})

    def create_instance(self, uuid, instance, typename, versioned=True, compression=None, tags=(),
                        type_specific_settings=None) -> None:  # fmt: skip
        settings: dict[str, Any] = {"dataname": instance, "typename": typename}
        if not versioned:
            settings["versioned"] = "false"
        if compression is not None:
            settings["Compression"] = compression
        if tags:
            settings["Tags"] = ",".join(tags)
        settings.update(type_specific_settings or {})
        self.ok("POST", f"repo/{uuid}/instance", json=settings)

    def create_voxel_instance(self, uuid, instance, typename, versioned=True, compression=None,
                              block_size=64, voxel_size=8.0, voxel_units="nanometers",
                              type_specific_settings=None) -> None:  # fmt: skip
        settings = dict(type_specific_settings or {})
        settings["BlockSize"] = ",".join(map(str, 3 * (block_size,)))
        settings["VoxelSize"] = ",".join(map(str, 3 * (voxel_size,)))
        settings["VoxelUnits"] = voxel_units
        self.create_instance(uuid, instance, typename, versioned, compression,
                             type_specific_settings=settings)  # fmt: skip

    def create_labelmap_instance(
        self, uuid, instance, versioned=True, enable_index=True, max_scale=0
    ) -> None:
        settings = {
            "IndexedLabels": str(enable_index).lower(),
            "CountLabels": str(enable_index).lower(),
            "MaxDownresLevel": str(max_scale),
        }
        self.create_voxel_instance(uuid, instance, "labelmap", versioned, type_specific_settings=settings)

    def fetch_repo_dag(self, uuid: str) -> nx.DiGraph:
        """Nodes keyed by UUID; edges from the integer VersionIDs in Children."""
        info = self.fetch_repo_info(uuid)
        by_version = {n["VersionID"]: n for n in info["DAG"]["Nodes"].values()}
        g = nx.DiGraph()
        for node in by_version.values():
            g.add_node(node["UUID"], **node)
        for node in by_version.values():
            for child in node["Children"]:
                g.add_edge(node["UUID"], by_version[child]["UUID"])
        return g

    def expand_uuid(self, uuid: str, repo_uuid: str | None = None) -> str:
        full = self.fetch_repo_info(repo_uuid or uuid)["DAG"]["Nodes"].keys()
        matches = [u for u in full if u.startswith(uuid)]
        assert len(matches) == 1, matches
        return matches[0]

    def find_branch_nodes(self, repo_uuid: str, branch: str = "") -> list[str]:
        dag = self.fetch_repo_dag(repo_uuid)
        return [u for u in nx.topological_sort(dag) if dag.nodes[u]["Branch"] == branch]

    def find_master(self, repo_uuid: str) -> str:
        return self.find_branch_nodes(repo_uuid)[-1]

    def find_repo_root(self, uuid: str) -> str:
        dag = self.fetch_repo_dag(uuid)
        return next(u for u in nx.topological_sort(dag))

    def is_locked(self, uuid: str) -> bool:
        info = self.fetch_repo_info(uuid)
        return info["DAG"]["Nodes"][self.expand_uuid(uuid)]["Locked"]

    # node.py
    def fetch_instance_info(self, uuid: str, instance: str) -> dict[str, Any]:
        return self.fetch_generic_json(f"node/{uuid}/{instance}/info")

    def post_instance_info(self, uuid: str, instance: str, info: dict[str, Any]) -> None:
        self.ok("POST", f"node/{uuid}/{instance}/info", json=info)

    def post_commit(self, uuid: str, note: str, log: list[str] | None = None) -> str:
        body: dict[str, Any] = {"note": note}
        if log:
            body["log"] = log
        return self.ok("POST", f"node/{uuid}/commit", json=body).json()["committed"]

    def fetch_commit(self, uuid: str) -> bool:
        return self.ok("GET", f"node/{uuid}/commit").json()["Locked"]

    def post_branch(self, uuid: str, branch: str, note: str) -> str:
        return self.ok("POST", f"node/{uuid}/branch", json={"branch": branch, "note": note}).json()["child"]

    def post_newversion(self, uuid: str, note: str) -> str:
        return self.ok("POST", f"node/{uuid}/newversion", json={"note": note}).json()["child"]

    def post_tag(self, uuid: str, tag: str, note: str) -> None:
        self.ok("POST", f"node/{uuid}/tag", json={"tag": tag, "note": note})

    def fetch_note(self, uuid: str) -> str:
        return self.ok("GET", f"node/{uuid}/note").json()["note"]

    def post_note(self, uuid: str, note: str) -> None:
        self.ok("POST", f"node/{uuid}/note", json={"note": note})

    def fetch_node_log(self, uuid: str) -> list[str]:
        return self.ok("GET", f"node/{uuid}/log").json()["log"]

    def post_node_log(self, uuid: str, messages: list[str]) -> None:
        self.ok("POST", f"node/{uuid}/log", json={"log": messages})

    def post_blob(self, uuid: str, instance: str, data: bytes | None = None, json: Any = None) -> str:
        return self.ok("POST", f"node/{uuid}/{instance}/blobstore", data=data, json=json).json()["reference"]

    def fetch_blob(self, uuid: str, instance: str, reference: str) -> bytes:
        return self.ok("GET", f"node/{uuid}/{instance}/blobstore/{reference}").content

    def post_tags(self, uuid: str, instance: str, tags: dict[str, str], replace: bool = False) -> None:
        params = {"replace": "true"} if replace else {}
        self.ok("POST", f"node/{uuid}/{instance}/tags", json=tags, params=params)

    # voxels.py
    def fetch_raw(self, uuid, instance, box_zyx, throttle=False, *, dtype=np.uint8, scale=0) -> np.ndarray:
        box = np.asarray(box_zyx)
        shape = box[1] - box[0]
        params = {}
        if throttle:
            params["throttle"] = "true"
        if scale:
            params["scale"] = str(scale)
        path = f"node/{uuid}/{instance}/raw/0_1_2/{'_'.join(map(str, shape[::-1]))}/"
        path += "_".join(map(str, box[0][::-1]))
        r = self.ok("GET", path, params=params)
        assert len(r.content) == np.prod(shape) * np.dtype(dtype).itemsize, "unexpected response length"
        return np.frombuffer(r.content, dtype).reshape(shape)

    def post_raw(self, uuid, instance, offset_zyx, data, throttle=False, mutate=True) -> None:
        shape = "_".join(map(str, data.shape[::-1]))
        offset = "_".join(map(str, offset_zyx[::-1]))
        params = {}
        if throttle:
            params["throttle"] = "true"
        if mutate:
            params["mutate"] = "true"
        self.ok("POST", f"node/{uuid}/{instance}/raw/0_1_2/{shape}/{offset}", params=params,
                data=bytes(np.ascontiguousarray(data)))  # fmt: skip

    def post_extents(self, uuid, instance, box_zyx) -> None:
        box = np.asarray(box_zyx)
        extents = {"MinPoint": box[0, ::-1].tolist(), "MaxPoint": (box[1, ::-1] - 1).tolist()}
        self.ok("POST", f"node/{uuid}/{instance}/extents", json=extents)

    def post_resolution(self, uuid, instance, resolution) -> None:
        self.ok("POST", f"node/{uuid}/{instance}/resolution", json=list(resolution))

    # labelmap: labels and counters
    def n(self, uuid: str, instance: str, endpoint: str) -> str:
        return f"node/{uuid}/{instance}/{endpoint}"

    def fetch_maxlabel(self, uuid, instance, dag=None) -> int:
        """With neuclease's DVID-issue-284 walk up the DAG when the error text says "No maximum label"."""
        try:
            return self.fetch_generic_json(self.n(uuid, instance, "maxlabel"))["maxlabel"]
        except requests.HTTPError as ex:
            if "No maximum label" not in ex.response.content.decode("utf-8"):
                raise
            uuid = self.expand_uuid(uuid)
            dag = dag if dag is not None else self.fetch_repo_dag(uuid)
            parents = list(dag.predecessors(uuid))
            if not parents:
                raise
            return max(self.fetch_maxlabel(p, instance, dag) for p in parents)

    def post_maxlabel(self, uuid, instance, maxlabel) -> None:
        self.ok("POST", self.n(uuid, instance, f"maxlabel/{maxlabel}"))

    def fetch_nextlabel(self, uuid, instance) -> int:
        return self.fetch_generic_json(self.n(uuid, instance, "nextlabel"))["nextlabel"]

    def post_nextlabel(self, uuid, instance, num_labels) -> tuple[np.uint64, np.uint64]:
        d = self.ok("POST", self.n(uuid, instance, f"nextlabel/{num_labels}")).json()
        start, end = d["start"], d["end"]
        assert end - start + 1 == num_labels, f"Requested {num_labels}, but received ({start}, {end})"
        return np.uint64(start), np.uint64(end)

    def post_set_nextlabel(self, uuid, instance, label) -> None:
        self.ok("POST", self.n(uuid, instance, f"set-nextlabel/{label}"))

    def fetch_lastmod(self, uuid, instance, body) -> dict[str, Any]:
        return self.ok("GET", self.n(uuid, instance, f"lastmod/{body}")).json()

    def fetch_mutation_id(self, uuid, instance, body) -> int:
        return self.fetch_generic_json(self.n(uuid, instance, f"lastmod/{body}"))["mutation id"]

    def fetch_supervoxels(self, uuid, instance, body_id) -> np.ndarray:
        svs = np.array(self.ok("GET", self.n(uuid, instance, f"supervoxels/{body_id}")).json(), np.uint64)
        svs.sort()
        return svs

    def fetch_size(self, uuid, instance, label_id, supervoxels=False) -> int:
        sv = str(bool(supervoxels)).lower()
        return self.fetch_generic_json(self.n(uuid, instance, f"size/{label_id}?supervoxels={sv}"))["voxels"]

    def fetch_sizes(self, uuid, instance, label_ids, supervoxels=False) -> list[int]:
        sv = str(bool(supervoxels)).lower()
        return self.fetch_generic_json(self.n(uuid, instance, f"sizes?supervoxels={sv}"), list(label_ids))

    def fetch_listlabels(self, uuid, instance, start=None, number=1_000_000, sizes=False) -> np.ndarray:
        params: dict[str, Any] = {}
        if start is not None:
            params["start"] = int(start)
        if number:
            params["number"] = int(number)
        if sizes:
            params["sizes"] = "true"
        r = self.ok("GET", self.n(uuid, instance, "listlabels"), params=params)
        labels = np.frombuffer(r.content, np.uint64)
        return labels.reshape(-1, 2) if sizes else labels

    def fetch_label(self, uuid, instance, coordinate_zyx, supervoxels=False, scale=0) -> np.uint64:
        coord = "_".join(map(str, np.array(coordinate_zyx)[::-1]))
        params = {}
        if supervoxels:
            params["supervoxels"] = "true"
        if scale != 0:
            params["scale"] = str(scale)
        return np.uint64(
            self.ok("GET", self.n(uuid, instance, f"label/{coord}"), params=params).json()["Label"]
        )

    def fetch_labels(self, uuid, instance, coordinates_zyx, scale=0, supervoxels=False) -> np.ndarray:
        params = {}
        if supervoxels:
            params["supervoxels"] = "true"
        if scale != 0:
            params["scale"] = str(scale)
        coords_xyz = np.asarray(coordinates_zyx, np.int32)[:, ::-1].tolist()
        r = self.ok("GET", self.n(uuid, instance, "labels"), json=coords_xyz, params=params)
        return np.array(r.json(), np.uint64)

    # labelmap: sparse volumes and splits
    def fetch_sparsevol_rles(self, uuid, instance, label, scale=0, supervoxels=False, box_zyx=None) -> bytes:
        params: dict[str, Any] = {"scale": str(scale)}
        if supervoxels:
            params["supervoxels"] = "true"
        if box_zyx is not None:
            box = np.asarray(box_zyx) - [(0, 0, 0), (1, 1, 1)]
            params.update(dict(zip(["minz", "miny", "minx", "maxz", "maxy", "maxx"], box.flat, strict=True)))
        return self.ok("GET", self.n(uuid, instance, f"sparsevol/{label}"), params=params).content

    def fetch_sparsevol(self, uuid, instance, label, scale=0, supervoxels=False, box_zyx=None) -> np.ndarray:
        return parse_rle_response(
            self.fetch_sparsevol_rles(uuid, instance, label, scale, supervoxels, box_zyx)
        )

    def fetch_sparsevol_head(self, uuid, instance, label, supervoxels=False) -> bool:
        sv = str(bool(supervoxels)).lower()
        r = self.session.head(self._url(self.n(uuid, instance, f"sparsevol/{label}?supervoxels={sv}")),
                              timeout=TIMEOUT)  # fmt: skip
        if r.status_code == 200:
            return True
        if r.status_code == 204:
            return False
        raise requests.HTTPError(f"HEAD sparsevol -> {r.status_code}", response=r)

    def fetch_sparsevol_coarse(self, uuid, instance, label_id, supervoxels=False) -> np.ndarray:
        """Block coordinates ZYX (scale 6) of the blocks holding the label."""
        sv = str(bool(supervoxels)).lower()
        r = self.ok("GET", self.n(uuid, instance, f"sparsevol-coarse/{label_id}?supervoxels={sv}"))
        ranges = parse_rle_response(r.content)
        coords = [(z, y, x) for z, y, x0, x1 in ranges for x in range(x0, x1 + 1)]
        return np.array(coords, np.int32).reshape(-1, 3)

    def post_split_supervoxel(self, uuid, instance, supervoxel, rle_payload, downres=True,
                              split_id=None, remain_id=None) -> tuple[int, int]:  # fmt: skip
        params = {}
        if not downres:
            params["downres"] = "false"
        if split_id is not None:
            params["split"] = str(split_id)
        if remain_id is not None:
            params["remain"] = str(remain_id)
        r = self.ok("POST", self.n(uuid, instance, f"split-supervoxel/{supervoxel}"), data=rle_payload,
                    params=params)  # fmt: skip
        results = r.json()
        return results["SplitSupervoxel"], results["RemainSupervoxel"]

    def fetch_supervoxel_splits_from_dvid(self, uuid, instance) -> dict[str, list[tuple[int, ...]]]:
        flat = self.ok("GET", self.n(uuid, instance, "supervoxel-splits")).json()
        events = {}
        for node_uuid, event_list in zip(*2 * [iter(flat)], strict=True):
            assert isinstance(node_uuid, str)
            assert isinstance(event_list, list)
            events[node_uuid] = [tuple(e) for e in event_list]  # (mutid, old, remain, split)
        return events

    # labelmap: mappings and edits
    def fetch_mapping(self, uuid, instance, supervoxel_ids, nolookup=False) -> np.ndarray:
        params = {"nolookup": "true"} if nolookup else {}
        r = self.ok("GET", self.n(uuid, instance, "mapping"), json=list(map(int, supervoxel_ids)),
                    params=params)  # fmt: skip
        return np.array(r.json(), np.uint64)

    def fetch_mappings(self, uuid, instance, format=None, consistent=False) -> np.ndarray:
        """(N, 2) sv, body; the format chosen from the server's DVID Version as neuclease does."""
        if format is None:
            parts = parse_dvid_version(self.fetch_server_info()["DVID Version"])
            format = "binary" if parts >= (0, 8, 24, 15) else "csv"
        params = {}
        if format == "binary":
            params["format"] = "binary"
        if consistent:
            params["consistent"] = "true"
        r = self.ok("GET", self.n(uuid, instance, "mappings"), params=params)
        if format == "binary":
            return np.frombuffer(r.content, np.uint64).reshape(-1, 2)
        rows = [line.split(" ") for line in r.text.splitlines() if line]  # pd.read_csv(sep=' ')
        return np.array(rows, dtype=np.uint64).reshape(-1, 2)

    def post_mappings(self, uuid, instance, mapping: dict[int, int], mutid: int) -> None:
        ops = proto.MappingOps()
        by_body: dict[int, list[int]] = {}
        for sv, body in mapping.items():
            by_body.setdefault(body, []).append(sv)
        for body, svs in sorted(by_body.items()):
            op = ops.mappings.add()
            op.mutid = mutid
            op.mapped = body
            op.original.extend(svs)
        self.ok("POST", self.n(uuid, instance, "mappings"), data=ops.SerializeToString())

    def post_renumber(self, uuid, instance, renumbering: dict[int, int]) -> None:
        payload = [v for old, new in renumbering.items() for v in (new, old)]
        self.ok("POST", self.n(uuid, instance, "renumber"), json=payload)

    def post_merge(self, uuid, instance, main_label, other_labels) -> None:
        self.ok("POST", self.n(uuid, instance, "merge"), json=[int(main_label), *map(int, other_labels)])

    def post_cleave(self, uuid, instance, body_id, supervoxel_ids) -> int:
        r = self.ok("POST", self.n(uuid, instance, f"cleave/{body_id}"), json=list(map(int, supervoxel_ids)))
        return r.json()["CleavedLabel"]

    def fetch_mutations(self, uuid, instance, userid=None) -> list[dict[str, Any]]:
        """The records, with neuclease's patch of old logs: "-complete" appended where it is missing."""
        params = {"userid": userid} if userid else {}
        msgs = self.ok("GET", self.n(uuid, instance, "mutations"), params=params).json()
        for msg in msgs:
            assert "UUID" in msg
            if msg["Action"] in ("cleave", "merge", "split-supervoxel", "split", "renumber"):
                msg["Action"] += "-complete"
        return msgs

    def fetch_history(self, uuid, instance, body, from_uuid, to_uuid) -> list[dict[str, Any]]:
        """The records DVID writes back to back (``{..}{..}``, no array). neuclease's ``r.json()`` reads
        only one of them (its docstring: "doesn't work very well"), so they are split here."""
        text = self.ok("GET", self.n(uuid, instance, f"history/{body}/{from_uuid}/{to_uuid}")).text
        decoder, records, pos = json.JSONDecoder(), [], 0
        while pos < len(text):
            record, pos = decoder.raw_decode(text, pos)
            records.append(record)
        return records

    # labelmap: label indexes
    def fetch_labelindex(self, uuid, instance, label) -> Any:
        index = proto.LabelIndexMsg()
        index.ParseFromString(self.ok("GET", self.n(uuid, instance, f"index/{label}")).content)
        return index

    def fetch_labelindices(self, uuid, instance, labels) -> Any:
        indices = proto.LabelIndices()
        indices.ParseFromString(self.ok("GET", self.n(uuid, instance, "indices"), json=list(labels)).content)
        return indices

    def post_labelindex(self, uuid, instance, label, index) -> None:
        assert index.label == label
        self.ok("POST", self.n(uuid, instance, f"index/{label}"), data=index.SerializeToString())

    def post_labelindices(self, uuid, instance, indices: list[Any]) -> None:
        msg = proto.LabelIndices()
        msg.indices.extend(indices)
        self.ok("POST", self.n(uuid, instance, "indices"), data=msg.SerializeToString())

    # labelmap: voxels and blocks
    def fetch_labelmap_voxels(self, uuid, instance, box_zyx, scale=0, throttle=False, supervoxels=False,
                              *, raw_response=False) -> Any:  # fmt: skip
        box = np.asarray(box_zyx)
        aligned = np.array([box[0] // 64 * 64, -(-box[1] // 64) * 64])
        shape = aligned[1] - aligned[0]
        params: dict[str, Any] = {"compression": "blocks"}
        if scale:
            params["scale"] = scale
        if throttle:
            params["throttle"] = "true"
        if supervoxels:
            params["supervoxels"] = "true"
        path = f"blocks/{'_'.join(map(str, shape[::-1]))}/{'_'.join(map(str, aligned[0][::-1]))}"
        r = self.ok("GET", self.n(uuid, instance, path), params=params)
        if raw_response:
            return r.content
        vol = inflate_labelarray_blocks(r.content, shape, aligned[0])
        lo, hi = box - aligned[0]
        return vol[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]

    def fetch_labelmap_specificblocks(self, uuid, instance, corners_zyx, scale=0, supervoxels=False) -> dict:
        corners = np.asarray(corners_zyx)
        params: dict[str, Any] = {"blocks": ",".join(map(str, (corners[:, ::-1] // 64).reshape(-1)))}
        if scale:
            params["scale"] = scale
        if supervoxels:
            params["supervoxels"] = "true"
        content = self.ok("GET", self.n(uuid, instance, "specificblocks"), params=params).content
        blocks: dict[tuple[int, int, int], np.ndarray | None] = {tuple(c): None for c in corners.tolist()}
        start = 0
        while start < len(content):
            bx, by, bz, nbytes = np.frombuffer(content[start : start + 16], np.int32)
            buf = content[start : start + 16 + nbytes]
            blocks[(64 * int(bz), 64 * int(by), 64 * int(bx))] = inflate_labelarray_blocks(
                buf, (64, 64, 64), (64 * bz, 64 * by, 64 * bx)
            )
            start += 16 + int(nbytes)
        return blocks

    def post_labelmap_blocks(self, uuid, instance, corners_zyx, blocks, scale=0, downres=False,
                             noindexing=False, throttle=False, ingestion_mode=False) -> None:  # fmt: skip
        body = encode_labelarray_blocks(corners_zyx, blocks)
        opts = {"downres": downres, "noindexing": noindexing, "throttle": throttle}
        endpoint = "blocks"
        if ingestion_mode:
            endpoint = "ingest-supervoxels"
            del opts["noindexing"], opts["downres"]
        params = {"scale": str(scale)}
        params.update({k: "true" for k, v in opts.items() if v})
        self.ok("POST", self.n(uuid, instance, endpoint), params=params, data=body)

    # annotation.py
    def post_sync(self, uuid, instance, sync_instances, replace=False) -> None:
        params = {"replace": "true"} if replace else {}
        self.ok("POST", self.n(uuid, instance, "sync"), json={"sync": ",".join(sync_instances)},
                params=params)  # fmt: skip

    def post_reload(self, uuid, instance, check=False, inmemory=True) -> None:
        params = {}
        if check:
            params["check"] = "true"
        if not inmemory:
            params["inmemory"] = "false"
        self.ok("POST", self.n(uuid, instance, "reload"), params=params)

    def fetch_tags(self, uuid, instance) -> Any:
        return self.ok("GET", self.n(uuid, instance, "tags")).json()

    def fetch_annotation_label(self, uuid, instance, label, relationships=False) -> list[dict]:
        params = {"relationships": str(bool(relationships)).lower()}
        return self.ok("GET", self.n(uuid, instance, f"label/{label}"), params=params).json()

    def fetch_annotation_tag(self, uuid, instance, tag, relationships=False) -> list[dict]:
        params = {"relationships": str(bool(relationships)).lower()}
        return self.ok("GET", self.n(uuid, instance, f"tag/{tag}"), params=params).json()

    def fetch_annotation_roi(self, uuid, instance, roi, roi_uuid=None) -> list[dict]:
        roi_spec = f"{roi},{roi_uuid}" if roi_uuid else roi
        return self.ok("GET", self.n(uuid, instance, f"roi/{roi_spec}")).json()

    def fetch_elements(self, uuid, instance, box_zyx) -> list[dict]:
        box = np.asarray(box_zyx)
        shape, offset = "_".join(map(str, (box[1] - box[0])[::-1])), "_".join(map(str, box[0][::-1]))
        return self.ok("GET", self.n(uuid, instance, f"elements/{shape}/{offset}")).json() or []

    def fetch_all_elements(self, uuid, instance) -> dict[str, list[dict]]:
        return self.ok("GET", self.n(uuid, instance, "all-elements")).json()

    def fetch_blocks(self, uuid, instance, box_zyx) -> dict[str, list[dict]]:
        box = np.asarray(box_zyx)
        shape, offset = "_".join(map(str, (box[1] - box[0])[::-1])), "_".join(map(str, box[0][::-1]))
        return self.ok("GET", self.n(uuid, instance, f"blocks/{shape}/{offset}")).json()

    def post_elements(self, uuid, instance, elements, kafkalog=True) -> None:
        params = {} if kafkalog else {"kafkalog": "off"}
        self.ok("POST", self.n(uuid, instance, "elements"), json=elements, params=params)

    def post_blocks(self, uuid, instance, blocks, kafkalog=True) -> None:
        params = {} if kafkalog else {"kafkalog": "off"}
        self.ok("POST", self.n(uuid, instance, "blocks"), json=blocks, params=params)

    def delete_element(self, uuid, instance, coord_zyx, kafkalog=True) -> None:
        params = {} if kafkalog else {"kafkalog": "off"}
        coord = "_".join(map(str, coord_zyx[::-1]))
        self.ok("DELETE", self.n(uuid, instance, f"element/{coord}"), params=params)

    def post_move(self, uuid, instance, from_zyx, to_zyx, kafkalog=True) -> None:
        params = {} if kafkalog else {"kafkalog": "off"}
        a, b = "_".join(map(str, from_zyx[::-1])), "_".join(map(str, to_zyx[::-1]))
        self.ok("POST", self.n(uuid, instance, f"move/{a}/{b}"), params=params)

    # roi.py
    def fetch_roi(self, uuid, instance) -> list[list[int]]:
        return self.ok("GET", self.n(uuid, instance, "roi")).json()

    def post_roi(self, uuid, instance, ranges_zyxx) -> None:
        self.ok("POST", self.n(uuid, instance, "roi"), json=[list(map(int, r)) for r in ranges_zyxx])

    # keyvalue/_keyvalue.py
    def fetch_keys(self, uuid, instance) -> list[str]:
        return self.ok("GET", self.n(uuid, instance, "keys")).json()

    def fetch_keyrange(self, uuid, instance, key1=" ", key2="\x7f") -> list[str]:
        return self.ok("GET", self.n(uuid, instance, f"keyrange/{key1}/{key2}")).json()

    def fetch_keyrangevalues(self, uuid, instance, key1, key2, *, fmt="protobuf") -> Any:
        params = {fmt: "true", "check": "false"}
        r = self.ok("GET", self.n(uuid, instance, f"keyrangevalues/{key1}/{key2}"), params=params)
        if fmt == "protobuf":
            kvs = kvproto.KeyValues()
            kvs.ParseFromString(r.content)
            return {kv.key: kv.value for kv in kvs.kvs}
        if fmt == "json":
            return r.json()
        return r.content

    def fetch_key(self, uuid, instance, key) -> bytes:
        return self.ok("GET", self.n(uuid, instance, f"key/{key}")).content

    def fetch_key_exists(self, uuid, instance, key) -> bool:
        r = self.session.head(self._url(self.n(uuid, instance, f"key/{key}")), timeout=TIMEOUT)
        if r.status_code == 200:
            return True
        if r.status_code == 404:
            return False
        raise requests.HTTPError(f"HEAD key -> {r.status_code}", response=r)

    def post_key(self, uuid, instance, key, value: bytes | None = None, json: Any = None) -> None:
        self.ok("POST", self.n(uuid, instance, f"key/{key}"), data=value, json=json)

    def delete_key(self, uuid, instance, key) -> None:
        self.ok("DELETE", self.n(uuid, instance, f"key/{key}"))

    def fetch_keyvalues(self, uuid, instance, keys, *, fmt="protobuf") -> Any:
        if fmt == "protobuf":
            msg = kvproto.Keys()
            msg.keys.extend(keys)
            r = self.ok("GET", self.n(uuid, instance, "keyvalues"), data=msg.SerializeToString())
            kvs = kvproto.KeyValues()
            kvs.ParseFromString(r.content)
            return {kv.key: kv.value for kv in kvs.kvs}
        if fmt == "json":
            params = {"json": "true", "check": "false"}
            return self.ok("GET", self.n(uuid, instance, "keyvalues"), json=list(keys), params=params).json()
        r = self.ok("GET", self.n(uuid, instance, "keyvalues"), json=list(keys), params={"jsontar": "true"})
        return r.content

    def post_keyvalues(self, uuid, instance, keyvalues: dict[str, bytes]) -> None:
        kvs = kvproto.KeyValues()
        for k, v in keyvalues.items():
            kvs.kvs.add(key=k, value=v)
        self.ok("POST", self.n(uuid, instance, "keyvalues"), data=kvs.SerializeToString())

    # tarsupervoxels.py
    def create_tarsupervoxel_instance(self, uuid, instance, sync_instance, extension, tags=(),
                                      disable_versioning=False) -> None:  # fmt: skip
        if extension.startswith("."):
            extension = extension[1:]
        self.create_instance(uuid, instance, "tarsupervoxels", versioned=not disable_versioning, tags=tags,
                             type_specific_settings={"Extension": extension})  # fmt: skip
        self.post_tarsupervoxel_sync(uuid, instance, sync_instance)

    def post_tarsupervoxel_sync(self, uuid, instance, sync_instance, replace=False) -> None:
        params = {"replace": str(bool(replace)).lower()}
        self.ok("POST", self.n(uuid, instance, "sync"), params=params, json={"sync": sync_instance})

    def fetch_tarfile(self, uuid, instance, body_id, output=None, *, check_head=False) -> Any:
        """The tar's bytes, or written to the file object ``output``; with check_head, whether every
        supervoxel has a blob (HEAD: 200 yes, 400 no)."""
        url = self._url(self.n(uuid, instance, f"tarfile/{body_id}"))
        if check_head:
            r = self.session.head(url, timeout=TIMEOUT)
            if r.status_code in (200, 400):
                return r.status_code == 200
            r.raise_for_status()
        with self.session.get(url, stream=True, timeout=TIMEOUT) as r:
            r.raise_for_status()
            if output is None:
                return r.content
            for chunk in r.iter_content(chunk_size=1 << 20):
                output.write(chunk)
            return None

    def post_load(self, uuid, instance, tar: bytes) -> None:
        self.ok("POST", self.n(uuid, instance, "load"), data=tar)

    def fetch_exists(self, uuid, instance, supervoxels) -> dict[int, bool]:
        """neuclease answers a pandas Series indexed by supervoxel; a dict here."""
        supervoxels = [int(sv) for sv in supervoxels]
        flags = self.ok("GET", self.n(uuid, instance, "exists"), json=supervoxels).json()
        return dict(zip(supervoxels, flags, strict=True))

    def fetch_missing(self, uuid, instance, body_id) -> np.ndarray:
        return np.array(self.ok("GET", self.n(uuid, instance, f"missing/{body_id}")).json(), np.uint64)

    def fetch_supervoxel(self, uuid, instance, supervoxel_id) -> bytes:
        return self.ok("GET", self.n(uuid, instance, f"supervoxel/{supervoxel_id}")).content

    def post_supervoxel(self, uuid, instance, supervoxel_id, data: bytes) -> None:
        self.ok("POST", self.n(uuid, instance, f"supervoxel/{supervoxel_id}"), data=data)

    def delete_supervoxel(self, uuid, instance, supervoxel_id) -> None:
        self.ok("DELETE", self.n(uuid, instance, f"supervoxel/{supervoxel_id}"))
