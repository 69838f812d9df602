"""labelgraph over HTTP on a real dvid server (LevelDB; tests/test_postgres_http_labelgraph.py runs
this module again on PostgreSQL): the cases of spec more-types.md §2.6, byte-level propertytransaction
formats, every error path, versions, transaction ids across a restart, the labelmap merge sync and
push/pull; then property tests of the record codec and of merge against a plain reference."""

from __future__ import annotations

import struct
import threading

import numpy as np
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dvid.dag.ancestry import Ancestry
from dvid.datatype.common.envelope import Compression
from dvid.datatype.labelgraph import graph
from dvid.datatype.labelgraph import records as rec
from dvid.datatype.labelgraph.wire import go_float
from dvid.storage.memory import MemoryEngine
from dvid.storage.versioned import VersionedStore

TIMEOUT = 30
EMPTY = {"Transactions": [], "Vertices": [], "Edges": []}
EMPTY_BYTES = b'{"Transactions":[],"Vertices":[],"Edges":[]}'


class Graph:
    """A labelgraph instance on a test server, at any version of its repo."""

    def __init__(self, server, uuid: str, name: str = "g") -> None:
        self.server, self.uuid, self.name = server, uuid, name

    def url(self, tail: str, uuid: str | None = None) -> str:
        return self.server.api(f"node/{uuid or self.uuid}/{self.name}/{tail}")

    def call(self, method: str, tail: str, uuid: str | None = None, **kw) -> requests.Response:
        return requests.request(method, self.url(tail, uuid), timeout=TIMEOUT, **kw)

    def ok(self, method: str, tail: str, uuid: str | None = None, **kw) -> requests.Response:
        r = self.call(method, tail, uuid, **kw)
        assert r.status_code == 200, r.text
        return r

    def bad(self, method: str, tail: str, message: str, status: int = 400, **kw) -> requests.Response:
        r = self.call(method, tail, **kw)
        assert r.status_code == status, (r.status_code, r.text)
        assert message in r.text, r.text
        return r

    def post_graph(self, vertices, edges=(), uuid: str | None = None) -> None:
        self.ok("POST", "subgraph", uuid, json=lg(vertices, edges))

    def whole(self, uuid: str | None = None) -> dict:
        return self.ok("GET", "subgraph", uuid).json()

    def state(self, uuid: str | None = None) -> tuple[dict[int, float], dict[tuple[int, int], float]]:
        g = self.whole(uuid)
        return (
            {v["Id"]: v["Weight"] for v in g["Vertices"]},
            {(e["Id1"], e["Id2"]): e["Weight"] for e in g["Edges"]},
        )

    def neighbors(self, vid: int, uuid: str | None = None) -> dict:
        return self.ok("GET", f"neighbors/{vid}", uuid).json()


def lg(vertices=(), edges=(), transactions=None) -> dict:
    """A LabelGraph: vertices as (id, weight), edges as (id1, id2, weight)."""
    out: dict = {
        "Vertices": [{"Id": v, "Weight": w} for v, w in vertices],
        "Edges": [{"Id1": a, "Id2": b, "Weight": w} for a, b, w in edges],
    }
    if transactions is not None:
        out["Transactions"] = transactions
    return out


@pytest.fixture
def g(server_factory):
    server = server_factory()
    uuid = server.new_repo("labelgraph")
    server.new_instance(uuid, "labelgraph", "g")
    return Graph(server, uuid)


def instance(server, uuid: str, name: str = "g"):
    repo, _ = server.manager.resolve(uuid)
    return repo.instance(name)


def data_context(server, uuid: str, name: str = "g"):
    """The instance's data at a version, to look at stored bytes."""
    repo, node = server.manager.resolve(uuid)
    return repo.instance(name).context_at(repo.dag.ancestry(node.version))


# ---- propertytransaction binary helpers ----------------------------------------------------------


def u64s(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}Q", *values)


def tx_get_body(vertices: list[tuple[int, int]], entries: list[tuple[int, ...]]) -> bytes:
    out = [u64s(len(vertices)), *(u64s(v, t) for v, t in vertices), u64s(len(entries))]
    out += [u64s(*ids) for ids in entries]
    return b"".join(out)


def tx_post_body(vertices: list[tuple[int, int]], entries: list[tuple[tuple[int, ...], bytes]]) -> bytes:
    out = [u64s(len(vertices)), *(u64s(v, t) for v, t in vertices), u64s(len(entries))]
    for ids, value in entries:
        out += [u64s(*ids, len(value)), value]
    return b"".join(out)


def parse_tx_response(body: bytes, *, width: int | None) -> tuple[list, list, list | None]:
    """(locked pairs, failed ids, properties or None) of a response; width: ids per entry (GET)."""
    at = 0

    def take(n: int) -> tuple[int, ...]:
        nonlocal at
        values = struct.unpack_from(f"<{n}Q", body, at)
        at += 8 * n
        return values

    (n,) = take(1)
    locked = [take(2) for _ in range(n)]
    (f,) = take(1)
    failed = list(take(f))
    props = None
    if width is not None:
        (p,) = take(1)
        props = []
        for _ in range(p):
            *ids, size = take(width + 1)
            props.append((tuple(ids), body[at : at + size]))
            at += size
    assert at == len(body), "response has trailing bytes"
    return locked, failed, props


# ---- spec §2.6 -----------------------------------------------------------------------------------


def test_1_post_then_get_subgraph_and_2_delete_all(g):
    body = {
        "Transactions": [],
        "Vertices": [{"Id": 1, "Weight": 2.3}, {"Id": 2, "Weight": 10.1}],
        "Edges": [{"Id1": 1, "Id2": 2, "Weight": 10}],
    }
    r = g.ok("POST", "subgraph", json=body)
    assert r.content == b""
    r = g.ok("GET", "subgraph")
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.content == (
        b'{"Transactions":[],"Vertices":[{"Id":1,"Weight":2.3},{"Id":2,"Weight":10.1}],'
        b'"Edges":[{"Id1":1,"Id2":2,"Weight":10}]}'
    )
    g.ok("DELETE", "subgraph")
    assert g.ok("GET", "subgraph").content == EMPTY_BYTES


def test_empty_graph_is_exactly_the_empty_labelgraph(g):
    assert g.ok("GET", "subgraph").content == EMPTY_BYTES


def test_3_edges_are_undirected(g):
    g.post_graph([(1, 5), (2, 11)], [(2, 1, 0.3)])
    assert g.state() == ({1: 5, 2: 11}, {(1, 2): 0.3})
    assert g.ok("GET", "property/2/1/none").content == b""
    # the edge stored under (min, max): DVID's key bytes
    ctx = data_context(g.server, g.uuid)
    stored = ctx.get(b"\x01" + struct.pack(">QQ", 1, 2))
    assert stored == b"\x00" + struct.pack("<QQdQ", 1, 2, 0.3, 0)
    assert ctx.get(b"\x00" + struct.pack(">Q", 1)) == b"\x00" + struct.pack("<QdQQQ", 1, 5.0, 1, 2, 0)


def test_4_neighbors(g):
    g.post_graph([(1, 2.3), (2, 10.1)], [(1, 2, 10)])
    r = g.ok("GET", "neighbors/1")
    assert r.content == (
        b'{"Transactions":null,"Vertices":[{"Id":1,"Weight":2.3},{"Id":2,"Weight":10.1}],'
        b'"Edges":[{"Id1":1,"Id2":2,"Weight":10}]}'
    )
    g.post_graph([(9, 1)])
    assert (
        g.ok("GET", "neighbors/9").content
        == b'{"Transactions":null,"Vertices":[{"Id":9,"Weight":1}],"Edges":null}'
    )


def test_5_weight_increments(g):
    g.post_graph([(1, 2.3), (2, 10.1)], [(1, 2, 10)])
    g.ok("POST", "weight", json=lg([(1, 1), (3, 4)], [(1, 2, 0.5)]))
    vertices, edges = g.state()
    assert vertices == {1: 3.3, 2: 10.1, 3: 4}
    assert edges == {(1, 2): 10.5}
    # a new edge between stored and posted vertices is created with the increment
    g.ok("POST", "weight", json=lg([(4, 1)], [(3, 4, 2)]))
    assert g.state()[1] == {(1, 2): 10.5, (3, 4): 2}
    assert [v["Id"] for v in g.neighbors(4)["Vertices"]] == [4, 3]


def test_6_merge(g):
    g.post_graph([(1, 1), (2, 2), (3, 3)], [(1, 2, 1), (1, 3, 2), (2, 3, 4)])
    g.ok("POST", "merge", json={"Vertices": [{"Id": 2}, {"Id": 1}], "Edges": []})
    assert g.state() == ({1: 3, 3: 3}, {(1, 3): 6})
    assert g.neighbors(3)["Vertices"] == [{"Id": 3, "Weight": 3}, {"Id": 1, "Weight": 3}]


def test_merge_weight_and_edge_overrides_and_nohistory(g):
    g.post_graph([(1, 1), (2, 2), (3, 3), (4, 4)], [(1, 2, 1), (1, 3, 2), (2, 3, 4), (2, 4, 7)])
    g.ok("POST", "property/2/p", data=b"gone")
    g.ok("POST", "property/2/4/q", data=b"gone too")
    body = {"Vertices": [{"Id": 2}, {"Id": 1, "Weight": 50}], "Edges": [{"Id1": 4, "Id2": 1, "Weight": 0}]}
    g.ok("POST", "merge/nohistory", json=body)
    assert g.state() == ({1: 50, 3: 3, 4: 4}, {(1, 3): 6, (1, 4): 0})
    assert g.ok("GET", "property/2/p").content == b""
    assert g.ok("GET", "property/2/4/q").content == b""


def test_7_schema(g):
    g.bad("POST", "weight", "JSON did not pass validation", json={"Vertices": []})
    g.ok("POST", "subgraph?unsafe=true", json={"Vertices": []})
    g.bad("POST", "subgraph", "JSON did not pass validation", json={"Vertices": []})
    g.bad("POST", "subgraph", "JSON did not pass validation", json={"Edges": []})
    g.bad("POST", "subgraph", "JSON did not pass validation", json=lg([(1, 1), (1, 1)]))
    g.bad("POST", "subgraph", "JSON did not pass validation", json={"Vertices": [{"Weight": 1}], "Edges": []})
    g.bad("POST", "subgraph", "JSON did not pass validation", json={"Vertices": [], "Edges": [{"Id1": 1}]})
    g.bad("POST", "merge", "JSON did not pass validation", json={"Vertices": [{"Id": 1}, {"Id": 2}]})
    assert g.whole() == EMPTY


def test_8_propertytransaction_vertices(g):
    g.post_graph([(7, 1)])
    url = "propertytransaction/vertices/foo"
    r = g.ok("GET", url, data=tx_get_body([(7, 0)], [(7,)]))
    assert r.headers["Content-Type"] == "application/octet-stream"
    locked, failed, props = parse_tx_response(r.content, width=1)
    ((vid, t1),) = locked
    assert vid == 7 and t1 > 0 and failed == [] and props == [((7,), b"")]
    assert r.content == u64s(1, 7, t1, 0, 1, 7, 0)  # byte-exact: L=1 (7,t1) F=0 P=1 (7, size 0)
    r = g.ok("POST", url, data=tx_post_body([(7, t1)], [((7,), b"abc")]))
    locked, failed, props = parse_tx_response(r.content, width=None)
    ((vid, t2),) = locked
    assert vid == 7 and t2 not in (0, t1) and failed == []
    assert r.content == u64s(1, 7, t2, 0)  # no property section
    r = g.ok("POST", url, data=tx_post_body([(7, t1)], [((7,), b"stale")]))
    assert r.content == u64s(0, 1, 7)  # L=0, F=1 (7): outdated
    r = g.ok("GET", url, data=tx_get_body([(7, 0)], [(7,)]))
    assert r.content == u64s(1, 7, t2, 0, 1, 7, 3) + b"abc"
    # 9: the plain property endpoint reads the same value
    assert g.ok("GET", "property/7/foo").content == b"abc"


def test_8_transaction_on_a_missing_vertex_stores_nothing(g):
    url = "propertytransaction/vertices/foo"
    ((_, t1),), _, _ = parse_tx_response(
        g.ok("GET", url, data=tx_get_body([(8, 0)], [(8,)])).content, width=1
    )
    r = g.ok("POST", url, data=tx_post_body([(8, t1)], [((8,), b"abc")]))
    locked, failed, _ = parse_tx_response(r.content, width=None)
    assert [v for v, _ in locked] == [8] and failed == []
    assert g.ok("GET", "property/8/foo").content == b""
    assert g.whole() == EMPTY


def test_propertytransaction_edges_and_unlocked_entries(g):
    g.post_graph([(1, 0), (2, 0), (3, 0)], [(1, 2, 1), (2, 3, 1)])
    url = "propertytransaction/edges/w"
    r = g.ok("GET", url, data=tx_get_body([(1, 0), (2, 0)], [(2, 1), (2, 3)]))
    locked, failed, props = parse_tx_response(r.content, width=2)
    ids = dict(locked)
    assert set(ids) == {1, 2} and failed == []
    assert props == [((2, 1), b"")]  # (2,3): vertex 3 not locked by this request, left out
    r = g.ok(
        "POST",
        url,
        data=tx_post_body([(1, ids[1]), (2, ids[2])], [((2, 1), b"x"), ((2, 3), b"y"), ((1, 2), b"")]),
    )
    assert [v for v, _ in parse_tx_response(r.content, width=None)[0]] == [1, 2]
    assert g.ok("GET", "property/1/2/w").content == b"x"
    assert g.ok("GET", "property/3/2/w").content == b""


def test_propertytransaction_reports_vertices_locked_by_others(g):
    g.post_graph([(1, 0), (2, 0)])
    url = "propertytransaction/vertices/p"
    ((_, t1), (_, t2)), _, _ = parse_tx_response(
        g.ok("GET", url, data=tx_get_body([(1, 0), (2, 0)], [])).content, width=1
    )
    tx = instance(g.server, g.uuid).transactions
    ctx = instance(g.server, g.uuid).root_context(None)
    held = tx.lock_read(ctx, [1, 2])
    try:
        r = g.ok("GET", url, data=tx_get_body([(1, 0), (3, 0)], [(1,), (3,)]))
        locked, failed, props = parse_tx_response(r.content, width=1)
        assert [v for v, _ in locked] == [3] and failed == [1] and props == [((3,), b"")]
        # write: locked by another with id 0 sent -> "locked", first; outdated after
        r = g.ok("POST", url, data=tx_post_body([(9, 5), (1, 0)], []))
        assert r.content == u64s(0, 2, 1, 9)
    finally:
        tx.release(held.vertices)
    r = g.ok("POST", url, data=tx_post_body([(1, t1), (2, t2)], [((1,), b"a"), ((2,), b"b")]))
    assert len(parse_tx_response(r.content, width=None)[0]) == 2


def test_9_edge_property_either_order(g):
    g.post_graph([(1, 0), (2, 0)], [(1, 2, 1)])
    g.ok("POST", "property/1/2/bar", data=b"\x00\x01binary")
    assert g.ok("GET", "property/2/1/bar").content == b"\x00\x01binary"
    r = g.ok("GET", "property/1/2/bar")
    assert r.headers["Content-Type"] == "application/octet-stream"
    g.ok("DELETE", "property/2/1/bar")
    assert g.ok("GET", "property/1/2/bar").content == b""
    g.ok("DELETE", "property/2/1/bar")  # always 200


def test_property_on_missing_vertex_or_edge_is_a_silent_no_op(g):
    g.post_graph([(1, 0), (2, 0)])
    g.ok("POST", "property/5/x", data=b"v")
    g.ok("POST", "property/1/2/x", data=b"v")  # no edge 1-2
    assert g.ok("GET", "property/5/x").content == b""
    assert g.ok("GET", "property/1/2/x").content == b""
    assert g.state() == ({1: 0, 2: 0}, {})


def test_property_values_are_stored_with_the_instance_compression(server):
    uuid = server.new_repo()
    server.new_instance(uuid, "labelgraph", "g", Compression="gzip")
    gg = Graph(server, uuid)
    gg.post_graph([(3, 0)])
    gg.ok("POST", "property/3/big", data=b"z" * 5000)
    ctx = data_context(server, uuid)
    stored = ctx.get(rec.vertex_property_tkey(3, "big"))
    assert stored[0] == 2 << 5 and len(stored) < 100  # gzip envelope
    assert gg.ok("GET", "property/3/big").content == b"z" * 5000
    # the name is in the vertex record: p=1, "big\0"
    vertex = ctx.get(rec.vertex_tkey(3))
    assert vertex.endswith(struct.pack("<Q", 1) + b"big\x00")


def test_10_overlapping_subgraph_calls_are_refused(g):
    inst = instance(g.server, g.uuid)
    assert inst.bulk_lock.acquire(blocking=False)
    try:
        for method, kw in (("GET", {}), ("POST", {"json": lg([(1, 1)])}), ("DELETE", {})):
            r = g.call(method, "subgraph", **kw)
            assert (r.status_code, r.text) == (
                400,
                f"Server busy with bulk transaction (/api/node/{g.uuid}/g/subgraph).\n",
            )
        # other endpoints do not care
        g.ok("POST", "weight", json=lg([(1, 1)]))
    finally:
        inst.bulk_lock.release()
    assert g.state() == ({1: 1}, {})


def test_10_overlapping_subgraph_calls_over_http(g):
    """A big POST and GETs at the same time: each is answered or refused as busy, nothing else."""
    n = 30_000
    big = lg([(i, 1) for i in range(n)], [(i, i + 1, 1) for i in range(n - 1)])
    outcome: dict[str, int] = {}

    def poster() -> None:  # retries while busy, as clients do
        while True:
            r = g.call("POST", "subgraph", json=big)
            if r.status_code != 400 or "Server busy" not in r.text:
                outcome["post"] = r.status_code
                return

    t = threading.Thread(target=poster)
    t.start()
    statuses = []
    while t.is_alive():
        r = g.call("GET", "subgraph", json={"Vertices": [], "Edges": []})
        statuses.append((r.status_code, r.text if r.status_code != 200 else ""))
    t.join()
    assert outcome["post"] == 200
    assert all(s == 200 or "Server busy with bulk transaction" in text for s, text in statuses)
    assert len(g.whole()["Edges"]) == n - 1


# ---- subgraph POST adds without wiping; atomic ----------------------------------------------------


def test_post_keeps_neighbours_and_properties_of_existing_vertices(g):
    g.post_graph([(1, 1), (2, 2)], [(1, 2, 5)])
    g.ok("POST", "property/1/name", data=b"one")
    g.ok("POST", "property/1/2/e", data=b"edge")
    g.post_graph([(1, 9)], [(1, 2, 6)])
    g.post_graph([(3, 3)], [(3, 1, 1)])
    assert g.state() == ({1: 9, 2: 2, 3: 3}, {(1, 2): 6, (1, 3): 1})
    assert g.ok("GET", "property/1/name").content == b"one"
    assert g.ok("GET", "property/2/1/e").content == b"edge"
    assert [v["Id"] for v in g.neighbors(1)["Vertices"]] == [1, 2, 3]


def test_post_with_an_edge_to_a_missing_vertex_stores_nothing(g):
    g.post_graph([(1, 1)])
    r = g.bad(
        "POST", "subgraph", "Failed to add edge 1-5: vertex 5", json=lg([(2, 2)], [(1, 2, 1), (1, 5, 1)])
    )
    assert "nothing was stored" in r.text
    assert g.state() == ({1: 1}, {})
    g.bad("POST", "weight", "vertex 5 does not exist", json=lg([(2, 2)], [(1, 5, 1)]))
    assert g.state() == ({1: 1}, {})


def test_get_subgraph_with_vertices(g):
    g.post_graph([(1, 1), (2, 2), (3, 3), (4, 4)], [(1, 2, 12), (2, 3, 23), (3, 4, 34)])
    r = g.ok("GET", "subgraph", json=lg([(2, 0), (3, 0)]))
    assert r.json() == {
        "Transactions": [],
        "Vertices": [{"Id": 2, "Weight": 2}, {"Id": 3, "Weight": 3}],
        "Edges": [
            {"Id1": 1, "Id2": 2, "Weight": 12},
            {"Id1": 2, "Id2": 3, "Weight": 23},
            {"Id1": 3, "Id2": 4, "Weight": 34},
        ],
    }
    g.bad("GET", "subgraph", "Failed to retrieve vertix 9: Vertex data empty", json=lg([(2, 0), (9, 0)]))


def test_delete_listed_vertices_and_edges(g):
    g.post_graph([(1, 1), (2, 2), (3, 3)], [(1, 2, 12), (2, 3, 23), (1, 3, 13)])
    g.ok("POST", "property/2/p", data=b"x")
    g.ok("POST", "property/2/3/q", data=b"y")
    g.ok("DELETE", "subgraph", json=lg([(2, 0), (77, 0)], [(1, 3, 0), (5, 6, 0)]))
    assert g.state() == ({1: 1, 3: 3}, {})
    assert g.neighbors(1)["Vertices"] == [{"Id": 1, "Weight": 1}]
    assert g.ok("GET", "property/2/p").content == b""
    assert g.ok("GET", "property/2/3/q").content == b""
    # a vertex posted again starts without the old properties
    g.post_graph([(2, 0)])
    assert g.ok("GET", "property/2/p").content == b""


def test_deleting_an_edge_of_an_inconsistent_graph_is_a_400(g):
    """A graph stored by DVID, whose POST reset vertex 1's neighbours: edge 1-2 dangles."""
    g.post_graph([(1, 1), (2, 2)], [(1, 2, 5)])
    ctx = data_context(g.server, g.uuid)
    ctx.put(rec.vertex_tkey(1), rec.encode_vertex(rec.Vertex(1, 1.0)))
    g.bad("DELETE", "subgraph", "vertex 1 does not list 2 as a neighbour", json=lg([], [(1, 2, 0)]))
    g.bad("DELETE", "subgraph", "inconsistent", json=lg([(2, 0)]))
    assert g.state() == ({1: 1, 2: 2}, {(1, 2): 5})
    assert g.neighbors(2)["Edges"] == [{"Id1": 1, "Id2": 2, "Weight": 5}]  # reads answer what is stored
    g.ok("DELETE", "subgraph")  # the whole graph can always go
    assert g.whole() == EMPTY


def test_numbers_in_go_formatting_and_exact_u64_ids(g):
    big = 2**64 - 1
    g.post_graph([(big, 1e21), (big - 1, 1e-7), (0, -0.5), (5, 123456789012.0)], [(big, big - 1, 2.5e-6)])
    r = g.ok("GET", "subgraph")
    assert r.content == (
        b'{"Transactions":[],"Vertices":[{"Id":0,"Weight":-0.5},{"Id":5,"Weight":123456789012},'
        b'{"Id":18446744073709551614,"Weight":1e-7},{"Id":18446744073709551615,"Weight":1e+21}],'
        b'"Edges":[{"Id1":18446744073709551614,"Id2":18446744073709551615,"Weight":0.0000025}]}'
    )


def test_large_whole_graph_streams(g):
    n = 20_000
    g.post_graph([(i, i / 2) for i in range(n)], [(i, i + 1, 1) for i in range(n - 1)])
    got = g.whole()
    assert len(got["Vertices"]) == n and got["Vertices"][-1] == {"Id": n - 1, "Weight": (n - 1) / 2}
    assert len(got["Edges"]) == n - 1 and got["Edges"][0] == {"Id1": 0, "Id2": 1, "Weight": 1}


# ---- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, message",
    [
        (b"", "request body is empty"),
        (b"{", "Malformed JSON"),
        (b"[]", "expected an object"),
        (b'{"Vertices":[{"Id":-1}],"Edges":[]}', "Vertices.0.Id"),
        (b'{"Vertices":[{"Id":1.5}],"Edges":[]}', "Vertices.0.Id"),
        (b'{"Vertices":[{"Id":2.0}],"Edges":[]}', "Vertices.0.Id"),
        (b'{"Vertices":[{"Id":18446744073709551616}],"Edges":[]}', "Vertices.0.Id"),
        (b'{"Vertices":[{"Id":"1"}],"Edges":[]}', "Vertices.0.Id"),
        (b'{"Vertices":[{"Id":1,"Weight":"2"}],"Edges":[]}', "Vertices.0.Weight"),
        (b'{"Vertices":[{"Id":1,"Weight":NaN}],"Edges":[]}', "not a finite number"),
        (b'{"Vertices":[],"Edges":[{"Id1":3,"Id2":3}]}', "joins a vertex to itself"),
    ],
)
def test_bad_labelgraph_bodies(g, body, message):
    for endpoint in ("subgraph", "weight", "merge"):
        g.bad("POST", endpoint, message, data=body)
    assert g.whole() == EMPTY


def test_unsafe_still_checks_types(g):
    g.bad(
        "POST",
        "subgraph?unsafe=true",
        "LabelGraph JSON could not be decoded",
        data=b'{"Vertices":[{"Id":-4}]}',
    )


def test_merge_errors(g):
    g.post_graph([(1, 1), (2, 2)])
    g.bad("POST", "merge", "Must specify at least two vertices for merging", json=lg([(1, 0)]))
    g.bad(
        "POST",
        "merge",
        "Must specify at least two vertices for merging",
        json={"Vertices": [{"Id": 1}, {"Id": 1, "Weight": 2}], "Edges": []},
    )
    g.bad("POST", "merge", "Failed to merge: vertex 3 does not exist", json=lg([(3, 0), (1, 0)]))
    g.bad("POST", "merge/sometimes", "unknown merge option", json=lg([(2, 0), (1, 0)]))
    g.bad("POST", "undomerge", "undomerge not yet implemented")
    assert g.state() == ({1: 1, 2: 2}, {})


def test_weight_with_too_many_vertices(g):
    g.bad("POST", "weight", "at most 1000", json=lg([(i, 1) for i in range(1001)]))
    g.ok("POST", "weight", json=lg([(i, 1) for i in range(1000)]))


def test_weight_waits_for_locked_vertices_then_gives_up(g):
    g.post_graph([(1, 1)])
    inst = instance(g.server, g.uuid)
    ctx = inst.root_context(None)
    held = inst.transactions.lock_read(ctx, [1])
    inst.transactions.wait_seconds = 0.3
    try:
        g.bad("POST", "weight", "vertices 1 stayed locked by other requests", status=409, json=lg([(1, 1)]))
        assert g.state()[0] == {1: 1}
        # released while the request waits: it goes through
        inst.transactions.wait_seconds = 20
        timer = threading.Timer(0.3, inst.transactions.release, args=(held.vertices,))
        timer.start()
        g.ok("POST", "weight", json=lg([(1, 1)]))
        timer.join()
    finally:
        inst.transactions.release(held.vertices)
    assert g.state()[0] == {1: 2}


@pytest.mark.parametrize(
    "method, tail, message",
    [
        ("GET", "neighbors/abc", "Vertex number not provided"),
        ("GET", "neighbors/-1", "Vertex number not provided"),
        ("GET", "neighbors/18446744073709551616", "Vertex number not provided"),
        ("GET", "neighbors/5", "Failed to retrieve vertex 5"),
        ("GET", "neighbors/1/x", "unknown path"),
        ("GET", "subgraph/extra", "unknown path"),
        ("POST", "weight/extra", "unknown path"),
        ("GET", "property/1", "Incorrect number of parameters specified for handling properties"),
        ("GET", "property/1/2/3/4", "Incorrect number of parameters specified for handling properties"),
        ("POST", "property/x/name", "vertex id must be an unsigned 64-bit integer"),
        ("GET", "property/1/1/name", "join a vertex to itself"),
        ("GET", "propertytransaction/nodes/foo", "not 'nodes'"),
        ("GET", "propertytransaction/vertices", "expect a property name"),
        ("POST", "propertytransaction", "expect 'vertices' or 'edges'"),
        ("GET", "propertytransaction/vertices/foo/bar", "unknown path"),
    ],
)
def test_bad_paths(g, method, tail, message):
    g.bad(method, tail, message, data=tx_get_body([(1, 0)], []))


@pytest.mark.parametrize(
    "body, message",
    [
        (b"", "propertytransaction needs a body"),
        (u64s(1001) + u64s(*range(2002)) + u64s(0), "at most 1000 vertices"),
        (u64s(2, 1, 0), "ends inside the vertex list"),
        (u64s(1, 1, 0), "ends inside the property count"),
        (u64s(1, 1, 0, 2, 1), "announces 2 properties"),
        (u64s(2, 1, 0, 1, 0, 0), "vertex 1 is listed twice"),
        (u64s(1, 1, 0, 0) + b"x", "1 bytes after its last property"),
        (b"\x01\x00", "ends inside the vertex count"),
    ],
)
def test_bad_transaction_bodies(g, body, message):
    g.bad("GET", "propertytransaction/vertices/foo", message, data=body)


def test_bad_transaction_post_bodies(g):
    url = "propertytransaction/vertices/foo"
    g.bad("POST", url, "property 0: 10 bytes announced, 3 left", data=u64s(1, 1, 0, 1, 1, 10) + b"abc")
    g.bad("POST", url, "ends inside the size of property 0", data=u64s(1, 1, 0, 1, 1))
    g.bad("POST", "propertytransaction/edges/foo", "joins a vertex to itself", data=u64s(1, 1, 0, 1, 1, 1, 0))
    g.bad("DELETE", url, "does not support DELETE", status=405)


def test_wrong_methods_are_405(g):
    for method, tail in (
        ("PUT", "subgraph"),
        ("PUT", "property/1/x"),
        ("POST", "neighbors/1"),
        ("GET", "merge"),
        ("GET", "weight"),
        ("DELETE", "merge"),
        ("PUT", "propertytransaction/vertices/x"),
    ):
        r = g.call(method, tail)
        assert r.status_code == 405, (method, tail, r.text)
    g.bad("GET", "nosuchendpoint", "no endpoint", status=404)


def test_info_has_no_extended_part(g):
    info = g.ok("GET", "info").json()
    assert list(info) == ["Base"]
    assert info["Base"]["TypeName"] == "labelgraph"
    assert "labelgraph" in g.ok("GET", "help").text


# ---- versions ------------------------------------------------------------------------------------


def test_versions_and_committed_nodes(g):
    root = g.uuid
    g.post_graph([(1, 1), (2, 2)], [(1, 2, 12)])
    g.ok("POST", "property/1/p", data=b"root")
    g.server.commit(root)
    for method, tail, kw in (
        ("POST", "subgraph", {"json": lg([(3, 3)])}),
        ("DELETE", "subgraph", {}),
        ("POST", "merge", {"json": lg([(2, 0), (1, 0)])}),
        ("POST", "weight", {"json": lg([(1, 1)])}),
        ("POST", "property/1/p", {"data": b"x"}),
        ("DELETE", "property/1/p", {}),
        ("POST", "propertytransaction/vertices/p", {"data": tx_post_body([(1, 1)], [])}),
    ):
        r = g.call(method, tail, **kw)
        assert r.status_code == 409 and "locked node" in r.text, (method, tail, r.text)
    # reads, and a transaction read (ids are per instance), work on a committed node
    assert g.state() == ({1: 1, 2: 2}, {(1, 2): 12})
    g.ok("GET", "propertytransaction/vertices/p", data=tx_get_body([(1, 0)], [(1,)]))
    child = g.server.newversion(root)
    g.ok("POST", "merge", child, json=lg([(2, 0), (1, 0)]))
    g.ok("POST", "property/1/p", child, data=b"child")
    g.post_graph([(5, 5)], uuid=child)
    assert g.state(child) == ({1: 3, 5: 5}, {})
    assert g.state(root) == ({1: 1, 2: 2}, {(1, 2): 12})
    assert g.ok("GET", "property/1/p", child).content == b"child"
    assert g.ok("GET", "property/1/p", root).content == b"root"
    g.ok("DELETE", "subgraph", child)
    assert g.whole(child) == EMPTY
    assert g.state(root) == ({1: 1, 2: 2}, {(1, 2): 12})


def test_unversioned_instance_writes_at_committed_nodes(server):
    uuid = server.new_repo()
    server.new_instance(uuid, "labelgraph", "g", Versioned="false")
    gg = Graph(server, uuid)
    gg.post_graph([(1, 1)])
    server.commit(uuid)
    child = server.newversion(uuid)
    gg.post_graph([(2, 2)], uuid=uuid)
    assert gg.state(child) == ({1: 1, 2: 2}, {})


# ---- transaction ids persist across a restart ----------------------------------------------------


def test_transaction_ids_survive_a_restart(server_factory, tmp_path):
    store = tmp_path / "restart"
    server = server_factory(store_dir=store)
    uuid = server.new_repo()
    server.new_instance(uuid, "labelgraph", "g")
    gg = Graph(server, uuid)
    gg.post_graph([(7, 0), (8, 0)])
    url = "propertytransaction/vertices/foo"
    locked, _, _ = parse_tx_response(
        gg.ok("GET", url, data=tx_get_body([(7, 0), (8, 0)], [])).content, width=1
    )
    ids = dict(locked)
    server.stop()
    server2 = server_factory(store_dir=store)
    gg2 = Graph(server2, uuid)
    # an id from before the restart still writes; the new one is above every id handed out before
    r = gg2.ok("POST", url, data=tx_post_body([(7, ids[7])], [((7,), b"after")]))
    ((vid, t_new),), failed, _ = parse_tx_response(r.content, width=None)
    assert vid == 7 and failed == [] and t_new > max(ids.values())
    assert gg2.ok("GET", "property/7/foo").content == b"after"
    # the old id is outdated now, also after another restart
    server2.stop()
    server3 = server_factory(store_dir=store)
    gg3 = Graph(server3, uuid)
    r = gg3.ok("POST", url, data=tx_post_body([(7, ids[7]), (8, ids[8])], [((8,), b"eight")]))
    locked, failed, _ = parse_tx_response(r.content, width=None)
    assert failed == [7] and [v for v, _ in locked] == [8] and locked[0][1] > t_new
    assert gg3.ok("GET", "property/8/foo").content == b"eight"
    # a vertex never seen gets a fresh id, never one handed out before
    ((_, t9),), _, _ = parse_tx_response(gg3.ok("GET", url, data=tx_get_body([(9, 0)], [])).content, width=1)
    assert t9 > locked[0][1]


# ---- labelmap sync -------------------------------------------------------------------------------


def test_labelmap_merges_merge_the_graph(server):
    uuid = server.new_repo()
    server.new_instance(uuid, "labelmap", "seg", BlockSize="32,32,32")
    server.new_instance(uuid, "labelgraph", "g")
    server.new_instance(uuid, "keyvalue", "kv")
    gg = Graph(server, uuid)
    gg.bad("POST", "sync", "labelgraph can only sync with", json={"sync": "kv"})
    gg.ok("POST", "sync", json={"sync": "seg"})
    vol = np.zeros((32, 32, 32), dtype="<u8")
    for i, label in enumerate((1, 2, 3, 4)):
        vol[i * 8 : (i + 1) * 8] = label
    r = requests.post(
        server.api(f"node/{uuid}/seg/raw/0_1_2/32_32_32/0_0_0"), data=vol.tobytes(), timeout=TIMEOUT
    )
    assert r.status_code == 200, r.text
    gg.post_graph([(1, 1), (2, 2), (3, 3)], [(1, 2, 1), (1, 3, 2), (2, 3, 4)])

    def seg_merge(labels) -> None:
        r = requests.post(server.api(f"node/{uuid}/seg/merge"), json=labels, timeout=TIMEOUT)
        assert r.status_code == 200, r.text

    seg_merge([1, 2])  # target 1, as the graph's merge {"Vertices":[2, 1]}
    assert gg.state() == ({1: 3, 3: 3}, {(1, 3): 6})
    seg_merge([4, 3])  # target 4 is not a vertex: created, then 3 merged into it
    assert gg.state() == ({1: 3, 4: 3}, {(1, 4): 6})
    # a cleave changes nothing in the graph
    r = requests.post(server.api(f"node/{uuid}/seg/cleave/1"), json=[2], timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert gg.state() == ({1: 3, 4: 3}, {(1, 4): 6})


# ---- push and pull -------------------------------------------------------------------------------


def test_push_carries_the_graph(pair):
    from tests.test_transfer import cli_ok

    src, dst = pair
    root = src.new_repo("lg")
    src.new_instance(root, "labelgraph", "g")
    gs = Graph(src, root)
    gs.post_graph([(1, 1), (2, 2)], [(1, 2, 12)])
    gs.ok("POST", "property/1/2/e", data=b"edge prop")
    src.commit(root)
    v2 = src.newversion(root)
    gs.ok("POST", "merge", v2, json=lg([(2, 0), (1, 0)]))
    gs.post_graph([(5, 0)], uuid=v2)
    src.commit(v2)
    cli_ok("--server", src.url, "push", root, dst.url, "-q")
    cli_ok("--server", src.url, "push", v2, dst.url, "-q")
    gd = Graph(dst, root)
    for u in (root, v2):
        assert gd.ok("GET", "subgraph", u).content == gs.ok("GET", "subgraph", u).content
    assert gd.state(v2) == ({1: 3, 5: 0}, {})
    assert gd.ok("GET", "property/2/1/e", root).content == b"edge prop"


# ---- property tests: record codec and merge against a reference -----------------------------------

ids = st.integers(0, 2**64 - 1)
weights = st.floats(allow_nan=False, allow_infinity=False)
names = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1, max_size=8
)


@given(ids, weights, st.lists(ids, unique=True, max_size=20), st.lists(names, unique=True, max_size=5))
def test_vertex_record_round_trip(vid, weight, neighbors, props):
    v = rec.Vertex(vid, weight, dict.fromkeys(neighbors), dict.fromkeys(props))
    raw = rec.encode_vertex(v)
    assert raw[:1] == b"\x00" and len(raw) == 1 + 24 + 8 * len(neighbors) + 8 + sum(
        len(p.encode()) + 1 for p in props
    )
    assert rec.decode_vertex(raw) == v
    assert rec.vertex_weight(raw) == weight or (weight != weight)


@given(ids, ids, weights, st.lists(names, unique=True, max_size=5))
def test_edge_record_round_trip(a, b, weight, props):
    v1, v2 = rec.edge_ends(a, b)
    e = rec.Edge(v1, v2, weight, dict.fromkeys(props))
    raw = rec.encode_edge(e)
    assert raw[:25] == b"\x00" + struct.pack("<QQd", v1, v2, weight)
    assert rec.decode_edge(raw) == e and rec.edge_weight(raw) == weight
    assert rec.edge_tkey(a, b) == rec.edge_tkey(b, a) == b"\x01" + struct.pack(">QQ", v1, v2)


@given(weights)
def test_go_float_reads_back(x):
    assert float(go_float(x)) == x
    assert not go_float(x).endswith(".0")


def reference_merge(
    vw: dict[int, float],
    ew: dict[frozenset, float],
    ids: list[int],
    keep_weight: float,
    overrides: dict[int, float],
) -> None:
    """The spec's merge algorithm on plain dicts (vertex -> weight, {a, b} -> weight)."""
    keep = ids[-1]
    members = set(ids)
    total = sum(vw[v] for v in members)
    acc: dict[int, float] = {}
    for v in members:
        for pair, w in ew.items():
            if v in pair:
                (n,) = pair - {v}
                acc[n] = acc.get(n, 0.0) + w
    for n, w in overrides.items():
        if n in acc:
            acc[n] = w
    for pair in [p for p in ew if p & members]:
        del ew[pair]
    for v in members - {keep}:
        del vw[v]
    for n, w in acc.items():
        if n not in members:
            ew[frozenset((keep, n))] = w
    vw[keep] = keep_weight if keep_weight != 0 else total


small_weights = st.integers(-8, 8).map(float)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(st.integers(1, 8), small_weights, min_size=2),
    st.lists(st.tuples(st.integers(1, 8), st.integers(1, 8), small_weights), max_size=20),
    st.data(),
)
def test_merge_matches_the_reference(vertices, edge_list, data):
    ctx = VersionedStore(MemoryEngine()).context(1, Ancestry.root(1))
    edges = {}
    for a, b, w in edge_list:
        if a != b and a in vertices and b in vertices:
            edges[frozenset((a, b))] = w
    edit = graph.GraphEdit(ctx, Compression())
    graph.add_graph(edit, list(vertices.items()), [(*sorted(p), w) for p, w in edges.items()])
    with ctx.batch() as b:
        edit.write(b)
    ids = data.draw(
        st.lists(st.sampled_from(sorted(vertices)), min_size=2, max_size=5).filter(lambda x: len(set(x)) >= 2)
    )
    keep_weight = data.draw(st.sampled_from([0.0, 5.0]))
    overrides = data.draw(st.dictionaries(st.sampled_from(sorted(vertices)), small_weights, max_size=3))
    overrides.pop(ids[-1], None)
    edit = graph.GraphEdit(ctx, Compression())
    graph.merge(edit, ids, keep_weight, overrides)
    with ctx.batch() as b:
        edit.write(b)
    vw, ew = dict(vertices), dict(edges)
    reference_merge(vw, ew, ids, keep_weight, overrides)
    assert dict(graph.all_vertices(ctx)) == vw
    assert {frozenset((a, b)): w for a, b, w in graph.all_edges(ctx)} == ew
    # and the graph stays consistent: neighbours are exactly the edges
    for vid in vw:
        v = graph.GraphEdit(ctx, Compression()).vertex(vid)
        assert v is not None
        assert set(v.neighbors) == {n for p in ew if vid in p for n in p - {vid}}
