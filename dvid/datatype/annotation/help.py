"""The annotation datatype's help text (its API reference) and the parameters its routes declare."""

from __future__ import annotations

from dataclasses import replace

from dvid.datatype.common.route import POINT, query

HELP = """\
API for datatype "annotation"
=============================

Point annotations ("elements": synapse T-bars and PSDs, gap junctions, notes) at integer voxel
positions, each with a Kind, string Tags, string-valued properties and relationships to other
elements. Elements are indexed three ways, kept consistent in one atomic write per request and
versioned like all data (an edit at a version changes that version only):
  * by block (the source of truth): block size = the BlockSize of the synced label instance, else
    64x64x64 (set the sync BEFORE posting elements: block keys depend on it);
  * by label: the body label at each element's position in the synced labelblk, kept right through
    voxel writes, labelvol merges, splits and area deletes (label 0 is not indexed);
  * by tag.

Element JSON (field order as output; Prop keys sorted):
    {"Pos": [x, y, z], "Kind": "PreSyn", "Tags": ["tag1"], "Prop": {"key": "value"},
     "Rels": [{"Rel": "PreSynTo", "To": [x, y, z]}]}
    Pos      required, 3 integers (int32).
    Kind     Unknown (default), PostSyn, PreSyn, Gap or Note.
    Tags     array of non-empty strings (indexed; exact-match queries).
    Prop     object of string -> string (not indexed).
    Rels     array of {"Rel": UnknownRelationship | PostSynTo | PreSynTo | ConvergentTo | GroupedWith,
             "To": [x, y, z]}. Relationships are not made reciprocal: post both directions. A "To"
             with no element there is accepted (as DVID).
    Field names match case-insensitively; unknown fields are ignored. Absent Tags/Prop/Rels are
    written [] / {} / [] for new elements and null where DVID keeps the raw value (elements replacing
    one at the same Pos, POST blocks, label index entries).

Instance creation
-----------------

POST /api/repo/{uuid}/instance
    {"typename": "annotation", "dataname": "synapses", "Versioned": "true", "Tags": "k=v"}
    No type-specific settings.

Paths below are under /api/node/{uuid}/{data name}.

GET  help                     This text.
GET  info                     {"Base": {...}, "Extended": {}}.
GET  tags; POST tags[?replace=true]
                              The instance's string tags. Tag ScanAllForBlocks=true makes GET blocks
                              scan whole z slabs instead of block rows.
POST sync[?replace=true]      Body {"sync": "name1,name2"}: the label instance (labelblk or labelvol)
                              whose labels index the elements. A labelvol is resolved to the labelblk
                              it syncs from, which is then added to the syncs too (the labelblk's
                              block writes are what keep the label index right). Elements posted
                              before the sync are not label-indexed: POST reload afterwards.
                              replace=true replaces the syncs ("" clears them). 404 unknown instance,
                              400 another type.

POST elements[?kafkalog=off]  Body: JSON array of elements ([] is fine). An element at the Pos of an
                              existing one replaces it (Kind, Tags, Prop, Rels; tags it lost are
                              unindexed); otherwise it is added. Two elements with the same Pos in
                              one body: the last wins. Label of each element: the synced labelblk's
                              voxel at Pos. The whole body is validated first: any bad element (no or
                              bad Pos, unknown Kind or Rel, non-string Prop value, empty tag, bad
                              Rels) is a 400 naming it and nothing is written. kafkalog is ignored.
GET  elements/<size>/<offset> The elements (with Rels) whose Pos lies in the box (size nx_ny_nz,
                              offset x_y_z), blocks in z, y, x order, stored order within a block.
                              No elements: null (as DVID).
GET  blocks/<size>/<offset>   {"bx,by,bz": [elements as stored], ...} for every stored block in the
                              box's block range (no per-point filtering), in z, y, x order; blocks
                              emptied by deletes come as []; nothing: {}. Streamed.
POST blocks[?kafkalog=off]    Body {"bx,by,bz": [elements], ...}: each block's list is replaced as
                              given (stored as posted: absent Tags/Prop/Rels stay null; points are
                              not checked to lie in their block). Unlike DVID, which leaves the
                              indexes alone until a reload, the label and tag indexes follow in the
                              same atomic write. Elements are validated (400, nothing written).
GET  all-elements             As GET blocks over every block. Extra path segments: 400.
GET  scan[?keysOnly=true][&byCoord=true]
                              {"num kv pairs": blocks stored, "num empty blocks": blocks holding []
                              (0 with keysOnly)}.

GET  label/<label>[?relationships=true|verbose]
                              The elements whose position has <label>: ElementNRs (no Rels) by
                              default, [] if none. relationships=true: the full elements from their
                              blocks (with Rels). verbose: each element with "Rels" entries
                              {"Rel", "To", "Kind", "Tags", "Prop"} carrying the partner's Kind, Tags
                              and Prop (omitted when empty or the partner is missing). Label 0 or a
                              non-integer label: 400.
POST labels                   Body {"<label>": "<JSON array string>", ...}: each string is stored as
                              that label's index verbatim (label 0 skipped), as DVID, once it has
                              been checked to be a JSON array (or null) of elements (else a 400
                              and nothing is written).
GET  tag/<tag>[?relationships=true|verbose]
                              As label/, for the elements carrying <tag> (exact match). Unknown: [].

DELETE element/<x_y_z>[?kafkalog=off]
                              Removes the element at the point from its block, the label and tag
                              indexes, and drops relationships pointing at it from the elements of
                              its block and of the blocks of its own relationships' partners. 400 if
                              there is no element there.
POST move/<from x_y_z>/<to x_y_z>[?kafkalog=off]
                              Moves the element: its Pos, block, label index entry (the label at the
                              new position; Pos is rewritten even if the label does not change, unlike
                              DVID) and tag entries, and relationships pointing at it in its old and
                              new block and its partners' blocks. 400 if there is no element at
                              <from>, or there already is one at <to>.
POST reload[?check=true][&inmemory=false]
                              Rebuilds the label and tag indexes from the blocks at this version (for
                              elements posted before a sync, or after POST blocks/labels), moving
                              elements found in the wrong block for the current block size. Only keys
                              that differ are written, stale ones are deleted; counts listeners get
                              the differences. Done when the reply comes (unlike DVID, which answers
                              first); other POSTs to the instance get a 400 meanwhile. The options
                              are accepted and ignored.

GET  roi/<name>[,<uuid>]      Every element (with Rels) stored in the blocks covered by the roi
                              instance <name> (read at this version, or at <uuid>), in span order;
                              null if none. The roi's BlockSize must equal this instance's block
                              size (400 otherwise); an unknown roi or a spec with more than one
                              comma: 400.

Not implemented: the RPC delete-all, Kafka logging.

Errors: plain text "<message> (<path>)."; 400 bad input (nothing is written), 404 unknown instance,
405 a method an endpoint does not take, 409 a write to a committed version, 413 a response above the
server's in-memory limit.
"""

KAFKALOG = query("kafkalog", description="Accepted and ignored (no Kafka logging)")
RELATIONSHIPS = query(
    "relationships",
    description="true: the full elements with Rels; verbose: Rels carry the partners' Kind, Tags and Prop",
    enum=("true", "false", "on", "off", "1", "0", "verbose"),
)

MOVE_FROM = replace(POINT, name="from", description="The element's voxel x_y_z", example="40_5_5")
MOVE_TO = replace(POINT, name="to", description="Where it goes, x_y_z", example="41_6_6")
