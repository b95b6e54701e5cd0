"""python://process_tree: the processes of variables and their parents, as a tree.

    APPLY python://process_tree ON procs[, more] [WITH merge=false, title='...']

Nodes are the processes of the ON variables plus the parents they reference
(`parent_ref`) that are in none of them (drawn hollow, "outside"); an edge goes
from a parent to each child.  Telemetry reports one process in many records and
firepit keeps each report as its own entity, so by default (merge=true)
processes with the same pid and name are one node; merge=false keeps firepit's
entities (a process without a pid is always its own node).  Hovering a node
shows its pid, name and command lines.  Each node's customdata is
[key, pid, name, [command lines], [ON variables holding it], entities merged].
"""

from __future__ import annotations

import math

from ..errors import AnalyticsError
from ..results import Figure
from . import AnalyticsResult, graph

MAX_TEXT_LINES = 200
MAX_HOVER_COMMANDS = 5


def process_tree(frames, *, merge: bool = True, title: str = "", context=None):
    if context is not None:
        context.require_entities()
    names = list(frames)
    wrong = {n: context.entity_types[n] for n in names
             if context and context.entity_types.get(n) != "process"}
    if wrong:
        listed = ", ".join(f"{n} is {t}" for n, t in wrong.items())
        raise AnalyticsError(f"needs process variables ({listed})")
    nodes, edges = {}, set()
    for name in names:
        for row in frames[name].to_dict(orient="records"):
            own = _process(row, "", merge)
            if own is None:
                continue
            _add(nodes, own, name)
            parent = _process(row, "parent_ref.", merge)
            if parent is not None:
                _add(nodes, parent, None)
                edges.add((parent["key"], own["key"]))
    ordered = sorted(nodes, key=lambda k: _sort_key(nodes[k]))
    rank = {key: i for i, key in enumerate(ordered)}
    edge_list = sorted(edges, key=lambda e: (rank[e[0]], rank[e[1]]))
    positions = graph.tree_positions(ordered, edge_list)
    which = ", ".join(names)
    heading = title or f"Process tree of {which}"

    groups = []
    for i, name in enumerate(names):
        members = [nodes[k] for k in ordered if nodes[k]["variables"][:1] == [name]]
        groups.append((name, [_drawn(n) for n in members], graph.PALETTE[i % 10], "circle"))
    outside = [nodes[k] for k in ordered if not nodes[k]["variables"]]
    groups.append((f"parents outside {which}", [_drawn(n) for n in outside], "#bbbbbb",
                   "circle-open"))
    depth = -min((y for _, y in positions.values()), default=0)
    fig = graph.figure(heading, groups, edge_list, positions,
                       height=max(420, 130 * (depth + 1)))

    summary = (f"{len(nodes)} processes ({len(outside)} outside {which}), "
               f"{len(edge_list)} parent-child links")
    lines = [summary] + _text_tree(ordered, edge_list, nodes)
    data = {"nodes": [_public(nodes[k]) for k in ordered],
            "edges": [list(e) for e in edge_list]}
    slug = "process_tree-" + "-".join(names)
    return AnalyticsResult(display=Figure(slug, heading, fig, lines, data))


def _process(row, prefix, merge):
    """The node of a row's process (prefix "") or of its parent ("parent_ref.")."""
    entity = row.get(prefix + "id")
    if _missing(entity):
        return None
    pid, name = row.get(prefix + "pid"), row.get(prefix + "name")
    pid = None if _missing(pid) else int(pid)
    name = None if _missing(name) else str(name)
    command_line = row.get(prefix + "command_line")
    key = f"{pid}/{name or ''}" if merge and pid is not None else entity
    return {"key": key, "pid": pid, "name": name, "entity": entity,
            "command_line": None if _missing(command_line) else str(command_line)}


def _add(nodes, found, variable):
    node = nodes.setdefault(found["key"], {"key": found["key"], "pid": found["pid"],
                                           "name": found["name"], "command_lines": {},
                                           "entities": set(), "variables": []})
    node["entities"].add(found["entity"])
    if found["command_line"]:
        node["command_lines"].setdefault(found["entity"], found["command_line"])
    if variable and variable not in node["variables"]:
        node["variables"].append(variable)


def _command_lines(node):
    """The distinct command lines of the node's entities, sorted."""
    return sorted(set(node["command_lines"].values()))


def _label(node):
    name = node["name"] or "process"
    return f"{name} ({node['pid']})" if node["pid"] is not None else name


def _drawn(node):
    where = (f"in {', '.join(node['variables'])}" if node["variables"]
             else "a parent, in no ON variable")
    commands = _command_lines(node)
    lines = [_label(node), f"pid: {node['pid'] if node['pid'] is not None else '?'}",
             f"name: {node['name'] or '?'}"]
    lines += [f"command line: {c}" for c in commands[:MAX_HOVER_COMMANDS]] or ["command line: ?"]
    if len(commands) > MAX_HOVER_COMMANDS:
        lines.append(f"... {len(commands) - MAX_HOVER_COMMANDS} more command lines")
    lines.append(where)
    if len(node["entities"]) > 1:
        lines.append(f"{len(node['entities'])} entities (reports) merged")
    return {"key": node["key"], "label": _label(node), "hover": graph.hover(lines),
            "customdata": [node["pid"], node["name"], commands,
                           list(node["variables"]), len(node["entities"])]}


def _public(node):
    return {"key": node["key"], "pid": node["pid"], "name": node["name"],
            "command_lines": _command_lines(node), "variables": list(node["variables"]),
            "entities": sorted(node["entities"])}


def _sort_key(node):
    return (node["name"] or "", node["pid"] if node["pid"] is not None else -1, node["key"])


def _text_tree(ordered, edges, nodes):
    """The tree as indented lines, for the CLI."""
    children, has_parent = {}, set()
    for parent, child in edges:
        children.setdefault(parent, []).append(child)
        has_parent.add(child)
    lines, seen = [], set()

    def walk(key, depth):
        node = nodes[key]
        mark = "" if node["variables"] else "  [not in the ON variables]"
        again = "  (shown above)" if key in seen else ""
        lines.append("  " * depth + _label(node) + mark + again)
        if key in seen:
            return
        seen.add(key)
        for child in children.get(key, []):
            walk(child, depth + 1)

    for key in ordered:
        if key not in has_parent:
            walk(key, 0)
    for key in ordered:
        if key not in seen:
            walk(key, 0)
    if len(lines) > MAX_TEXT_LINES:
        more = len(lines) - MAX_TEXT_LINES
        lines = lines[:MAX_TEXT_LINES] + [f"... {more} more lines in the figure"]
    return lines


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
