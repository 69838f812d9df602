"""The API reference of ``neuronjson``, served at ``/api/help/neuronjson`` and rendered into docs/api."""

HELP_TEXT = """\
API for datatype "neuronjson"
=============================

A neuronjson instance keeps one JSON object per body (neuron): its annotations, such as the
status, type, instance name and notes that proofreaders and Clio record. The key of an
annotation is the body id, a decimal unsigned 64-bit integer; the object must hold the same id
in its "bodyid" field. Writes merge fields into the stored object and record who set each field
and when, in "<field>_user" and "<field>_time" fields. Reads may leave those records out, choose
fields, or ask a query in a small language of field conditions.

Annotations are versioned like all dvid data: a version sees what its ancestors wrote until it
writes or deletes the body itself. An unversioned instance ("Versioned": "false") keeps one set
of annotations for the whole repo.

Numbers keep their type: integers are exact (64-bit body ids included), other numbers are
floating point. Objects are returned as compact JSON with their keys sorted; floats are printed
as DVID (Go) prints them: the shortest exact digits, an exponent only below 1e-6 or from 1e21
on, no ".0" on integral values.

Errors are plain text "<message> (<path>)." with status 400 for bad input (a key that is not a
body id, a body that is not a JSON object, a bodyid that does not match the key, a failed schema
check, a malformed query), 404 for an unknown repo, version, instance or key, 405 for a method an
endpoint does not take, and 409 for a write to a committed version of a versioned instance.

Instance creation
-----------------

POST /api/repo/{uuid}/instance
    {"typename": "neuronjson", "dataname": "<name>", "Versioned": "true", "Tags": "k1=v1"}

    No settings of its own; values are stored as compact JSON, uncompressed.

Common endpoints
----------------

GET  <api URL>/node/{uuid}/{data name}/help
    This help text.

GET  <api URL>/node/{uuid}/{data name}/info
    JSON {"Base": {...instance description...}, "Extended": {}}.

GET  <api URL>/node/{uuid}/{data name}/tags
POST <api URL>/node/{uuid}/{data name}/tags[?replace=true]
    Read or merge (replace=true: replace) the instance's string tags.

Choosing what a read returns: show and fields
---------------------------------------------

Every read of annotations takes these query parameters:

    show=user    keep the "<field>_user" fields
    show=time    keep the "<field>_time" fields
    show=all     keep both
    (otherwise, by default, both are left out; the rule goes by the name's ending, so never
    give a real field a name ending in "_user" or "_time")

    fields=f1,f2 return "bodyid", each listed field the object has, and (as show allows) the
                 "_user"/"_time" of each. A listed "f_user" is returned when show keeps it.

Single annotations
------------------

GET  <api URL>/node/{uuid}/{data name}/key/{bodyid}[?show=...&fields=...]
    The body's annotation as a JSON object; 404 'Key "<bodyid>" not found' if it has none. The
    keys "schema" and "schema_batch" return the metadata documents of the same names (below).

HEAD <api URL>/node/{uuid}/{data name}/key/{bodyid}
    200 if the body has an annotation, 404 if not; no body.

POST <api URL>/node/{uuid}/{data name}/key/{bodyid}?u=<user>[&replace=true][&conditional=f1,f2]
    Writes a JSON object for the body. Required: u, the user to record (400 without it). The
    object must have "bodyid" equal to the key (a non-negative integer); "bodyid_user" and
    "bodyid_time" are refused; body id 0 is reserved. If a json_schema is stored, the object is
    checked against it first: a field the schema wants as an integer may be sent as a string
    of digits and is stored as the integer; any other failure is a 400 with the reason.

    How the object combines with the stored one:
      * A field whose value differs from the stored one (or that is new) is set, and stamped
        with "<field>_user": <u> and "<field>_time": <now> (the server's local time in RFC 3339
        with its offset, e.g. 2024-05-01T10:11:12-04:00), unless the object gives those stamps
        itself. "bodyid" and "user" are never stamped. A field sent with the value it already
        has keeps its old stamps.
      * A field sent as null is deleted; the deletion is stamped the same way ("<field>_user":
        null in the same object suppresses the user stamp). A stamp field sent as null is
        deleted.
      * Without replace, stored fields the object does not mention are kept. conditional=f1,f2
        (or the older name conditionals=) protects the listed fields: one the stored object
        already has, even with an empty value, keeps its value and stamps.
      * replace=true: the stored object is replaced by the one sent (conditional is ignored);
        fields sent with unchanged values keep their old stamps.
    The keys "schema" and "schema_batch" store the metadata documents of the same names.
    200 with an empty body.

DELETE <api URL>/node/{uuid}/{data name}/key/{bodyid}
    Deletes the body's annotation at this version (ancestors keep theirs). 200 even if absent.
    "schema" and "schema_batch" delete those documents.

Listing and batches
-------------------

GET <api URL>/node/{uuid}/{data name}/keys
    JSON array of every body id that has an annotation, as strings, ascending numerically:
    ["1000","2000","10000"].

GET <api URL>/node/{uuid}/{data name}/keyrange/{first}/{last}
    The body ids with first <= id <= last, ascending, as strings. A bound that starts with a
    character above '9' means the largest id, one below '0' means 0; otherwise a bound must
    be a whole decimal id (400). Both bounds are required.

GET <api URL>/node/{uuid}/{data name}/keyrangevalues/{first}/{last}
        [?json=true|tar=true|jsontar=true][&check=true][&show=...&fields=...]
    The annotations of the ids in [first, last], ascending, in one of the formats below.

GET <api URL>/node/{uuid}/{data name}/keyvalues[?json=true|tar=true|jsontar=true][&show=...&fields=...]
    The annotations of the bodies the request body lists, in that order: a protobuf Keys
    message by default; with json=true a JSON array of ids as integers or strings; with tar or
    jsontar a JSON array of strings. Every key is checked before anything is sent: one that is
    not a body id (nor "schema"/"schema_batch") is a 400. A body without an annotation is left
    out of JSON output and has an empty value in protobuf and tar output.

POST <api URL>/node/{uuid}/{data name}/keyvalues?u=<user>[&replace=true][&conditional=f1,f2]
    A protobuf KeyValues message: each pair is written as POST key would, in order. The first
    refused pair is a 400; the pairs before it are stored (in one atomic write).

    Formats of the batch reads:
      protobuf (default, application/octet-stream): a KeyValues message, one KeyValue per key
        (message KeyValue {string key = 1; bytes value = 2;} message KeyValues {repeated
        KeyValue kvs = 1;} message Keys {repeated string keys = 1;}, proto3, package "proto").
      json=true (application/json): {"<id>": <object>, ...}.
      tar=true or jsontar=true (application/tar): one file (mode 0755) per key, named by the
        key, holding the JSON object. Asking for both tar and json is a 400.
      check=true is accepted (values are always valid JSON).

GET <api URL>/node/{uuid}/{data name}/all[?show=...&fields=...]
    JSON array of every annotation, ascending by body id. An object whose selection holds
    nothing but "bodyid" is left out, unless fields names "bodyid". Sent gzip-compressed
    (Content-Encoding: gzip) when the request's Accept-Encoding lists gzip.

GET <api URL>/node/{uuid}/{data name}/fields[?counts=true]
    JSON array of the names of the fields some annotation holds ("_user"/"_time" fields
    included), sorted; with counts=true an object {"<field>": <number of annotations>, ...}.

GET <api URL>/node/{uuid}/{data name}/fieldtimes
    JSON object {"<field>": "<latest time stamp of the field>", ...}.

Queries
-------

GET  <api URL>/node/{uuid}/{data name}/query[?onlyid=true][&show=...&fields=...]
POST <api URL>/node/{uuid}/{data name}/query[?onlyid=true][&show=...&fields=...]
    The annotations matching the query in the request body, as a JSON array ascending by body
    id (onlyid=true: an array of the ids, as numbers). POST only reads, so it is served at
    committed versions too.

    The query is a JSON object, whose field conditions must all hold, or an array of such
    objects, any of which may match (each annotation is returned once). A condition is:
        an integer, or an array of integers       the field equals one of them
        a string, or an array of strings          the field equals one of them
        "re/<regular expression>"                 the field contains a match (unanchored: use
                                                  ^ and $ to anchor); may be an array element
        "exists/1" (anything but "0" after "/")   the field is present and not null
        "exists/0"                                the field is absent or null
    The field's value is compared as integers (an integer, an integral float, or an array of
    integers: any element may match) or as strings (a string or an array of strings). Floats
    with a fraction, booleans, objects and mixed arrays never match, nor do conditions of those
    kinds. A query whose every object holds only "bodyid" with integers returns those bodies'
    annotations in the order asked (missing ones skipped; onlyid is ignored).
    An empty or malformed body is a 400 ("unable to parse JSON query: ..."), so is [] ("no
    query provided") and a regular expression that does not compile. Regular expressions are
    Python's, which agree with DVID's (Go RE2) on the common syntax.

Schemas
-------

GET|HEAD|POST|DELETE <api URL>/node/{uuid}/{data name}/json_schema
GET|HEAD|POST|DELETE <api URL>/node/{uuid}/{data name}/schema
GET|HEAD|POST|DELETE <api URL>/node/{uuid}/{data name}/schema_batch
    Documents kept beside the annotations, versioned like them: POST stores the body as sent,
    GET returns it (404 if there is none), HEAD tells 200/404, DELETE removes it. json_schema is a
    JSON Schema that every written annotation is checked against; one that is not a valid
    schema is stored but checks nothing. schema and schema_batch are kept for clients (NeuTu).

Differences from DVID
---------------------

    * DVID answers from memory at the open leaf of the master branch and from its store
      elsewhere, with different orders and filters. dvid answers the same way at every version:
      keys, keyrange, keyrangevalues, all and query in ascending numeric id order, keyrange
      filtering numerically (keyrange/5/15 works at every version), fields= applied to query,
      fieldtimes served at every version. It keeps an in-memory index per recently used version.
    * fields lists only fields some annotation holds (no "" entries), sorted; counts=true leaves
      out fields no annotation holds any more.
    * keyvalues with json=true checks every key before answering (DVID answered 200 with a
      truncated body after a bad key).
    * Integers nested in objects and arrays stay exact (DVID reads them as floats).
    * Writes to committed versions are 409, as for every dvid type; other methods than those
      listed are 405.
    * No Kafka messages are published (dvid has no Kafka).
"""
