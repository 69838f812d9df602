// The console's router: #/… hashes to pages. Each page renders into <main> and may return a
// function that stops its timers when the page is left.
import { config } from "./api.js";
import { errorBox, mount } from "./ui.js";
import * as serverPage from "./pages/server.js";
import * as reposPage from "./pages/repos.js";
import * as repoPage from "./pages/repo.js";
import * as versionPage from "./pages/version.js";
import * as instancePage from "./pages/instance.js";
import * as diffPage from "./pages/diff.js";

const ROUTES = [
  [/^\/?$/, serverPage, "server"],
  [/^\/repos$/, reposPage, "repos"],
  [/^\/repo\/([0-9a-zA-Z_-]+)$/, repoPage, "repos"],
  [/^\/node\/([0-9a-zA-Z_-]+)$/, versionPage, "repos"],
  [/^\/node\/([0-9a-zA-Z_-]+)\/([^/]+)$/, instancePage, "repos"],
  [/^\/diff\/([0-9a-zA-Z_-]+)\/([^/]+)$/, diffPage, "repos"],
];

let leave = null;

/** The route and query of the current hash ("#/node/abc/grey?x=1" -> ["/node/abc/grey", {x: "1"}]). */
export function currentRoute() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = hash.split("?");
  return [path, Object.fromEntries(new URLSearchParams(query))];
}

/** Change the query of the current page without reloading it (the viewer keeps its place in it). */
export function replaceQuery(params) {
  const [path] = currentRoute();
  const query = new URLSearchParams(params).toString();
  history.replaceState(null, "", `#${path}${query ? "?" + query : ""}`);
}

async function show() {
  const main = document.getElementById("main");
  if (leave) { leave(); leave = null; }
  const [path, query] = currentRoute();
  for (const [pattern, page, nav] of ROUTES) {
    const m = path.match(pattern);
    if (!m) continue;
    for (const a of document.querySelectorAll("nav a[data-nav]")) a.classList.toggle("active", a.dataset.nav === nav);
    try {
      leave = (await page.render(main, m.slice(1).map(decodeURIComponent), query)) || null;
    } catch (err) {
      mount(main, errorBox(err));
    }
    return;
  }
  mount(main, errorBox(new Error(`No page at #${path}`)));
}

window.addEventListener("hashchange", show);
window.addEventListener("DOMContentLoaded", async () => {
  show();
  try {
    const cfg = await config();
    document.getElementById("server-version").textContent = `dvid ${cfg.version}`;
  } catch (err) {
    document.getElementById("server-version").textContent = "server unreachable";
  }
});
