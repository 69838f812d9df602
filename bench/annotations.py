"""The ``annotations`` workload: synapse elements over HTTP (POST in batches, box GET, label query).

One dvid server: a repo with a labelblk ``seg`` (BlockSize 64^3) holding body 7 in the 64^3 block at
the origin (and nothing elsewhere), and an annotation ``synapses`` synced to it. 100,000 synapse
elements (50,000 PreSyn/PostSyn pairs, each with a tag, a Prop and a relationship to its partner) at
distinct random positions in a 1024^3 box; 1,000 of them inside body 7.

Figures:

1. ``POST elements`` of all 100,000 in batches of 10,000 (every element's label looked up in the
   labelblk, block, label and tag indexes written): target total < 5 s. Repeated at fresh versions
   (each a new child of the committed root, where the elements are new).
2. ``GET elements/256_256_256/...`` (about 1,600 elements): p50.
3. ``GET label/7`` (1,000 elements), default and ``relationships=true``: target p50 < 50 ms.

Baselines in the same run, in this process (stdlib json + plyvel, none of dvid's code): grouping the
100,000 elements by block, serializing and writing them in one batch; reading the blocks of the box
and splicing their JSON; reading one 1,000-element key.
"""

from __future__ import annotations

import functools
import json
import random
import tempfile
from pathlib import Path

import numpy as np
import plyvel
from yarl import URL

from bench.harness import BenchError, ServerProcess, run_async
from bench.images import SessionRun, settle, timed
from bench.report import Ratio, WorkloadReport
from bench.workloads import Env, _profile_notes

LABELBLK = "seg"
ANNOTATION = "synapses"
N_ELEMENTS = 100_000
BATCH = 10_000
BODY = 7
BODY_ELEMENTS = 1_000
EXTENT = 1024
BOX = 256
BOX_OFFSET = (256, 256, 256)
POST_TARGET_S = 5.0
LABEL_TARGET_S = 0.05


def make_elements(seed: int = 7) -> list[dict]:
    """The 100,000 elements: pairs at distinct positions, the first 500 pairs inside body 7 (the 64^3
    block at the origin), the rest anywhere else in the 1024^3 box."""
    rng = random.Random(seed)
    seen: set[tuple[int, int, int]] = set()

    def fresh(in_body: bool) -> list[int]:
        hi = 64 if in_body else EXTENT
        while True:
            p = (rng.randrange(hi), rng.randrange(hi), rng.randrange(hi))
            if p not in seen and (in_body or max(p) >= 64):
                seen.add(p)
                return list(p)

    out = []
    for i in range(N_ELEMENTS // 2):
        in_body = i < BODY_ELEMENTS // 2
        pre, post = fresh(in_body), fresh(in_body)
        conf = f"{rng.random():.3f}"
        out.append(
            {"Pos": pre, "Kind": "PreSyn", "Tags": ["bench"], "Prop": {"conf": conf},
             "Rels": [{"Rel": "PreSynTo", "To": post}]}
        )  # fmt: skip
        out.append(
            {"Pos": post, "Kind": "PostSyn", "Tags": ["bench"], "Prop": {"conf": conf},
             "Rels": [{"Rel": "PostSynTo", "To": pre}]}
        )  # fmt: skip
    return out


def in_box(e: dict, offset: tuple[int, int, int], size: int) -> bool:
    return all(offset[a] <= e["Pos"][a] < offset[a] + size for a in range(3))


class InprocElements:
    """The lower bound: elements as JSON lists per 64^3 block key in a LevelDB of our own."""

    def __init__(self, path: Path) -> None:
        self.db = plyvel.DB(str(path), create_if_missing=True, compression=None)

    def close(self) -> None:
        self.db.close()

    @staticmethod
    def key(bx: int, by: int, bz: int) -> bytes:
        return b"\x48\x01" + b"".join(((c + 2**31) & 0xFFFFFFFF).to_bytes(4, "big") for c in (bz, by, bx))

    def post(self, elements: list[dict]) -> None:
        blocks: dict[tuple[int, int, int], list[dict]] = {}
        for e in elements:
            x, y, z = e["Pos"]
            blocks.setdefault((x // 64, y // 64, z // 64), []).append(e)
        with self.db.write_batch(transaction=True) as wb:
            for c, items in blocks.items():
                wb.put(self.key(*c), json.dumps(items, separators=(",", ":")).encode())
        labels: dict[int, list[dict]] = {BODY: [e for e in elements if max(e["Pos"]) < 64]}
        self.db.put(b"label", json.dumps(labels[BODY], separators=(",", ":")).encode())

    def get_box(self, offset: tuple[int, int, int], size: int) -> bytes:
        b0 = [o // 64 for o in offset]
        b1 = [(o + size - 1) // 64 for o in offset]
        parts = []
        for bz in range(b0[2], b1[2] + 1):
            for by in range(b0[1], b1[1] + 1):
                start, stop = self.key(b0[0], by, bz), self.key(b1[0], by, bz) + b"\x00"
                for _, v in self.db.iterator(start=start, stop=stop):
                    parts.append(v[1:-1])
        return b"[" + b",".join(parts) + b"]"

    def get_label(self) -> list[dict]:
        return json.loads(self.db.get(b"label"))


def annotation_workload(env: Env) -> WorkloadReport:
    """POST / box GET / label query of synapse elements (see the module doc)."""
    report = WorkloadReport("annotations")
    elements = make_elements()
    with env.dvid("annotations") as dvid, tempfile.TemporaryDirectory(dir=env.tmp_root) as tmp:
        store = InprocElements(Path(tmp) / "leveldb")
        try:
            run_async(AnnotationRun(env, report, dvid, store, elements).run())
        finally:
            store.close()
    report.notes += _profile_notes(env.options, "annotations")
    return report


class AnnotationRun(SessionRun):
    typename = "annotation"

    def __init__(
        self,
        env: Env,
        report: WorkloadReport,
        dvid: ServerProcess,
        store: InprocElements,
        elements: list[dict],
    ) -> None:
        super().__init__(report, dvid)
        self.store = store
        self.elements = elements
        self.repeats = env.options.labelvol_repeats
        self.batches = [json.dumps(elements[i : i + BATCH]).encode() for i in range(0, len(elements), BATCH)]
        self.in_box = sum(in_box(e, BOX_OFFSET, BOX) for e in elements)
        self.root = ""

    def url(self, uuid: str, path: str) -> URL:
        return self.api.url(f"node/{uuid}/{ANNOTATION}/{path}")

    async def steps(self) -> None:
        if not (await self.api.has_type("annotation") and await self.api.has_type("labelblk")):
            return
        await self.setup()
        await self.post()
        await self.reads()

    def finish(self) -> None:
        self.publish(*self.series)
        super().finish()

    async def setup(self) -> None:
        api = self.api
        self.root = self.uuid = uuid = await api.new_repo("bench-annotations")
        await api.new_instance(uuid, "labelblk", LABELBLK, BlockSize="64,64,64")
        await api.new_instance(uuid, "annotation", ANNOTATION)
        await api.call("POST", self.url(uuid, "sync"), json_body={"sync": LABELBLK})
        body = np.full((64, 64, 64), BODY, dtype="<u8").tobytes()
        await self.request("POST", api.raw_url(uuid, LABELBLK, "0_1_2", (64, 64, 64), (0, 0, 0)), body)
        await api.commit(uuid, "labels")

    async def _post_all_at(self, uuid: str, _round: int) -> None:
        await self.post_all(uuid)

    async def post_all(self, uuid: str) -> None:
        for batch in self.batches:
            await self.request("POST", self.url(uuid, "elements"), batch)

    async def post(self) -> None:
        """1. POST the 100,000 elements in batches at fresh children of the root."""
        nbytes = sum(map(len, self.batches))
        name = f"POST elements {N_ELEMENTS // 1000}k in {len(self.batches)} batches"
        post = self.new_series("post", name, nbytes, self.dvid)
        base = self.new_series("ipost", "in-process json + plyvel batch", nbytes, None)
        last = ""
        for i in range(self.repeats):
            child = await self.api.newversion(self.root, f"post {i}") if i == 0 else await self.branch(i)
            await settle(self.dvid)
            await timed(post, functools.partial(self._post_all_at, child), i)
            await timed(base, lambda i: self.store.post(self.elements), i)
            last = child
        self.uuid = last
        got = json.loads(await self.request("GET", self.url(last, "label/7")))
        if len(got) != BODY_ELEMENTS:
            raise BenchError(f"label/7 has {len(got)} elements, expected {BODY_ELEMENTS}")
        await settle(self.dvid)

    async def branch(self, i: int) -> str:
        body = {"branch": f"bench-{i}", "note": f"post {i}"}
        reply = await self.api.call("POST", self.api.url(f"node/{self.root}/branch"), json_body=body)
        return str(json.loads(reply)["child"])

    async def reads(self) -> None:
        """2., 3. the box GET and the label queries, each next to its in-process read."""
        uuid = self.uuid
        assert uuid is not None
        x, y, z = BOX_OFFSET
        box = self.url(uuid, f"elements/{BOX}_{BOX}_{BOX}/{x}_{y}_{z}")
        got = json.loads(await self.request("GET", box))
        if len(got or []) != self.in_box:
            raise BenchError(f"the box GET gave {len(got or [])} elements, expected {self.in_box}")
        label = self.url(uuid, f"label/{BODY}")
        rels = self.url(uuid, f"label/{BODY}").with_query(relationships="true")
        steps = [
            (self.new_series("box", f"GET elements {BOX}^3 ({self.in_box} elements)", 0, self.dvid),
             lambda i: self.request("GET", box)),
            (self.new_series("ibox", "in-process box read", 0, None),
             lambda i: self.store.get_box(BOX_OFFSET, BOX)),
            (self.new_series("label", f"GET label/{BODY} ({BODY_ELEMENTS} elements)", 0, self.dvid),
             lambda i: self.request("GET", label)),
            (self.new_series("rels", f"GET label/{BODY}?relationships=true", 0, self.dvid),
             lambda i: self.request("GET", rels)),
            (self.new_series("ilabel", "in-process label key read", 0, None),
             lambda i: self.store.get_label()),
        ]  # fmt: skip
        for i in range(max(5, self.repeats * 5)):
            for series, fn in steps if i % 2 == 0 else steps[::-1]:
                await timed(series, fn, i)

    def ratios(self) -> list[Ratio]:
        s = self.series
        out: list[Ratio] = []
        for key, base, label, target in (
            ("post", "ipost", f"POST {N_ELEMENTS:,} elements total", POST_TARGET_S),
            ("box", "ibox", f"GET elements {BOX}^3 p50", None),
            ("label", "ilabel", f"GET label/{BODY} ({BODY_ELEMENTS} elements) p50", LABEL_TARGET_S),
            ("rels", "ilabel", f"GET label/{BODY}?relationships=true p50", LABEL_TARGET_S),
        ):
            if key in s and s[key].times:
                op = "<" if target is not None else ""
                out.append(Ratio(label, s[key].p50, unit="s", op=op, target=target))
                if base in s and s[base].times:
                    b = s[base]
                    out.append(Ratio(f"  / {b.name}", s[key].p50 / b.p50, note="context, no target"))
        return out

    def notes(self) -> list[str]:
        return [
            f"labelblk {LABELBLK!r} (64^3, body {BODY} in the origin block) + annotation {ANNOTATION!r}"
            f" synced to it; {N_ELEMENTS:,} elements (PreSyn/PostSyn pairs with a tag, a Prop and a"
            " relationship"
            f" each) at distinct random points of a {EXTENT}^3 box, {BODY_ELEMENTS} of them in body {BODY}."
            f" POSTs in batches of {BATCH:,}, each repeat at a fresh child of the committed root;"
            f" {self.repeats} repeats, one request at a time. In-process baselines: stdlib json + plyvel"
            " (no dvid code)."
        ]
