"""tarsupervoxels over HTTP: a real dvid server on loopback (LevelDB), a real labelmap synced.

The cases of spec/more-types.md §4.5 (from DVID's tarsupervoxels_test.go) come first, with this
project's decisions: blobs are versioned (DVID keeps them at the repo root; ``Versioned=false``
does that here), wrong methods are 405 and writes at a committed version 409 (DVID: 400), and the
tar's entries come in ascending supervoxel order.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import numpy as np
import pytest
import requests

from dvid.datatype.tarsupervoxels import load as tsv_load
from dvid.datatype.tarsupervoxels.load import entry_supervoxel
from dvid.errors import BadRequest
from tests.test_keyvalue import assert_error

TIMEOUT = 60
MERGED = [30, 10, 15, 18, 19, 20, 21, 64]


def text_of(sv: int) -> bytes:
    return f"This is the data for supervoxel {sv}.".encode()


def make_tar(files: dict[str, bytes] | list[tuple[str, bytes]], *, kind: bytes = tarfile.REGTYPE) -> bytes:
    buf = io.BytesIO()
    items = files.items() if isinstance(files, dict) else files
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in items:
            info = tarfile.TarInfo(name)
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            info.type = kind
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


def entries(body: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:") as tar:
        out = []
        for member in tar:
            assert member.isreg()
            out.append((member.name, tar.extractfile(member).read()))
        return out


class Blobs:
    """A tarsupervoxels instance (and the labelmap it syncs with) at any version of its repo."""

    def __init__(self, server, uuid: str, name: str = "blobs", labels: str = "labels") -> None:
        self.server, self.uuid, self.name, self.labels = server, uuid, name, labels

    def url(self, tail: str, uuid: str | None = None, name: str | None = None) -> str:
        return self.server.api(f"node/{uuid or self.uuid}/{name or self.name}/{tail}")

    def call(self, method: str, tail: str, uuid: str | None = None, **kw) -> requests.Response:
        return requests.request(method, self.url(tail, uuid), timeout=TIMEOUT, **kw)

    def ok(self, method: str, tail: str, uuid: str | None = None, **kw) -> requests.Response:
        r = self.call(method, tail, uuid, **kw)
        assert r.status_code == 200, (method, tail, r.status_code, r.text)
        return r

    def labelmap(self, method: str, tail: str, uuid: str | None = None, **kw) -> requests.Response:
        r = requests.request(method, self.url(tail, uuid, self.labels), timeout=TIMEOUT, **kw)
        assert r.status_code == 200, (tail, r.status_code, r.text)
        return r

    def load(self, tar: bytes, uuid: str | None = None) -> requests.Response:
        return self.call("POST", "load", uuid, data=tar)

    def head(self, body: int, uuid: str | None = None) -> int:
        return self.call("HEAD", f"tarfile/{body}", uuid).status_code

    def tarfile(self, body: int, uuid: str | None = None) -> list[tuple[str, bytes]]:
        r = self.ok("GET", f"tarfile/{body}", uuid)
        assert r.headers["Content-Type"] == "application/tar"
        return entries(r.content)

    def blob(self, sv: int, uuid: str | None = None) -> requests.Response:
        return self.call("GET", f"supervoxel/{sv}", uuid)

    def exists(self, svs, uuid: str | None = None) -> list[bool]:
        r = self.ok("GET", "exists", uuid, data=json.dumps(svs))
        assert r.headers["Content-Type"] == "application/json"
        return r.json()


def stripes_volume() -> bytes:
    """The 64^3 volume of DVID's test: voxel i (x fastest) holds supervoxel (i mod 64) + 1."""
    return np.tile(np.arange(1, 65, dtype="<u8"), 64 * 64).tobytes()


def new_blobs(server, *, extension: str = "dat", versioned: bool = True, volume: bool = True) -> Blobs:
    uuid = server.new_repo()
    server.new_instance(uuid, "labelmap", "labels")
    server.new_instance(
        uuid, "tarsupervoxels", "blobs", Extension=extension, Versioned=str(versioned).lower()
    )
    b = Blobs(server, uuid)
    b.ok("POST", "sync", json={"sync": "labels"})
    if volume:
        b.labelmap("POST", "raw/0_1_2/64_64_64/64_64_64", data=stripes_volume())
        b.labelmap("POST", "merge", data=json.dumps(MERGED))
    return b


@pytest.fixture
def blobs(server) -> Blobs:
    return new_blobs(server)


def load_spec_data(b: Blobs, uuid: str | None = None) -> None:
    """§4.5 step 1: 1.dat ... 63.dat except 15.dat through load, 64 through supervoxel POST."""
    files = {f"{i}.dat": text_of(i) for i in range(1, 64) if i != 15}
    b.ok("POST", "load", uuid, data=make_tar(files))
    b.ok("POST", "supervoxel/64", uuid, data=text_of(64))


# ---- §4.5 test cases -----------------------------------------------------------------------------


def test_spec_cases(blobs):
    b = blobs
    load_spec_data(b)
    # 2. HEAD tarfile
    assert b.head(80) == 400  # no such body
    assert b.head(10) == 400  # merged into 30
    assert b.head(60) == 200
    assert b.head(30) == 400  # supervoxel 15 has no blob
    # 3. exists, in request order
    assert b.exists([81, 10, 60]) == [False, True, True]
    # 4. missing
    r = b.ok("GET", "missing/30")
    assert r.content == b"[15]" and r.headers["Content-Type"] == "application/json"
    # 5. tarfile of the merged body: every supervoxel once, in ascending order, 15 missing
    got = b.tarfile(30)
    assert [name for name, _ in got] == [
        "10.dat", "15.missing", "18.dat", "19.dat", "20.dat", "21.dat", "30.dat", "64.dat",
    ]  # fmt: skip
    for name, data in got:
        sv = int(name.split(".")[0])
        assert data == (b"" if sv == 15 else text_of(sv))
    # 6. single blobs
    r = b.blob(17)
    assert r.status_code == 200 and r.content == text_of(17)
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert_error(b.blob(99), 404, "Supervoxel 99 not found")
    # 7. the missing blob arrives: HEAD says complete
    b.ok("POST", "load", data=make_tar({"15.dat": text_of(15)}))
    assert b.head(30) == 200
    assert b.ok("GET", "missing/30").json() == []
    assert ("15.dat", text_of(15)) in b.tarfile(30)


def test_spec_code_derived_cases(blobs, server):
    b = blobs
    assert_error(
        b.load(make_tar({"5.drc": b"x"})), 400, 'file 1 name has bad extension (expect "dat"): 5.drc'
    )
    assert_error(
        b.load(make_tar({"0.dat": b"x"})),
        400,
        "supervoxel 0 is reserved and cannot have data saved under 0 id",
    )
    r = requests.post(
        server.api(f"repo/{b.uuid}/instance"),
        json={"typename": "tarsupervoxels", "dataname": "x"},
        timeout=TIMEOUT,
    )
    assert_error(r, 400, "tarsupervoxels instances must have Extension set in the configuration")
    b.ok("POST", "supervoxel/17", data=b"seventeen")
    b.ok("DELETE", "supervoxel/17")
    assert_error(b.blob(17), 404, "Supervoxel 17 not found")
    b.ok("DELETE", "supervoxel/17")  # deleting what is not there is fine


# ---- the tar archive, byte by byte ---------------------------------------------------------------


def test_tar_headers_are_dvids_ustar(blobs):
    b = blobs
    b.ok("POST", "supervoxel/60", data=b"x" * 1000)  # 1000 bytes: padded to 1024
    b.ok("POST", "supervoxel/61", data=b"")
    r = b.ok("GET", "tarfile/60")
    body = r.content
    # one header, 1000 bytes of data and 24 of padding, then two zero blocks: nothing else
    assert len(body) == 512 + 1024 + 1024
    header = body[:512]
    assert header[:100].rstrip(b"\0") == b"60.dat"
    assert header[100:108] == b"0000755\0"  # mode
    assert header[108:116] == b"0000000\0" and header[116:124] == b"0000000\0"  # uid, gid
    assert header[124:136] == b"00000001750\0"  # size 1000, octal
    assert header[136:148] == b"00000000000\0"  # mtime 0
    assert header[156:157] == b"0"  # regular file
    assert header[257:265] == b"ustar\x0000"
    assert header[265:297] == b"\0" * 32 and header[297:329] == b"\0" * 32  # no user or group names
    checksum = sum(header[:148]) + 8 * 32 + sum(header[156:])
    assert int(header[148:154], 8) == checksum
    assert body[512:1512] == b"x" * 1000 and body[1512:] == b"\0" * (24 + 1024)
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:") as tar:
        (member,) = tar.getmembers()
        assert (member.mode, member.uid, member.gid, member.mtime, member.uname, member.gname) == (
            0o755, 0, 0, 0, "", "",
        )  # fmt: skip
    # an empty blob is a present, empty file (not ".missing")
    assert b.tarfile(61) == [("61.dat", b"")]
    assert b.head(61) == 200


def test_large_body_streams_whole_in_ascending_order(server):
    """A body of 300 supervoxels with 20-100 KB blobs (several MiB: many streamed chunks)."""
    b = new_blobs(server, volume=False)
    rng = np.random.default_rng(5)
    svs = np.unique(rng.integers(1, 10**12, 300, dtype=np.uint64))
    rng.shuffle(svs)
    index = labelindex(body=7, supervoxels=svs.tolist())
    b.labelmap("POST", "index/7", data=index)
    blobs = {int(sv): rng.bytes(int(rng.integers(20_000, 100_000))) for sv in svs[:-3]}
    b.ok("POST", "load", data=make_tar({f"{sv}.dat": data for sv, data in blobs.items()}))
    got = b.tarfile(7)
    want = [
        (f"{sv}.dat", blobs[sv]) if sv in blobs else (f"{sv}.missing", b"")
        for sv in sorted(int(s) for s in svs)
    ]
    assert got == want
    assert b.ok("GET", "missing/7").json() == sorted(int(s) for s in svs[-3:])
    assert b.head(7) == 400


def labelindex(body: int, supervoxels: list[int]) -> bytes:
    """A LabelIndex protobuf giving each supervoxel 1 voxel in block (0, 0, 0)."""
    from dvid.datatype.labelmap import proto

    msg = proto.LabelIndexMsg(label=body)
    counts = msg.blocks[0].counts
    for sv in supervoxels:
        counts[sv] = 1
    return msg.SerializeToString()


def test_an_error_mid_stream_truncates_the_archive_and_the_server_stays_up(server, monkeypatch):
    b = new_blobs(server, volume=False)
    svs = list(range(1, 101))
    b.labelmap("POST", "index/9", data=labelindex(9, svs))
    b.ok("POST", "load", data=make_tar({f"{sv}.dat": bytes([sv]) * 60_000 for sv in svs}))
    inst = server.manager.resolve(b.uuid)[0].instance("blobs")
    real = type(inst).read_blobs
    calls = []

    def failing(self, ctx, supervoxels, extension=None):
        calls.append(len(supervoxels))
        if len(calls) > 2:  # after ~3.8 MB: the response has begun
            raise OSError("disk on fire")
        return real(self, ctx, supervoxels, extension)

    monkeypatch.setattr(type(inst), "read_blobs", failing)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(b.url("tarfile/9"), timeout=TIMEOUT).content  # noqa: B018
    monkeypatch.setattr(type(inst), "read_blobs", real)
    assert len(b.tarfile(9)) == 100  # the server is up and answers whole archives again


def test_an_error_before_the_first_chunk_is_a_status(server, monkeypatch):
    b = new_blobs(server)
    inst = server.manager.resolve(b.uuid)[0].instance("blobs")

    def failing(self, ctx, supervoxels, extension=None):
        raise BadRequest("refused early")

    monkeypatch.setattr(type(inst), "read_blobs", failing)
    assert_error(b.call("GET", "tarfile/30"), 400, "refused early")


# ---- load ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("abc.dat", "file 2 name is invalid, expect supervoxel+ext: abc.dat"),
        ("7", "file 2 name is invalid, expect supervoxel+ext: 7"),
        ("dir/7.dat", "file 2 name is invalid, expect supervoxel+ext: dir/7.dat"),
        ("-7.dat", "file 2 name is invalid, expect supervoxel+ext: -7.dat"),
        ("18446744073709551616.dat", "file 2 name is invalid"),
        ("7.dat.gz", 'file 2 name has bad extension (expect "dat"): 7.dat.gz'),
        ("7.DAT", 'file 2 name has bad extension (expect "dat"): 7.DAT'),
    ],
)
def test_load_refuses_bad_names_after_storing_the_files_before(blobs, name, message):
    r = blobs.load(make_tar([("3.dat", b"three"), (name, b"x"), ("4.dat", b"four")]))
    assert_error(r, 400, message)
    assert blobs.blob(3).content == b"three"  # before the bad file: stored, as in DVID
    assert blobs.blob(4).status_code == 404  # after it: not read


def test_load_refuses_directories_and_links(blobs):
    assert_error(blobs.load(make_tar([("dir", b"")], kind=tarfile.DIRTYPE)), 400, "file 1 name is invalid")
    assert_error(
        blobs.load(make_tar([("5.dat", b"")], kind=tarfile.SYMTYPE)),
        400,
        "file 1 is not a regular file: 5.dat",
    )
    assert blobs.blob(5).status_code == 404


def test_load_of_no_tar_an_empty_body_and_a_cut_archive(blobs):
    assert_error(blobs.load(b"this is not a tar archive" * 40), 400, "not a valid tar archive")
    blobs.ok("POST", "load", data=b"")  # an empty body stores nothing
    whole = make_tar([("1.dat", b"a" * 2000), ("2.dat", b"b" * 2000)])
    assert_error(blobs.load(whole[: 1000 + 512 * 5]), 400, "not a valid tar archive")
    assert blobs.blob(1).content == b"a" * 2000  # the complete first file stays
    assert blobs.blob(2).status_code == 404
    blobs.ok("POST", "load", data=make_tar({"9.dat": b"nine"})[:1536])  # no end blocks: fine (as Go)
    assert blobs.blob(9).content == b"nine"


def test_load_overwrites_and_stores_in_batches(blobs, monkeypatch):
    monkeypatch.setattr(tsv_load, "BATCH_ENTRIES", 7)
    files = [(f"{sv}.dat", f"v1 {sv}".encode()) for sv in range(1, 31)]
    blobs.ok("POST", "load", data=make_tar(files))
    files2 = [(f"{sv}.dat", f"v2 {sv}".encode()) for sv in range(1, 31)] + [("31.drc", b"")]
    assert_error(blobs.load(make_tar(files2)), 400, "file 31 name has bad extension")
    assert all(blobs.blob(sv).content == f"v2 {sv}".encode() for sv in range(1, 31))


def test_load_accepts_gzip_encoding_and_long_names(blobs):
    import gzip

    sv = 2**64 - 1
    tar = make_tar({f"{sv}.dat": b"max"})
    blobs.ok("POST", "load", data=gzip.compress(tar), headers={"Content-Encoding": "gzip"})
    assert blobs.blob(sv).content == b"max"


def test_entry_names_unit():
    assert entry_supervoxel(1, "12.drc", "drc") == 12
    with pytest.raises(BadRequest, match="name is invalid"):
        entry_supervoxel(3, "12", "drc")
    with pytest.raises(BadRequest, match="name is invalid"):
        entry_supervoxel(3, "１２.drc", "drc")  # non-ASCII digits
    with pytest.raises(BadRequest, match="bad extension"):
        entry_supervoxel(3, "12.drc ", "drc")


# ---- single supervoxels, exists --------------------------------------------------------------------


def test_supervoxel_round_trip_and_bad_ids(blobs):
    b = blobs
    b.ok("POST", "supervoxel/18446744073709551615", data=b"\0\1\2")
    assert b.blob(2**64 - 1).content == b"\0\1\2"
    for method in ("GET", "POST", "DELETE"):
        assert_error(
            b.call(method, "supervoxel/0"),
            400,
            "Supervoxel 0 is protected background value and cannot be used",
        )
        assert_error(b.call(method, "supervoxel/abc"), 400, "'abc' after 'supervoxel' is not a decimal")
        assert_error(b.call(method, "supervoxel/18446744073709551616"), 400, "not a decimal unsigned 64-bit")
        assert_error(b.call(method, "supervoxel/-1"), 400)
        assert_error(b.call(method, "supervoxel/"), 400, "expect uint64 to follow 'supervoxel' endpoint")
        assert_error(b.call(method, "supervoxel"), 400, "expect uint64 to follow 'supervoxel' endpoint")
    for tail in ("tarfile", "missing"):
        assert_error(
            b.call("GET", f"{tail}/0"), 400, "Label 0 is protected background value and cannot be used"
        )
        assert_error(b.call("GET", f"{tail}/x1"), 400, "not a decimal unsigned 64-bit integer")
        assert_error(b.call("GET", tail), 400, f"expect uint64 to follow '{tail}' endpoint")
    assert b.head(0) == 400


def test_exists_hash_and_bad_bodies(blobs):
    b = blobs
    b.ok("POST", "supervoxel/5", data=b"")
    body = b"[5, 0, 6, 5]"
    md5 = hashlib.md5(body).hexdigest()
    r = b.ok("GET", "exists", params={"hash": md5}, data=body)
    assert r.content == b"[true,false,false,true]"
    r = b.call("GET", "exists", params={"hash": "0" * 32}, data=body)
    assert_error(r, 400, f"content hash incorrect.  expected {'0' * 32}, got {md5}")
    assert b.ok("GET", "exists", data=b"[]").content == b"[]"
    for bad in (b"", b"[1,", b'{"a": 1}', b"[-1]", b"[1.5]", b'["5"]', b"[true]", b"[18446744073709551616]"):
        assert_error(b.call("GET", "exists", data=bad), 400, "Bad exists request JSON")


# ---- errors of routing, syncs, settings ------------------------------------------------------------


def test_wrong_methods_and_unknown_endpoints(blobs):
    b = blobs
    wrong = (
        ("PUT", "supervoxel/5"), ("POST", "tarfile/30"), ("DELETE", "tarfile/30"), ("GET", "load"),
        ("POST", "exists"), ("POST", "missing/30"), ("GET", "sync"),
    )  # fmt: skip
    for method, tail in wrong:
        assert_error(b.call(method, tail), 405, "does not support")
    assert_error(b.call("GET", "nosuch/1"), 404, "no endpoint 'nosuch'")


def test_body_endpoints_need_a_labelmap_sync(server):
    uuid = server.new_repo()
    server.new_instance(uuid, "tarsupervoxels", "blobs", Extension="drc")
    server.new_instance(uuid, "keyvalue", "kv")
    b = Blobs(server, uuid)
    for method, tail in (("GET", "tarfile/1"), ("GET", "missing/1")):
        assert_error(b.call(method, tail), 400, 'data "blobs" is not synced with any labelmap instance')
    assert b.head(1) == 400
    assert b.ok("GET", "exists", data=b"[1]").json() == [False]  # needs no labelmap
    assert_error(b.call("POST", "sync", json={"sync": "kv"}), 400, "blobs", "a labelmap")
    assert_error(b.call("POST", "sync", json={"sync": "nosuch"}), 404)
    assert b.ok("GET", "info").json()["Base"]["Syncs"] == []


def test_sync_replace_and_clear(server):
    b = new_blobs(server, volume=False)
    server.new_instance(b.uuid, "labelmap", "other")
    b.ok("POST", "sync", json={"sync": "other"})
    assert b.ok("GET", "info").json()["Base"]["Syncs"] == ["labels", "other"]
    b.ok("POST", "sync", params={"replace": "true"}, json={"sync": "other"})
    assert b.ok("GET", "info").json()["Base"]["Syncs"] == ["other"]
    b.ok("POST", "sync", params={"replace": "true"}, json={"sync": ""})
    assert b.ok("GET", "info").json()["Base"]["Syncs"] == []
    assert_error(b.call("GET", "missing/1"), 400, "not synced with any labelmap")


@pytest.mark.parametrize("ext", ["", "has space", "a/b", "é", "x" * 65])
def test_creation_refuses_bad_extensions(server, ext):
    uuid = server.new_repo()
    body = {"typename": "tarsupervoxels", "dataname": "b", "Extension": ext}
    r = requests.post(server.api(f"repo/{uuid}/instance"), json=body, timeout=TIMEOUT)
    assert r.status_code == 400, r.text
    assert ("must have Extension set" if not ext else "Extension") in r.text


def test_info_shows_and_changes_the_extension(blobs):
    b = blobs
    info = b.ok("GET", "info").json()
    assert info["Extended"] == {"Extension": "dat"}
    assert info["Base"]["TypeName"] == "tarsupervoxels" and info["Base"]["Versioned"] is True
    assert info["Base"]["Syncs"] == ["labels"]
    b.ok("POST", "supervoxel/60", data=b"as dat")
    r = b.ok("POST", "info", json={"extension": "drc"})
    assert r.text == "Changed 'blobs' based on received configuration: Extension=drc\n"
    assert b.ok("GET", "info").json()["Extended"] == {"Extension": "drc"}
    assert b.blob(60).status_code == 404  # stored as 60.dat: not renamed
    assert b.tarfile(60) == [("60.missing", b"")]
    b.ok("POST", "load", data=make_tar({"60.drc": b"as drc"}))
    assert b.tarfile(60) == [("60.drc", b"as drc")]
    assert_error(b.load(make_tar({"61.dat": b"x"})), 400, 'expect "drc"')
    b.ok("POST", "info", json={"Extension": "dat"})
    assert b.blob(60).content == b"as dat"
    assert_error(b.call("POST", "info", json={"Extension": "a b"}), 400, "Extension must be")
    assert_error(b.call("POST", "info", json={"Compression": "gzip"}), 400, "can change Extension only")
    assert_error(b.call("POST", "info", data=b"[1]"), 400)
    assert b.ok("GET", "info").json()["Extended"] == {"Extension": "dat"}


def test_extension_survives_a_restart(server_factory, tmp_path):
    store = tmp_path / "store"
    server = server_factory(store_dir=store)
    b = new_blobs(server, extension="ngmesh", volume=False)
    b.ok("POST", "supervoxel/3", data=b"mesh")
    b.ok("POST", "info", json={"Extension": "drc"})
    b.ok("POST", "supervoxel/3", data=b"draco")
    server.stop()
    again = server_factory(store_dir=store)
    b2 = Blobs(again, b.uuid)
    assert b2.ok("GET", "info").json()["Extended"] == {"Extension": "drc"}
    assert b2.blob(3).content == b"draco"


# ---- versions ------------------------------------------------------------------------------------


def test_versioned_blobs_follow_the_dag(blobs, server):
    b = blobs
    root = b.uuid
    b.ok("POST", "supervoxel/7", data=b"root")
    server.commit(root)
    assert_error(b.call("POST", "supervoxel/7", data=b"x"), 409, "locked node")
    assert_error(b.call("DELETE", "supervoxel/7"), 409, "locked node")
    assert_error(b.load(make_tar({"7.dat": b"x"})), 409, "locked node")
    child = server.newversion(root)
    b.ok("POST", "supervoxel/8", child, data=b"child")
    b.ok("DELETE", "supervoxel/7", child)
    assert b.blob(8, root).status_code == 404  # DVID would show the child's write at the root
    assert b.blob(8, child).content == b"child"
    assert b.blob(7, root).content == b"root" and b.blob(7, child).status_code == 404
    assert b.exists([7, 8], root) == [True, False] and b.exists([7, 8], child) == [False, True]
    server.commit(child)
    grandchild = server.newversion(child)
    assert b.blob(8, grandchild).content == b"child"  # the nearest ancestor's
    b.ok("POST", "load", grandchild, data=make_tar({"7.dat": b"again"}))
    assert b.blob(7, grandchild).content == b"again" and b.blob(7, child).status_code == 404


def test_unversioned_blobs_live_at_the_root_like_dvid(server):
    b = new_blobs(server, versioned=False)
    root = b.uuid
    assert b.ok("GET", "info").json()["Base"]["Versioned"] is False
    server.commit(root)
    child = server.newversion(root)
    b.ok("POST", "supervoxel/7", child, data=b"from the child")  # §4.5 8: read back at the root
    assert b.blob(7, root).content == b"from the child"
    b.ok("POST", "supervoxel/9", root, data=b"at the committed root")  # unversioned: allowed
    assert b.blob(9, child).content == b"at the committed root"
    b.ok("DELETE", "supervoxel/9", child)
    assert b.blob(9, root).status_code == 404


def test_body_membership_is_read_at_the_url_version(blobs, server):
    b = blobs
    load_spec_data(b)
    root = b.uuid
    server.commit(root)
    child = server.newversion(root)
    b.labelmap("POST", "merge", child, data="[30, 60]")
    assert [n for n, _ in b.tarfile(30, child)][-1] == "64.dat" and ("60.dat", text_of(60)) in b.tarfile(
        30, child
    )
    assert ("60.dat", text_of(60)) not in b.tarfile(30, root)
    assert b.head(60, child) == 400 and b.head(60, root) == 200  # 60 was merged away in the child
    assert b.ok("GET", "missing/30", child).json() == [15]


# ---- what neuclease calls ------------------------------------------------------------------------


def test_neuclease_tarsupervoxels_calls(server):
    from tests.neuclease_client import Neuclease

    nc = Neuclease(server.url)
    uuid = nc.create_repo("meshes", "neuclease")
    nc.create_labelmap_instance(uuid, "segmentation")
    nc.ok("POST", nc.n(uuid, "segmentation", "raw/0_1_2/64_64_64/64_64_64"), data=stripes_volume())
    nc.ok("POST", nc.n(uuid, "segmentation", "merge"), data=json.dumps(MERGED))
    nc.create_tarsupervoxel_instance(uuid, "segmentation_sv_meshes", "segmentation", ".drc")
    inst = "segmentation_sv_meshes"
    assert nc.fetch_instance_info(uuid, inst)["Extended"]["Extension"] == "drc"
    nc.post_load(uuid, inst, make_tar({f"{sv}.drc": text_of(sv) for sv in (10, 15, 18, 19, 20, 21)}))
    nc.post_supervoxel(uuid, inst, 30, text_of(30))
    assert nc.fetch_supervoxel(uuid, inst, 30) == text_of(30)
    assert nc.fetch_tarfile(uuid, inst, 30, check_head=True) is False
    assert nc.fetch_missing(uuid, inst, 30).tolist() == [64]
    assert nc.fetch_exists(uuid, inst, [64, 10, 1]) == {64: False, 10: True, 1: False}
    nc.post_supervoxel(uuid, inst, 64, b"")
    assert nc.fetch_tarfile(uuid, inst, 30, check_head=True) is True
    out = io.BytesIO()
    nc.fetch_tarfile(uuid, inst, 30, out)
    assert out.getvalue() == nc.fetch_tarfile(uuid, inst, 30)
    assert [n for n, _ in entries(out.getvalue())] == [f"{sv}.drc" for sv in sorted(MERGED)]
    nc.delete_supervoxel(uuid, inst, 64)
    assert nc.fetch_missing(uuid, inst, 30).dtype == np.uint64
    assert nc.fetch_missing(uuid, inst, 30).tolist() == [64]
    with pytest.raises(requests.HTTPError, match="404"):
        nc.fetch_supervoxel(uuid, inst, 64)
