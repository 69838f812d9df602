// Repo page: the version DAG, the repo's log, a version's details and the version actions
// (commit, new version, branch, tag, merge) with the server's refusals shown verbatim.
import { postJSON, repoOf } from "../api.js";
import { drawDag } from "../dag.js";
import { field, h, jsonBlock, mount, shortUuid, statusLine, table } from "../ui.js";
import { adminTokenField } from "./repos.js";

export async function render(main, [uuid]) {
  const { info } = await repoOf(uuid);
  const root = info.Root;
  const status = statusLine();
  const details = h("div", { id: "version-details", class: "card" }, h("p", { class: "muted" }, "Click a version."));
  const mergeSet = new Set();
  const graph = h("div", { class: "dag-wrap" });
  let current = null;

  async function reload(selectUuid) {
    const fresh = (await repoOf(root)).info;
    Object.assign(info, fresh);
    redraw();
    const pick = selectUuid && Object.values(info.DAG.Nodes).find((n) => n.UUID === selectUuid);
    if (pick) select(pick);
  }

  function redraw() {
    mount(graph, drawDag(info.DAG, { selected: new Set([...(current ? [current.UUID] : []), ...mergeSet]),
      onSelect: select, onOpen: (n) => { location.hash = `#/node/${n.UUID}`; } }));
  }

  async function act(what, fn) {
    try {
      const result = await fn();
      const child = result && result.child;
      status.ok(child ? `${what}: new version ${shortUuid(child)}` : `${what}: done`);
      await reload(child || (current && current.UUID));
    } catch (err) {
      status.fail(err);
    }
  }

  function select(n) {
    current = n;
    redraw();
    const note = h("input", { id: "action-note", placeholder: "note" });
    const log = h("input", { id: "action-log", placeholder: "log message (optional)" });
    const name = h("input", { id: "action-name", placeholder: "branch or tag name" });
    const inMerge = h("input", { type: "checkbox", id: "merge-select", checked: mergeSet.has(n.UUID),
      onchange: (e) => { if (e.target.checked) mergeSet.add(n.UUID); else mergeSet.delete(n.UUID); redraw(); renderMerge(); } });
    const actions = n.Locked
      ? [
          h("button", { id: "do-newversion", onclick: () => act("new version", () => postJSON(`node/${n.UUID}/newversion`, { note: note.value })) }, "New version"),
          h("button", { id: "do-branch", onclick: () => act("branch", () => postJSON(`node/${n.UUID}/branch`, { branch: name.value, note: note.value })) }, "Branch"),
          h("button", { id: "do-tag", onclick: () => act("tag", () => postJSON(`node/${n.UUID}/tag`, { tag: name.value, note: note.value })) }, "Tag"),
        ]
      : [h("button", { id: "do-commit", onclick: () => act("commit", () => postJSON(`node/${n.UUID}/commit`,
          log.value ? { note: note.value, log: [log.value] } : { note: note.value })) }, "Commit")];
    mount(details,
      h("h2", {}, "Version ", h("code", {}, shortUuid(n.UUID))),
      table(["", ""], [
        ["UUID", h("code", { id: "selected-uuid" }, n.UUID)],
        ["Branch", n.Branch || "master"],
        ["State", n.Locked ? "committed" : "open"],
        ["Note", n.Note],
        ["Created", n.Created],
        ["Parents", n.Parents.join(", ")],
      ], { class: "kv" }),
      n.Log.length ? h("details", {}, h("summary", {}, `Log (${n.Log.length})`), h("ul", {}, n.Log.map((l) => h("li", {}, l)))) : null,
      h("p", {}, h("a", { href: `#/node/${n.UUID}`, id: "open-version", class: "button" }, "Open version")),
      h("div", { class: "inline" }, field("Note", note), n.Locked ? field("Name", name) : field("Log", log), actions),
      h("label", { class: "check" }, inMerge, " select for merge"));
  }

  const mergeBox = h("div", { id: "merge-box" });
  function renderMerge() {
    const parents = [...mergeSet];
    const note = h("input", { id: "merge-note", placeholder: "merge note" });
    mount(mergeBox, parents.length
      ? h("div", { class: "inline" }, `Merge ${parents.map(shortUuid).join(" + ")} `, field("Note", note),
          h("button", { id: "do-merge", onclick: () => act("merge", async () => {
            const result = await postJSON(`repo/${root}/merge`, { mergeType: "conflict-free", parents, note: note.value });
            mergeSet.clear(); renderMerge();
            return result;
          }) }, "Merge"))
      : h("p", { class: "muted" }, "Select two or more committed versions for a merge."));
  }
  renderMerge();
  redraw();
  const token = await adminTokenField();
  mount(main,
    h("h1", {}, info.Alias || "(no alias)", " ", h("small", { class: "muted" }, info.Description)),
    h("p", {}, "Root ", h("code", {}, root), ` · ${Object.keys(info.DAG.Nodes).length} versions · `,
      `${Object.keys(info.DataInstances).length} instances · updated ${info.Updated}`),
    h("div", { class: "split" }, graph, h("div", {}, details, mergeBox, token, status)),
    h("h2", {}, "Instances"),
    table(["Name", "Type", "Versioned"], Object.entries(info.DataInstances).map(([name, inst]) =>
      [name, inst.Base.TypeName, String(inst.Base.Versioned)])),
    h("h2", {}, "Repo log"),
    info.Log.length ? h("ul", { id: "repo-log" }, info.Log.map((l) => h("li", {}, l))) : h("p", { class: "muted" }, "Empty."),
    h("details", {}, h("summary", {}, "Repo info JSON"), jsonBlock(info)));
  const pick = Object.values(info.DAG.Nodes).find((n) => n.UUID.startsWith(uuid) && n.UUID !== root);
  if (pick) select(pick);
}
