"""Voxel volumes sliced like numpy arrays, in z, y, x order.

    v = node["grayscale"]
    a = v[0:256, 100:612, 2000:2512]      # read: a (256, 512, 512) array
    v[0:64, 0:64, 0:64] = block           # write, at any alignment
    small = v.scale(2)                    # pyramid level 2, sliced the same way

Indexes are voxel coordinates (never counted from the end); open bounds go from 0 to ``shape``,
the extents' maximum point plus one. Large boxes move as block-aligned pieces in parallel
(:mod:`dvid.api.parallel`).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from dvid.api.box import Box, Point, aligned_pieces, has_open_bounds, parse_index
from dvid.api.errors import DVIDClientError
from dvid.api.instance import Instance
from dvid.api.parallel import run_pieces

if TYPE_CHECKING:
    from dvid.api.server import TypedClient
    from dvid.api.version import Version

#: A piece of a large read or write moves at most about this many bytes in one request.
PIECE_BYTES = 8 << 20
_CHUNK = 1 << 20


def _dtype(values: list[dict[str, Any]]) -> tuple[np.dtype, tuple[int, ...]]:
    """The numpy dtype of a voxel and the channel shape (``()``, or ``(4,)`` for rgba8)."""
    kinds = {str(v.get("DataType", "")) for v in values}
    if len(kinds) != 1:
        raise ValueError(f"voxels of mixed value types {sorted(kinds)} are not supported")
    kind = kinds.pop()
    dtype = np.dtype(kind).newbyteorder("<")
    return dtype, (() if len(values) == 1 else (len(values),))


class Volume(Instance):
    """A voxel instance (``uint8blk`` ... ``float32blk``, and the label types) at one version and scale.

    ``shape``, ``dtype``, ``block_shape`` and ``extents`` come from the instance's info; ``v[...]``
    reads and ``v[...] = a`` writes; :meth:`read` and :meth:`write` take any coordinates.
    """

    def __init__(
        self,
        version: Version,
        name: str,
        typename: str,
        *,
        scale: int = 0,
        params: dict[str, str] | None = None,
    ) -> None:
        super().__init__(version, name, typename)
        self.level = scale
        self.params = dict(params or {})

    def __repr__(self) -> str:
        level = f" scale {self.level}" if self.level else ""
        return f"{type(self).__name__}({self.typename} {self.name!r}{level} at {self.version.uuid[:8]})"

    # ---- metadata ----------------------------------------------------------------------------
    @cached_property
    def _extended(self) -> dict[str, Any]:
        return self.info()["Extended"]

    @property
    def dtype(self) -> np.dtype:
        return _dtype(self._extended["Values"])[0]

    @property
    def channels(self) -> tuple[int, ...]:
        """The shape of one voxel: ``()``, or ``(4,)`` for ``rgba8blk``."""
        return _dtype(self._extended["Values"])[1]

    @property
    def block_shape(self) -> Point:
        """The storage block in (z, y, x)."""
        x, y, z = self._extended["BlockSize"]
        return int(z), int(y), int(x)

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        """The size of a voxel in (z, y, x), in ``VoxelUnits``, at this scale."""
        x, y, z = self._extended["VoxelSize"]
        return float(z), float(y), float(x)

    def _extents_json(self) -> dict[str, Any] | None:
        return self.get_json("extents")

    @property
    def extents(self) -> Box | None:
        """The box written at this version (None before any write)."""
        found = self._extents_json()
        if not found or found.get("MinPoint") is None or found.get("MaxPoint") is None:
            return None
        (x0, y0, z0), (x1, y1, z1) = found["MinPoint"], found["MaxPoint"]
        return Box((int(z0), int(y0), int(x0)), (int(z1) + 1, int(y1) + 1, int(x1) + 1))

    @property
    def shape(self) -> Point:
        """From the origin to the extents' maximum point, inclusive: ``v[:]`` is this big."""
        box = self.extents
        if box is None:
            return 0, 0, 0
        z, y, x = (max(0, s) for s in box.stop)
        return z, y, x

    @property
    def ndim(self) -> int:
        return 3

    def scale(self, level: int) -> Volume:
        """Level ``level`` of the pyramid (each level halves every axis): the instance
        ``<name>_<level>`` for image types (built by ``POST pyramid``)."""
        if level < 0:
            raise ValueError(f"scale levels are 0 or more, got {level}")
        if level == 0:
            return self
        return type(self)(self.version, f"{self.name}_{level}", self.typename)

    # ---- reading -----------------------------------------------------------------------------
    def __getitem__(self, key: Any) -> np.ndarray:
        box, dropped = parse_index(key, self.shape if has_open_bounds(key) else (0, 0, 0))
        out = self.read(box.start, box.stop)
        return out.squeeze(axis=dropped) if dropped else out

    def read(self, start: Point, stop: Point, *, progress: bool | None = None) -> np.ndarray:
        """The voxels of the box ``start <= p < stop`` ((z, y, x), any integers) as a new array."""
        box = _box(start, stop)
        out = np.empty(box.shape + self.channels, self.dtype)
        if box.empty:
            return out
        pieces = aligned_pieces(box, self.block_shape, self._voxel_bytes, PIECE_BYTES)

        def fetch(client: TypedClient, piece: Box) -> int:
            return self._fetch(client, piece, out[piece.within(box)])

        run_pieces(
            pieces,
            fetch,
            client=self.client,
            workers=self.version.server.workers,
            progress=self.version.server.progress if progress is None else progress,
            total_bytes=out.nbytes,
            desc=f"read {self.name}",
        )
        return out

    @property
    def _voxel_bytes(self) -> int:
        return self.dtype.itemsize * int(np.prod(self.channels, dtype=np.int64))

    def _fetch(self, client: TypedClient, piece: Box, target: np.ndarray) -> int:
        """GET one piece into ``target`` (a view of the output); returns the bytes read."""
        size, offset = piece.raw_path()
        response = client.instance_request(
            "GET", self.version.uuid, self.name, "raw", "0_1_2", size, offset, params=self.params, stream=True
        )
        buffer = target if target.flags.c_contiguous else np.empty(target.shape, target.dtype)
        view = buffer.reshape(-1).view(np.uint8).data
        got = 0
        with response:
            for chunk in response.iter_content(_CHUNK):
                end = got + len(chunk)
                if end > len(view):
                    got = end
                    break
                view[got:end] = chunk
                got = end
        if got != len(view):
            raise DVIDClientError(
                f"GET raw {size}/{offset} of {self.name} answered {'more' if got > len(view) else 'fewer'}"
                f" bytes than the {len(view):,} of the box",
                status=response.status_code,
                url=response.url,
            )
        if buffer is not target:
            target[...] = buffer
        return got

    # ---- writing -----------------------------------------------------------------------------
    def __setitem__(self, key: Any, value: Any) -> None:
        box, _ = parse_index(key, self.shape if has_open_bounds(key) else (0, 0, 0))
        array = self._cast(value)
        try:
            array = np.broadcast_to(array, box.shape + self.channels)
        except ValueError:
            raise ValueError(
                f"cannot write an array of shape {array.shape} into a box of shape {box.shape}"
            ) from None
        self.write(box.start, array)

    def _cast(self, value: Any) -> np.ndarray:
        """``value`` as an array of this volume's dtype; a cast across kinds (float to int) is refused."""
        if isinstance(value, np.ndarray) and not np.can_cast(value.dtype, self.dtype, "same_kind"):
            raise TypeError(f"cannot write {value.dtype} voxels into a {self.dtype} volume without a cast")
        return np.asarray(value, dtype=self.dtype)

    def write(self, start: Point, array: np.ndarray, *, progress: bool | None = None) -> None:
        """Store ``array`` ((z, y, x) + channels, this dtype) with its first voxel at ``start``. Any
        alignment: the server merges partly covered blocks with what they hold."""
        if self.level:
            raise ValueError(f"{self.name} at scale {self.level} is read-only: write at scale 0")
        array = self._cast(array)
        if array.ndim != 3 + len(self.channels) or array.shape[3:] != self.channels:
            raise ValueError(f"expected a 3-D (z, y, x) array of voxels, got shape {array.shape}")
        box = _box(start, tuple(s + n for s, n in zip(start, array.shape[:3], strict=True)))
        if box.empty:
            return
        pieces = aligned_pieces(box, self.block_shape, self._voxel_bytes, PIECE_BYTES)

        def send(client: TypedClient, piece: Box) -> int:
            body = np.ascontiguousarray(array[piece.within(box)]).tobytes()
            size, offset = piece.raw_path()
            client.instance_request(
                "POST", self.version.uuid, self.name, "raw", "0_1_2", size, offset, data=body
            )
            return len(body)

        run_pieces(
            pieces,
            send,
            client=self.client,
            workers=self.version.server.workers,
            progress=self.version.server.progress if progress is None else progress,
            total_bytes=array.nbytes,
            desc=f"write {self.name}",
        )


def _box(start: Any, stop: Any) -> Box:
    try:
        a = tuple(int(v) for v in start)
        b = tuple(int(v) for v in stop)
    except (TypeError, ValueError):
        raise TypeError(f"start and stop are (z, y, x) integer triples, got {start!r}, {stop!r}") from None
    if len(a) != 3 or len(b) != 3:
        raise TypeError(f"start and stop are (z, y, x) triples, got {start!r}, {stop!r}")
    if any(y < x for x, y in zip(a, b, strict=True)):
        raise ValueError(f"stop {b} is before start {a} on some axis")
    return Box((a[0], a[1], a[2]), (b[0], b[1], b[2]))
