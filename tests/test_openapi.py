"""The OpenAPI description (/api/openapi.json): valid, complete against the route tables, and true
of a live server (schemathesis finds no server error and no undocumented status or media type)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import hypothesis
import numpy as np
import pytest
import requests
import schemathesis
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from dvid.datatype import registry
from dvid.datatype.common.voxels import VOXEL_FORMATS
from dvid.datatype.imageblk import ImageBlk
from dvid.server.app import api_router
from dvid.server.openapi import route_arities
from dvid.server.routing import ANY_METHOD
from tests.serverutil import REQUIRED_SETTINGS, ServerThread

#: Instance name of each datatype on the test server (a name per type, so every type is described).
NAMES = {t: f"my-{t}" for t in registry.all_types()}
LABELS, BODIES, SYNAPSES, COUNTS, ROI = (
    NAMES["labelblk"], NAMES["labelvol"], NAMES["annotation"], NAMES["labelsz"], NAMES["roi"]
)  # fmt: skip


def _post(server: ServerThread, path: str, **kwargs) -> requests.Response:
    r = requests.post(server.api(path), timeout=30, **kwargs)
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
    return r


def populate(server: ServerThread) -> str:
    """A repo with an instance of every datatype, synced where types sync, each holding a little data."""
    uuid = server.new_repo("openapi")
    for type_name, name in NAMES.items():
        server.new_instance(uuid, type_name, name, **REQUIRED_SETTINGS.get(type_name, {}))
    node = f"node/{uuid}"
    _post(server, f"{node}/{BODIES}/sync", json={"sync": LABELS})
    _post(server, f"{node}/{LABELS}/sync", json={"sync": BODIES})
    _post(server, f"{node}/{SYNAPSES}/sync", json={"sync": LABELS})
    _post(server, f"{node}/{COUNTS}/sync", json={"sync": SYNAPSES})
    _post(server, f"{node}/{NAMES['tarsupervoxels']}/sync", json={"sync": NAMES["labelmap"]})
    _post(server, f"{node}/{NAMES['tarsupervoxels']}/supervoxel/7", data=b"mesh")
    for key, value in (("a", b"1"), ("b", b'{"x": 2}'), ("c/d", b"")):
        _post(server, f"{node}/{NAMES['keyvalue']}/key/{requests.utils.quote(key, safe='')}", data=value)
    for type_name, cls in registry.all_types().items():
        if issubclass(cls, ImageBlk) and type_name != "labelblk":
            voxels = bytes(range(256)) * (32**3 * VOXEL_FORMATS[cls.voxel_kind].bytes_per_voxel // 256)
            _post(server, f"{node}/{NAMES[type_name]}/raw/0_1_2/32_32_32/0_0_0", data=voxels)
    labels = np.zeros((64, 64, 64), np.uint64)
    labels[:, :, 32:] = 7
    labels[10:20, 10:20, 10:20] = 9
    _post(server, f"{node}/{LABELS}/raw/0_1_2/64_64_64/0_0_0", data=labels.tobytes())
    _post(server, f"{node}/{ROI}/roi", json=[[0, 0, 0, 1], [1, 0, 0, 0]])
    elements = [
        {
            "Pos": [40, 5, 5],
            "Kind": "PreSyn",
            "Tags": ["t1"],
            "Rels": [{"Rel": "PreSynTo", "To": [15, 15, 15]}],
        },
        {"Pos": [15, 15, 15], "Kind": "PostSyn", "Rels": [{"Rel": "PostSynTo", "To": [40, 5, 5]}]},
    ]
    _post(server, f"{node}/{SYNAPSES}/elements", json=elements)
    _post(server, f"{node}/{COUNTS}/reload")
    for body in (1, 7, 2**60 + 3):
        annotation = {"bodyid": body, "status": "Traced", "class": f"c{body % 3}", "position": [1, 2, 3]}
        _post(server, f"{node}/{NAMES['neuronjson']}/key/{body}?u=fuzz", json=annotation)
    graph = {
        "Vertices": [{"Id": 7, "Weight": 1}, {"Id": 9, "Weight": 2}],
        "Edges": [{"Id1": 7, "Id2": 9, "Weight": 3}],
    }
    _post(server, f"{node}/{NAMES['labelgraph']}/subgraph", json=graph)
    return uuid


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[tuple[ServerThread, str]]:
    """A server with every datatype instantiated and populated; no admin token; small limits, so
    generated requests stay cheap (over them: 413)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DVID_ADMIN_TOKEN", raising=False)
        server = ServerThread(
            tmp_path_factory.mktemp("openapi") / "store", max_request_voxels=1 << 18, max_body_bytes=8 << 20
        ).start()
        try:
            yield server, populate(server)
        finally:
            server.stop()


@pytest.fixture(scope="module")
def doc(live) -> dict:
    server, _ = live
    r = requests.get(server.api("openapi.json"), timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    return r.json()


def test_the_description_of_a_server_holding_every_datatype_is_valid_openapi_3_1(doc):
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    from dvid import __version__

    assert doc["info"]["version"] == __version__ and doc["info"]["title"]


def test_every_datatype_description_is_valid_and_unknown_types_are_404(live):
    server, _ = live
    for type_name in registry.all_types():
        r = requests.get(server.api(f"help/{type_name}/openapi.json"), timeout=10)
        assert r.status_code == 200, r.text
        type_doc = r.json()
        validate(type_doc)
        assert all(p.startswith("/api/node/{uuid}/{dataname}/") for p in type_doc["paths"])
    r = requests.get(server.api("help/nosuchtype/openapi.json"), timeout=10)
    assert r.status_code == 404 and "nosuchtype" in r.text


def test_every_route_of_every_table_appears_with_its_methods(doc):
    paths = doc["paths"]
    for route in api_router().routes:
        if ANY_METHOD in route.methods:  # the instance dispatchers: the instances' paths below
            continue
        assert route.path in paths, route.path
        assert {m.lower() for m in route.methods} <= set(paths[route.path]), route.path
    for type_name, cls in registry.all_types().items():
        base = f"/api/node/{{uuid}}/{NAMES[type_name]}"
        for route in cls.all_routes():
            for arity in route_arities(route):
                path = "/".join((base, route.endpoint, *(f"{{{a.name}}}" for a in route.args[:arity])))
                assert path in paths, path
                assert {m.lower() for m in route.methods} <= set(paths[path]), path
                for method in route.methods:
                    assert type_name in paths[path][method.lower()]["tags"]


def test_operation_ids_are_unique(doc):
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)) and len(ids) > 300


def test_the_raw_get_of_uint8blk_is_described_parameter_by_parameter(doc):
    item = doc["paths"][f"/api/node/{{uuid}}/{NAMES['uint8blk']}/raw/{{dims}}/{{size}}/{{offset}}/{{format}}"]
    assert set(item) == {"get", "head"}
    get = item["get"]
    params = {(p["in"], p["name"]): p for p in get["parameters"]}
    assert [(p["in"], p["name"]) for p in get["parameters"][:5]] == [
        ("path", "uuid"), ("path", "dims"), ("path", "size"), ("path", "offset"), ("path", "format"),
    ]  # fmt: skip
    assert all(p["required"] for p in get["parameters"] if p["in"] == "path")
    dims = params["path", "dims"]["schema"]
    assert dims["type"] == "string" and dims["pattern"].startswith("^(?:") and dims["pattern"].endswith(")$")
    assert params["query", "compression"]["schema"] == {"type": "string", "enum": ["lz4", "gzip"]}
    assert params["query", "scale"]["schema"] == {"type": "integer", "minimum": 0}
    assert params["query", "throttle"]["schema"] == {"type": "boolean"}
    assert not params["query", "roi"]["required"]
    assert set(get["responses"]["200"]["content"]) == {
        "application/octet-stream", "image/png", "image/jpeg", "image/tiff", "image/bmp",
        "application/x-npz", "application/x-hdf5", "application/x-blosc",
    }  # fmt: skip
    assert params["query", "format"]["schema"] == {"type": "string", "enum": ["npz", "hdf5", "tiff", "blosc"]}
    assert set(get["responses"]) == {"200", "400", "404", "406", "413", "503"}
    assert get["responses"]["400"] == {"$ref": "#/components/responses/400"}
    assert doc["components"]["responses"]["400"]["content"] == {"text/plain": {"schema": {"type": "string"}}}
    # the format is optional: the path without it is described too, and a write is 0_1_2 only
    shorter = doc["paths"][f"/api/node/{{uuid}}/{NAMES['uint8blk']}/raw/{{dims}}/{{size}}/{{offset}}"]
    assert set(shorter) == {"get", "head", "post"}
    post = shorter["post"]
    assert set(post["requestBody"]["content"]) == {"application/octet-stream"}
    assert set(post["responses"]) == {"200", "400", "404", "405", "409", "413", "415", "503"}


def test_statuses_particular_to_an_endpoint_are_described(doc):
    kv = f"/api/node/{{uuid}}/{NAMES['keyvalue']}"
    key_get = doc["paths"][f"{kv}/key/{{key}}"]["get"]["responses"]
    assert {"206", "416"} <= set(key_get) and "content" in key_get["206"]
    assert "requestBody" not in doc["paths"][f"{kv}/keyvalues"]["head"]
    assert set(doc["paths"][f"{kv}/keyvalues"]["get"]["requestBody"]["content"]) == {
        "application/octet-stream", "application/json"
    }  # fmt: skip
    sparsevol = doc["paths"][f"/api/node/{{uuid}}/{BODIES}/sparsevol/{{label}}"]
    assert "204" in sparsevol["head"]["responses"] and "204" not in sparsevol["get"]["responses"]
    label = next(p for p in sparsevol["get"]["parameters"] if p["name"] == "label")
    assert label["schema"] == {"type": "integer", "minimum": 1, "maximum": 2**64 - 1}
    assert "403" in doc["paths"]["/api/repo/{uuid}"]["delete"]["responses"]
    assert set(doc["paths"]["/api/heartbeat"]["get"]["responses"]) == {"200"}
    assert doc["paths"]["/api/openapi.json"]["get"]["responses"]["200"]["content"] == {"application/json": {}}


#: Examples per operation: enough to reach every parameter's edge values, few enough that the
#: whole run (about 350 operations) stays well under a minute on a 2-core machine.
EXAMPLES_PER_OPERATION = 5
#: Run last: a commit locks the version every other write goes to.
LAST = ("POST /api/node/{uuid}/commit",)


def fuzz(operation, settings, fixed, call, failures: dict[str, str]) -> None:
    """Run generated cases of one operation; record its first failed check in ``failures``."""

    @settings
    @hypothesis.given(case=operation.as_strategy(path_parameters=fixed))
    def run(case):
        if operation.label in failures:
            return
        response = call(case)
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, FailureGroup) as exc:  # failed checks; the message names them
            failures[operation.label] = f"{exc}\n  {case.as_curl_command()}"

    run()


def path_examples(doc: dict, path: str, method: str) -> dict[str, object]:
    """The documented examples of an operation's path parameters."""
    params = doc["paths"][path][method.lower()].get("parameters", [])
    return {p["name"]: p["example"] for p in params if p["in"] == "path" and "example" in p}


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]
# dvid's binary request formats go on the wire as generated bytes
schemathesis.serializer.alias(
    ["application/msgpack", "application/x-dvid-transfer"], "application/octet-stream"
)


def test_schemathesis_finds_no_server_error_nor_undocumented_status_or_media_type(live, doc):
    server, uuid = live
    schema = schemathesis.openapi.from_dict(doc)
    operations = sorted((r.ok() for r in schema.get_all_operations()), key=lambda op: op.label in LAST)
    settings = hypothesis.settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    session = requests.Session()

    def call(case):
        return case.call(base_url=server.url, session=session, timeout=30)

    failures: dict[str, str] = {}
    started = time.perf_counter()
    for op in operations:
        names = {p.name for p in op.path_parameters}
        fixed = {"uuid": uuid} if "uuid" in names else {}
        fuzz(op, settings, fixed or None, call, failures)
        # again on the populated data: path parameters at their documented examples, the rest generated
        examples = path_examples(doc, op.path, op.method)
        if examples:
            fuzz(op, settings, {**fixed, **examples}, call, failures)
    elapsed = time.perf_counter() - started
    print(f"schemathesis: {len(operations)} operations, {elapsed:.0f}s")
    assert not failures, "\n\n".join(f"{label}: {text}" for label, text in failures.items())
    assert requests.get(server.api("heartbeat"), timeout=10).text == "OK"


def test_the_description_follows_instances_and_merges_same_names_of_different_types(server):
    first, second = server.new_repo("one"), server.new_repo("two")
    server.new_instance(first, "keyvalue", "shared")
    before = requests.get(server.api("openapi.json"), timeout=10).json()
    assert "/api/node/{uuid}/shared/keys" in before["paths"]
    assert not any("/roi" in p for p in before["paths"])
    server.new_instance(second, "roi", "shared")
    server.new_instance(second, "uint8blk", "a {b}%c?")  # a name that needs percent-encoding
    after = requests.get(server.api("openapi.json"), timeout=10).json()
    validate(after)
    paths = after["paths"]
    # both types' endpoints under the one name; the endpoints both declare list both types
    assert "/api/node/{uuid}/shared/keys" in paths and "/api/node/{uuid}/shared/roi" in paths
    info = paths["/api/node/{uuid}/shared/info"]["get"]
    assert info["tags"] == ["keyvalue", "roi"] and "keyvalue, roi" in info["description"]
    assert paths["/api/node/{uuid}/shared/keys"]["get"]["tags"] == ["keyvalue"]
    encoded = "/api/node/{uuid}/a%20%7Bb%7D%25c%3F/raw/{dims}/{size}/{offset}"
    assert encoded in paths
    r = requests.head(
        server.url + encoded.format(uuid=second, dims="0_1", size="4_4", offset="0_0_0"), timeout=10
    )
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
