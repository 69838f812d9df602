// Small DOM helpers shared by the pages.

/** An element: h("a", {href: "#/"}, "text", child, ...). Attributes starting with "on" are listeners. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "style" && typeof value === "object") Object.assign(el.style, value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace the content of `el` with `children`. */
export function mount(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** An error box showing the server's message verbatim. */
export function errorBox(err) {
  const status = err && err.status ? `${err.status}: ` : "";
  return h("pre", { class: "error", role: "alert" }, status + (err && err.message ? err.message : String(err)));
}

/** A status line that shows a result or an error of an action. */
export function statusLine() {
  const el = h("div", { class: "status" });
  el.ok = (text) => mount(el, h("span", { class: "ok" }, text));
  el.fail = (err) => mount(el, errorBox(err));
  el.clear = () => mount(el);
  return el;
}

export function shortUuid(uuid) {
  return uuid ? uuid.slice(0, 8) : "";
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function fmtSeconds(s) {
  s = Math.round(s);
  const d = Math.floor(s / 86400), hr = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return [d && `${d}d`, (d || hr) && `${hr}h`, (d || hr || m) && `${m}m`, `${s % 60}s`].filter(Boolean).join(" ");
}

/** A labelled form field. */
export function field(label, input) {
  return h("label", { class: "field" }, h("span", {}, label), input);
}

/** A table from column titles and rows of cells. */
export function table(columns, rows, attrs = {}) {
  return h("table", attrs,
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))));
}

/** A JSON value pretty-printed. */
export function jsonBlock(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

/** JSON.parse, but integers beyond 2^53 (64-bit body ids) come back as exact decimal strings. */
export function parseJSONExact(text) {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {  // copy a string as it is
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if ((c >= "0" && c <= "9") || c === "-") {
      let j = i + 1;
      while (j < text.length && /[0-9.eE+-]/.test(text[j])) j++;
      const token = text.slice(i, j);
      out += /^-?\d+$/.test(token) && !Number.isSafeInteger(Number(token)) ? `"${token}"` : token;
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return JSON.parse(out);
}
