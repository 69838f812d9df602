// The slice viewer: one plane (XY, XZ or YZ) of a volume at a scale, grayscale with labels over it
// in pseudocolor, roi blocks and annotation points drawn on top, and a readout under the cursor.
// Voxels come as raw bytes (a one-voxel-thick box) and are painted with typed arrays: no image
// codec on either side, and the values under the cursor are at hand.
import { getBytes, getJSON } from "./api.js";
import { h, mount } from "./ui.js";

/** Zoom limits: below 1/2 a plane would read 4x the canvas's voxels (use a coarser scale instead). */
export const MIN_ZOOM = 0.5;
export const MAX_ZOOM = 32;
/** Raw boxes kept (the current plane's and the next one's, for each of two layers). */
const READ_AHEAD_BOXES = 6;

export const AXES = {
  // screen x, screen y, plane: indices into [x, y, z]
  xy: [0, 1, 2],
  xz: [0, 2, 1],
  yz: [1, 2, 0],
};

const DTYPES = { uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, float32: Float32Array, uint64: Uint32Array };

/** A label's pseudocolor as 0xAABBGGRR (little-endian RGBA in a Uint32Array), from its two words. */
function labelColor(lo, hi, alpha) {
  let x = (lo ^ Math.imul(hi, 0x9e3779b1)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  const r = 64 + (x & 0xbf), g = 64 + ((x >>> 8) & 0xbf), b = 64 + ((x >>> 16) & 0xbf);
  return ((alpha << 24) | (b << 16) | (g << 8) | r) >>> 0;
}

/** A uint64 from its two 32-bit words, as a decimal string (exact beyond 2^53). */
export function u64String(lo, hi) {
  return hi ? ((BigInt(hi) << 32n) | BigInt(lo)).toString() : String(lo);
}

/** What one instance gives the viewer: its voxel type and how to read a box at a scale. */
export class VolumeSource {
  constructor(uuid, name, info) {
    this.uuid = uuid;
    this.name = name;
    this.type = info.Base.TypeName;
    const values = (info.Extended && info.Extended.Values) || [];
    this.dtype = this.type === "rgba8blk" ? "rgba8" : (values[0] && values[0].DataType) || "uint8";
    this.isLabels = ["labelblk", "labelmap", "uint64blk"].includes(this.type);
    this.extents = info.Extents || (info.Extended && { MinPoint: info.Extended.MinPoint, MaxPoint: info.Extended.MaxPoint });
    this.maxScale = this.type === "labelmap" ? (info.Extended.MaxDownresLevel || 0) : 0;
  }

  /** The raw bytes of the box `size` at `offset` (x, y, z at `scale`). */
  async read(offset, size, scale, extra = {}) {
    let name = this.name;
    const params = { ...extra };
    if (scale > 0) {
      if (this.type === "labelmap") params.scale = scale;
      else name = `${this.name}_${scale}`;
    }
    return getBytes(`node/${this.uuid}/${name}/raw/0_1_2/${size.join("_")}/${offset.join("_")}`, params);
  }
}

export class SliceViewer {
  /** `layers`: {gray, labels} VolumeSources (either may be null), {roi, annotation} instance names. */
  constructor({ uuid, width = 768, height = 768, layers, state = {}, onState }) {
    this.uuid = uuid;
    this.width = width;
    this.height = height;
    this.layers = layers;
    this.onState = onState || (() => {});
    const ref = layers.gray || layers.labels;
    const ext = ref && ref.extents;
    const mid = ext && ext.MinPoint ? ext.MinPoint.map((lo, i) => Math.floor((lo + ext.MaxPoint[i]) / 2)) : [0, 0, 0];
    this.state = {
      axis: state.axis in AXES ? state.axis : "xy",
      center: ["x", "y", "z"].map((k, i) => (state[k] !== undefined ? Number(state[k]) : mid[i])),
      zoom: Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, Number(state.zoom) || 1)),
      scale: Number(state.scale) || 0,
      opacity: state.opacity !== undefined ? Number(state.opacity) : 0.5,
      highlight: state.highlight || "",
    };
    this.stats = { draws: [] };
    this.roiSpans = null;
    this.inFlight = false;
    this.pending = false;
    this.buffers = null;
    this.canvas = h("canvas", { width, height, id: "slice-canvas", tabindex: 0 });
    this.ctx = this.canvas.getContext("2d", { willReadFrequently: true });
    this.readout = h("div", { id: "readout", class: "readout" }, " ");
    this.toolbar = h("div", { class: "toolbar" });
    this.element = h("div", { class: "viewer" }, this.toolbar, this.canvas, this.readout);
    this._bind();
    this._renderToolbar();
  }

  get planeIndex() { return AXES[this.state.axis][2]; }

  /** The plane's coordinate at the current scale. */
  get plane() { return Math.floor(this.state.center[this.planeIndex] / 2 ** this.state.scale); }

  setState(changes) {
    Object.assign(this.state, changes);
    this._renderToolbar();
    this.onState(this.state);
    return this.draw();
  }

  movePlane(delta) {
    this.direction = Math.sign(delta) || this.direction;
    const center = [...this.state.center];
    center[this.planeIndex] += delta * 2 ** this.state.scale;
    return this.setState({ center });
  }

  /** The box (x, y, z offset and size at the current scale) the canvas shows. */
  region() {
    const { axis, zoom, scale } = this.state;
    const [sx, sy, sp] = AXES[axis];
    const c = this.state.center.map((v) => Math.floor(v / 2 ** scale));
    const w = Math.ceil(this.width / zoom), hgt = Math.ceil(this.height / zoom);
    const offset = [0, 0, 0], size = [1, 1, 1];
    offset[sx] = c[sx] - Math.floor(w / 2); size[sx] = w;
    offset[sy] = c[sy] - Math.floor(hgt / 2); size[sy] = hgt;
    offset[sp] = c[sp];
    return { offset, size, w, h: hgt };
  }

  /** Fetch and paint the current plane; concurrent calls collapse into one more draw of the latest. */
  async draw() {
    if (this.inFlight) { this.pending = true; return this.drawn; }
    this.inFlight = true;
    this.drawn = this._drawLoop();
    return this.drawn;
  }

  async _drawLoop() {
    try {
      do {
        this.pending = false;
        await this._drawOnce();
      } while (this.pending);
    } finally {
      this.inFlight = false;
    }
  }

  async _drawOnce() {
    const t0 = performance.now();
    const { gray, labels } = this.layers;
    const reg = this.region();
    const { scale } = this.state;
    const plane = this.plane;
    // a layer without this scale (no pyramid level) is left out of the plane
    const has = (layer) => layer && scale <= layer.maxScale;
    const reads = [
      has(gray) ? this._read(gray, reg, scale) : null,
      has(labels) ? this._read(labels, reg, scale) : null,
      this.layers.annotation ? this._annotations(reg) : null,
    ];
    // while the user steps through planes, the next one in the same direction is read meanwhile
    if (this.direction) {
      const next = { ...reg, offset: [...reg.offset] };
      next.offset[AXES[this.state.axis][2]] += this.direction;
      for (const layer of [gray, labels]) if (has(layer)) this._read(layer, next, scale).catch(() => {});
    }
    let grayBytes, labelBytes, points;
    try {
      [grayBytes, labelBytes, points] = await Promise.all(reads);
    } catch (err) {
      mount(this.readout, h("span", { class: "error-text" }, `${err.status || ""} ${err.message}`));
      return;
    }
    if (this.layers.roi && !this.roiSpans) await this._loadRoi();
    this.buffers = { reg, gray: grayBytes && this._typed(gray, grayBytes), labels: labelBytes && new Uint32Array(labelBytes) };
    const image = new ImageData(reg.w, reg.h);
    const px = new Uint32Array(image.data.buffer);
    if (grayBytes) this._paintGray(px, gray, this.buffers.gray);
    if (labelBytes) this._paintLabels(px, this.buffers.labels, !grayBytes);
    this._present(image, reg, points);
    await new Promise((resolve) => requestAnimationFrame(resolve));
    const ms = performance.now() - t0;
    this.stats.draws.push({ plane, axis: this.state.axis, ms });
    this.canvas.dataset.plane = String(plane);
    this.canvas.dispatchEvent(new CustomEvent("dvid:drawn", { detail: { plane, ms } }));
  }

  /** A layer's raw box, from the few boxes read ahead (or being read) if it is one of them. */
  _read(layer, reg, scale) {
    const key = `${layer.name}|${scale}|${reg.offset.join("_")}|${reg.size.join("_")}`;
    this.readAhead = this.readAhead || new Map();
    let pending = this.readAhead.get(key);
    if (!pending) {
      pending = layer.read(reg.offset, reg.size, scale);
      this.readAhead.set(key, pending);
      pending.catch(() => this.readAhead.delete(key));
      while (this.readAhead.size > READ_AHEAD_BOXES) this.readAhead.delete(this.readAhead.keys().next().value);
    }
    return pending;
  }

  _typed(source, bytes) {
    if (source.dtype === "rgba8") return new Uint32Array(bytes);
    return new (DTYPES[source.dtype] || Uint8Array)(bytes);
  }

  _paintGray(px, source, values) {
    const n = px.length;
    if (source.dtype === "rgba8") { px.set(values.subarray(0, n)); return; }
    if (source.dtype === "uint8") {
      for (let i = 0; i < n; i++) { const v = values[i]; px[i] = 0xff000000 | (v << 16) | (v << 8) | v; }
      return;
    }
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < n; i++) { const v = values[i]; if (v < lo) lo = v; if (v > hi) hi = v; }
    const k = hi > lo ? 255 / (hi - lo) : 0;
    for (let i = 0; i < n; i++) { const v = Math.round((values[i] - lo) * k); px[i] = 0xff000000 | (v << 16) | (v << 8) | v; }
  }

  _paintLabels(px, words, alone) {
    const alpha = Math.round(255 * this.state.opacity);
    const highlight = this.state.highlight ? BigInt(this.state.highlight) : null;
    const hlo = highlight === null ? 0 : Number(highlight & 0xffffffffn), hhi = highlight === null ? 0 : Number(highlight >> 32n);
    const dim = Math.round(alpha * 0.25);
    const n = px.length;
    let lastLo = -1, lastHi = -1, lastColor = 0;
    for (let i = 0; i < n; i++) {
      const lo = words[2 * i], hi = words[2 * i + 1];
      if (lo === 0 && hi === 0) continue;
      if (lo !== lastLo || hi !== lastHi) {
        lastLo = lo; lastHi = hi;
        const a = highlight === null ? alpha : (lo === hlo && hi === hhi ? Math.max(alpha, 200) : dim);
        lastColor = labelColor(lo, hi, a);
      }
      const c = lastColor, a = c >>> 24;
      if (alone || a === 255) { px[i] = (c | 0xff000000) >>> 0; continue; }
      const under = px[i], t = a / 255, s = 1 - t;
      const r = (under & 0xff) * s + (c & 0xff) * t;
      const g = ((under >>> 8) & 0xff) * s + ((c >>> 8) & 0xff) * t;
      const b = ((under >>> 16) & 0xff) * s + ((c >>> 16) & 0xff) * t;
      px[i] = (0xff000000 | (b << 16) | (g << 8) | r) >>> 0;
    }
  }

  _present(image, reg, points) {
    const { zoom } = this.state;
    const ctx = this.ctx;
    ctx.imageSmoothingEnabled = false;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, this.width, this.height);
    if (zoom === 1) {
      ctx.putImageData(image, 0, 0);
    } else {
      if (!this.scratch || this.scratch.width !== reg.w || this.scratch.height !== reg.h) {
        this.scratch = new OffscreenCanvas(reg.w, reg.h);
      }
      this.scratch.getContext("2d").putImageData(image, 0, 0);
      ctx.drawImage(this.scratch, 0, 0, reg.w * zoom, reg.h * zoom);
    }
    this._drawRoi(reg);
    this._drawMarks(reg);
    this.points = points || [];
    this._drawPoints(reg, this.points);
  }

  // ---- overlays ------------------------------------------------------------------------------
  async _loadRoi() {
    const name = this.layers.roi;
    const [spans, info] = await Promise.all([getJSON(`node/${this.uuid}/${name}/roi`), getJSON(`node/${this.uuid}/${name}/info`)]);
    this.roiSpans = spans || [];
    this.roiBlock = (info.Extended && info.Extended.BlockSize) || [32, 32, 32];
  }

  _drawRoi(reg) {
    if (!this.roiSpans) return;
    const [sx, sy, sp] = AXES[this.state.axis];
    const f = 2 ** this.state.scale, zoom = this.state.zoom, bs = this.roiBlock;
    const planeVoxel = this.state.center[sp];
    const ctx = this.ctx;
    ctx.strokeStyle = "rgba(80, 220, 255, 0.9)";
    ctx.fillStyle = "rgba(80, 220, 255, 0.12)";
    ctx.lineWidth = 1;
    for (const [bz, by, bx0, bx1] of this.roiSpans) {
      // each span is the blocks bx0..bx1 of row (by, bz): the box [x0, x1) x [y0, y1) x [z0, z1) in voxels
      const lo = [bx0 * bs[0], by * bs[1], bz * bs[2]], hi = [(bx1 + 1) * bs[0], (by + 1) * bs[1], (bz + 1) * bs[2]];
      if (planeVoxel < lo[sp] || planeVoxel >= hi[sp]) continue;
      const x = (lo[sx] / f - reg.offset[sx]) * zoom, y = (lo[sy] / f - reg.offset[sy]) * zoom;
      const w = ((hi[sx] - lo[sx]) / f) * zoom, hh = ((hi[sy] - lo[sy]) / f) * zoom;
      if (x > this.width || y > this.height || x + w < 0 || y + hh < 0) continue;
      ctx.fillRect(x, y, w, hh);
      ctx.strokeRect(x + 0.5, y + 0.5, w - 1, hh - 1);
    }
  }

  /** Outline `blocks` ([[bx, by, bz], ...] of `blockSize` voxels, scale 0), e.g. blocks a diff touched. */
  markBlocks(blockSize, blocks) {
    this.marks = { blockSize, blocks };
    return this.draw();
  }

  _drawMarks(reg) {
    if (!this.marks) return;
    const [sx, sy, sp] = AXES[this.state.axis];
    const f = 2 ** this.state.scale, zoom = this.state.zoom, bs = this.marks.blockSize, ctx = this.ctx;
    const planeVoxel = this.state.center[sp];
    ctx.strokeStyle = "rgba(255, 170, 0, 0.95)";
    ctx.lineWidth = 2;
    let shown = 0;
    for (const b of this.marks.blocks) {
      const lo = b.map((v, k) => v * bs[k]);
      if (planeVoxel < lo[sp] || planeVoxel >= lo[sp] + bs[sp]) continue;
      const x = (lo[sx] / f - reg.offset[sx]) * zoom, y = (lo[sy] / f - reg.offset[sy]) * zoom;
      ctx.strokeRect(x + 1, y + 1, (bs[sx] / f) * zoom - 2, (bs[sy] / f) * zoom - 2);
      shown++;
    }
    this.shownMarks = shown;
  }

  async _annotations(reg) {
    const f = 2 ** this.state.scale;
    const off = reg.offset.map((v) => v * f), size = reg.size.map((v) => v * f);
    return getJSON(`node/${this.uuid}/${this.layers.annotation}/elements/${size.join("_")}/${off.join("_")}`);
  }

  _drawPoints(reg, points) {
    const [sx, sy] = AXES[this.state.axis];
    const f = 2 ** this.state.scale, zoom = this.state.zoom, ctx = this.ctx;
    const colors = { PreSyn: "#ff5a5a", PostSyn: "#5aa0ff" };
    this.shownPoints = points.length;
    for (const p of points) {
      const x = (p.Pos[sx] / f - reg.offset[sx] + 0.5) * zoom, y = (p.Pos[sy] / f - reg.offset[sy] + 0.5) * zoom;
      ctx.beginPath();
      ctx.arc(x, y, Math.max(3, zoom * 1.5), 0, 2 * Math.PI);
      ctx.strokeStyle = colors[p.Kind] || "#ffd84a";
      ctx.lineWidth = 2;
      ctx.stroke();
    }
  }

  // ---- interaction -------------------------------------------------------------------------
  /** The voxel (x, y, z at scale 0) under a canvas point. */
  voxelAt(px, py) {
    const reg = this.region();
    const [sx, sy, sp] = AXES[this.state.axis];
    const col = Math.floor(px / this.state.zoom), row = Math.floor(py / this.state.zoom);
    const v = [0, 0, 0];
    v[sx] = reg.offset[sx] + col; v[sy] = reg.offset[sy] + row; v[sp] = reg.offset[sp];
    return { scaled: v, full: v.map((c) => c * 2 ** this.state.scale), col, row };
  }

  _bind() {
    const c = this.canvas;
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      if (e.ctrlKey || e.metaKey) this.setState({ zoom: Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, this.state.zoom * (e.deltaY < 0 ? 2 : 0.5))) });
      else this.movePlane((e.deltaY > 0 ? 1 : -1) * (e.shiftKey ? 10 : 1));
    }, { passive: false });
    c.addEventListener("keydown", (e) => {
      const step = e.shiftKey ? 10 : 1;
      if (e.key === "ArrowUp" || e.key === "PageUp") { e.preventDefault(); this.movePlane(-step); }
      if (e.key === "ArrowDown" || e.key === "PageDown") { e.preventDefault(); this.movePlane(step); }
    });
    let drag = null;
    c.addEventListener("mousedown", (e) => { drag = { x: e.offsetX, y: e.offsetY, center: [...this.state.center] }; });
    const endDrag = () => {
      if (drag && drag.moved) this.setState({});
      drag = null;
    };
    c.addEventListener("mouseup", endDrag);
    c.addEventListener("mouseleave", endDrag);
    c.addEventListener("mousemove", (e) => {
      if (drag && (Math.abs(e.offsetX - drag.x) > 2 || Math.abs(e.offsetY - drag.y) > 2)) {
        const [sx, sy] = AXES[this.state.axis];
        const f = 2 ** this.state.scale / this.state.zoom;
        const center = [...drag.center];
        center[sx] -= Math.round((e.offsetX - drag.x) * f);
        center[sy] -= Math.round((e.offsetY - drag.y) * f);
        drag.moved = true;
        this.state.center = center;
        this.draw();
        return;
      }
      this.showReadout(e.offsetX, e.offsetY);
    });
  }

  /** The coordinate and values under a canvas point, in the readout line. */
  showReadout(px, py) {
    const b = this.buffers;
    if (!b) return;
    const { full, col, row } = this.voxelAt(px, py);
    if (col < 0 || row < 0 || col >= b.reg.w || row >= b.reg.h) return;
    const i = row * b.reg.w + col;
    const parts = [h("span", { class: "coord" }, `x ${full[0]}, y ${full[1]}, z ${full[2]}`)];
    if (b.gray && this.layers.gray) parts.push(` · value ${this.layers.gray.dtype === "rgba8" ? (b.gray[i] >>> 0).toString(16) : b.gray[i]}`);
    let label = null;
    if (b.labels) {
      label = u64String(b.labels[2 * i], b.labels[2 * i + 1]);
      parts.push(` · ${this.layers.labels.type === "labelmap" ? "body" : "label"} `, h("b", { class: "label-value" }, label));
    }
    const sv = h("span", { class: "supervoxel" });
    parts.push(sv);
    mount(this.readout, parts);
    this.lastReadout = { voxel: full, label };
    if (this.layers.labels && this.layers.labels.type === "labelmap" && label !== null) {
      clearTimeout(this.svTimer);
      this.svTimer = setTimeout(async () => {
        try {
          const r = await getJSON(`node/${this.uuid}/${this.layers.labels.name}/label/${full.join("_")}`, { supervoxels: true });
          sv.textContent = ` · supervoxel ${r.Label}`;
        } catch { /* the readout stays without it */ }
      }, 120);
    }
  }

  _renderToolbar() {
    const s = this.state;
    const axis = h("select", { id: "axis", onchange: (e) => this.setState({ axis: e.target.value }) },
      Object.keys(AXES).map((a) => h("option", { value: a, selected: a === s.axis }, a.toUpperCase())));
    const plane = h("input", { type: "number", id: "plane", value: this.plane,
      onchange: (e) => this.movePlane(Number(e.target.value) - this.plane) });
    const maxScale = Math.max(0, ...[this.layers.gray, this.layers.labels].filter(Boolean).map((l) => l.maxScale));
    const scale = h("select", { id: "scale", onchange: (e) => this.setState({ scale: Number(e.target.value) }) },
      Array.from({ length: maxScale + 1 }, (_, i) => h("option", { value: i, selected: i === s.scale }, `scale ${i}`)));
    const zoom = h("span", {},
      h("button", { id: "zoom-out", onclick: () => this.setState({ zoom: Math.max(MIN_ZOOM, s.zoom / 2) }) }, "−"),
      ` ${s.zoom}× `,
      h("button", { id: "zoom-in", onclick: () => this.setState({ zoom: Math.min(MAX_ZOOM, s.zoom * 2) }) }, "+"));
    const opacity = this.layers.labels
      ? h("label", {}, " labels ", h("input", { type: "range", id: "opacity", min: 0, max: 1, step: 0.05, value: s.opacity,
          oninput: (e) => this.setState({ opacity: Number(e.target.value) }) }))
      : null;
    mount(this.toolbar, axis, " plane ", plane, " ", scale, " zoom ", zoom, opacity,
      h("span", { class: "muted" }, " scroll: planes · ctrl+scroll: zoom · drag: pan"));
  }
}
