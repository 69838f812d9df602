"""Transfers that fail or race: malformed streams, concurrent pushes of one version, read-only and
unreachable servers. Each leaves the receiver as it was and says why in one line."""

from __future__ import annotations

import os
import struct
import threading

import requests

from dvid.client import DVIDClient, DVIDClientError
from dvid.transfer import stream
from dvid.transfer.importer import wait_for_cleaning
from dvid.transfer.pipe import transfer
from tests.test_transfer import T, _export_bytes, _key_count, cli_fail, cli_ok, dag_of, get, post, snapshot_kv


def _header_of(body: bytes) -> tuple[dict, int]:
    pos = len(stream.PREAMBLE)
    _, length = stream.RECORD_HEAD.unpack_from(body, pos)
    return stream.unpackb(body[pos + 5 : pos + 5 + length]), pos + 5 + length


def test_malformed_streams_are_refused_with_400_and_change_nothing(pair):
    src, dst = pair
    root = src.new_repo("m")
    src.new_instance(root, "keyvalue", "kv")
    post(src, f"node/{root}/kv/key/a", data=b"root")
    body = _export_bytes(src, root)
    header, hend = _header_of(body)
    pre = stream.PREAMBLE

    def with_header(**changes) -> bytes:
        return pre + stream.record(stream.HEADER, stream.packb({**header, **changes}))

    bad_instance = {**header["instances"][0], "type_name": "nosuchtype"}
    extra_field = {**header["instances"][0], "bogus": 1}
    cases = {
        "random bytes": (os.urandom(1000), "bad magic"),
        "wrong magic": (b"DVIDXFX\x00" + body[8:], "bad magic"),
        "truncated header": (body[: hend - 3], "ended before its header"),
        "header length 2^31": (pre + struct.pack(">BI", stream.HEADER, 2**31) + b"x" * 100, "over the limit"),
        "garbage msgpack header": (pre + stream.record(stream.HEADER, b"\xc1\xc1"), "undecodable"),
        "truncated msgpack header": (
            pre + stream.record(stream.HEADER, body[len(pre) + 5 : hend - 10]),
            "undecodable",
        ),
        "instances not maps": (with_header(instances=[1]), "malformed instance"),
        "repo not a map": (with_header(repo=3), "malformed repo"),
        "mutation id not a number": (with_header(repo={**header["repo"], "mutation_id": "x"}), "mutation_id"),
        "mutation id negative": (with_header(repo={**header["repo"], "mutation_id": -1}), "mutation_id"),
        "send not a list": (with_header(send=3), "malformed 'send'"),
        "unknown type": (with_header(instances=[bad_instance]), "not supported"),
        "unknown instance field": (with_header(instances=[extra_field]), "unknown fields"),
        "record length 2^31": (body[:hend] + struct.pack(">BI", stream.KVS, 2**31), "over the limit"),
        "END not a map": (body[:hend] + stream.record(stream.END, stream.packb([1])), "malformed END"),
    }
    before = _key_count(dst)
    for name, (data, message) in cases.items():
        r = requests.post(dst.api(f"repo/{root}/transfer/import"), data=data, timeout=T)
        assert r.status_code == 400 and message in r.text, (name, r.status_code, r.text)
    for name, payload in {
        "garbage": b"\xc1",
        "truncated": body[len(pre) + 5 : hend - 10],
        "bad instances": stream.packb({**header, "instances": [1]}),
    }.items():
        r = requests.post(dst.api(f"repo/{root}/transfer/check"), data=payload, timeout=T)
        assert r.status_code == 400, (name, r.status_code, r.text)
    assert _key_count(dst) == before
    assert dst.manager.transfer_markers() == []
    assert get(dst, "server/info").status_code == 200
    cli_ok("--server", src.url, "push", root, dst.url, "-q")
    assert snapshot_kv(dst, root) == {"a": b"root"}


def test_concurrent_pushes_of_one_version(pair):
    src, dst = pair
    root = src.new_repo("c")
    src.new_instance(root, "keyvalue", "kv")
    with requests.Session() as s:
        for i in range(200):
            s.post(src.api(f"node/{root}/kv/key/k{i}"), data=os.urandom(5000), timeout=T).raise_for_status()
    src.commit(root)
    v2 = src.newversion(root)
    post(src, f"node/{v2}/kv/key/z", data=b"z")
    results: list = []

    def run() -> None:
        try:
            with DVIDClient(src.url) as a, DVIDClient(dst.url) as b:
                results.append(transfer(a, b, v2)["versions"])
        except DVIDClientError as exc:
            results.append(exc.status)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r in (409, 1, 2) for r in results), results
    assert 2 in results
    assert dag_of(dst, root) == dag_of(src, root)
    for u in (root, v2):
        assert snapshot_kv(dst, u) == snapshot_kv(src, u)
    wait_for_cleaning(10)
    assert dst.manager.transfer_markers() == []


def test_pull_from_read_only_server_and_push_into_one(server_factory, tmp_path):
    store = tmp_path / "ro"
    writer = server_factory(store_dir=store)
    root = writer.new_repo("ro")
    writer.new_instance(root, "keyvalue", "kv")
    post(writer, f"node/{root}/kv/key/a", data=b"1")
    writer.stop()
    ro = server_factory(store_dir=store, rwmode="readonly")
    dst = server_factory()
    cli_ok("--server", dst.url, "pull", ro.url, root, "-q")
    assert snapshot_kv(dst, root) == {"a": b"1"}
    other = dst.new_repo("other")
    err = cli_fail("--server", dst.url, "push", other, ro.url, "-q")
    assert "read-only" in err and err.count("\n") == 1
    assert get(ro, f"repo/{other}/info").status_code == 404


def test_unreachable_servers_fail_in_one_line(server):
    root = server.new_repo("x")
    for args in [
        ("--server", server.url, "push", root, "http://127.0.0.1:1", "-q"),
        ("--server", "http://127.0.0.1:1", "push", root, server.url, "-q"),
        ("--server", server.url, "pull", "http://127.0.0.1:1", root, "-q"),
    ]:
        err = cli_fail(*args)
        assert "no dvid server answers at http://127.0.0.1:1" in err and err.count("\n") == 1, err
