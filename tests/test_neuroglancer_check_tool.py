"""The parts of tools/neuroglancer_check.py that need no browser, against a real dvid server.

The tool itself needs Chromium and is run by hand (tools/README.md); these tests keep what it reads
from dvid working without it: its parsing of dvid's access log (the query strings Neuroglancer sends,
``compression=googlegzip&scale=N``), its replay and decoding of a labelmap's googlegzip chunks at
scales 0 to 2, and its screenshot analysis at both zooms (on pictures drawn here).
"""

from __future__ import annotations

import importlib.util
import io
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from dvid.server.access_log import AccessLog
from dvid.server.state import STATE_KEY

TOOL = Path(__file__).resolve().parents[1] / "tools" / "neuroglancer_check.py"


@pytest.fixture(scope="module")
def ngcheck():
    spec = importlib.util.spec_from_file_location("neuroglancer_check", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules["neuroglancer_check"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("neuroglancer_check", None)


def test_labelmap_chunks_logged_and_replayed_as_neuroglancer_asks(ngcheck, server_factory):
    server = server_factory(access_log=True)
    stream = io.StringIO()
    server.app[STATE_KEY].access_log._stream = stream
    base = server.url
    uuid = ngcheck.json.loads(ngcheck.http_call("POST", base + "/api/repos", {"alias": "ng"}))["root"]
    labels = ngcheck.make_labels()
    ngcheck.setup_labelmap(base, uuid, labels)  # checks the bodies and scale 1 itself
    for scale, offset in ((0, "128_128_0"), (1, "0_0_0"), (2, "0_0_0")):
        path = f"/api/node/{uuid}/{ngcheck.LABELMAP_INSTANCE}/raw/0_1_2/64_64_64/{offset}"
        r = requests.get(base + path, params={"compression": "googlegzip", "scale": scale,
                                              "app": "Neuroglancer"}, timeout=30)  # fmt: skip
        assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
    time.sleep(AccessLog.FLUSH_SECONDS * 4)
    entries = ngcheck.access_entries(stream.getvalue().splitlines())
    assert ngcheck.chunk_scales(entries, ngcheck.LABELMAP_INSTANCE) == {"0": 1, "1": 1, "2": 1}
    assert ngcheck.chunk_scales(entries, "other") == {}
    chunks = [e for e in entries if ngcheck.endpoint_kind(e.path) == "raw" and "compression" in e.query]
    assert len(chunks) == 3
    for access in chunks:
        facts, problems = ngcheck.replay_seg_chunk(base, access, "http://127.0.0.1:1", labels)
        assert problems == [] and facts["voxels_wrong"] == 0, facts
        assert ngcheck.SEG_SPHERE_LABEL in facts["labels"]  # the merged sphere, as one body
        assert ngcheck.SPHERE_UPPER_SUPERVOXEL not in facts["labels"]


def draw_view(ngcheck, z: int, px_per_voxel: float, mirror: bool = False) -> Image.Image:
    """The picture Neuroglancer draws of the label volume's plane z: segment colours on gray."""
    labels = ngcheck.make_labels()[z]
    if mirror:
        labels = labels[:, ::-1]
    rgb = np.zeros((*labels.shape, 3), np.uint8)
    for label, colour in ngcheck.SEG_COLORS.items():
        rgb[labels == label] = colour
    size = round(labels.shape[1] * px_per_voxel)
    picture = Image.fromarray(rgb).resize((size, size), Image.NEAREST)
    canvas = Image.new("RGB", (1024, 768), (128, 128, 128))
    canvas.paste(picture, (512 - size // 2, 384 - size // 2))
    return canvas


@pytest.mark.parametrize("zoom", [0.5, 2.0])
def test_screenshot_analysis_at_both_zooms(ngcheck, tmp_path, zoom):
    for z in ngcheck.VIEWS:
        shot = tmp_path / f"z{z}.png"
        draw_view(ngcheck, z, 1 / zoom).save(shot)
        result = ngcheck.analyse_seg(shot, z, 1 / zoom)
        assert result.ok, result.problems
        assert abs(result.facts["px_per_voxel"] - 1 / zoom) < 0.1 / zoom
        draw_view(ngcheck, z, 1 / zoom, mirror=True).save(shot)
        assert not ngcheck.analyse_seg(shot, z, 1 / zoom).ok  # orientation is checked
        draw_view(ngcheck, z, 1 / zoom).save(shot)
        assert not ngcheck.analyse_seg(shot, z, 2 / zoom).ok  # so is the scale
