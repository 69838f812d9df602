"""Fuzzing a dvid server with malformed requests (issue 11): shared by ``tests/test_fuzz.py``
(hypothesis-driven, bounded) and ``python -m bench fuzz`` (seeded, long).

- :mod:`~bench.fuzzing.draw`: where choices come from (hypothesis or a seeded ``random.Random``).
- :mod:`~bench.fuzzing.values`, :mod:`~bench.fuzzing.bodies`, :mod:`~bench.fuzzing.generate`:
  requests built from the live route tables.
- :mod:`~bench.fuzzing.client`: a raw HTTP client that can send malformed things.
- :mod:`~bench.fuzzing.fixture`: the populated repo and its canaries.
"""
