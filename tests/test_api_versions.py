"""dvid.api version handles and typed errors against a live server."""

from __future__ import annotations

import pytest

import dvid.api
from dvid.api import errors
from dvid.client import DVIDClientError
from tests.serverutil import free_port


@pytest.fixture
def api(server):
    return dvid.api.connect(server.url, progress=False)


def test_references_resolve_to_full_uuids(api):
    root = api.new_repo("refs", "resolution")
    assert len(root.uuid) == 32
    assert api[root.uuid] == root
    assert api[root.uuid[:6]] == root
    assert api[":master"] == root
    child = root.commit("first").newversion("second")
    assert api[":master"] == child
    assert api[":master~1"] == root
    assert api[f"{root.uuid[:5]}:master~0"] == child
    side = root.branch("side", "a branch")
    assert api[":side"] == side
    assert api[":side~1"] == root
    assert side.parents == [root]


def test_dag_operations_return_handles(api):
    root = api.new_repo("dag", "operations")
    kv = root.create("keyvalue", "kv")
    kv["a"] = b"root"
    committed = root.commit("root done", log=["one", "two"])
    assert committed is root and root.locked and root.note == "root done"
    assert [line.split("  ", 1)[1] for line in root.log] == ["one", "two"]
    left = root.newversion("left")
    right = root.branch("right", "right")
    assert not left.locked and left.parents == [root]
    left["kv"]["b"] = b"left"
    right["kv"]["c"] = b"right"
    left.commit("l")
    right.commit("r")
    merged = left.merge(right, note="both")
    assert merged.parents == [left, right]
    assert dict(merged["kv"].items()) == {"a": b"root", "b": b"left", "c": b"right"}
    tagged = merged.commit("m").tag("release-1", "a tag")
    assert tagged.uuid == "release-1" and tagged.locked
    assert api["release-1"] == tagged
    assert set(root.instances()) == {"kv"} and "kv" in tagged and "nope" not in tagged
    with pytest.raises(ValueError, match="at least one"):
        left.merge()


def test_errors_are_typed_and_carry_the_server_message(api, server):
    root = api.new_repo("errors", "typed")
    with pytest.raises(errors.NotFound) as nf:
        api["ffffffffffff"]
    assert nf.value.status == 404 and "ffffffffffff" in nf.value.message
    assert isinstance(nf.value, DVIDClientError)
    with pytest.raises(errors.NotFound, match="nosuch"):
        root["nosuch"]
    with pytest.raises(errors.BadRequest) as bad:
        api["a:b:c"]
    assert bad.value.status == 400 and "bad UUID specification" in bad.value.message
    with pytest.raises(errors.BadRequest, match="out of range"):
        api[f"{root.uuid}:master~5"]
    with pytest.raises(errors.Conflict) as conflict:
        root.newversion()
    assert conflict.value.status == 409
    root.create("keyvalue", "kv")
    with pytest.raises(errors.Conflict, match="kv"):
        root.create("keyvalue", "kv")
    with pytest.raises(errors.BadRequest):
        root.create("nosuchtype", "x")
    with pytest.raises(errors.MethodNotAllowed) as method:
        root["kv"].request("PUT", "keys")
    assert method.value.status == 405
    with pytest.raises(ValueError):
        api[""]


def test_a_server_that_does_not_answer_is_unreachable():
    api = dvid.api.connect(f"127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(errors.Unreachable) as info:
        api.info()
    assert info.value.status is None and "no dvid server answers" in info.value.message


def test_typed_maps_statuses():
    def make(status):
        return errors.typed(DVIDClientError("m", status=status, url="u", body="b"))

    assert type(make(413)) is errors.PayloadTooLarge
    assert type(make(416)) is errors.RangeNotSatisfiable
    assert type(make(503)) is errors.Unavailable
    assert type(make(500)) is errors.ServerError
    assert type(make(418)) is DVIDClientError
    e = make(404)
    assert (e.message, e.status, e.url, e.body) == ("m", 404, "u", "b")
    with pytest.raises(ValueError, match="workers"):
        dvid.api.connect("127.0.0.1:1", workers=0)


def test_server_lists_repos_and_info(api):
    root = api.new_repo("listed", "")
    assert api.repos()["listed"] == root
    assert api.info()["DVID Version"].startswith("v")
