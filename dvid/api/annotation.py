"""annotation instances: point elements as lists of dicts (DVID's JSON), and as pandas DataFrames.

An element is DVID's ``{"Pos": [x, y, z], "Kind": "PreSyn", "Tags": [...], "Prop": {...}, "Rels":
[{"Rel": "PreSynTo", "To": [x, y, z]}]}``. ``ann[z0:z1, y0:y1, x0:x1]`` lists the elements in a box.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from dvid.api.box import BadIndex, Box, has_open_bounds, parse_index
from dvid.api.instance import Instance

Element = dict[str, Any]

#: The DataFrame columns, in order.
COLUMNS = ("z", "y", "x", "kind", "tags", "prop", "rels")


def _xyz(point: Any) -> str:
    z, y, x = (int(v) for v in point)
    return f"{x}_{y}_{z}"


def dataframe(elements: Iterable[Element]) -> Any:
    """A pandas DataFrame of elements: columns z, y, x, kind, tags, prop, rels (pandas needed)."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(
            "dvid.api's DataFrames need pandas: pip install pandas (lists of dicts work without it)"
        ) from None
    rows = [
        (e["Pos"][2], e["Pos"][1], e["Pos"][0], e.get("Kind"), e.get("Tags") or [], e.get("Prop") or {},
         e.get("Rels") or [])
        for e in elements
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.astype({"z": "int32", "y": "int32", "x": "int32"})


class Annotations(Instance):
    """Point annotations (synapses, bookmarks): read as lists of element dicts, or DataFrames."""

    def __getitem__(self, key: Any) -> list[Element]:
        if has_open_bounds(key):
            raise BadIndex(
                "annotations have no extents: give every bound ([z0:z1, y0:y1, x0:x1]), or use all()"
            )
        box, _ = parse_index(key, (0, 0, 0))
        if box.empty:
            return []
        return self.elements(box.start, box.stop)

    def elements(self, start: Any, stop: Any) -> list[Element]:
        """The elements whose position lies in the box ``start <= p < stop`` ((z, y, x))."""
        box = Box(tuple(int(v) for v in start), tuple(int(v) for v in stop))  # type: ignore[arg-type]
        if box.empty:
            return []
        size, offset = box.raw_path()
        return list(self.get_json("elements", size, offset) or [])

    def all(self) -> list[Element]:
        """Every element, block by block."""
        blocks = self.get_json("all-elements") or {}
        return [e for elements in blocks.values() for e in (elements or [])]

    def by_label(self, label: int, *, relationships: bool = True) -> list[Element]:
        """The elements at voxels of ``label`` (of the synced label instance)."""
        params = {"relationships": "true"} if relationships else {}
        return list(self.get_json("label", str(int(label)), params=params) or [])

    def by_tag(self, tag: str, *, relationships: bool = True) -> list[Element]:
        params = {"relationships": "true"} if relationships else {}
        return list(self.get_json("tag", tag, params=params) or [])

    def add(self, elements: Iterable[Element]) -> None:
        """Add (or replace, by position) elements."""
        self.request("POST", "elements", data=json.dumps(list(elements)))

    def delete(self, point: Any) -> None:
        """Remove the element at (z, y, x)."""
        self.request("DELETE", "element", _xyz(point))

    def move(self, source: Any, target: Any) -> None:
        """Move the element at (z, y, x) ``source`` to ``target``."""
        self.request("POST", "move", _xyz(source), _xyz(target))

    def dataframe(self, elements: Iterable[Element] | None = None) -> Any:
        """``elements`` (default: every element) as a pandas DataFrame (see :func:`dataframe`)."""
        return dataframe(self.all() if elements is None else elements)
