"""Building a labelmap from a labelblk (``POST ingest-labelblk`` and ``dvid labelmap from-labelblk``)
over real HTTP, with DVID's real segmentations: every read of the labelmap equals the labelblk's, an
interrupted conversion (stopped steps, a server restart) ends identical to one run straight through,
and bad requests change nothing."""

from __future__ import annotations

import numpy as np
import pytest
import requests
from click.testing import CliRunner, Result

from dvid.cli import cli
from dvid.datatype.common import rle
from dvid.datatype.labelmap import proto
from tests.test_labelmap import Client, volume  # noqa: F401  (the fixture)

#: The labelblk holds the four samples at 0_0_0 and one more copy of a sample at negative x, higher y
#: (in another row of scale 1's blocks).
EXTRA_OFFSET = (-64, 128, 0)
#: The box covering everything the labelblk holds, (x, y, z) offset and size.
BOX_OFFSET = (-64, 0, 0)
BOX_SIZE = (192, 192, 64)


def expected_volume(volume: np.ndarray) -> np.ndarray:  # noqa: F811
    """(z, y, x) labels of BOX: the volume at 0_0_0, the extra piece, zeros elsewhere."""
    out = np.zeros(BOX_SIZE[::-1], dtype="<u8")
    out[:, :128, 64:192] = volume
    out[:, 128:192, 0:64] = volume[:, :64, :64]
    return out


def raw_path(size=BOX_SIZE, offset=BOX_OFFSET) -> str:
    return f"raw/0_1_2/{'_'.join(map(str, size))}/{'_'.join(map(str, offset))}"


@pytest.fixture
def legacy(server, volume) -> Client:  # noqa: F811
    """A labelblk ``old`` with the data of ``expected_volume`` and a pyramid of 2 levels."""
    uuid = server.new_repo()
    server.new_instance(uuid, "labelblk", "old", VoxelSize="4,4,40", VoxelUnits="nm,nm,nm")
    old = Client(server, uuid, "old")
    old.ok("POST", "raw/0_1_2/128_128_64/0_0_0", data=volume.tobytes())
    old.ok("POST", raw_path((64, 64, 64), EXTRA_OFFSET), data=volume[:, :64, :64].tobytes())
    old.ok("POST", "pyramid", params={"levels": "2"})
    return old


def step(lm: Client, source: str = "old", **params: str) -> dict:
    return lm.ok("POST", "ingest-labelblk", params={"source": source, **params}).json()


def convert(lm: Client, source: str = "old", **params: str) -> list[dict]:
    """Run a conversion to its end over HTTP; the progress answered by each step."""
    answers = [step(lm, source, **params)]
    while not answers[-1]["complete"]:
        answers.append(step(lm, source, **params))
        assert len(answers) < 500
    return answers


def dvid(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--server", url, *args])


def runs_mask(runs: np.ndarray) -> np.ndarray:
    """The voxels of sparsevol runs as a mask over BOX."""
    mask = np.zeros(BOX_SIZE[::-1], dtype=bool)
    for x, y, z, n in (runs - [*BOX_OFFSET, 0]).tolist():
        mask[z, y, x : x + n] = True
    return mask


def assert_reads_equal_labelblk(lm: Client, old: Client, expected: np.ndarray) -> None:
    """Every read of ``lm`` equals the labelblk's data: raw bodies and supervoxels, sizes, labels,
    sparsevols, max label, extents, and scales 1 and 2."""
    assert old.get(raw_path()).content == expected.tobytes()  # the test's premise
    assert lm.get(raw_path()).content == expected.tobytes()
    assert lm.get(raw_path(), params={"supervoxels": "true"}).content == expected.tobytes()
    labels, counts = np.unique(expected[expected != 0], return_counts=True)
    assert lm.get("sizes", data=str(labels.tolist())).json() == counts.tolist()
    assert np.frombuffer(lm.get("listlabels").content, "<u8").tolist() == labels.tolist()
    assert lm.get("maxlabel").json() == {"maxlabel": int(labels.max())}
    for label in (int(labels[np.argmax(counts)]), int(expected[10, 150, 10]), int(labels[0])):
        runs = rle.decode_sparsevol(lm.ok("GET", f"sparsevol/{label}").content)
        assert np.array_equal(runs_mask(runs), expected == label), label
    ext = lm.get("info").json()["Extended"]
    old_ext = old.get("info").json()["Extended"]
    assert (ext["MinPoint"], ext["MaxPoint"]) == (old_ext["MinPoint"], old_ext["MaxPoint"]) == (
        [-64, 0, 0], [127, 191, 63])  # fmt: skip
    for scale in (1, 2):
        f = 2**scale
        size, offset = [s // f for s in BOX_SIZE], [o // f for o in BOX_OFFSET]
        path = raw_path(size, offset)
        got = lm.get(path, params={"scale": str(scale)}).content
        assert got == old.get(path, params={"scale": str(scale)}).content, scale
        assert len(set(np.frombuffer(got, "<u8").tolist())) > 10  # the levels hold labels


def index_rows(lm: Client, labels: list[int]) -> dict[int, list[tuple[int, int, int]]]:
    """Each label's index as sorted (block, supervoxel, count) rows."""
    msg = proto.LabelIndices.FromString(lm.get("indices", data=str(labels)).content)
    return {
        m.label: sorted((block, sv, n) for block, svc in m.blocks.items() for sv, n in svc.counts.items())
        for m in msg.indices
    }


def stored_blocks(lm: Client, scale: int) -> bytes:
    """Every stored block of a scale as supervoxels (raw uint64 frames)."""
    params = {"scale": str(scale), "supervoxels": "true", "compression": "uncompressed"}
    return lm.ok("GET", "blocks/256_256_64/-128_0_0", params=params).content


# ---- conversion ----------------------------------------------------------------------------------
def test_conversion_reads_equal_the_labelblk(legacy, volume):  # noqa: F811
    legacy.server.new_instance(legacy.uuid, "labelmap", "new", MaxDownresLevel="2")
    lm = Client(legacy.server, legacy.uuid, "new")
    answers = convert(lm, blocks="5")
    assert answers[0] == {"source": "old", "phase": "blocks", "scale": 0, "done": 5, "total": 5,
                          "source_blocks": 5, "max_downres": 2, "complete": False}  # fmt: skip
    assert [(a["phase"], a["complete"]) for a in answers[1:]] == [("complete", True)]
    assert lm.get("ingest-labelblk").json() == answers[-1]
    assert_reads_equal_labelblk(lm, legacy, expected_volume(volume))
    # a finished conversion answers at once; restart=true does it all again, to the same state
    before = stored_blocks(lm, 0)
    assert step(lm) == answers[-1]
    convert(lm, restart="true")
    assert stored_blocks(lm, 0) == before
    assert_reads_equal_labelblk(lm, legacy, expected_volume(volume))


def test_interrupted_conversion_ends_identical(server_factory, tmp_path, volume):  # noqa: F811
    store = tmp_path / "store"
    server = server_factory(store_dir=store)
    uuid = server.new_repo()
    server.new_instance(uuid, "labelblk", "old")
    old = Client(server, uuid, "old")
    old.ok("POST", "raw/0_1_2/128_128_64/0_0_0", data=volume.tobytes())
    old.ok("POST", raw_path((64, 64, 64), EXTRA_OFFSET), data=volume[:, :64, :64].tobytes())
    old.ok("POST", "pyramid", params={"levels": "2"})
    for name in ("straight", "stopped"):
        server.new_instance(uuid, "labelmap", name, MaxDownresLevel="2")
    straight, stopped = Client(server, uuid, "straight"), Client(server, uuid, "stopped")
    convert(straight, blocks="65536")

    # two steps of one block, then the server stops
    assert [step(stopped, blocks="1")["done"] for _ in range(2)] == [1, 2]
    assert stopped.get("ingest-labelblk").json()["done"] == 2
    server.stop()
    server = server_factory(store_dir=store)
    old, straight, stopped = (Client(server, uuid, n) for n in ("old", "straight", "stopped"))
    assert stopped.get("ingest-labelblk").json()["phase"] == "blocks"
    held = stored_blocks(stopped, 0)
    assert len(held) == 2 * (16 + 8 * 64**3)  # the two blocks converted, no more
    # steps of one block into the first pyramid scale, then the command line finishes it
    progress = step(stopped, blocks="1")
    while progress["phase"] == "blocks" or progress["done"] == 0:
        progress = step(stopped, blocks="1")
    assert (progress["phase"], progress["scale"], progress["done"], progress["total"]) == ("pyramid", 1, 1, 2)
    result = dvid(server.url, "labelmap", "from-labelblk", uuid, "old", "stopped", "--step", "1")
    assert result.exit_code == 0, result.output
    assert "built from labelblk old" in result.stdout and "5 blocks, 2 pyramid scale(s)" in result.stdout

    expected = expected_volume(volume)
    assert_reads_equal_labelblk(stopped, old, expected)
    labels = np.unique(expected[expected != 0]).tolist()
    assert index_rows(stopped, labels) == index_rows(straight, labels)
    for scale in (0, 1, 2):
        assert stored_blocks(stopped, scale) == stored_blocks(straight, scale), scale


def test_blocks_already_there_are_replaced_and_their_counts_moved(legacy, volume):  # noqa: F811
    legacy.server.new_instance(legacy.uuid, "labelmap", "new")
    lm = Client(legacy.server, legacy.uuid, "new")
    lm.ok("POST", "raw/0_1_2/64_64_64/0_0_0", data=np.full((64, 64, 64), 7, "<u8").tobytes())
    lm.ok("POST", "raw/0_1_2/64_64_64/640_0_0", data=np.full((64, 64, 64), 8, "<u8").tobytes())
    convert(lm)
    assert lm.get(raw_path()).content == expected_volume(volume).tobytes()
    assert lm.get("size/7").status_code == 404  # replaced everywhere
    assert lm.get("size/8").json() == {"voxels": 64**3}  # outside the labelblk: kept


def test_conversion_without_pyramid_or_blocks(server):
    uuid = server.new_repo()
    server.new_instance(uuid, "labelblk", "empty")
    server.new_instance(uuid, "labelmap", "new", MaxDownresLevel="3")
    lm = Client(server, uuid, "new")
    assert step(lm, "empty") == {"source": "empty", "phase": "complete", "scale": 0, "done": 0, "total": 0,
                                 "source_blocks": 0, "max_downres": 3, "complete": True}  # fmt: skip


# ---- the command line ----------------------------------------------------------------------------
def test_cli_creates_the_labelmap_and_converts(legacy, volume):  # noqa: F811
    url, uuid = legacy.server.url, legacy.uuid
    result = dvid(url, "labelmap", "from-labelblk", uuid, "old", "new")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f'Data "new" [labelmap] added to node {uuid} (MaxDownresLevel 2)',  # the labelblk's pyramid
        f"labelmap new built from labelblk old at {uuid}: 5 blocks, 2 pyramid scale(s)",
    ]
    lm = Client(legacy.server, uuid, "new")
    info = lm.get("info").json()["Extended"]
    old_info = legacy.get("info").json()["Extended"]
    assert info["BlockSize"] == [64, 64, 64] and info["MaxDownresLevel"] == 2
    assert (info["VoxelSize"], info["VoxelUnits"]) == (old_info["VoxelSize"], old_info["VoxelUnits"])
    assert_reads_equal_labelblk(lm, legacy, expected_volume(volume))
    again = dvid(url, "labelmap", "from-labelblk", uuid, "old", "new", "-q")
    assert again.exit_code == 0 and again.stdout.startswith("labelmap new built")
    shallow = dvid(url, "labelmap", "from-labelblk", uuid, "old", "shallow", "--max-downres", "0")
    assert shallow.exit_code == 0, shallow.output
    assert Client(legacy.server, uuid, "shallow").get("info").json()["Extended"]["MaxDownresLevel"] == 0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("nosuch", "new"), "no data instance 'nosuch'"),
        (("old_1", "new", "--max-downres", "x"), "'x' is not a valid integer"),
        (("kv", "new"), "'kv' is a keyvalue, not a labelblk"),
        (("old", "kv"), "'kv' exists and is a keyvalue, not a labelmap"),
        (("old", "two", "--max-downres", "1"), "exists with MaxDownresLevel 2, not 1"),
        (("small", "two"), "BlockSize [32, 32, 32]"),
    ],
)
def test_cli_refusals(legacy, args, words):
    server, uuid = legacy.server, legacy.uuid
    server.new_instance(uuid, "keyvalue", "kv")
    server.new_instance(uuid, "labelmap", "two", MaxDownresLevel="2")
    server.new_instance(uuid, "labelblk", "small", BlockSize="32,32,32")
    Client(server, uuid, "small").ok("POST", "raw/0_1_2/32_32_32/0_0_0", data=bytes(8 * 32**3))
    result = dvid(server.url, "labelmap", "from-labelblk", uuid, *args)
    assert result.exit_code != 0
    assert words in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert Client(server, uuid, "two").get("raw/0_1_2/64_64_64/0_0_0").content == bytes(8 * 64**3)


# ---- bad requests --------------------------------------------------------------------------------
def test_bad_requests_change_nothing(legacy):
    server, uuid = legacy.server, legacy.uuid
    server.new_instance(uuid, "labelmap", "new")
    server.new_instance(uuid, "labelmap", "other")
    server.new_instance(uuid, "labelblk", "old2")
    server.new_instance(uuid, "labelblk", "small", BlockSize="32,32,32")
    lm = Client(server, uuid, "new")
    assert lm.get("ingest-labelblk").status_code == 404
    for params, status, words in (
        ({}, 400, "needs source="),
        ({"source": "old", "blocks": "0"}, 400, "blocks must be between"),
        ({"source": "old", "blocks": "x"}, 400, "must be an integer"),
        ({"source": "nosuch"}, 404, "nosuch"),
        ({"source": "other"}, 400, "is a labelmap"),
        ({"source": "small"}, 400, "BlockSize [32, 32, 32]"),
    ):
        r = lm.post("ingest-labelblk", params=params)
        assert r.status_code == status and words in r.text, (params, r.status_code, r.text)
    assert lm.get("ingest-labelblk").status_code == 404
    assert lm.get("blocks/256_256_64/-128_0_0").content == b""

    # a conversion under way refuses another source until it is done or restarted
    assert step(lm, blocks="1")["done"] == 1
    r = lm.post("ingest-labelblk", params={"source": "old2"})
    assert r.status_code == 409 and "being built from labelblk 'old'" in r.text
    assert step(lm, "old2", restart="true")["complete"]  # old2 holds no blocks
    # committed versions take no conversion
    server.commit(uuid)
    r = lm.post("ingest-labelblk", params={"source": "old", "restart": "true"})
    assert r.status_code == 409
    assert lm.get("ingest-labelblk").json()["source"] == "old2"


def test_a_conversion_at_a_child_is_invisible_at_its_parent(legacy, volume):  # noqa: F811
    server, uuid = legacy.server, legacy.uuid
    server.new_instance(uuid, "labelmap", "new")
    server.commit(uuid)
    child = server.newversion(uuid)
    lm = Client(server, child, "new")
    convert(lm)
    assert lm.get(raw_path()).content == expected_volume(volume).tobytes()
    parent = Client(server, uuid, "new")
    assert parent.get(raw_path()).content == bytes(8 * int(np.prod(BOX_SIZE)))
    assert parent.get("ingest-labelblk").status_code == 404
    assert requests.get(parent.url("maxlabel"), timeout=10).json() == {"maxlabel": 0}
