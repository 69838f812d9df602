"""Server-, repo- and node-level endpoints over real HTTP (loopback, LevelDB)."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
import requests

from dvid.datatype.common.request import parse_bool
from dvid.errors import BadRequest

HEX32 = re.compile(r"^[0-9a-f]{32}$")
REPO_INFO_KEYS = {
    "Root", "Alias", "Description", "Log", "Properties", "DataInstances", "DAG",
    "MutationID", "SavedMutationID", "Created", "Updated",
}  # fmt: skip
NODE_KEYS = {
    "Branch",
    "Note",
    "Log",
    "UUID",
    "VersionID",
    "Locked",
    "Parents",
    "Children",
    "Created",
    "Updated",
}
BASE_KEYS = {
    "TypeName", "TypeURL", "TypeVersion", "DataUUID", "Name", "RepoUUID", "Compression", "Checksum",
    "Syncs", "Versioned", "KVStore", "LogStore", "Tags",
}  # fmt: skip


def get(server, path, **kw):
    return requests.get(server.api(path), timeout=10, **kw)


def post(server, path, **kw):
    return requests.post(server.api(path), timeout=10, **kw)


def assert_error(r: requests.Response, status: int, fragment: str = "") -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.text.endswith(f" ({unquote(r.request.path_url.split('?')[0])}).\n"), r.text
    assert fragment in r.text, r.text


# ---- server level --------------------------------------------------------------------------------


def test_server_info_fields_are_strings_and_version_parses_like_neuclease(server):
    r = get(server, "server/info")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    info = r.json()
    for key in ("Cores", "Maximum Cores", "Datastore Version", "DVID Version", "Storage backend",
                "Server time", "Server uptime", "Host", "Note"):  # fmt: skip
        assert isinstance(info[key], str), key
    version = info["DVID Version"]
    assert version.startswith("v")
    fields = re.split(r"[.-]", version[1:])[:3]
    assert all(f.isdigit() for f in fields)
    assert "leveldb" in info["Storage backend"]
    assert "Mode" not in info


@pytest.mark.parametrize(
    ("rwmode", "mode"), [("readonly", "read only"), ("fullwrite", "allow writes on committed nodes")]
)
def test_server_info_reports_mode(server_factory, rwmode, mode):
    srv = server_factory(rwmode=rwmode)
    assert get(srv, "server/info").json()["Mode"] == mode


def test_heartbeat_cors_and_preflight(server):
    r = get(server, "heartbeat?u=someone")
    assert (r.status_code, r.text) == (200, "OK")
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    err = get(server, "node/0123/status")
    assert err.status_code == 404
    assert err.headers["Access-Control-Allow-Origin"] == "*"
    pre = requests.options(server.api("repos"), headers={"Access-Control-Request-Method": "POST"}, timeout=5)
    assert pre.status_code == 200
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert pre.headers["Access-Control-Allow-Origin"] == "*"


def test_types_compiled_vs_in_use(server):
    compiled = get(server, "server/compiled-types").json()
    assert compiled["keyvalue"] == "github.com/janelia-flyem/dvid/datatype/keyvalue"
    assert get(server, "server/types").json() == {}
    uuid = server.new_repo()
    server.new_instance(uuid, "keyvalue", "kv")
    assert get(server, "server/types").json() == {"keyvalue": compiled["keyvalue"]}


def test_help_pages(server):
    page = get(server, "help")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert 'href="/api/help/keyvalue"' in page.text
    assert "/api/repo/{uuid}/merge" in page.text
    kv = get(server, "help/keyvalue")
    assert kv.status_code == 200 and kv.headers["Content-Type"].startswith("text/plain")
    assert "keyrangevalues" in kv.text
    assert_error(get(server, "help/nosuchtype"), 404, 'Data type "nosuchtype" is not supported')


def test_load_reports_dvid_fields(server):
    load = get(server, "load").json()
    for key in ("file bytes read", "key bytes read", "GET requests", "PUT requests", "handlers active"):
        assert isinstance(load[key], int)


def test_unknown_route_is_404_with_message(server):
    assert_error(get(server, "nothing/here"), 404, "Could not find the URL")


# ---- repos ---------------------------------------------------------------------------------------


def test_new_repo_and_repo_info_shape(server):
    r = post(server, "repos", json={"alias": "mine", "description": "a test"})
    assert r.status_code == 200
    root = r.json()["root"]
    assert HEX32.match(root)
    info = get(server, f"repo/{root[:6]}/info").json()
    assert set(info) == REPO_INFO_KEYS
    assert (info["Root"], info["Alias"], info["Description"]) == (root, "mine", "a test")
    assert info["Properties"] == {} and info["DataInstances"] == {}
    assert info["DAG"]["Root"] == root
    node = info["DAG"]["Nodes"][root]
    assert set(node) == NODE_KEYS
    assert (
        node["Branch"] == "" and node["Locked"] is False and node["Parents"] == [] and node["Children"] == []
    )
    assert isinstance(node["VersionID"], int)
    assert info["MutationID"] >= 1_000_000_000 and info["SavedMutationID"] > info["MutationID"]
    all_info = get(server, "repos/info").json()
    assert list(all_info) == [root] and all_info[root]["Alias"] == "mine"


def test_new_repo_bodies(server):
    assert post(server, "repos", data=b"").status_code == 200
    assigned = "0123456789abcdef0123456789abcdef"
    r = post(server, "repos", json={"root": assigned})
    assert r.json() == {"root": assigned}
    assert_error(post(server, "repos", json={"root": assigned}), 409, "already exists")
    assert_error(post(server, "repos", json={"root": "not-hex"}), 400, "32 character hexadecimal")
    assert_error(post(server, "repos", json={"alias": 3}), 400, "Setting for 'alias' was not a string")
    assert_error(post(server, "repos", data=b"{oops"), 400, "Malformed JSON")
    assert_error(post(server, "repos", data=b"[1,2]"), 400, "expected an object")
    assert len(get(server, "repos/info").json()) == 2


def test_head_repo_and_info_update(server):
    root = server.new_repo()
    r = requests.head(server.api(f"repo/{root}"), timeout=5)
    assert r.status_code == 200
    assert requests.head(server.api("repo/ffffffff"), timeout=5).status_code == 404
    assert post(server, f"repo/{root}/info", json={"alias": "renamed"}).status_code == 200
    info = get(server, f"repo/{root}/info").json()
    assert (info["Alias"], info["Description"]) == ("renamed", "")
    assert_error(
        post(server, f"repo/{root}/info", json={"description": 5}), 400, "'description' must be a string"
    )


def test_instance_creation_settings_and_errors(server):
    root = server.new_repo()
    r = post(
        server,
        f"repo/{root}/instance",
        json={
            "typename": "keyvalue",
            "dataname": "kv",
            "Versioned": "false",
            "Compression": "gzip:3",
            "Checksum": "crc32",
            "Tags": "a=1,b=2",
        },
    )
    assert r.json() == {"result": f"Added kv [keyvalue] to node {root}"}
    base = get(server, f"node/{root}/kv/info").json()["Base"]
    assert set(base) == BASE_KEYS
    assert base["Versioned"] is False
    assert base["Compression"] == "gzip compression, level 3"
    assert base["Checksum"] == "No checksum"  # gzip never carries a checksum
    assert base["Tags"] == {"a": "1", "b": "2"}
    assert base["RepoUUID"] == root and HEX32.match(base["DataUUID"])
    ok = post(
        server, f"repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv2", "versioned": True}
    )
    assert ok.status_code == 200
    cases = [
        (
            {"typename": "keyvalue", "dataname": "x", "versioned": 1},
            400,
            "Setting for 'versioned' was not a string",
        ),
        ({"typename": "keyvalue", "dataname": "x", "BlockSize": [1]}, 400, "was not a string"),
        ({"dataname": "x"}, 400, "valid 'typename'"),
        ({"typename": "keyvalue"}, 400, "valid 'dataname'"),
        ({"typename": "nosuch", "dataname": "x"}, 400, 'Data type "nosuch" is not supported'),
        ({"typename": "keyvalue", "dataname": "kv"}, 409, 'Data named "kv" already exists'),
        ({"typename": "keyvalue", "dataname": "log"}, 400, "reserved name"),
        (
            {"typename": "keyvalue", "dataname": "x", "Compression": "zip"},
            400,
            "Illegal compression specified: zip",
        ),
        ({"typename": "keyvalue", "dataname": "x", "Checksum": "md5"}, 400, "Illegal checksum"),
        ({"typename": "keyvalue", "dataname": "x", "versioned": "maybe"}, 400, "must be true or false"),
        ({"typename": "keyvalue", "dataname": "x", "Tags": "novalue"}, 400, "key=value"),
        ({"typename": "keyvalue", "dataname": "a/b"}, 400, "may not contain '/'"),
    ]
    for body, status, fragment in cases:
        assert_error(post(server, f"repo/{root}/instance", json=body), status, fragment)
    assert sorted(get(server, f"repo/{root}/info").json()["DataInstances"]) == ["kv", "kv2"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("ON", True), (" 1 ", True), ("false", False), ("Off", False), ("0", False)],
)
def test_booleans_of_queries_and_settings(value, expected):
    assert parse_bool(value, "flag") is expected
    assert parse_bool(value, "versioned", None, what="setting") is expected


def test_boolean_defaults_json_booleans_and_refusals():
    assert parse_bool(None, "flag") is False and parse_bool("", "flag", True) is True
    assert parse_bool(True, "versioned", None, what="setting") is True
    assert parse_bool(False, "versioned", None, what="setting") is False
    with pytest.raises(BadRequest, match="setting 'versioned' must be true or false"):
        parse_bool("", "versioned", None, what="setting")
    with pytest.raises(BadRequest, match="query parameter 'flag' must be true or false"):
        parse_bool("yes", "flag")


def test_instance_on_committed_node_needs_fullwrite(server, server_factory):
    root = server.new_repo()
    server.commit(root)
    assert_error(
        post(server, f"repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"}),
        409,
        "cannot be created on locked node",
    )
    full = server_factory(rwmode="fullwrite")
    root2 = full.new_repo()
    full.commit(root2)
    full.new_instance(root2, "keyvalue", "kv")


def test_repo_log(server):
    root = server.new_repo()
    assert post(server, f"repo/{root}/log", json={"log": ["first", "second"]}).status_code == 200
    log = get(server, f"repo/{root}/log").json()["log"]
    assert [entry.split("  ", 1)[1] for entry in log] == ["first", "second"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", log[0])
    assert_error(post(server, f"repo/{root}/log", json={"log": "x"}), 400, "list of strings")
    assert_error(post(server, f"repo/{root}/log", json={}), 400, "'log'")


# ---- nodes and the DAG ---------------------------------------------------------------------------


def test_commit_newversion_branch_and_dag_json(server):
    root = server.new_repo()
    assert_error(post(server, f"node/{root}/commit", data=b""), 400, "Malformed JSON")
    assert get(server, f"node/{root}/status").json() == {"Locked": False}
    assert_error(post(server, f"node/{root}/newversion"), 409, "can't branch an unlocked node")
    r = post(server, f"node/{root}/commit", json={"note": "ingest done", "log": ["ok"]})
    assert r.json() == {"committed": root}
    assert get(server, f"node/{root}/commit").json() == {"Locked": True}
    assert_error(post(server, f"node/{root}/commit", json={}), 409, "Cannot do POST on locked node")
    child = post(server, f"node/{root}/newversion", data=b"").json()["child"]
    assert_error(post(server, f"node/{root}/newversion", json={}), 409, "branch already exists")
    assigned = "fedcba9876543210fedcba9876543210"
    b = post(
        server, f"node/{root}/branch", json={"branch": "proofread", "note": "n", "uuid": assigned.upper()}
    )
    assert b.json() == {"child": assigned}
    assert_error(post(server, f"node/{root}/branch", json={"branch": "proofread"}), 409, "already exists")
    assert_error(
        post(server, f"node/{root}/branch", json={"branch": "master"}), 400, "Cannot create a master branch"
    )
    assert_error(
        post(server, f"node/{root}/branch", json={"branch": "b2", "uuid": "xyz"}), 400, "32 character"
    )
    assert_error(
        post(server, f"node/{root}/branch", json={"branch": "b3", "uuid": child}), 409, "already exists"
    )
    assert_error(post(server, f"node/{root}/branch", json={}), 400, "'branch'")
    nodes = get(server, f"repo/{root}/info").json()["DAG"]["Nodes"]
    vid = {u: n["VersionID"] for u, n in nodes.items()}
    assert nodes[root]["Note"] == "ingest done" and nodes[root]["Log"][0].endswith("  ok")
    assert sorted(nodes[root]["Children"]) == sorted([vid[child], vid[assigned]])
    assert nodes[child]["Parents"] == [vid[root]] and nodes[child]["Branch"] == ""
    assert nodes[assigned]["Branch"] == "proofread" and nodes[assigned]["Note"] == "n"
    assert vid[child] > vid[root] and vid[assigned] > vid[root]


def test_note_and_log_on_open_and_committed_nodes(server):
    root = server.new_repo()
    assert post(server, f"node/{root}/note", json={"note": "hello"}).status_code == 200
    assert get(server, f"node/{root}/note").json() == {"note": "hello"}
    assert post(server, f"node/{root}/log", json={"log": ["a"]}).status_code == 200
    assert get(server, f"node/{root}/log").json()["log"][0].endswith("  a")
    assert_error(post(server, f"node/{root}/note", json={"note": 1}), 400, "'note' must be a string")
    server.commit(root)
    assert_error(
        post(server, f"node/{root}/note", json={"note": "late"}), 409, "Cannot do POST on locked node"
    )
    assert_error(post(server, f"node/{root}/log", json={"log": ["late"]}), 409, "locked node")
    assert get(server, f"node/{root}/note").json() == {"note": "hello"}


def test_tag_creates_committed_child_named_by_tag(server):
    root = server.new_repo()
    server.commit(root)
    r = post(server, f"node/{root}/tag", json={"tag": "v1.0"})
    assert r.json() == {"child": "v1.0"}
    assert get(server, "node/v1.0/status").json() == {"Locked": True}
    node = get(server, f"repo/{root}/info").json()["DAG"]["Nodes"]["v1.0"]
    assert node["Branch"] == "tag-v1.0"
    assert node["Note"] == f'Tag of version {root} with "v1.0"'
    assert_error(post(server, f"node/{root}/tag", json={"tag": "v1.0"}), 409, "")


def test_uuid_resolution_forms(server):
    root = server.new_repo()
    server.commit(root, "root")
    c1 = server.newversion(root, "c1")
    server.commit(c1)
    c2 = server.newversion(c1, "c2")
    dev = post(server, f"node/{c1}/branch", json={"branch": "dev", "note": "dev"}).json()["child"]
    notes = {root: "root", c1: "c1", c2: "c2", dev: "dev"}

    assert get(server, f"node/{root[:4]}/note").json() == {"note": "root"}
    for spec, expect in [
        (":master", c2), (":", root), (f"{root[:5]}:master", c2), (":master~1", c1),
        (":master~2", root), (":dev", dev), (":dev~1", c1), (f"{c2}:", c2), (f"{dev[:6]}:master", c2),
    ]:  # fmt: skip
        assert get(server, f"node/{spec}/note").json() == {"note": notes[expect]}, spec
        assert requests.head(server.api(f"repo/{spec}"), timeout=5).status_code == 200
    assert get(server, f"repo/{root}/branch-versions/dev").json() == [dev, c1, root]
    assert get(server, f"repo/{root}/branch-versions/master").json() == [c2, c1, root]
    assert get(server, f"repo/{root}/branch-versions/none").json() == []
    assert_error(get(server, "node/:master~9/status"), 400, "out of range")
    assert_error(get(server, "node/:nobranch/status"), 404, 'branch "nobranch" not found')
    assert_error(get(server, "node/a:b:c/status"), 400, "bad UUID specification")
    assert_error(get(server, "node/zzzz/status"), 404, "could not find UUID with partial match to zzzz")
    server.new_repo()
    assert_error(
        get(server, "node/:master/status"), 400, "UUID must be specified if more than one repo exists"
    )


def test_ambiguous_prefix(server):
    a = post(server, "repos", json={"root": "abc00000000000000000000000000000"}).json()["root"]
    post(server, "repos", json={"root": "abd00000000000000000000000000000"})
    assert_error(get(server, "node/ab/status"), 400, "more than one UUID matches ab")
    assert get(server, "node/abc/status").status_code == 200
    assert get(server, f"node/{a}/note?u=me&app=neuclease&whatever=1").status_code == 200


def test_merge_rules(server):
    root = server.new_repo()
    server.commit(root)
    a = server.newversion(root)
    b = post(server, f"node/{root}/branch", json={"branch": "side"}).json()["child"]
    body = {"mergeType": "conflict-free", "parents": [a, b], "note": "m"}
    assert_error(post(server, f"repo/{root}/merge", json=body), 409, "unlocked")
    server.commit(a)
    server.commit(b)
    assert_error(
        post(server, f"repo/{root}/merge", json={**body, "mergeType": "other"}), 400, "conflict-free"
    )
    assert_error(
        post(server, f"repo/{root}/merge", json={**body, "parents": [a]}), 400, "at least two parents"
    )
    assert_error(post(server, f"repo/{root}/merge", json={**body, "parents": "ab"}), 400, "list of strings")
    child = post(server, f"repo/{root}/merge", json=body).json()["child"]
    nodes = get(server, f"repo/{root}/info").json()["DAG"]["Nodes"]
    assert nodes[child]["Parents"] == [nodes[a]["VersionID"], nodes[b]["VersionID"]]
    assert nodes[child]["Branch"] == "" and nodes[child]["Locked"] is False and nodes[child]["Note"] == "m"
    other = server.new_repo()
    server.commit(other)
    assert_error(post(server, f"repo/{root}/merge", json={**body, "parents": [a, other]}), 400, "same repo")


def test_merge_conflicts_and_resolve_with_keyvalue(server):
    root = server.new_repo()
    server.new_instance(root, "keyvalue", "kv")
    assert post(server, f"node/{root}/kv/key/k", data=b"root").status_code == 200
    server.commit(root)
    a = server.newversion(root)
    b = post(server, f"node/{root}/branch", json={"branch": "side"}).json()["child"]
    post(server, f"node/{a}/kv/key/k", data=b"from a")
    post(server, f"node/{b}/kv/key/k", data=b"from b")
    post(server, f"node/{b}/kv/key/only-b", data=b"b")
    server.commit(a)
    server.commit(b)
    merged = post(
        server, f"repo/{root}/merge", json={"mergeType": "conflict-free", "parents": [a, b]}
    ).json()["child"]
    assert_error(get(server, f"node/{merged}/kv/key/k"), 409, "resolve")
    assert get(server, f"node/{merged}/kv/key/only-b").content == b"b"
    resolved = post(server, f"repo/{root}/resolve", json={"data": ["kv"], "parents": [b, a], "note": "r"})
    assert resolved.status_code == 200, resolved.text
    child = resolved.json()["child"]
    assert get(server, f"node/{child}/kv/key/k").content == b"from b"
    assert get(server, f"node/{child}/kv/key/only-b").content == b"b"
    assert get(server, f"node/{a}/kv/key/k").content == b"from a"
    assert_error(
        post(server, f"repo/{root}/resolve", json={"data": ["nope"], "parents": [a, b]}), 404, "nope"
    )


def test_instance_lock_enforcement_and_unversioned(server, server_factory):
    root = server.new_repo()
    server.new_instance(root, "keyvalue", "kv")
    server.new_instance(root, "keyvalue", "shared", versioned="false")
    server.commit(root)
    assert_error(
        post(server, f"node/{root}/kv/key/a", data=b"x"),
        409,
        'Cannot do POST on endpoint "key" of locked node',
    )
    assert post(server, f"node/{root}/shared/key/a", data=b"x").status_code == 200
    child = server.newversion(root)
    assert get(server, f"node/{child}/shared/key/a").content == b"x"
    assert get(server, f"node/{root}/kv/keys").json() == []
    assert_error(get(server, f"node/{root}/kv"), 404, "expected an endpoint")
    assert_error(get(server, f"node/{root}/kv/nosuch"), 404, "Bad API call")
    assert_error(requests.put(server.api(f"node/{root}/kv/keys"), timeout=5), 405, "does not support PUT")
    assert_error(get(server, f"node/{root}/missing/keys"), 404, "invalid data instance name")


def test_readonly_mode(server_factory, monkeypatch):
    monkeypatch.setenv("DVID_ADMIN_TOKEN", "tok")
    srv = server_factory(rwmode="readonly")
    assert_error(post(srv, "repos", json={}), 405, "read-only mode")
    root = post(srv, "repos?admintoken=tok", json={}).json()["root"]
    assert get(srv, f"repo/{root}/info").status_code == 200
    assert_error(post(srv, f"node/{root}/note", json={"note": "x"}), 405, "read-only")


def test_body_size_limit(server_factory):
    srv = server_factory(max_body_bytes=4096)
    root = srv.new_repo()
    srv.new_instance(root, "keyvalue", "kv")
    assert_error(post(srv, f"node/{root}/kv/key/big", data=b"x" * 10_000), 413, "exceeds the limit")

    def chunks():
        for _ in range(10):
            yield b"y" * 1000

    r = post(srv, f"node/{root}/kv/key/big", data=chunks())  # chunked: no Content-Length
    assert r.status_code == 413, r.text
    assert get(srv, f"node/{root}/kv/key/big").status_code == 404
    assert get(srv, "heartbeat").text == "OK"


# ---- deletes and renames (admin) -----------------------------------------------------------------


def test_delete_and_rename_need_admin_token(server):
    root = server.new_repo()
    server.new_instance(root, "keyvalue", "kv")
    r = requests.delete(server.api(f"repo/{root}/kv?imsure=true"), timeout=5)
    assert_error(r, 403, "this server has none")
    assert_error(
        post(server, f"repo/{root}/rename", json={"dataname": "kv", "newname": "kv2"}), 403, "admin token"
    )
    assert "kv" in get(server, f"repo/{root}/info").json()["DataInstances"]


def test_delete_rename_instance_and_delete_repo(server_factory):
    srv = server_factory(admin_token="secret")
    root = srv.new_repo()
    srv.new_instance(root, "keyvalue", "kv")
    srv.new_instance(root, "keyvalue", "gone")
    for i in range(50):
        post(srv, f"node/{root}/kv/key/k{i}", data=b"v")
        post(srv, f"node/{root}/gone/key/k{i}", data=b"v")
    assert_error(
        requests.delete(srv.api(f"repo/{root}/gone?admintoken=wrong&imsure=true"), timeout=5),
        403,
        "the token given is wrong",
    )
    assert_error(
        requests.delete(srv.api(f"repo/{root}/gone?imsure=true"), timeout=5), 403, "--admin-token TOKEN"
    )
    assert_error(requests.delete(srv.api(f"repo/{root}/gone?admintoken=secret"), timeout=5), 400, "imsure")
    gone_iid = srv.manager.repos[1].instances["gone"].meta.instance_id
    r = requests.delete(srv.api(f"repo/{root}/gone?admintoken=secret&imsure=true"), timeout=5)
    assert r.status_code == 200
    srv.manager.wait_for_deletions(10)
    from dvid.storage import keys

    prefix = keys.instance_prefix(gone_iid)
    assert list(srv.manager.engine.scan(prefix, keys.instance_prefix(gone_iid + 1))) == []
    assert srv.manager.pending_deletions() == 0
    assert_error(get(srv, f"node/{root}/gone/keys"), 404, "invalid data instance name")
    r = post(srv, f"repo/{root}/rename?admintoken=secret", json={"dataname": "kv", "newname": "renamed"})
    assert r.status_code == 200, r.text
    assert get(srv, f"node/{root}/renamed/key/k3").content == b"v"
    assert_error(
        post(srv, f"repo/{root}/rename?admintoken=secret", json={"dataname": "nope", "newname": "x"}), 404, ""
    )
    log = get(srv, f"repo/{root}/log").json()["log"]
    assert any('Renamed data instance "kv" to "renamed"' in e for e in log)
    r = requests.delete(srv.api(f"repo/{root}?admintoken=secret&imsure=true"), timeout=5)
    assert r.status_code == 200
    srv.manager.wait_for_deletions(10)
    assert get(srv, "repos/info").json() == {}
    assert_error(get(srv, f"node/{root}/status"), 404, "could not find UUID")
    assert list(srv.manager.engine.scan(b"\x01", b"\x02")) == []


def test_every_json_body_refuses_deep_nesting_and_lone_surrogates(server):
    """jsonio.loads serves every endpoint: too deep a body and a lone surrogate escape are 400s."""
    uuid = server.new_repo()
    server.new_instance(uuid, "keyvalue", "kv")
    url = server.api(f"node/{uuid}/kv/tags")
    deep = requests.post(url, data=b"[" * 100_000 + b"]" * 100_000, timeout=10)
    assert deep.status_code == 400 and "nested too deeply" in deep.text
    lone = requests.post(url, data=b'{"a": "\\ud800"}', timeout=10)
    assert lone.status_code == 400 and "surrogate" in lone.text
    # NaN, Infinity and numbers past a double's range are not JSON (Go refuses them; fuzz, issue 11)
    for body in (b'{"a": NaN}', b'{"a": -Infinity}', b'{"a": 1e400}'):
        r = requests.post(url, data=body, timeout=10)
        assert r.status_code == 400 and "not a finite number" in r.text, body
    # a number past int()'s 4300-digit limit raised ValueError, a 500 (fuzz, issue 11)
    huge = requests.post(url, data=b'{"a": ' + b"9" * 5000 + b"}", timeout=10)
    assert huge.status_code == 400 and "4300 digits" in huge.text
    pair = requests.post(url, data=b'{"a": "\\ud83d\\ude00"}', timeout=10)
    assert pair.status_code == 200
    assert requests.get(url, timeout=10).json() == {"Tags": {"a": "\U0001f600"}}


def test_instance_settings_with_odd_digits_are_400(server):
    # str.isdigit accepts "²" and int() does not: instance creation answered 500 (fuzz, issue 11)
    uuid = server.new_repo()
    for block_size in ("\u00b2,2,2", "9" * 5000 + ",2,2"):
        r = post(
            server,
            f"repo/{uuid}/instance",
            json={"typename": "uint8blk", "dataname": "g", "BlockSize": block_size},
        )
        assert_error(r, 400, "BlockSize")
    assert get(server, f"repo/{uuid}/info").json()["DataInstances"] == {}
