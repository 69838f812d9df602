"""A crash at every write boundary of a label edit: the store must be consistent whichever write came last.

Each mutation of synced label data (a labelblk POST, labelvol merge and splits, an annotation
POST) runs once to count its atomic writes to the engine (batch commits, single puts and
deletes); then, for every k below that count, it runs again on a fresh store whose LevelDB
"loses power" after k of them (that write and every later one fail and are not applied), as a
process killed between two writes would leave it. A new server then opens the store, and
labelvol's sparse volumes, the annotation label index and maxlabel/nextlabel must agree with the
labelblk's voxels. SIGKILLs of real servers under load are in test_crash.py; this enumerates the
moments a random kill would rarely hit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests

from dvid.storage.engine import WriteBatch
from dvid.storage.leveldb import LevelDBEngine
from tests.serverutil import ServerThread
from tests.test_annotation_sync import rle
from tests.test_crash import sparsevol_masks

EDGE = 64
TIMEOUT = 30


class PowerCut(RuntimeError):
    """The simulated crash: this write and every later one are lost."""


class CuttableLevelDB(LevelDBEngine):
    """LevelDB counting its atomic writes; once ``cut_after`` of them are done, every write raises."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes = 0
        self.cut_after: int | None = None

    def atomic_write(self) -> None:
        if self.cut_after is not None and self.writes >= self.cut_after:
            raise PowerCut(f"power cut after {self.writes} atomic writes")
        self.writes += 1

    def put(self, key: bytes, value: bytes) -> None:
        self.atomic_write()
        super().put(key, value)

    def delete(self, key: bytes) -> None:
        self.atomic_write()
        super().delete(key)

    def batch(self) -> WriteBatch:
        return CuttableBatch(self, super().batch())


class CuttableBatch(WriteBatch):
    def __init__(self, engine: CuttableLevelDB, inner: WriteBatch) -> None:
        self.engine, self.inner = engine, inner

    def put(self, key: bytes, value: bytes) -> None:
        self.inner.put(key, value)

    def delete(self, key: bytes) -> None:
        self.inner.delete(key)

    def commit(self) -> None:
        self.engine.atomic_write()
        self.inner.commit()


def initial_labels() -> np.ndarray:
    """64^3 (z, y, x): label 1 and 2 side by side below z=32, label 3 above."""
    vol = np.full((EDGE, EDGE, EDGE), 3, dtype="<u8")
    vol[:32, :, :32] = 1
    vol[:32, :, 32:] = 2
    return vol


ELEMENTS = [(5, 5, 5), (40, 10, 20), (20, 50, 40), (60, 60, 60), (33, 31, 31)]


class Node:
    """Requests to one version of a repo on a server."""

    def __init__(self, server: ServerThread, uuid: str) -> None:
        self.base = server.api(f"node/{uuid}")

    def post(self, path: str, body: bytes | str | list | dict) -> requests.Response:
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        return requests.post(f"{self.base}/{path}", data=data, timeout=TIMEOUT)

    def get(self, path: str) -> requests.Response:
        return requests.get(f"{self.base}/{path}", timeout=TIMEOUT)


def set_up(server: ServerThread) -> Node:
    uuid = server.new_repo()
    for typename, name in [("labelblk", "labels"), ("labelvol", "bodies"), ("annotation", "synapses")]:
        server.new_instance(uuid, typename, name, BlockSize="32,32,32")
    node = Node(server, uuid)
    for path, body in [
        ("bodies/sync", {"sync": "labels"}),
        ("labels/sync", {"sync": "bodies"}),
        ("synapses/sync", {"sync": "labels,bodies"}),
        (f"labels/raw/0_1_2/{EDGE}_{EDGE}_{EDGE}/0_0_0", initial_labels().tobytes()),
        ("synapses/elements", [{"Pos": list(p), "Kind": "PostSyn"} for p in ELEMENTS[:3]]),
    ]:
        r = node.post(path, body)
        assert r.status_code == 200, r.text
    return node


MUTATIONS: dict[str, Callable[[Node], requests.Response]] = {
    "labelblk POST of a new label": lambda n: n.post(
        "labels/raw/0_1_2/32_32_32/32_32_32", np.full((32, 32, 32), 7, dtype="<u8").tobytes()
    ),
    "labelvol merge": lambda n: n.post("bodies/merge", [1, 2]),
    "labelvol split (label reserved)": lambda n: n.post(
        "bodies/split/3", rle([(0, 40, 40, 64), (0, 50, 60, 10)])
    ),
    "labelvol split to a given label": lambda n: n.post(
        "bodies/split/3?splitlabel=50", rle([(0, 40, 40, 64), (0, 50, 60, 10)])
    ),
    "labelvol split-coarse": lambda n: n.post("bodies/split-coarse/3", rle([(0, 1, 1, 2)])),
    "annotation POST": lambda n: n.post(
        "synapses/elements", [{"Pos": list(p), "Kind": "PreSyn"} for p in ELEMENTS]
    ),
}


def check_consistent(node: Node) -> list[str]:
    """labelvol, the annotation label index and maxlabel/nextlabel agree with the labelblk's voxels."""
    r = node.get(f"labels/raw/0_1_2/{EDGE}_{EDGE}_{EDGE}/0_0_0")
    r.raise_for_status()
    vol = np.frombuffer(r.content, dtype="<u8").reshape((EDGE,) * 3)
    in_use = set(np.unique(vol).tolist()) - {0}
    elements = {
        tuple(e["Pos"]) for e in node.get(f"synapses/elements/{EDGE}_{EDGE}_{EDGE}/0_0_0").json() or []
    }
    problems = []
    for label in sorted(in_use | {1, 2, 3, 4, 7, 50}):
        r = node.get(f"bodies/sparsevol/{label}")
        if label not in in_use:
            if r.status_code != 404:
                problems.append(
                    f"labelvol: label {label} is in no block but sparsevol answers {r.status_code}"
                )
        elif r.status_code != 200:
            problems.append(f"labelvol: label {label} is in the blocks but sparsevol answers {r.status_code}")
        else:
            (mask,), outside = sparsevol_masks(r.content, [(0, 0, 0)], EDGE)
            differ = int(np.count_nonzero(mask != (vol == label))) + outside
            if differ:
                problems.append(
                    f"labelvol: label {label} differs from the labelblk in {differ} voxels or runs"
                )
        listed = {tuple(e["Pos"]) for e in node.get(f"synapses/label/{label}").json()}
        expected = {p for p in elements if vol[p[2], p[1], p[0]] == label}
        if listed != expected:
            problems.append(
                f"annotation: label {label} lists {sorted(listed)}, its voxels hold {sorted(expected)}"
            )
    top = max(in_use)
    nextlabel = node.get("bodies/nextlabel").json()["nextlabel"]
    maxlabel = node.get("bodies/maxlabel").json()["maxlabel"]
    if nextlabel <= top or maxlabel < top:
        problems.append(
            f"labelvol: nextlabel {nextlabel} and maxlabel {maxlabel} while label {top} is in use"
        )
    return problems


def set_up_grayscale(server: ServerThread) -> Node:
    uuid = server.new_repo()
    server.new_instance(uuid, "uint8blk", "grayscale")
    node = Node(server, uuid)
    r = node.post(
        f"grayscale/raw/0_1_2/{EDGE}_{EDGE}_{EDGE}/0_0_0", np.full((EDGE,) * 3, 1, np.uint8).tobytes()
    )
    assert r.status_code == 200, r.text
    return node


def post_grayscale(node: Node) -> requests.Response:
    """A volume of 2s next to the first (partly over it, unaligned): it grows the extents."""
    return node.post(
        f"grayscale/raw/0_1_2/{EDGE}_{EDGE}_{EDGE}/40_8_0", np.full((EDGE,) * 3, 2, np.uint8).tobytes()
    )


def check_grayscale(node: Node) -> list[str]:
    """The second volume is wholly there or not at all, and the instance's extents cover what is stored."""
    r = node.get("grayscale/raw/0_1_2/128_128_64/0_0_0")
    r.raise_for_status()
    vol = np.frombuffer(r.content, dtype=np.uint8).reshape((64, 128, 128))
    expected_before = np.zeros_like(vol)
    expected_before[:, :EDGE, :EDGE] = 1
    expected_after = expected_before.copy()
    expected_after[:, 8 : 8 + EDGE, 40 : 40 + EDGE] = 2
    if np.array_equal(vol, expected_before):
        stored_max = [EDGE - 1] * 3
    elif np.array_equal(vol, expected_after):
        stored_max = [40 + EDGE - 1, 8 + EDGE - 1, EDGE - 1]
    else:
        return [f"grayscale: the volume POST is half applied ({np.count_nonzero(vol == 2)} voxels of 2)"]
    info_max = node.get("grayscale/info").json()["Extended"]["MaxPoint"]
    version_max = node.get("grayscale/extents").json()["MaxPoint"]
    return [
        f"grayscale: {what} MaxPoint {got} does not cover the stored voxels up to {stored_max}"
        for what, got in (("info", info_max), ("extents", version_max))
        if any(g < m for g, m in zip(got, stored_max, strict=True))
    ]


@dataclass
class Scenario:
    set_up: Callable[[ServerThread], Node]
    mutate: Callable[[Node], requests.Response]
    check: Callable[[Node], list[str]]


SCENARIOS = {name: Scenario(set_up, mutate, check_consistent) for name, mutate in MUTATIONS.items()}
SCENARIOS["uint8blk POST"] = Scenario(set_up_grayscale, post_grayscale, check_grayscale)


def run_cut(store: Path, scenario: Scenario, cut: int | None) -> tuple[int, list[str]]:
    """Set up a store, mutate it with the power cut after ``cut`` of the mutation's writes (None: no
    cut), reopen it with a new server; returns the mutation's atomic writes and the problems found."""
    engine = CuttableLevelDB(store)
    server = ServerThread(store, store_engine=engine).start()
    try:
        node = scenario.set_up(server)
        before = engine.writes
        engine.cut_after = None if cut is None else before + cut
        r = scenario.mutate(node)
        assert r.status_code == (200 if cut is None else 500), r.text
        writes = engine.writes - before
    finally:
        server.stop()
    reopened = ServerThread(store).start()
    try:
        node.base = reopened.api(node.base.split("/api/", 1)[1])
        return writes, scenario.check(node)
    finally:
        reopened.stop()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_crash_point_leaves_the_store_consistent(name, tmp_path):
    scenario = SCENARIOS[name]
    writes, problems = run_cut(tmp_path / "complete", scenario, None)
    assert not problems, problems
    assert writes >= 1
    for cut in range(writes):
        _, problems = run_cut(tmp_path / f"cut{cut}", scenario, cut)
        assert not problems, f"{name}, cut after {cut} of its {writes} writes: {problems}"
