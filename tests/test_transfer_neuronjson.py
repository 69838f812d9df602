"""neuronjson through push and pull: annotations, stamps, schemas and queries read the same on the
receiver, and a receiver that had indexed an older version sees the versions that arrive."""

from __future__ import annotations

import json

from tests.test_neuronjson import DATA_A, JSON_SCHEMA, NJ
from tests.test_transfer import cli_ok

PATHS = ("keys", "all?show=all", "fields?counts=true", "fieldtimes", "json_schema", "key/2000?show=all")


def _reads(nj: NJ, uuid: str) -> list[tuple[int, bytes]]:
    out = []
    for path in PATHS:
        r = nj.call("GET", path, uuid)
        out.append((r.status_code, r.content))
    r = nj.call("POST", "query", uuid, data=json.dumps({"baz": "exists/1"}), params={"show": "all"})
    out.append((r.status_code, r.content))
    return out


def test_push_and_pull_carry_annotations(pair, server_factory):
    src, dst = pair
    a = NJ(src, src.new_repo("nj"))
    src.new_instance(a.uuid, "neuronjson", "annotations")
    root = a.uuid
    a.load(DATA_A)
    assert a.call("POST", "json_schema", data=json.dumps(JSON_SCHEMA)).status_code == 200
    src.commit(root)
    v2 = src.newversion(root)
    a.put_ok(2000, {"bodyid": 2000, "baz": None, "data": "v2"}, user="second", uuid=v2)
    a.put_ok(5000, {"bodyid": 5000, "baz": "new"}, uuid=v2)
    src.commit(v2)
    cli_ok("--server", src.url, "push", root, dst.url, "-q")
    b = NJ(dst, root)
    assert _reads(a, root) == _reads(b, root)
    assert b.query({"baz": "exists/1"}, onlyid="true") == [1000, 2000, 4000]  # indexed at root
    cli_ok("--server", src.url, "push", v2, dst.url, "-q")
    for uuid in (root, v2):
        assert _reads(a, uuid) == _reads(b, uuid), uuid
    assert b.query({"baz": "exists/1"}, v2, onlyid="true") == [1000, 4000, 5000]
    third = server_factory()
    cli_ok("--server", third.url, "pull", src.url, v2[:10], "-q")
    c = NJ(third, root)
    for uuid in (root, v2):
        assert _reads(a, uuid) == _reads(c, uuid), uuid
