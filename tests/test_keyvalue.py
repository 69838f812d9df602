"""keyvalue over HTTP: a real dvid server on loopback with LevelDB, driven with ``requests``.

K1-K14 are the conformance cases of spec/annotation-roi-keyvalue.md §5 (distilled from DVID's
Go tests), with this project's statuses: a missing key is 404, a read that meets an unresolved
merge is 409, a write to a committed version is 409, an unknown instance is 404.
"""

from __future__ import annotations

import io
import json
import random
import tarfile
from urllib.parse import quote

import pytest
import requests

from dvid.dag.ancestry import Ancestry
from dvid.datatype import keyvalue
from dvid.datatype.base import InstanceMeta
from dvid.datatype.common import envelope, kvproto
from dvid.errors import BadRequest, RangeNotSatisfiable
from dvid.storage import keys as storage_keys
from dvid.storage.memory import MemoryEngine
from dvid.storage.versioned import VersionedStore

TIMEOUT = 30
ALPHABET = b"abcdefghijklmnopqrstuvwxyz"


class KV:
    """A keyvalue instance on a test server, addressed at any version of its repo."""

    def __init__(self, server, uuid: str, name: str = "kv") -> None:
        self.server = server
        self.uuid = uuid
        self.name = name

    def url(self, tail: str, uuid: str | None = None) -> str:
        return self.server.api(f"node/{uuid or self.uuid}/{self.name}/{tail}")

    def key_url(self, key: str, uuid: str | None = None) -> str:
        return self.url("key/" + quote(key, safe=""), uuid)

    def post(self, key: str, data: bytes | str, uuid: str | None = None) -> requests.Response:
        return requests.post(self.key_url(key, uuid), data=data, timeout=TIMEOUT)

    def put_ok(self, key: str, data: bytes | str, uuid: str | None = None) -> None:
        r = self.post(key, data, uuid)
        assert r.status_code == 200, r.text
        assert r.content == b""

    def get(self, key: str, uuid: str | None = None, **kw) -> requests.Response:
        return requests.get(self.key_url(key, uuid), timeout=TIMEOUT, **kw)

    def head(self, key: str, uuid: str | None = None) -> requests.Response:
        return requests.head(self.key_url(key, uuid), timeout=TIMEOUT)

    def delete(self, key: str, uuid: str | None = None) -> requests.Response:
        return requests.delete(self.key_url(key, uuid), timeout=TIMEOUT)

    def value(self, key: str, uuid: str | None = None) -> bytes:
        r = self.get(key, uuid)
        assert r.status_code == 200, r.text
        return r.content

    def call(self, method: str, tail: str, uuid: str | None = None, **kw) -> requests.Response:
        return requests.request(method, self.url(tail, uuid), timeout=TIMEOUT, **kw)

    def keys(self, uuid: str | None = None) -> list[str]:
        r = self.call("GET", "keys", uuid)
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].startswith("application/json")
        return r.json()

    # ---- version DAG -------------------------------------------------------------------------
    def commit(self, uuid: str) -> None:
        self.server.commit(uuid)

    def newversion(self, uuid: str) -> str:
        return self.server.newversion(uuid)

    def branch(self, uuid: str, name: str) -> str:
        r = requests.post(self.server.api(f"node/{uuid}/branch"), json={"branch": name}, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        return r.json()["child"]

    def merge(self, *parents: str) -> str:
        body = {"mergeType": "conflict-free", "parents": list(parents), "note": "merge"}
        r = requests.post(self.server.api(f"repo/{parents[0]}/merge"), json=body, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        return r.json()["child"]


def new_kv(server, name: str = "kv", **settings: str) -> KV:
    uuid = server.new_repo()
    server.new_instance(uuid, "keyvalue", name, **settings)
    return KV(server, uuid, name)


@pytest.fixture
def kv(server) -> KV:
    return new_kv(server)


def keys_message(keys=(), ranges=()) -> bytes:
    msg = kvproto.Keys(keys=list(keys))
    for key, start, end in ranges:
        msg.key_ranges.add(key=key, byte_start=start, byte_end=end)
    return msg.SerializeToString()


def keyvalues_message(pairs) -> bytes:
    return kvproto.KeyValues(kvs=[kvproto.KeyValue(key=k, value=v) for k, v in pairs]).SerializeToString()


def parse_keyvalues(body: bytes) -> list[tuple[str, bytes]]:
    return [(kv.key, kv.value) for kv in kvproto.KeyValues.FromString(body).kvs]


def tar_entries(body: bytes) -> list[tuple[str, bytes, int]]:
    out = []
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:") as tar:
        for member in tar:
            assert member.isreg()
            data = tar.extractfile(member).read()
            out.append((member.name, data, member.mode))
    return out


def assert_error(r: requests.Response, status: int, *fragments: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.text.endswith(").\n"), r.text
    for fragment in fragments:
        assert fragment in r.text, r.text


# ---- K1-K3: basic requests ------------------------------------------------------------------


def test_k1_head_post_get(kv):
    assert kv.head("mykey").status_code == 404
    kv.put_ok("mykey", b"some stuff")
    r = kv.head("mykey")
    assert r.status_code == 200
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.content == b""
    r = kv.get("mykey")
    assert r.status_code == 200
    assert r.content == b"some stuff"
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["Content-Length"] == "10"
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert_error(kv.call("GET", "key/"), 400, "expect key string to follow 'key' endpoint")
    assert_error(kv.call("POST", "key/", data=b"x"), 400)


def test_k2_keyrange_and_keys(kv):
    for key in ("mykey", "my2ndkey", "heresanotherkey"):
        kv.put_ok(key, b"v")
    r = kv.call("GET", "keyrange/my/zebra")
    assert r.status_code == 200
    assert r.content == b'["my2ndkey","mykey"]'
    assert kv.keys() == ["heresanotherkey", "my2ndkey", "mykey"]
    assert kv.call("GET", "keys").content == b'["heresanotherkey","my2ndkey","mykey"]'


def test_k2_keyrange_bounds(kv):
    assert kv.call("GET", "keys").content == b"[]"
    assert kv.call("GET", "keyrange/a/z").content == b"[]"
    for key in ("a", "a0", "ab", "abc", "b"):
        kv.put_ok(key, b"v")
    # inclusive at both ends; keys that merely start with the end key are after it
    assert kv.call("GET", "keyrange/a/ab").json() == ["a", "a0", "ab"]
    assert kv.call("GET", "keyrange/a0/a0").json() == ["a0"]
    assert kv.call("GET", "keyrange/b/a").json() == []
    assert_error(kv.call("GET", "keyrange/a"), 400)
    assert_error(kv.call("GET", "keyrange"), 400)
    assert_error(kv.call("GET", "keyrangevalues/a"), 400)


def test_k3_round_trip_special_key(kv):
    key = "testkey.-{}03`~| %@\x01"
    value = "I like Japan and this is some unicode: 日本語".encode()
    kv.put_ok(key, value)
    assert kv.value(key) == value
    assert kv.keys() == [key]
    assert kv.head(key).status_code == 200
    r = kv.call("GET", "keyvalues?jsontar=true", data=json.dumps([key]))
    assert tar_entries(r.content) == [(key, value, 0o755)]
    assert parse_keyvalues(kv.call("GET", "keyvalues", data=keys_message([key])).content) == [(key, value)]


def test_unicode_keys_order(kv):
    keys = ["ä", "z", "日本", "Z", "a b", "a%b"]
    for key in keys:
        kv.put_ok(key, key.encode())
    assert kv.keys() == sorted(keys, key=lambda k: k.encode())
    for key in keys:
        assert kv.value(key) == key.encode()


# ---- K4-K8: byte ranges ---------------------------------------------------------------------


@pytest.fixture
def ranged(kv) -> KV:
    kv.put_ok("plain", ALPHABET)
    kv.put_ok("json", b"1234567890")
    kv.put_ok("json-full", b'{"ok":true}')
    kv.put_ok("full", b"full value")
    return kv


def test_k4_query_range(ranged):
    url = ranged.key_url("plain")
    r = requests.get(url + "?byte_start=2&byte_end=5", timeout=TIMEOUT)
    assert (r.status_code, r.content) == (200, b"cdef")
    assert "Content-Range" not in r.headers
    r = requests.get(url + "?byte_start=0&byte_end=0", timeout=TIMEOUT)
    assert (r.status_code, r.content) == (200, b"a")
    r = requests.get(url + "?byte_start=25&byte_end=25", timeout=TIMEOUT)
    assert (r.status_code, r.content) == (200, b"z")
    for query in (
        "byte_start=2",
        "byte_end=5",
        "byte_start=5&byte_end=2",
        "byte_start=0&byte_end=100",
        "byte_start=26&byte_end=26",
        "byte_start=-1&byte_end=2",
        "byte_start=a&byte_end=2",
        "byte_start=1&byte_end=2.5",
        "byte_start=1&byte_end=99999999999999999999999",
    ):
        assert_error(requests.get(f"{url}?{query}", timeout=TIMEOUT), 400)
    r = requests.get(ranged.key_url("json") + "?byte_start=2&byte_end=5", timeout=TIMEOUT)
    assert (r.status_code, r.content) == (200, b"3456")
    # the missing key is reported before the range is looked at
    assert_error(requests.get(ranged.key_url("nope") + "?byte_start=9", timeout=TIMEOUT), 404)


@pytest.mark.parametrize(
    ("header", "body", "content_range"),
    [
        ("bytes=2-5", b"cdef", "bytes 2-5/26"),
        ("bytes=24-", b"yz", "bytes 24-25/26"),
        ("bytes=-3", b"xyz", "bytes 23-25/26"),
        ("bytes=24-100", b"yz", "bytes 24-25/26"),
        ("bytes=-100", ALPHABET, "bytes 0-25/26"),
        ("bytes=0-0", b"a", "bytes 0-0/26"),
        ("bytes= 3 - 4 ", b"de", "bytes 3-4/26"),
    ],
)
def test_k5_range_header_partial(ranged, header, body, content_range):
    r = ranged.get("plain", headers={"Range": header})
    assert r.status_code == 206
    assert r.content == body
    assert r.headers["Content-Range"] == content_range
    assert r.headers["Content-Length"] == str(len(body))
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["Content-Type"] == "application/octet-stream"


@pytest.mark.parametrize("header", ["bytes=26-30", "bytes=26-", "bytes=-0", "bytes=100-200"])
def test_k5_range_header_unsatisfiable(ranged, header):
    r = ranged.get("plain", headers={"Range": header})
    assert_error(r, 416)
    assert r.headers["Content-Range"] == "bytes */26"


@pytest.mark.parametrize(
    "header",
    ["bytes=0-1,4-5", "bytes=5-2", "bytes=abc", "items=0-5", "bytes=", "bytes=-", "bytes=5", "bytes=a-3", ""],
)
def test_k5_range_header_ignored(ranged, header):
    r = ranged.get("plain", headers={"Range": header})
    assert r.status_code == 200
    assert r.content == ALPHABET
    assert "Content-Range" not in r.headers


def test_k5_range_header_with_query_and_head(ranged):
    r = requests.get(
        ranged.key_url("plain") + "?byte_start=1&byte_end=2", headers={"Range": "bytes=2-5"}, timeout=TIMEOUT
    )
    assert_error(r, 400)
    r = ranged.head("plain")
    assert r.status_code == 200
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["Content-Length"] == "26"


def test_k5_range_on_empty_value(kv):
    kv.put_ok("empty", b"")
    r = kv.get("empty", headers={"Range": "bytes=0-3"})
    assert_error(r, 416)
    assert r.headers["Content-Range"] == "bytes */0"
    assert kv.get("empty", headers={"Range": "items=0-3"}).status_code == 200
    assert_error(requests.get(kv.key_url("empty") + "?byte_start=0&byte_end=0", timeout=TIMEOUT), 400)


def test_k6_ranged_json_batch(ranged):
    body = (
        b'[{"key":"json","byte_start":2,"byte_end":5},{"key":"json-full"},'
        b'{"key":"missing","byte_start":0,"byte_end":2}]'
    )
    r = ranged.call("GET", "keyvalues?json=true", data=body)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.content == b'{"json":3456,"json-full":{"ok":true},"missing":{}}'
    for bad in (
        b'[{"key":"json","byte_start":2}]',
        b'[{"key":"json","byte_end":2}]',
        b'[{"key":"json","byte_start":0,"byte_end":100}]',
        b'[{"key":"plain","byte_start":2,"byte_end":5}]',  # not JSON
        b'[{"key":"json","byte_start":5,"byte_end":2}]',
        b'[{"key":"json","byte_start":-1,"byte_end":2}]',
        b'[{"key":"json","byte_start":"1","byte_end":2}]',
        b'[{"byte_start":1,"byte_end":2}]',
        b'[{"key":""}]',
    ):
        assert_error(ranged.call("GET", "keyvalues?json=true", data=bad), 400)


def test_k7_ranged_tar_batch(ranged):
    body = b'[{"key":"plain","byte_start":4,"byte_end":7},{"key":"missing","byte_start":0,"byte_end":2}]'
    r = ranged.call("GET", "keyvalues?jsontar=true", data=body)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/tar"
    assert tar_entries(r.content) == [("plain", b"efgh", 0o755), ("missing", b"", 0o755)]
    # two 512-byte headers, one data block, two zero blocks of end-of-archive
    assert len(r.content) == 5 * 512
    assert r.content[-1024:] == b"\0" * 1024
    bad = b'[{"key":"plain","byte_start":0,"byte_end":100}]'
    assert_error(ranged.call("GET", "keyvalues?jsontar=true", data=bad), 400)
    assert_error(ranged.call("GET", "keyvalues?tar=true", data=bad), 400)


def test_k8_ranged_protobuf_batch(ranged):
    body = keys_message(["full"], [("plain", 1, 3), ("missing", 0, 1)])
    r = ranged.call("GET", "keyvalues", data=body)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert parse_keyvalues(r.content) == [("full", b"full value"), ("plain", b"bcd"), ("missing", b"")]
    assert_error(ranged.call("GET", "keyvalues", data=keys_message([], [("plain", 10, 5)])), 400)
    assert_error(ranged.call("GET", "keyvalues", data=keys_message([], [("plain", 20, 30)])), 400)
    # keys come first, then key_ranges, whatever the order on the wire
    wire = keys_message([], [("plain", 0, 0)]) + keys_message(["json"])
    assert parse_keyvalues(ranged.call("GET", "keyvalues", data=wire).content) == [
        ("json", b"1234567890"),
        ("plain", b"a"),
    ]


# ---- K9-K14: listings, versions, merges ---------------------------------------------------


def test_k9_keyrangevalues_unversioned(server):
    kv = new_kv(server, versioned="false")
    kv.put_ok("key1", b"[1, 2, 3]")
    kv.put_ok("key2", b'{"foo":"a string", "bar":"another string", "baz":[1, 2, 3]}')
    r = kv.call("GET", "keyrangevalues/a/zz?json=true")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.content == (
        b'{"key1":[1, 2, 3],"key2":{"foo":"a string", "bar":"another string", "baz":[1, 2, 3]}}'
    )
    assert kv.call("GET", "keyrangevalues/key2/zz?json=true&check=true").content == (
        b'{"key2":{"foo":"a string", "bar":"another string", "baz":[1, 2, 3]}}'
    )
    assert kv.call("GET", "keyrangevalues/x/zz?json=true").content == b"{}"


def test_keyrangevalues_formats(kv):
    kv.put_ok("a", b"1")
    kv.put_ok("b", b"")
    kv.put_ok("c", b"three")
    kv.put_ok("d", b"4")
    r = kv.call("GET", "keyrangevalues/a/c")
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert parse_keyvalues(r.content) == [("a", b"1"), ("b", b""), ("c", b"three")]
    for flag in ("tar=true", "jsontar=true"):
        r = kv.call("GET", f"keyrangevalues/a/c?{flag}")
        assert r.headers["Content-Type"] == "application/tar"
        assert tar_entries(r.content) == [("a", b"1", 0o755), ("b", b"", 0o755), ("c", b"three", 0o755)]
    assert kv.call("GET", "keyrangevalues/a/c?json=true").content == b'{"a":1,"b":{},"c":three}'
    # check=true validates values; the first failure, before anything is sent, is a 400
    assert_error(kv.call("GET", "keyrangevalues/a/c?json=true&check=true"), 400, "not valid JSON")
    assert kv.call("GET", "keyrangevalues/a/b?json=true&check=true").content == b'{"a":1,"b":{}}'
    assert_error(kv.call("GET", "keyrangevalues/a/c?json=true&tar=true"), 400, "not both")
    assert parse_keyvalues(kv.call("GET", "keyrangevalues/x/z").content) == []
    assert kv.call("GET", "keyrangevalues/x/z?tar=true").content == b"\0" * 1024


def test_k10_batches_and_formats(kv):
    kv.put_ok("mykey", b'"some stuff"')
    kv.put_ok("my2ndkey", b'"more good stuff"')
    rng = random.Random(10)
    payloads = {f"batchkey-{i}": rng.randbytes(i * 1000 + 10) for i in range(5)}
    r = kv.call("POST", "keyvalues", data=keyvalues_message(payloads.items()))
    assert (r.status_code, r.content) == (200, b"")

    r = kv.call("GET", "keyvalues?json=true", data=b'["mykey","my2ndkey","missing-key"]')
    assert r.status_code == 200
    assert r.content == b'{"mykey":"some stuff","my2ndkey":"more good stuff","missing-key":{}}'
    for key, payload in payloads.items():
        assert kv.value(key) == payload

    body = b'["batchkey-0","batchkey-1","batchkey-4","batchkey-1000"]'
    r = kv.call("GET", "keyvalues?jsontar=true", data=body)
    assert r.status_code == 200
    assert [(name, data) for name, data, _ in tar_entries(r.content)] == [
        ("batchkey-0", payloads["batchkey-0"]),
        ("batchkey-1", payloads["batchkey-1"]),
        ("batchkey-4", payloads["batchkey-4"]),
        ("batchkey-1000", b""),
    ]

    body = keys_message(["batchkey-1", "batchkey-2", "batchkey-3", "batchkey-1000"])
    r = kv.call("GET", "keyvalues", data=body)
    assert r.status_code == 200
    assert parse_keyvalues(r.content) == [
        ("batchkey-1", payloads["batchkey-1"]),
        ("batchkey-2", payloads["batchkey-2"]),
        ("batchkey-3", payloads["batchkey-3"]),
        ("batchkey-1000", b""),
    ]
    # duplicates are answered in request order
    r = kv.call("GET", "keyvalues?json=true", data=b'["mykey","mykey"]')
    assert r.content == b'{"mykey":"some stuff","mykey":"some stuff"}'
    assert kv.call("GET", "keyvalues?json=true", data=b"[]").content == b"{}"
    assert kv.call("GET", "keyvalues", data=b"").content == b""
    assert kv.keys() == sorted([*payloads, "my2ndkey", "mykey"])


def test_k11_k12_versions_tombstones_merges(kv):
    root = kv.uuid
    kv.put_ok("mykey", b'"some stuff"')
    kv.put_ok("my2ndkey", b'"more good stuff"')
    kv.commit(root)

    uuid2 = kv.newversion(root)
    kv.put_ok("my2ndkey", b"this is completely different", uuid2)
    assert kv.value("my2ndkey", root) == b'"more good stuff"'
    assert kv.value("my2ndkey", uuid2) == b"this is completely different"
    kv.commit(uuid2)

    uuid3 = kv.newversion(uuid2)
    r = kv.delete("my2ndkey", uuid3)
    assert (r.status_code, r.content) == (200, b"")
    assert_error(kv.get("my2ndkey", uuid3), 404, 'Key "my2ndkey" not found')
    assert kv.head("my2ndkey", uuid3).status_code == 404
    assert kv.value("my2ndkey", root) == b'"more good stuff"'
    assert kv.value("my2ndkey", uuid2) == b"this is completely different"
    assert kv.keys(uuid3) == ["mykey"]
    assert kv.keys(uuid2) == ["my2ndkey", "mykey"]
    kv.commit(uuid3)

    uuid4 = kv.newversion(uuid3)
    kv.put_ok("my2ndkey", b"we are reintroducing this k/v", uuid4)
    assert kv.value("my2ndkey", uuid4) == b"we are reintroducing this k/v"
    assert_error(kv.get("my2ndkey", uuid3), 404)
    kv.commit(uuid4)

    # K12: a fork from uuid2 with a different value conflicts at a merge with uuid4
    uuid5 = kv.branch(uuid2, "fork")
    kv.put_ok("my2ndkey", b"this is forked value", uuid5)
    kv.commit(uuid5)
    merged = kv.merge(uuid4, uuid5)
    r = kv.get("my2ndkey", merged)
    assert_error(r, 409)
    assert kv.value("mykey", merged) == b'"some stuff"'  # keys without conflict still read
    assert_error(kv.call("GET", "keyvalues?json=true", merged, data=b'["my2ndkey"]'), 409)

    # deleting the forked value below uuid5 removes the conflict
    uuid6 = kv.newversion(uuid5)
    assert kv.delete("my2ndkey", uuid6).status_code == 200
    kv.commit(uuid6)
    merged2 = kv.merge(uuid4, uuid6)
    assert kv.value("my2ndkey", merged2) == b"we are reintroducing this k/v"


def test_k13_unversioned(server):
    kv = new_kv(server, versioned="false")
    root = kv.uuid
    kv.commit(root)
    child = kv.newversion(root)
    kv.put_ok("mykey", b"some stuff", child)
    assert kv.value("mykey", root) == b"some stuff"
    kv.commit(child)
    grandchild = kv.newversion(child)
    assert kv.delete("mykey", grandchild).status_code == 200
    for uuid in (root, child, grandchild):
        assert_error(kv.get("mykey", uuid), 404)
    kv.commit(grandchild)
    uuid4 = kv.newversion(grandchild)
    kv.put_ok("mykey", b"reintroduced", uuid4)
    for uuid in (root, child, grandchild, uuid4):
        assert kv.value("mykey", uuid) == b"reintroduced"
    # writes to committed nodes succeed for unversioned instances
    kv.put_ok("mykey", b"written at the committed root", root)
    assert kv.value("mykey", uuid4) == b"written at the committed root"
    r = kv.call("POST", "keyvalues", child, data=keyvalues_message([("k2", b"v2")]))
    assert r.status_code == 200
    assert kv.delete("k2", grandchild).status_code == 200
    assert kv.keys(uuid4) == ["mykey"]


def test_k14_diamond_get_on_merge(kv):
    root = kv.uuid
    kv.put_ok("mykey", b"root value")
    kv.commit(root)
    child1 = kv.newversion(root)
    kv.commit(child1)
    child2 = kv.branch(root, "newbranch")
    kv.commit(child2)
    merged = kv.merge(child1, child2)
    assert kv.value("mykey", merged) == b"root value"
    assert kv.value("mykey", f"{root[:8]}:newbranch") == b"root value"


# ---- formats, special keys, empty values --------------------------------------------------


def test_slash_keys_via_protobuf(kv):
    pairs = [("dir/file", b"slash"), ("100%2Fsure", b"literal percent"), ("a b", b"space")]
    assert kv.call("POST", "keyvalues", data=keyvalues_message(pairs)).status_code == 200
    assert kv.keys() == ["100%2Fsure", "a b", "dir/file"]
    # an encoded slash stays inside its path segment, so such keys are reachable here too
    assert kv.get("dir/file").content == b"slash"
    assert requests.get(kv.url("key/dir%2Ffile"), timeout=TIMEOUT).content == b"slash"
    assert kv.get("100%2Fsure").content == b"literal percent"
    assert kv.call("GET", "keyrange/dir%2F/dir%2Fz").json() == ["dir/file"]
    r = kv.call("GET", "keyvalues?json=true", data=b'["dir/file","100%2Fsure"]')
    assert r.content == b'{"dir/file":slash,"100%2Fsure":literal percent}'


def test_json_output_escapes_keys(kv):
    pairs = [('quo"te', b"1"), ("back\\slash", b"2"), ("tab\there", b"3"), ("<&>", b"4")]
    assert kv.call("POST", "keyvalues", data=keyvalues_message(pairs)).status_code == 200
    r = kv.call("GET", "keyvalues?json=true&check=true", data=json.dumps([k for k, _ in pairs]))
    assert r.status_code == 200
    assert r.json() == {'quo"te': 1, "back\\slash": 2, "tab\there": 3, "<&>": 4}
    assert kv.call("GET", "keyrangevalues/%20/~?json=true").json() == {
        "<&>": 4,
        "back\\slash": 2,
        'quo"te': 1,
        "tab\there": 3,
    }


def test_empty_value_versus_missing(kv):
    kv.put_ok("empty", b"")
    r = kv.head("empty")
    assert r.status_code == 200
    assert r.headers["Content-Length"] == "0"
    r = kv.get("empty")
    assert (r.status_code, r.content, r.headers["Content-Length"]) == (200, b"", "0")
    assert kv.keys() == ["empty"]
    r = kv.get("missing")
    assert r.status_code == 404
    assert r.text == f'Key "missing" not found ({requests.utils.urlparse(kv.key_url("missing")).path}).\n'
    assert kv.head("missing").status_code == 404
    assert kv.head("missing").content == b""
    assert kv.call("GET", "keyvalues?json=true", data=b'["empty","missing"]').content == (
        b'{"empty":{},"missing":{}}'
    )
    assert parse_keyvalues(kv.call("GET", "keyvalues", data=keys_message(["empty", "missing"])).content) == [
        ("empty", b""),
        ("missing", b""),
    ]
    # deleting a key that never existed is fine
    assert kv.delete("never-there").status_code == 200
    assert kv.delete("empty").status_code == 200
    assert kv.head("empty").status_code == 404


def test_overwrite_and_large_value(kv):
    big = random.Random(1).randbytes(3 << 20) + b"\0" * (2 << 20)
    kv.put_ok("big", big)
    assert kv.value("big") == big
    assert kv.head("big").headers["Content-Length"] == str(len(big))
    r = kv.get("big", headers={"Range": f"bytes={len(big) - 10}-"})
    assert (r.status_code, r.content) == (206, big[-10:])
    kv.put_ok("big", b"small now")
    assert kv.value("big") == b"small now"


@pytest.mark.parametrize(
    "settings",
    [
        {"Compression": "none"},
        {"Compression": "gzip:9"},
        {"Compression": "snappy", "Checksum": "crc32"},
        {"Compression": "lz4", "Checksum": "crc32"},
    ],
)
def test_compression_settings_round_trip(server, settings):
    kv = new_kv(server, **settings)
    values = {"a": b"x" * 5000, "b": b"", "c": bytes(range(256)) * 3}
    for key, value in values.items():
        kv.put_ok(key, value)
    for key, value in values.items():
        assert kv.value(key) == value
    r = kv.call("GET", "keyrangevalues/a/c")
    assert parse_keyvalues(r.content) == list(values.items())


def test_stored_layout(kv):
    """Values sit under DVID's full key with tkey ``B1 01 <key> 00`` in an LZ4 envelope (0x80)."""
    kv.put_ok("mykey", b"some stuff")
    kv.put_ok("nothing", b"")
    repo, node = kv.server.manager.resolve(kv.uuid)
    iid = repo.instance("kv").meta.instance_id
    engine = kv.server.manager.engine
    raw = engine.get(storage_keys.data_key(iid, b"\xb1\x01mykey\x00", node.version))
    assert raw is not None
    assert raw[0] == 0x80
    assert envelope.payload_length(raw) == 10
    assert engine.get(storage_keys.data_key(iid, b"\xb1\x01nothing\x00", node.version)) == b""
    kv.delete("mykey")
    assert engine.get(storage_keys.data_key(iid, b"\xb1\x01mykey\x00", node.version, tombstone=True)) == b""


def test_streamed_outputs(kv):
    """Outputs larger than a stream chunk go out chunked and arrive whole in every format."""
    rng = random.Random(7)
    values = {f"k{i:03d}": rng.randbytes(40_000) for i in range(60)}  # ~2.4 MB
    assert kv.call("POST", "keyvalues", data=keyvalues_message(values.items())).status_code == 200
    r = kv.call("GET", "keyrangevalues/k000/k999")
    assert r.headers.get("Transfer-Encoding") == "chunked"
    assert parse_keyvalues(r.content) == list(values.items())
    r = kv.call("GET", "keyrangevalues/k000/k999?tar=true")
    assert [(n, d) for n, d, _ in tar_entries(r.content)] == list(values.items())
    r = kv.call("GET", "keyvalues", data=keys_message(list(values)[::-1]))
    assert parse_keyvalues(r.content) == list(values.items())[::-1]


def test_streamed_json_check_failure_truncates(kv):
    """A check failure after the response began cuts the transfer instead of faking success."""
    good = b'"' + b"x" * 300_000 + b'"'
    pairs = [(f"j{i}", good) for i in range(6)] + [("j9", b"not json")]
    assert kv.call("POST", "keyvalues", data=keyvalues_message(pairs)).status_code == 200
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        kv.call("GET", "keyrangevalues/j0/j9?json=true&check=true")
    # the server keeps serving
    assert kv.value("j9") == b"not json"
    r = kv.call("GET", "keyrangevalues/j0/j9?json=true")
    assert r.status_code == 200
    assert r.content.endswith(b',"j9":not json}')


# ---- locks, read-only, errors --------------------------------------------------------------


def test_locked_node_refuses_writes(kv):
    kv.put_ok("mykey", b"v1")
    kv.commit(kv.uuid)
    assert_error(kv.post("mykey", b"v2"), 409, "locked node")
    assert_error(kv.delete("mykey"), 409)
    assert_error(kv.call("POST", "keyvalues", data=keyvalues_message([("x", b"y")])), 409)
    assert kv.value("mykey") == b"v1"
    assert kv.keys() == ["mykey"]
    # reads are fine, including batch GETs with bodies
    assert kv.call("GET", "keyvalues?json=true", data=b'["mykey"]').status_code == 200


def test_fullwrite_server_writes_committed_nodes(server_factory):
    server = server_factory(rwmode="fullwrite")
    kv = new_kv(server)
    kv.put_ok("mykey", b"v1")
    kv.commit(kv.uuid)
    kv.put_ok("mykey", b"v2")
    assert kv.value("mykey") == b"v2"


def test_readonly_server_refuses_writes(server_factory, tmp_path):
    store = tmp_path / "shared-store"
    writer = server_factory(store_dir=store)
    kv = new_kv(writer)
    kv.put_ok("mykey", b"v1")
    writer.stop()
    reader = server_factory(store_dir=store, rwmode="readonly")
    kv = KV(reader, kv.uuid)
    assert kv.value("mykey") == b"v1"
    assert kv.keys() == ["mykey"]
    assert_error(kv.post("mykey", b"v2"), 405, "read-only")
    assert_error(kv.delete("mykey"), 405)
    assert_error(kv.call("POST", "keyvalues", data=keyvalues_message([("x", b"y")])), 405)
    assert kv.call("GET", "keyvalues?json=true", data=b'["mykey"]').content == b'{"mykey":v1}'
    assert kv.value("mykey") == b"v1"


def test_bad_inputs_leave_data_intact(kv):
    kv.put_ok("keep", b"kept")
    bad_posts = [
        b"\x0a\x05\x0a\x03",  # truncated protobuf
        b"\xff\xff\xff",
        keyvalues_message([("fine", b"1"), ("", b"empty key")]),  # atomic: "fine" is not stored
        keyvalues_message([("fine", b"1"), ("nul\x00key", b"x")]),
    ]
    for body in bad_posts:
        assert_error(kv.call("POST", "keyvalues", data=body), 400)
    assert kv.keys() == ["keep"]
    bad_gets = [
        ("keyvalues", b"\x0a\x05\x0a\x03"),
        ("keyvalues", keys_message([], [("keep", 3, 1)])),
        ("keyvalues", keys_message([""])),
        ("keyvalues?json=true", b'["keep"'),
        ("keyvalues?json=true", b'{"keys":["keep"]}'),
        ("keyvalues?json=true", b"[1, 2]"),
        ("keyvalues?json=true", b""),
        ("keyvalues?jsontar=true", b"not json"),
        ("keyvalues?json=true&tar=true", b'["keep"]'),
        ("keyvalues?json=maybe", b'["keep"]'),
    ]
    for tail, body in bad_gets:
        assert_error(kv.call("GET", tail, data=body), 400)
    assert_error(kv.post("nul\x00key", b"x"), 400)
    assert_error(requests.post(kv.url("key/nul%00key"), data=b"x", timeout=TIMEOUT), 400, "NUL")
    assert kv.keys() == ["keep"]
    assert kv.value("keep") == b"kept"


def test_routing_errors(kv):
    assert_error(kv.call("GET", "nosuchendpoint"), 404, "Bad API call")
    assert_error(kv.call("PUT", "key/x", data=b"v"), 405)
    assert_error(kv.call("DELETE", "keys"), 405)
    assert_error(kv.call("POST", "keyrange/a/b"), 405)
    r = requests.get(kv.server.api(f"node/{kv.uuid}/nosuchdata/key/x"), timeout=TIMEOUT)
    assert_error(r, 404)


def test_help_and_info(kv):
    r = requests.get(kv.server.api("help/keyvalue"), timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.text == keyvalue.HELP_TEXT
    for endpoint in ("/key/", "/keys", "/keyrange/", "/keyrangevalues/", "/keyvalues", "byte_start", "Range"):
        assert endpoint in r.text
    assert kv.call("GET", "help").text == keyvalue.HELP_TEXT
    info = kv.call("GET", "info").json()
    assert info["Base"]["TypeName"] == "keyvalue"
    assert info["Base"]["TypeVersion"] == "0.2"
    assert info["Base"]["TypeURL"] == "github.com/janelia-flyem/dvid/datatype/keyvalue"
    assert info["Base"]["Compression"] == "LZ4 compression, level -1"
    assert info["Extended"] == {}


# ---- model and helpers without HTTP --------------------------------------------------------


def test_key_codec():
    assert keyvalue.encode_key("a") == b"\xb1\x01a\x00"
    assert keyvalue.encode_key("日") == b"\xb1\x01" + "日".encode() + b"\x00"
    assert keyvalue.decode_key(b"\xb1\x01mykey\x00") == "mykey"
    for bad in ("", "a\x00b", "\udc80"):
        with pytest.raises(BadRequest):
            keyvalue.encode_key(bad)
    assert keyvalue.encode_bound("") == b"\xb1\x01\x00"
    with pytest.raises(ValueError):
        keyvalue.decode_key(b"\xb2\x01a\x00")
    assert keyvalue.encode_key("a") < keyvalue.encode_key("a0") < keyvalue.encode_key("ab")


@pytest.mark.parametrize(
    ("header", "length", "expected"),
    [
        ("bytes=2-5", 26, (2, 5)),
        ("bytes=24-", 26, (24, 25)),
        ("bytes=-3", 26, (23, 25)),
        ("bytes=-30", 26, (0, 25)),
        ("bytes=24-100", 26, (24, 25)),
        ("bytes=0-1,4-5", 26, None),
        ("bytes=5-2", 26, None),
        ("bytes=abc", 26, None),
        ("items=0-5", 26, None),
        ("bytes=-", 26, None),
        ("bytes=", 26, None),
        ("bytes=1-99999999999999999999999", 26, None),
        ("bytes=5-2", 0, None),
    ],
)
def test_parse_range_header(header, length, expected):
    assert keyvalue.parse_range_header(header, length) == expected


@pytest.mark.parametrize(("header", "length"), [("bytes=26-30", 26), ("bytes=-0", 26), ("bytes=0-1", 0)])
def test_parse_range_header_unsatisfiable(header, length):
    with pytest.raises(RangeNotSatisfiable) as info:
        keyvalue.parse_range_header(header, length)
    assert info.value.length == length
    assert info.value.status == 416


def test_model_methods():
    meta = InstanceMeta(name="kv", type_name="keyvalue", data_uuid="d", instance_id=7, repo_uuid="r")
    kv = keyvalue.KeyValue(meta, VersionedStore(MemoryEngine()), save=lambda: None, instance_names=list)
    ctx = kv.context(Ancestry.root(1))
    assert kv.get_value(ctx, "a") is None
    kv.put_value(ctx, "a", b"alpha")
    kv.put_value(ctx, "e", b"")
    assert kv.put_values(ctx, [("b", b"beta"), ("c/d", b"gamma")]) == 2
    assert kv.get_value(ctx, "a") == b"alpha"
    assert kv.get_value(ctx, "e") == b""
    assert kv.value_length(ctx, "a") == 5
    assert kv.get_values(ctx, ["b", "zz", "e"]) == [b"beta", None, b""]
    assert list(kv.iter_keys(ctx)) == ["a", "b", "c/d", "e"]
    assert list(kv.iter_keys(ctx, "b", "c/d")) == ["b", "c/d"]
    assert list(kv.iter_range(ctx, "a", "b")) == [("a", b"alpha"), ("b", b"beta")]
    with pytest.raises(BadRequest):
        kv.put_values(ctx, [("x", b"1"), ("", b"2")])
    assert kv.get_value(ctx, "x") is None  # nothing of a refused batch is written
    kv.delete_value(ctx, "a")
    kv.delete_value(ctx, "never")
    assert list(kv.iter_keys(ctx)) == ["b", "c/d", "e"]
    requests_ = keyvalue.parse_keys_json(b'[{"key":"b","byte_start":1,"byte_end":2},"e","gone"]')
    out = b"".join(kv.format_requests(ctx, requests_, keyvalue.PROTOBUF))
    assert parse_keyvalues(out) == [("b", b"et"), ("e", b""), ("gone", b"")]
    assert b"".join(kv.format_keys(ctx)) == b'["b","c/d","e"]'
