"""The dvid command line against real servers over loopback, and `dvid serve` as a real process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner, Result

from dvid.cli import cli, split_settings
from dvid.cli_format import format_dag
from dvid.client import DVIDClient, DVIDClientError
from tests.serverutil import free_port

ROOT_UUID = "0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("DVID_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("DVID_SERVER", raising=False)


def dvid(url: str, *args: str, input: str | None = None) -> Result:
    """Run the CLI in-process against the server at ``url``."""
    return CliRunner().invoke(cli, ["--server", url, *args], input=input)


def ok(url: str, *args: str) -> str:
    result = dvid(url, *args)
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


def failed(url: str, *args: str) -> str:
    """Run a command that must fail cleanly: exit 1, one `dvid: ...` message on stderr, no traceback."""
    result = dvid(url, *args)
    assert result.exit_code == 1, (args, result.output)
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.stderr.startswith("dvid: "), result.stderr
    assert "Traceback" not in result.output
    return result.stderr


def new_repo(url: str, *args: str) -> str:
    out = ok(url, "repos", "new", *args)
    assert out.startswith("New repo ") and " created with head node " in out
    return out.split()[-1]


def repo_info(server, uuid: str) -> dict:
    r = requests.get(server.api(f"repo/{uuid}/info"), timeout=10)
    r.raise_for_status()
    return r.json()


# ---- repos ---------------------------------------------------------------------------------------
def test_repos_new_list_and_info(server):
    url = server.url
    out = ok(url, "repos", "new", "fib19", "FIB-19 test data", f"UUID={ROOT_UUID}")
    assert out == f'New repo "fib19" created with head node {ROOT_UUID}\n'
    other = new_repo(url)  # alias and description are optional
    assert len(other) == 32

    listing = ok(url, "repos", "list")
    header, *rows = listing.splitlines()
    assert header.split() == ["ROOT", "ALIAS", "DESCRIPTION", "VERSIONS", "INSTANCES"]
    row = next(r for r in rows if r.startswith(ROOT_UUID))
    assert "fib19" in row and "FIB-19 test data" in row
    raw = json.loads(ok(url, "repos", "list", "--json"))
    assert set(raw) == {ROOT_UUID, other}
    assert raw[ROOT_UUID]["Alias"] == "fib19"

    info = ok(url, "repo", ROOT_UUID[:6], "info")
    assert f'Repo "fib19" with root {ROOT_UUID}' in info
    assert "Description: FIB-19 test data" in info
    assert "Data instances: none" in info
    assert f"  {ROOT_UUID}  master  open" in info
    as_json = json.loads(ok(url, "repo", ROOT_UUID, "info", "--json"))
    assert as_json["Root"] == ROOT_UUID and as_json["Description"] == "FIB-19 test data"


def test_new_instance_with_settings(server):
    url = server.url
    uuid = new_repo(url, "r")
    out = ok(
        url, "repo", uuid, "new", "keyvalue", "kv", "Versioned=false", "COMPRESSION=gzip", "tags=a=1,b=2"
    )
    assert out == f'Data "kv" [keyvalue] added to node {uuid}\n'
    base = repo_info(server, uuid)["DataInstances"]["kv"]["Base"]
    assert base["Versioned"] is False
    assert "gzip" in base["Compression"].lower()
    assert base["Tags"] == {"a": "1", "b": "2"}
    ok(url, "repo", uuid, "new", "keyvalue", "kv2")
    info = ok(url, "repo", uuid, "info")
    assert "kv   keyvalue  unversioned" in info and "kv2  keyvalue  versioned" in info
    assert "keyvalue" in ok(url, "types")

    assert "not supported" in failed(url, "repo", uuid, "new", "nosuchtype", "x")
    assert "key=value" in failed(url, "repo", uuid, "new", "keyvalue", "kv3", "oops")
    assert failed(url, "repo", uuid, "new", "keyvalue", "kv")  # name taken


def test_versions_commit_newversion_branch_tag_note_log_status(server):
    url = server.url
    root = new_repo(url, "v")
    assert ok(url, "node", root, "status") == "open\n"
    assert json.loads(ok(url, "node", root, "status", "--json")) == {"Locked": False}
    ok(url, "node", root, "note", "first", "version")
    assert ok(url, "node", root, "note") == "first version\n"
    ok(url, "node", root, "log", "imported", "checked")
    assert [line.split("  ", 1)[1] for line in ok(url, "node", root, "log").splitlines()] == [
        "imported",
        "checked",
    ]
    # no children of an open version
    assert failed(url, "node", root, "newversion")

    assert (
        ok(url, "node", root, "commit", "-m", "done", "--log", "m1", "--log", "m2") == f"Committed {root}\n"
    )
    assert ok(url, "node", root, "status") == "locked (committed)\n"
    assert "locked" in failed(url, "node", root, "note", "too late")
    assert "locked" in failed(url, "node", root, "commit")
    assert ok(url, "node", root, "note") == "done\n"
    assert ok(url, "node", root, "log").count("\n") == 4

    chosen = "fedcba9876543210fedcba9876543210"
    child = ok(url, "node", root, "newversion", "-m", "second", "--uuid", chosen).strip()
    assert child == chosen
    feat = ok(url, "node", root, "branch", "feature", "-m", "try things").strip()
    assert len(feat) == 32
    tag = ok(url, "node", root, "tag", "v1.0", "-m", "release").strip()
    assert tag == "v1.0"
    assert "already exists" in failed(url, "node", root, "branch", "feature")
    assert "master" in failed(url, "repo", root, "branch", "master")

    # DVID grammar on `repo`: notes "branch of <uuid>"
    out = ok(url, "repo", root, "branch", "other")
    assert out.startswith("Branch ") and out.endswith(f" added to node {root}\n")
    other = out.split()[1]
    ok(url, "node", child, "commit")
    out = ok(url, "repo", child, "newversion")
    assert out.endswith(f" added to node {child}\n")
    grandchild = out.split()[1]

    nodes = repo_info(server, root)["DAG"]["Nodes"]
    assert nodes[other]["Branch"] == "other" and nodes[other]["Note"] == f"branch of {root}"
    assert nodes[feat]["Branch"] == "feature" and nodes[feat]["Note"] == "try things"
    assert nodes[grandchild]["Note"] == f"branch of {child}"

    info = ok(url, "repo", root, "info").splitlines()
    tree = info[info.index("Versions (6):") + 1 :]
    assert tree[0].startswith(f"  {root}  master  locked") and '"done"' in tree[0]
    # branches starting at the root are indented under it; master continues in the root's column
    assert any(line.startswith(f"    {feat}  feature  open") for line in tree)
    assert any(line.startswith(f"    {other}  other  open") for line in tree)
    assert f"  {child}  master  locked" in "\n".join(tree)
    assert any(line.startswith(f"  {grandchild}  master  open") for line in tree)


def test_merge(server):
    url = server.url
    root = new_repo(url, "m")
    ok(url, "repo", root, "new", "keyvalue", "kv")
    ok(url, "node", root, "commit")
    a = ok(url, "node", root, "newversion").strip()
    b = ok(url, "node", root, "branch", "side").strip()
    assert "commit" in failed(url, "repo", a, "merge", b)  # open parents can't merge
    ok(url, "node", a, "commit")
    ok(url, "node", b, "commit")
    out = ok(url, "repo", a, "merge", b)
    assert out.startswith(f"Parents [{a} {b}] merged into node ")
    child = out.split()[-1]
    nodes = repo_info(server, root)["DAG"]["Nodes"]
    parents = {p for p in nodes[child]["Parents"]}
    assert parents == {nodes[a]["VersionID"], nodes[b]["VersionID"]}
    assert nodes[child]["Note"] == f"merge of parents [{a} {b}]"
    info = ok(url, "repo", root, "info")
    assert f"merge of {a[:8]}, {b[:8]}" in info
    assert f"{child}  (merge, listed under {a[:8]})" in info
    assert "partial match" in failed(url, "repo", a, "merge", "ffffff")


def test_merge_needs_another_parent(server):
    result = dvid(server.url, "repo", "abc", "merge")
    assert result.exit_code == 1 and "Missing argument" in result.stderr


# ---- admin operations ----------------------------------------------------------------------------
def test_delete_and_rename_need_admin_token_the_server_has(server):
    url = server.url
    uuid = new_repo(url, "x")
    ok(url, "repo", uuid, "new", "keyvalue", "kv")
    assert "admin token" in failed(url, "repo", uuid, "rename", "kv", "kv2")
    assert "admin token" in failed(url, "--admin-token", "guess", "repo", uuid, "delete", "kv", "--yes")
    assert "admin token" in failed(url, "repos", "delete", uuid, "--yes")
    assert "kv" in repo_info(server, uuid)["DataInstances"]


def test_delete_and_rename_with_admin_token(server_factory, monkeypatch):
    server = server_factory(admin_token="secret")
    url = server.url
    uuid = new_repo(url, "x")
    ok(url, "repo", uuid, "new", "keyvalue", "kv")
    ok(url, "repo", uuid, "new", "keyvalue", "other")

    assert "admin token" in failed(url, "repo", uuid, "rename", "kv", "kv2")
    assert "admin token" in failed(url, "--admin-token", "wrong", "repo", uuid, "rename", "kv", "kv2")
    out = ok(url, "--admin-token", "secret", "repo", uuid, "rename", "kv", "kv2")
    assert out == f'Renamed data instance "kv" to "kv2" from DAG subgraph @ root {uuid}\n'
    assert set(repo_info(server, uuid)["DataInstances"]) == {"kv2", "other"}

    # deleting asks for confirmation; without a terminal it refuses unless --yes
    assert "--yes" in failed(url, "--admin-token", "secret", "repo", uuid, "delete", "kv2")
    assert "no data instance 'nope'" in failed(
        url, "--admin-token", "secret", "repo", uuid, "delete", "nope", "-y"
    )
    monkeypatch.setenv("DVID_ADMIN_TOKEN", "secret")  # the token from the environment
    out = ok(url, "repo", uuid, "delete", "kv2", "--yes")
    assert out == f'Started deletion of data instance "kv2" from repo with root {uuid}\n'
    assert set(repo_info(server, uuid)["DataInstances"]) == {"other"}
    monkeypatch.delenv("DVID_ADMIN_TOKEN")

    # on a terminal the question is asked
    monkeypatch.setattr("dvid.cli._interactive", lambda: True)
    result = dvid(url, "--admin-token", "secret", "repo", uuid, "delete", "other", input="n\n")
    assert result.exit_code == 1 and 'Delete data instance "other"' in result.output
    assert "nothing deleted" in result.stderr
    result = dvid(url, "--admin-token", "secret", "repo", uuid, "delete", "other", input="y\n")
    assert result.exit_code == 0 and "Started deletion" in result.stdout
    assert repo_info(server, uuid)["DataInstances"] == {}
    monkeypatch.setattr("dvid.cli._interactive", lambda: False)

    # the whole repo: `repo UUID delete` without a name, and `repos delete UUID`
    assert "--yes" in failed(url, "--admin-token", "secret", "repo", uuid, "delete")
    assert (
        ok(url, "--admin-token", "secret", "repo", uuid, "delete", "--yes")
        == f"Started deletion of repo {uuid}.\n"
    )
    assert "could not find" in failed(url, "repo", uuid, "info")
    second = new_repo(url, "y")
    assert "admin token" in failed(url, "repos", "delete", second, "--yes")
    assert ok(url, "--admin-token", "secret", "repos", "delete", second[:8], "-y") == (
        f"Started deletion of repo {second}.\n"
    )
    assert ok(url, "repos", "list") == "No repos.\n"


# ---- errors --------------------------------------------------------------------------------------
def test_no_server_answers():
    url = f"http://127.0.0.1:{free_port()}"
    err = failed(url, "repos", "list")
    assert err == f"dvid: no dvid server answers at {url} (is `dvid serve` running?)\n"
    failed(url, "node", "abc", "commit")
    # `about` reports local facts and does not fail without a server
    result = dvid(url, "about")
    assert result.exit_code == 0, result.output
    assert "DVID API version" in result.stdout and "keyvalue" in result.stdout
    assert "no dvid server answers" in result.stdout


def test_server_errors_and_bad_arguments(server, tmp_path):
    url = server.url
    err = failed(url, "repo", "ffffffff", "info")
    assert "ffffffff" in err and "(/api/" not in err  # the server's path suffix is dropped
    assert failed(url, "node", "ffffffff", "status")
    assert "Missing argument" in failed(url, "repo", "abc", "new", "keyvalue")
    assert "No such command" in failed(url, "repo", "abc", "frobnicate")
    assert "No such command" in failed(url, "frobnicate")
    assert "unknown setting 'foo'" in failed(url, "repos", "new", "a", "foo=bar")
    assert "at most ALIAS and DESCRIPTION" in failed(url, "repos", "new", "a", "b", "c")
    assert "not a valid float" in failed(url, "--timeout", "soon", "repos", "list")
    err = failed(url, "serve", "--readonly", "--fullwrite")
    assert "mutually exclusive" in err
    assert "does not exist" in failed(url, "serve", "--config", str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n")
    assert "not valid TOML" in failed(url, "serve", str(bad))
    assert "once" in failed(url, "serve", str(bad), "--config", str(bad))
    assert "not in the range" in failed(url, "serve", "--port", "99999")


def test_client_errors_carry_status_and_message(server):
    with DVIDClient(server.url) as client:
        with pytest.raises(DVIDClientError) as excinfo:
            client.repo_info("ffffffff")
        assert excinfo.value.status == 404
        assert not str(excinfo.value).endswith(").")
        assert excinfo.value.body.endswith(").\n")
        root = client.new_repo("c")
        with pytest.raises(DVIDClientError) as excinfo:
            client.delete_repo(root)
        assert excinfo.value.status == 403
        with pytest.raises(DVIDClientError):
            client.merge([root])
        assert client.heartbeat()
        client.new_instance(root, "keyvalue", "kv")
        assert client.instance_request("GET", root, "kv", "help").text
    assert not DVIDClient(f"127.0.0.1:{free_port()}", timeout=2).heartbeat()


# ---- about, types, help --------------------------------------------------------------------------
def test_about_types_help(server):
    url = server.url
    about = ok(url, "about")
    assert "DVID API version" in about and "v1.0.0" in about
    engines = next(line for line in about.splitlines() if line.startswith("Storage engines"))
    assert re.search(
        r"leveldb \(plyvel \d+\.\d+[^)]*\), postgres \(psycopg \d+\.\d+[^)]*\), memory$", engines
    )
    assert f"Server {url}:" in about and "DVID Version" in about
    assert ok(url, "types").startswith("No datatypes in use")
    compiled = [line.split()[0] for line in ok(url, "types", "--compiled").splitlines()]
    assert "keyvalue" in compiled and "uint8blk" in compiled
    assert compiled == sorted(compiled)
    assert ok(url, "help", "keyvalue").strip()
    assert "not supported" in failed(url, "help", "nosuchtype")
    usage = ok(url, "help")
    assert "Usage: dvid" in usage and "repos" in usage and "serve" in usage
    assert ok(url, "--version").strip().startswith("dvid ")
    assert "Usage: dvid" in CliRunner().invoke(cli, []).stdout


def test_split_settings_and_long_dag():
    assert split_settings(["a", "Key=v", "x=y=z", "=no"]) == (["a", "=no"], {"key": "v", "x": "y=z"})
    n = 3000  # a long linear history prints in one column, without recursion
    nodes = {
        f"u{i}": {
            "UUID": f"u{i}",
            "VersionID": i,
            "Branch": "",
            "Locked": i < n - 1,
            "Parents": [i - 1] if i else [],
            "Children": [i + 1] if i < n - 1 else [],
        }
        for i in range(n)
    }
    lines = format_dag({"Root": "u0", "Nodes": nodes})
    assert len(lines) == n and all(line.startswith("  u") for line in lines)


def test_python_dash_m_dvid():
    proc = subprocess.run(
        [sys.executable, "-m", "dvid", "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == 0 and proc.stdout.startswith("dvid ")


# ---- dvid serve as a real process ----------------------------------------------------------------
def _serve(store: Path, port: int, log: Path, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("DVID_ADMIN_TOKEN", "DVID_SERVER")}
    return subprocess.Popen(
        [sys.executable, "-m", "dvid", "serve", "--store", str(store), "--port", str(port), *extra],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
        cwd=store.parent,
        env=env,
    )


def _wait_for_heartbeat(proc: subprocess.Popen, url: str, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dvid serve exited with {proc.returncode}: {log.read_text()}")
        try:
            if requests.get(f"{url}/api/heartbeat", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    pytest.fail(f"dvid serve did not answer within {timeout}s: {log.read_text()}")


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=10)


def test_serve_process_sigterm_and_restart_persistence(tmp_path):
    store = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    try:
        log1 = tmp_path / "serve1.log"
        procs.append(first := _serve(store, port, log1))
        _wait_for_heartbeat(first, url, log1)
        r = requests.post(f"{url}/api/repos", json={"alias": "kept", "description": "survives"}, timeout=10)
        assert r.status_code == 200, r.text
        root = r.json()["root"]

        # a second server on the same store cannot open it: one clear line, exit 1
        log2 = tmp_path / "serve2.log"
        procs.append(second := _serve(store, free_port(), log2))
        assert second.wait(timeout=20) == 1
        err = log2.read_text()
        assert "Traceback" not in err
        where = store.resolve()
        assert err.startswith(f"dvid: cannot open LevelDB store at {where}: it is locked (IO error: ")
        assert "another dvid server" in err and "b'" not in err
        assert err.count("\n") == 1

        start = time.monotonic()
        assert _stop(first) == 0
        assert time.monotonic() - start < 5

        log3 = tmp_path / "serve3.log"
        procs.append(third := _serve(store, port, log3))
        _wait_for_heartbeat(third, url, log3)
        info = requests.get(f"{url}/api/repos/info", timeout=10).json()
        assert info[root]["Alias"] == "kept" and info[root]["Description"] == "survives"
        assert _stop(third) == 0
        assert "dvid serving" in log3.read_text()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def test_pyramid_command_builds_levels(server):
    import numpy as np
    import requests

    uuid = server.new_repo()
    server.new_instance(uuid, "uint8blk", "gray")
    vol = np.arange(64 * 64 * 64, dtype=np.uint32).astype(np.uint8).reshape(64, 64, 64)
    r = requests.post(
        server.api(f"node/{uuid}/gray/raw/0_1_2/64_64_64/0_0_0"), data=vol.tobytes(), timeout=10
    )
    assert r.status_code == 200
    out = ok(server.url, "node", uuid, "pyramid", "gray", "--levels", "2")
    assert out.strip() == "gray: pyramid of 2 levels (gray_1, gray_2)"
    info = requests.get(server.api(f"repo/{uuid}/info"), timeout=10).json()["DataInstances"]
    assert info["gray_2"]["Extended"]["VoxelSize"] == [32.0, 32.0, 32.0]
    assert "--levels" in failed(server.url, "node", uuid, "pyramid", "gray", "--levels", "0")
