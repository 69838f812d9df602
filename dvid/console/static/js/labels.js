// Looking up a body: its size, bounds, supervoxels, last modification and edit history
// (labelmap), or its size and bounds from a labelvol's sparse volume (labelblk, labelvol).
import { getBytes, getJSON, repoOf, request } from "./api.js";
import { h, jsonBlock, mount, table } from "./ui.js";

/** Voxels and bounds of DVID's legacy sparse volume (RLE) payload. */
export function rleStats(buffer) {
  const view = new DataView(buffer);
  const spans = view.getUint32(8, true);
  let voxels = 0;
  const min = [Infinity, Infinity, Infinity], max = [-Infinity, -Infinity, -Infinity];
  for (let i = 0, off = 12; i < spans; i++, off += 16) {
    const x = view.getInt32(off, true), y = view.getInt32(off + 4, true), z = view.getInt32(off + 8, true), n = view.getInt32(off + 12, true);
    voxels += n;
    const end = [x + n - 1, y, z];
    [x, y, z].forEach((v, k) => { if (v < min[k]) min[k] = v; });
    end.forEach((v, k) => { if (v > max[k]) max[k] = v; });
  }
  return { voxels, minvoxel: min, maxvoxel: max, spans };
}

/** The edits of the body, parsed from labelmap's back-to-back JSON objects. */
function parseHistory(text) {
  const trimmed = text.trim();
  if (!trimmed) return [];
  try { return JSON.parse(`[${trimmed.replace(/}\s*{/g, "},{")}]`); } catch { return [trimmed]; }
}

async function labelmapBody(uuid, name, label, root) {
  const base = `node/${uuid}/${name}`;
  const [size, supervoxels, lastmod, history] = await Promise.all([
    getJSON(`${base}/sparsevol-size/${label}`),
    getJSON(`${base}/supervoxels/${label}`),
    getJSON(`${base}/lastmod/${label}`).catch(() => null),
    request(`${base}/history/${label}/${root}/${uuid}`).then((r) => r.text()).catch(() => ""),
  ]);
  return { ...size, supervoxels, lastmod, history: parseHistory(history) };
}

async function labelvolFor(uuid, name, type) {
  if (type === "labelvol") return name;
  const { info } = await repoOf(uuid);
  const found = Object.entries(info.DataInstances).find(([, inst]) =>
    inst.Base.TypeName === "labelvol" && (inst.Base.Syncs || []).includes(name));
  return found ? found[0] : null;
}

/** The lookup panel; `onGo(label, center)` highlights the body and moves the viewer to it. */
export function bodyLookup(uuid, name, type, root, onGo) {
  const input = h("input", { id: "body-label", placeholder: type === "labelmap" ? "body id" : "label", inputmode: "numeric" });
  const out = h("div", { id: "body-info" });
  async function lookup(e) {
    e.preventDefault();
    const label = input.value.trim();
    if (!/^\d+$/.test(label)) { mount(out, h("p", { class: "error-text" }, "A label is a whole number.")); return; }
    try {
      let body;
      if (type === "labelmap") {
        body = await labelmapBody(uuid, name, label, root);
      } else {
        const vol = await labelvolFor(uuid, name, type);
        if (!vol) throw new Error(`no labelvol is synced with ${name}: sizes and bounds need one`);
        body = rleStats(await getBytes(`node/${uuid}/${vol}/sparsevol/${label}`));
      }
      const center = body.minvoxel.map((lo, i) => Math.floor((lo + body.maxvoxel[i]) / 2));
      const rows = [
        ["Voxels", String(body.voxels)],
        ["Bounds", `${body.minvoxel.join(", ")} – ${body.maxvoxel.join(", ")}`],
      ];
      if (body.numblocks !== undefined) rows.push(["Blocks", String(body.numblocks)]);
      if (body.supervoxels) rows.push(["Supervoxels", h("span", { id: "body-supervoxels" }, body.supervoxels.join(", "))]);
      if (body.lastmod) rows.push(["Last modified", `${body.lastmod["last mod time"]} by ${body.lastmod["last mod user"] || "?"} (mutation ${body.lastmod["mutation id"]})`]);
      mount(out, table(["", ""], rows, { class: "kv", id: "body-table" }),
        body.history && body.history.length ? h("details", { open: true }, h("summary", {}, `Edits (${body.history.length})`), jsonBlock(body.history)) : null);
      onGo(label, center);
    } catch (err) {
      if (err.status === 404) mount(out, h("p", { id: "body-missing" }, `Label ${label} has no voxels at this version.`));
      else mount(out, h("pre", { class: "error" }, `${err.status ? err.status + ": " : ""}${err.message}`));
    }
  }
  return h("div", { class: "card" }, h("h3", {}, "Look up a body"),
    h("form", { class: "inline", id: "body-form", onsubmit: lookup }, input, h("button", { type: "submit" }, "Look up and highlight")), out);
}
