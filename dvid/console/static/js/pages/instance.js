// An instance at a version: a keyvalue browser, a slice viewer for volumes (with labels, roi and
// annotations over it), annotation lists, roi extents, body lookups, and its info.
import { config, getJSON, repoOf } from "../api.js";
import { currentRoute, replaceQuery } from "../app.js";
import { neuronjsonPanel, tarsupervoxelsPanel } from "../companions.js";
import { keyvalueBrowser } from "../kv.js";
import { bodyLookup } from "../labels.js";
import { neuroglancerLink } from "../neuroglancer.js";
import { h, jsonBlock, mount, shortUuid, table } from "../ui.js";
import { SliceViewer, VolumeSource } from "../viewer.js";

export const IMAGE_TYPES = new Set(["uint8blk", "uint16blk", "uint32blk", "uint64blk", "float32blk", "rgba8blk"]);
export const LABEL_TYPES = new Set(["labelblk", "labelmap"]);
const PYRAMID_LEVEL = /_\d+$/;

function namesOf(instances, types) {
  return Object.entries(instances).filter(([n, i]) => types.has(i.Base.TypeName) && !(PYRAMID_LEVEL.test(n) && instances[n.replace(PYRAMID_LEVEL, "")]))
    .map(([n]) => n).sort();
}

function picker(id, label, names, value, onChange) {
  return h("label", {}, ` ${label} `, h("select", { id, onchange: (e) => onChange(e.target.value) },
    h("option", { value: "" }, "none"), names.map((n) => h("option", { value: n, selected: n === value }, n))));
}

/** The viewer with layer pickers; the query of the page keeps every choice and the position. */
async function viewerPanel(uuid, repo, name, type, query) {
  const instances = repo.DataInstances;
  const grays = namesOf(instances, IMAGE_TYPES), labelNames = namesOf(instances, LABEL_TYPES);
  const rois = namesOf(instances, new Set(["roi"])), anns = namesOf(instances, new Set(["annotation"]));
  const choice = {
    gray: query.gray !== undefined ? query.gray : IMAGE_TYPES.has(type) ? name : grays[0] || "",
    labels: query.labels !== undefined ? query.labels : LABEL_TYPES.has(type) ? name : "",
    roi: query.roi !== undefined ? query.roi : type === "roi" ? name : "",
    annotation: query.annotation !== undefined ? query.annotation : type === "annotation" ? name : "",
  };
  const holder = h("div", { id: "viewer-holder" });
  const pointsList = h("div", { id: "view-elements" });
  let viewer = null;
  const width = Number(query.w) || 768, height = Number(query.h) || 768;

  async function build() {
    const source = async (n) => (n ? new VolumeSource(uuid, n, await getJSON(`node/${uuid}/${n}/info`)) : null);
    const [gray, labels] = await Promise.all([source(choice.gray), source(choice.labels)]);
    const levels = (n) => Object.keys(instances).filter((m) => m.startsWith(`${n}_`) && /^\d+$/.test(m.slice(n.length + 1))).length;
    for (const layer of [gray, labels]) if (layer && layer.type !== "labelmap") layer.maxScale = levels(layer.name);
    const current = currentRoute()[1];
    viewer = new SliceViewer({ uuid, width, height,
      layers: { gray, labels, roi: choice.roi || null, annotation: choice.annotation || null },
      state: current,
      onState: (s) => persist(s) });
    window.dvidViewer = viewer;
    viewer.canvas.addEventListener("dvid:drawn", () => showPoints());
    mount(holder, viewer.element);
    persist(viewer.state);
    await viewer.draw();
  }

  function persist(s) {
    const [, q] = currentRoute();
    replaceQuery({ ...q, ...choice, axis: s.axis, x: s.center[0], y: s.center[1], z: s.center[2], zoom: s.zoom,
      scale: s.scale, opacity: s.opacity, highlight: s.highlight || "" });
  }

  function showPoints() {
    if (!choice.annotation || !viewer) { mount(pointsList); return; }
    const pts = viewer.points || [];
    mount(pointsList, h("h3", {}, `${pts.length} element${pts.length === 1 ? "" : "s"} in view`),
      pts.length ? table(["Kind", "Pos", "Tags", "Rels"], pts.slice(0, 200).map((p) =>
        [p.Kind, p.Pos.join(", "), (p.Tags || []).join(", "), String((p.Rels || []).length)]), { id: "view-elements-table" }) : null);
  }

  const pickers = h("div", { class: "toolbar" },
    picker("pick-gray", "image", grays, choice.gray, (v) => { choice.gray = v; build(); }),
    picker("pick-labels", "labels", labelNames, choice.labels, (v) => { choice.labels = v; build(); }),
    picker("pick-roi", "roi", rois, choice.roi, (v) => { choice.roi = v; build(); }),
    picker("pick-annotation", "annotation", anns, choice.annotation, (v) => { choice.annotation = v; build(); }));
  const panel = h("div", {}, pickers, holder, pointsList);
  const go = (label, center) => {
    if (!viewer) return;
    viewer.setState({ highlight: label, center });
  };
  if (choice.gray || choice.labels) await build();
  else mount(holder, h("p", { class: "muted" }, "No image or label volume in this repo to draw."));
  return { panel, go, viewer: () => viewer };
}

async function roiPanel(uuid, name) {
  const [spans, info] = await Promise.all([getJSON(`node/${uuid}/${name}/roi`), getJSON(`node/${uuid}/${name}/info`)]);
  const bs = (info.Extended && info.Extended.BlockSize) || [32, 32, 32];
  let blocks = 0;
  const lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
  for (const [z, y, x0, x1] of spans || []) {
    blocks += x1 - x0 + 1;
    [[x0, y, z], [x1, y, z]].forEach((b) => b.forEach((v, k) => { lo[k] = Math.min(lo[k], v); hi[k] = Math.max(hi[k], v); }));
  }
  const rows = blocks
    ? [["Blocks", String(blocks)], ["Spans", String(spans.length)], ["Block size", bs.join(" × ")],
       ["Extent (blocks)", `${lo.join(", ")} – ${hi.join(", ")}`],
       ["Extent (voxels)", `${lo.map((v, k) => v * bs[k]).join(", ")} – ${hi.map((v, k) => (v + 1) * bs[k] - 1).join(", ")}`]]
    : [["Blocks", "0"]];
  return h("div", { class: "card" }, h("h3", {}, "ROI"), table(["", ""], rows, { class: "kv", id: "roi-table" }));
}

function annotationLists(uuid, name) {
  const out = h("div", { id: "annotation-query" });
  const show = async (path, what) => {
    try {
      const els = await getJSON(`node/${uuid}/${name}/${path}`);
      mount(out, h("h3", {}, `${els.length} element${els.length === 1 ? "" : "s"} ${what}`),
        table(["Kind", "Pos", "Tags", "Prop"], els.slice(0, 500).map((e) =>
          [e.Kind, e.Pos.join(", "), (e.Tags || []).join(", "), JSON.stringify(e.Prop || {})]), { id: "annotation-table" }));
    } catch (err) {
      mount(out, h("pre", { class: "error" }, `${err.status || ""}: ${err.message}`));
    }
  };
  const label = h("input", { id: "ann-label", placeholder: "label" });
  const tag = h("input", { id: "ann-tag", placeholder: "tag" });
  return h("div", { class: "card" },
    h("form", { class: "inline", id: "ann-by-label", onsubmit: (e) => { e.preventDefault(); show(`label/${label.value.trim()}`, `with label ${label.value}`); } },
      label, h("button", { type: "submit" }, "By label")),
    h("form", { class: "inline", id: "ann-by-tag", onsubmit: (e) => { e.preventDefault(); show(`tag/${encodeURIComponent(tag.value.trim())}`, `tagged ${tag.value}`); } },
      tag, h("button", { type: "submit" }, "By tag")),
    out);
}

export async function render(main, [uuid, name], query) {
  const [{ info: repo, node }, info, cfg] = await Promise.all([repoOf(uuid), getJSON(`node/${uuid}/${name}/info`), config()]);
  const type = info.Base.TypeName;
  const parent = node && node.Parents.length ? Object.values(repo.DAG.Nodes).find((n) => n.VersionID === node.Parents[0]) : null;
  const ng = neuroglancerLink(cfg.neuroglancer_url, node.UUID, repo.DataInstances, [name]);
  const parts = [
    h("p", { class: "crumbs" }, h("a", { href: `#/repo/${repo.Root}` }, repo.Alias || "repo"), " › ",
      h("a", { href: `#/node/${node.UUID}` }, `version ${shortUuid(node.UUID)}`), " › ", name),
    h("h1", {}, name, " ", h("small", { class: "muted" }, type)),
    h("p", {}, h("a", { href: `/api/help/${type}`, target: "_blank", rel: "noopener" }, "API help"),
      parent ? [" · ", h("a", { href: `#/diff/${node.UUID}/${encodeURIComponent(name)}?since=${parent.UUID}`, id: "diff-link" }, `What changed since ${shortUuid(parent.UUID)}`)] : null,
      ng ? [" · ", h("a", { href: ng, target: "_blank", rel: "noopener", id: "neuroglancer-link" }, "Open in neuroglancer")] : null),
  ];
  let leave = null;
  if (type === "keyvalue") {
    parts.push(keyvalueBrowser(node.UUID, name, query, (q) => replaceQuery(q)));
  } else if (type === "neuronjson") {
    parts.push(neuronjsonPanel(node.UUID, name));
  } else if (type === "tarsupervoxels") {
    parts.push(tarsupervoxelsPanel(node.UUID, name, info));
  } else if (IMAGE_TYPES.has(type) || LABEL_TYPES.has(type) || type === "roi" || type === "annotation" || type === "labelvol") {
    const side = [];
    if (type === "roi") side.push(await roiPanel(node.UUID, name));
    if (type === "annotation") side.push(annotationLists(node.UUID, name));
    const { panel, go } = await viewerPanel(node.UUID, repo, name, type, query);
    if (LABEL_TYPES.has(type) || type === "labelvol") side.push(bodyLookup(node.UUID, name, type, repo.Root, go));
    parts.push(h("div", { class: "split" }, panel, h("div", { class: "side" }, side)));
    leave = () => { window.dvidViewer = null; };
  }
  parts.push(h("details", {}, h("summary", {}, "Info"), jsonBlock(info)));
  mount(main, parts);
  return leave;
}
