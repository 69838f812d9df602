"""The API reference of the ``tarsupervoxels`` datatype (served at ``/api/help/tarsupervoxels``)."""

HELP_TEXT = """\
API for datatype "tarsupervoxels"
=================================

A tarsupervoxels instance keeps one file ("blob") per supervoxel id, typically a mesh of the
supervoxel (Draco .drc, .ngmesh, .obj), all with the instance's file extension. Synced with a
labelmap, it answers for a whole body: the blobs of all the body's supervoxels as one tar
archive, or which of them are missing. Blobs are stored exactly as sent (no compression, no
header); an empty blob is a blob.

Versions. Blobs are versioned like keyvalue data: a blob written at a version is seen there and at
its descendants until they replace or delete it; reads take the nearest ancestor's blob. The
body -> supervoxel expansion always uses the labelmap at the version of the URL.
  Differs from DVID: DVID reads and writes every blob at the repo's root version whatever the
  version in the URL. To get that behaviour, create the instance with "Versioned": "false": every
  version then reads and writes one repo-wide set of blobs (and writes are allowed at committed
  versions, as for every unversioned instance here).

Errors are plain text "<message> (<path>)." with status 400 for bad input (and for a body without
supervoxels, a missing labelmap sync or a refused tar entry), 404 for an unknown repo, version,
instance or blob, 405 for a method an endpoint does not take (DVID answers 400), 409 for a write
at a committed version of a versioned instance (DVID answers 400) and for a read that meets two
different blobs of a supervoxel at an unresolved merge, 413 for a body above the server's limit.

Instance creation
-----------------

POST /api/repo/{uuid}/instance
    {"typename": "tarsupervoxels", "dataname": "<name>", "Extension": "drc",
     "Versioned": "true", "Tags": "k1=v1,k2=v2"}

    Extension (required; DVID's help says it defaults to "dat", but DVID refuses an instance
    without one, and so do we: 400 "tarsupervoxels instances must have Extension set in the
    configuration"): 1 to 64 printable ASCII characters without spaces or '/', e.g. drc, ngmesh,
    obj, dat.

Common endpoints
----------------

GET  <api URL>/node/{uuid}/{data name}/help
    This help text.

GET  <api URL>/node/{uuid}/{data name}/info
    JSON {"Base": {...instance description...}, "Extended": {"Extension": "drc"}}.

POST <api URL>/node/{uuid}/{data name}/info
    A JSON object of settings to change; keys are case-insensitive and only "Extension" may be
    changed (another key is a 400). Blobs stored under the old extension are not renamed: they
    become invisible until the extension is changed back. Answers text "Changed '<name>' based on
    received configuration: Extension=<ext>".

GET  <api URL>/node/{uuid}/{data name}/tags
POST <api URL>/node/{uuid}/{data name}/tags[?replace=true]
    Read or add to (replace) the instance's string tags.

POST <api URL>/node/{uuid}/{data name}/sync[?replace=true]
    {"sync": "<labelmap name>"}: the labelmap whose label indexes say which supervoxels make up
    each body (the first synced labelmap is used). Only a labelmap can be a sync target here
    (DVID accepts any instance name and fails later, at the first body request).
    {"sync": ""} with replace=true removes the syncs. A tarsupervoxels instance follows no
    changes: bodies are looked up when a request needs them.

Single supervoxels
------------------

In these paths <sv> is a decimal unsigned 64-bit supervoxel id; 0 is refused with 400
"Supervoxel 0 is protected background value and cannot be used", anything that is not a number
with a 400 naming it.

GET    <api URL>/node/{uuid}/{data name}/supervoxel/<sv>
    The blob (Content-Type application/octet-stream). 404 "Supervoxel <sv> not found" if the
    supervoxel has none at this version.

POST   <api URL>/node/{uuid}/{data name}/supervoxel/<sv>
    Stores the request body as the supervoxel's blob (an empty body stores an empty blob).

DELETE <api URL>/node/{uuid}/{data name}/supervoxel/<sv>
    Deletes the supervoxel's blob at this version (ancestors keep theirs); 200 even if there was
    none.

GET    <api URL>/node/{uuid}/{data name}/exists[?hash=<md5 hex>]
    The request body is a JSON array of supervoxel ids; the answer a JSON array of booleans in
    the same order, true where the supervoxel has a blob (an empty one counts; 0 is always false).
    No labelmap is needed. hash: the hex MD5 of the request body; a mismatch is a 400 "content
    hash incorrect.  expected <hash>, got <md5>". A body that is not such an array is a 400
    "Bad exists request JSON: ...".

Bodies
------

These need a synced labelmap (400 'data "<name>" is not synced with any labelmap instance'
otherwise). <body> is a decimal unsigned 64-bit body id; 0 is a 400 "Label 0 is protected
background value and cannot be used". Its supervoxels are those of the body's label index at
the version of the URL (an unmapped supervoxel is its own body).

GET  <api URL>/node/{uuid}/{data name}/tarfile/<body>
    A tar archive (Content-Type application/tar) with one regular file per supervoxel of the
    body, in ascending supervoxel order (DVID's order is arbitrary): "<sv>.<extension>" holding
    the blob, or an empty "<sv>.missing" if the supervoxel has none. USTAR headers, mode 0755,
    uid and gid 0, no user or group names, modification time 0 (the Unix epoch); the archive ends
    with two zero blocks (it is not padded to a 10 KiB record). A body without supervoxels is a 400
    "can't send tarfile for label <body>: label <body> has no supervoxels".
    The archive is streamed as the blobs are read. If reading fails after the answer has begun,
    the connection is closed before the end of the archive, so the client sees a truncated
    transfer (no end-of-archive blocks), never a short archive that looks complete.

HEAD <api URL>/node/{uuid}/{data name}/tarfile/<body>
    200 if every supervoxel of the body has a blob (empty blobs count), else 400 (a supervoxel
    without a blob, or a body without supervoxels). No body.

GET  <api URL>/node/{uuid}/{data name}/missing/<body>
    JSON array of the body's supervoxels that have no blob, ascending ([] if none). A body
    without supervoxels is a 400 "can't get missing supervoxels: label <body> has no supervoxels".

Loading many blobs
------------------

POST <api URL>/node/{uuid}/{data name}/load
    The request body is a tar archive of regular files named "<sv>.<extension>" (no directory
    part), each stored as the blob of its supervoxel, replacing any earlier one. An empty body
    stores nothing. The archive is parsed as it arrives and stored in batches of up to 1000
    files or 32 MiB, each batch atomically. Every name is checked when its file is reached; the
    first refused file ends the load with a 400, and the files before it stay stored (as in
    DVID). Refusals, with n the file's 1-based position:
      "file <n> name is invalid, expect supervoxel+ext: <name>"  (not a decimal id, a dot and an
          extension; directories fail here)
      "file <n> name has bad extension (expect "<extension>"): <name>"
      "supervoxel 0 is reserved and cannot have data saved under 0 id"
      "file <n> is not a regular file: <name>"  (links, devices...)
    A body that is not a tar archive, or that ends inside a file, is a 400.
"""
