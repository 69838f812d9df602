"""The ``neuronjson`` workload: Clio-like annotations loaded by ``keyvalues`` POST, then queried.

One dvid server gets ``neuronjson_records`` (100,000; ``--quick`` 20,000) synthetic annotations
shaped like Clio's (status, type, instance, group, soma_side, notes; ``_user``/``_time`` stamps
added by the server), written by protobuf ``POST keyvalues`` in batches of 1,000. Figures, each
request timed alone ``neuronjson_repeats`` times, next to the same work done in this process
(dvid's neuronjson model on its own LevelDB store, no HTTP):

1. write throughput of ``POST keyvalues`` (annotations per second) vs the in-process ``post``;
2. the first query at the version (the server builds its in-memory index) vs the in-process build;
3. a mix of queries: equality, lists of values, ``re/`` regexes, ``exists/``, body-id lists,
   ``onlyid`` -- target p50 < 200 ms over HTTP for each.

Memory of the in-process index (tracemalloc) is reported per 100,000 annotations. Checks: every
query's HTTP answer equals the in-process one byte for byte.
"""

from __future__ import annotations

import functools
import json
import random
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import BenchError, ServerProcess, run_async
from bench.images import SessionRun, settle, timed
from bench.report import Ratio, WorkloadReport
from bench.workloads import Env, _profile_notes
from dvid.dag.ancestry import Ancestry
from dvid.datatype.common import kvproto
from dvid.datatype.neuronjson import output
from dvid.datatype.neuronjson.index import VersionIndex
from dvid.datatype.neuronjson.merge import WriteMode
from dvid.datatype.neuronjson.model import Annotations, Write
from dvid.datatype.neuronjson.query import parse_query
from dvid.datatype.neuronjson.selection import Selection
from dvid.storage.leveldb import LevelDBEngine
from dvid.storage.versioned import VersionedStore

INSTANCE = "segmentation_annotations"
BATCH = 1000
QUERY_TARGET_MS = 200.0
STATUSES = (
    "Anchor",
    "Traced",
    "Roughly traced",
    "Prelim Roughly traced",
    "Orphan",
    "Unimportant",
    "0.5assign",
)
PREFIXES = ("LC", "LPLC", "T4", "T5", "Mi", "Tm", "TmY", "Dm", "Pm", "MBON", "DNp", "AOTU", "PFL", "FB")
USERS = ("alice@janelia", "bob@janelia", "carol@janelia", "dave@janelia")


def cell_types(rng: random.Random) -> list[str]:
    return [f"{p}{n}{rng.choice(('', 'a', 'b', 'c'))}" for p in PREFIXES for n in range(1, 120)]


def clio_annotations(n: int, seed: int = 14) -> list[dict[str, Any]]:
    """``n`` Clio-like annotations with body ids spread over 10^11 (so ids exceed 2^32)."""
    rng = random.Random(seed)
    types = cell_types(rng)
    ids = sorted(rng.sample(range(10**4, 10**11), n))
    out = []
    for body_id in ids:
        rec: dict[str, Any] = {"bodyid": body_id, "status": rng.choice(STATUSES)}
        if rng.random() < 0.6:
            t = rng.choice(types)
            side = rng.choice(("L", "R"))
            rec.update(type=t, instance=f"{t}_{side}", soma_side=f"{side}HS")
        if rng.random() < 0.3:
            rec["group"] = rng.randrange(10**5, 10**9)
        if rng.random() < 0.1:
            rec["notes"] = f"checked {rng.choice(('arbor', 'soma', 'axon'))} {rng.randrange(1000)}"
        if rng.random() < 0.2:
            rec["position"] = [rng.randrange(50000) for _ in range(3)]
        out.append(rec)
    return out


def queries(records: list[dict[str, Any]], rng: random.Random) -> list[tuple[str, dict[str, str], Any]]:
    """``(name, query parameters, query)``: the mix measured."""
    typed = [r for r in records if "type" in r]
    some_type = rng.choice(typed)["type"]
    types = sorted({rng.choice(typed)["type"] for _ in range(10)})
    ids = [r["bodyid"] for r in rng.sample(records, 100)]
    return [
        ("type equality", {}, {"type": some_type}),
        ("status equality onlyid", {"onlyid": "true"}, {"status": "Traced"}),
        ("list of 10 types", {}, {"type": types}),
        ("re/^LC1 on type", {"fields": "type,instance"}, {"type": "re/^LC1"}),
        ("exists/1 notes onlyid", {"onlyid": "true"}, {"notes": "exists/1"}),
        ("status + soma_side + re/ type", {}, {"status": "Anchor", "soma_side": "RHS", "type": "re/^T4"}),
        (
            "OR of two objects",
            {"show": "user"},
            [{"status": "Orphan", "group": "exists/1"}, {"type": some_type}],
        ),
        ("100 body ids", {}, {"bodyid": ids}),
    ]


def keyvalues_body(batch: list[dict[str, Any]]) -> bytes:
    return kvproto.KeyValues(
        kvs=[kvproto.KeyValue(key=str(r["bodyid"]), value=json.dumps(r).encode()) for r in batch]
    ).SerializeToString()


def neuronjson(env: Env) -> WorkloadReport:
    """Load, index and query annotations (see the module doc)."""
    report = WorkloadReport("neuronjson")
    records = clio_annotations(env.options.neuronjson_records)
    workdir = Path(tempfile.mkdtemp(prefix="inproc-neuronjson-", dir=env.tmp_root))
    engine = LevelDBEngine(workdir / "leveldb")
    try:
        with env.dvid("neuronjson") as dvid:
            run_async(NeuronJSONRun(env, report, dvid, InProcess(engine), records).run())
    finally:
        engine.close()
    report.notes += _profile_notes(env.options, "neuronjson")
    return report


class InProcess:
    """dvid's neuronjson model on a LevelDB store in this process: the no-HTTP baseline."""

    def __init__(self, engine: LevelDBEngine) -> None:
        self.ctx = VersionedStore(engine).context(1, Ancestry.root(1))
        self.model = Annotations()

    def post(self, body: bytes) -> None:
        msg = kvproto.KeyValues.FromString(body)
        mode = WriteMode("bench", "2024-05-01T10:11:12Z")
        self.model.post(self.ctx, [Write(kv.key, kv.value) for kv in msg.kvs], mode)

    def build_index(self) -> tuple[float, int]:
        """Seconds to load the index of the version, and its bytes (a second load, under tracemalloc)."""
        t0 = time.perf_counter()
        VersionIndex.load(self.ctx)
        seconds = time.perf_counter() - t0
        tracemalloc.start()
        index = VersionIndex.load(self.ctx)
        size, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del index
        return seconds, size

    def query(self, params: dict[str, str], body: bytes) -> bytes:
        parsed = parse_query(body)
        found = self.model.query(self.ctx, parsed)
        if params.get("onlyid") == "true" and parsed.body_ids is None:
            return b"".join(output.id_array(i for i, _ in found))
        selection = Selection.parse(params.get("show"), params.get("fields"))
        return b"".join(output.record_array(found, selection, drop_bare=False))


class NeuronJSONRun(SessionRun):
    def __init__(
        self, env: Env, report: WorkloadReport, dvid: ServerProcess, inproc: InProcess, records: list[dict]
    ) -> None:
        super().__init__(report, dvid)
        self.o = env.options
        self.inproc = inproc
        self.records = records
        self.ratio_list: list[Ratio] = []
        self.memory_note = ""

    def url(self, path: str, params: dict[str, str] | None = None) -> Any:
        return self.api.url(f"node/{self.uuid}/{INSTANCE}/{path}").with_query(params or {})

    async def steps(self) -> None:
        if not await self.api.has_type("neuronjson"):
            raise BenchError("neuronjson is not served by this dvid")
        self.uuid = await self.api.new_repo("bench-neuronjson")
        await self.api.new_instance(self.uuid, "neuronjson", INSTANCE)
        await self.load()
        await settle(self.dvid)
        await self.first_query()
        await self.query_mix()

    async def load(self) -> None:
        """1. POST keyvalues in batches, next to the in-process post of the same batches."""
        bodies = [keyvalues_body(self.records[i : i + BATCH]) for i in range(0, len(self.records), BATCH)]
        http = self.new_series("w", f"POST keyvalues {BATCH} annotations", len(bodies[0]), self.dvid)
        base = self.new_series("iw", f"in-process post {BATCH} annotations", len(bodies[0]), None)
        url = self.url("keyvalues", {"u": "bench"})
        for i, body in enumerate(bodies):
            await timed(http, functools.partial(self._post_at, url, body), i)
            await timed(base, functools.partial(self._inproc_post_at, body), i)
        total_http, total_base = sum(http.times), sum(base.times)
        n = len(self.records)
        self.ratio_list += [
            Ratio("keyvalues POST annotations/s over HTTP", round(n / total_http), unit="/s"),
            Ratio("in-process post annotations/s", round(n / total_base), unit="/s"),
            Ratio("write rate HTTP / in-process", round(total_base / total_http, 2)),
        ]

    async def first_query(self) -> None:
        """2. The first query at the version builds the server's index."""
        body = json.dumps({"status": "Orphan"}).encode()
        first = self.new_series(
            "first", f"first query: builds the index of {len(self.records):,}", 0, self.dvid
        )
        await timed(first, functools.partial(self._post_at, self.url("query", {"onlyid": "true"}), body), 0)
        seconds, size = self.inproc.build_index()
        per_100k = size * 100_000 / len(self.records)
        self.memory_note = (
            f"in-process index load {seconds * 1000:.0f} ms; index memory {size / 2**20:.0f} MiB"
            " for"
            f" {len(self.records):,} annotations ({per_100k / 2**20:.0f} MiB per 100,000 before postings)"
        )
        self.inproc.model.query(self.inproc.ctx, parse_query(body))  # the baseline's index, built once

    async def query_mix(self) -> None:
        """3. Each query of the mix, over HTTP and in process, alternating, timed alone."""
        rng = random.Random(5)
        for key, (name, params, q) in enumerate(queries(self.records, rng)):
            body = json.dumps(q).encode()
            url = self.url("query", params)
            over_http = await self.request("POST", url, body)
            in_process = self.inproc.query(params, body)
            if over_http != in_process:
                raise BenchError(f"query {name!r}: the HTTP answer differs from the in-process one")
            matches = len(json.loads(over_http))
            http = self.new_series(f"q{key}", f"query {name} ({matches} found)", len(over_http), self.dvid)
            base = self.new_series(f"iq{key}", f"in-process {name}", len(in_process), None)
            steps: list[tuple[Any, Callable[[int], Any]]] = [
                (http, functools.partial(self._post_at, url, body)),
                (base, functools.partial(self._inproc_query_at, params, body)),
            ]
            for i in range(self.o.neuronjson_repeats):
                for series, fn in steps if i % 2 == 0 else steps[::-1]:
                    await timed(series, fn, i)
            self.ratio_list.append(
                Ratio(
                    f"p50 ms: query {name}",
                    round(http.p50 * 1000, 2),
                    unit="ms",
                    op="<",
                    target=QUERY_TARGET_MS,
                )
            )
            self.ratio_list.append(Ratio(f"HTTP / in-process: {name}", round(http.p50 / base.p50, 2)))

    async def _post_at(self, url: Any, body: bytes, _round: int) -> bytes:
        return await self.request("POST", url, body)

    def _inproc_post_at(self, body: bytes, _round: int) -> None:
        self.inproc.post(body)

    def _inproc_query_at(self, params: dict[str, str], body: bytes, _round: int) -> bytes:
        return self.inproc.query(params, body)

    def ratios(self) -> list[Ratio]:
        return self.ratio_list

    def notes(self) -> list[str]:
        return [self.memory_note] if self.memory_note else []

    def finish(self) -> None:
        self.publish(*self.series)
        super().finish()
