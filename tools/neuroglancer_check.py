#!/usr/bin/env python
"""End-to-end check that Neuroglancer (the browser viewer) displays dvid grayscale and label volumes.

One command does everything (see tools/README.md):

1. starts ``dvid serve`` on 127.0.0.1 with a fresh store;
2. creates a repo with two ``uint8blk`` instances (BlockSize 64, VoxelSize 8 nm): ``grayscale``
   (lz4 storage, so the viewer fetches ``raw/0_1_2/{size}/{pos}/jpeg``) and ``grayjpeg`` (JPEG
   storage, so the viewer fetches ``subvolblocks/{size}/{pos}``), and POSTs the same 256x256x128
   test volume into both: an x gradient, a bright sphere in the middle and a black square near
   the (x, y) origin; and a ``labelblk`` instance ``segmentation`` (BlockSize 64) holding four
   quadrant labels (11, 22, 33, 44) and a sphere of label 55 (the viewer fetches
   ``raw/0_1_2/{size}/{pos}?compression=googlegzip``); and a ``labelmap`` instance ``lmseg``
   (MaxDownresLevel 2) with the same labels as supervoxels, the sphere in two halves merged into one
   body (the viewer adds ``&scale=N``);
3. serves the Neuroglancer client that the PyPI wheel ``neuroglancer`` ships from a small HTTP
   server on 127.0.0.1, and opens it in Debian's headless Chromium (driven with selenium and
   /usr/bin/chromedriver) with a URL-fragment state whose layer source is
   ``dvid://http://127.0.0.1:<port>/<uuid>/<instance>`` (an image layer, or for ``segmentation``
   and ``lmseg`` a segmentation layer with every segment listed, a fixed colour each and alpha 1);
4. polls screenshots until the pattern is visible, then checks the pixels: the disc's size at two
   z planes (z=64 and z=30, so z addressing and both block layers are exercised), the black
   square's position (orientation), the gradient's values (bytes), and that dvid answered
   ``/api/repos/info`` and the chunk requests with 200 (dvid's access log and Chromium's network
   log both). For the segmentation: the sphere's disc size, each quadrant's colour at its place
   (orientation), the quadrant boundaries at x=128 and y=128, nothing outside the volume, and a
   replayed googlegzip chunk decoded (compressed_segmentation) to the right labels. ``lmseg`` is
   also shown zoomed out (2 voxels per screen pixel), where Neuroglancer draws scale 1: each view
   passes only once dvid's access log shows googlegzip chunks of its scale answered, and a
   chunk of every scale requested is replayed.

Exit status 0 when all four instances were displayed correctly. Screenshots and logs go to
/tmp/ng-check/ (``--out``). Not part of the pytest suite: it needs Chromium from Debian
(``apt-get install chromium chromium-driver``) and ``pip install neuroglancer selenium``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.browser import CHROMIUM_ARGS

# ---------------------------------------------------------------------------------------------
# The test volume
# ---------------------------------------------------------------------------------------------

VOL_SIZE = (256, 256, 128)  # x, y, z
SPHERE_CENTER = (128, 128, 64)
SPHERE_RADIUS = 48
SPHERE_VALUE = 250
SQUARE = (32, 80)  # x and y range [32, 80) is black at every z
BLOCK_SIZE = 64
VOXEL_NM = 8
CROSS_SECTION_SCALE = 0.5  # 2 screen pixels per voxel
INSTANCES = (
    # name, Compression setting, the chunk endpoint Neuroglancer must use for it
    ("grayscale", "lz4", "raw"),
    ("grayjpeg", "jpeg", "subvolblocks"),
)
VIEWS = (64, 30)  # z planes shown in the xy panel
ZOOMED_OUT = 2.0  # voxels per screen pixel: Neuroglancer draws a labelmap's scale 1 (16 nm) here

# The segmentation check: a labelblk instance (BlockSize 64) whose quadrants in (x, y) carry four
# labels, with a sphere of a fifth label (the grayscale sphere's centre and radius) in the middle.
SEG_INSTANCE = "segmentation"
QUADRANT_LABELS = {(0, 0): 11, (1, 0): 22, (0, 1): 33, (1, 1): 44}  # (x >= 128, y >= 128) -> label
SEG_SPHERE_LABEL = 55
# Fixed colours via the layer's segmentColors, so the pixels can be told apart exactly.
# The labelmap check: the same labels in a labelmap instance (MaxDownresLevel 2: Neuroglancer's DVID
# source rejects 0), written as supervoxels with the sphere split in two at z=64 (upper half 56), then
# supervoxel 56 merged into body 55: the viewer must show bodies (the mapping applied) at scales 0 and 1.
LABELMAP_INSTANCE = "lmseg"
LABELMAP_MAX_DOWNRES = 2
SPHERE_UPPER_SUPERVOXEL = 56
SEGMENTATION_INSTANCES = (SEG_INSTANCE, LABELMAP_INSTANCE)
SEG_COLORS = {
    11: (255, 0, 0),
    22: (0, 255, 0),
    33: (0, 0, 255),
    44: (255, 255, 0),
    55: (255, 0, 255),
}


@dataclass(frozen=True)
class View:
    """One xy view: the z plane, Neuroglancer's crossSectionScale (scale-0 voxels per screen pixel)
    and, for the labelmap, the scale its chunks must be fetched at."""

    z: int
    zoom: float = CROSS_SECTION_SCALE
    scale: int | None = None

    @property
    def key(self) -> str:
        return f"z{self.z}" + (f"-scale{self.scale}" if self.scale else "")

    def screenshot(self, instance: str) -> str:
        return f"{instance}-xy-{self.key}.png"


def views_of(instance: str) -> list[View]:
    if instance == LABELMAP_INSTANCE:
        return [*(View(z, scale=0) for z in VIEWS), *(View(z, ZOOMED_OUT, scale=1) for z in VIEWS)]
    return [View(z) for z in VIEWS]


def gradient_value(x: float) -> float:
    return 30 + x * 0.5


def make_volume() -> np.ndarray:
    """The test volume as a (z, y, x) uint8 array, the byte order of dvid's raw/0_1_2."""
    nx, ny, nz = VOL_SIZE
    z, y, x = np.mgrid[0:nz, 0:ny, 0:nx]
    vol = gradient_value(x).astype(np.uint8)
    cx, cy, cz = SPHERE_CENTER
    vol[(x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 < SPHERE_RADIUS**2] = SPHERE_VALUE
    lo, hi = SQUARE
    vol[:, lo:hi, lo:hi] = 0
    return vol


def make_labels() -> np.ndarray:
    """The label volume as a (z, y, x) uint64 array: four quadrant labels and a sphere label."""
    nx, ny, nz = VOL_SIZE
    z, y, x = np.mgrid[0:nz, 0:ny, 0:nx]
    labels = np.zeros((nz, ny, nx), np.uint64)
    for (qx, qy), label in QUADRANT_LABELS.items():
        labels[((x >= nx // 2) == bool(qx)) & ((y >= ny // 2) == bool(qy))] = label
    cx, cy, cz = SPHERE_CENTER
    labels[(x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 < SPHERE_RADIUS**2] = SEG_SPHERE_LABEL
    return labels


def make_supervoxels() -> np.ndarray:
    """The labelmap's supervoxels: the label volume with the sphere's z >= 64 half as its own label."""
    labels = make_labels()
    upper = np.zeros(labels.shape, bool)
    upper[SPHERE_CENTER[2] :] = True
    labels[upper & (labels == SEG_SPHERE_LABEL)] = SPHERE_UPPER_SUPERVOXEL
    return labels


def decode_compressed_segmentation(data: bytes, size: tuple[int, int, int]) -> np.ndarray:
    """Neuroglancer's compressed_segmentation (uint64, one channel, 8^3 blocks) to (z, y, x)."""
    words = np.frombuffer(data, "<u4")
    ch = words[int(words[0]) :]  # one channel: its offset (in words) is the only header word
    sx, sy, sz = size
    gx, gy, gz = (sx + 7) // 8, (sy + 7) // 8, (sz + 7) // 8
    out = np.zeros((gz * 8, gy * 8, gx * 8), np.uint64)
    pos = np.arange(512)
    for b in range(gx * gy * gz):
        h0, values_off = int(ch[2 * b]), int(ch[2 * b + 1])
        table_off, bits = h0 & 0xFFFFFF, h0 >> 24
        if bits == 0:
            idx = np.zeros(512, np.int64)
        else:
            bitpos = pos * bits
            w = ch[values_off + bitpos // 32].astype(np.int64)
            idx = (w >> (bitpos % 32)) & ((1 << bits) - 1)
        n = int(idx.max()) + 1
        table = ch[table_off : table_off + 2 * n].astype(np.uint64)
        values = table[0::2] | (table[1::2] << np.uint64(32))
        bx, by, bz = b % gx, (b // gx) % gy, b // (gx * gy)
        out[bz * 8 : bz * 8 + 8, by * 8 : by * 8 + 8, bx * 8 : bx * 8 + 8] = values[idx].reshape(8, 8, 8)
    return out[:sz, :sy, :sx]


# ---------------------------------------------------------------------------------------------
# Processes and servers
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_call(method: str, url: str, body: Any = None, timeout: float = 60) -> bytes:
    data = None
    headers = {}
    if body is not None:
        if isinstance(body, bytes | bytearray):
            data = bytes(body)
            headers["Content-Type"] = "application/octet-stream"
        else:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read()
    except urllib.error.HTTPError as err:
        raise RuntimeError(f"{method} {url} -> {err.code}: {err.read()[:500]!r}") from None


class DvidServer:
    """``dvid serve`` as a child process; its stderr (the access log) goes to a file."""

    def __init__(self, store: Path, port: int, log_path: Path) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        exe = shutil.which("dvid")
        cmd = [exe] if exe else [sys.executable, "-m", "dvid"]
        cmd += ["serve", "--store", str(store), "--host", "127.0.0.1", "--port", str(port)]
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dvid serve exited with {self.proc.returncode}; see {log_path}")
            try:
                http_call("GET", self.base + "/api/server/info", timeout=2)
                return
            except (OSError, RuntimeError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dvid did not answer on {self.base} within 30 s") from None
                time.sleep(0.2)

    def log_lines(self) -> list[str]:
        time.sleep(0.2)  # the access log is flushed every 50 ms
        return self.log_path.read_text(errors="replace").splitlines()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


VIEWER_TOKEN = "ngcheck"


def neuroglancer_client_dir() -> Path:
    try:
        import neuroglancer
    except ImportError:
        raise SystemExit("needs the PyPI package neuroglancer: pip install neuroglancer") from None
    client = Path(neuroglancer.__file__).parent / "static" / "client"
    if not (client / "index.html").exists():
        raise SystemExit(f"the neuroglancer wheel has no built client at {client}")
    return client


class ViewerPageServer:
    """Serves the Neuroglancer client shipped in the ``neuroglancer`` wheel on 127.0.0.1.

    The wheel ships the client built for Neuroglancer's Python integration: the page must sit at
    ``/v/<token>/`` and it talks to its Python server at ``/events/<token>`` (a server-sent event
    stream of state updates), ``/credentials/<token>`` (every credentials request, DVID's
    included) and ``/state|action/<token>``. This server answers those with the minimum: an event
    stream that stays open and sends nothing (so the URL-fragment state rules), and for the DVID
    credentials ``{"token": ""}``, which is what the standalone viewer's DVIDCredentialsProvider
    yields for an http:// server without an auth server, so no Authorization header is sent.
    """

    def __init__(self, client_dir: Path) -> None:
        self.client_dir = client_dir
        self.log: list[str] = []
        self.credentials_requests: list[Any] = []
        self._stop = threading.Event()
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def translate_path(self, path: str) -> str:
                parts = urllib.parse.urlsplit(path).path.split("/")
                if len(parts) >= 3 and parts[1] == "v":
                    rel = "/".join(p for p in parts[3:] if p not in ("", ".", "..")) or "index.html"
                    return str(outer.client_dir / rel)
                return str(outer.client_dir / "__not_found__")

            def end_headers(self) -> None:
                self.send_header("Cache-Control", "no-store")
                super().end_headers()

            def do_GET(self) -> None:
                path = urllib.parse.urlsplit(self.path).path
                if path == f"/events/{VIEWER_TOKEN}":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    try:
                        while not outer._stop.is_set():
                            self.wfile.write(b": keep-alive\n\n")
                            self.wfile.flush()
                            outer._stop.wait(2)
                    except OSError:
                        pass
                    return
                super().do_GET()

            def do_POST(self) -> None:
                path = urllib.parse.urlsplit(self.path).path
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                out = b"{}"
                if path == f"/credentials/{VIEWER_TOKEN}":
                    try:
                        outer.credentials_requests.append(json.loads(body))
                    except ValueError:
                        outer.credentials_requests.append(body)
                    out = json.dumps({"generation": 1, "credentials": {"token": ""}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, format: str, *args: Any) -> None:
                outer.log.append(format % args)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def page_url(self, state: dict[str, Any]) -> str:
        fragment = urllib.parse.quote(json.dumps(state, separators=(",", ":")), safe="")
        return f"http://127.0.0.1:{self.port}/v/{VIEWER_TOKEN}/#!{fragment}"

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


CHROMIUM_FLAGS = (
    "--headless=new",
    *CHROMIUM_ARGS,  # the closed network's flags, as the console's tests use them
    "--enable-unsafe-swiftshader",  # WebGL through SwiftShader, without the deprecation fallback
    "--window-size=1024,768",
)


def start_browser(chromium: str, chromedriver: str, profile: Path, driver_log: Path) -> Any:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise SystemExit("needs selenium: pip install selenium") from None
    os.environ.setdefault("SE_AVOID_STATS", "true")  # selenium-manager never runs: paths given
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(executable_path=chromedriver, log_output=str(driver_log))
    return webdriver.Chrome(service=service, options=opts)


# ---------------------------------------------------------------------------------------------
# Screenshot analysis
# ---------------------------------------------------------------------------------------------


def _components(mask: np.ndarray) -> list[np.ndarray]:
    """4-connected components of a boolean mask, as (n, 2) arrays of (row, col)."""
    seen = np.zeros_like(mask, dtype=bool)
    h, w = mask.shape
    comps = []
    for r0, c0 in np.argwhere(mask):
        if seen[r0, c0]:
            continue
        seen[r0, c0] = True
        stack = [(int(r0), int(c0))]
        pixels = []
        while stack:
            r, c = stack.pop()
            pixels.append((r, c))
            for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if 0 <= rr < h and 0 <= cc < w and mask[rr, cc] and not seen[rr, cc]:
                    seen[rr, cc] = True
                    stack.append((rr, cc))
        comps.append(np.array(pixels))
    return comps


@dataclass
class Analysis:
    ok: bool
    problems: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


def measure_disc(
    res: Analysis, disc: np.ndarray, z: int, what: str, expected_scale: float = 1 / CROSS_SECTION_SCALE
) -> tuple[float, float, float] | None:
    """Centre (x, y) in screen pixels and pixels per voxel of the sphere's cross-section at ``z``,
    recorded in ``res.facts``; None (with a problem recorded) when its size gives the wrong scale."""
    area = len(disc)
    rows, cols = disc[:, 0], disc[:, 1]
    cy, cx = rows.mean(), cols.mean()
    h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    r_px = float(np.sqrt(area / np.pi))
    r_vox = float(np.sqrt(SPHERE_RADIUS**2 - (z - SPHERE_CENTER[2]) ** 2))
    scale = r_px / r_vox  # screen pixels per voxel
    fill = area / float(w * h)
    res.facts.update(
        disc_center_px=(round(cx, 1), round(cy, 1)),
        disc_bbox_px=(int(w), int(h)),
        disc_radius_px=round(r_px, 1),
        expected_radius_vox=round(r_vox, 1),
        px_per_voxel=round(scale, 3),
        disc_fill=round(fill, 3),
    )
    if abs(w - h) > 0.1 * max(w, h) + 3 or not 0.7 <= fill <= 0.86:
        res.problems.append(f"{what} is not a disc (bbox {w}x{h}, fill {fill:.2f})")
    if not 0.85 * expected_scale <= scale <= 1.15 * expected_scale:
        res.problems.append(
            f"disc radius {r_px:.1f} px at z={z} gives {scale:.2f} px/voxel, expected {expected_scale:.2f}"
            " (wrong z plane, voxel size or extents?)"
        )
        return None
    return float(cx), float(cy), scale


def analyse_xy(png_path: Path, z: int) -> Analysis:
    """Is the test volume's z plane displayed at the expected place, size, orientation and values?"""
    from PIL import Image

    rgb = np.asarray(Image.open(png_path).convert("RGB")).astype(np.int16)
    gray = rgb.mean(axis=2)
    neutral = (rgb.max(axis=2) - rgb.min(axis=2)) <= 12
    res = Analysis(ok=False)
    bright = neutral & (gray >= 215)
    comps = [c for c in _components(bright) if len(c) >= 200] if bright.sum() < 400_000 else []
    if not comps:
        res.problems.append("no bright disc (the sphere) on screen: nothing displayed yet")
        return res
    measured = measure_disc(res, max(comps, key=len), z, "the bright blob")
    if measured is None:
        return res
    cx, cy, scale = measured

    def screen_value(x: float, y: float) -> float | None:
        px = cx + (x - SPHERE_CENTER[0]) * scale
        py = cy + (y - SPHERE_CENTER[1]) * scale
        r, c = round(py), round(px)
        if not (2 <= r < gray.shape[0] - 2 and 2 <= c < gray.shape[1] - 2):
            return None
        return float(gray[r - 2 : r + 3, c - 2 : c + 3].mean())

    samples = {}
    lo, hi = SQUARE
    mid = (lo + hi) / 2
    square = screen_value(mid, mid)
    samples["black square"] = square
    if square is None or square > 25:
        res.problems.append(f"black square not found at voxel ({mid}, {mid}): screen value {square}")
    # The square must be at small x *and* small y: its mirror images are plain gradient.
    for label, (x, y) in {"mirror x": (255 - mid, mid), "mirror y": (mid, 255 - mid)}.items():
        v = screen_value(x, y)
        samples[label] = v
        if v is None or abs(v - gradient_value(x)) > 25:
            res.problems.append(f"{label} at voxel ({x}, {y}): screen {v}, expected {gradient_value(x):.0f}")
    previous = -1.0
    for x in (10, 60, 110, 160, 210, 245):
        y = 225
        v = screen_value(x, y)
        want = gradient_value(x)
        samples[f"gradient x={x}"] = v
        if v is None or abs(v - want) > 25:
            res.problems.append(f"gradient at voxel ({x}, {y}): screen {v}, expected {want:.0f}")
        elif v <= previous:
            res.problems.append(f"gradient not increasing along x at voxel x={x}")
        previous = v if v is not None else previous
    res.facts["samples"] = {k: (None if v is None else round(v, 1)) for k, v in samples.items()}
    res.ok = not res.problems
    return res


def analyse_seg(png_path: Path, z: int, px_per_voxel: float = 1 / CROSS_SECTION_SCALE) -> Analysis:
    """Is the label volume's z plane displayed with each segment's colour where it belongs, at
    ``px_per_voxel`` screen pixels per (scale-0) voxel?"""
    from PIL import Image

    rgb = np.asarray(Image.open(png_path).convert("RGB")).astype(np.int16)
    res = Analysis(ok=False)

    def is_color(label: int) -> np.ndarray:
        return (np.abs(rgb - np.array(SEG_COLORS[label], np.int16)) <= 30).all(axis=2)

    masks = {label: is_color(label) for label in SEG_COLORS}
    res.facts["pixels_per_segment"] = {str(k): int(m.sum()) for k, m in masks.items()}
    comps = [c for c in _components(masks[SEG_SPHERE_LABEL]) if len(c) >= 200]
    if not comps:
        res.problems.append(
            f"no disc in the sphere's colour (label {SEG_SPHERE_LABEL}): nothing displayed yet"
        )
        return res
    measured = measure_disc(res, max(comps, key=len), z, "the sphere's segment", px_per_voxel)
    if measured is None:
        return res
    cx, cy, scale = measured

    def to_screen(x: float, y: float) -> tuple[int, int]:
        return round(cy + (y - SPHERE_CENTER[1]) * scale), round(cx + (x - SPHERE_CENTER[0]) * scale)

    def label_at(x: float, y: float) -> int | None:
        """The segment whose colour covers a 5x5 patch at voxel (x, y); 0 for none, None off screen."""
        r, c = to_screen(x, y)
        if not (2 <= r < rgb.shape[0] - 2 and 2 <= c < rgb.shape[1] - 2):
            return None
        for label, m in masks.items():
            if m[r - 2 : r + 3, c - 2 : c + 3].all():
                return label
        return 0

    nx, ny, _ = VOL_SIZE
    samples: dict[str, Any] = {}
    # Each quadrant's label at its centre and near its outer corner (orientation and axis order),
    # the sphere at the centre, and no segment colour just outside the volume.
    checks = {(nx / 2, ny / 2): SEG_SPHERE_LABEL}
    for (qx, qy), label in QUADRANT_LABELS.items():
        for fx, fy in ((nx / 4, ny / 4), (12, 12)):
            x = nx - fx if qx else fx
            y = ny - fy if qy else fy
            checks[(x, y)] = label
    for x, y in ((-6, ny / 4), (nx + 6, ny / 4), (nx / 4, -6), (nx / 4, ny + 6)):
        checks[(x, y)] = 0
    for (x, y), want in checks.items():
        got = label_at(x, y)
        samples[f"voxel ({x:g}, {y:g})"] = got
        if got != want:
            res.problems.append(f"voxel ({x:g}, {y:g}): screen shows label {got}, expected {want}")

    # The quadrant boundaries: along a row at y=16 the colour changes from label 11 to 22 at x=128,
    # along a column at x=16 from 11 to 33 at y=128 (both well away from the sphere).
    r16, c16 = to_screen(16, 16)
    edges = {}
    for axis, line, a, b in (
        ("x", rgb[r16], 11, 22),
        ("y", rgb[:, c16], 11, 33),
    ):
        in_a = (np.abs(line - np.array(SEG_COLORS[a])) <= 30).all(axis=1)
        in_b = (np.abs(line - np.array(SEG_COLORS[b])) <= 30).all(axis=1)
        ia, ib = np.flatnonzero(in_a), np.flatnonzero(in_b)
        if len(ia) == 0 or len(ib) == 0 or ia.max() >= ib.min():
            res.problems.append(f"no {a} -> {b} boundary along {axis}")
            continue
        edge = (ia.max() + ib.min() + 1) / 2  # screen coordinate of the boundary
        centre = cx if axis == "x" else cy
        # the disc's centre is the middle of voxel 128, the boundary the start of it
        edge_vox = SPHERE_CENTER[0 if axis == "x" else 1] + 0.5 + (edge - centre) / scale
        edges[axis] = round(float(edge_vox), 1)
        if abs(edge_vox - 128) > max(2.0, 2 / px_per_voxel):  # 2 voxels, or 2 screen pixels
            res.problems.append(f"the {a}/{b} boundary is at {axis}={edge_vox:.1f} voxels, expected 128")
    res.facts["quadrant_boundaries_vox"] = edges
    res.facts["samples"] = samples
    res.ok = not res.problems
    return res


# ---------------------------------------------------------------------------------------------
# Logs
# ---------------------------------------------------------------------------------------------

ACCESS_RE = re.compile(r"^\S+ \S+ (GET|HEAD|POST|PUT|DELETE|OPTIONS) ([^\s?]+)(?:\?(\S*))? (\d{3}) (\d+) ")


@dataclass
class Access:
    """One line of dvid's access log: the path and the query string (as sent) apart."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    size: int

    @property
    def target(self) -> str:
        return self.path + ("?" + urllib.parse.urlencode(self.query) if self.query else "")


def access_entries(lines: list[str]) -> list[Access]:
    out = []
    for line in lines:
        m = ACCESS_RE.match(line)
        if m:
            query = dict(urllib.parse.parse_qsl(m.group(3) or "", keep_blank_values=True))
            out.append(Access(m.group(1), m.group(2), query, int(m.group(4)), int(m.group(5))))
    return out


def chunk_scales(entries: list[Access], instance: str) -> dict[str, int]:
    """How many googlegzip chunk requests of ``instance`` dvid answered with 200, by ``scale``."""
    scales: collections.Counter[str] = collections.Counter()
    for e in entries:
        if (
            e.status == 200
            and endpoint_kind(e.path) == "raw"
            and e.path.split("/")[4:5] == [instance]
            and e.query.get("compression") == "googlegzip"
        ):
            scales[e.query.get("scale", "0")] += 1
    return dict(sorted(scales.items()))


def endpoint_kind(path: str) -> str:
    if path == "/api/repos/info":
        return "repos/info"
    m = re.match(r"^/api/node/[^/]+/[^/]+/([^/]+)", path)
    if m:
        if m.group(1) == "raw" and path.endswith("/jpeg"):
            return "raw/jpeg"
        return m.group(1)
    return path


def network_events(driver: Any, dvid_base: str) -> list[dict[str, Any]]:
    """Chromium's network log of the page, reduced to the requests sent to dvid.

    Only the page's own requests (``/api/repos/info``) are there: Neuroglancer fetches chunks from
    its web worker, whose requests this log does not show; dvid's access log and replay_chunk()
    cover those."""
    requests: dict[str, dict[str, Any]] = {}
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        params = msg.get("params", {})
        rid = params.get("requestId")
        if msg["method"] == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if url.startswith(dvid_base):
                requests[rid] = {
                    "method": params["request"]["method"],
                    "url": url,
                    "request_headers": params["request"].get("headers", {}),
                }
        elif rid in requests and msg["method"] == "Network.responseReceived":
            resp = params["response"]
            headers = {k.lower(): v for k, v in resp.get("headers", {}).items()}
            requests[rid].update(
                status=resp["status"],
                mime=resp.get("mimeType"),
                cors=headers.get("access-control-allow-origin"),
                content_type=headers.get("content-type"),
            )
        elif rid in requests and msg["method"] == "Network.loadingFailed":
            requests[rid].update(
                failed=params.get("errorText"),
                blocked=params.get("blockedReason"),
                cors_error=params.get("corsErrorStatus"),
            )
    return list(requests.values())


# ---------------------------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------------------------


def viewer_state(
    dvid_base: str, uuid: str, instance: str, z: int, zoom: float = CROSS_SECTION_SCALE
) -> dict[str, Any]:
    """``zoom``: Neuroglancer's crossSectionScale, (scale-0) voxels per screen pixel."""
    m = [VOXEL_NM * 1e-9, "m"]
    source = f"dvid://{dvid_base}/{uuid}/{instance}"
    if instance in SEGMENTATION_INSTANCES:
        layer = {
            "type": "segmentation",
            "name": instance,
            "source": source,
            # every segment visible and opaque, in a fixed colour, and no hover highlight
            "segments": [str(label) for label in SEG_COLORS],
            "segmentColors": {str(k): "#{:02x}{:02x}{:02x}".format(*v) for k, v in SEG_COLORS.items()},
            "selectedAlpha": 1,
            "notSelectedAlpha": 1,
            "hoverHighlight": False,
        }
    else:
        layer = {
            "type": "image",
            "name": instance,
            "source": source,
            "opacity": 1.0,
            # values shown as they are: screen gray = voxel value
            "shader": "void main() { emitGrayscale(toNormalized(getDataValue())); }",
        }
    return {
        "dimensions": {"x": m, "y": m, "z": m},
        "position": [VOL_SIZE[0] / 2, VOL_SIZE[1] / 2, z + 0.5],
        "crossSectionScale": zoom,
        "layers": [layer],
        "layout": "xy",
        "showAxisLines": False,
        "showDefaultAnnotations": False,
        "selectedLayer": {"visible": False},
    }


def setup_data(base: str, vol: np.ndarray) -> str:
    uuid = json.loads(
        http_call("POST", base + "/api/repos", {"alias": "ngcheck", "description": "neuroglancer check"})
    )["root"]
    nx, ny, nz = VOL_SIZE
    for name, compression, _ in INSTANCES:
        http_call(
            "POST",
            f"{base}/api/repo/{uuid}/instance",
            {
                "dataname": name,
                "typename": "uint8blk",
                "Compression": compression,
                "BlockSize": f"{BLOCK_SIZE},{BLOCK_SIZE},{BLOCK_SIZE}",
                "VoxelSize": f"{VOXEL_NM},{VOXEL_NM},{VOXEL_NM}",
                "VoxelUnits": "nanometers,nanometers,nanometers",
            },
        )
        http_call("POST", f"{base}/api/node/{uuid}/{name}/raw/0_1_2/{nx}_{ny}_{nz}/0_0_0", vol.tobytes())
        back = np.frombuffer(
            http_call("GET", f"{base}/api/node/{uuid}/{name}/raw/0_1_2/{nx}_{ny}_{nz}/0_0_0"), np.uint8
        ).reshape(vol.shape)
        err = np.abs(back.astype(int) - vol).mean()
        if err > 5:
            raise RuntimeError(f"{name}: the volume read back differs from the one written (mean {err:.1f})")
    http_call(
        "POST",
        f"{base}/api/repo/{uuid}/instance",
        {
            "dataname": SEG_INSTANCE,
            "typename": "labelblk",
            "BlockSize": f"{BLOCK_SIZE},{BLOCK_SIZE},{BLOCK_SIZE}",
            "VoxelSize": f"{VOXEL_NM},{VOXEL_NM},{VOXEL_NM}",
            "VoxelUnits": "nanometers,nanometers,nanometers",
        },
    )
    labels = make_labels()
    raw = f"{base}/api/node/{uuid}/{SEG_INSTANCE}/raw/0_1_2/{nx}_{ny}_{nz}/0_0_0"
    http_call("POST", raw, labels.tobytes())
    back = np.frombuffer(http_call("GET", raw), np.uint64).reshape(labels.shape)
    if not np.array_equal(back, labels):
        raise RuntimeError(f"{SEG_INSTANCE}: the labels read back differ from the ones written")
    setup_labelmap(base, uuid, labels)
    return uuid


def downsampled_where_uniform(labels: np.ndarray, scale: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Scale ``scale`` of a (z, y, x) label volume where it is unambiguous: each cell's label (cells of
    2^scale voxels a side), and a mask of the cells holding a single label (elsewhere the
    downsampling chooses)."""
    f = 2**scale
    nz, ny, nx = labels.shape
    cells = labels.reshape(nz // f, f, ny // f, f, nx // f, f).transpose(0, 2, 4, 1, 3, 5)
    cells = cells.reshape(nz // f, ny // f, nx // f, f**3)
    return cells[..., 0], (cells == cells[..., :1]).all(axis=-1)


def setup_labelmap(base: str, uuid: str, labels: np.ndarray) -> None:
    """The labelmap instance: supervoxels written, the sphere's two halves merged into one body."""
    http_call(
        "POST",
        f"{base}/api/repo/{uuid}/instance",
        {
            "dataname": LABELMAP_INSTANCE,
            "typename": "labelmap",
            "BlockSize": f"{BLOCK_SIZE},{BLOCK_SIZE},{BLOCK_SIZE}",
            "VoxelSize": f"{VOXEL_NM},{VOXEL_NM},{VOXEL_NM}",
            "VoxelUnits": "nanometers,nanometers,nanometers",
            "MaxDownresLevel": str(LABELMAP_MAX_DOWNRES),
        },
    )
    nx, ny, nz = VOL_SIZE
    node = f"{base}/api/node/{uuid}/{LABELMAP_INSTANCE}"
    supervoxels = make_supervoxels()
    http_call("POST", f"{node}/raw/0_1_2/{nx}_{ny}_{nz}/0_0_0", supervoxels.tobytes())
    http_call("POST", f"{node}/merge", [SEG_SPHERE_LABEL, SPHERE_UPPER_SUPERVOXEL])
    back = np.frombuffer(http_call("GET", f"{node}/raw/0_1_2/{nx}_{ny}_{nz}/0_0_0"), np.uint64)
    if not np.array_equal(back.reshape(labels.shape), labels):
        raise RuntimeError(f"{LABELMAP_INSTANCE}: the bodies read back differ from the labels")
    raw1 = f"{node}/raw/0_1_2/{nx // 2}_{ny // 2}_{nz // 2}/0_0_0?scale=1"
    low = np.frombuffer(http_call("GET", raw1), np.uint64).reshape(nz // 2, ny // 2, nx // 2)
    want, uniform = downsampled_where_uniform(labels)
    if not np.array_equal(low[uniform], want[uniform]):
        raise RuntimeError(f"{LABELMAP_INSTANCE}: scale 1 differs from the labels where they are uniform")


LAYER_STATE_JS = """
const res = [];
for (const ml of window.viewer.layerManager.managedLayers) {
  const sources = [];
  if (ml.layer) for (const ds of ml.layer.dataSources) {
    const ls = ds.loadState;
    sources.push(ls === undefined ? "loading"
                 : ls.error !== undefined ? "error: " + (ls.error.message || String(ls.error)) : "loaded");
  }
  res.push({name: ml.name, sources: sources});
}
return JSON.stringify(res);
"""


def layer_states(driver: Any) -> list[dict[str, Any]]:
    """The viewer's own word on each layer's data source: loading, loaded or its error message."""
    try:
        return json.loads(driver.execute_script(LAYER_STATE_JS))
    except Exception as exc:  # the page is not up yet, or Neuroglancer's internals changed
        return [{"name": "?", "sources": [f"unknown ({type(exc).__name__})"]}]


def show(
    driver: Any,
    url: str,
    shot: Path,
    z: int,
    timeout: float,
    seg: bool = False,
    px_per_voxel: float = 1 / CROSS_SECTION_SCALE,
    ready: Any = None,
) -> tuple[Analysis, float]:
    """Load the view and screenshot it every second until two pictures in a row pass (and
    ``ready()``, if given, says the chunks the view needs were answered)."""
    driver.get("about:blank")  # a fresh page load for every view, not a hash change
    driver.get(url)
    start = time.monotonic()
    passes = 0
    while True:
        time.sleep(1.0)
        driver.save_screenshot(str(shot))
        result = analyse_seg(shot, z, px_per_voxel) if seg else analyse_xy(shot, z)
        if result.ok and ready is not None and not ready():
            result.ok = False
            result.problems.append("dvid has not yet answered the chunks this view needs")
        layers = layer_states(driver)
        result.facts["layers"] = layers
        errors = [s for layer in layers for s in layer["sources"] if s.startswith("error")]
        if errors:
            result.ok = False
            result.problems.append(f"Neuroglancer could not load the data source: {errors}")
        passes = passes + 1 if result.ok else 0
        elapsed = time.monotonic() - start
        if passes >= 2:  # the same good picture twice: chunks have landed and stay
            return result, elapsed
        if elapsed > timeout or errors:
            return result, elapsed


def replay_chunk(base: str, path: str, origin: str, vol: np.ndarray) -> tuple[dict[str, Any], list[str]]:
    """GET one chunk the viewer fetched, as the browser did (with an Origin), and check what
    Neuroglancer relies on: status, CORS, and bytes that decode to the right 64^3 voxels."""
    import io

    from PIL import Image

    problems: list[str] = []
    req = urllib.request.Request(base + path + "?app=Neuroglancer", headers={"Origin": origin})
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = resp.read()
        facts: dict[str, Any] = {
            "path": path,
            "status": resp.status,
            "bytes": len(body),
            "content_type": resp.headers.get("Content-Type"),
            "access_control_allow_origin": resp.headers.get("Access-Control-Allow-Origin"),
        }
    if facts["access_control_allow_origin"] not in ("*", origin):
        problems.append(f"{path}: Access-Control-Allow-Origin is {facts['access_control_allow_origin']!r}")
    m = re.search(r"/(\d+)_(\d+)_(\d+)/(\d+)_(\d+)_(\d+)(?:/[a-z]+)?$", path)
    if not m:
        return facts, [*problems, f"{path}: cannot read size and offset"]
    sx, sy, sz, ox, oy, oz = map(int, m.groups())
    jpeg = body
    if "/subvolblocks/" in path:
        if len(body) < 16:
            return facts, [*problems, f"{path}: {len(body)} bytes, less than the 16-byte block header"]
        bx, by, bz, n = np.frombuffer(body[:16], "<i4")
        facts["block_header"] = [int(bx), int(by), int(bz), int(n)]
        if (bx * BLOCK_SIZE, by * BLOCK_SIZE, bz * BLOCK_SIZE) != (ox, oy, oz) or n != len(body) - 16:
            problems.append(
                f"{path}: block header {facts['block_header']} does not match the request "
                f"or the {len(body) - 16} bytes that follow (one block per request expected)"
            )
        jpeg = body[16:]
    try:
        img = Image.open(io.BytesIO(jpeg))
        facts["image"] = f"{img.format} {img.mode} {img.size[0]}x{img.size[1]}"
        pixels = np.asarray(img.convert("L"))
    except Exception as exc:
        return facts, [*problems, f"{path}: the body is not a decodable image ({exc})"]
    if pixels.size != sx * sy * sz:
        problems.append(f"{path}: the image holds {pixels.size} pixels, Neuroglancer needs {sx * sy * sz}")
        return facts, problems
    want = vol[oz : oz + sz, oy : oy + sy, ox : ox + sx]
    err = float(np.abs(pixels.reshape(sz, sy, sx).astype(int) - want).mean())
    facts["mean_abs_error"] = round(err, 2)
    if err > 5:
        problems.append(f"{path}: decoded voxels differ from the volume (mean abs error {err:.1f})")
    return facts, problems


def replay_seg_chunk(
    base: str, access: Access, origin: str, labels: np.ndarray
) -> tuple[dict[str, Any], list[str]]:
    """GET one segmentation chunk again as Neuroglancer asked for it (the logged query:
    ``compression=googlegzip``, for a labelmap ``scale=N``; with an Origin and Accept-Encoding gzip)
    and check the status, CORS, Content-Encoding and the decoded labels: at scale 0 every label, at
    scale N those of the cells of 2^N voxels a side holding one label."""
    import gzip

    problems: list[str] = []
    path = access.path
    query = "?" + urllib.parse.urlencode(access.query)
    scale = int(access.query.get("scale", "0"))
    headers = {"Origin": origin, "Accept-Encoding": "gzip"}
    req = urllib.request.Request(base + path + query, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = resp.read()
        facts: dict[str, Any] = {
            "path": path + query,
            "status": resp.status,
            "bytes": len(body),
            "content_type": resp.headers.get("Content-Type"),
            "content_encoding": resp.headers.get("Content-Encoding"),
            "access_control_allow_origin": resp.headers.get("Access-Control-Allow-Origin"),
        }
    if facts["access_control_allow_origin"] not in ("*", origin):
        problems.append(f"{path}: Access-Control-Allow-Origin is {facts['access_control_allow_origin']!r}")
    if facts["content_encoding"] != "gzip":
        problems.append(f"{path}: Content-Encoding is {facts['content_encoding']!r}, expected gzip")
    else:
        body = gzip.decompress(body)
    m = re.search(r"/(\d+)_(\d+)_(\d+)/(\d+)_(\d+)_(\d+)$", path)
    if not m:
        return facts, [*problems, f"{path}: cannot read size and offset"]
    sx, sy, sz, ox, oy, oz = map(int, m.groups())
    try:
        got = decode_compressed_segmentation(body, (sx, sy, sz))
    except Exception as exc:
        return facts, [*problems, f"{path}: not compressed_segmentation ({type(exc).__name__}: {exc})"]
    # the chunk may reach past the volume (at scale 2 it is 64x64x32 voxels): 0 there
    cells, uniform = downsampled_where_uniform(labels, scale)
    want = np.zeros(got.shape, np.uint64)
    mask = np.ones(got.shape, bool)
    inside = cells[oz : oz + sz, oy : oy + sy, ox : ox + sx]
    want[tuple(slice(0, n) for n in inside.shape)] = inside
    mask[tuple(slice(0, n) for n in inside.shape)] = uniform[oz : oz + sz, oy : oy + sy, ox : ox + sx]
    facts["scale"] = scale
    facts["labels"] = sorted(int(v) for v in np.unique(got))
    facts["voxels_wrong"] = int(((got != want) & mask).sum())
    if facts["voxels_wrong"]:
        problems.append(f"{path}: {facts['voxels_wrong']} decoded labels differ from the volume")
    return facts, problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--keep",
        action="store_true",
        help="keep the dvid store and the Chromium profile (under --out) after the run",
    )
    ap.add_argument("--out", default="/tmp/ng-check", help="screenshots and logs [/tmp/ng-check]")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    ap.add_argument("--timeout", type=float, default=60, help="seconds to wait for each view [60]")
    args = ap.parse_args(argv)

    for exe in (args.chromium, args.chromedriver):
        if not os.access(exe, os.X_OK):
            print(f"missing {exe}: apt-get install chromium chromium-driver", file=sys.stderr)
            return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shown = [  # name, storage, chunk endpoint
        *INSTANCES,
        (SEG_INSTANCE, "lz4", "googlegzip"),
        (LABELMAP_INSTANCE, "gzip", "googlegzip"),
    ]
    outputs = [out / view.screenshot(name) for name, _, _ in shown for view in views_of(name)]
    outputs += [out / n for n in ("report.json", "dvid.log", "console.log", "chromedriver.log")]
    for old in outputs:  # this run's files only: nothing stale can pass for a result
        old.unlink(missing_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=out))
    client_dir = neuroglancer_client_dir()

    dvid = page = driver = None
    failures: list[str] = []
    report: dict[str, Any] = {"instances": {}}
    try:
        dvid = DvidServer(work / "store", free_port(), out / "dvid.log")
        print(f"dvid: {dvid.base} (store {work / 'store'}, log {out / 'dvid.log'})")
        vol = make_volume()
        uuid = setup_data(dvid.base, vol)
        labels = make_labels()
        print(
            f"repo {uuid}: uint8blk instances "
            + ", ".join(f"{n} ({c})" for n, c, _ in INSTANCES)
            + f", labelblk instance {SEG_INSTANCE}"
            + f", labelmap instance {LABELMAP_INSTANCE} (MaxDownresLevel {LABELMAP_MAX_DOWNRES})"
        )
        page = ViewerPageServer(client_dir)
        print(f"viewer page: http://127.0.0.1:{page.port}/v/{VIEWER_TOKEN}/ (client from {client_dir})")
        driver = start_browser(
            args.chromium, args.chromedriver, work / "chromium-profile", out / "chromedriver.log"
        )
        console: list[str] = []
        for name, compression, endpoint in shown:
            inst_report: dict[str, Any] = {"compression": compression, "views": {}}
            report["instances"][name] = inst_report
            log_mark = len(dvid.log_lines())
            for view in views_of(name):
                shot = out / view.screenshot(name)
                url = page.page_url(viewer_state(dvid.base, uuid, name, view.z, view.zoom))
                view_mark = len(dvid.log_lines())

                def scale_answered(mark: int = view_mark, view: View = view, name: str = name) -> bool:
                    scales = chunk_scales(access_entries(dvid.log_lines()[mark:]), name)
                    return scales.get(str(view.scale), 0) > 0

                result, elapsed = show(
                    driver, url, shot, view.z, args.timeout, seg=name in SEGMENTATION_INSTANCES,
                    px_per_voxel=1 / view.zoom, ready=scale_answered if view.scale is not None else None,
                )  # fmt: skip
                view_report = {
                    "screenshot": str(shot),
                    "ok": result.ok,
                    "seconds": round(elapsed, 1),
                    "zoom_voxels_per_px": view.zoom,
                    **result.facts,
                    "problems": result.problems,
                }
                inst_report["views"][view.key] = view_report
                label = f"{name} z={view.z}" + (f" scale {view.scale}" if view.scale is not None else "")
                if view.scale is not None:
                    scales = chunk_scales(access_entries(dvid.log_lines()[view_mark:]), name)
                    view_report["googlegzip_chunks_by_scale"] = scales
                    print(f"       googlegzip chunk requests answered 200, by scale: {scales}")
                    if scales.get(str(view.scale), 0) < 1:
                        result.ok = False
                        result.problems.append(f"no googlegzip chunk request with scale={view.scale}")
                state = "OK  " if result.ok else "FAIL"
                px = result.facts.get("px_per_voxel", "?")
                print(f"  {state} {label}: {shot} ({elapsed:.1f} s, {px} px/voxel)")
                for p in result.problems:
                    print(f"       {p}")
                if not result.ok:
                    failures.append(f"{label}: " + "; ".join(result.problems))
                for e in driver.get_log("browser"):
                    console.append(f"[{label}] {e['level']} {e['message']}")
                    # The chunk worker logs a chunk it could not fetch or decode like this.
                    if "Error retrieving chunk" in e["message"]:
                        failures.append(f"{label}: viewer console: {e['message'][-200:]}")

            # What the viewer asked dvid for while showing this instance.
            entries = access_entries(dvid.log_lines()[log_mark:])
            by_kind = collections.Counter((endpoint_kind(e.path), e.status) for e in entries)
            inst_report["dvid_access_log"] = {f"{k} {s}": n for (k, s), n in sorted(by_kind.items())}
            net = network_events(driver, dvid.base)
            inst_report["page_requests"] = len(net)
            examples = {}
            for ev in net:
                kind = endpoint_kind(urllib.parse.urlsplit(ev["url"]).path)
                examples.setdefault(kind, ev)
            inst_report["page_request_examples"] = examples
            print(f"  requests seen by dvid: {inst_report['dvid_access_log']}")
            if by_kind.get(("repos/info", 200), 0) < 1:
                failures.append(f"{name}: the viewer never got GET /api/repos/info with 200")
            want = {"raw": "raw/jpeg", "subvolblocks": "subvolblocks", "googlegzip": "raw"}[endpoint]
            if by_kind.get((want, 200), 0) < 1:
                failures.append(f"{name}: no {want} chunk request answered with 200")
            chunks = [e for e in entries if e.status == 200 and endpoint_kind(e.path) == want]
            if chunks:
                origin = f"http://127.0.0.1:{page.port}"
                if endpoint == "googlegzip":
                    # A 64^3 uint64 chunk is 2 MiB raw; compressed_segmentation of a few labels,
                    # gzipped, is ~1 KiB.
                    inst_report["chunk_queries"] = sorted({e.target.split("?", 1)[-1] for e in chunks})
                    if any(e.query.get("compression") != "googlegzip" for e in chunks):
                        failures.append(f"{name}: chunk requests without compression=googlegzip")
                    sizes = [e.size for e in chunks]
                    inst_report["chunk_bytes"] = {"min": min(sizes), "max": max(sizes)}
                    if max(sizes) >= BLOCK_SIZE**3 * 8 // 4:
                        failures.append(f"{name}: chunk answers of {max(sizes)} bytes: not googlegzip?")
                    replays = []
                    for scale in sorted({e.query.get("scale", "0") for e in chunks}):
                        at_scale = [e for e in chunks if e.query.get("scale", "0") == scale]
                        busiest = max(at_scale, key=lambda e: e.size)  # the one with most labels
                        facts, problems = replay_seg_chunk(dvid.base, busiest, origin, labels)
                        print(
                            f"  replayed {facts['path']}: {facts['status']} {facts['content_type']} "
                            f"Content-Encoding {facts['content_encoding']}, {facts['bytes']} bytes, "
                            f"labels {facts.get('labels')}, {facts.get('voxels_wrong')} wrong"
                        )
                        replays.append(facts)
                        failures.extend(f"{name}: {p}" for p in problems)
                    inst_report["chunk_replay"] = replays
                else:
                    facts, problems = replay_chunk(dvid.base, chunks[0].path, origin, vol)
                    print(
                        f"  replayed {facts['path']}: {facts['status']} {facts['content_type']} "
                        f"{facts['bytes']} bytes, {facts.get('image')}, error {facts.get('mean_abs_error')}"
                    )
                    inst_report["chunk_replay"] = facts
                    failures.extend(f"{name}: {p}" for p in problems)
            bad = [(e.method, e.target, e.status) for e in entries if e.status >= 400]
            if bad:
                failures.append(f"{name}: dvid answered errors: {bad[:5]}")
            for ev in net:
                path = urllib.parse.urlsplit(ev["url"]).path
                if ev.get("failed") or ev.get("blocked") or ev.get("cors_error"):
                    failures.append(
                        f"{name}: browser request failed: {ev['method']} {ev['url']} "
                        f"{ev.get('failed')} {ev.get('blocked')} {ev.get('cors_error')}"
                    )
                elif ev.get("status") is not None and ev.get("cors") != "*":
                    failures.append(f"{name}: {path} has Access-Control-Allow-Origin {ev.get('cors')!r}")
        (out / "console.log").write_text("\n".join(console) + "\n")
        report["credentials_requests"] = page.credentials_requests
        report["uuid"] = uuid
    except Exception as exc:  # report, then clean up
        failures.append(f"{type(exc).__name__}: {exc}")
    finally:
        if driver is not None:
            with contextlib.suppress(Exception):
                driver.quit()
        if page is not None:
            page.stop()
        if dvid is not None:
            dvid.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    report["failures"] = failures
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"screenshots and logs: {out}/ (report.json, dvid.log, console.log, chromedriver.log)")
    if args.keep:
        print(f"kept the dvid store and Chromium profile: {work}")
    if failures:
        print("FAILED:")
        for f in failures:
            print(f"  - {f}")
        return 1
    print("neuroglancer displayed every instance correctly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
