"""Where the fuzzer's choices come from: a seeded ``random.Random`` or a hypothesis ``draw``.

The request builders (:mod:`bench.fuzzing.generate`, :mod:`bench.fuzzing.bodies`) make every
choice through a :class:`Draw`, so the same building blocks serve the in-tree test (hypothesis:
deterministic, shrinkable, through :func:`request_strategy`) and ``python -m bench fuzz``
(:class:`RandomDraw`: tens of thousands of requests a minute, which hypothesis's own generation
is too slow for).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Draw(Protocol):
    """The choices a request builder makes. Earlier options are the simpler ones (hypothesis shrinks
    towards them)."""

    def integer(self, lo: int, hi: int) -> int:
        """An integer in ``[lo, hi]``."""
        ...

    def raw_bytes(self, lo: int, hi: int) -> bytes:
        """Between ``lo`` and ``hi`` arbitrary bytes."""
        ...


def choice(draw: Draw, options: Sequence[T]) -> T:
    """One of ``options``."""
    return options[draw.integer(0, len(options) - 1)]


def chance(draw: Draw, percent: int) -> bool:
    """True ``percent`` times in a hundred (hypothesis shrinks towards False)."""
    return draw.integer(0, 99) >= 100 - percent


def weighted(draw: Draw, options: Sequence[tuple[int, T]]) -> T:
    """One of ``options``, given as ``(weight, value)``."""
    pick = draw.integer(0, sum(w for w, _ in options) - 1)
    for w, value in options:
        if pick < w:
            return value
        pick -= w
    raise AssertionError("unreachable")


class RandomDraw:
    """Choices from a seeded :class:`random.Random`."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def raw_bytes(self, lo: int, hi: int) -> bytes:
        return self.rng.randbytes(self.rng.randint(lo, hi))


#: Byte strings up to this size are drawn byte by byte from hypothesis; larger ones from a seed.
SMALL_BYTES = 256


class HypothesisDraw:
    """Choices from hypothesis, inside a ``@st.composite`` strategy."""

    def __init__(self, draw: Callable[[Any], Any]) -> None:
        from hypothesis import strategies as st

        self._draw = draw
        self._st = st

    def integer(self, lo: int, hi: int) -> int:
        return self._draw(self._st.integers(lo, hi))

    def raw_bytes(self, lo: int, hi: int) -> bytes:
        if hi <= SMALL_BYTES:
            return self._draw(self._st.binary(min_size=lo, max_size=hi))
        # Large bodies from a drawn seed: hypothesis's choice sequence stays small.
        size = self.integer(lo, hi)
        return random.Random(self.integer(0, 2**32 - 1)).randbytes(size)


def request_strategy(build: Callable[[Draw], T]) -> Any:
    """A hypothesis strategy of what ``build`` makes from its draws (hypothesis is a test
    dependency, imported only here)."""
    from hypothesis import strategies as st

    @st.composite
    def strategy(draw: Callable[[Any], Any]) -> T:
        return build(HypothesisDraw(draw))

    return strategy()
