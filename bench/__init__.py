"""dvid benchmark harness: ``python -m bench [workload ...] [--quick] [--json out.json]``.

Every HTTP figure is measured against a server running in its own process on a fresh temporary
LevelDB store, on loopback, with the load generated from this process; every figure is reported
next to a baseline measured in the same run (these machines are noisy). See docs/benchmarks.md.

Modules:

- :mod:`bench.harness` -- server processes, temp dirs, cleanup, the HTTP load generator.
- :mod:`bench.servers` -- what runs inside a server process (dvid, or the bare aiohttp baseline).
- :mod:`bench.dvidapi` -- the few dvid HTTP calls the workloads need.
- :mod:`bench.inproc` -- in-process (no HTTP) figures: raw LevelDB, versioned DataContext.
- :mod:`bench.workloads` -- the workloads ``kv``, ``deep``, ``inproc`` and ``accesslog``.
- :mod:`bench.images` -- the ``image`` workload (uint8blk raw volumes, PNG slices, 1 GiB streamed GET).
- :mod:`bench.imgbase` -- its baselines without dvid's code: plyvel + lz4 + numpy, EM-like data, PNG decoding.
- :mod:`bench.report` -- result records, the printed table and the JSON output.
"""
