"""``/metrics`` (Prometheus), ``/api/server/activity`` and ``/api/server/jobs`` over real HTTP."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from dvid import jobs as jobs_mod
from dvid.jobs import JobRegistry
from dvid.server.metrics import RecentRequests
from tests.test_server_core import assert_error
from tests.test_transfer import _export_bytes, cli_ok


def scrape(server, accept: str = "text/plain;version=0.0.4;q=0.5,*/*;q=0.1") -> dict[str, list]:
    """The samples of ``/metrics``, by metric family name."""
    r = requests.get(f"{server.url}/metrics", headers={"Accept": accept}, timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {fam.name: fam.samples for fam in text_string_to_metric_families(r.text)}


def sample(families: dict[str, list], name: str, **labels: str) -> float:
    """The value of the one sample called ``name`` whose labels include ``labels`` (0 if none)."""
    family = name.removesuffix("_total").removesuffix("_count").removesuffix("_bucket")
    found = [
        s.value
        for s in families.get(family, [])
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) <= 1, found
    return found[0] if found else 0.0


def test_metrics_count_requests_by_route_template_and_instance_endpoint(server):
    uuid = server.new_repo()
    server.new_instance(uuid, "keyvalue", "kv")
    for _ in range(3):
        assert requests.get(server.api("server/info"), timeout=10).status_code == 200
    assert requests.post(server.api(f"node/{uuid}/kv/key/a"), data=b"x", timeout=10).status_code == 200
    assert requests.get(server.api(f"node/{uuid}/kv/key/a"), timeout=10).status_code == 200
    assert requests.get(server.api(f"node/{uuid}/kv/key/nope"), timeout=10).status_code == 404
    assert requests.get(server.api("no/such/route"), timeout=10).status_code == 404

    fams = scrape(server)
    assert sample(fams, "dvid_http_requests_total", method="GET", route="/api/server/info", code="200") == 3
    assert sample(fams, "dvid_http_requests_total", method="POST", route="keyvalue/key", code="200") == 1
    assert sample(fams, "dvid_http_requests_total", method="GET", route="keyvalue/key", code="200") == 1
    assert sample(fams, "dvid_http_requests_total", method="GET", route="keyvalue/key", code="404") == 1
    assert sample(fams, "dvid_http_requests_total", method="GET", route="unmatched", code="404") == 1
    # the paths themselves (uuids, keys) never become labels
    assert not any(uuid in str(s.labels) for s in fams["dvid_http_requests"])
    latency = "dvid_http_request_duration_seconds"
    assert sample(fams, f"{latency}_count", method="GET", route="/api/server/info") == 3
    assert sample(fams, f"{latency}_bucket", method="GET", route="/api/server/info", le="+Inf") == 3
    assert sample(fams, "dvid_http_response_bytes_total", method="GET", route="keyvalue/key") >= 1
    assert sample(fams, "dvid_repos") == 1
    assert sample(fams, "dvid_instances") == 1
    assert sample(fams, "dvid_uptime_seconds") > 0
    assert sample(fams, "process_resident_memory_bytes") > 10_000_000
    # the first scrape is counted by the second
    again = scrape(server)
    assert sample(again, "dvid_http_requests_total", method="GET", route="unmatched", code="200") == 1


def test_metrics_negotiate_openmetrics_like_prometheus_does(server):
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    r = requests.get(f"{server.url}/metrics", headers={"Accept": accept}, timeout=10)
    assert r.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert r.text.endswith("# EOF\n")
    plain = requests.get(f"{server.url}/metrics", timeout=10)
    assert plain.headers["Content-Type"].startswith("text/plain; version=0.0.4")


def test_metrics_endpoint_refuses_other_methods(server):
    r = requests.post(f"{server.url}/metrics", data=b"x", timeout=10)
    assert_error(r, 405, "GET")
    assert requests.head(f"{server.url}/metrics", timeout=10).status_code == 200


def test_activity_summarises_the_recent_window(server):
    for _ in range(20):
        requests.get(server.api("heartbeat"), timeout=10)
    requests.get(server.api("nothing-here"), timeout=10)
    r = requests.get(server.api("server/activity"), params={"window": 30}, timeout=10)
    assert r.status_code == 200
    act = r.json()
    assert act["window_seconds"] == 30
    assert act["requests"] >= 21
    assert act["requests_per_second"] == pytest.approx(act["requests"] / 30, abs=0.01)
    assert 0 < act["p50_ms"] <= act["p99_ms"]
    assert act["errors_4xx"] >= 1 and act["errors_5xx"] == 0
    assert act["in_flight"] == 1  # this request
    assert 0 <= act["uptime_seconds"] < 600  # rounded to 0.1 s: 0.0 right after the start
    for bad in ("0", "61", "abc", "-5", "1.5"):
        assert_error(
            requests.get(server.api("server/activity"), params={"window": bad}, timeout=10), 400, "window"
        )


def test_recent_requests_window_excludes_old_requests():
    recent = RecentRequests(capacity=4)
    for i in range(6):  # the first two fall out of the ring
        recent.add(100.0 + i, 0.001 * (i + 1), 200 if i < 5 else 503)
    assert recent.summary(window=10, now=106.0) == {
        "window_seconds": 10, "requests": 4, "requests_per_second": 0.4,
        "p50_ms": 4.5, "p99_ms": pytest.approx(5.97), "errors_4xx": 0, "errors_5xx": 1,
    }  # fmt: skip
    assert recent.summary(window=2.5, now=106.0)["requests"] == 2  # 104 and 105
    assert recent.summary(window=10, now=500.0)["requests"] == 0


def jobs_of(server) -> list[dict]:
    r = requests.get(server.api("server/jobs"), timeout=10)
    assert r.status_code == 200
    return r.json()


def test_pyramid_build_and_instance_deletion_are_listed_as_jobs(server_factory):
    server = server_factory(admin_token="sesame")
    uuid = server.new_repo()
    server.new_instance(uuid, "uint8blk", "grey")
    vol = np.random.default_rng(1).integers(0, 255, (64, 64, 64), dtype=np.uint8)
    r = requests.post(
        server.api(f"node/{uuid}/grey/raw/0_1_2/64_64_64/0_0_0"), data=vol.tobytes(), timeout=30
    )
    assert r.status_code == 200
    assert jobs_of(server) == []
    assert requests.post(server.api(f"node/{uuid}/grey/pyramid?levels=2"), timeout=60).status_code == 200
    (job,) = jobs_of(server)
    assert job["kind"] == "pyramid" and job["state"] == "done" and job["error"] == ""
    assert (job["unit"], job["done"], job["total"], job["fraction"]) == ("levels", 2, 2, 1.0)
    assert job["description"].startswith("grey: pyramid levels 1-2")
    assert job["finished"] is not None and job["seconds"] >= 0

    r = requests.delete(server.api(f"repo/{uuid}/grey_2?imsure=true&admintoken=sesame"), timeout=10)
    assert r.status_code == 200, r.text
    server.manager.wait_for_deletions(10)
    latest = jobs_of(server)[0]
    assert latest["kind"] == "delete-instance" and latest["state"] == "done"
    assert latest["unit"] == "keys" and latest["done"] >= 1


def test_push_is_listed_as_an_export_job_and_an_import_job(pair):
    src, dst = pair
    uuid = src.new_repo()
    src.new_instance(uuid, "keyvalue", "kv")
    requests.post(src.api(f"node/{uuid}/kv/key/a"), data=os.urandom(5000), timeout=10)
    cli_ok("--server", src.url, "push", uuid, dst.url, "-q")
    (export,) = [j for j in jobs_of(src) if j["kind"] == "export"]
    (imported,) = [j for j in jobs_of(dst) if j["kind"] == "import"]
    for job in (export, imported):
        assert job["state"] == "done" and job["unit"] == "bytes" and job["done"] > 5000
    assert export["done"] == imported["done"]


def test_a_stream_cut_short_is_a_failed_import_job(pair):
    src, dst = pair
    uuid = src.new_repo()
    src.new_instance(uuid, "keyvalue", "kv")
    requests.post(src.api(f"node/{uuid}/kv/key/a"), data=b"x" * 1000, timeout=10)
    body = _export_bytes(src, uuid)
    r = requests.post(dst.api(f"repo/{uuid}/transfer/import"), data=body[:-20], timeout=10)
    assert_error(r, 400, "nothing was imported")
    (job,) = jobs_of(dst)
    assert job["kind"] == "import" and job["state"] == "failed"
    assert "ended early" in job["error"] and job["total"] == len(body) - 20


def test_job_registry_failure_ordering_and_forgetting(monkeypatch):
    reg = JobRegistry()
    with pytest.raises(ValueError), reg.run("ingest", "boom", "blocks", 10) as job:
        job.advance(3)
        raise ValueError("bad block")
    running = reg.start("export", "still going")
    listing = reg.listing()
    assert [j["id"] for j in listing] == [running.id, job.id]  # running first
    assert listing[1]["state"] == "failed" and listing[1]["error"] == "ValueError: bad block"
    assert (listing[1]["done"], listing[1]["fraction"]) == (3, 0.3)
    assert listing[0]["total"] is None and listing[0]["fraction"] is None and reg.running() == 1

    monkeypatch.setattr(jobs_mod, "KEEP_FINISHED", 2)
    for i in range(4):
        with reg.run("pyramid", f"p{i}"):
            pass
    kept = [j["description"] for j in reg.listing()]
    assert kept == ["still going", "p3", "p2"]
    monkeypatch.setattr(jobs_mod, "KEEP_SECONDS", 0.0)
    time.sleep(0.01)
    assert [j["description"] for j in reg.listing()] == ["still going"]


def test_resyncs_and_reloads_are_jobs(server):
    uuid = server.new_repo()
    for typename, name in (("labelblk", "lb"), ("labelvol", "lv"), ("annotation", "syn"), ("labelsz", "sz")):
        server.new_instance(uuid, typename, name)
    for name, target in (("lv", "lb"), ("syn", "lb"), ("sz", "syn")):
        r = requests.post(server.api(f"node/{uuid}/{name}/sync"), json={"sync": target}, timeout=10)
        assert r.status_code == 200, r.text
    for path in ("lv/resync", "syn/reload", "sz/reload"):
        assert requests.post(server.api(f"node/{uuid}/{path}"), timeout=30).status_code == 200, path
    kinds = [(j["kind"], j["description"].split(":")[0], j["state"]) for j in jobs_of(server)]
    assert sorted(kinds) == [("reload", "syn", "done"), ("reload", "sz", "done"), ("resync", "lv", "done")]
