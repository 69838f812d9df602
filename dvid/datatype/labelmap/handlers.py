"""The HTTP API of labelmap: :class:`LabelMap`, its route table, and the class assembled from the
layers (``core.py`` state and commits, ``voxels.py`` volumes and block streams, ``bodies.py``
counters, mapping and label indexes)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import ClassVar

from aiohttp import web

from dvid.datatype.base import Route
from dvid.datatype.common import jsonio
from dvid.datatype.common.bounds import BOUNDS_QUERY
from dvid.datatype.common.request import InstanceRequest, text_response
from dvid.datatype.common.route import (
    BINARY,
    JSON,
    LABEL,
    OFFSET,
    POINT,
    SIZE3,
    TEXT,
    THROTTLE_QUERY,
    Param,
    flag,
    query,
)
from dvid.datatype.labelblk import LabelBlk
from dvid.datatype.labelmap.bodysplit import LabelMapBodySplit
from dvid.datatype.labelmap.help import HELP
from dvid.datatype.labelmap.history import LabelMapHistory
from dvid.datatype.labelmap.ingest import MAX_STEP_BLOCKS, LabelMapIngest
from dvid.datatype.labelmap.sparsevol import LabelMapSparsevol
from dvid.datatype.labelmap.voxels import BLOCK_STREAM_COMPRESSIONS, LabelMapVoxels
from dvid.datatype.registry import register
from dvid.errors import BadRequest

SCALE = query(
    "scale", "integer", "The scale (pyramid level) voxel coordinates are at", minimum=0, maximum=255
)
SUPERVOXELS = flag("supervoxels", "Supervoxel ids as stored, not the bodies they map to")
BLOCKS_COMPRESSION = query(
    "compression",
    description="Block payloads: lz4 (bare), gzip, blocks (gzip'd compressed Block) or uncompressed",
    enum=BLOCK_STREAM_COMPRESSIONS,
)  # fmt: skip
COUNT = Param("count", "integer", "How many labels to reserve", minimum=1, maximum=2**32, example="10")
BODY_ARG = Param("label", "integer", "A body (or, with supervoxels=true, a supervoxel) id", minimum=1,
                 maximum=2**64 - 1, example="7")  # fmt: skip

EDIT_QUERY = (query("u", description="The user making the edit"),
              query("app", description="The application making the edit"))  # fmt: skip

SPARSEVOL_QUERY = (
    *BOUNDS_QUERY,
    query("format", description="rles (default), srles (runs without header) or blocks",
          enum=("rles", "srles", "blocks")),
    flag("exact", "Clip runs to the bounds (default true)"),
    query("compression", description="rles/srles compression", enum=("lz4", "gzip")),
    SCALE, SUPERVOXELS, THROTTLE_QUERY,
)  # fmt: skip

#: labelblk's routes labelmap serves as they are (the handlers see labelmap's views).
_INHERITED = ("metadata", "extents", "resolution", "raw", "isotropic", "label", "labels", "pseudocolor")


def _inherited_routes() -> tuple[Route, ...]:
    out = []
    for route in LabelBlk.routes:
        if route.endpoint not in _INHERITED:
            continue
        if route.endpoint == "extents" and "GET" in route.methods:
            continue  # DVID's labelmap takes extents POSTs only
        if "GET" in route.methods and any(q.name == "scale" for q in route.query):
            query_ = tuple(SCALE if q.name == "scale" else q for q in route.query)
            route = dataclasses.replace(route, query=(*query_, SUPERVOXELS))
        out.append(route)
    return tuple(out)


#: The settings POST info may change (DVID's labelmap ModifyConfig), by lower-cased name.
_MODIFIABLE = {"maxdownreslevel": "MaxDownresLevel"}


@register
class LabelMap(LabelMapBodySplit, LabelMapSparsevol, LabelMapHistory, LabelMapIngest, LabelMapVoxels):
    type_name = "labelmap"
    type_url = "github.com/janelia-flyem/dvid/datatype/labelmap"
    type_version = "0.1"
    help_text = HELP
    sync_requires: ClassVar[tuple[type, ...]] = ()
    routes: ClassVar[tuple[Route, ...]] = (
        *_inherited_routes(),
        Route("info", ("POST",), "handle_post_info", summary="Change settings: {\"MaxDownresLevel\": N}",
              consumes=(JSON,), produces=(TEXT,)),
        Route("blocks", ("GET",), "handle_label_blocks", mutates=False, heavy=True,
              summary="The blocks of a block-aligned box, framed, in any order",
              args=(SIZE3, OFFSET), query=(BLOCKS_COMPRESSION, SCALE, SUPERVOXELS, THROTTLE_QUERY),
              produces=(BINARY,)),
        Route("blocks", ("POST",), "handle_post_label_blocks", heavy=True,
              summary="Store a framed stream of gzip'd compressed Blocks",
              query=(SCALE, flag("downres", "Recompute the pyramid above the blocks"),
                     flag("noindexing", "Leave the label indexes alone"), THROTTLE_QUERY),
              consumes=(BINARY,), produces=()),
        Route("ingest-supervoxels", ("POST",), "handle_ingest_supervoxels", heavy=True,
              summary="Store a framed stream of gzip'd Blocks as they are (no index, extents or max label)",
              query=(SCALE,), consumes=(BINARY,), produces=()),
        Route("ingest-labelblk", ("POST",), "handle_ingest_labelblk", heavy=True,
              summary="Convert the next blocks of a labelblk of the repo into this labelmap (resumable)",
              query=(query("source", description="The labelblk instance to convert"),
                     query("blocks", "integer", "At most this many blocks in this step (default 512)",
                           minimum=1, maximum=MAX_STEP_BLOCKS),
                     flag("restart", "Start the conversion over"), THROTTLE_QUERY)),
        Route("ingest-labelblk", ("GET",), "handle_get_ingest_labelblk", mutates=False,
              summary="Where the conversion from a labelblk stands at this version", statuses=(404,)),
        Route("specificblocks", ("GET",), "handle_specificblocks", mutates=False, heavy=True,
              summary="The listed blocks, framed",
              query=(query("blocks", description="Block coordinates x1,y1,z1,x2,y2,z2,..."),
                     BLOCKS_COMPRESSION, SCALE, SUPERVOXELS, flag("prefetch", "Read and send nothing"),
                     THROTTLE_QUERY),
              produces=(BINARY,)),
        Route("maxlabel", ("GET",), "handle_maxlabel", mutates=False,
              summary="The largest label written at this version or its ancestors"),
        Route("maxlabel", ("POST",), "handle_post_maxlabel", summary="Raise the max label",
              args=(LABEL,), produces=()),
        Route("nextlabel", ("GET",), "handle_get_nextlabel", mutates=False,
              summary="The next label nextlabel would hand out"),
        Route("nextlabel", ("POST",), "handle_post_nextlabel", mutates=False,
              summary="Reserve new labels", args=(COUNT,)),
        Route("set-nextlabel", ("POST",), "handle_set_nextlabel", mutates=False,
              summary="Set the next label to hand out (0: after the max label)", args=(LABEL,),
              query=(query("ceiling", "integer", "The largest label nextlabel may hand out", minimum=0),),
              produces=()),
        Route("mapping", ("GET",), "handle_mapping", mutates=False,
              summary="The bodies of the supervoxels the body lists",
              query=(flag("nolookup", "Map without checking that each supervoxel exists"),),
              consumes=(JSON,)),
        Route("mappings", ("GET",), "handle_get_mappings", mutates=False,
              summary="Every supervoxel not mapped to itself, with its body",
              query=(query("format", description="binary: u64 pairs", enum=("", "binary")),
                     flag("consistent", "Accepted (reads are always consistent)")),
              produces=(TEXT, BINARY)),
        Route("mappings", ("POST",), "handle_post_mappings",
              summary="Assign supervoxels to bodies (MappingOps)",
              consumes=(BINARY,), produces=()),
        Route("map-stats", ("GET",), "handle_map_stats", mutates=False, summary="Counts of the mapping"),
        Route("index", ("GET",), "handle_get_index", mutates=False,
              summary="A body's label index (LabelIndex)",
              args=(BODY_ARG,), query=(flag("metadata-only", "JSON metadata instead of the protobuf"),
                                       query("mutid", "integer", "The index as it was after this edit",
                                             minimum=0)),
              produces=(BINARY, JSON)),
        Route("index-version", ("GET",), "handle_index_version", mutates=False,
              summary="The UUID of the version that last wrote a body's index", args=(BODY_ARG,),
              produces=(TEXT,)),
        Route("index", ("POST",), "handle_post_index", summary="Store a body's label index (empty: delete)",
              args=(BODY_ARG,), consumes=(BINARY,), produces=()),
        Route("indices", ("GET",), "handle_get_indices", mutates=False,
              summary="The label indexes of the labels the body lists (LabelIndices)", consumes=(JSON,),
              produces=(BINARY,)),
        Route("indices", ("POST",), "handle_post_indices", summary="Store label indexes (LabelIndices)",
              consumes=(BINARY,), produces=()),
        Route("indices-compressed", ("GET",), "handle_indices_compressed", mutates=False,
              summary="Stored label indexes as they are, framed", consumes=(JSON,), produces=(BINARY,)),
        Route("supervoxels", ("GET",), "handle_supervoxels", mutates=False,
              summary="The supervoxels of a body", args=(BODY_ARG,)),
        Route("supervoxel-sizes", ("GET",), "handle_supervoxel_sizes", mutates=False,
              summary="The supervoxels of a body with their sizes", args=(BODY_ARG,)),
        Route("size", ("GET",), "handle_size", mutates=False, summary="The voxels of a body (or supervoxel)",
              args=(BODY_ARG,), query=(SUPERVOXELS,)),
        Route("sizes", ("GET",), "handle_sizes", mutates=False,
              summary="The voxels of each body (or supervoxel) the body lists",
              query=(SUPERVOXELS, query("hash", description="The hex MD5 the body must have")),
              consumes=(JSON,)),
        Route("listlabels", ("GET",), "handle_listlabels", mutates=False,
              summary="The bodies with voxels, ascending, as u64 (with sizes: pairs)",
              query=(query("start", "integer", "List from this label on", minimum=0),
                     query("number", "integer", "At most this many", minimum=0),
                     flag("sizes", "Each label followed by its size")),
              produces=(BINARY,)),
        Route("existing-labels", ("GET",), "handle_existing_labels", mutates=False,
              summary="The bodies with voxels, as a JSON list"),
        Route("sparsevol", ("GET",), "handle_sparsevol", mutates=False, heavy=True,
              summary="A body's (or supervoxel's) voxels as runs or block masks", args=(BODY_ARG,),
              query=SPARSEVOL_QUERY, produces=(BINARY,), empty_statuses=(404,)),
        Route("sparsevol", ("HEAD",), "handle_sparsevol", mutates=False, heavy=True,
              summary="200 if the label has voxels (in blocks meeting the bounds), 204 if not",
              args=(BODY_ARG,), query=(*BOUNDS_QUERY, SCALE, SUPERVOXELS, THROTTLE_QUERY), produces=(),
              statuses=(204,)),
        Route("sparsevol-by-point", ("GET",), "handle_sparsevol_by_point", mutates=False, heavy=True,
              summary="The sparsevol of the body (or supervoxel) at a voxel", args=(POINT,),
              query=SPARSEVOL_QUERY, produces=(BINARY,), empty_statuses=(404,)),
        Route("sparsevol-size", ("GET",), "handle_sparsevol_size", mutates=False,
              summary="A body's voxel count, block count and block-accurate bounds", args=(BODY_ARG,),
              query=(SUPERVOXELS,)),
        Route("sparsevol-coarse", ("GET",), "handle_sparsevol_coarse", mutates=False,
              summary="The scale-0 blocks holding a body, as runs of blocks", args=(BODY_ARG,),
              query=(*BOUNDS_QUERY, SUPERVOXELS), produces=(BINARY,), empty_statuses=(404,)),
        Route("sparsevols-coarse", ("GET",), "handle_sparsevols_coarse", mutates=False, heavy=True,
              summary="The coarse sparse volumes of every body in a label range",
              args=(Param("begin", "integer", "First label", minimum=0, example="1"),
                    Param("end", "integer", "Last label (inclusive)", minimum=0, example="100")),
              produces=(BINARY,)),
        Route("proximity", ("GET",), "handle_proximity", mutates=False, heavy=True,
              summary="Blocks a target body shares with others, with the least voxel distance there",
              args=(Param("labels", description="target,l2,l3,...", pattern=r"[0-9]+(,[0-9]+)+",
                          example="1,2"),)),
        Route("merge", ("POST",), "handle_merge", summary="Merge bodies into the first ([target, a, b, ...])",
              query=EDIT_QUERY, consumes=(JSON,)),
        Route("cleave", ("POST",), "handle_cleave", summary="Move supervoxels of a body to a new body",
              args=(BODY_ARG,), query=EDIT_QUERY, consumes=(JSON,)),
        Route("split-supervoxel", ("POST",), "handle_split_supervoxel",
              summary="Split a supervoxel in two along a sparse volume (legacy RLE body)",
              args=(BODY_ARG,),
              query=(*EDIT_QUERY, query("split", "integer", "The id of the part the runs cover", minimum=1),
                     query("remain", "integer", "The id of the rest", minimum=1),
                     query("downres", "boolean", "Recompute the pyramid (default true)")),
              consumes=(BINARY,)),
        Route("renumber", ("POST",), "handle_renumber", summary="Give bodies new ids ([new1, old1, ...])",
              query=EDIT_QUERY, consumes=(JSON,), produces=()),
        Route("mutations", ("GET",), "handle_mutations", mutates=False,
              summary="The edits made at this version (mutation log records)",
              query=(query("userid", description="Accepted, ignored (as DVID)"),)),
        Route("mutations-range", ("GET",), "handle_mutations_range", mutates=False,
              summary="The edits of the versions from one UUID down to another, newest version first",
              args=(Param("begin", description="The oldest version's UUID (or prefix)", example="a1b2"),
                    Param("end", description="The newest version's UUID (or prefix)", example="c3d4"))),
        Route("lastmod", ("GET",), "handle_lastmod", mutates=False,
              summary="The last edit of a body", args=(BODY_ARG,), empty_statuses=(404,)),
        Route("supervoxel-splits", ("GET",), "handle_supervoxel_splits", mutates=False,
              summary="The supervoxel splits of this version and its ancestors"),
        Route("history", ("GET",), "handle_history", mutates=False,
              summary="The edits that shaped a body between two versions (JSON objects back to back)",
              args=(BODY_ARG, Param("from", description="The older version's UUID", example="a1b2"),
                    Param("to", description="The newer version's UUID", example="c3d4"))),
        Route("split", ("POST",), "handle_split",
              summary="Split the voxels a sparse volume covers off a body (setting AllowLabelmapSplit)",
              args=(BODY_ARG,), query=EDIT_QUERY, consumes=(BINARY,)),
    )  # fmt: skip

    async def handle_post_info(self, req: InstanceRequest) -> web.StreamResponse:
        """DVID's ``POST info``: a JSON object of settings to change (keys case-insensitive, values
        numbers or strings), persisted; today only MaxDownresLevel (new levels fill as voxels are written)."""
        body = jsonio.loads_object(await req.body())
        changes: dict[str, int] = {}
        for key, value in body.items():
            name = _MODIFIABLE.get(key.lower())
            if name is None:
                raise BadRequest(f"POST info can change {sorted(_MODIFIABLE.values())}, not {key!r}")
            try:
                level = int(value)
            except (TypeError, ValueError):
                raise BadRequest(f"{name} must be an integer, got {value!r}") from None
            if not 0 <= level <= 255 or isinstance(value, bool | float):
                raise BadRequest(f"{name} must be an integer from 0 to 255, got {value!r}")
            changes[name] = level
        for name, level in changes.items():
            setattr(self.settings, name, level)
        self.meta.properties["settings"] = self.settings.model_dump(mode="json")
        await asyncio.to_thread(self.save)
        summary = ", ".join(f"{k}={v}" for k, v in changes.items()) or "nothing"
        return text_response(f"Changed {self.name!r} based on received configuration: {summary}\n")
