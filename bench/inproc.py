"""In-process figures (no HTTP): the limits the HTTP figures are compared with.

Everything runs on a fresh temporary LevelDB store through dvid's own classes: the raw engine
(:class:`dvid.storage.leveldb.LevelDBEngine`), and a keyvalue instance of a
:class:`dvid.repos.RepoManager` read through :class:`dvid.storage.versioned.DataContext`.

Timing: each alternative runs in many short passes of :data:`PASS_OPS` operations (``timeit``
single shots, after one untimed warm-up pass each), the alternatives alternating pass by pass
so drift hits them alike. Short passes are mostly not preempted on a shared machine, so the
best pass measures the code rather than the other tenants (as ``timeit`` advises); a ratio of
two alternatives is the median of the ratios of their adjacent passes.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import statistics
import tempfile
import timeit
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from bench.harness import new_runner
from bench.report import InprocFigure
from dvid.datatype import keyvalue
from dvid.repo import Repo
from dvid.repos import RepoManager
from dvid.storage import keys
from dvid.storage.leveldb import LevelDBEngine
from dvid.storage.stores import Stores
from dvid.storage.versioned import DataContext

VALUE_SIZE = 2048
#: Operations per timed pass: a few milliseconds, shorter than a scheduler time slice.
PASS_OPS = 500

T = TypeVar("T")
#: A timed pass: called with the pass number, performs PASS_OPS operations.
Pass = Callable[[int], object]


def kv_tkey(key: str) -> bytes:
    """The tkey keyvalue stores ``key`` under (``B1 01 <key> 00``, as DVID)."""
    return keyvalue.encode_key(key)


def random_values(count: int, size: int = VALUE_SIZE) -> list[bytes]:
    return [os.urandom(size) for _ in range(count)]


def chunks(items: Sequence[T], size: int = PASS_OPS) -> list[Sequence[T]]:
    """``items`` in consecutive pieces of ``size`` (a pass number picks one, cyclically)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def alternating_passes(passes: dict[str, Pass], repeats: int) -> dict[str, list[float]]:
    """Seconds of each of ``repeats`` passes of each alternative, alternating pass by pass."""
    names = list(passes)
    times: dict[str, list[float]] = {n: [] for n in names}
    for n in names:  # untimed warm-up: caches, allocator, first-call costs
        passes[n](0)
    for r in range(repeats):
        for n in names if r % 2 == 0 else names[::-1]:
            fn = passes[n]
            times[n].append(timeit.Timer(functools.partial(fn, r)).timeit(number=1))
    return times


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over adjacent passes of ``numerator / denominator`` times."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def figure(name: str, pass_times: list[float], ops_per_pass: int = PASS_OPS) -> InprocFigure:
    t = min(pass_times)
    return InprocFigure(
        name=name,
        ops=ops_per_pass * len(pass_times),
        ops_per_s=round(ops_per_pass / t, 1),
        us_per_op=round(t / ops_per_pass * 1e6, 3),
    )


@contextmanager
def temp_engine() -> Iterator[LevelDBEngine]:
    """A LevelDB engine (dvid's settings) on a temp dir, closed and removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="dvid-bench-inproc-") as tmp:
        engine = LevelDBEngine(tmp)
        try:
            yield engine
        finally:
            engine.close()


@dataclass
class VersionedSetup:
    """A keyvalue instance with ``tkeys`` written at the root and a chain of versions below it."""

    manager: RepoManager
    repo: Repo
    tkeys: list[bytes]
    root_uuid: str
    deep_uuid: str

    def context(self, uuid: str) -> DataContext:
        repo, node = self.manager.resolve(uuid)
        return repo.instance("kv").context(repo.dag.ancestry(node.version))

    def resolve_and_get(self, uuid: str, tk: bytes) -> bytes | None:
        """What the HTTP path does per request around the read: resolve, ancestry, context, get."""
        repo, node = self.manager.resolve(uuid)
        return repo.instance("kv").context(repo.dag.ancestry(node.version)).get(tk)

    def shuffled_chunks(self, seed: int) -> list[Sequence[bytes]]:
        order = self.tkeys[:]
        random.Random(seed).shuffle(order)
        return chunks(order)


def build_versioned(engine: LevelDBEngine, n_keys: int, depth: int) -> VersionedSetup:
    manager = RepoManager(Stores.single(engine))
    repo = manager.new_repo("bench")
    root = repo.dag.root
    inst = manager.new_instance(repo, root, {"typename": "keyvalue", "dataname": "kv"})
    tkeys = [kv_tkey(f"key-{i:06d}") for i in range(n_keys)]
    with inst.context(repo.dag.ancestry(root.version)).batch() as batch:
        for tk, value in zip(tkeys, random_values(n_keys), strict=True):
            batch.put(tk, value)
    node = root
    for i in range(depth):
        manager.commit(repo, node, f"commit {i}")
        node = manager.new_version(repo, node, f"version {i + 1}")
    return VersionedSetup(manager, repo, tkeys, root.uuid, node.uuid)


def deep_vs_root(n_keys: int, depth: int, repeats: int) -> tuple[list[InprocFigure], float, float]:
    """DataContext.get (and resolve+get) at ``depth`` versions below the root vs at the root.

    Returns the figures and the deep/root ratios for ``get`` and for ``resolve+get``.
    """
    with temp_engine() as engine:
        s = build_versioned(engine, n_keys, depth)
        parts = s.shuffled_chunks(1)
        root_ctx, deep_ctx = s.context(s.root_uuid), s.context(s.deep_uuid)
        assert deep_ctx.get(parts[0][0]) == root_ctx.get(parts[0][0]) is not None

        def gets(ctx: DataContext) -> Pass:
            return lambda r: [ctx.get(tk) for tk in parts[r % len(parts)]]

        def resolved(uuid: str) -> Pass:
            return lambda r: [s.resolve_and_get(uuid, tk) for tk in parts[r % len(parts)]]

        t = alternating_passes(
            {
                "root get": gets(root_ctx),
                "deep get": gets(deep_ctx),
                "root resolve+get": resolved(s.root_uuid),
                "deep resolve+get": resolved(s.deep_uuid),
            },
            repeats,
        )
    figures = [
        figure(f"DataContext.get 2 KiB at root ({n_keys} keys)", t["root get"]),
        figure(f"DataContext.get 2 KiB {depth} versions deep", t["deep get"]),
        figure("resolve+context+get at root", t["root resolve+get"]),
        figure(f"resolve+context+get {depth} versions deep", t["deep resolve+get"]),
    ]
    get_ratio = paired_ratio(t["deep get"], t["root get"])
    resolved_ratio = paired_ratio(t["deep resolve+get"], t["root resolve+get"])
    return figures, get_ratio, resolved_ratio


def engine_figures(n_keys: int, repeats: int) -> list[InprocFigure]:
    """Raw LevelDB get/put of 2 KiB values through dvid's engine, random order."""
    values = random_values(n_keys)
    with temp_engine() as engine:
        raw_keys = [keys.data_key(1, kv_tkey(f"key-{i:06d}"), 1) for i in range(n_keys)]
        for k, v in zip(raw_keys, values, strict=True):
            engine.put(k, v)
        random.Random(2).shuffle(raw_keys)
        parts = chunks(raw_keys)
        value_parts = chunks(values)

        def gets(r: int) -> object:
            return [engine.get(k) for k in parts[r % len(parts)]]

        def puts(r: int) -> None:  # fresh keys every pass: no overwrite shortcuts
            for i, v in enumerate(value_parts[r % len(value_parts)]):
                engine.put(keys.data_key(2, kv_tkey(f"put-{r}-{i}"), 1), v)

        t = alternating_passes({"get": gets, "put": puts}, repeats)
    return [
        figure(f"LevelDB engine.get 2 KiB ({n_keys} keys)", t["get"]),
        figure("LevelDB engine.put 2 KiB", t["put"]),
    ]


def versioned_figures(n_keys: int, repeats: int, concurrency: int) -> list[InprocFigure]:
    """Versioned get/put at the root, and get through asyncio.to_thread as an async handler would."""
    with temp_engine() as engine, new_runner() as runner:
        s = build_versioned(engine, n_keys, depth=0)
        ctx = s.context(s.root_uuid)
        parts = s.shuffled_chunks(3)
        value_parts = chunks(random_values(n_keys))

        def gets(r: int) -> object:
            return [ctx.get(tk) for tk in parts[r % len(parts)]]

        def puts(r: int) -> None:
            for i, v in enumerate(value_parts[r % len(value_parts)]):
                ctx.put(kv_tkey(f"put-{r}-{i}"), v)

        async def threaded(part: Sequence[bytes]) -> None:
            queue = iter(part)

            async def worker() -> None:
                for tk in queue:
                    await asyncio.to_thread(ctx.get, tk)

            await asyncio.gather(*(worker() for _ in range(concurrency)))

        t = alternating_passes(
            {"get": gets, "put": puts, "threaded": lambda r: runner.run(threaded(parts[r % len(parts)]))},
            repeats,
        )
    return [
        figure(f"DataContext.get 2 KiB at root ({n_keys} keys)", t["get"]),
        figure("DataContext.put 2 KiB at root", t["put"]),
        figure(f"DataContext.get via asyncio.to_thread, {concurrency} tasks", t["threaded"]),
    ]
