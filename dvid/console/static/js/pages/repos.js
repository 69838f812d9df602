// Repos page: every repo with its alias, description, root, versions and instances; filter; create.
import { config, getAdminToken, getJSON, postJSON, setAdminToken } from "../api.js";
import { field, h, mount, shortUuid, statusLine, table } from "../ui.js";

function repoRow(root, repo) {
  const versions = Object.keys(repo.DAG.Nodes).length;
  const instances = Object.entries(repo.DataInstances).map(([name, inst]) =>
    h("span", { class: "chip", title: inst.Base.TypeName }, `${name} `, h("small", {}, inst.Base.TypeName)));
  return [
    h("a", { href: `#/repo/${root}`, class: "repo-link" }, repo.Alias || "(no alias)"),
    repo.Description,
    h("code", { title: root }, shortUuid(root)),
    String(versions),
    instances,
  ];
}

/** The admin token field, shown when the server has a token (kept for the session). */
export async function adminTokenField() {
  const cfg = await config();
  if (!cfg.admin_token) return null;
  const input = h("input", { type: "password", id: "admin-token", value: getAdminToken(), placeholder: "admin token",
    onchange: (e) => setAdminToken(e.target.value) });
  return field("Admin token", input);
}

export async function render(main, _args, query) {
  const repos = await getJSON("repos/info");
  const filter = h("input", { type: "search", id: "repo-filter", placeholder: "Filter by alias, description, UUID or instance",
    value: query.q || "" });
  const list = h("div", { id: "repo-list" });
  function refresh() {
    const q = filter.value.trim().toLowerCase();
    const rows = Object.entries(repos || {})
      .filter(([root, r]) => !q || [root, r.Alias, r.Description, ...Object.keys(r.DataInstances)]
        .some((s) => String(s).toLowerCase().includes(q)))
      .sort(([, a], [, b]) => (a.Alias || "").localeCompare(b.Alias || ""));
    mount(list, rows.length
      ? table(["Alias", "Description", "Root", "Versions", "Instances"], rows.map(([root, r]) => repoRow(root, r)), { id: "repos-table" })
      : h("p", { class: "muted" }, Object.keys(repos || {}).length ? "No repo matches." : "No repos yet."));
  }
  filter.addEventListener("input", refresh);
  refresh();

  const alias = h("input", { id: "new-alias", placeholder: "alias" });
  const description = h("input", { id: "new-description", placeholder: "description" });
  const status = statusLine();
  const token = await adminTokenField();
  const form = h("form", { id: "new-repo", class: "inline",
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const { root } = await postJSON("repos", { alias: alias.value, description: description.value });
        location.hash = `#/repo/${root}`;
      } catch (err) {
        status.fail(err);
      }
    } },
  field("Alias", alias), field("Description", description), token, h("button", { type: "submit" }, "Create repo"));
  mount(main, h("h1", {}, "Repos"), filter, list, h("h2", {}, "New repo"), form, status);
}
