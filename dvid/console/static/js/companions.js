// Pages of labelmap's companions: neuronjson (body annotations: fields, queries, one body's record)
// and tarsupervoxels (a body's supervoxel files: which are stored, the tar download).
import { apiUrl, getJSON, request } from "./api.js";
import { errorBox, h, jsonBlock, mount, parseJSONExact, table } from "./ui.js";

const MAX_ROWS = 500;
const MAX_COLUMNS = 24;

function resultsTable(records) {
  const columns = ["bodyid"];
  for (const record of records) {
    for (const field of Object.keys(record)) {
      if (!columns.includes(field) && columns.length < MAX_COLUMNS) columns.push(field);
    }
  }
  const cell = (v) => (v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
  return table(columns, records.slice(0, MAX_ROWS).map((r) => columns.map((c) => cell(r[c]))), { id: "nj-results" });
}

export function neuronjsonPanel(uuid, name) {
  const base = `node/${uuid}/${name}`;
  const fields = h("div", { id: "nj-fields" });
  const query = h("textarea", { id: "nj-query", rows: 4, cols: 60, spellcheck: false,
    placeholder: '{"status": "Traced"}  ·  [{"type": "re/^LC"}, {"group": [1, 2]}]  ·  {"notes": "exists/1"}' });
  const out = h("div", { id: "nj-out" });
  const body = h("input", { id: "nj-body", placeholder: "body id", inputmode: "numeric" });
  const record = h("div", { id: "nj-record" });

  getJSON(`${base}/fields`, { counts: true }).then((counts) => {
    const shown = Object.entries(counts).filter(([f]) => !/_(user|time)$/.test(f)).sort((a, b) => b[1] - a[1]);
    mount(fields, h("p", {}, shown.length ? "Fields: " : "No annotations yet.",
      shown.map(([f, n]) => h("span", { class: "chip" }, `${f} `, h("small", {}, String(n))))));
  }).catch((err) => mount(fields, errorBox(err)));

  async function run(e) {
    e.preventDefault();
    try {
      const response = await request(`${base}/query`, { method: "POST", body: query.value || "{}" });
      const records = parseJSONExact(await response.text());
      mount(out, h("p", { id: "nj-count" }, `${records.length} match${records.length === 1 ? "" : "es"}`,
        records.length > MAX_ROWS ? ` (the first ${MAX_ROWS} shown)` : ""), records.length ? resultsTable(records) : null);
    } catch (err) {
      mount(out, errorBox(err));
    }
  }

  async function show(e) {
    e.preventDefault();
    try {
      const response = await request(`${base}/key/${body.value.trim()}`, { params: { show: "all" } });
      mount(record, jsonBlock(parseJSONExact(await response.text())));
    } catch (err) {
      mount(record, errorBox(err));
    }
  }

  return h("div", { class: "split" },
    h("div", {}, fields,
      h("form", { id: "nj-query-form", onsubmit: run }, h("div", {}, query), h("button", { type: "submit" }, "Query")), out),
    h("div", { class: "side card" }, h("h3", {}, "One body"),
      h("form", { class: "inline", id: "nj-body-form", onsubmit: show }, body, h("button", { type: "submit" }, "Show")), record));
}

export function tarsupervoxelsPanel(uuid, name, info) {
  const base = `node/${uuid}/${name}`;
  const labelmap = (info.Base.Syncs || [])[0];
  const ext = info.Extended.Extension;
  const body = h("input", { id: "ts-body", placeholder: "body id", inputmode: "numeric" });
  const out = h("div", { id: "ts-out" });
  async function look(e) {
    e.preventDefault();
    const id = body.value.trim();
    try {
      if (!labelmap) throw new Error(`${name} is not synced with a labelmap: bodies have no supervoxels here`);
      const [svs, missing] = await Promise.all([
        getJSON(`node/${uuid}/${labelmap}/supervoxels/${id}`),
        getJSON(`${base}/missing/${id}`),
      ]);
      const absent = new Set(missing.map(String));
      mount(out,
        h("p", { id: "ts-summary" }, `${svs.length} supervoxels, ${svs.length - absent.size} with a .${ext} file, ${absent.size} missing · `,
          h("a", { href: apiUrl(`${base}/tarfile/${id}`), download: `${id}.tar`, id: "ts-download" }, "download the tar")),
        table(["Supervoxel", "File"], svs.slice(0, MAX_ROWS).map((sv) => [String(sv),
          absent.has(String(sv)) ? h("span", { class: "error-text" }, "missing")
            : h("a", { href: apiUrl(`${base}/supervoxel/${sv}`), download: `${sv}.${ext}` }, `${sv}.${ext}`)]), { id: "ts-table" }));
    } catch (err) {
      mount(out, errorBox(err));
    }
  }
  return h("div", {},
    h("p", {}, `One .${ext} file per supervoxel; bodies through `, labelmap ? h("code", {}, labelmap) : "no synced labelmap", "."),
    h("form", { class: "inline", id: "ts-form", onsubmit: look }, body, h("button", { type: "submit" }, "Supervoxel files of the body")), out);
}
