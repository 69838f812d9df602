"""neuronjson over HTTP: a real dvid server on loopback (LevelDB; PostgreSQL in
test_postgres_http_neuronjson.py), driven with ``requests``.

The numbered tests are the cases of spec/more-types.md §5.9 (from DVID's neuronjson_test.go,
query_test.go and fields_test.go), with this project's one behaviour at every version (ascending
numeric order, numeric keyrange, fields= on query) and its statuses (409 for a committed version).
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest
import requests

from dvid.datatype.common import kvproto

TIMEOUT = 30

DATA_A = {
    1000: {"bodyid": 1000, "a number": 3456, "position": [150, 250, 380], "baz": ""},
    2000: {"bodyid": 2000, "bar": "another string", "baz": [1, 2, 3], "somefield": "im here"},
    3000: {"bodyid": 3000, "a number": 3456, "a list": [23], "somefield": ""},
    4000: {"position": [151, 251, 301], "bodyid": 4000, "soma_side": "LHS", "baz": "some string"},
}
DATA_B = {
    1000: {"bodyid": 1000, "a string": "foo", "a number": 1234, "a list": [1, 2, 3]},
    2000: {"bodyid": 2000, "a string": "moo", "a number": 2345, "a list": ["mom", "pop"]},
    3000: {"bodyid": 3000, "a string": "goo", "a number": 3456, "a list": [23]},
}


class NJ:
    """A neuronjson instance on a test server, addressed at any version of its repo."""

    def __init__(self, server, uuid: str, name: str = "annotations") -> None:
        self.server = server
        self.uuid = uuid
        self.name = name

    def url(self, tail: str, uuid: str | None = None) -> str:
        return self.server.api(f"node/{uuid or self.uuid}/{self.name}/{tail}")

    def call(self, method: str, tail: str, uuid: str | None = None, **kw) -> requests.Response:
        return requests.request(method, self.url(tail, uuid), timeout=TIMEOUT, **kw)

    def post(
        self, body_id, obj, user: str = "tester", uuid: str | None = None, **params
    ) -> requests.Response:
        data = obj if isinstance(obj, bytes | str) else json.dumps(obj)
        if user is not None:
            params["u"] = user
        return self.call("POST", f"key/{body_id}", uuid, data=data, params=params)

    def put_ok(self, body_id, obj, user: str = "tester", uuid: str | None = None, **params) -> None:
        r = self.post(body_id, obj, user, uuid, **params)
        assert r.status_code == 200, r.text
        assert r.content == b""

    def get(self, body_id, uuid: str | None = None, **params):
        r = self.call("GET", f"key/{body_id}", uuid, params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def json(self, method: str, tail: str, uuid: str | None = None, **kw):
        r = self.call(method, tail, uuid, **kw)
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].startswith("application/json"), r.headers
        return r.json()

    def query(self, q, uuid: str | None = None, method: str = "POST", **params):
        return self.json(method, "query", uuid, data=json.dumps(q), params=params)

    def load(self, data: dict, user: str = "tester", uuid: str | None = None) -> None:
        for body_id, obj in data.items():
            self.put_ok(body_id, obj, user, uuid)


def assert_error(r: requests.Response, status: int, *fragments: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("text/plain")
    for fragment in fragments:
        assert fragment in r.text, r.text


def without_stamps(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if not (k.endswith("_user") or k.endswith("_time"))}


def new_nj(server, name: str = "annotations", **settings: str) -> NJ:
    uuid = server.new_repo()
    server.new_instance(uuid, "neuronjson", name, **settings)
    return NJ(server, uuid, name)


@pytest.fixture
def nj(server_factory) -> NJ:
    return new_nj(server_factory())


def keyvalues_message(pairs) -> bytes:
    return kvproto.KeyValues(kvs=[kvproto.KeyValue(key=k, value=v) for k, v in pairs]).SerializeToString()


def tar_entries(body: bytes) -> list[tuple[str, bytes, int]]:
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:") as tar:
        return [(m.name, tar.extractfile(m).read(), m.mode) for m in tar]  # type: ignore[union-attr]


# ---- 1: HEAD, reserved and bad keys, the user ---------------------------------------------------


def test_1_head_post_reserved_key_and_user(nj):
    assert nj.call("HEAD", "key/1000").status_code == 404
    nj.put_ok(1000, DATA_A[1000])
    r = nj.call("HEAD", "key/1000")
    assert (r.status_code, r.content) == (200, b"")
    assert_error(nj.post(0, {"bodyid": 0}), 400, "body id 0 is reserved and so cannot be stored")
    assert_error(nj.call("GET", "key/"), 400)
    assert_error(
        nj.post(1000, DATA_A[1000], user=None), 400, "cannot alter neuronjson data without a valid user"
    )
    assert_error(nj.post(1000, DATA_A[1000], user=""), 400, "without a valid user")


def test_stored_form_is_sorted_compact_json(nj):
    nj.put_ok(4000, DATA_A[4000])
    r = nj.call("GET", "key/4000")
    assert r.content == b'{"baz":"some string","bodyid":4000,"position":[151,251,301],"soma_side":"LHS"}'
    everything = nj.get(4000, show="all")
    assert everything["baz_user"] == "tester" and everything["soma_side_user"] == "tester"
    assert "bodyid_user" not in everything and "bodyid_time" not in everything
    assert everything["baz_time"][:4].isdigit() and everything["baz_time"][10] == "T"


def test_bad_keys_and_bodies_are_400_and_store_nothing(nj):
    for key in ("abc", "-5", "1.5", "18446744073709551616"):
        assert_error(nj.call("GET", f"key/{key}"), 400, "not a body id")
        assert_error(nj.post(key, {"bodyid": 1}), 400, "not a body id")
        assert_error(nj.call("DELETE", f"key/{key}"), 400, "not a body id")
        assert_error(nj.call("HEAD", f"key/{key}"), 400)
    assert_error(nj.post(7, b"not json"), 400, "Malformed JSON")
    assert_error(nj.post(7, b""), 400, "Malformed JSON")
    assert_error(nj.post(7, [1, 2]), 400, "must be a JSON object")
    assert_error(nj.post(7, {"x": 1}), 400, "neuronjson data must have 'bodyid' field")
    for bad in ("7", -7, 7.0, True, None, [7]):
        assert_error(nj.post(7, {"bodyid": bad}), 400, "neuronjson 'bodyid' field must be uint64")
    assert_error(nj.post(7, {"bodyid": 8}), 400, "neuronjson 'bodyid' field 8 must match key 7")
    assert_error(nj.post(7, {"bodyid": 7, "bodyid_user": "x"}), 400, "'bodyid_user' field not allowed")
    assert_error(nj.post(7, {"bodyid": 7, "bodyid_time": "x"}), 400, "'bodyid_time' field not allowed")
    assert nj.json("GET", "keys") == []
    assert nj.call("GET", "key/7").status_code == 404
    assert_error(nj.call("GET", "key/7"), 404, 'Key "7" not found')


def test_ids_beyond_2_53_are_exact(nj):
    big = 2**64 - 1
    odd = 2**53 + 1
    nj.put_ok(big, {"bodyid": big, "partner": odd, "ids": [odd, big]})
    nj.put_ok(odd, {"bodyid": odd, "partner": big})
    r = nj.call("GET", f"key/{big}")
    assert r.content == (
        b'{"bodyid":18446744073709551615,"ids":[9007199254740993,18446744073709551615],'
        b'"partner":9007199254740993}'
    )
    assert nj.json("GET", "keys") == [str(odd), str(big)]
    assert nj.call("POST", "query", data=json.dumps({"partner": odd}), params={"onlyid": "true"}).content == (
        b"[18446744073709551615]"
    )
    assert nj.query({"ids": [big]}, onlyid="true") == [big]
    assert nj.query({"bodyid": [big, odd]}, fields="partner") == [
        {"bodyid": big, "partner": odd},
        {"bodyid": odd, "partner": big},
    ]


def test_floats_are_printed_as_go_prints_them(nj):
    obj = {"bodyid": 5, "a": 3.0, "b": 1e-7, "c": 1e21, "d": 1e20, "e": 0.000001, "f": 2.5, "h": 1.5e-7}
    nj.put_ok(5, json.dumps(obj))
    body = nj.call("GET", "key/5").content
    assert (
        body
        == b'{"a":3,"b":1e-7,"bodyid":5,"c":1e+21,"d":100000000000000000000,"e":0.000001,"f":2.5,"h":1.5e-7}'
    )
    # as in DVID's store, what reads back as an integer literal is an integer from then on
    nj.put_ok(5, {"bodyid": 5, "a": 3, "f": 2.5}, user="other")
    stamps = nj.get(5, show="user")
    assert stamps["a_user"] == "tester" and stamps["f_user"] == "tester"
    nj.put_ok(5, {"bodyid": 5, "f": 2.25}, user="third")
    assert nj.get(5, show="user")["f_user"] == "third"
    assert nj.query({"a": 3}, onlyid="true") == [5]


def test_go_escapes_in_output(nj):
    nj.put_ok(6, {"bodyid": 6, "note": "a<b & c>d ünï"})
    assert nj.call("GET", "key/6").content == '{"bodyid":6,"note":"a\\u003cb \\u0026 c\\u003ed ünï"}'.encode()


# ---- 2: dataset B listings on HEAD and on the committed parent ----------------------------------


def _check_dataset_b(nj: NJ, uuid: str) -> None:
    assert nj.json("GET", "keyrange/0/2100", uuid) == ["1000", "2000"]
    assert nj.json("GET", "keys", uuid) == ["1000", "2000", "3000"]
    for asked in ([2000, 3000], ["2000", "3000"], ["23910", "23", "2000", "14", "3000", "10000"]):
        got = nj.json("GET", "keyvalues", uuid, params={"json": "true"}, data=json.dumps(asked))
        assert got == {"2000": DATA_B[2000], "3000": DATA_B[3000]}
    assert nj.json("GET", "all", uuid, params={"fields": "bodyid"}) == [
        {"bodyid": i} for i in (1000, 2000, 3000)
    ]


def test_2_dataset_b_listings_at_head_and_committed_parent(nj):
    nj.load(DATA_B)
    _check_dataset_b(nj, nj.uuid)
    nj.server.commit(nj.uuid)
    child = nj.server.newversion(nj.uuid)
    _check_dataset_b(nj, nj.uuid)
    _check_dataset_b(nj, child)


def test_numeric_order_and_keyrange_everywhere(nj):
    for i in (5, 15, 100, 2000, 10000):
        nj.put_ok(i, {"bodyid": i})
    assert nj.json("GET", "keys") == ["5", "15", "100", "2000", "10000"]
    assert nj.json("GET", "keyrange/5/15") == ["5", "15"]
    assert nj.json("GET", "keyrange/a/z") == []  # both above '9': the largest id
    assert nj.json("GET", "keyrange/-/15") == ["5", "15"]  # below '0': 0
    assert nj.json("GET", "keyrange/100/~") == ["100", "2000", "10000"]
    assert nj.json("GET", "keyrange/20/10") == []
    assert_error(nj.call("GET", "keyrange/5"), 400, "expect a beginning and an end body id")
    assert_error(nj.call("GET", "keyrange/5x/10"), 400, "not a body id")
    assert_error(nj.call("GET", "keyrangevalues/5"), 400)
    got = nj.json("GET", "keyrangevalues/5/2000", params={"json": "true"})
    assert list(got) == ["5", "15", "100", "2000"]
    nj.server.commit(nj.uuid)
    assert nj.json("GET", "keyrange/5/15") == ["5", "15"]


def test_keyrangevalues_formats(nj):
    nj.load(DATA_B)
    r = nj.call("GET", "keyrangevalues/1000/2000")
    assert r.headers["Content-Type"] == "application/octet-stream"
    kvs = kvproto.KeyValues.FromString(r.content).kvs
    assert [(kv.key, json.loads(kv.value)) for kv in kvs] == [("1000", DATA_B[1000]), ("2000", DATA_B[2000])]
    r = nj.call("GET", "keyrangevalues/1000/3000", params={"tar": "true", "fields": "a string"})
    assert r.headers["Content-Type"] == "application/tar"
    assert [(n, json.loads(v), m) for n, v, m in tar_entries(r.content)] == [
        (str(i), {"bodyid": i, "a string": DATA_B[i]["a string"]}, 0o755) for i in (1000, 2000, 3000)
    ]
    got = nj.json("GET", "keyrangevalues/0/5000", params={"json": "true", "check": "true", "show": "user"})
    assert got["1000"]["a string_user"] == "tester" and "a string_time" not in got["1000"]
    assert_error(nj.call("GET", "keyrangevalues/0/10", params={"json": "true", "tar": "true"}), 400,
                 "can only specify tar or json output, not both")  # fmt: skip
    assert_error(nj.call("GET", "keyrangevalues/0/10", params={"json": "maybe"}), 400)


def test_keyvalues_get_formats_and_missing_keys(nj):
    nj.load(DATA_B)
    msg = kvproto.Keys(keys=["3000", "9", "1000"]).SerializeToString()
    r = nj.call("GET", "keyvalues", data=msg)
    kvs = [(kv.key, kv.value) for kv in kvproto.KeyValues.FromString(r.content).kvs]
    assert [k for k, _ in kvs] == ["3000", "9", "1000"]
    assert kvs[1][1] == b"" and json.loads(kvs[0][1]) == DATA_B[3000]
    r = nj.call("GET", "keyvalues", params={"jsontar": "true"}, data=json.dumps(["2000", "9"]))
    assert [(n, len(v)) for n, v, _ in tar_entries(r.content)][1] == ("9", 0)
    assert_error(
        nj.call("GET", "keyvalues", params={"tar": "true"}, data="[2000]"), 400, "keys must be strings"
    )
    bad = nj.call("GET", "keyvalues", params={"json": "true"}, data=json.dumps(["2000", "x1"]))
    assert_error(bad, 400, 'GET /keyvalues on 2 keys, data "annotations"', "not a body id")
    assert_error(nj.call("GET", "keyvalues", params={"json": "true"}, data="[-1]"), 400, "not a body id")
    assert_error(nj.call("GET", "keyvalues", params={"json": "true"}, data="{}"), 400, "JSON array")
    assert_error(nj.call("GET", "keyvalues", params={"json": "true"}, data="[1.5]"), 400)
    assert_error(nj.call("GET", "keyvalues", data=b"\xff\xff"), 400, "protobuf")


# ---- 3-4: queries -----------------------------------------------------------------------------


def test_3_queries_on_dataset_b(nj):
    nj.load(DATA_B)
    for method in ("GET", "POST"):
        assert nj.query({"a string": ["moo", "goo"]}, method=method) == [DATA_B[2000], DATA_B[3000]]
    assert nj.query({"a string": ["moo", "goo"], "a number": [2345, 3456]}) == [DATA_B[2000], DATA_B[3000]]
    assert nj.query({"a string": "moo", "unused field": "foo"}) == []
    assert nj.query({"a string": "re/^(f|m)oo"}) == [DATA_B[1000], DATA_B[2000]]
    assert nj.query({"a string": "re/^(f|m)oo", "a list": "mom"}) == [DATA_B[2000]]
    assert nj.query({"a string": "re/^(f|m)oo", "a list": ["re/.*x", "re/om"]}) == [DATA_B[2000]]
    assert nj.query({"a string": "re/oo$"}, onlyid="true") == [1000, 2000, 3000]  # unanchored search
    assert nj.query({"a list": 23}, fields="a number") == [{"bodyid": 3000, "a number": 3456}]
    assert nj.query({"a number": 1234.5}) == []  # float conditions never match
    assert nj.query({"a number": True}) == []


def test_3_exists_queries_on_dataset_a(nj):
    nj.load(DATA_A)
    ids = lambda q: nj.query(q, onlyid="true")  # noqa: E731
    assert ids({"a number": "exists/0"}) == [2000, 4000]
    assert ids({"a number": "exists/1", "position": "exists/0"}) == [3000]
    assert ids({"somefield": "exists/0"}) == [1000, 4000]
    assert ids([{"baz": "exists/0"}, {"baz": ""}]) == [1000, 3000]
    assert ids({"baz": 2}) == [2000]
    assert ids({}) == [1000, 2000, 3000, 4000]


def test_3_class_query_onlyid_before_and_after_commit(nj):
    classes = {2000: "9A", 2001: "9A", 2002: "9A", 2003: "9A", 2004: "9B", 2005: "9AB"}
    for body_id, cls in classes.items():
        nj.put_ok(body_id, {"bodyid": body_id, "class": cls})
    assert nj.call("POST", "query", params={"onlyid": "true"}, data='{"class":"9A"}').content == (
        b"[2000,2001,2002,2003]"
    )
    nj.server.commit(nj.uuid)
    child = nj.server.newversion(nj.uuid)
    for uuid in (nj.uuid, child):
        assert nj.query({"class": "9A"}, uuid, onlyid="true") == [2000, 2001, 2002, 2003]


def test_4_bodyid_queries(nj):
    nj.load(DATA_A)
    nj.put_ok(3003, {"bodyid": 3003, "position": [303, 301, 303]})
    first3 = [DATA_A[1000], DATA_A[2000], DATA_A[3000]]
    assert nj.query({"bodyid": [1000, 2000, 3000]}) == first3
    assert nj.query([{"bodyid": [1000, 2000]}, {"bodyid": [3000]}]) == first3
    assert nj.query({"bodyid": [3003], "position": [303, 301, 303]}) == [
        {"bodyid": 3003, "position": [303, 301, 303]}
    ]
    # ids alone: the order asked, missing ids skipped, onlyid ignored
    assert nj.query({"bodyid": [3000, 77, 1000]}, onlyid="true") == [DATA_A[3000], DATA_A[1000]]


def test_query_errors(nj):
    nj.load(DATA_B)
    assert_error(nj.call("POST", "query", data=""), 400, "unable to parse JSON query")
    assert_error(nj.call("POST", "query", data="{nope"), 400, "unable to parse JSON query: {nope")
    assert_error(nj.call("POST", "query", data="[]"), 400, "no query provided")
    assert_error(nj.call("POST", "query", data="[1]"), 400, "unable to parse JSON query")
    assert_error(nj.call("POST", "query", data='"x"'), 400, "unable to parse JSON query")
    assert_error(nj.call("POST", "query", data='{"a":"re/("}'), 400, "does not compile")
    assert_error(nj.call("POST", "query", params={"onlyid": "yes"}, data="{}"), 400, "onlyid")


# ---- 5-8: writes: stamps, update, replace, conditionals, deletion ------------------------------


def test_5_user_metadata_and_deletion(nj):
    nj.put_ok(1000, {"bodyid": 1000, "key1": "foo"}, user="frank")
    nj.put_ok(1000, {"bodyid": 1000, "key1": "moo", "key1_user": "frank"}, user="admin")
    assert nj.get(1000, show="user") == {"bodyid": 1000, "key1": "moo", "key1_user": "frank"}
    nj.put_ok(1000, {"bodyid": 1000, "key1": None, "key1_user": None}, user="admin")
    assert nj.get(1000, show="user") == {"bodyid": 1000}
    nj.put_ok(1000, {"bodyid": 1000, "key1": "x"}, user="admin")
    nj.put_ok(1000, {"bodyid": 1000, "key1": None}, user="deleter")
    assert nj.get(1000, show="user") == {"bodyid": 1000, "key1_user": "deleter"}


def test_6_update_then_replace(nj):
    nj.load(DATA_B, user="shawna")
    nj.put_ok(3000, {"bodyid": 3000, "a string": "goo modified", "a 2nd list": [26]}, user="bill")
    got = nj.get(3000, show="all")
    assert got["a number"] == 3456 and got["a number_user"] == "shawna"
    assert got["a string_user"] == "bill" and got["a 2nd list_user"] == "bill"
    before = got
    nj.put_ok(3000, {"bodyid": 3000, "a string": "goo replaced", "only list": [1, 2], "a number": 3456},
              user="sandra", replace="true")  # fmt: skip
    got = nj.get(3000, show="all")
    assert len(got) == 10, got
    assert got["a number_user"] == "shawna" and got["a number_time"] == before["a number_time"]
    assert got["a string_user"] == "sandra" and got["only list_user"] == "sandra"
    assert nj.json("GET", "fieldtimes")["a string"] == got["a string_time"]


def test_7_conditionals(nj):
    seed = {"bodyid": 1000, "status": "Traced", "group": 7, "note": "", "comment": "orig"}
    for param in ("conditional", "conditionals"):
        nj.put_ok(1000, seed, user="alice", replace="true")
        before = nj.get(1000, show="all")
        nj.put_ok(
            1000, {"bodyid": 1000, "status": "Anchor", "comment": "changed"}, user="bob", **{param: "status"}
        )
        got = nj.get(1000, show="all")
        assert got["status"] == "Traced" and got["status_user"] == "alice"
        assert got["status_time"] == before["status_time"]
        assert got["comment"] == "changed" and got["comment_user"] == "bob"
    nj.put_ok(
        1000, {"bodyid": 1000, "newfield": "x", "note": "filled"}, user="bob", conditional="newfield,note"
    )
    got = nj.get(1000, show="user")
    assert got["newfield"] == "x" and got["note"] == "" and got["note_user"] == "alice"
    nj.put_ok(1000, {"bodyid": 1000, "status": "Anchor"}, user="carol", conditional="status", replace="true")
    assert nj.get(1000, show="user") == {"bodyid": 1000, "status": "Anchor", "status_user": "carol"}
    # the same through keyvalues POST
    nj.put_ok(2000, {"bodyid": 2000, "status": "Traced"}, user="alice")
    msg = keyvalues_message([("2000", b'{"bodyid":2000,"status":"Anchor","comment":"c"}')])
    r = nj.call("POST", "keyvalues", data=msg, params={"u": "bob", "conditional": "status"})
    assert r.status_code == 200, r.text
    assert nj.get(2000, show="user") == {
        "bodyid": 2000, "status": "Traced", "status_user": "alice", "comment": "c", "comment_user": "bob"
    }  # fmt: skip


def test_8_deletion_by_null(nj):
    nj.load(DATA_A)
    nj.put_ok(3000, {"bodyid": 3000, "a number": None, "a list": [23], "somefield": ""}, user="mrdeleter")
    assert nj.get(3000) == {"bodyid": 3000, "a list": [23], "somefield": ""}
    got = nj.get(3000, show="all")
    assert got["a number_user"] == "mrdeleter" and "a number_time" in got
    assert got["a list_user"] == "tester"


# ---- 9-10: all, fields -----------------------------------------------------------------------


def test_9_10_all_and_fields(nj):
    nj.load(DATA_A)
    assert all("bodyid_user" not in o for o in nj.json("GET", "all", params={"show": "all"}))
    assert nj.json("GET", "all", params={"fields": "baz,position"}) == [
        {"bodyid": 1000, "baz": "", "position": [150, 250, 380]},
        {"bodyid": 2000, "baz": [1, 2, 3]},
        {"bodyid": 4000, "baz": "some string", "position": [151, 251, 301]},
    ]
    assert nj.json("GET", "all", params={"show": "user", "fields": "baz_user"}) == [
        {"bodyid": i, "baz_user": "tester"} for i in (1000, 2000, 4000)
    ]
    assert nj.json("GET", "all") == [DATA_A[i] for i in sorted(DATA_A)]
    r = requests.get(nj.url("all"), headers={"Accept-Encoding": "gzip"}, timeout=TIMEOUT, stream=True)
    assert r.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(r.raw.read())) == [DATA_A[i] for i in sorted(DATA_A)]
    fields = nj.json("GET", "fields")
    assert len(fields) == 22 and "" not in fields and fields == sorted(fields)
    assert {"soma_side", "soma_side_user", "soma_side_time", "bodyid"} <= set(fields)
    counts = nj.json("GET", "fields", params={"counts": "true"})
    assert counts["bodyid"] == 4 and counts["baz"] == 3 and counts["soma_side_user"] == 1
    nj.put_ok(4000, {"bodyid": 4000, "position": [151, 251, 301], "baz": "some string"}, replace="true")
    assert not {"soma_side", "soma_side_user"} & set(nj.json("GET", "fields"))


def test_all_leaves_out_bare_records(nj):
    nj.put_ok(1, {"bodyid": 1})
    nj.put_ok(2, {"bodyid": 2, "a": 1})
    assert nj.json("GET", "all") == [{"bodyid": 2, "a": 1}]
    assert nj.json("GET", "all", params={"fields": "bodyid"}) == [{"bodyid": 1}, {"bodyid": 2}]
    assert nj.json("GET", "all", params={"fields": "zzz"}) == []


# ---- 11: json_schema validation --------------------------------------------------------------

JSON_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "bodyid": {"type": "integer"},
        "group": {"type": "integer"},
        "position": {"type": "array", "items": {"type": "integer"}, "minItems": 3, "maxItems": 3},
        "manc_bodyid": {"type": ["integer", "null"]},
    },
    "required": ["bodyid"],
}


def test_11_json_schema_validation(nj):
    nj.put_ok(1000, {"bodyid": 1000, "position": [23, 23]})
    assert nj.call("GET", "json_schema").status_code == 404
    assert nj.call("HEAD", "json_schema").status_code == 404
    assert nj.call("POST", "json_schema", data=json.dumps(JSON_SCHEMA)).status_code == 200
    assert nj.json("GET", "json_schema") == JSON_SCHEMA
    assert nj.call("HEAD", "json_schema").status_code == 200
    assert_error(nj.post(1000, {"bodyid": 1000, "position": [23, 23]}), 400, "json_schema", "position")
    nj.put_ok(1000, {"bodyid": 1000, "group": "130911", "manc_bodyid": "12345", "position": [1, 2, 3]})
    got = nj.get(1000)
    assert got["group"] == 130911 and got["manc_bodyid"] == 12345
    assert_error(nj.post(1000, {"group": 5}), 400, "json_schema")
    assert_error(nj.post(1000, {"bodyid": 1000, "group": "12a"}), 400, "json_schema", "group")
    # a schema that does not compile is stored and checks nothing
    assert nj.call("POST", "json_schema", data=b'{"type": 5}').status_code == 200
    nj.put_ok(1000, {"bodyid": 1000, "position": [1]})
    assert nj.call("DELETE", "json_schema").status_code == 200
    assert nj.call("GET", "json_schema").status_code == 404


def test_schema_documents_and_key_aliases(nj):
    for name in ("schema", "schema_batch"):
        assert nj.call("GET", name).status_code == 404
        assert nj.call("POST", name, data=b'{"s": 1}').status_code == 200
        assert nj.call("GET", name).content == b'{"s": 1}'
        assert nj.call("GET", f"key/{name}").content == b'{"s": 1}'
        assert nj.call("HEAD", f"key/{name}").status_code == 200
        assert nj.post(name, b'{"s": 2}').status_code == 200
        assert nj.call("GET", name).content == b'{"s": 2}'
        got = nj.json("GET", "keyvalues", params={"json": "true"}, data=json.dumps([name]))
        assert got == {name: {"s": 2}}
        assert nj.call("DELETE", f"key/{name}").status_code == 200
        assert nj.call("GET", f"key/{name}").status_code == 404
    assert nj.call("PUT", "schema").status_code == 405
    assert nj.json("GET", "keys") == []


# ---- 12: versioning ---------------------------------------------------------------------------


def test_12_versioning(nj):
    nj.load(DATA_A)
    root = nj.uuid
    nj.server.commit(root)
    child = nj.server.newversion(root)
    nj.put_ok(2000, {"bodyid": 2000, "data": "new stuff"}, uuid=child)
    assert nj.get(2000, child) == {**DATA_A[2000], "data": "new stuff"}
    assert nj.get(2000, root) == DATA_A[2000]
    assert nj.query({"data": "exists/1"}, child, onlyid="true") == [2000]
    assert nj.query({"data": "exists/1"}, root, onlyid="true") == []
    nj.server.commit(child)
    grandchild = nj.server.newversion(child)
    assert nj.call("DELETE", "key/2000", grandchild).status_code == 200
    assert nj.call("GET", "key/2000", grandchild).status_code == 404
    assert nj.json("GET", "keys", grandchild) == ["1000", "3000", "4000"]
    assert nj.get(2000, child)["data"] == "new stuff" and nj.get(2000, root) == DATA_A[2000]
    r = nj.call("GET", "keyvalues", grandchild, params={"jsontar": "true"}, data='["1000","2000","4000"]')
    assert [(n, len(v) > 0) for n, v, _ in tar_entries(r.content)] == [
        ("1000", True),
        ("2000", False),
        ("4000", True),
    ]
    # committed versions refuse writes but answer queries, POST included
    assert_error(nj.post(1000, {"bodyid": 1000}, uuid=root), 409)
    assert_error(nj.call("DELETE", "key/1000", root), 409)
    assert_error(nj.call("POST", "keyvalues", root, params={"u": "x"}, data=keyvalues_message([])), 409)
    assert_error(nj.call("POST", "json_schema", root, data=b"{}"), 409)
    assert nj.query({"baz": "exists/1"}, root, onlyid="true") == [1000, 2000, 4000]


def test_unversioned_instance_reads_and_writes_the_root(server_factory):
    nj = new_nj(server_factory(), versioned="false")
    nj.put_ok(1, {"bodyid": 1, "a": "x"})
    nj.server.commit(nj.uuid)
    child = nj.server.newversion(nj.uuid)
    assert nj.query({"a": "x"}, child, onlyid="true") == [1]
    nj.put_ok(2, {"bodyid": 2, "a": "x"}, uuid=child)
    nj.put_ok(3, {"bodyid": 3, "a": "x"}, uuid=nj.uuid)  # the committed root too: unversioned
    for uuid in (nj.uuid, child):
        assert nj.query({"a": "x"}, uuid, onlyid="true") == [1, 2, 3]


# ---- keyvalues POST ---------------------------------------------------------------------------


def test_keyvalues_post(nj):
    pairs = [(str(i), json.dumps(DATA_A[i]).encode()) for i in DATA_A]
    r = nj.call("POST", "keyvalues", data=keyvalues_message(pairs), params={"u": "ingest"})
    assert r.status_code == 200, r.text
    assert nj.json("GET", "all") == [DATA_A[i] for i in sorted(DATA_A)]
    assert nj.get(1000, show="user")["baz_user"] == "ingest"
    # the first bad item is a 400; those before it are stored
    bad = [("7", b'{"bodyid":7}'), ("8", b'{"bodyid":9}'), ("10", b'{"bodyid":10}')]
    assert_error(
        nj.call("POST", "keyvalues", data=keyvalues_message(bad), params={"u": "x"}), 400, "must match key 8"
    )
    assert nj.json("GET", "keys") == ["7", "1000", "2000", "3000", "4000"]
    assert_error(nj.call("POST", "keyvalues", data=keyvalues_message(pairs)), 400, "valid user")
    assert_error(nj.call("POST", "keyvalues", data=b"\xff\x01", params={"u": "x"}), 400, "KeyValues")
    # a repeated key merges into the earlier item of the same batch
    twice = [("20", b'{"bodyid":20,"a":1}'), ("20", b'{"bodyid":20,"b":2}')]
    assert nj.call("POST", "keyvalues", data=keyvalues_message(twice), params={"u": "x"}).status_code == 200
    assert nj.get(20) == {"bodyid": 20, "a": 1, "b": 2}


# ---- routes and methods -----------------------------------------------------------------------


def test_info_help_and_unknown_routes(nj):
    info = nj.json("GET", "info")
    assert info["Base"]["TypeName"] == "neuronjson" and info["Extended"] == {}
    r = nj.call("GET", "help")
    assert r.status_code == 200 and "neuronjson" in r.text and "Differences from DVID" in r.text
    assert nj.call("GET", "nonsense").status_code == 404
    assert nj.call("PUT", "key/1").status_code == 405
    assert nj.call("DELETE", "keys").status_code == 405
    assert nj.call("POST", "all").status_code == 405
    assert nj.call("POST", "fields").status_code == 405
    r = requests.get(nj.server.api("help/neuronjson"), timeout=TIMEOUT)
    assert r.status_code == 200 and "Queries" in r.text
