"""Push and pull between two real servers on loopback (dvid/transfer, `dvid push` / `dvid pull`)."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

import numpy as np
import pytest
import requests
from click.testing import CliRunner

from dvid.cli import cli
from dvid.client import DVIDClient, DVIDClientError
from dvid.repos import TRANSFER_CLASS
from dvid.storage import keys
from dvid.transfer import stream
from dvid.transfer.importer import wait_for_cleaning
from dvid.transfer.pipe import renamed_flatten_header, transfer, with_header

T = 30
SHAPE = (64, 64, 32)  # x, y, z


def post(server, path: str, data=None, json=None, **params):
    r = requests.post(server.api(path), data=data, json=json, params=params, timeout=T)
    assert r.status_code == 200, r.text
    return r


def get(server, path: str, **params) -> requests.Response:
    return requests.get(server.api(path), params=params, timeout=T)


def build_repo(src):
    """A repo with every kind of instance, two committed versions and an open third."""
    root = src.new_repo("xfer", "transfer test")
    src.new_instance(root, "keyvalue", "kv")
    src.new_instance(root, "keyvalue", "flat", versioned="false")
    src.new_instance(root, "uint8blk", "grayscale")
    src.new_instance(root, "labelblk", "seg", BlockSize="32,32,32")
    src.new_instance(root, "labelvol", "bodies", BlockSize="32,32,32")
    post(src, f"node/{root}/bodies/sync", json={"sync": "seg"})
    post(src, f"node/{root}/seg/sync", json={"sync": "bodies"})
    rng = np.random.default_rng(7)
    gray = rng.integers(0, 255, size=SHAPE[::-1], dtype=np.uint8)
    labels = np.zeros(SHAPE[::-1], dtype=np.uint64)
    labels[:, :32, :] = 5
    labels[:, 32:, :40] = 9
    sx, sy, sz = SHAPE
    post(src, f"node/{root}/grayscale/raw/0_1_2/{sx}_{sy}_{sz}/0_0_0", data=gray.tobytes())
    post(src, f"node/{root}/seg/raw/0_1_2/{sx}_{sy}_{sz}/0_0_0", data=labels.tobytes())
    for i in range(20):
        post(src, f"node/{root}/kv/key/k{i:03d}", data=f"v1-{i}".encode() * 100)
    post(src, f"node/{root}/flat/key/a", data=b"unversioned-1")
    src.commit(root, "v1")
    v2 = src.newversion(root)
    post(
        src,
        f"node/{v2}/grayscale/raw/0_1_2/32_32_32/0_0_0",
        data=np.full((32, 32, 32), 3, np.uint8).tobytes(),
    )
    labels2 = labels.copy()
    labels2[:16, :16, :16] = 11
    post(src, f"node/{v2}/seg/raw/0_1_2/{sx}_{sy}_{sz}/0_0_0", data=labels2.tobytes())
    for i in range(0, 20, 3):
        post(src, f"node/{v2}/kv/key/k{i:03d}", data=f"v2-{i}".encode())
    r = requests.delete(src.api(f"node/{v2}/kv/key/k001"), timeout=T)
    assert r.status_code == 200, r.text
    src.commit(v2, "v2")
    v3 = src.newversion(v2)
    post(src, f"node/{v3}/kv/key/new", data=b"open version")
    post(src, f"node/{root}/flat/key/b", data=b"unversioned-2")
    return root, v2, v3


def snapshot(server, uuid: str) -> dict:
    """Everything readable of every instance at a version."""
    sx, sy, sz = SHAPE
    out = {}
    r = get(server, f"node/{uuid}/kv/keys")
    assert r.status_code == 200, r.text
    names = r.json()
    out["kv"] = {k: get(server, f"node/{uuid}/kv/key/{k}").content for k in names}
    out["flat"] = {
        k: get(server, f"node/{uuid}/flat/key/{k}").content
        for k in get(server, f"node/{uuid}/flat/keys").json()
    }
    for name in ("grayscale", "seg"):
        r = get(server, f"node/{uuid}/{name}/raw/0_1_2/{sx}_{sy}_{sz}/0_0_0")
        assert r.status_code == 200, r.text
        out[name] = r.content
    for label in (5, 9, 11):
        r = get(server, f"node/{uuid}/bodies/sparsevol/{label}")
        out[f"body{label}"] = (r.status_code, r.content)
    return out


def dag_of(server, uuid: str) -> dict:
    info = get(server, f"repo/{uuid}/info").json()
    by_version = {n["VersionID"]: u for u, n in info["DAG"]["Nodes"].items()}
    return {
        u: (n["Locked"], n["Branch"], sorted(by_version[p] for p in n["Parents"]), n["Note"])
        for u, n in info["DAG"]["Nodes"].items()
    }


def cli_ok(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


def cli_fail(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 1, (args, result.output)
    assert "Traceback" not in result.output
    return result.stderr


def test_push_then_incremental_push(pair):
    src, dst = pair
    root, v2, v3 = build_repo(src)
    out = cli_ok("--server", src.url, "push", v2, dst.url, "-q")
    assert f"version {v2}" in out and "2 new version(s)" in out
    assert set(dag_of(dst, root)) == {root, v2}
    assert dag_of(dst, root) == {u: d for u, d in dag_of(src, root).items() if u in (root, v2)}
    for u in (root, v2):
        assert snapshot(src, u) == snapshot(dst, u)
    assert get(dst, f"node/{v2}/status").json()["Locked"] is True
    # the data instances keep their data UUIDs
    src_info = get(src, f"repo/{root}/info").json()["DataInstances"]
    dst_info = get(dst, f"repo/{root}/info").json()["DataInstances"]
    assert {n: i["Base"]["DataUUID"] for n, i in src_info.items()} == {
        n: i["Base"]["DataUUID"] for n, i in dst_info.items()
    }
    # a second push of a descendant sends only the new version (and the unversioned instance)
    with DVIDClient(src.url) as a, DVIDClient(dst.url) as b:
        result = transfer(a, b, v3)
    assert result["versions"] == 1
    assert dag_of(dst, root) == dag_of(src, root)
    for u in (root, v2, v3):
        assert snapshot(src, u) == snapshot(dst, u)
    assert snapshot(dst, v3)["flat"] == {"a": b"unversioned-1", "b": b"unversioned-2"}
    # pushing again sends nothing but the open version (which may have changed): still identical
    post(src, f"node/{v3}/kv/key/new", data=b"changed while open")
    cli_ok("push", v3, dst.url, "--server", src.url, "-q")
    assert snapshot(src, v3) == snapshot(dst, v3)
    assert dag_of(dst, root) == dag_of(src, root)
    # once committed on the sender, the version becomes committed on the receiver too
    src.commit(v3)
    cli_ok("push", v3, dst.url, "--server", src.url, "-q")
    assert get(dst, f"node/{v3}/status").json()["Locked"] is True
    assert snapshot(src, v3) == snapshot(dst, v3)


def test_pull(pair):
    src, dst = pair
    root, v2, _ = build_repo(src)
    cli_ok("--server", dst.url, "pull", src.url, v2[:10], "-q")
    for u in (root, v2):
        assert snapshot(src, u) == snapshot(dst, u)
    assert get(dst, f"node/{root}/status").json()["Locked"] is True


def test_push_subset_of_instances(pair):
    src, dst = pair
    root, v2, _ = build_repo(src)
    cli_ok("--server", src.url, "push", v2, dst.url, "--data", "kv", "--data", "flat", "-q")
    names = set(get(dst, f"repo/{root}/info").json()["DataInstances"])
    assert names == {"kv", "flat"}
    a, b = snapshot_kv(src, v2), snapshot_kv(dst, v2)
    assert a == b
    # the other instances follow in a later push, for every version
    cli_ok("--server", src.url, "push", v2, dst.url, "-q")
    for u in (root, v2):
        assert snapshot(src, u) == snapshot(dst, u)


def snapshot_kv(server, uuid):
    names = get(server, f"node/{uuid}/kv/keys").json()
    return {k: get(server, f"node/{uuid}/kv/key/{k}").content for k in names}


def test_flatten(pair):
    src, dst = pair
    root, v2, _ = build_repo(src)
    out = cli_ok("--server", src.url, "push", v2, dst.url, "--flatten", "-q")
    assert "flattened" in out
    info = get(dst, f"repo/{v2}/info").json()
    assert info["Root"] == v2
    assert list(info["DAG"]["Nodes"]) == [v2]
    assert snapshot(src, v2) == snapshot(dst, v2)
    assert get(dst, f"repo/{root}").status_code == 404
    # the flattened repo holds no tombstones or older values: one key per visible key
    manager = dst.manager
    repo, _ = manager.resolve(v2)
    kv = repo.instances["kv"]
    prefix = keys.instance_prefix(kv.meta.instance_id)
    stored = list(kv.store.engine.scan(prefix, keys.instance_prefix(kv.meta.instance_id + 1), keys_only=True))
    assert all(not keys.is_tombstone(k) for k, _ in stored)
    # a second flatten of the same version is refused
    err = cli_fail("--server", src.url, "push", v2, dst.url, "--flatten", "-q")
    assert "already has version" in err


def test_flatten_under_a_new_uuid(pair):
    """A version flattened into a server that already holds it: ``--uuid`` names the new repo."""
    src, dst = pair
    _, v2, _ = build_repo(src)
    cli_ok("--server", dst.url, "pull", src.url, v2, "-q")  # dst holds the history already
    err = cli_fail("--server", dst.url, "pull", src.url, v2, "--flatten", "-q")
    assert f"already has version {v2}: a flattened copy needs a new UUID (give one with --uuid)" in err
    new = "0123456789ABCDEF0123456789abcdef"
    out = cli_ok("--server", dst.url, "pull", src.url, v2, "--flatten", "--uuid", new, "-q")
    new = new.lower()
    assert f"Transferred flattened version {new} of repo {new}" in out
    info = get(dst, f"repo/{new}/info").json()
    assert info["Root"] == new and list(info["DAG"]["Nodes"]) == [new]
    assert snapshot(dst, new) == snapshot(src, v2) == snapshot(dst, v2)
    # the flattened copy is a repo of its own: writes there leave the pulled history alone
    child = dst.newversion(new)
    post(dst, f"node/{child}/kv/key/k000", data=b"only in the copy")
    assert get(dst, f"node/{child}/kv/key/k000").content == b"only in the copy"
    assert snapshot(dst, v2) == snapshot(src, v2)
    err = cli_fail("--server", dst.url, "pull", src.url, v2, "--flatten", "--uuid", new, "-q")
    assert f"already has version {new}: a flattened copy needs a new UUID (give another with --uuid)" in err
    # push takes it too
    other = "f" * 32
    cli_ok("--server", src.url, "push", v2, dst.url, "--flatten", "--uuid", other, "-q")
    assert snapshot(dst, other) == snapshot(src, v2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--uuid", "a" * 32], "--uuid names a flattened copy: give --flatten too"),
        (["--flatten", "--uuid", "abc"], "--uuid must be 32 hexadecimal digits, not 'abc'"),
        (["--flatten", "--uuid", "g" * 32], "--uuid must be 32 hexadecimal digits"),
    ],
)
def test_new_uuid_option_is_checked(pair, args, message):
    src, dst = pair
    root = src.new_repo("x", "")
    err = cli_fail("--server", dst.url, "pull", src.url, root, *args, "-q")
    assert err.startswith(f"dvid: {message}")
    assert get(dst, "repos/info").json() in ({}, None)


def _flatten_export(src, uuid) -> bytes:
    r = requests.get(
        src.api(f"repo/{uuid}/transfer/export"), json={"have": None, "data": [], "flatten": True}, timeout=T
    )
    assert r.status_code == 200, r.text
    return r.content


@pytest.mark.parametrize("piece", [7, 4096, 1 << 30])
def test_with_header_rewrites_header_and_digest_at_any_chunking(pair, piece):
    src, dst = pair
    _, v2, _ = build_repo(src)
    original = _flatten_export(src, v2)
    watcher = stream.FrameWatcher()
    watcher.feed(original)
    header = renamed_flatten_header(watcher.header, "c" * 32)
    chunks = iter([original[i : i + piece] for i in range(0, len(original), piece)])
    rewritten = b"".join(with_header(chunks, header, src.url))
    # the new header, the records up to END unchanged, and END with the new stream's digest
    head = stream.RECORD_HEAD
    _, length = head.unpack_from(original, len(stream.PREAMBLE))
    body_start = pos = len(stream.PREAMBLE) + head.size + length
    while original[pos] != stream.END:
        pos += head.size + head.unpack_from(original, pos)[1]
    new_header = stream.PREAMBLE + stream.record(stream.HEADER, stream.packb(header))
    new_body = new_header + original[body_start:pos]
    digest = stream.new_digest()
    digest.update(new_body)
    kvs = stream.unpackb(original[pos + head.size :])["kvs"]
    assert kvs > 0
    assert rewritten == new_body + stream.record(
        stream.END, stream.packb({"kvs": kvs, "digest": digest.hexdigest()})
    )
    r = requests.post(dst.api(f"repo/{'c' * 32}/transfer/import"), data=rewritten, timeout=T)
    assert r.status_code == 200, r.text
    assert snapshot(dst, "c" * 32) == snapshot(src, v2)


def test_with_header_refuses_a_corrupt_source_and_passes_a_cut_one_on(pair):
    src, dst = pair
    _, v2, _ = build_repo(src)
    original = _flatten_export(src, v2)
    watcher = stream.FrameWatcher()
    watcher.feed(original)
    header = renamed_flatten_header(watcher.header, "d" * 32)
    corrupt = bytearray(original)
    corrupt[len(original) // 2] ^= 0xFF
    with pytest.raises(DVIDClientError, match="is corrupt \\(checksum mismatch\\)"):
        b"".join(with_header(iter([bytes(corrupt)]), header, src.url))
    cut = b"".join(with_header(iter([original[: len(original) // 2]]), header, src.url))
    r = requests.post(dst.api(f"repo/{'d' * 32}/transfer/import"), data=cut, timeout=T)
    assert r.status_code == 400 and "nothing was imported" in r.text
    assert get(dst, f"repo/{'d' * 32}/info").status_code == 404


def test_diverged_history_refused(pair):
    src, dst = pair
    root, v2, _ = build_repo(src)
    with DVIDClient(src.url) as a, DVIDClient(dst.url) as b:
        transfer(a, b, root)
    # the receiver grows its own master child of the root; the sender's is v2
    other = dst.newversion(root, "receiver's own")
    before = dag_of(dst, root)
    err = cli_fail("--server", src.url, "push", v2, dst.url, "-q")
    assert "diverged" in err and other in err
    assert dag_of(dst, root) == before
    # a repo whose root UUID exists elsewhere on the receiver
    src2_root = src.new_repo("second")
    r = requests.post(dst.api("repos"), json={"root": src2_root}, timeout=T)
    assert r.status_code == 200
    dst.commit(src2_root)
    dst.newversion(src2_root)
    src.commit(src2_root)
    s2 = src.newversion(src2_root)
    err = cli_fail("--server", src.url, "push", s2, dst.url, "-q")
    assert "diverged" in err


def _export_bytes(src, uuid, have=None) -> bytes:
    r = requests.get(
        src.api(f"repo/{uuid}/transfer/export"), json={"have": have, "data": [], "flatten": False}, timeout=T
    )
    assert r.status_code == 200, r.text
    return r.content


def _key_count(server) -> int:
    engine = server.manager.engine
    return sum(1 for _ in engine.scan(b"\x01", b"\x02", keys_only=True))


def _chunked_post_then_die(url: str, body: bytes, before_close=lambda: None) -> None:
    """Send part of a chunked body and close the socket abruptly: a sender killed mid-stream.
    ``before_close`` runs between the last piece and the close."""
    u = urlparse(url)
    with socket.create_connection((u.hostname, u.port)) as s:
        s.sendall(
            f"POST {u.path} HTTP/1.1\r\nHost: {u.hostname}\r\nTransfer-Encoding: chunked\r\n"
            "Content-Type: application/x-dvid-transfer\r\n\r\n".encode()
        )
        for i in range(0, len(body), 65536):
            piece = body[i : i + 65536]
            s.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        before_close()
        s.shutdown(socket.SHUT_RDWR)


def test_interrupted_transfer_leaves_receiver_unchanged_and_rerun_completes(pair):
    src, dst = pair
    root, v2, _ = build_repo(src)
    with DVIDClient(src.url) as a, DVIDClient(dst.url) as b:
        transfer(a, b, root)
    before_dag, before_keys = dag_of(dst, root), _key_count(dst)
    have = requests.get(dst.api(f"repo/{root}/transfer/have"), timeout=T).json()
    body = _export_bytes(src, v2, have)
    assert len(body) > 20_000
    import time

    def import_started() -> None:  # the receiver has reserved its ids: the import is under way
        deadline = time.time() + 20
        while time.time() < deadline and not dst.manager.transfer_markers():
            time.sleep(0.02)
        assert dst.manager.transfer_markers(), "the import never started"

    _chunked_post_then_die(dst.api(f"repo/{v2}/transfer/import"), body[: len(body) // 2], import_started)
    # the receiver notices the broken stream and removes what it wrote
    deadline = time.time() + 20
    while time.time() < deadline and (dst.manager.transfer_markers() or _key_count(dst) != before_keys):
        time.sleep(0.1)
    assert dst.manager.transfer_markers() == []
    assert _key_count(dst) == before_keys
    assert dag_of(dst, root) == before_dag
    assert get(dst, f"node/{v2}/kv/keys").status_code == 404
    # a corrupt stream (one flipped byte in a value) is refused at the end, and leaves nothing
    bad = bytearray(body)
    bad[len(body) // 2] ^= 0xFF
    r = requests.post(dst.api(f"repo/{v2}/transfer/import"), data=bytes(bad), timeout=T)
    assert r.status_code == 400 and "nothing was imported" in r.text, r.text
    assert _key_count(dst) == before_keys and dag_of(dst, root) == before_dag

    # a sender that fails mid-stream through the CLI pipe
    def die_halfway(chunks):
        sent = 0
        for chunk in chunks:
            for i in range(0, len(chunk), 4096):
                if sent >= len(body) // 2:
                    raise ConnectionError("sender killed")
                sent += len(chunk[i : i + 4096])
                yield chunk[i : i + 4096]

    with (
        DVIDClient(src.url) as a,
        DVIDClient(dst.url) as b,
        pytest.raises((DVIDClientError, ConnectionError)),
    ):
        transfer(a, b, v2, chunk_filter=die_halfway)
    deadline = time.time() + 20
    while time.time() < deadline and (dst.manager.transfer_markers() or _key_count(dst) != before_keys):
        time.sleep(0.1)
    assert _key_count(dst) == before_keys and dag_of(dst, root) == before_dag
    # rerunning completes it
    cli_ok("--server", src.url, "push", v2, dst.url, "-q")
    for u in (root, v2):
        assert snapshot(src, u) == snapshot(dst, u)


def test_leftover_marker_cleaned_at_restart(server_factory, tmp_path):
    src = server_factory()
    root, v2, _ = build_repo(src)
    store = tmp_path / "receiver"
    dst = server_factory(store_dir=store)
    with DVIDClient(src.url) as a, DVIDClient(dst.url) as b:
        transfer(a, b, root)
    before = _key_count(dst)
    # simulate a crash mid-import: reserve ids, write a record's keys, never commit
    from dvid.transfer.importer import Importer

    have = requests.get(dst.api(f"repo/{root}/transfer/have"), timeout=T).json()
    body = _export_bytes(src, v2, have)
    pos = len(stream.PREAMBLE)
    _, length = stream.RECORD_HEAD.unpack_from(body, pos)
    header = stream.unpackb(body[pos + 5 : pos + 5 + length])
    imp = Importer(dst.manager, header)
    imp.reserve()
    pos += 5 + length
    while True:
        rtype, length = stream.RECORD_HEAD.unpack_from(body, pos)
        if rtype == stream.KVS:
            imp.write(body[pos + 5 : pos + 5 + length])
            break
        pos += 5 + length
    assert _key_count(dst) > before
    dst.stop()
    dst2 = server_factory(store_dir=store)
    assert dst2.manager.transfer_markers() == []
    assert _key_count(dst2) == before
    cli_ok("--server", src.url, "push", v2, dst2.url, "-q")
    assert snapshot(src, v2) == snapshot(dst2, v2)
    wait_for_cleaning(5)


def test_open_versions_are_replaced_and_branches_transfer(pair):
    src, dst = pair
    root = src.new_repo("open")
    src.new_instance(root, "keyvalue", "kv")
    src.new_instance(root, "keyvalue", "flat", versioned="false")
    post(src, f"node/{root}/kv/key/a", data=b"1")
    post(src, f"node/{root}/flat/key/u", data=b"u1")
    cli_ok("--server", src.url, "push", root, dst.url, "-q")
    assert get(dst, f"node/{root}/status").json()["Locked"] is False
    # the open root changes on the sender, is committed and grows a branch and a master child
    post(src, f"node/{root}/kv/key/a", data=b"2")
    post(src, f"node/{root}/kv/key/b", data=b"3")
    src.commit(root)
    master = src.newversion(root)
    r = requests.post(src.api(f"node/{root}/branch"), json={"branch": "side"}, timeout=T)
    side = r.json()["child"]
    post(src, f"node/{side}/kv/key/c", data=b"side")
    src.commit(side)
    cli_ok("--server", src.url, "push", side, dst.url, "-q")
    cli_ok("--server", src.url, "push", master, dst.url, "-q")
    assert dag_of(dst, root) == dag_of(src, root)
    for u in (root, side, master):
        assert snapshot_kv(src, u) == snapshot_kv(dst, u)
        assert get(dst, f"node/{u}/flat/key/u").content == b"u1"
    assert get(dst, f"node/{root}/status").json()["Locked"] is True
    # the replaced open root's old keys are cleaned up in the background
    wait_for_cleaning(10)
    assert dst.manager.transfer_markers() == []
    # the receiver's own branch with a name the sender then uses is a divergence
    r = requests.post(dst.api(f"node/{side}/branch"), json={"branch": "mine"}, timeout=T)
    assert r.status_code == 200
    r = requests.post(src.api(f"node/{side}/branch"), json={"branch": "mine"}, timeout=T)
    theirs = r.json()["child"]
    err = cli_fail("--server", src.url, "push", theirs, dst.url, "-q")
    assert "diverged" in err


def _open_repo(src) -> str:
    """A repo whose open root holds a kv and an unversioned instance."""
    root = src.new_repo("replica")
    src.new_instance(root, "keyvalue", "kv")
    src.new_instance(root, "keyvalue", "flat", versioned="false")
    post(src, f"node/{root}/kv/key/a", data=b"1")
    post(src, f"node/{root}/kv/key/gone", data=b"x")
    post(src, f"node/{root}/flat/key/u", data=b"u1")
    return root


def _refresh_replica(src, dst, root: str, round_: int) -> None:
    """Write more on the sender at the open root, push again: the receiver's replica follows."""
    post(src, f"node/{root}/kv/key/a", data=f"round {round_}".encode())
    post(src, f"node/{root}/kv/key/r{round_}", data=b"new")
    requests.delete(src.api(f"node/{root}/kv/key/gone"), timeout=T).raise_for_status()
    cli_ok("--server", src.url, "push", root, dst.url, "-q")
    assert snapshot_kv(dst, root) == snapshot_kv(src, root)
    assert "gone" not in snapshot_kv(dst, root)
    assert get(dst, f"node/{root}/status").json()["Locked"] is False
    assert dag_of(dst, root) == dag_of(src, root)


def test_open_version_replica_is_refreshed_by_a_later_push(pair):
    src, dst = pair
    root = _open_repo(src)
    cli_ok("--server", src.url, "push", root, dst.url, "-q")
    assert snapshot_kv(dst, root) == snapshot_kv(src, root)
    # a refreshed replica is a replica again, so it can be refreshed any number of times
    for round_ in (1, 2):
        _refresh_replica(src, dst, root, round_)
    # one replica record: each replacement moved it to the new local version id
    version = dst.manager.resolve(root)[1].version
    assert _replica_records(dst) == [keys.u32be(version)]
    wait_for_cleaning(10)
    assert dst.manager.transfer_markers() == []
    # committed on the sender, the replica becomes an ordinary committed version here
    src.commit(root)
    cli_ok("--server", src.url, "push", root, dst.url, "-q")
    assert get(dst, f"node/{root}/status").json()["Locked"] is True
    assert snapshot_kv(dst, root) == snapshot_kv(src, root)
    assert _replica_records(dst) == []


def _replica_records(server) -> list[bytes]:
    prefix = keys.metadata_key(TRANSFER_CLASS, b"replica")
    engine = server.manager.engine
    return [k[len(prefix) :] for k, _ in engine.scan(prefix, prefix + b"\xff", keys_only=True)]


def test_replica_marker_survives_restart(server_factory, tmp_path):
    src = server_factory()
    store = tmp_path / "receiver"
    dst = server_factory(store_dir=store)
    root = _open_repo(src)
    cli_ok("--server", src.url, "push", root, dst.url, "-q")
    dst.stop()
    dst = server_factory(store_dir=store)
    # the replica record is not mistaken for an interrupted import's marker at startup
    assert dst.manager.transfer_markers() == []
    assert snapshot_kv(dst, root) == {"a": b"1", "gone": b"x"}
    _refresh_replica(src, dst, root, 1)
    wait_for_cleaning(10)
    dst.stop()
    dst = server_factory(store_dir=store)
    _refresh_replica(src, dst, root, 2)
    assert get(dst, f"node/{root}/flat/key/u").content == b"u1"
    wait_for_cleaning(10)


def test_local_open_version_is_never_replaced(pair):
    src, dst = pair
    root = _open_repo(src)
    src.commit(root)
    cli_ok("--server", src.url, "push", root, dst.url, "-q")
    # both servers make an open child with the same (assigned) UUID and write different data to it
    with DVIDClient(dst.url) as b, DVIDClient(src.url) as a:
        child = b.newversion(root, "receiver's own", child_uuid="0123456789abcdef0123456789abcdef")
        assert a.newversion(root, "sender's", child_uuid=child) == child
    post(dst, f"node/{child}/kv/key/a", data=b"written on the receiver")
    post(dst, f"node/{child}/kv/key/mine", data=b"receiver only")
    post(src, f"node/{child}/kv/key/a", data=b"written on the sender")
    before_kv, before_dag, before_keys = snapshot_kv(dst, child), dag_of(dst, root), _key_count(dst)
    err = cli_fail("--server", src.url, "push", child, dst.url, "-q")
    assert child in err and "not received from a transfer" in err and "fresh server" in err
    # the same refusal straight from the import endpoint: 409, and nothing changed
    have = requests.get(dst.api(f"repo/{root}/transfer/have"), timeout=T).json()
    r = requests.post(
        dst.api(f"repo/{child}/transfer/import"), data=_export_bytes(src, child, have), timeout=T
    )
    assert r.status_code == 409, r.text
    assert "is open on this server and was not received from a transfer" in r.text
    assert "local writes would be lost" in r.text
    assert snapshot_kv(dst, child) == before_kv
    assert snapshot_kv(dst, child)["a"] == b"written on the receiver"
    assert dag_of(dst, root) == before_dag and _key_count(dst) == before_keys
    assert dst.manager.transfer_markers() == []
    # committing it on the sender does not make the receiver's open copy replaceable either
    src.commit(child)
    err = cli_fail("--server", src.url, "push", child, dst.url, "-q")
    assert "not received from a transfer" in err
    assert snapshot_kv(dst, child) == before_kv


def test_receivers_own_open_root_is_never_replaced(pair):
    src, dst = pair
    root = _open_repo(src)
    # the receiver made a repo with the same root UUID itself and wrote to it
    r = requests.post(dst.api("repos"), json={"root": root}, timeout=T)
    assert r.status_code == 200, r.text
    dst.new_instance(root, "keyvalue", "other")
    post(dst, f"node/{root}/other/key/k", data=b"local")
    err = cli_fail("--server", src.url, "push", root, dst.url, "-q")
    assert "not received from a transfer" in err
    assert get(dst, f"node/{root}/other/key/k").content == b"local"


def test_export_to_an_http_1_0_client(server):
    # fuzz (issue 11): the export forced chunked encoding, which HTTP/1.0 forbids: a 500
    root = server.new_repo("xfer")
    server.new_instance(root, "keyvalue", "kv")
    post(server, f"node/{root}/kv/key/a", data=b"value")
    want = requests.post(server.api(f"repo/{root}/transfer/export"), json={}, timeout=T)
    assert want.status_code == 200 and want.content.startswith(stream.PREAMBLE)
    with socket.create_connection(("127.0.0.1", server.config.server.port), timeout=T) as sock:
        sock.sendall(
            f"POST /api/repo/{root}/transfer/export HTTP/1.0\r\nContent-Length: 2\r\n\r\n{{}}".encode()
        )
        answer = b"".join(iter(lambda: sock.recv(1 << 16), b""))  # HTTP/1.0: the body ends at close
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") and b"chunked" not in head.lower()
    assert body == want.content
