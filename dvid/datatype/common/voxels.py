"""Voxel kinds of image volumes: their little-endian numpy dtypes and channels, and array checks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VoxelFormat:
    """The voxel type of a volume: numpy dtype (little-endian) of one channel, and channels per voxel."""

    kind: str
    dtype: np.dtype
    channels: int = 1

    @property
    def bytes_per_voxel(self) -> int:
        return self.dtype.itemsize * self.channels

    def array_shape(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        """The numpy shape of an array of this kind with the given spatial shape."""
        return (*spatial, self.channels) if self.channels > 1 else spatial

    def check(self, arr: np.ndarray, spatial_ndim: int, what: str, axes: str) -> None:
        """Raise ValueError (a caller's bug, not bad input) if ``arr`` does not hold this kind."""
        ndim = spatial_ndim + (1 if self.channels > 1 else 0)
        if arr.ndim != ndim or (self.channels > 1 and arr.shape[-1] != self.channels):
            want = f"({axes}, {self.channels})" if self.channels > 1 else f"({axes})"
            raise ValueError(f"{self.kind} {what} must have shape {want}, got {arr.shape}")
        if arr.dtype.kind != self.dtype.kind or arr.dtype.itemsize != self.dtype.itemsize:
            raise ValueError(f"{self.kind} {what} must have dtype {self.dtype}, got {arr.dtype}")


VOXEL_FORMATS: dict[str, VoxelFormat] = {
    "uint8": VoxelFormat("uint8", np.dtype("<u1")),
    "uint16": VoxelFormat("uint16", np.dtype("<u2")),
    "uint32": VoxelFormat("uint32", np.dtype("<u4")),
    "uint64": VoxelFormat("uint64", np.dtype("<u8")),
    "float32": VoxelFormat("float32", np.dtype("<f4")),
    "rgba8": VoxelFormat("rgba8", np.dtype("<u1"), channels=4),
}
VALUE_KINDS = tuple(VOXEL_FORMATS)


def voxel_format(kind: str) -> VoxelFormat:
    try:
        return VOXEL_FORMATS[kind]
    except KeyError:
        raise ValueError(f"unknown value kind {kind!r}; expected one of {', '.join(VALUE_KINDS)}") from None
