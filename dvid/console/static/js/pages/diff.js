// What changed in an instance between two versions: counts, the list, and for volumes the blocks
// touched outlined on the slice viewer.
import { getJSON, repoOf } from "../api.js";
import { currentRoute, replaceQuery } from "../app.js";
import { h, mount, shortUuid, table } from "../ui.js";
import { SliceViewer, VolumeSource } from "../viewer.js";

function describe(c) {
  if (c.key !== undefined) return [c.key, c.old_bytes === null ? "" : `${c.old_bytes} B`, c.new_bytes === null ? "" : `${c.new_bytes} B`];
  if (c.block) return [`block ${c.block.join(", ")}${c.scale !== undefined ? ` (scale ${c.scale})` : ""}`, "", ""];
  if (c.pos) return [`${c.element.Kind} at ${c.pos.join(", ")}`, (c.element.Tags || []).join(", "), ""];
  if (c.body !== undefined) return [`body ${c.body} (label index)`, "", ""];
  if (c.supervoxel !== undefined) return [`supervoxel ${c.supervoxel} (mapping)`, "", ""];
  return [c.tkey || JSON.stringify(c), "", ""];
}

export async function render(main, [uuid, name], query) {
  const { info: repo, node } = await repoOf(uuid);
  const versions = Object.values(repo.DAG.Nodes).sort((a, b) => a.VersionID - b.VersionID);
  const parent = node.Parents.length ? versions.find((n) => n.VersionID === node.Parents[0]) : null;
  const since = query.since || (parent ? parent.UUID : node.UUID);
  const select = h("select", { id: "diff-since", onchange: (e) => { replaceQuery({ since: e.target.value }); load(e.target.value); } },
    versions.filter((n) => n.UUID !== node.UUID).map((n) =>
      h("option", { value: n.UUID, selected: n.UUID === since }, `${shortUuid(n.UUID)} ${n.Branch || "master"}${n.Note ? " · " + n.Note : ""}`)));
  const summary = h("div", { id: "diff-summary" });
  const list = h("div", { id: "diff-list" });
  const view = h("div", { id: "diff-viewer" });
  mount(main,
    h("p", { class: "crumbs" }, h("a", { href: `#/repo/${repo.Root}` }, repo.Alias || "repo"), " › ",
      h("a", { href: `#/node/${node.UUID}/${encodeURIComponent(name)}` }, name)),
    h("h1", {}, "What changed in ", name),
    h("p", {}, "From ", select, " to ", h("code", {}, shortUuid(node.UUID))),
    summary, view, list);

  async function load(from) {
    const d = await getJSON(`node/${node.UUID}/${name}/diff/${from}`, { limit: 5000 });
    mount(summary, h("p", {}, h("b", { id: "diff-added" }, String(d.added)), " added · ", h("b", { id: "diff-changed" }, String(d.changed)),
      " changed · ", h("b", { id: "diff-deleted" }, String(d.deleted)), " deleted", d.truncated ? " (list truncated)" : ""));
    mount(list, d.changes.length
      ? table(["Change", "What", "Before / tags", "After"], d.changes.map((c) => [h("span", { class: `change ${c.change}` }, c.change), ...describe(c)]), { id: "diff-table" })
      : h("p", { class: "muted" }, "No changes."));
    const blocks = d.changes.filter((c) => c.block && !c.scale).map((c) => c.block);
    if (blocks.length) {
      const vinfo = await getJSON(`node/${node.UUID}/${name}/info`);
      const src = new VolumeSource(node.UUID, name, vinfo);
      const bs = vinfo.Extended.BlockSize;
      const center = blocks[0].map((b, k) => b * bs[k] + Math.floor(bs[k] / 2));
      const [, q] = currentRoute();
      const layers = src.isLabels ? { gray: null, labels: src } : { gray: src, labels: null };
      const viewer = new SliceViewer({ uuid: node.UUID, width: 512, height: 512, layers,
        state: { x: center[0], y: center[1], z: center[2], ...q } });
      window.dvidViewer = viewer;
      mount(view, h("h2", {}, `${blocks.length} block${blocks.length === 1 ? "" : "s"} touched (outlined)`), viewer.element);
      await viewer.markBlocks(bs, blocks);
    } else {
      mount(view);
    }
  }
  if (since !== node.UUID) await load(since);
  else mount(summary, h("p", { class: "muted" }, "The root version: nothing to compare with."));
}
