"""The web console in a real browser: Debian's Chromium, headless, driven by Playwright, against a
live server with real data. Every page loads with no console error and no failed request; the
slice viewer's pixels equal the stored voxels; the DAG shows every version and edge; commits and
branches made on the page change the server. Screenshots go to test-artifacts/console/."""

from __future__ import annotations

import io
import json
import re
import tarfile

import numpy as np
import pytest
import requests
from PIL import Image

from bench.browser import ARTIFACTS, CHROMIUM_ARGS, BrowserMissing, chromium_path

T = 30
GREY_SHAPE = (64, 256, 256)  # z, y, x
LABEL_SHAPE = (64, 128, 128)

# the first test may install Debian's chromium (bench/browser.py): allow for apt-get's download
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    try:
        path = chromium_path()
    except BrowserMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Page:
    """A browser tab that records console errors and failed requests (4xx/5xx or network)."""

    def __init__(self, browser, base: str) -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.expected_failures: set[int] = set()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        self.page.on("response", self._response)

    def _response(self, response) -> None:
        if response.status >= 400 and response.status not in self.expected_failures:
            self.failed.append(f"{response.status} {response.url}")

    def goto(self, hash_path: str, ready: str) -> None:
        self.page.goto(f"{self.base}/console/#{hash_path}")
        self.page.wait_for_selector(ready, timeout=15_000)

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def assert_clean(self) -> None:
        console_errors = [e for e in self.errors if not any(f"{s}" in e for s in self.expected_failures)]
        assert console_errors == [], console_errors
        assert self.failed == [], self.failed

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser, console_server):
    server, _ = console_server
    page = Page(browser, server.url)
    yield page
    page.close()


def ok(method: str, url: str, **kw) -> requests.Response:
    r = requests.request(method, url, timeout=T, **kw)
    assert r.status_code == 200, (url, r.status_code, r.text)
    return r


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def console_server(tmp_path_factory):
    """A server holding a repo with branches, a tag and a merge, and one instance of each kind the
    console shows: grayscale, a labelmap, annotations synced to it, an roi and key-values."""
    from tests.serverutil import ServerThread

    server = ServerThread(tmp_path_factory.mktemp("console-store")).start()
    api = server.api
    root = server.new_repo("console-demo", "a repo the console tests browse")
    for typename, name, settings in (
        ("uint8blk", "grey", {}),
        ("labelmap", "seg", {"MaxDownresLevel": "1"}),
        ("annotation", "syn", {}),
        ("roi", "cells", {}),
        ("keyvalue", "kv", {}),
        ("labelblk", "legacy", {}),
        ("labelvol", "bodies", {}),
        ("neuronjson", "clio", {}),
        ("tarsupervoxels", "meshes", {"Extension": "drc"}),
        ("labelgraph", "graph", {}),
    ):
        server.new_instance(root, typename, name, **settings)
    ok("POST", api(f"node/{root}/syn/sync"), json={"sync": "seg"})
    ok("POST", api(f"node/{root}/bodies/sync"), json={"sync": "legacy"})
    ok("POST", api(f"node/{root}/meshes/sync"), json={"sync": "seg"})
    ok("POST", api(f"node/{root}/meshes/supervoxel/100"), data=b"mesh of 100")
    for body, status in ((100, "Traced"), (300, "Traced"), (2**60 + 7, "Orphan")):
        record = {"bodyid": body, "status": status, "type": f"T{body % 7}", "position": [1, 2, 3]}
        ok("POST", api(f"node/{root}/clio/key/{body}?u=tester"), json=record)
    rng = np.random.default_rng(11)
    grey = rng.integers(0, 256, GREY_SHAPE, dtype=np.uint8)
    ok("POST", api(f"node/{root}/grey/raw/0_1_2/256_256_64/0_0_0"), data=grey.tobytes())
    labels = np.zeros(LABEL_SHAPE, np.uint64)
    labels[:, :, :64] = 100
    labels[:, :64, 64:] = 2**40 + 7  # above 2^32: the viewer must read both words
    labels[:, 64:, 64:] = 300
    ok("POST", api(f"node/{root}/seg/raw/0_1_2/128_128_64/0_0_0"), data=labels.tobytes())
    ok("POST", api(f"node/{root}/legacy/raw/0_1_2/128_128_64/0_0_0"), data=labels.tobytes())
    elements = [
        {"Kind": "PreSyn", "Pos": [20, 30, 10], "Tags": ["t1"]},
        {"Kind": "PostSyn", "Pos": [90, 30, 10], "Tags": ["t1"]},
        {"Kind": "PostSyn", "Pos": [90, 100, 40]},
    ]
    ok("POST", api(f"node/{root}/syn/elements"), data=json.dumps(elements))
    ok("POST", api(f"node/{root}/cells/roi"), data=json.dumps([[0, 0, 0, 1], [0, 1, 0, 0]]))
    for key, value in (("doc.json", b'{"b": 1, "a": [1, 2]}'), ("note.txt", b"hello console"),
                       ("img.png", png_bytes()), ("raw.bin", bytes(range(256)) * 3)):  # fmt: skip
        ok("POST", api(f"node/{root}/kv/key/{key}"), data=value)
    server.commit(root, "ingested")
    main = server.newversion(root, "proofreading")
    ok("POST", api(f"node/{main}/seg/merge"), data=b"[100, 300]")
    ok("POST", api(f"node/{main}/kv/key/note.txt"), data=b"hello again")
    patch = np.full((8, 8, 8), 255, np.uint8)
    ok("POST", api(f"node/{main}/grey/raw/0_1_2/8_8_8/40_40_40"), data=patch.tobytes())
    server.commit(main, "merged 100 and 300")
    feature = ok("POST", api(f"node/{root}/branch"), json={"branch": "feature", "note": "try"}).json()[
        "child"
    ]
    ok("POST", api(f"node/{feature}/kv/key/feature.txt"), data=b"f")
    server.commit(feature, "feature done")
    tagged = ok("POST", api(f"node/{main}/tag"), json={"tag": "v1.0"}).json()["child"]
    merged = ok(
        "POST", api(f"repo/{root}/merge"), json={"mergeType": "conflict-free", "parents": [main, feature]}
    ).json()["child"]
    data = {
        "root": root, "main": main, "feature": feature, "tagged": tagged, "merged": merged,
        "grey": grey, "labels": labels,
    }  # fmt: skip
    yield server, data
    server.stop()


def canvas_pixels(page, w: int, h: int) -> np.ndarray:
    script = "([w, h]) => Array.from(document.getElementById('slice-canvas').getContext('2d')"
    rgba = page.evaluate(script + ".getImageData(0, 0, w, h).data)", [w, h])
    return np.array(rgba, dtype=np.uint8).reshape(h, w, 4)


# ---- pages load cleanly ------------------------------------------------------------------------------


def test_server_page_shows_info_activity_and_jobs(tab, console_server):
    server, _ = console_server
    scratch = server.new_repo("scratch")
    server.new_instance(scratch, "uint8blk", "small")
    ok("POST", server.api(f"node/{scratch}/small/raw/0_1_2/64_64_64/0_0_0"), data=bytes(64**3))
    ok("POST", server.api(f"node/{scratch}/small/pyramid?levels=1"))
    tab.goto("/", "#rate")
    assert "dvid (Python)" in tab.page.inner_text("#server-info")
    tab.page.wait_for_selector("#jobs-table")
    jobs = tab.page.inner_text("#jobs-table")
    assert "pyramid" in jobs and "done" in jobs
    assert float(tab.page.inner_text("#rate")) >= 0
    tab.shot("server")
    tab.assert_clean()


def test_repos_page_lists_filters_and_creates(tab, console_server):
    server, _ = console_server
    tab.goto("/repos", "#repos-table")
    table = tab.page.inner_text("#repos-table")
    assert "console-demo" in table and "labelmap" in table and "scratch" in table
    tab.page.fill("#repo-filter", "no-such-repo")
    tab.page.wait_for_selector("text=No repo matches.")
    tab.page.fill("#repo-filter", "console")
    tab.page.wait_for_selector("#repos-table")
    tab.shot("repos")
    tab.page.fill("#new-alias", "made-in-browser")
    tab.page.fill("#new-description", "from the console")
    tab.page.click("#new-repo button[type=submit]")
    tab.page.wait_for_selector("#dag")
    made = [
        r
        for r in requests.get(server.api("repos/info"), timeout=T).json().values()
        if r["Alias"] == "made-in-browser"
    ]
    assert len(made) == 1 and made[0]["Description"] == "from the console"
    tab.assert_clean()


def test_dag_page_shows_every_version_and_edge(tab, console_server):
    server, data = console_server
    tab.goto(f"/repo/{data['root']}", "#dag")
    dag = requests.get(server.api(f"repo/{data['root']}/info"), timeout=T).json()["DAG"]["Nodes"]
    by_id = {n["VersionID"]: n["UUID"] for n in dag.values()}
    drawn = set(tab.page.eval_on_selector_all("#dag g.version", "els => els.map(e => e.dataset.uuid)"))
    assert drawn == set(dag)
    edges = set(tab.page.eval_on_selector_all("#dag path.edge", "els => els.map(e => e.dataset.edge)"))
    want = {f"{by_id[p]}-{n['UUID']}" for n in dag.values() for p in n["Parents"]}
    assert edges == want and len(want) == len(dag) - 1 + 1  # a tree plus the merge's second parent
    text = tab.page.text_content("#dag")
    assert "feature" in text and "tag v1.0" in text and "merge" in text and "open" in text
    committed = tab.page.eval_on_selector_all("#dag g.committed", "els => els.map(e => e.dataset.uuid)")
    assert set(committed) == {n["UUID"] for n in dag.values() if n["Locked"]}
    tab.shot("dag")
    tab.assert_clean()


def test_commit_and_branch_from_the_page_change_the_server(tab, console_server):
    server, data = console_server
    merged = data["merged"]
    tab.goto(f"/repo/{data['root']}", "#dag")
    tab.page.click(f"#dag g.version[data-uuid='{merged}']")
    tab.page.fill("#action-note", "committed in the browser")
    tab.page.fill("#action-log", "checked by hand")
    tab.page.click("#do-commit")
    tab.page.wait_for_selector("text=commit: done")
    node = requests.get(server.api(f"repo/{merged}/info"), timeout=T).json()["DAG"]["Nodes"][merged]
    assert node["Locked"] and node["Note"] == "committed in the browser"
    assert any("checked by hand" in line for line in node["Log"])
    tab.page.click(f"#dag g.version[data-uuid='{merged}']")
    tab.page.fill("#action-name", "experiment")
    tab.page.click("#do-branch")
    tab.page.wait_for_selector("text=/branch: new version/")
    nodes = requests.get(server.api(f"repo/{merged}/info"), timeout=T).json()["DAG"]["Nodes"]
    (child,) = [n for n in nodes.values() if n["Branch"] == "experiment"]
    assert child["Parents"] == [nodes[merged]["VersionID"]]
    assert tab.page.query_selector(f"#dag g.version[data-uuid='{child['UUID']}']") is not None
    tab.assert_clean()


def test_refusals_are_shown_verbatim(tab, console_server):
    _, data = console_server
    tab.expected_failures.add(400)
    tab.goto(f"/repo/{data['root']}", "#dag")
    tab.page.click(f"#dag g.version[data-uuid='{data['main']}']")
    tab.page.fill("#action-name", "")
    tab.page.click("#do-tag")
    error = tab.page.wait_for_selector("pre.error")
    assert (
        error.inner_text()
        == "400: tag requires a non-empty 'tag' string (/api/node/" + data["main"] + "/tag)."
    )
    assert tab.failed == []  # the 400 was the one provoked


def test_version_page_lists_instances_and_links_to_neuroglancer(tab, console_server):
    _, data = console_server
    tab.goto(f"/node/{data['main']}", "#instances-table")
    names = tab.page.eval_on_selector_all(".instance-link", "els => els.map(e => e.textContent)")
    assert sorted(names) == [
        "bodies",
        "cells",
        "clio",
        "graph",
        "grey",
        "kv",
        "legacy",
        "meshes",
        "seg",
        "syn",
    ]
    link = tab.page.get_attribute("#neuroglancer-link", "href")
    state = json.loads(requests.utils.unquote(link.split("#!", 1)[1]))
    sources = {layer["name"]: (layer["type"], layer["source"]) for layer in state["layers"]}
    base = tab.base
    assert sources == {
        "grey": ("image", f"dvid://{base}/{data['main']}/grey"),
        "seg": ("segmentation", f"dvid://{base}/{data['main']}/seg"),
        "legacy": ("segmentation", f"dvid://{base}/{data['main']}/legacy"),
    }
    assert link.startswith("https://neuroglancer-demo.appspot.com/#!")
    tab.shot("version")
    tab.assert_clean()


# ---- the slice viewer --------------------------------------------------------------------------------


def test_slice_viewer_pixels_equal_the_stored_voxels(tab, console_server):
    _, data = console_server
    grey = data["grey"]
    tab.goto(
        f"/node/{data['root']}/grey?w=256&h=256&x=128&y=128&z=10&zoom=1&labels=",
        "#slice-canvas[data-plane='10']",
    )
    px = canvas_pixels(tab.page, 256, 256)
    assert np.array_equal(px[:, :, 0], grey[10]) and np.array_equal(px[:, :, 1], grey[10])
    assert (px[:, :, 3] == 255).all()
    # the next plane by the keyboard, then an XZ plane
    tab.page.focus("#slice-canvas")
    tab.page.keyboard.press("ArrowDown")
    tab.page.wait_for_selector("#slice-canvas[data-plane='11']")
    assert np.array_equal(canvas_pixels(tab.page, 256, 256)[:, :, 0], grey[11])
    tab.page.select_option("#axis", "xz")
    tab.page.wait_for_selector("#slice-canvas[data-plane='128']")
    xz = canvas_pixels(tab.page, 256, 256)[:, :, 0]
    # XZ at y=128: rows are z (0..63 shown from z = 32 - 128 ... the box is centred on z=11)
    top = 11 - 128
    rows = np.arange(256) + top
    inside = (rows >= 0) & (rows < 64)
    assert np.array_equal(xz[inside], grey[rows[inside], 128, :])
    assert (xz[~inside] == 0).all()
    tab.shot("viewer-grey")
    tab.assert_clean()


def test_zoom_pan_and_scale_controls(tab, console_server):
    _, data = console_server
    grey = data["grey"]
    tab.goto(
        f"/node/{data['root']}/grey?w=256&h=256&x=128&y=128&z=30&zoom=1&labels=",
        "#slice-canvas[data-plane='30']",
    )
    tab.page.click("#zoom-in")
    tab.page.wait_for_function("() => window.dvidViewer.state.zoom === 2 && !window.dvidViewer.inFlight")
    px = canvas_pixels(tab.page, 256, 256)[:, :, 0]
    # zoom 2 centred on (128, 128): canvas (x, y) shows voxel (64 + x // 2, 64 + y // 2)
    assert np.array_equal(px[::2, ::2], grey[30, 64:192, 64:192]) and np.array_equal(
        px[1::2, 1::2], px[::2, ::2]
    )
    box = tab.page.query_selector("#slice-canvas").bounding_box()
    tab.page.mouse.move(box["x"] + 100, box["y"] + 100)
    tab.page.mouse.down()
    tab.page.mouse.move(box["x"] + 140, box["y"] + 80, steps=4)
    tab.page.mouse.up()
    tab.page.wait_for_function(
        "() => window.dvidViewer.state.center[0] === 108 && !window.dvidViewer.inFlight"
    )
    assert tab.page.evaluate("window.dvidViewer.state.center") == [108, 138, 30]  # dragged 40 px right, 20 up
    assert "x=108" in tab.page.url and "y=138" in tab.page.url  # the address keeps the view
    tab.page.click("#zoom-out")
    tab.page.click("#zoom-out")
    tab.page.click("#zoom-out")  # clamped at 1/2
    tab.page.wait_for_function("() => window.dvidViewer.state.zoom === 0.5 && !window.dvidViewer.inFlight")
    scales = tab.page.eval_on_selector_all("#scale option", "els => els.map(e => e.value)")
    assert scales == ["0"]  # grey has no pyramid levels
    tab.assert_clean()


def test_labels_over_grey_readout_and_body_lookup(tab, console_server):
    _, data = console_server
    main = data["main"]
    tab.goto(
        f"/node/{main}/seg?w=256&h=256&x=64&y=64&z=20&zoom=2&gray=grey&opacity=1",
        "#slice-canvas[data-plane='20']",
    )
    px = canvas_pixels(tab.page, 256, 256)
    # zoom 2 centred on (64, 64): canvas (x, y) shows voxel (x // 2, y // 2); merged bodies share a colour
    left, right_top, right_bottom = px[100, 20], px[20, 200], px[200, 200]
    assert tuple(left) == tuple(right_bottom)  # 100 and 300 are one body after the merge
    assert tuple(left) != tuple(right_top)
    tab.page.mouse.move(*_canvas_point(tab.page, 200, 20))  # voxel (100, 10): body 2^40 + 7
    tab.page.wait_for_selector("#readout .label-value")
    assert tab.page.inner_text("#readout .label-value") == str(2**40 + 7)
    assert "x 100, y 10, z 20" in tab.page.inner_text("#readout")
    tab.page.wait_for_selector("#readout .supervoxel:has-text('supervoxel')")
    assert "supervoxel 1099511627783" in tab.page.inner_text("#readout")
    tab.page.mouse.move(*_canvas_point(tab.page, 200, 200))  # voxel (100, 100): supervoxel 300 of body 100
    tab.page.wait_for_selector("#readout .supervoxel:has-text('supervoxel 300')")
    assert tab.page.inner_text("#readout .label-value") == "100"
    tab.page.fill("#body-label", "100")
    tab.page.click("#body-form button")
    tab.page.wait_for_selector("#body-table")
    info = tab.page.inner_text("#body-table")
    assert "Voxels\t" + str(64 * 128 * 64 + 64 * 64 * 64) in info
    assert "0, 0, 0 – 127, 127, 63" in info and tab.page.inner_text("#body-supervoxels") == "100, 300"
    assert "merge" in tab.page.inner_text("#body-info")
    tab.page.wait_for_function("() => window.dvidViewer && window.dvidViewer.state.highlight === '100'")
    tab.shot("viewer-labels")
    # labelmap's scale 1 (MaxDownresLevel 1): the plane of z = 31 is 15 there
    tab.page.select_option("#scale", "1")
    tab.page.wait_for_selector("#slice-canvas[data-plane='15']")
    tab.assert_clean()


def test_labelblk_lookup_uses_its_labelvol(tab, console_server):
    _, data = console_server
    tab.goto(f"/node/{data['root']}/legacy?w=256&h=256&x=64&y=64&z=5&gray=", "#slice-canvas[data-plane='5']")
    px = canvas_pixels(tab.page, 256, 256)
    # canvas (x, y) shows voxel (x - 64, y - 64): label 100 at x < 64, 2^40 + 7 at x >= 64, y < 64
    assert tuple(px[100, 100]) != tuple(px[100, 180]) and px[100, 100, 3] == px[100, 180, 3] == 255
    assert tuple(px[10, 10]) == (0, 0, 0, 0)  # outside the volume: no label, no grey
    tab.page.fill("#body-label", str(2**40 + 7))
    tab.page.click("#body-form button")
    tab.page.wait_for_selector("#body-table")
    info = tab.page.inner_text("#body-table")
    assert f"Voxels\t{64 * 64 * 64}" in info and "64, 0, 0 – 127, 63, 63" in info
    tab.shot("labelblk")
    tab.assert_clean()
    tab.expected_failures.add(404)  # the server's answer for a label without voxels
    tab.page.fill("#body-label", "123456")
    tab.page.click("#body-form button")
    tab.page.wait_for_selector("#body-missing:has-text('Label 123456 has no voxels')")
    assert tab.failed == []


def _canvas_point(page, x: int, y: int) -> tuple[float, float]:
    box = page.query_selector("#slice-canvas").bounding_box()
    return box["x"] + x + 0.5, box["y"] + y + 0.5


def test_annotation_page_points_and_lists(tab, console_server):
    _, data = console_server
    tab.goto(
        f"/node/{data['root']}/syn?w=256&h=256&x=64&y=64&z=10&gray=grey&labels=seg", "#view-elements-table"
    )
    assert "2 elements in view" in tab.page.inner_text("#view-elements")
    assert tab.page.evaluate("window.dvidViewer.shownPoints") == 2
    tab.page.fill("#ann-tag", "t1")
    tab.page.click("#ann-by-tag button")
    tab.page.wait_for_selector("#annotation-table")
    assert "2 elements tagged t1" in tab.page.inner_text("#annotation-query")
    tab.page.fill("#ann-label", "300")
    tab.page.click("#ann-by-label button")
    tab.page.wait_for_selector("text=1 element with label 300")
    tab.shot("annotation")
    tab.assert_clean()


def test_roi_page_extent_and_block_count(tab, console_server):
    _, data = console_server
    tab.goto(f"/node/{data['root']}/cells?w=256&h=256&x=64&y=64&z=10", "#roi-table")
    text = tab.page.inner_text("#roi-table")
    assert "Blocks\t3" in text and "Extent (voxels)\t0, 0, 0 – 63, 63, 31" in text
    tab.page.wait_for_selector("#slice-canvas[data-plane='10']")
    tab.assert_clean()


def test_keyvalue_browser_previews_and_downloads(tab, console_server):
    _, data = console_server
    tab.goto(f"/node/{data['main']}/kv", "#kv-table")
    assert tab.page.inner_text("#kv-count") == "4 keys"
    tab.page.click("text=doc.json")
    assert json.loads(tab.page.inner_text("#kv-value pre.kv-json")) == {"b": 1, "a": [1, 2]}
    tab.page.click("text=note.txt")
    tab.page.wait_for_selector("pre.kv-text:has-text('hello again')")
    tab.page.click("text=raw.bin")
    assert tab.page.inner_text("pre.kv-hex").startswith("00000000  00 01 02 03")
    tab.page.click("text=img.png")
    tab.page.wait_for_selector("img.kv-image")
    assert tab.page.evaluate("document.querySelector('img.kv-image').naturalWidth") == 8
    href = tab.page.get_attribute("#kv-download", "href")
    assert requests.get(href, timeout=T).content == png_bytes()
    tab.page.fill("#kv-prefix", "no")
    tab.page.wait_for_selector("#kv-count:has-text('1 key')")
    tab.shot("keyvalue")
    tab.assert_clean()


def test_diff_page_lists_changes_and_outlines_blocks(tab, console_server):
    _, data = console_server
    tab.goto(f"/diff/{data['main']}/kv?since={data['root']}", "#diff-table")
    assert tab.page.inner_text("#diff-changed") == "1"
    assert "note.txt" in tab.page.inner_text("#diff-table")
    tab.goto(f"/diff/{data['main']}/grey?since={data['root']}", "#slice-canvas")
    tab.page.wait_for_function("() => window.dvidViewer && window.dvidViewer.shownMarks === 1")
    assert tab.page.inner_text("#diff-changed") == "1"
    assert "block 1, 1, 1" in tab.page.inner_text("#diff-table")
    tab.shot("diff")
    tab.assert_clean()


def test_every_instance_page_and_diff_page_loads_cleanly(tab, console_server):
    server, data = console_server
    main = data["main"]
    names = sorted(requests.get(server.api(f"repo/{main}/info"), timeout=T).json()["DataInstances"])
    for name in names:
        tab.goto(f"/node/{main}/{name}?w=128&h=128", "details summary:has-text('Info')")
        tab.page.wait_for_function("() => !window.dvidViewer || !window.dvidViewer.inFlight")
        tab.goto(f"/diff/{main}/{name}?since={data['root']}", "#diff-summary p")
    tab.assert_clean()


def test_neuronjson_fields_query_and_one_body(tab, console_server):
    _, data = console_server
    tab.goto(f"/node/{data['main']}/clio", "#nj-fields .chip")
    assert "status 3" in tab.page.inner_text("#nj-fields")
    tab.page.fill("#nj-query", '{"status": "Orphan"}')
    tab.page.click("#nj-query-form button")
    tab.page.wait_for_selector("#nj-results")
    assert tab.page.inner_text("#nj-results tbody td") == str(2**60 + 7)  # a 64-bit id, exact
    tab.page.fill("#nj-query", '{"status": "Traced"}')
    tab.page.click("#nj-query-form button")
    tab.page.wait_for_selector("#nj-count:has-text('2 matches')")
    ids = tab.page.eval_on_selector_all(
        "#nj-results tbody tr td:first-child", "els => els.map(e => e.textContent)"
    )
    assert ids == ["100", "300"]
    tab.page.fill("#nj-body", str(2**60 + 7))
    tab.page.click("#nj-body-form button")
    record = json.loads(tab.page.inner_text("#nj-record pre"))
    assert record["bodyid"] == str(2**60 + 7) and record["status_user"] == "tester"  # exact beyond 2^53
    tab.shot("neuronjson")
    tab.assert_clean()
    tab.expected_failures.add(400)
    tab.page.fill("#nj-query", "[]")
    tab.page.click("#nj-query-form button")
    assert "no query provided" in tab.page.wait_for_selector("#nj-out pre.error").inner_text()


def test_tarsupervoxels_files_of_a_body(tab, console_server):
    _, data = console_server
    tab.goto(f"/node/{data['main']}/meshes", "#ts-form")
    tab.page.fill("#ts-body", "100")
    tab.page.click("#ts-form button")
    tab.page.wait_for_selector("#ts-table")
    assert tab.page.inner_text("#ts-summary").startswith("2 supervoxels, 1 with a .drc file, 1 missing")
    rows = tab.page.eval_on_selector_all("#ts-table tbody tr", "els => els.map(e => e.innerText)")
    assert rows == ["100\t100.drc", "300\tmissing"]
    archive = requests.get(tab.page.get_attribute("#ts-download", "href"), timeout=T)
    with tarfile.open(fileobj=io.BytesIO(archive.content)) as tar:
        assert tar.getnames() == ["100.drc", "300.missing"]
    tab.shot("tarsupervoxels")
    tab.assert_clean()


def test_static_files_and_unknown_console_paths(console_server):
    server, _ = console_server
    r = requests.get(server.url + "/", allow_redirects=False, timeout=T)
    assert r.status_code == 302 and r.headers["Location"] == "/console/"
    page = requests.get(server.url + "/console/", timeout=T)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    js = requests.get(server.url + "/console/js/viewer.js", timeout=T)
    assert js.headers["Content-Type"].startswith("text/javascript") and "class SliceViewer" in js.text
    for bad in ("/console/nope.js", "/console/../pyproject.toml", "/console/%2e%2e/__init__.py"):
        r = requests.get(server.url + bad, timeout=T)
        assert r.status_code == 404, (bad, r.status_code)
    cfg = requests.get(server.api("server/console"), timeout=T).json()
    assert cfg["neuroglancer_url"] == "https://neuroglancer-demo.appspot.com/" and cfg["admin_token"] is False


def test_console_can_be_turned_off_and_neuroglancer_configured(server_factory):
    off = server_factory(console=False)
    assert requests.get(off.url + "/console/", timeout=T).status_code == 404
    ng = server_factory(neuroglancer_url="http://ng.lab.local/")
    assert (
        requests.get(ng.api("server/console"), timeout=T).json()["neuroglancer_url"] == "http://ng.lab.local/"
    )


def test_every_console_module_is_packaged():
    from dvid.console.routes import STATIC

    files = {p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.is_file()}
    imports = set()
    for p in STATIC.rglob("*.js"):
        for m in re.finditer(r'from "(\.{1,2}/[^"]+)"', p.read_text()):
            imports.add((p.parent / m.group(1)).resolve().relative_to(STATIC).as_posix())
    assert imports <= files
