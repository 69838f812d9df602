"""How the ``dvid`` command prints repos: the version DAG as a tree, repo info, plain tables."""

from __future__ import annotations

from typing import Any


def table(rows: list[list[str]], header: list[str] | None = None) -> str:
    all_rows = ([header] if header else []) + rows
    if not all_rows:
        return ""
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(all_rows[0]))]
    lines = []
    for row in all_rows:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def short(text: str, width: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def branch_name(node: dict[str, Any]) -> str:
    return node.get("Branch") or "master"


def format_dag(dag: dict[str, Any]) -> list[str]:
    """The version DAG as an indented tree: a branch's versions share one column, and each branch
    that starts at a version is listed, indented, right under it. A merge is listed under its
    first parent and referred to under the others."""
    nodes: dict[str, dict[str, Any]] = dag.get("Nodes", {})
    by_version = {n["VersionID"]: n for n in nodes.values()}
    root = nodes.get(dag.get("Root", ""))
    if root is None:
        return []
    lines: list[str] = []
    seen: set[int] = set()
    stack: list[tuple[str, dict[str, Any], int, dict[str, Any] | None]] = [("node", root, 1, None)]
    while stack:
        kind, node, depth, via = stack.pop()
        pad = "  " * depth
        if kind == "ref":
            lines.append(f"{pad}{node['UUID']}  (merge, listed under {str(via['UUID'])[:8]})")  # type: ignore[index]
            continue
        if node["VersionID"] in seen:
            continue
        seen.add(node["VersionID"])
        parts = [node["UUID"], branch_name(node), "locked" if node.get("Locked") else "open"]
        parents = [by_version[p] for p in node.get("Parents", []) if p in by_version]
        if len(parents) > 1:
            parts.append("merge of " + ", ".join(p["UUID"][:8] for p in parents))
        if node.get("Note"):
            parts.append(repr(node["Note"]) if "\n" in node["Note"] else f'"{node["Note"]}"')
        lines.append(pad + "  ".join(parts))
        children = [by_version[c] for c in sorted(node.get("Children", [])) if c in by_version]
        listed_here: list[dict[str, Any]] = []
        referred: list[dict[str, Any]] = []
        for child in children:
            first_parent = child.get("Parents", [None])[0]
            (listed_here if first_parent == node["VersionID"] else referred).append(child)
        same = [c for c in listed_here if branch_name(c) == branch_name(node)]
        cont = same[0] if same else None
        # pushed in reverse of display order: continuation last, so side branches show first
        if cont is not None:
            stack.append(("node", cont, depth, None))
        for child in reversed(listed_here):
            if child is not cont:
                stack.append(("node", child, depth + 1, None))
        for child in reversed(referred):
            first = by_version.get(child["Parents"][0])
            stack.append(("ref", child, depth + 1, first))
    return lines


def format_repo_info(info: dict[str, Any]) -> str:
    root = info.get("Root", "")
    alias = info.get("Alias", "")
    lines = [f'Repo "{alias}" with root {root}' if alias else f"Repo {root}"]
    if info.get("Description"):
        lines.append(f"  Description: {info['Description']}")
    lines.append(f"  Created: {info.get('Created', '')}   Updated: {info.get('Updated', '')}")
    instances: dict[str, Any] = info.get("DataInstances", {}) or {}
    lines.append(f"Data instances ({len(instances)}):" if instances else "Data instances: none")
    rows = []
    for name, inst in sorted(instances.items()):
        base = inst.get("Base", {})
        rows.append(
            [
                name,
                base.get("TypeName", "?"),
                "versioned" if base.get("Versioned", True) else "unversioned",
                base.get("Compression", ""),
                f"data UUID {base.get('DataUUID', '')}",
            ]
        )
    if rows:
        lines.extend("  " + line for line in table(rows).splitlines())
    dag = info.get("DAG", {}) or {}
    lines.append(f"Versions ({len(dag.get('Nodes', {}))}):")
    lines.extend(format_dag(dag))
    log = info.get("Log", []) or []
    if log:
        lines.append(f"Log ({len(log)}):")
        lines.extend(f"  {entry}" for entry in log)
    return "\n".join(lines)
