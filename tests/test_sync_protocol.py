"""Syncs are checked against the sync protocols when they are made, and classes when defined."""

from __future__ import annotations

import pytest
import requests

from dvid.datatype.base import Datatype, Route
from dvid.datatype.common import sync

TIMEOUT = 10


@pytest.fixture
def repo(server):
    uuid = server.new_repo()
    for typename, name in (
        ("labelblk", "seg"), ("labelvol", "bodies"), ("annotation", "syn"), ("labelsz", "sizes"),
        ("uint8blk", "grey"), ("keyvalue", "kv"),
    ):  # fmt: skip
        server.new_instance(uuid, typename, name)
    return server, uuid


def post_sync(server, uuid, name, target):
    return requests.post(server.api(f"node/{uuid}/{name}/sync"), json={"sync": target}, timeout=TIMEOUT)


@pytest.mark.parametrize(
    ("name", "target", "needs"),
    [
        ("bodies", "grey", "a label volume (labelblk)"),
        ("bodies", "syn", "a label volume (labelblk)"),
        ("syn", "kv", "a label volume or sparse volumes (labelblk, labelvol)"),
        ("syn", "grey", "a label volume or sparse volumes (labelblk, labelvol)"),
        ("sizes", "seg", "an annotation"),
        ("seg", "syn", "sparse volumes (labelvol)"),
    ],
)
def test_a_target_that_does_not_satisfy_the_protocol_is_400(repo, name, target, needs):
    server, uuid = repo
    r = post_sync(server, uuid, name, target)
    assert r.status_code == 400, r.text
    assert f"can only sync with {needs}" in r.text
    info = requests.get(server.api(f"node/{uuid}/{name}/info"), timeout=TIMEOUT).json()
    assert info["Base"]["Syncs"] == []


@pytest.mark.parametrize(
    ("name", "target"),
    [("bodies", "seg"), ("seg", "bodies"), ("syn", "seg"), ("syn", "bodies"), ("sizes", "syn")],
)
def test_targets_that_satisfy_the_protocol_are_accepted(repo, name, target):
    server, uuid = repo
    assert post_sync(server, uuid, name, target).status_code == 200


def test_types_without_sync_protocols_have_no_sync_endpoint(repo):
    server, uuid = repo
    r = post_sync(server, uuid, "kv", "seg")
    assert r.status_code == 404


def test_listeners_are_found_by_protocol_after_syncs(repo):
    server, uuid = repo
    for name, target in (("bodies", "seg"), ("syn", "bodies"), ("sizes", "syn")):
        assert post_sync(server, uuid, name, target).status_code == 200
    repo_obj, _ = server.manager.resolve(uuid)
    seg, syn = repo_obj.instance("seg"), repo_obj.instance("syn")
    assert {i.name for i in sync.block_listeners(seg)} == {"bodies", "syn"}
    assert [i.name for i in sync.count_listeners(syn)] == ["sizes"]
    assert sync.count_listeners(seg) == []


def test_a_class_listening_without_the_hook_fails_at_definition():
    with pytest.raises(TypeError, match="listens with BlockListener but has no blocks_changed"):

        class Deaf(Datatype):
            type_name = "deaf"
            listens = (sync.BlockListener,)
            sync_requires = (sync.LabelSource,)


def test_a_misspelt_route_handler_fails_at_definition():
    with pytest.raises(TypeError, match="names no method 'handle_nothing'"):

        class Misspelt(Datatype):
            type_name = "misspelt"
            routes = (Route("x", ("GET",), "handle_nothing"),)
