"""The parameters of the imageblk family's routes (the route table is ``ImageBlk.routes``)."""

from __future__ import annotations

from dvid.datatype.common.cutout import FORMATS as CUTOUT_FORMATS
from dvid.datatype.common.cutout import MEDIA_TYPES as CUTOUT_MEDIA_TYPES
from dvid.datatype.common.route import (
    BINARY,
    DIMS,
    IMAGE_FORMAT,
    IMAGES,
    INT32,
    OFFSET,
    SIZE,
    THROTTLE_QUERY,
    Param,
    flag,
    query,
)

ND_JSON = "application/vnd.dvid-nd-data+json"
VOLUME_DIMS = Param(
    "dims", description="0_1_2 (xyz, vol): a volume, the only shape a write takes",
    pattern="0[_,]1[_,]2|[xX][yY][zZ]|[vV][oO][lL]", example="0_1_2",
)  # fmt: skip
VOXELS_ARGS = (DIMS, SIZE, OFFSET, IMAGE_FORMAT)
#: A volume as raw voxels (or compressed, a JPEG stack or a cutout file), a slice as an image.
VOXEL_OUTPUT = tuple(dict.fromkeys((BINARY, *IMAGES, *CUTOUT_MEDIA_TYPES)))
CUTOUT_FORMAT = query(
    "format", description="A volume as a file: npz, hdf5, tiff or blosc (see the help text)",
    enum=tuple(CUTOUT_FORMATS),
)  # fmt: skip
SCALE = query("scale", "integer", "Read level N of the pyramid (instance NAME_N)", minimum=0)
ROI_QUERY = query("roi", description="Name of a roi instance of the repo whose blocks mask the voxels")
READ_QUERY = (
    SCALE,
    query("compression", description="A volume's wire compression", enum=("lz4", "gzip")),
    CUTOUT_FORMAT,
    ROI_QUERY,
    query("attenuation", "integer", "With roi (uint8 only): shift voxels outside right by n bits",
          minimum=1, maximum=7),
    THROTTLE_QUERY,
)  # fmt: skip
WRITE_QUERY = (
    query("compression", description="The body's compression", enum=("lz4", "gzip")),
    query("roi", description="Name of a roi instance: only the blocks inside it are written"),
    THROTTLE_QUERY,
)
RAWKEY_QUERY = tuple(
    Param(axis, "integer", f"The voxel's {axis}", minimum=-(2**31), maximum=2**31 - 1) for axis in "xyz"
)
SPAN = Param("n", "integer", "Number of blocks along x", minimum=1, maximum=2**31 - 1, example="1")
BLOCK_COMPRESSION = query(
    "compression", description="Block payloads: as stored (default), uncompressed, jpeg or lz4",
    enum=("", "uncompressed", "jpeg", "lz4"),
)  # fmt: skip
SPECIFIC_QUERY = (
    query("blocks", description="Block coordinates x1,y1,z1,x2,y2,z2,...",
          pattern=rf"({INT32}(,{INT32})*)?"),
    BLOCK_COMPRESSION,
    flag("prefetch", "Read the blocks and send nothing"),
    SCALE,
    THROTTLE_QUERY,
)  # fmt: skip
