"""``python -m bench.labelmap_index [--quick]``: in-process figures of labelmap's label index and mapping.

Everything runs in this process on a temporary LevelDB store (no HTTP):

1. Mapping lookups: a 100-id label table mapped at a version holding 10^6 assignments, per call with
   the epoch scan (``Mapping.lookup``) and through a view taken once (``MappingView.lookup``, what a
   request mapping many blocks does), then the epoch scan alone with 1 and with 100 versions that wrote
   the mapping (its cost grows with them); the cache build (one range scan of 10^6 keys) next to a
   raw engine scan of the same keys.
2. LabelIndex protobuf: ``to_bytes``/``from_bytes`` for 10 to 10^5 rows (1 and 10 supervoxels per
   block), next to python-protobuf's map API doing the same (the baseline: a loop per block).
3. ``merged`` and ``split`` of 10^5-row indices.

Timing: best of several passes (``timeit``), as ``bench.inproc``; ratios are of best passes.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dvid.dag.dag import Node, VersionDAG
from dvid.datatype.labelmap.labelindex import LabelIndex
from dvid.datatype.labelmap.mapping import EPOCH_CLASS, Mapping, epoch_tkey, local_uuid, mapping_tkey
from dvid.datatype.labelmap.proto import LabelIndexMsg
from dvid.storage import keys
from dvid.storage.leveldb import LevelDBEngine
from dvid.storage.versioned import DataContext, VersionedStore

IID = 1


def best(fn: Callable[[], object], number: int, repeat: int) -> float:
    """Seconds per call: the best of ``repeat`` passes of ``number`` calls."""
    fn()
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def line(name: str, seconds: float, note: str = "") -> None:
    if seconds >= 0.1:
        shown = f"{seconds:9.2f} s "
    elif seconds >= 1e-4:
        shown = f"{seconds * 1e3:9.2f} ms"
    else:
        shown = f"{seconds * 1e6:9.1f} µs"
    print(f"  {name:<58} {shown}  {note}")


class Chain:
    """A linear DAG of versions over one store."""

    def __init__(self, engine: LevelDBEngine) -> None:
        self.store = VersionedStore(engine)
        self.dag = VersionDAG(Node(uuid=f"{1:032x}", version=1))
        self.head = 1

    def ctx(self, version: int | None = None) -> DataContext:
        return self.store.context(IID, self.dag.ancestry(self.head if version is None else version))

    def new(self) -> int:
        self.dag.commit(self.head)
        child = self.head + 1
        self.dag.new_version(self.head, child, f"{child:032x}")
        self.head = child
        return child


def bench_mapping(workdir: Path, rows: int, repeat: int) -> None:
    print(f"Mapping ({rows:,} assignments, LevelDB)")
    engine = LevelDBEngine(workdir / "mapping")
    chain = Chain(engine)
    rng = np.random.default_rng(1)
    svs = np.unique(rng.integers(1, 2**40, int(rows * 1.01), dtype=np.uint64))[:rows]
    bodies = rng.integers(1, 2**40, len(svs), dtype=np.uint64)
    mapping = Mapping()
    ctx = chain.ctx()
    with ctx.batch() as batch:
        mapping.set(ctx, batch, svs, bodies)

    build = best(lambda: Mapping().view(ctx), 1, max(2, repeat // 3))
    start = keys.min_version_key(IID, mapping_tkey(0))
    stop = keys.versions_stop(IID, mapping_tkey(2**64 - 1))
    raw = best(lambda: sum(1 for _ in engine.scan(start, stop)), 1, max(2, repeat // 3))
    line("cache build (range scan + arrays)", build, f"{build / raw:.1f}x a raw engine scan of the keys")

    table = rng.choice(svs, 100)
    mapping.view(ctx)
    per_call = best(lambda: mapping.lookup(ctx, table), 2000, repeat)
    view = mapping.view(ctx)
    in_view = best(lambda: view.lookup(table), 2000, repeat)
    epochs = best(
        lambda: tuple(ctx.range(keys.min_tkey(EPOCH_CLASS), keys.max_tkey(EPOCH_CLASS))), 2000, repeat
    )
    line("lookup of 100 ids, per call (epoch scan included)", per_call)
    line("lookup of 100 ids through a view taken once", in_view)
    line("epoch scan, 1 version wrote the mapping", epochs)
    assert np.array_equal(view.lookup(table), bodies[np.searchsorted(svs, table)])

    for _ in range(99):
        chain.new()
        head = chain.ctx()
        with head.batch() as batch:
            mapping.set(head, batch, [int(svs[0])], [7])
    head = chain.ctx()
    mapping.view(head)
    deep = best(lambda: mapping.lookup(head, table), 500, repeat)
    deep_epochs = best(
        lambda: tuple(head.range(keys.min_tkey(EPOCH_CLASS), keys.max_tkey(EPOCH_CLASS))), 500, repeat
    )
    line("lookup of 100 ids, per call, 100 versions wrote the mapping", deep)
    line("epoch scan, 100 versions wrote the mapping", deep_epochs)
    line("ctx.get of one key (baseline)", best(lambda: ctx.get(epoch_tkey(local_uuid(1))), 2000, repeat))
    engine.close()


def random_index(rows: int, per_block: int, seed: int) -> LabelIndex:
    rng = np.random.default_rng(seed)
    nblocks = max(1, rows // per_block)
    blocks = np.repeat(rng.integers(0, 2**62, nblocks, dtype=np.uint64), per_block)[:rows]
    svs = rng.integers(1, 2**40, len(blocks), dtype=np.uint64)
    counts = rng.integers(1, 5000, len(blocks), dtype=np.uint64)
    return LabelIndex(seed, blocks, svs, counts, last_mod_user="bench")


def protobuf_to_bytes(index: LabelIndex) -> bytes:
    """The baseline: python-protobuf's map API, one Python step per block."""
    msg = LabelIndexMsg(label=index.label, last_mod_user=index.last_mod_user)
    starts = np.flatnonzero(np.r_[True, index.blocks[1:] != index.blocks[:-1]])
    ends = np.r_[starts[1:], len(index.blocks)]
    svs, counts = index.svs.tolist(), index.counts.tolist()
    entries = msg.blocks
    for block, s, e in zip(index.blocks[starts].tolist(), starts.tolist(), ends.tolist(), strict=True):
        entries[block].counts.update(zip(svs[s:e], counts[s:e], strict=True))
    return msg.SerializeToString()


def protobuf_from_bytes(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The baseline: python-protobuf parse, then a Python step per block (rows as arrays)."""
    msg = LabelIndexMsg.FromString(data)
    blocks, lengths, svs, counts = [], [], [], []
    for block, svc in msg.blocks.items():
        c = svc.counts
        blocks.append(block)
        lengths.append(len(c))
        svs.extend(c)
        counts.extend(c.values())
    return np.repeat(np.array(blocks, np.uint64), lengths), np.array(svs, np.uint64), np.array(counts)


def bench_index(repeat: int) -> None:
    print("LabelIndex protobuf (numpy codec vs python-protobuf's map API)")
    for rows, per_block in ((10, 1), (100, 1), (1_000, 1), (1_000, 10), (100_000, 1), (100_000, 10)):
        index = random_index(rows, per_block, seed=rows + per_block)
        data = index.to_bytes()
        number = max(1, 20_000 // rows)
        to_b = best(index.to_bytes, number, repeat)
        from_b = best(functools.partial(LabelIndex.from_bytes, data), number, repeat)
        to_p = best(functools.partial(protobuf_to_bytes, index), number, repeat)
        from_p = best(functools.partial(protobuf_from_bytes, data), number, repeat)
        shape = f"{rows:,} rows, {per_block} sv/block ({len(data) / 1e3:,.1f} kB)"
        line(f"to_bytes   {shape}", to_b, f"python-protobuf {to_p / to_b:.1f}x as long")
        line(f"from_bytes {shape}", from_b, f"python-protobuf {from_p / from_b:.1f}x as long")
    print("LabelIndex edits (100,000 rows)")
    a, b = random_index(100_000, 4, seed=1), random_index(100_000, 4, seed=2)
    line("merged (two 10^5-row indices)", best(lambda: a.merged(b, label=9, surface_mutid=3), 3, repeat))
    half = a.supervoxels()[::2]
    line("split (half the supervoxels of 10^5 rows)", best(lambda: a.split(half, surface_mutid=3), 3, repeat))
    line(
        "with_counts (10^4 deltas into 10^5 rows)",
        best(lambda: a.with_counts(a.blocks[:10_000], a.svs[:10_000], np.ones(10_000, np.int64)), 3, repeat),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.labelmap_index", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="10^5 assignments, fewer passes: a self-check")
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else 7
    with tempfile.TemporaryDirectory(prefix="bench-labelmap-") as tmp:
        bench_mapping(Path(tmp), 100_000 if args.quick else 1_000_000, repeat)
    bench_index(repeat)


if __name__ == "__main__":
    main()
