"""The general API reference served at ``/api/help`` (and rendered into docs/api/server.md)."""

GENERAL_HELP = """\
dvid HTTP API: server, repo and node endpoints
==============================================

Every path is under /api. {uuid} is a version reference: a full UUID, any unique prefix of
one, "uuid:branch" (the head of a branch in that UUID's repo), ":branch" (when the server holds
one repo), and "branch~N" (N versions up the branch), e.g. ":master~1". "master" and "" both
name the master branch. Unknown query parameters (u=, app=, ...) are ignored. Errors answer
with a status code and a plain-text body "<message> (<path>)."

Status codes: 400 malformed input; 403 admin token needed; 404 unknown repo, version,
instance, key, branch or route; 405 wrong method or read-only server; 409 write to a
committed version, name already taken, or a read that meets an unresolved merge conflict;
413 body too large; 416 unsatisfiable byte range; 500 a bug in dvid.

Admin token: set DVID_ADMIN_TOKEN (or admin_token in the [server] config) and pass
?admintoken=<token>. It is required to delete or rename, and it bypasses read-only mode and
the lock on committed versions.

Server
------
GET  /api/help                       This page, with links to each datatype's help.
GET  /api/help/{typename}            A datatype's API reference (plain text).
GET  /api/openapi.json               This server's OpenAPI 3.1 description: every path with
                                     its methods, parameters (with their formats) and media
                                     types, including each data instance's endpoints under
                                     its name.
GET  /api/help/{typename}/openapi.json
                                     A datatype's OpenAPI description, {dataname} a parameter.
GET  /api/heartbeat                  "OK".
GET  /api/load                       Requests per second and handlers in flight (JSON).
GET  /api/server/info                Server information; "DVID Version" is the DVID API
                                     version reproduced (e.g. "v1.0.0").
GET  /api/server/note                The [server] note of the configuration.
POST /api/server/reload-metadata     Read the repos, versions and instances again from the
                                     metadata store, as another server sharing a PostgreSQL
                                     store may have changed them (admin).
GET  /api/server/types               {typename: typeURL} for types used by instances.
GET  /api/server/compiled-types      {typename: typeURL} for every type this server knows.
GET  /api/server/activity?window=10  The last {window} seconds (1-60): requests,
                                     requests_per_second, p50_ms and p99_ms latency,
                                     errors_4xx, errors_5xx, in_flight, uptime_seconds.
GET  /api/server/jobs                Long-running work (pyramid builds, labelblk ingest steps,
                                     labelvol resyncs, annotation and labelsz reloads, push and
                                     pull, instance deletions, diffs): running ones and those
                                     finished in the last 10 minutes, each {id, kind,
                                     description, state (running|done|failed), unit, done,
                                     total (null if unknown), fraction, started, finished,
                                     seconds, error}.
GET  /metrics                        Prometheus metrics (text exposition format): requests by
                                     method, route and status (dvid_http_requests_total), their
                                     latency (dvid_http_request_duration_seconds) and response
                                     bytes, requests in flight, uptime, repos, instances,
                                     running jobs, and the process's CPU, memory and open files.
                                     The route label is the matched path template, or
                                     <type>/<endpoint> for a data instance (labelmap/raw).

Repos
-----
POST /api/repos                      Create a repo. Body (optional, all strings):
                                     {"alias": "", "description": "", "root": "<32-hex uuid>",
                                     "passcode": ""}. Returns {"root": "<uuid>"}.
GET  /api/repos/info                 {"<root uuid>": <repo info>, ...}.
HEAD /api/repo/{uuid}                200 if the version exists.
DELETE /api/repo/{uuid}?imsure=true  Delete the whole repo with all its data (admin).
GET  /api/repo/{uuid}/info           Repo info: Root, Alias, Description, Log, Properties,
                                     DataInstances, DAG {Root, Nodes}, MutationID,
                                     SavedMutationID, Created, Updated. DAG Parents and
                                     Children are version ids (see each node's VersionID).
POST /api/repo/{uuid}/info           {"alias": "...", "description": "..."} (either optional).
POST /api/repo/{uuid}/instance       Create a data instance. Body: {"typename": "keyvalue",
                                     "dataname": "kv", ...settings}. Settings are strings
                                     (keys case-insensitive): "versioned" ("true"/"false",
                                     a JSON boolean is accepted too), "Compression" (none, lz4,
                                     gzip, gzip:N, snappy), "Checksum" (none, crc32), "Tags"
                                     ("k=v,k2=v2"), plus the type's own settings.
                                     Returns {"result": "Added kv [keyvalue] to node <uuid>"}.
                                     {uuid} must be an open (uncommitted) version: 409 at a
                                     committed one (make one with .../newversion). The
                                     instance is then seen at every version of the repo.
DELETE /api/repo/{uuid}/{dataname}?imsure=true
                                     Delete a data instance and all its data (admin).
POST /api/repo/{uuid}/rename         {"dataname": "old", "newname": "new"}: rename an
                                     instance (admin).
GET  /api/repo/{uuid}/log            {"log": ["<time>  <message>", ...]}.
POST /api/repo/{uuid}/log            {"log": ["message", ...]} appends to the repo log.
GET  /api/repo/{uuid}/branch-versions/{branch}
                                     UUIDs from the branch's head up to the root, head first;
                                     [] for an unknown branch.
POST /api/repo/{uuid}/merge          {"mergeType": "conflict-free", "parents": [uuid, ...],
                                     "note": ""}: an open child of two or more committed
                                     versions. Returns {"child": "<uuid>"}. Reads that find
                                     different values along two parents answer 409.
POST /api/repo/{uuid}/resolve        {"data": [instance, ...], "parents": [uuid, ...],
                                     "note": ""}: merge where earlier parents win every
                                     conflicting key. Returns {"child": "<uuid>"}.

Transfers (push and pull; dvid push / dvid pull drive them, see docs/operations.md)
-------------------------------------------------------------------------------------
GET  /api/repo/{uuid}/transfer/have  What this server holds of {uuid}'s repo: {"root",
                                     "target" (the full UUID of {uuid}), "nodes": {uuid:
                                     {"locked", "parents": [uuid]}}, "instances": {data
                                     UUID: {"name", "versioned"}}}. 404 if unknown.
GET  /api/repo/{uuid}/transfer/export
                                     The transfer stream of version {uuid} (POST too). JSON
                                     body: {"have": <the receiver's have, or null>, "data":
                                     [names] (default all), "flatten": false}. Sends every
                                     ancestor the receiver lacks or holds open, with the keys
                                     written at each; "flatten": only {uuid}'s visible state,
                                     as the root of a new repo.
POST /api/repo/{uuid}/transfer/check The stream's header (msgpack): 200 if an import of it
                                     would be accepted, else 409 saying why (diverged history,
                                     name taken, ...).
POST /api/repo/{uuid}/transfer/import
                                     Import a transfer stream of version {uuid} (chunked
                                     body). Atomic: nothing is visible until the stream's
                                     CRC-32 checks at its end; a broken or corrupt
                                     stream answers 400 and leaves this server unchanged.
                                     Returns {"root", "target", "versions", "kvs", "bytes"}.

Versions (nodes)
----------------
GET  /api/node/{uuid}/note           {"note": "..."}.
POST /api/node/{uuid}/note           {"note": "..."} (open versions only).
GET  /api/node/{uuid}/log            {"log": [...]}.
POST /api/node/{uuid}/log            {"log": ["message", ...]} (open versions only).
GET  /api/node/{uuid}/status         {"Locked": true|false}; GET .../commit answers the same.
POST /api/node/{uuid}/commit         {"note": "...", "log": [...]} (a JSON body, {} at least).
                                     Locks the version for good. Returns {"committed": uuid}.
POST /api/node/{uuid}/newversion     {"note": "...", "uuid": "<32-hex>"} (optional body): an
                                     open child on the same branch; a version has at most
                                     one child per branch. Returns {"child": "<uuid>"}.
POST /api/node/{uuid}/branch         {"branch": "name", "note": "...", "uuid": "<32-hex>"}:
                                     an open child starting a new branch (names are unique
                                     in a repo; "master" is taken). Returns {"child": uuid}.
POST /api/node/{uuid}/tag            {"tag": "v1.0", "note": "..."}: a committed child whose
                                     UUID is the tag itself. Returns {"child": "v1.0"}.
Only committed versions can have children.

Data instances
--------------
/api/node/{uuid}/{dataname}/{endpoint}[/...]   Handled by the instance's datatype; see
                                               /api/help/{typename}. Every type serves
GET  .../help                        its help text,
GET  .../info                        {"Base": {...}, "Extended": {...}},
GET  .../tags, POST .../tags[?replace=true]
                                     its string tags ({"Tags": {...}} / a JSON object),
POST .../blobstore                   DVID's blobstore: stores the body (at most 16 MiB) and
                                     answers {"reference": "<ref>"}, the URL-safe base64 of its
                                     FNV-128 hash; content-addressed, unversioned, shared by the
                                     instances of one store, and allowed on committed versions.
GET  .../blobstore/<ref>             The blob's bytes; 404 if there is none.
GET  .../diff/<uuid>[?limit=1000]    What changed in the instance from version <uuid> (any
                                     version of the repo, a unique prefix will do) to this one:
                                     {"from", "to", "instance", "type", "added", "changed",
                                     "deleted", "truncated", "changes": [...]}. The counts cover
                                     every change, the list its first <limit> (at most 100000)
                                     in key order. Entries name what changed by type: keyvalue
                                     {"change", "key", "old_bytes", "new_bytes"}; image and
                                     label volumes {"change", "block": [bx, by, bz]} (blocks
                                     written since, even with the same voxels); labelmap also
                                     "scale", and {"change", "body"} (label index) and
                                     {"change", "supervoxel"} (mapping); annotation {"change",
                                     "pos", "element"}; other types {"change", "tkey": hex}.
                                     One key-only scan of the instance; unversioned instances
                                     have no changes.
Writes (POST, PUT, DELETE) to a versioned instance at a committed version answer 409, unless
the server runs with --fullwrite or the request carries the admin token. Unversioned
instances ("versioned": "false") keep one copy of their data at the repo root, visible and
writable from every version.
"""
