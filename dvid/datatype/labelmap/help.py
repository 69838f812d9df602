"""labelmap's help text: its API reference (served at /api/help/labelmap, rendered into docs/api)."""

from dvid.datatype.common.cutout import HELP as CUTOUT_HELP

HELP = (
    """\
labelmap: supervoxel label volumes with a body mapping, label indexes and proofreading edits
==============================================================================================

The label type proofreading runs on. Blocks hold *supervoxel* ids (uint64, DVID's compressed label
Block format, gzip-stored, 64x64x64 by default); a versioned mapping assigns supervoxels to *bodies*
and is applied when blocks are read, so merges and cleaves change the mapping and the label indexes,
never the voxels. Each body has a label index (which blocks hold how many voxels of each of its
supervoxels). Scales 1..MaxDownresLevel hold the 2x downsampled pyramid in the same instance.
Every value is versioned: an edit at a child version is invisible at its parent.

Creation (POST /api/repo/{uuid}/instance), settings are strings:
    {"typename": "labelmap", "dataname": "segmentation",
     "BlockSize": "64,64,64",      each a multiple of 16 (default 64,64,64)
     "VoxelSize": "8,8,8", "VoxelUnits": "nanometers",
     "IndexedLabels": "true",      keep label indexes (false: index-based endpoints answer 400)
     "MaxDownresLevel": "N",       pyramid scales 1..N kept current by voxel writes (default 0)
     "Compression": "gzip"}        block storage: gzip (default; POST blocks stores its payloads as
                                   they are), lz4 or none

Paths below are under /api/node/{uuid}/{dataname}. Common query parameters: scale=N (voxel and block
coordinates are at scale N), supervoxels=true (read or name supervoxel ids, not bodies), u=<user>
and app=<app> (recorded with edits), throttle=true (503 while the server runs its maximum of heavy
requests).

Voxels
GET  help, info, metadata     info: Base, Extended (Values [{"DataType": "uint64", "Label":
                              "labelmap"}], BlockSize, VoxelSize, VoxelUnits, MinPoint, MaxPoint,
                              IndexedLabels, CountLabels, MaxDownresLevel, MaxRepoLabel), Extents.
POST info                     {"MaxDownresLevel": N} (a number or a string, key case-insensitive):
                              change the pyramid depth; new levels fill as voxels are written.
                              Other keys answer 400.
POST extents, resolution      As for uint8blk.
GET  raw/<dims>/<size>/<offset>[/<format>][?scale&supervoxels&compression&format&roi]
                              Bodies (or supervoxels) of a box at any alignment: a 2-D slice as an
                              image, or a volume as raw uint64 (compression: "" raw, lz4 bare block,
                              gzip, google / googlegzip: neuroglancer compressed_segmentation, the
                              latter with Content-Encoding: gzip). Missing blocks read as 0. A
                              google read of exactly one stored block (neuroglancer's chunk when it
                              is the block size) is transcoded from the stored Block, with a lookup
                              table per 8x8x8 sub-block. format=npz|hdf5|tiff|blosc (or Accept)
                              answers a volume as a file (Cutout formats below; metadata adds
                              scale, supervoxels, and voxel_size of the scale read).
GET  isotropic/..., pseudocolor/...   As for labelblk, through the mapping.
GET  label/<x_y_z>[?scale&supervoxels]   {"Label": N}.
GET  labels[?scale&supervoxels&hash]     Body [[x,y,z], ...] -> [N, ...].
POST raw/0_1_2/<size>/<offset>[?compression=lz4|gzip&roi=]
                              Store supervoxels: nx*ny*nz*8 bytes (or an lz4 block / gzip stream),
                              any alignment; one atomic batch with the label indexes (voxel count
                              changes per block and supervoxel), the max labels and the extents; the
                              pyramid follows before the reply. Uses one mutation id.
GET  blocks/<size>/<offset>[?compression=&scale&supervoxels]
                              The stored blocks of a block-aligned box as a framed stream (int32 bx,
                              by, bz, int32 length, payload), missing blocks left out, order not
                              guaranteed. compression: lz4 (default, a bare LZ4 block of the uint64
                              voxels), gzip (of the voxels), blocks (gzip of the compressed Block,
                              label table mapped to bodies unless supervoxels=true; stored bytes as
                              they are when no mapping applies), uncompressed.
GET  specificblocks?blocks=x1,y1,z1,...[&compression=&scale&supervoxels&prefetch]
                              The listed blocks, framed likewise; default compression is blocks.
POST blocks[?scale&downres=true&noindexing=true]
                              A framed stream of gzip'd compressed Blocks (int32 bx, by, bz, uint32
                              length, payload), each stored as it is; extents and max labels grow
                              and, at scale 0 unless noindexing, label indexes count the voxels
                              (blocks replace what was there: counts move, never double). Stored in
                              atomic batches of 64 blocks as the stream arrives (a bad block is a
                              400, and the batches before it stay). downres=true (scale 0) then
                              recomputes the pyramid above the blocks.
POST ingest-supervoxels[?scale]
                              The same stream, blocks only: no index, extents, max label or pyramid.

Building from a labelblk (dvid; the command `dvid labelmap from-labelblk` drives it)
POST ingest-labelblk?source=<labelblk>[&blocks=N&restart=true]
                              One step of converting labelblk <labelblk> of the same repo into this
                              labelmap at this version: its next blocks in key order (z, y, x) become
                              compressed label Blocks, stored with their label indexes, max labels and
                              extents in atomic batches (blocks already here are replaced, their
                              counts moved); once all are stored, scales 1..MaxDownresLevel are
                              computed row by row of blocks. A step does at most N blocks (default
                              512, at most 65536) and answers where the conversion stands:
                              {"source", "phase": "blocks" | "pyramid" | "complete", "scale", "done",
                              "total" (of this phase: source blocks, or blocks of the scale),
                              "source_blocks", "max_downres", "complete"}. The labelmap records it, so
                              the next step continues there, after an interruption or a restart of
                              the server too; repeat until "complete" is true. A complete conversion
                              answers at once; restart=true starts over (e.g. at a later version).
                              The BlockSizes must be equal. Blocks the labelblk gets behind the
                              conversion's position while it runs are not carried over (convert data
                              that no longer changes, or restart). 409 while another source's
                              conversion is unfinished here (finish it, or restart=true) or while
                              another step runs on this labelmap.
GET  ingest-labelblk          The same progress, without converting (404 if none was started here).

Labels and counters
GET  maxlabel                 {"maxlabel": N}: the largest label written at this version or an
                              ancestor (0 if none).
POST maxlabel/<N>             Raise the max label to N (at most 2^48).
GET  nextlabel                {"nextlabel": N}: the label the next reservation starts at.
POST nextlabel/<count>        Reserve count labels: {"start": a, "end": b}, b - a + 1 = count, never
                              handed out again (new bodies of cleaves and splits come from here too).
POST set-nextlabel/<N>[?ceiling=M]
                              Hand out labels from N on (0: from the max label + 1 again), never
                              above M if given (a reservation past it is a 400).

Mapping
GET  mapping[?nolookup=true]  Body [sv, ...] -> [body, ...]: 0 for retired supervoxels and, without
                              nolookup, for supervoxels no body holds; with nolookup unmapped ids map
                              to themselves.
GET  mappings[?format=binary] Every supervoxel mapped to another id: text lines "sv body", or pairs
                              of uint64 (binary). Identity rows are left out.
POST mappings                 A MappingOps protobuf: each op maps its original ids to mapped.
GET  map-stats                {"MapEntries": n, "Bodies": b, "Retired": r}.

Label indexes (protobuf messages of DVID's labelops.proto; block ids pack x, y, z in 21 bits each,
sign-magnitude, z highest)
GET  index/<label>[?metadata-only=true&mutid=M]
                              The body's LabelIndex protobuf; metadata-only: {"num_voxels",
                              "last_mutid", "last_mod_time", "last_mod_user", "last_mod_app"}. 404 if
                              the body has no index. mutid: the index as it was after edit M (every
                              edit keeps the indexes it changes as they were before it).
GET  index-version/<label>    The UUID of the version whose write of the index is visible here.
POST index/<label>            Store a LabelIndex as it is (one without blocks deletes the index).
GET  indices                  Body [label, ...] (at most 50,000) -> LabelIndices (an empty index
                              for labels without one).
POST indices                  Store a LabelIndices protobuf (empty indexes delete).
GET  indices-compressed       Body [label, ...] -> per label: uint64 length, uint64 label, the
                              stored value (LZ4-enveloped protobuf; length 0 if none).
GET  supervoxels/<label>      [sv, ...] of a body (404 if it has no voxels).
GET  supervoxel-sizes/<label> {"supervoxels": [...], "sizes": [...]}.
GET  size/<label>[?supervoxels]  {"voxels": N} (404 if none).
GET  sizes[?supervoxels&hash] Body [label, ...] -> [voxels, ...] (0 where none).
GET  listlabels[?start=&number=&sizes=true]
                              Bodies with voxels from start on, ascending, as uint64 (with sizes,
                              label and size pairs), at most number of them.
GET  existing-labels          The same as a JSON list.

Sparse volumes (from the label index and the supervoxel blocks; bounds minx, maxx, miny, maxy,
minz, maxz are inclusive voxel coordinates at the scale asked for)
GET  sparsevol/<label>[?format=rles|srles|blocks&bounds&exact&compression&scale&supervoxels]
                              rles (default): DVID's legacy payload (bytes 0, 3, 0, 0, uint32 0,
                              uint32 number of runs, then int32 x, y, z, length per run along x;
                              runs continue across block edges). srles: the runs alone. blocks: uint32
                              gx, gy, gz (sub-blocks per block), uint64 label, then per block int32
                              x0, y0, z0 and a flag (1 all of the block, 2 mixed: per 8x8x8 sub-block
                              in z, y, x order a flag 0/1/2 and, for 2, a 64-byte mask of its voxels
                              in z, y, x order, least significant bit first). exact=false keeps whole
                              blocks meeting the bounds; compression (lz4 bare block, gzip) applies to
                              rles and srles. 404 with an empty body if the label has no voxels.
HEAD sparsevol/<label>[?bounds&scale&supervoxels]
                              200 if the label has voxels in blocks meeting the bounds, else 204.
GET  sparsevol-by-point/<x_y_z>   The sparsevol of the body (or supervoxel) at a voxel.
GET  sparsevol-size/<label>   {"voxels": n, "numblocks": b, "minvoxel": [x, y, z], "maxvoxel":
                              [x, y, z]} (block-accurate bounds).
GET  sparsevol-coarse/<label>[?bounds&supervoxels]
                              The legacy payload with runs of scale-0 block coordinates.
GET  sparsevols-coarse/<begin>/<end>
                              For every body with an index in [begin, end]: uint64 label, int32
                              number of runs, then the runs (int32 bx, by, bz, length).
GET  proximity/<target>,<l2>,...
                              [{"Block": [x, y, z], "Label": l, "Distance": d}, ...]: each block the
                              target shares with another body and the least Euclidean voxel distance
                              between them there ("Label" left out when only one other is given).

Edits (each one atomic: blocks, label indexes, mapping, mutation log and synced annotations in one
batch; each takes a mutation id, repo-wide, shown as MutationID in the repo info; u= and app= are
recorded in the indexes changed and the log record)
POST merge                    Body [target, a, b, ...]: the bodies a, b, ... become part of target.
                              {"MutationID": m}. 400 (nothing changed) for fewer than two labels,
                              label 0, merging a body into itself, or a body without voxels.
POST cleave/<body>            Body [sv, ...]: those supervoxels of the body move to a new body
                              (from nextlabel). {"CleavedLabel": n, "MutationID": m}. 400 if one is
                              not in the body or none would remain.
POST split-supervoxel/<sv>[?split=&remain=&downres=false]
                              Body: legacy RLE payload (as sparsevol gives) of voxels of the
                              supervoxel. They become supervoxel split, the rest remain (new labels
                              unless given), both in the supervoxel's body; sv is retired (maps to 0).
                              The blocks are rewritten and the pyramid follows unless downres=false.
                              {"SplitSupervoxel": s, "RemainSupervoxel": r, "MutationID": m}. 400 if
                              the runs cover a voxel outside the supervoxel or none of it.
POST split/<body>             Only with the server setting AllowLabelmapSplit. Body: RLE payload of
                              voxels of the body; they become a new body: supervoxels covered whole
                              move, supervoxels cut are split in two (as split-supervoxel).
                              {"label": new, "MutationID": m}.
POST renumber                 Body [new1, old1, new2, old2, ...]: body old gets id new (which must
                              have no voxels); pairs apply in order, one mutation id each. 200, no
                              body.
GET  mutations                The edits made at this version (not its ancestors): [record, ...] as
                              DVID writes them, keys sorted: Action (merge-complete, cleave-complete,
                              split-supervoxel-complete, split-complete, renumber-complete),
                              MutationID, Timestamp (Go's time format), UUID, User and App when given,
                              and the edit's fields (Target, Labels, OrigLabel, CleavedLabel,
                              CleavedSupervoxels, CleavedSize, RemainSize, Supervoxel, Body,
                              SplitSupervoxel, RemainSupervoxel, SplitSize, NewLabel, SVSplits).
GET  mutations-range/<begin>/<end>
                              The records of the versions from end up its first parents to begin
                              (UUIDs or prefixes), newest version first.
GET  history/<label>/<from>/<to>
                              The edits, in the versions from..to, of the bodies that at from held the
                              supervoxels label has at to: JSON objects back to back ({"Action":
                              "merge", "Target", "Labels"}, {"Action": "cleave", "OrigLabel",
                              "CleavedLabel", "CleavedSupervoxels"}, {"Action": "split", "Target",
                              "NewLabel", "Coarse"}, {"Action": "split-supervoxel", "Supervoxel",
                              "SplitSupervoxel", "RemainSupervoxel"}); empty if label has no index.
GET  lastmod/<label>          {"mutation id": m, "last mod user": "u", "last mod app": "a", "last mod
                              time": "RFC 3339" } of the body's last edit (zeros and "" if never
                              edited); 404 with an empty body if it has no voxels.
GET  supervoxel-splits        ["uuid", [[mutid, old, remain, split], ...], ...] for this version and
                              its ancestors, nearest first.

"""
    + CUTOUT_HELP
    + """
Errors: 400 malformed geometry, labels, JSON or protobuf bodies, unaligned block boxes, bad Blocks,
index-based endpoints on an instance with IndexedLabels false; 404 bodies without voxels; 406 an
Accept header a volume read cannot answer; 409 writes to a committed version; 413 requests over the
voxel or body limits.
"""
)
