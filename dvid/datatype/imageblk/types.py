"""The registered types of the imageblk family, one :class:`ImageBlk` subclass per voxel kind."""

from __future__ import annotations

from dvid.datatype.common.cutout import HELP as CUTOUT_HELP
from dvid.datatype.common.voxels import VOXEL_FORMATS
from dvid.datatype.imageblk.handlers import ImageBlk
from dvid.datatype.imageblk.help import HELP_TEMPLATE
from dvid.datatype.registry import register


def _make(type_name: str, kind: str, url_file: str, version: str, note: str = "") -> type[ImageBlk]:
    bpv = VOXEL_FORMATS[kind].bytes_per_voxel
    cls = type(
        f"{kind.capitalize()}Blk",
        (ImageBlk,),
        {
            "type_name": type_name,
            "type_url": f"github.com/janelia-flyem/dvid/datatype/imageblk/{url_file}",
            "type_version": version,
            "voxel_kind": kind,
            "help_text": HELP_TEMPLATE.format(
                type_name=type_name,
                kind=kind,
                kind_note=note,
                underline="=" * (len(type_name) + len(kind) + len(note) + 12),
                bpv=bpv,
                jpeg_setting=", jpeg (lossy)" if kind == "uint8" else "",
                cutout_help=CUTOUT_HELP,
            ),
        },
    )
    return register(cls)  # type: ignore[return-value]


Uint8Blk = _make("uint8blk", "uint8", "uint8.go", "0.2", " (grayscale)")
Uint16Blk = _make("uint16blk", "uint16", "uint16.go", "0.1")
Uint32Blk = _make("uint32blk", "uint32", "uint32.go", "0.1")
Uint64Blk = _make("uint64blk", "uint64", "uint64.go", "0.1")
Float32Blk = _make("float32blk", "float32", "float32.go", "0.1")
Rgba8Blk = _make("rgba8blk", "rgba8", "rgba8.go", "0.2")
