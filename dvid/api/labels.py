"""Label volumes: labels at points, a body's sparse volume (coordinates or a mask), sizes,
supervoxels and the proofreading edits (merge, cleave, split) of labelmap, labelblk and labelvol."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np

from dvid.api import rle
from dvid.api.box import Box
from dvid.api.instance import Instance
from dvid.api.volume import Volume

Offset = tuple[int, int, int]


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _points_xyz(points: Any) -> tuple[list[list[int]], bool]:
    """(z, y, x) points (one, or an (N, 3) array) as DVID's [[x, y, z], ...]; and whether one."""
    array = np.asarray(points)
    single = array.ndim == 1
    array = np.atleast_2d(array)
    if array.ndim != 2 or array.shape[1] != 3 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"points are (z, y, x) integers: one triple or an (N, 3) array, got {array.shape}")
    return array[:, ::-1].tolist(), single


def _split_payload(coords: Any = None, mask: Any = None, offset: Offset = (0, 0, 0)) -> bytes:
    """The sparsevol payload of voxels given as (N, 3) (z, y, x) coordinates or a mask at ``offset``."""
    if (coords is None) == (mask is None):
        raise ValueError("give the voxels either as coords=(N, 3) array or as mask= (and offset=)")
    if coords is not None:
        mask, offset = rle.coords_to_mask(coords)
    runs = rle.mask_to_runs(mask, offset)
    if len(runs) == 0:
        raise ValueError("no voxels given")
    return rle.encode_runs(runs)


class SparseVolumes(Instance):
    """Sparse volumes of labels (``sparsevol``): labelmap and labelvol."""

    def _sparsevol_params(self, supervoxels: bool, scale: int) -> dict[str, str]:
        return {}

    def sparsevol(self, label: int, *, supervoxels: bool = False, scale: int = 0) -> np.ndarray:
        """The voxels of a body (or supervoxel) as an ``(N, 3)`` int32 array of (z, y, x)."""
        payload = self.request(
            "GET", "sparsevol", str(int(label)), params=self._sparsevol_params(supervoxels, scale)
        ).content
        return rle.runs_to_coords(rle.decode_runs(payload))

    def mask(self, label: int, *, supervoxels: bool = False, scale: int = 0) -> tuple[np.ndarray, Offset]:
        """The body as a boolean (z, y, x) mask of its bounding box, and the box's first voxel."""
        return rle.coords_to_mask(self.sparsevol(label, supervoxels=supervoxels, scale=scale))


class LabelVolume(Volume):
    """A uint64 label volume (labelblk, labelmap): everything of :class:`Volume`, plus labels at points."""

    def label_at(self, points: Any) -> Any:
        """The label at one (z, y, x) point (an int), or at each row of an (N, 3) array (uint64 array)."""
        xyz, single = _points_xyz(points)
        found = self.get_json("labels", data=json.dumps(xyz), params=self.params)
        labels = np.asarray(found, dtype=np.uint64)
        return int(labels[0]) if single else labels


class LabelBlk(LabelVolume):
    """A ``labelblk``: label voxels, pyramid levels as instances ``<name>_<level>``."""


class LabelMap(LabelVolume, SparseVolumes):
    """A ``labelmap``: supervoxel voxels mapped to bodies, with label indexes and edits.

    Reads give body ids; ``seg.view(supervoxels=True)`` reads supervoxel ids; ``seg.scale(n)`` reads
    level n of the pyramid (``?scale=n``, read-only).
    """

    def view(self, *, scale: int | None = None, supervoxels: bool | None = None) -> LabelMap:
        """The same instance read at another scale or as supervoxels."""
        level = self.level if scale is None else scale
        if level < 0:
            raise ValueError(f"scale levels are 0 or more, got {level}")
        params = dict(self.params)
        if level:
            params["scale"] = str(level)
        else:
            params.pop("scale", None)
        if supervoxels is not None:
            params["supervoxels"] = _flag(supervoxels)
        return LabelMap(self.version, self.name, self.typename, scale=level, params=params)

    def scale(self, level: int) -> LabelMap:
        return self.view(scale=level)

    def _extents_json(self) -> dict[str, Any] | None:
        return self.info().get("Extents")  # labelmap has no GET extents: the instance's, all versions

    @property
    def extents(self) -> Box | None:
        """The box written (at any version: labelmap keeps no per-version extents), at this scale."""
        box = super().extents
        if box is None or not self.level:
            return box
        f = 2**self.level
        (z0, y0, x0), (z1, y1, x1) = box.start, box.stop
        return Box((z0 // f, y0 // f, x0 // f), ((z1 - 1) // f + 1, (y1 - 1) // f + 1, (x1 - 1) // f + 1))

    def _sparsevol_params(self, supervoxels: bool, scale: int) -> dict[str, str]:
        return {"supervoxels": _flag(supervoxels), "scale": str(int(scale))}

    # ---- reading the indexes -----------------------------------------------------------------
    def size(self, label: int, *, supervoxels: bool = False) -> int:
        """Voxels of a body (or supervoxel); :class:`~dvid.api.errors.NotFound` if it has none."""
        return int(
            self.get_json("size", str(int(label)), params={"supervoxels": _flag(supervoxels)})["voxels"]
        )

    def sizes(self, labels: Iterable[int], *, supervoxels: bool = False) -> np.ndarray:
        """Voxels of each label (0 where none) as an int64 array."""
        body = json.dumps([int(v) for v in labels])
        found = self.get_json("sizes", data=body, params={"supervoxels": _flag(supervoxels)})
        return np.asarray(found, dtype=np.int64)

    def supervoxels(self, body: int) -> np.ndarray:
        """The supervoxels of a body, ascending, as a uint64 array."""
        return np.sort(np.asarray(self.get_json("supervoxels", str(int(body))), dtype=np.uint64))

    def supervoxel_sizes(self, body: int) -> dict[int, int]:
        """``{supervoxel: voxels}`` of a body."""
        found = self.get_json("supervoxel-sizes", str(int(body)))
        return {int(s): int(n) for s, n in zip(found["supervoxels"], found["sizes"], strict=True)}

    def mapping(self, supervoxels: Iterable[int]) -> np.ndarray:
        """The body of each supervoxel (0 for none) as a uint64 array."""
        body = json.dumps([int(v) for v in supervoxels])
        return np.asarray(self.get_json("mapping", data=body), dtype=np.uint64)

    def max_label(self) -> int:
        return int(self.get_json("maxlabel")["maxlabel"])

    # ---- edits -------------------------------------------------------------------------------
    def merge(self, target: int, others: Iterable[int]) -> int:
        """Merge the bodies ``others`` into ``target``; returns the mutation id."""
        body = json.dumps([int(target), *(int(v) for v in others)])
        return int(self.post_json("merge", data=body, params=self.edit_params())["MutationID"])

    def cleave(self, body: int, supervoxels: Iterable[int]) -> int:
        """Move those supervoxels of ``body`` to a new body; returns the new body's id."""
        data = json.dumps([int(v) for v in supervoxels])
        return int(
            self.post_json("cleave", str(int(body)), data=data, params=self.edit_params())["CleavedLabel"]
        )

    def split(self, body: int, coords: Any = None, *, mask: Any = None, offset: Offset = (0, 0, 0)) -> int:
        """Give the voxels (``coords`` (N, 3) (z, y, x), or ``mask`` at ``offset``) of ``body`` a new
        body id, returned (the server must allow it: setting ``AllowLabelmapSplit``)."""
        data = _split_payload(coords, mask, offset)
        return int(self.post_json("split", str(int(body)), data=data, params=self.edit_params())["label"])

    def split_supervoxel(
        self, supervoxel: int, coords: Any = None, *, mask: Any = None, offset: Offset = (0, 0, 0)
    ) -> tuple[int, int]:
        """Cut those voxels out of ``supervoxel``: returns (split supervoxel, remaining supervoxel)."""
        data = _split_payload(coords, mask, offset)
        found = self.post_json("split-supervoxel", str(int(supervoxel)), data=data, params=self.edit_params())
        return int(found["SplitSupervoxel"]), int(found["RemainSupervoxel"])


class LabelVol(SparseVolumes):
    """A ``labelvol``: the sparse volumes of a synced labelblk, and its label edits."""

    def merge(self, target: int, others: Iterable[int]) -> list[int]:
        """Relabel the voxels of ``others`` as ``target``; returns the labels merged."""
        body = json.dumps([int(target), *(int(v) for v in others)])
        return [int(v) for v in self.post_json("merge", data=body, params=self.edit_params())["merged"]]

    def split(self, label: int, coords: Any = None, *, mask: Any = None, offset: Offset = (0, 0, 0)) -> int:
        """Give those voxels of ``label`` a new label, returned."""
        data = _split_payload(coords, mask, offset)
        return int(self.post_json("split", str(int(label)), data=data, params=self.edit_params())["label"])

    def max_label(self) -> int:
        return int(self.get_json("maxlabel")["maxlabel"])
