"""The ``labelgraph`` workload: a 100,000-vertex, 300,000-edge graph over HTTP.

One dvid server, a repo with a labelgraph ``g``. The graph: vertices 1..100,000 with random weights,
300,000 distinct random edges (no self-loops) with random weights; a 17 MB LabelGraph JSON body.

Figures (each request timed alone):

1. ``POST subgraph`` of the whole graph at a fresh repo each repeat (JSON parsed and checked, every
   vertex and edge record written in one batch).
2. ``GET subgraph`` of the whole graph (streamed).
3. ``GET neighbors/<v>`` of random vertices (about 7 neighbours each): p50.
4. ``POST merge`` of two random adjacent vertices: p50 (each merge a different pair).

Beside each, the same work done in this process by dvid's labelgraph model on its own LevelDB store
(``parse_graph`` + ``GraphEdit`` + one batch; the whole-graph read and JSON; ``neighborhood``;
``merge``), no HTTP: the ratio is what the server, HTTP and the event loop add.
"""

from __future__ import annotations

import functools
import json
import random
from typing import Any

from bench.harness import BenchError, ServerProcess, run_async
from bench.images import SessionRun, settle, timed
from bench.report import Ratio, WorkloadReport
from bench.workloads import Env, _profile_notes
from dvid.dag.ancestry import Ancestry
from dvid.datatype.common.envelope import Compression
from dvid.datatype.labelgraph import graph
from dvid.datatype.labelgraph.wire import graph_json, parse_graph
from dvid.storage.leveldb import LevelDBEngine
from dvid.storage.versioned import DataContext, VersionedStore

NAME = "g"
VERTICES = 100_000
EDGES = 300_000
NEIGHBOR_SAMPLES = 200
MERGES = 50


def make_graph(seed: int = 14) -> tuple[dict[str, Any], list[tuple[int, int]]]:
    """The LabelGraph body and its edges."""
    rng = random.Random(seed)
    edges: set[tuple[int, int]] = set()
    while len(edges) < EDGES:
        a, b = rng.randint(1, VERTICES), rng.randint(1, VERTICES)
        if a != b:
            edges.add((min(a, b), max(a, b)))
    pairs = sorted(edges)
    body = {
        "Transactions": [],
        "Vertices": [{"Id": v, "Weight": round(rng.uniform(0, 100), 3)} for v in range(1, VERTICES + 1)],
        "Edges": [{"Id1": a, "Id2": b, "Weight": round(rng.uniform(0, 10), 3)} for a, b in pairs],
    }
    return body, pairs


class InprocGraph:
    """dvid's labelgraph model over a LevelDB store in this process (no HTTP)."""

    def __init__(self, env: Env) -> None:
        self.engine = LevelDBEngine(env._workdir("inproc-labelgraph") / "leveldb")
        self.ctx: DataContext = VersionedStore(self.engine).context(1, Ancestry.root(1))

    def edit(self, change: Any) -> None:
        edit = graph.GraphEdit(self.ctx, Compression())
        change(edit)
        with self.ctx.batch() as batch:
            edit.write(batch)

    def post(self, body: bytes) -> None:
        g = parse_graph(body)
        vertices = [(v.Id, v.Weight) for v in g.Vertices]
        edges = [(e.Id1, e.Id2, e.Weight) for e in g.Edges]
        self.edit(lambda e: graph.add_graph(e, vertices, edges))

    def get(self) -> bytes:
        return b"".join(graph_json(graph.all_vertices(self.ctx), graph.all_edges(self.ctx)))

    def neighbors(self, vid: int) -> bytes:
        vertices, edges = graph.neighborhood(self.ctx, vid)
        return b"".join(graph_json(vertices, edges, transactions="null", empty_edges="null"))

    def merge(self, a: int, b: int) -> None:
        self.edit(lambda e: graph.merge(e, [a, b], 0.0, {}))

    def close(self) -> None:
        self.engine.close()


def labelgraph(env: Env) -> WorkloadReport:
    """POST, GET, neighbors and merge of a 100k/300k graph (see the module doc)."""
    report = WorkloadReport("labelgraph")
    body, pairs = make_graph()
    with env.dvid("labelgraph") as dvid:
        inproc = InprocGraph(env)
        try:
            run_async(LabelgraphRun(env, report, dvid, inproc, json.dumps(body).encode(), pairs).run())
        finally:
            inproc.close()
    report.notes += _profile_notes(env.options, "labelgraph")
    return report


class LabelgraphRun(SessionRun):
    def __init__(
        self,
        env: Env,
        report: WorkloadReport,
        dvid: ServerProcess,
        inproc: InprocGraph,
        body: bytes,
        pairs: list[tuple[int, int]],
    ) -> None:
        super().__init__(report, dvid)
        self.repeats = max(2, env.options.labelvol_repeats)
        self.inproc = inproc
        self.body = body
        self.pairs = pairs
        self.uuid = ""
        rng = random.Random(7)
        self.samples = rng.sample(range(1, VERTICES + 1), NEIGHBOR_SAMPLES)
        # disjoint pairs, so each merge finds both vertices
        chosen: list[tuple[int, int]] = []
        used: set[int] = set()
        for a, b in rng.sample(pairs, 4 * MERGES):
            if a not in used and b not in used:
                chosen.append((a, b))
                used |= {a, b}
        self.merges = chosen[: 2 * MERGES]

    def url(self, path: str, uuid: str | None = None) -> Any:
        return self.api.url(f"node/{uuid or self.uuid}/{NAME}/{path}")

    async def steps(self) -> None:
        if not await self.api.has_type("labelgraph"):
            raise BenchError("labelgraph is not served by this dvid")
        await self.post()
        await self.get()
        await self.neighbors()
        await self.merge()

    def finish(self) -> None:
        self.publish(*self.series)
        super().finish()

    async def post(self) -> None:
        mb = len(self.body)
        post = self.new_series(
            "post", f"POST subgraph {VERTICES // 1000}k v {EDGES // 1000}k e", mb, self.dvid
        )
        base = self.new_series("ipost", "in-process parse + add_graph + batch", mb, None)
        for i in range(self.repeats):
            uuid = await self.api.new_repo(f"bench-labelgraph-{i}")
            await self.api.new_instance(uuid, "labelgraph", NAME)
            await settle(self.dvid)
            await timed(
                post, functools.partial(self._request, "POST", self.url("subgraph", uuid), self.body), i
            )
            self.uuid = uuid
            if i == 0:
                await settle(self.dvid)
                await timed(base, lambda _i: self.inproc.post(self.body), i)

    async def get(self) -> None:
        got = await self.request("GET", self.url("subgraph"))
        expected = self.inproc.get()
        if got != expected:
            raise BenchError("GET subgraph differs from the in-process read of the same graph")
        get = self.new_series("get", "GET subgraph (whole graph)", len(got), self.dvid)
        base = self.new_series("iget", "in-process scan + JSON", len(got), None)
        for i in range(self.repeats):
            await timed(get, functools.partial(self._request, "GET", self.url("subgraph"), b""), i)
            await timed(base, lambda _i: self.inproc.get(), i)

    async def neighbors(self) -> None:
        nb = self.new_series("nb", "GET neighbors/<v>", 0, self.dvid)
        base = self.new_series("inb", "in-process neighborhood + JSON", 0, None)
        for i, vid in enumerate(self.samples):
            url = self.url(f"neighbors/{vid}")
            await timed(nb, functools.partial(self._request, "GET", url, b""), i)
            await timed(base, functools.partial(self._inproc_neighbors, vid), i)
        if await self.request("GET", self.url(f"neighbors/{self.samples[0]}")) != self.inproc.neighbors(
            self.samples[0]
        ):
            raise BenchError("neighbors differ from the in-process answer")

    async def merge(self) -> None:
        mg = self.new_series("merge", "POST merge of 2 adjacent vertices", 0, self.dvid)
        base = self.new_series("imerge", "in-process merge", 0, None)
        for i, (a, b) in enumerate(self.merges[:MERGES]):
            body = json.dumps({"Vertices": [{"Id": a}, {"Id": b}], "Edges": []}).encode()
            await timed(mg, functools.partial(self._request, "POST", self.url("merge"), body), i)
        for i, (a, b) in enumerate(self.merges[MERGES:]):
            await timed(base, functools.partial(self._inproc_merge, a, b), i)

    def _inproc_neighbors(self, vid: int, _round: int) -> None:
        self.inproc.neighbors(vid)

    def _inproc_merge(self, a: int, b: int, _round: int) -> None:
        self.inproc.merge(a, b)

    async def _request(self, method: str, url: Any, body: bytes, _round: int) -> Any:
        return await self.request(method, url, body or None)

    def ratios(self) -> list[Ratio]:
        s = self.series
        out: list[Ratio] = []
        for key, label in (
            ("post", "POST subgraph 100k/300k"),
            ("get", "GET subgraph 100k/300k"),
            ("nb", "GET neighbors p50"),
            ("merge", "POST merge p50"),
        ):
            if key in s and s[key].times:
                out.append(Ratio(label, s[key].p50, unit="s"))
                base = s.get("i" + key)
                if base is not None and base.times:
                    out.append(Ratio(f"  / {base.name}", s[key].p50 / base.p50, note="context, no target"))
        return out

    def notes(self) -> list[str]:
        return [
            f"labelgraph {NAME!r}: {VERTICES:,} vertices, {EDGES:,} random edges,"
            f" a {len(self.body) / 1e6:.1f} MB JSON body; POST at a fresh repo each of"
            f" {self.repeats} repeats; neighbors of"
            f" {NEIGHBOR_SAMPLES} random vertices; {MERGES} merges of disjoint adjacent pairs. In-process:"
            " dvid's labelgraph model on its own LevelDB, no HTTP."
        ]
