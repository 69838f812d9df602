"""Every error path of the server layer, derived from the live route tables.

For every path of the server, repo and node tables and every endpoint of every datatype, each
method it does not serve answers 405 with ``Allow``; unknown paths 404; bodies over the limit 413;
undecodable bodies 400 and unknown encodings 415; lying ``Content-Length``, bad percent-escapes,
``%00`` and non-UTF-8 paths never make a 5xx. No test here may see the server log an error.
"""

from __future__ import annotations

import gzip
import logging
import socket
import zlib

import pytest
import requests

from dvid.datatype import registry
from dvid.datatype.common.route import HTTP_METHODS
from dvid.server.app import api_router
from dvid.server.routing import ANY_METHOD, ApiRoute
from tests.rawhttp import ask, parse_response, request_bytes, send_raw
from tests.serverutil import REQUIRED_SETTINGS

TIMEOUT = 10
#: Methods tried on every path: every method a table can serve, plus ones none serves.
TRIED_METHODS = (*HTTP_METHODS, "TRACE", "PROPFIND")


@pytest.fixture
def no_server_errors(caplog):
    """Fails the test if the server logged anything at ERROR (a 500, or aiohttp's own traceback)."""
    caplog.set_level(logging.WARNING)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


@pytest.fixture
def populated(server):
    """A repo with one instance of every datatype (named after its type) at an open version."""
    uuid = server.new_repo("errors")
    for typename in registry.all_types():
        server.new_instance(uuid, typename, f"i_{typename}", **REQUIRED_SETTINGS.get(typename, {}))
    return server, uuid


def concrete_path(route: ApiRoute, uuid: str) -> str:
    """The route's template with a value that resolves for every parameter."""
    values = {"uuid": uuid, "dataname": "i_keyvalue", "typename": "keyvalue", "branch": "master"}
    parts = []
    for seg in route.segments:
        if seg.startswith("{") and seg.endswith("...}"):
            parts.append("help")
        elif seg.startswith("{"):
            parts.append(values[seg[1:-1]])
        else:
            parts.append(seg)
    return "/" + "/".join(parts)


def methods_at(path_parts: list[str]) -> set[str]:
    """Every method some table serves at a path (what ``Allow`` must list)."""
    served: set[str] = set()
    for route in api_router().routes:
        if route.match(path_parts) is not None:
            served.update(route.methods)
    return served


def check_405(resp: requests.Response, allowed: set[str]) -> None:
    assert resp.status_code == 405, (resp.request.method, resp.request.url, resp.status_code, resp.text)
    assert set(resp.headers["Allow"].split(", ")) == allowed, resp.headers["Allow"]
    assert resp.headers["Content-Type"].startswith("text/plain")
    if resp.request.method != "HEAD":
        assert resp.text.endswith(").\n") and resp.request.method in resp.text
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


def test_every_server_repo_and_node_path_answers_405_with_allow_for_other_methods(
    populated, no_server_errors
):
    server, uuid = populated
    checked = 0
    for route in api_router().routes:
        if ANY_METHOD in route.methods:
            continue  # a fallback that answers every method itself (see the datatype test below)
        path = concrete_path(route, uuid)
        served = methods_at(path.strip("/").split("/"))
        assert ANY_METHOD not in served or set(route.methods) & set(HTTP_METHODS)
        allowed = served - {ANY_METHOD}
        for method in TRIED_METHODS:
            if method in served:
                continue
            check_405(requests.request(method, server.url + path, timeout=TIMEOUT), allowed)
            checked += 1
    assert checked > 100  # every table was walked


@pytest.mark.parametrize("typename", sorted(registry.all_types()))
def test_every_datatype_endpoint_answers_405_with_allow_for_other_methods(
    populated, typename, no_server_errors
):
    server, uuid = populated
    cls = registry.get_type(typename)
    assert cls.route_table, typename
    for endpoint, by_method in cls.route_table.items():
        url = f"{server.url}/api/node/{uuid}/i_{typename}/{endpoint}"
        for method in TRIED_METHODS:
            if method in by_method:
                continue
            check_405(requests.request(method, url, timeout=TIMEOUT), set(by_method))


def test_unknown_paths_are_404(populated, no_server_errors):
    server, uuid = populated
    for path in (
        "/api/nothing",
        "/api/server/nothing",
        "/api/repos/nothing/more",
        f"/api/repo/{uuid}/info/more",
        f"/api/node/{uuid}/i_keyvalue/no-such-endpoint",
        f"/api/node/{uuid}/no_such_instance/info",
        "/api/node/00000000000000000000000000000000/i_keyvalue/info",
        "/not-the-api",
    ):
        r = requests.get(server.url + path, timeout=TIMEOUT)
        assert r.status_code == 404, (path, r.status_code, r.text)
        assert r.headers["Content-Type"].startswith("text/plain")
        assert r.text.endswith(").\n") and r.text.count(path) == 1, r.text


def test_bodies_over_the_limit_are_413(server_factory, no_server_errors):
    srv = server_factory(max_body_bytes=4096)
    uuid = srv.new_repo()
    srv.new_instance(uuid, "keyvalue", "kv")
    url = srv.api(f"node/{uuid}/kv/key/big")
    assert requests.post(url, data=b"x" * 4097, timeout=TIMEOUT).status_code == 413
    chunked = requests.post(url, data=iter([b"x" * 3000, b"x" * 3000]), timeout=TIMEOUT)
    assert chunked.status_code == 413, chunked.text
    bomb = gzip.compress(b"\0" * (1 << 20))
    r = requests.post(url, data=bomb, headers={"Content-Encoding": "gzip"}, timeout=TIMEOUT)
    assert r.status_code == 413 and "inflates past the limit" in r.text
    r = requests.post(srv.api("repos"), data=b" " * 5000, timeout=TIMEOUT)
    assert r.status_code == 413
    assert requests.get(url, timeout=TIMEOUT).status_code == 404  # nothing was stored
    assert requests.post(url, data=b"x" * 4096, timeout=TIMEOUT).status_code == 200


@pytest.mark.parametrize(
    ("encoding", "body", "fragment"),
    [
        ("gzip", b"not gzip at all", "incorrect header check"),
        ("gzip", gzip.compress(b'{"alias": "a"}')[:-4], "cut short"),
        ("gzip", gzip.compress(b'{"alias": "a"}') + b"junk", "data after the end"),
        ("gzip", b"", "empty"),
        ("deflate", b"\x78\x9cnot deflate", "invalid"),
        ("deflate", zlib.compress(b'{"alias": "a"}')[:-2], "cut short"),
        ("x-gzip", b"\x1f\x8b\x08", "cut short"),
    ],
)
def test_undecodable_bodies_are_400_naming_the_encoding(server, encoding, body, fragment, no_server_errors):
    r = requests.post(server.api("repos"), data=body, headers={"Content-Encoding": encoding}, timeout=TIMEOUT)
    assert r.status_code == 400, r.text
    assert f"Content-Encoding: {encoding}" in r.text and fragment in r.text, r.text
    assert requests.get(server.api("repos/info"), timeout=TIMEOUT).json() == {}  # no repo was made


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, identity", "bogus"])
def test_unknown_encodings_are_415(server, encoding, no_server_errors):
    r = requests.post(
        server.api("repos"), data=b"{}", headers={"Content-Encoding": encoding}, timeout=TIMEOUT
    )
    assert r.status_code == 415, r.text
    assert "gzip" in r.headers["Accept-Encoding"] and repr(encoding) in r.text


def test_encoded_bodies_decode_everywhere_a_body_is_read(server, no_server_errors):
    uuid = server.new_repo()
    server.new_instance(uuid, "keyvalue", "kv")
    server.new_instance(uuid, "uint8blk", "grey", BlockSize="8,8,8")
    value = bytes(range(256)) * 100
    url = server.api(f"node/{uuid}/kv/key/k")
    for encoding, body in (("gzip", gzip.compress(value)), ("deflate", zlib.compress(value))):
        assert requests.post(url, data=body, headers={"Content-Encoding": encoding}, timeout=TIMEOUT).ok
        assert requests.get(url, timeout=TIMEOUT).content == value
    two_members = gzip.compress(value[:100]) + gzip.compress(value[100:])
    assert requests.post(url, data=two_members, headers={"Content-Encoding": "gzip"}, timeout=TIMEOUT).ok
    assert requests.get(url, timeout=TIMEOUT).content == value
    raw_deflate = zlib.compressobj(wbits=-15)
    body = raw_deflate.compress(value) + raw_deflate.flush()
    assert requests.post(url, data=body, headers={"Content-Encoding": "deflate"}, timeout=TIMEOUT).ok
    assert requests.get(url, timeout=TIMEOUT).content == value
    # A streamed volume POST reads its body through the same decoder.
    vol = bytes(range(256)) * 2
    vurl = server.api(f"node/{uuid}/grey/raw/0_1_2/8_8_8/0_0_0")
    r = requests.post(vurl, data=gzip.compress(vol), headers={"Content-Encoding": "gzip"}, timeout=TIMEOUT)
    assert r.ok, r.text
    assert requests.get(vurl, timeout=TIMEOUT).content == vol
    short = gzip.compress(vol[:-1])
    r = requests.post(vurl, data=short, headers={"Content-Encoding": "gzip"}, timeout=TIMEOUT)
    assert r.status_code == 400 and "511 bytes" in r.text, r.text


def test_content_length_longer_than_the_body(server, no_server_errors):
    """A client that promises more than it sends and gives up: nothing stored, server fine."""
    uuid = server.new_repo()
    server.new_instance(uuid, "keyvalue", "kv")
    port = server.config.server.port
    lie = request_bytes("POST", f"/api/node/{uuid}/kv/key/k", b"x" * 10, {"Content-Length": "100"})
    assert send_raw(port, lie, close_after_send=True, timeout=5) == b""
    assert requests.get(server.api(f"node/{uuid}/kv/key/k"), timeout=TIMEOUT).status_code == 404
    assert requests.get(server.api("heartbeat"), timeout=TIMEOUT).text == "OK"


def test_content_length_shorter_than_the_body(server, no_server_errors):
    """The declared length is the body; what follows is read as the next request, here malformed."""
    uuid = server.new_repo()
    server.new_instance(uuid, "keyvalue", "kv")
    head = f"POST /api/node/{uuid}/kv/key/k HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", server.config.server.port), timeout=TIMEOUT) as sock:
        sock.sendall(head + b"abc")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200"), first
        sock.sendall(b"defgh\r\n\r\n")
        second = sock.recv(65536)
        assert second.startswith((b"HTTP/1.0 400", b"HTTP/1.1 400")), second
    assert requests.get(server.api(f"node/{uuid}/kv/key/k"), timeout=TIMEOUT).content == b"abc"


def test_bad_percent_escapes_in_the_query(server, no_server_errors):
    port = server.config.server.port
    assert ask(port, "GET", "/api/server/info?u=%ff").status == 200  # u= is only for the log
    assert ask(port, "GET", "/api/heartbeat?u=%ff%fe&app=%").status == 200
    uuid = server.new_repo()
    server.new_instance(uuid, "uint8blk", "grey")
    r = ask(port, "GET", f"/api/node/{uuid}/grey/raw/0_1_2/8_8_8/0_0_0?scale=%ff")
    assert r.status == 400 and b"scale" in r.body


def test_paths_with_nul_and_non_utf8_bytes(server, no_server_errors, caplog):
    port = server.config.server.port
    uuid = server.new_repo()
    server.new_instance(uuid, "keyvalue", "kv")
    # keys are NUL-terminated in storage (as in DVID), so a key holding %00 is refused
    r = ask(port, "POST", f"/api/node/{uuid}/kv/key/a%00b", b"nul")
    assert r.status == 400 and b"NUL" in r.body
    assert ask(port, "GET", f"/api/node/{uuid}/kv/keys").body == b"[]"
    assert ask(port, "GET", "/api/node/ab%00cd/kv/info").status == 404
    # percent-encoded bytes that are not UTF-8: a 400 from dvid
    r = ask(port, "GET", f"/api/node/{uuid}/kv/key/%ff%fe")
    assert r.status == 400 and b"not valid UTF-8" in r.body
    # raw non-ASCII bytes in the request line: refused by the HTTP parser with a 400, logged as a
    # one-line warning (the client's error), not an error with a traceback
    raw = send_raw(port, b"GET /api/node/ab\xff\xfe/kv/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert parse_response(raw).status == 400
    assert requests.get(server.api("heartbeat"), timeout=TIMEOUT).text == "OK"
    warned = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [r.levelname for r in warned] == ["WARNING"], warned
    assert "malformed HTTP request refused with 400: Invalid char in url path" in warned[0].getMessage()
    assert warned[0].exc_info is None


def test_a_bug_is_a_500_with_a_request_id_in_body_header_and_log(server, monkeypatch, caplog):
    """The one 500 path: the body and the X-Request-Id header carry the id that the log line has."""
    from dvid.datatype.keyvalue import KeyValue

    async def broken(self, req):
        raise RuntimeError("deliberate")

    monkeypatch.setattr(KeyValue, "handle_keys", broken)
    uuid = server.new_repo()
    server.new_instance(uuid, "keyvalue", "kv")
    caplog.set_level(logging.ERROR)
    r = requests.get(server.api(f"node/{uuid}/kv/keys"), timeout=TIMEOUT)
    assert r.status_code == 500
    request_id = r.headers["X-Request-Id"]
    assert f"[request {request_id}]" in r.text and "RuntimeError: deliberate" in r.text
    logged = [rec for rec in caplog.records if rec.levelno == logging.ERROR]
    assert len(logged) == 1 and request_id in logged[0].getMessage() and logged[0].exc_info
