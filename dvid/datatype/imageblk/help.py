"""The help text of the imageblk family, one template filled in per voxel type (see ``types.py``)."""

HELP_TEMPLATE = """\
{type_name}: blocks of {kind} voxels{kind_note}
{underline}

A 3-D volume stored as blocks (BlockSize, default 32x32x32) with DVID's key layout. Coordinates
are voxels (x, y, z); bodies are packed little-endian voxels in ZYX order (x fastest). Every
read of a region never written returns the Background value. Writes at a version store only the
blocks they touch; reads at any version see exactly that version's history.

Creation (POST /api/repo/{{uuid}}/instance), settings are strings:
    {{"typename": "{type_name}", "dataname": "grayscale",
     "BlockSize": "64,64,64",      block size in voxels (default 32,32,32)
     "VoxelSize": "8,8,8",         physical size of a voxel (floats; default 8,8,8)
     "VoxelUnits": "nanometers",   one unit, or three separated by commas
     "Background": "0",            value of voxels never written (default 0)
     "Compression": "lz4",         block storage: lz4 (default), none, gzip, gzip:N{jpeg_setting}
     "Versioned": "true"}}

Paths below are under /api/node/{{uuid}}/{{dataname}}. Geometry strings:
    <dims>    0_1 (xy), 0_2 (xz), 1_2 (yz) for slices; 0_1_2 for volumes
    <size>    nx_ny for slices, nx_ny_nz for volumes (positive)
    <offset>  x_y_z of the first voxel (may be negative)

GET  help                     This text.
GET  info                     {{"Base": ..., "Extended": {{"Values": [{{"DataType", "Label"}}],
                              "Interpolable", "BlockSize", "VoxelSize", "VoxelUnits", "MinPoint",
                              "MaxPoint", "MinIndex", "MaxIndex", "Background", "GridStore",
                              "ScaleLevel"}}, "Extents": {{"MinPoint", "MaxPoint"}}}}. Extents are
                              inclusive voxel coordinates that grow with every write.
GET  metadata                 {{"Axes": [{{"Label", "Resolution", "Units", "Size", "Offset"}} x3],
                              "Properties": <Extended>}} (application/vnd.dvid-nd-data+json).
GET  extents                  {{"MinPoint": [x,y,z], "MaxPoint": [x,y,z]}} written at this version
                              (null before any write).
POST extents                  Body {{"MinPoint": [x,y,z], "MaxPoint": [x,y,z]}} (32-bit integers):
                              replace the extents.
POST resolution               Body [x, y, z] (finite positive numbers): replace VoxelSize.
GET  rawkey?x=&y=&z=          {{"Key": "<hex>"}}: the storage key of the block holding that voxel.

GET  raw/<dims>/<size>/<offset>[/<format>]
                              A slice as an image, or a volume as raw bytes. Slices: format png
                              (default), jpg or jpg:<quality> (default 80), tif, bmp; a volume
                              answers application/octet-stream of nx*ny*nz*{bpv} bytes, streamed,
                              or with /jpg one gray JPEG nx wide and ny*nz tall (uint8 only).
                              Query: scale=N reads level N of the pyramid (instance NAME_N);
                              compression=lz4 (a bare LZ4 block) or gzip compresses a volume;
                              throttle=true (503 while the server runs its maximum of throttled
                              requests); roi=<name>[&attenuation=n] masks (roi help);
                              format=npz|hdf5|tiff|blosc (or Accept) answers a volume as a file
                              (Cutout formats below).
GET  isotropic/<dims>/<size>/<offset>[/<format>]
                              As raw; a slice across axes of different voxel sizes is resampled so
                              its pixels are square.
POST raw/0_1_2/<size>/<offset>
                              Store a volume: the body is exactly nx*ny*nz*{bpv} bytes. Any offset and
                              size: partially covered blocks are merged with what is stored. The
                              write is atomic; extents grow; pyramid levels are updated. With
                              compression=lz4 (a bare LZ4 block) or gzip the body is compressed.
GET  blocks/<bx_by_bz>/<n>    n whole blocks along +x from block (bx, by, bz), uncompressed and
                              concatenated (missing blocks are Background).
POST blocks/<bx_by_bz>/<n>    Store n whole uncompressed blocks along +x.
GET  subvolblocks/<size>/<offset>[?compression=]
                              The stored blocks of a block-aligned box in (z, y, x) order, each
                              framed as int32 bx, by, bz, int32 length, then the payload: the stored
                              block without its 1-byte header (lz4: uint32 size + LZ4 block; jpeg:
                              a JPEG image). compression=uncompressed sends raw voxels;
                              compression=jpeg requires JPEG storage. Missing blocks are omitted.
GET  specificblocks?blocks=x1,y1,z1,x2,y2,z2,...[&compression=][&prefetch=true]
                              The listed blocks, framed as above, in the order asked; prefetch reads
                              them and sends nothing.
POST pyramid?levels=N         Build levels 1..N (instances NAME_1 ... NAME_N, created with VoxelSize
                              doubled per level) by 2x2x2 mean (floor) of the level below, above
                              every block stored at this version, and keep them current: later
                              writes to NAME update the affected blocks of every level. Returns
                              {{"levels": N}}.

{cutout_help}
Errors: 400 malformed geometry, sizes, bodies or options; 404 unknown pyramid level; 406 an Accept
header a volume read cannot answer; 409 write to a committed version; 413 a request over the
server's voxel limit (setting max_request_voxels) or, for responses built in memory (images, block
lists, cutout files), over max_body_bytes.
"""
