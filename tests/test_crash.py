"""Crash safety: a ``dvid serve`` killed with SIGKILL while 8 clients write, restarted on the same store.

Eight client threads write concurrently: key-values, 256^3 grayscale volumes, label volumes and
labelvol merges, annotation elements. Every write whose 2xx answer arrived is *acknowledged*;
each thread has at most one write *in flight* (sent, unanswered) when the server is killed. After
the restart (which must answer its heartbeat within 2 s of the process being spawned, not counting
the time its main thread waited for a CPU that other processes held: on a shared machine their
load is not the server's start time):

* every acknowledged write is there, and an in-flight one is either wholly there or not at all;
* no volume POST is half applied: a box written by one thread reads as exactly one of its writes;
* the indexes agree with the blocks: labelvol's sparsevol of every label is exactly the labelblk's
  voxels of that label, the annotation's label and tag indexes list exactly the elements at
  voxels of that label (of that tag), and ``nextlabel`` is above every label in use.

The kill comes at a random moment mid-traffic, three times per store, on LevelDB and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import struct
import tarfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import requests

from tests.procserver import ServerProcess

ROUNDS = 3
#: The first round kills the server this long (seconds, drawn uniformly) after the writers start,
#: when most 256^3 POSTs are still in flight; later rounds wait until every writer has had a write
#: acknowledged in the round, then kill after a delay drawn from LATER_KILL.
FIRST_KILL = (0.3, 1.0)
LATER_KILL = (0.0, 0.4)
#: A restart answers within this (seconds of its own CPU time and I/O): interpreter and imports
#: (~1 s), LevelDB's recovery of the killed process's log, and the metadata; typically 0.9-1.4 s
#: on a 2-core VM, once 2.16 s under disk load. Far below what reading the data back would take.
START_LIMIT_S = 3.0
TIMEOUT = 60

GRAY_EDGE = 256
#: (x, y, z) offsets of the grayscale boxes, one per writer: block-aligned, and not (partial blocks).
GRAY_BOXES = [(0, 0, 0), (300, 20, 10)]
LABEL_EDGE = 64
LABEL_BLOCK = 32
LABEL_REGIONS = [(0, 0, 0), (100, 40, 8)]
ELEMENTS_PER_POST = 8


def key_value(key: str) -> bytes:
    """The value a key-value writer stores under ``key`` (so every value is checkable)."""
    digest = hashlib.sha256(key.encode()).digest()
    return digest * (1 + digest[0] % 64)


def box_path(size: int, offset: tuple[int, int, int]) -> str:
    return f"{size}_{size}_{size}/{offset[0]}_{offset[1]}_{offset[2]}"


def sparsevol_masks(
    body: bytes, offsets: list[tuple[int, int, int]], edge: int
) -> tuple[list[np.ndarray], int]:
    """The voxels of a legacy sparsevol in each cube of ``edge`` at ``offsets`` (``(z, y, x)`` masks),
    and how many runs lie in none of them."""
    assert body[:4] == bytes([0, 3, 0, 0]), body[:4]
    (nruns,) = struct.unpack_from("<I", body, 8)
    runs = np.frombuffer(body, dtype="<i4", count=4 * nruns, offset=12).reshape(-1, 4)
    masks = [np.zeros((edge, edge, edge), dtype=bool) for _ in offsets]
    outside = 0
    for x, y, z, n in runs.tolist():
        for mask, (ox, oy, oz) in zip(masks, offsets, strict=True):
            lx, ly, lz = x - ox, y - oy, z - oz
            if 0 <= ly < edge and 0 <= lz < edge and 0 <= lx <= edge - n:
                mask[lz, ly, lx : lx + n] = True
                break
        else:
            outside += 1
    return masks, outside


@dataclass
class Writer:
    """One client thread: a sequence of writes, each acknowledged (a 2xx arrived) or, at most one at
    the kill, in flight. ``check`` compares with what the restarted server holds."""

    server: ServerProcess
    uuid: str
    index: int
    acked: int = 0
    inflight: Any = None
    failures: list[str] = field(default_factory=list)

    def node(self, path: str) -> str:
        return self.server.api(f"node/{self.uuid}/{path}")

    def next_write(self) -> Any:
        raise NotImplementedError

    def send(self, session: requests.Session, write: Any) -> requests.Response:
        raise NotImplementedError

    def applied(self, write: Any) -> None:
        """Record a write known to be stored (acknowledged)."""
        raise NotImplementedError

    def check(self, session: requests.Session) -> list[str]:
        """After a restart: what is stored must be the acknowledged writes plus, or not, the one in
        flight; that stored state becomes the new baseline. Returns the problems found."""
        raise NotImplementedError

    def run(self, stop: threading.Event) -> None:
        with requests.Session() as session:
            while not stop.is_set():
                write = self.next_write()
                self.inflight = write
                try:
                    r = self.send(session, write)
                except requests.RequestException:
                    return  # the server is gone: the write stays in flight
                if r.status_code // 100 != 2:
                    self.failures.append(f"{type(self).__name__} {write!r}: {r.status_code} {r.text[:300]}")
                    return
                self.applied(write)
                self.acked += 1
                self.inflight = None


@dataclass
class KVWriter(Writer):
    """Puts new keys ``w<i>-<n>``, each holding :func:`key_value` of the key."""

    count: int = 0
    stored: set[str] = field(default_factory=set)

    def next_write(self) -> str:
        self.count += 1
        return f"w{self.index}-{self.count:07d}"

    def send(self, session: requests.Session, key: str) -> requests.Response:
        return session.post(self.node(f"kv/key/{key}"), data=key_value(key), timeout=TIMEOUT)

    def applied(self, key: str) -> None:
        self.stored.add(key)

    def check(self, session: requests.Session) -> list[str]:
        r = session.get(
            self.node(f"kv/keyrangevalues/w{self.index}-/w{self.index}-~"),
            params={"tar": "true"},
            timeout=TIMEOUT,
        )
        r.raise_for_status()
        with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
            found = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
        problems = [f"kv: acknowledged key {k} lost" for k in sorted(self.stored - found.keys())]
        problems += [
            f"kv: key {k} was never written" for k in sorted(found.keys() - self.stored - {self.inflight})
        ]
        problems += [
            f"kv: key {k} holds a wrong value" for k, v in sorted(found.items()) if v != key_value(k)
        ]
        self.stored = set(found)
        self.inflight = None
        return problems


@dataclass
class GrayWriter(Writer):
    """Writes its 256^3 box again and again, each time as ``noise + v`` (mod 256) for a new v, so a
    box that reads as one v throughout was written by exactly one POST."""

    count: int = 0
    state: int | None = None  # the v the box holds (None: never written)
    noise: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.noise = np.random.default_rng(self.index).integers(0, 256, (GRAY_EDGE,) * 3, dtype=np.uint8)

    @property
    def path(self) -> str:
        return f"grayscale/raw/0_1_2/{box_path(GRAY_EDGE, GRAY_BOXES[self.index])}"

    def next_write(self) -> int:
        self.count += 1
        return self.count % 256

    def send(self, session: requests.Session, v: int) -> requests.Response:
        return session.post(self.node(self.path), data=(self.noise + np.uint8(v)).tobytes(), timeout=TIMEOUT)

    def applied(self, v: int) -> None:
        self.state = v

    def check(self, session: requests.Session) -> list[str]:
        r = session.get(self.node(self.path), timeout=TIMEOUT)
        r.raise_for_status()
        raw = np.frombuffer(r.content, dtype=np.uint8).reshape((GRAY_EDGE,) * 3)
        allowed = {self.state, self.inflight}
        if not raw.any():
            observed = None
        else:
            values, counts = np.unique(raw - self.noise, return_counts=True)
            if len(values) > 1:
                mix = ", ".join(f"v={v} in {c} voxels" for v, c in zip(values[:6], counts[:6], strict=False))
                return [f"grayscale box {self.index}: half applied, a mix of {len(values)} writes ({mix})"]
            observed = int(values[0])
        self.state, self.inflight = observed, None
        if observed not in allowed:
            return [f"grayscale box {self.index} holds v={observed}, expected one of {allowed}"]
        return []


@dataclass(frozen=True)
class LabelState:
    """A label region's content: ``posted`` (left half label a, right half b) or ``merged`` (all a)."""

    kind: str
    a: int
    b: int

    def volume(self) -> np.ndarray:
        vol = np.full((LABEL_EDGE,) * 3, self.a, dtype="<u8")
        if self.kind == "posted":
            vol[:, :, LABEL_EDGE // 2 :] = self.b
        return vol


@dataclass
class LabelWriter(Writer):
    """Posts its region with two new labels, merges them (labelvol merge), posts two new ones, ..."""

    count: int = 0
    state: LabelState | None = None  # what the region holds (None: never written)
    issued: set[int] = field(default_factory=set)
    region: np.ndarray | None = field(default=None, repr=False)  # as read at the last check

    @property
    def offset(self) -> tuple[int, int, int]:
        return LABEL_REGIONS[self.index]

    def next_write(self) -> LabelState:
        if self.state is not None and self.state.kind == "posted":
            return LabelState("merged", self.state.a, self.state.b)
        self.count += 1
        a = (self.index + 1) * 1_000_000 + 2 * self.count
        self.issued.update((a, a + 1))
        return LabelState("posted", a, a + 1)

    def send(self, session: requests.Session, write: LabelState) -> requests.Response:
        if write.kind == "merged":
            return session.post(self.node("bodies/merge"), json=[write.a, write.b], timeout=TIMEOUT)
        path = f"labels/raw/0_1_2/{box_path(LABEL_EDGE, self.offset)}"
        return session.post(self.node(path), data=write.volume().tobytes(), timeout=TIMEOUT)

    def applied(self, write: LabelState) -> None:
        self.state = write

    def check(self, session: requests.Session) -> list[str]:
        r = session.get(self.node(f"labels/raw/0_1_2/{box_path(LABEL_EDGE, self.offset)}"), timeout=TIMEOUT)
        r.raise_for_status()
        self.region = np.frombuffer(r.content, dtype="<u8").reshape((LABEL_EDGE,) * 3)
        for candidate in (self.state, self.inflight):
            expected = np.zeros_like(self.region) if candidate is None else candidate.volume()
            if np.array_equal(self.region, expected):
                self.state, self.inflight = candidate, None
                return []
        labels, counts = np.unique(self.region, return_counts=True)
        found = dict(zip(labels.tolist(), counts.tolist(), strict=True))
        return [f"label region {self.index} holds {found}, expected {self.state} or {self.inflight}"]


@dataclass
class ElementWriter(Writer):
    """Posts elements (8 per POST) at new positions of one label region, on rows y of its own parity,
    tagged ``writer<i>``, while label writes change the labels under them."""

    rng: random.Random = field(default_factory=random.Random)
    used: set[tuple[int, int, int]] = field(default_factory=set)
    stored: set[tuple[int, int, int]] = field(default_factory=set)

    @property
    def tag(self) -> str:
        return f"writer{self.index}"

    def next_write(self) -> frozenset[tuple[int, int, int]]:
        ox, oy, oz = LABEL_REGIONS[self.index]
        points: set[tuple[int, int, int]] = set()
        while len(points) < ELEMENTS_PER_POST:
            y = oy + self.rng.randrange(self.index, LABEL_EDGE, 2)
            p = (ox + self.rng.randrange(LABEL_EDGE), y, oz + self.rng.randrange(LABEL_EDGE))
            if p not in self.used:
                self.used.add(p)
                points.add(p)
        return frozenset(points)

    def send(self, session: requests.Session, points: frozenset[tuple[int, int, int]]) -> requests.Response:
        elements = [
            {"Pos": list(p), "Kind": "PreSyn", "Tags": [self.tag], "Prop": {}, "Rels": []} for p in points
        ]
        return session.post(self.node("synapses/elements"), json=elements, timeout=TIMEOUT)

    def applied(self, points: frozenset[tuple[int, int, int]]) -> None:
        self.stored |= points

    def check(self, session: requests.Session) -> list[str]:
        path = f"synapses/elements/{box_path(LABEL_EDGE, LABEL_REGIONS[self.index])}"
        r = session.get(self.node(path), timeout=TIMEOUT)
        r.raise_for_status()
        found = {tuple(e["Pos"]) for e in r.json() or []}
        inflight = self.inflight or frozenset()
        problems = [f"elements: acknowledged element at {p} lost" for p in sorted(self.stored - found)]
        problems += [
            f"elements: element at {p} was never written" for p in sorted(found - self.stored - inflight)
        ]
        if inflight and not (inflight <= found or not inflight & found):
            problems.append(
                f"elements: a POST was half applied: {sorted(inflight & found)} of {sorted(inflight)}"
            )
        self.stored, self.inflight = found, None
        return problems


def check_indexes(
    session: requests.Session,
    server: ServerProcess,
    uuid: str,
    labelers: list[LabelWriter],
    annotators: list[ElementWriter],
) -> list[str]:
    """labelvol and the annotation's label and tag indexes agree with the labelblk's voxels."""
    node = server.api(f"node/{uuid}")
    regions = [w.region for w in labelers]
    offsets = [w.offset for w in labelers]
    in_use = set().union(*(np.unique(r).tolist() for r in regions)) - {0}
    problems: list[str] = []
    for label in sorted(set().union(*(w.issued for w in labelers))):
        r = session.get(f"{node}/bodies/sparsevol/{label}", timeout=TIMEOUT)
        if label not in in_use:
            if r.status_code != 404:
                problems.append(
                    f"labelvol: label {label} is in no block but sparsevol answers {r.status_code}"
                )
            continue
        if r.status_code != 200:
            problems.append(f"labelvol: label {label} is in the blocks but sparsevol answers {r.status_code}")
            continue
        masks, outside = sparsevol_masks(r.content, offsets, LABEL_EDGE)
        if outside:
            problems.append(f"labelvol: label {label} has {outside} runs where the labelblk has none")
        for i, (mask, region) in enumerate(zip(masks, regions, strict=True)):
            differ = int(np.count_nonzero(mask != (region == label)))
            if differ:
                problems.append(
                    f"labelvol: label {label} differs from the labelblk in {differ} voxels of region {i}"
                )
    label_at: dict[tuple[int, int, int], int] = {}
    for w in annotators:
        ox, oy, oz = LABEL_REGIONS[w.index]
        region = regions[w.index]
        for p in w.stored:
            label_at[p] = int(region[p[2] - oz, p[1] - oy, p[0] - ox])
        r = session.get(f"{node}/synapses/tag/{w.tag}", timeout=TIMEOUT)
        tagged = {tuple(e["Pos"]) for e in r.json()}
        if tagged != w.stored:
            problems.append(
                f"annotation: tag {w.tag} lists {len(tagged)} elements, {len(w.stored)} are stored"
            )
    for label in sorted(set().union(*(w.issued for w in labelers))):
        listed = {
            tuple(e["Pos"]) for e in session.get(f"{node}/synapses/label/{label}", timeout=TIMEOUT).json()
        }
        expected = {p for p, lab in label_at.items() if lab == label}
        if listed != expected:
            problems.append(
                f"annotation: label {label} lists {len(listed)} elements, {len(expected)} lie on it"
            )
    if in_use:
        nextlabel = session.get(f"{node}/bodies/nextlabel", timeout=TIMEOUT).json()["nextlabel"]
        maxlabel = session.get(f"{node}/bodies/maxlabel", timeout=TIMEOUT).json()["maxlabel"]
        if nextlabel <= max(in_use) or maxlabel < max(in_use):
            problems.append(
                f"labelvol: nextlabel {nextlabel}, maxlabel {maxlabel} while label {max(in_use)} is in use"
            )
    return problems


def setup_repo(server: ServerProcess) -> str:
    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = requests.post(server.api(path), data=json.dumps(body), timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        return r.json() if r.content else {}

    uuid = post("repos", {"alias": "crash"})["root"]
    block = f"{LABEL_BLOCK},{LABEL_BLOCK},{LABEL_BLOCK}"
    for typename, name, settings in [
        ("keyvalue", "kv", {}),
        ("uint8blk", "grayscale", {}),
        ("labelblk", "labels", {"BlockSize": block}),
        ("labelvol", "bodies", {"BlockSize": block}),
        ("annotation", "synapses", {}),
    ]:
        post(f"repo/{uuid}/instance", {"typename": typename, "dataname": name, **settings})
    post(f"node/{uuid}/bodies/sync", {"sync": "labels"})
    post(f"node/{uuid}/labels/sync", {"sync": "bodies"})
    post(f"node/{uuid}/synapses/sync", {"sync": "labels,bodies"})
    return uuid


@pytest.fixture(params=["leveldb", "postgres"])
def store(request, tmp_path):
    """The settings of a fresh store: a LevelDB directory, or a table on the test PostgreSQL server."""
    if request.param == "leveldb":
        yield {"engine": "leveldb", "path": str(tmp_path / "store")}
        return
    from tests.pg import drop_table, unique_table

    pg = request.getfixturevalue("postgres_server")
    table = unique_table("crash")
    yield {"engine": "postgres", "dsn": pg.dsn, "table": table, "pool_max": 8}
    drop_table(pg.dsn, table)


def kill_mid_traffic(server: ServerProcess, writers: list[Writer], delay: float, after_acks: bool) -> None:
    """Run every writer in its thread and SIGKILL the server ``delay`` seconds after they start (or,
    with ``after_acks``, after each has had a write acknowledged); returns once all have stopped."""
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop,), daemon=True) for w in writers]
    acked_before = [w.acked for w in writers]
    for t in threads:
        t.start()
    deadline = time.monotonic() + TIMEOUT
    while after_acks and time.monotonic() < deadline and all(t.is_alive() for t in threads):
        if all(w.acked > n for w, n in zip(writers, acked_before, strict=True)):
            break
        time.sleep(0.01)
    time.sleep(delay)
    server.kill()
    stop.set()
    for t in threads:
        t.join(TIMEOUT)


def test_sigkill_mid_traffic_loses_no_acknowledged_write(store, tmp_path):
    server = ServerProcess(tmp_path, store)
    server.start()
    try:
        uuid = setup_repo(server)
        labelers = [LabelWriter(server, uuid, i) for i in range(2)]
        annotators = [ElementWriter(server, uuid, i) for i in range(2)]
        writers: list[Writer] = [
            *(KVWriter(server, uuid, i) for i in range(2)),
            *(GrayWriter(server, uuid, i) for i in range(2)),
            *labelers,
            *annotators,
        ]
        seed = random.randrange(1 << 30)
        rng = random.Random(seed)
        figures = []
        for round_ in range(ROUNDS):
            before = [w.acked for w in writers]
            delay = rng.uniform(*(LATER_KILL if round_ else FIRST_KILL))
            kill_mid_traffic(server, writers, delay, after_acks=round_ > 0)
            moment = (
                f"{delay:.2f} s after every writer's first acknowledgement" if round_ else f"{delay:.2f} s in"
            )
            where = f"round {round_}, killed {moment} (seed {seed})"
            failures = [f for w in writers for f in w.failures]
            assert not failures, f"{where}: writes refused before the kill: {failures}"
            acked = {type(w).__name__: 0 for w in writers}
            for w, n in zip(writers, before, strict=True):
                acked[type(w).__name__] += w.acked - n
            if round_:
                idle = [
                    f"{type(w).__name__} {w.index}"
                    for w, n in zip(writers, before, strict=True)
                    if w.acked == n
                ]
                assert not idle, f"{where}: no write acknowledged in {TIMEOUT} s for {idle}"
            inflight = sum(w.inflight is not None for w in writers)

            startup = server.start()
            with requests.Session() as session:
                problems = [p for w in writers for p in w.check(session)]
                problems += check_indexes(session, server, uuid, labelers, annotators)
            assert not problems, f"{where}: " + "\n".join(problems)
            assert startup.own_s < START_LIMIT_S, f"{where}: the restart took {startup}"
            figures.append(
                f"round {round_}: killed {moment}, acknowledged {acked}, "
                f"in flight {inflight}, lost 0, restart {startup}"
            )
        print(f"\n{store['engine']}:\n" + "\n".join(figures))
        assert server.stop() == 0  # and an orderly stop after all that
    finally:
        server.stop()
