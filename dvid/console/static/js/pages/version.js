// Version page: the version's place in its repo, its instances (each opens its own page) and a
// neuroglancer link with its image and label layers.
import { config, repoOf } from "../api.js";
import { neuroglancerLink } from "../neuroglancer.js";
import { h, mount, shortUuid, table } from "../ui.js";

export async function render(main, [uuid]) {
  const { info, node } = await repoOf(uuid);
  if (!node) throw new Error(`no version ${uuid} in its repo`);
  const cfg = await config();
  const ng = neuroglancerLink(cfg.neuroglancer_url, node.UUID, info.DataInstances);
  const parent = node.Parents.length ? Object.values(info.DAG.Nodes).find((n) => n.VersionID === node.Parents[0]) : null;
  const rows = Object.entries(info.DataInstances).sort(([a], [b]) => a.localeCompare(b)).map(([name, inst]) => [
    h("a", { href: `#/node/${node.UUID}/${encodeURIComponent(name)}`, class: "instance-link" }, name),
    inst.Base.TypeName,
    inst.Base.Versioned ? "versioned" : "unversioned",
    parent ? h("a", { href: `#/diff/${node.UUID}/${encodeURIComponent(name)}?since=${parent.UUID}` }, `changes since ${shortUuid(parent.UUID)}`) : "",
  ]);
  mount(main,
    h("p", { class: "crumbs" }, h("a", { href: `#/repo/${info.Root}` }, info.Alias || "repo"), " › version"),
    h("h1", {}, "Version ", h("code", { id: "version-uuid" }, node.UUID)),
    h("p", {}, `${node.Branch || "master"} · ${node.Locked ? "committed" : "open"} · created ${node.Created}`,
      node.Note ? ` · ${node.Note}` : ""),
    ng ? h("p", {}, h("a", { href: ng, target: "_blank", rel: "noopener", id: "neuroglancer-link", class: "button" }, "Open in neuroglancer")) : null,
    h("h2", {}, "Instances"),
    rows.length ? table(["Name", "Type", "", ""], rows, { id: "instances-table" }) : h("p", { class: "muted" }, "No instances."),
    node.Log.length ? [h("h2", {}, "Log"), h("ul", {}, node.Log.map((l) => h("li", {}, l)))] : null);
}
