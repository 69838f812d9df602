"""Push and pull of tarsupervoxels between two real servers: blobs of every version (and their
deletions) arrive with the labelmap they sync with; the receiver serves the same tar archives and
keeps the instance's Extension, sync and versioning."""

from __future__ import annotations

import json

from tests.test_tarsupervoxels import Blobs, entries, make_tar, new_blobs, text_of
from tests.test_transfer import cli_ok


def test_push_and_pull_carry_blobs_per_version(pair):
    src, dst = pair
    a = new_blobs(src, extension="dat")
    root = a.uuid
    a.ok("POST", "load", data=make_tar({f"{sv}.dat": text_of(sv) for sv in range(1, 64) if sv != 15}))
    a.ok("POST", "supervoxel/64", data=b"")  # an empty blob travels as a present blob
    src.commit(root)
    child = src.newversion(root)
    a.ok("POST", "supervoxel/15", child, data=text_of(15))
    a.ok("DELETE", "supervoxel/18", child)
    a.labelmap("POST", "merge", child, data=json.dumps([30, 60]))
    cli_ok("--server", src.url, "push", child, dst.url, "-q")
    b = Blobs(dst, root)
    assert b.ok("GET", "info").json()["Extended"] == {"Extension": "dat"}
    assert b.ok("GET", "info").json()["Base"]["Syncs"] == ["labels"]
    for uuid in (root, child):
        for body in (30, 60, 1):
            want = a.call("GET", f"tarfile/{body}", uuid)
            got = b.call("GET", f"tarfile/{body}", uuid)
            assert (got.status_code, got.content) == (want.status_code, want.content)
        assert b.ok("GET", "missing/30", uuid).content == a.ok("GET", "missing/30", uuid).content
    names = [n for n, _ in entries(b.ok("GET", "tarfile/30", child).content)]
    assert "15.dat" in names and "18.missing" in names and "60.dat" in names
    assert b.blob(64, child).content == b"" and b.blob(64, child).status_code == 200
    assert b.blob(18, root).content == text_of(18)
    # the receiver writes on; the sender pulls the new version back
    src.commit(child)
    cli_ok("--server", src.url, "push", child, dst.url, "-q")
    v3 = dst.newversion(child)
    b.ok("POST", "load", v3, data=make_tar({"18.dat": b"rewritten"}))
    cli_ok("--server", src.url, "pull", dst.url, v3, "-q")
    assert a.blob(18, v3).content == b"rewritten"
    assert a.head(30, v3) == 200


def test_push_of_an_unversioned_instance(pair):
    src, dst = pair
    a = new_blobs(src, versioned=False)
    root = a.uuid
    src.commit(root)
    child = src.newversion(root)
    a.ok("POST", "supervoxel/7", child, data=b"repo-wide")
    cli_ok("--server", src.url, "push", child, dst.url, "-q")
    b = Blobs(dst, root)
    assert b.ok("GET", "info").json()["Base"]["Versioned"] is False
    assert b.blob(7, root).content == b"repo-wide" and b.blob(7, child).content == b"repo-wide"
