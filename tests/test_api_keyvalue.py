"""dvid.api keyvalue as a MutableMapping and its batch forms, and neuronjson as a mapping, live."""

from __future__ import annotations

import pytest

import dvid.api


@pytest.fixture
def node(server):
    return dvid.api.connect(server.url, progress=False).new_repo("kv", "keyvalue")


def test_mapping_semantics(node):
    kv = node.create("keyvalue", "kv")
    assert isinstance(kv, dvid.api.KeyValue) and len(kv) == 0 and list(kv) == []
    kv["b"] = b"\x00\x01binary"
    kv["a"] = "text é"
    kv["empty"] = b""
    kv["with/slash and space"] = b"x"
    assert kv["a"] == "text é".encode()
    assert kv["empty"] == b"" and "empty" in kv
    assert kv["with/slash and space"] == b"x"
    assert list(kv) == ["a", "b", "empty", "with/slash and space"] and len(kv) == 4
    assert "missing" not in kv and 5 not in kv and "" not in kv
    with pytest.raises(KeyError):
        kv["missing"]
    assert kv.get("missing", b"default") == b"default"
    del kv["a"]
    assert "a" not in kv
    with pytest.raises(KeyError):
        del kv["a"]
    assert kv.pop("b") == b"\x00\x01binary"
    kv.update({"c": b"3", "d": b"4"})
    assert dict(kv.items()) == {"c": b"3", "d": b"4", "empty": b"", "with/slash and space": b"x"}
    assert kv.key_range("c", "d") == ["c", "d"]
    with pytest.raises(TypeError, match="bytes"):
        kv["n"] = 5  # type: ignore[assignment]
    with pytest.raises(KeyError):
        kv[""] = b"x"


def test_versions_see_their_own_values(node):
    kv = node.create("keyvalue", "kv")
    kv["k"] = b"root"
    child = node.commit().newversion()
    child["kv"]["k"] = b"child"
    assert kv["k"] == b"root" and child["kv"]["k"] == b"child"
    with pytest.raises(dvid.api.Conflict):
        kv["k"] = b"again"


@pytest.mark.parametrize("form", ["protobuf", "tar"])
def test_batch_get_and_put(node, form):
    kv = node.create("keyvalue", "kv")
    values = {f"key-{i:03d}": bytes([i]) * i for i in range(50)}
    kv.put_many(values)
    assert kv["key-049"] == bytes([49]) * 49
    wanted = ["key-007", "key-003", "key-040"]
    assert kv.get_many(wanted, form=form) == {k: values[k] for k in wanted}
    assert kv.get_many(["nope"], form=form) == {"nope": b""}
    kv.put_many([("x", "y")])
    assert kv["x"] == b"y"
    assert kv.range_items("key-010", "key-012") == {k: values[k] for k in ("key-010", "key-011", "key-012")}
    with pytest.raises(ValueError, match="form"):
        kv.get_many(["a"], form="json")


def test_neuronjson_mapping_and_query(node):
    ann = node.create("neuronjson", "annotations")
    assert isinstance(ann, dvid.api.NeuronJSON) and len(ann) == 0
    ann[1000] = {"type": "KC", "status": "Traced"}
    ann[2000] = {"type": "MBON", "status": "Traced"}
    ann[30] = {"type": "KC"}
    assert ann[1000] == {"bodyid": 1000, "type": "KC", "status": "Traced"}
    assert list(ann) == [30, 1000, 2000] and 2000 in ann and 5 not in ann and "x" not in ann
    assert [r["bodyid"] for r in ann.query({"type": "KC"})] == [30, 1000]
    assert ann.query({"status": "Traced"}, onlyid=True) == [1000, 2000]
    ann.update_fields(1000, {"status": "Orphan"})
    assert ann[1000]["status"] == "Orphan" and ann[1000]["type"] == "KC"
    ann[1000] = {"status": "Done"}  # assignment replaces the whole record
    assert ann[1000] == {"bodyid": 1000, "status": "Done"}
    del ann[30]
    with pytest.raises(KeyError):
        ann[30]
    with pytest.raises(KeyError):
        del ann[30]
    with pytest.raises(KeyError):
        ann[0] = {}
    assert [r["bodyid"] for r in ann.all()] == [1000, 2000]
