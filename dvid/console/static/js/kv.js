// The keyvalue browser: keys by prefix, a page at a time, and a preview of the selected value.
import { apiUrl, getBytes, getJSON } from "./api.js";
import { h, mount, table } from "./ui.js";

export const PAGE = 100;

/** How to show a value: an image, pretty JSON, text, or a hex dump of its start. */
export function preview(bytes) {
  const b = new Uint8Array(bytes);
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return ["image", "image/png"];
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return ["image", "image/jpeg"];
  let text = null;
  try { text = new TextDecoder("utf-8", { fatal: true }).decode(b); } catch { /* binary */ }
  if (text !== null) {
    try { return ["json", JSON.stringify(JSON.parse(text), null, 2)]; } catch { /* not JSON */ }
    // eslint-disable-next-line no-control-regex
    if (!/[\x00-\x08\x0e-\x1f]/.test(text)) return ["text", text];
  }
  const lines = [];
  for (let i = 0; i < Math.min(b.length, 512); i += 16) {
    const row = Array.from(b.subarray(i, i + 16));
    lines.push(`${i.toString(16).padStart(8, "0")}  ${row.map((x) => x.toString(16).padStart(2, "0")).join(" ").padEnd(48)}  ${row.map((x) => (x >= 32 && x < 127 ? String.fromCharCode(x) : ".")).join("")}`);
  }
  if (b.length > 512) lines.push(`… ${b.length - 512} more bytes`);
  return ["hex", lines.join("\n")];
}

export function keyvalueBrowser(uuid, name, query, setQuery) {
  const prefix = h("input", { type: "search", id: "kv-prefix", placeholder: "key prefix", value: query.prefix || "" });
  const list = h("div", { id: "kv-keys" });
  const view = h("div", { id: "kv-value", class: "card" }, h("p", { class: "muted" }, "Select a key."));
  let keys = [], page = Number(query.page) || 0;

  async function load() {
    const p = prefix.value;
    const path = p ? `keyrange/${encodeURIComponent(p)}/${encodeURIComponent(p + "\uffff")}` : "keys";
    keys = await getJSON(`node/${uuid}/${name}/${path}`);
    show();
  }

  function show() {
    const pages = Math.max(1, Math.ceil(keys.length / PAGE));
    page = Math.min(page, pages - 1);
    setQuery({ prefix: prefix.value, page });
    const rows = keys.slice(page * PAGE, (page + 1) * PAGE).map((k) => [h("a", { href: "javascript:void 0", class: "kv-key", onclick: () => open(k) }, k)]);
    mount(list,
      h("p", { id: "kv-count" }, `${keys.length} key${keys.length === 1 ? "" : "s"}`, pages > 1 ? ` · page ${page + 1} of ${pages} ` : "",
        pages > 1 ? h("button", { id: "kv-prev", disabled: page === 0, onclick: () => { page--; show(); } }, "‹") : null,
        pages > 1 ? h("button", { id: "kv-next", disabled: page >= pages - 1, onclick: () => { page++; show(); } }, "›") : null),
      rows.length ? table(["Key"], rows, { id: "kv-table" }) : h("p", { class: "muted" }, "No keys."));
  }

  async function open(key) {
    const path = `node/${uuid}/${name}/key/${encodeURIComponent(key)}`;
    const bytes = await getBytes(path);
    const [kind, content] = preview(bytes);
    const body = kind === "image"
      ? h("img", { src: URL.createObjectURL(new Blob([bytes], { type: content })), alt: key, class: "kv-image" })
      : h("pre", { class: `kv-${kind}` }, content);
    mount(view, h("h3", {}, h("code", {}, key), ` · ${bytes.byteLength} bytes · ${kind}`),
      h("p", {}, h("a", { href: apiUrl(path), download: key.split("/").pop() || "value", id: "kv-download" }, "Download")), body);
  }

  prefix.addEventListener("input", () => { page = 0; load(); });
  load();
  return h("div", { class: "split" }, h("div", {}, prefix, list), view);
}
