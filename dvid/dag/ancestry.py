"""Ancestry of one version: what the versioned store needs to resolve reads at that version."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Ancestry:
    """A version and its ancestors, nearest first.

    ``order`` maps the version itself (rank 0) and every ancestor to its rank in a breadth-first
    walk up the parents (parents in their stored order) that ranks every version after all of
    its descendants in the ancestry (for a linear ancestry, rank = distance). ``linear`` is true
    when no version in the ancestry has more than one parent; then the nearest stored version
    wins outright.
    ``ancestors_of`` returns the strict ancestors of any version in ``order``; it is only called
    for non-linear ancestries (reads below a merge).
    """

    version: int
    order: Mapping[int, int]
    linear: bool
    ancestors_of: Callable[[int], frozenset[int]]

    @classmethod
    def root(cls, version: int) -> Ancestry:
        """The ancestry of a version with no parents (also used for unversioned instances)."""
        return cls(version, {version: 0}, True, lambda _v: frozenset())
