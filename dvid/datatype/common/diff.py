"""What changed in a data instance between two versions (``GET .../<dataname>/diff/<from uuid>``).

One key-only scan of the instance finds the keys whose visible stored version differs between
the two versions (:meth:`DataContext.differences`); the datatype turns each into entries a person
can read (``Datatype.describe_change``): a keyvalue key, a block coordinate, an annotation element.
Types whose values are compared (``diff_compares_values``) read both values, in batches, and drop
keys rewritten with the same bytes; block types do not (a block written again is "touched").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dvid.dag.ancestry import Ancestry
from dvid.storage.versioned import DataContext

if TYPE_CHECKING:
    from dvid.datatype.base import Datatype

#: Differences whose values are read in one engine call.
_BATCH = 256
DEFAULT_LIMIT = 1000
MAX_LIMIT = 100_000


def _key_changes(
    ctx: DataContext, since: Ancestry, compare: bool
) -> Iterator[tuple[bytes, str, bytes | None, bytes | None]]:
    """``(tkey, added|changed|deleted, old value, new value)``; values are None unless ``compare``."""
    pending: list[tuple[bytes, bytes | None, bytes | None]] = []

    def flush() -> Iterator[tuple[bytes, str, bytes | None, bytes | None]]:
        wanted = [k for _, old, new in pending for k in (old, new) if k is not None]
        values = dict(zip(wanted, ctx.engine.get_many(wanted), strict=True)) if compare else {}
        for tk, old_key, new_key in pending:
            old = values.get(old_key) if old_key is not None else None
            new = values.get(new_key) if new_key is not None else None
            if old_key is None:
                yield tk, "added", old, new
            elif new_key is None:
                yield tk, "deleted", old, new
            elif not compare or old != new:
                yield tk, "changed", old, new
        pending.clear()

    for item in ctx.differences(since):
        pending.append(item)
        if len(pending) >= _BATCH:
            yield from flush()
    yield from flush()


def instance_diff(inst: Datatype, ctx: DataContext, since: Ancestry, limit: int) -> dict[str, Any]:
    """The changes from ``since`` to ``ctx``'s version: counts of every entry by kind (``added``,
    ``changed``, ``deleted``) and the first ``limit`` entries in key order."""
    counts: Counter[str] = Counter()
    entries: list[dict[str, Any]] = []
    for tk, change, old, new in _key_changes(ctx, since, inst.diff_compares_values):
        for entry in inst.describe_change(tk, change, old, new):
            counts[entry["change"]] += 1
            if len(entries) < limit:
                entries.append(entry)
    total = sum(counts.values())
    return {
        "added": counts["added"],
        "changed": counts["changed"],
        "deleted": counts["deleted"],
        "truncated": total > len(entries),
        "changes": entries,
    }
