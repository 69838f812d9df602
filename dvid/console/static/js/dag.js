// The version DAG as an SVG graph: one row per version in version-id order (a child always comes
// after its parents), one lane per branch, an edge from every parent to its child.
const SVG = "http://www.w3.org/2000/svg";
export const ROW = 34;
export const LANE = 26;
const PAD = 16;

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

/** Rows and lanes of the DAG's nodes: {nodes: [{node, row, lane}], lanes: [branch names]}. */
export function layout(dag) {
  const nodes = Object.values(dag.Nodes).sort((a, b) => a.VersionID - b.VersionID);
  const laneOf = new Map();
  const lanes = [];
  for (const n of nodes) {
    const branch = n.Branch || "";
    if (!laneOf.has(branch)) { laneOf.set(branch, lanes.length); lanes.push(branch); }
  }
  return { nodes: nodes.map((node, row) => ({ node, row, lane: laneOf.get(node.Branch || "") })), lanes };
}

/** The DAG drawn; `onSelect(node)` when a version is clicked, `onOpen(node)` on a double click. */
export function drawDag(dag, { selected = new Set(), onSelect, onOpen } = {}) {
  const { nodes, lanes } = layout(dag);
  const byId = new Map(nodes.map((p) => [p.node.VersionID, p]));
  const width = PAD * 2 + lanes.length * LANE + 520;
  const height = PAD * 2 + nodes.length * ROW;
  const root = svg("svg", { width, height, class: "dag", id: "dag", role: "img",
    "aria-label": `version DAG with ${nodes.length} versions` });
  const x = (lane) => PAD + lane * LANE + LANE / 2;
  const y = (row) => PAD + row * ROW + ROW / 2;
  const edges = svg("g", { class: "edges" });
  for (const p of nodes) {
    for (const parentId of p.node.Parents) {
      const q = byId.get(parentId);
      if (!q) continue;
      const [x1, y1, x2, y2] = [x(q.lane), y(q.row), x(p.lane), y(p.row)];
      const midY = y2 - ROW / 2;
      const d = x1 === x2 ? `M${x1},${y1} L${x2},${y2}` : `M${x1},${y1} L${x1},${midY - 6} C${x1},${midY} ${x2},${midY} ${x2},${midY + 6} L${x2},${y2}`;
      edges.append(svg("path", { d, class: "edge", "data-edge": `${q.node.UUID}-${p.node.UUID}` }));
    }
  }
  root.append(edges);
  const firstOfLane = new Set();
  for (const p of nodes) {
    const n = p.node;
    const g = svg("g", { class: `version ${n.Locked ? "committed" : "open"}${selected.has(n.UUID) ? " selected" : ""}`,
      "data-uuid": n.UUID, transform: `translate(${x(p.lane)},${y(p.row)})`, tabindex: 0 });
    g.append(svg("circle", { r: 7 }));
    const labelX = x(lanes.length - 1) - x(p.lane) + LANE;
    const text = svg("text", { x: labelX, y: 4 });
    text.append(svg("tspan", { class: "uuid" }, n.UUID.slice(0, 8)));
    const branch = n.Branch || "master";
    if (!firstOfLane.has(branch)) {
      firstOfLane.add(branch);
      if (!branch.startsWith("tag-")) text.append(svg("tspan", { class: "branch", dx: 8 }, branch));
    }
    if (branch.startsWith("tag-")) text.append(svg("tspan", { class: "tag", dx: 8 }, `tag ${branch.slice(4)}`));
    if (n.Parents.length > 1) text.append(svg("tspan", { class: "merge", dx: 8 }, "merge"));
    text.append(svg("tspan", { class: "state", dx: 8 }, n.Locked ? "" : "open"));
    if (n.Note) text.append(svg("tspan", { class: "note", dx: 8 }, n.Note.length > 60 ? n.Note.slice(0, 57) + "…" : n.Note));
    g.append(text, svg("title", {}, `${n.UUID}\n${branch}${n.Locked ? " (committed)" : " (open)"}\n${n.Note}`));
    g.addEventListener("click", () => onSelect && onSelect(n));
    g.addEventListener("dblclick", () => onOpen && onOpen(n));
    g.addEventListener("keydown", (e) => { if (e.key === "Enter") onOpen && onOpen(n); });
    root.append(g);
  }
  return root;
}
