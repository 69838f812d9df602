"""The labelgraph API reference served at ``/api/help/labelgraph`` and rendered into docs/api."""

HELP = """\
API for datatype "labelgraph"
=============================

A labelgraph instance holds an undirected, weighted graph over 64-bit labels, for example bodies
and the strength of their contacts, as proofreading tools (NeuroProof, libdvid's graph calls) use
it. A vertex has an id, a weight and named properties; an edge joins two different vertices and
has a weight and named properties; a property is an arbitrary byte value. Everything is versioned
like other data: a version sees what it and its ancestors wrote, deletions included, and writes
to a committed version of a versioned instance are refused with 409.

The graph is kept consistent: an edge exists exactly when both of its vertices have it in their
neighbour lists, and properties belong to an existing vertex or edge. DVID removed this datatype
in 2023; this one keeps its paths, JSON and binary formats and its stored bytes, and differs
where DVID lost data or crashed (marked "DVID:" below).

Errors are plain text "<message> (<path>)." with status 400 for bad input, 404 for an unknown
repo, version, instance or endpoint, 405 for a method an endpoint does not take (DVID answered
PUT with 400), 409 for a write to a committed version and for vertices that stay locked.

Instance creation
-----------------

POST /api/repo/{uuid}/instance
    {"typename": "labelgraph", "dataname": "<name>", "Versioned": "true", "Compression": "lz4"}

    Compression (none, snappy, lz4, gzip[:level]) applies to property values. No other settings.

Common endpoints
----------------

GET  <api URL>/node/{uuid}/{data name}/help      This text.
GET  <api URL>/node/{uuid}/{data name}/info      {"Base": {...}} (no "Extended" part).
GET  <api URL>/node/{uuid}/{data name}/tags      and POST .../tags[?replace=true], as for every type.
POST <api URL>/node/{uuid}/{data name}/sync      {"sync": "<labelmap>"}, see "Sync with a labelmap".

The LabelGraph JSON
-------------------

    {"Transactions": [{"Id": <vertex>, "Trans": <transaction id>}, ...] or null,
     "Vertices": [{"Id": <u64>, "Weight": <number>}, ...],
     "Edges": [{"Id1": <u64>, "Id2": <u64>, "Weight": <number>}, ...]}

Ids are unsigned 64-bit JSON integers (a negative, fractional or larger number is a 400); weights
are numbers, 0 when left out. Answers always list Transactions, Vertices and Edges in that order
and write numbers as DVID (Go) does: 10 rather than 10.0, 2.3, 1e-7, 1e+21.

Request bodies are checked like DVID's schema: both "Vertices" and "Edges" must be present as
lists, no list may hold the same item twice, vertices need "Id" and edges "Id1" and "Id2";
otherwise 400 "JSON did not pass validation: <what>". subgraph takes ?unsafe=true to skip the
structural rules (the lists become optional; types are still checked). An edge from a vertex to
itself is a 400. Fields other than these are ignored.

subgraph
--------

A subgraph call (GET, POST or DELETE) that starts while another one runs on the same instance is
refused with 400 "Server busy with bulk transaction"; retry it. Other endpoints do not wait.

GET <api URL>/node/{uuid}/{data name}/subgraph[?unsafe=true]
    Without a body (or with no vertices in it): the whole graph, vertices by id, then edges by
    their smaller and then larger id: {"Transactions":[],"Vertices":[...],"Edges":[...]}; an empty
    graph is {"Transactions":[],"Vertices":[],"Edges":[]}. Streamed.
    With a LabelGraph body listing vertices: those vertices, in body order, and every edge
    touching them, each once (edges to vertices not listed are included). A listed vertex that
    does not exist is a 400 "Failed to retrieve vertix <id>: Vertex data empty" (DVID's words).

POST <api URL>/node/{uuid}/{data name}/subgraph[?unsafe=true]
    Adds a LabelGraph: each vertex is created, or, if it exists, gets the posted weight and keeps
    its neighbours and properties; each edge is created, or gets the posted weight and keeps its
    properties. Both vertices of every edge must exist, stored or in the same body; otherwise 400
    and nothing is stored. The whole body is stored in one atomic write. An empty body is a 400.
    DVID: reset the neighbour list and properties of a posted vertex that existed, leaving its
    edges dangling, and stored edge by edge.

DELETE <api URL>/node/{uuid}/{data name}/subgraph
    Without a body: deletes the whole graph at this version (transaction ids are kept). With a
    LabelGraph body: deletes each listed vertex with its edges and all their properties, then each
    listed edge with its properties; vertices and edges that do not exist are skipped. Deleting an
    edge that only one of its vertices lists as a neighbour (a graph stored inconsistent by DVID)
    is a 400 and deletes nothing (DVID removed some other neighbour or crashed).

neighbors, merge, weight
------------------------

GET <api URL>/node/{uuid}/{data name}/neighbors/{vertex}
    The vertex, then its neighbours in the order they were joined, and the edges from it to them:
    {"Transactions":null,"Vertices":[...],"Edges":[...]} ("Edges":null when there are none).
    A missing vertex or a vertex id that is not an unsigned 64-bit integer is a 400.

POST <api URL>/node/{uuid}/{data name}/merge[/nohistory]
    Body: a LabelGraph whose Vertices list the vertices to merge, the last one being kept
    (optionally with a "Weight"), and whose Edges may give weights for edges from the kept vertex.
    The schema is always checked; at least two distinct vertices (400 "Must specify at least two
    vertices for merging"), all existing (400). The kept vertex's weight becomes the posted weight
    if not 0, else the sum of the merged vertices' weights. Every vertex outside the merge that
    touched any of them gets one edge to the kept vertex whose weight is the sum of the weights of
    the edges it had to them, or the weight a body edge between it and the kept vertex gives. The
    other vertices are deleted with their edges and properties. One atomic write (DVID: neither
    locked nor atomic). "nohistory" is accepted and changes nothing.

POST <api URL>/node/{uuid}/{data name}/undomerge
    Always 400 "undomerge not yet implemented" (as DVID).

POST <api URL>/node/{uuid}/{data name}/weight
    Body: a LabelGraph of increments (schema checked). Each vertex's weight is increased by the
    given weight (a missing vertex is created with it); each edge's likewise (a missing edge is
    created; its vertices must exist, stored or in the body, else 400 and nothing is stored). At
    most 1000 distinct vertex ids per request (vertices and edge ends; DVID crashed beyond). The
    request first takes a read lock (see propertytransaction) on every vertex it names, waiting
    while other requests hold some; after 10 seconds it gives up with 409. One atomic write.

Properties
----------

GET    <api URL>/node/{uuid}/{data name}/property/{vertex}/{name}
GET    <api URL>/node/{uuid}/{data name}/property/{vertex1}/{vertex2}/{name}
POST   (same paths)
DELETE (same paths)
    A vertex property or an edge property (the two vertices in either order). GET answers the
    value as application/octet-stream, empty if there is none. POST stores the body and adds the
    name to the vertex or edge; if the vertex or edge does not exist, nothing is stored and the
    answer is still 200 (as DVID). DELETE always answers 200. Another number of path parts is a 400
    "Incorrect number of parameters specified for handling properties". Names are non-empty and
    hold no NUL character.

propertytransaction
-------------------

GET  <api URL>/node/{uuid}/{data name}/propertytransaction/vertices/{name}
GET  <api URL>/node/{uuid}/{data name}/propertytransaction/edges/{name}
POST (same paths)
    Reads or writes one property of many vertices or edges under optimistic locking. Each vertex
    has a transaction id. A GET takes a read lock on each listed vertex, which succeeds unless
    another request holds the vertex, and answers its current id (a fresh one if it had none). A
    POST takes a write lock, which also needs the id the client holds to be the vertex's current
    one, and gives the vertex a fresh id: a write based on an outdated read fails. Locks last as
    long as the request. Ids are stored with the instance (one set for all versions), so ids held
    from before a server restart stay valid and no id is ever reused (DVID: reset on restart).

    Request body, all unsigned 64-bit little-endian integers:
        N, then N x (vertex id, transaction id)      at most 1000 distinct vertices; GET: ids 0
        M, then M entries:
            GET:  id1 [id2 for edges]
            POST: id1 [id2 for edges] size, then size bytes of value
    Response (application/octet-stream), same encoding:
        L, then L x (vertex id, transaction id)      the vertices locked, with their current ids
        F, then F x vertex id                        those that were not: first the ones other
                                                     requests hold, then the outdated ones
        GET only: P, then P x (id1 [id2] size, size bytes)
                                                     the entries whose vertices (both, for edges)
                                                     were locked; size 0 when there is no value
    A POST stores the entries whose vertices were locked and whose size is not 0, if their vertex
    or edge exists (silently skipped otherwise, as DVID). An empty body, more than 1000 vertices,
    a vertex listed twice, or lengths that do not add up are a 400 (DVID crashed on the first two).
    The kind must be "vertices" or "edges" and the name present (400).

Sync with a labelmap
--------------------

POST <api URL>/node/{uuid}/{data name}/sync  {"sync": "<labelmap name>"}
    The graph follows the labelmap's body merges: when bodies are merged into a target body (and
    when a body is renumbered), the vertices of the merged bodies that exist are merged into the
    target's vertex (created if missing) as merge does, in the labelmap's own atomic write.
    Cleaves and splits change nothing in the graph: it cannot know how a vertex's weights,
    edges and properties divide between the two bodies; post the new vertices and edges.
"""
