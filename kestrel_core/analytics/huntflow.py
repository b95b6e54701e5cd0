"""python://huntflow_graph: which variables were derived from which, by what command.

    APPLY python://huntflow_graph ON procs[, more] [WITH scope=all, title='...']

Nodes are variable definitions (a redefined name keeps its earlier definitions,
labelled `name #1`, `name #2`, ...; the current one is plain `name`) and the data
sources GET read; an arrow goes from each input to what was made from it,
labelled by the command (GET, FIND, JOIN, ...), or "reference" when a WHERE
used its values (`pid = procs.pid`).  scope=lineage (the default) draws what
the ON variables were made from; scope=all draws the whole hunt.  Hovering a
node shows its statement and how many entities it holds.  From Python:
`Session.huntflow_graph()`.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from typing import Literal

from ..errors import AnalyticsError
from ..results import Figure
from . import AnalyticsResult, graph

SOURCE = "source:"


def huntflow_graph(frames, *, scope: Literal["lineage", "all"] = "lineage", title: str = "",
                   context=None):
    if context is None:
        raise AnalyticsError("needs the hunt (call it through APPLY)")
    return AnalyticsResult(display=build(context.huntflow(), context.variables, scope, title))


def build(steps, focus=(), scope="lineage", title="") -> Figure:
    """The huntflow graph of `steps` (HuntflowSteps, oldest first): the lineage of the
    current definitions of the `focus` names, or every step (scope "all")."""
    by_key = {s.key: s for s in steps}
    labels = _labels(steps)  # numbered over the whole hunt
    if scope == "lineage":
        wanted = _lineage([s.key for s in steps if s.current and s.name in focus], by_key)
        steps = [s for s in steps if s.key in wanted]
    drawn = {s.key for s in steps}

    sources = list(dict.fromkeys(s.source for s in steps if s.source and not s.inputs))
    edges, edge_labels = [], {}
    for step in steps:
        links = [(k, step.command.upper() or "?") for k in step.inputs]
        links += [(k, "reference") for k in step.references if k not in step.inputs]
        if step.source and not step.inputs:
            links.insert(0, (SOURCE + step.source, step.command.upper() or "?"))
        for origin, text in links:
            if origin not in drawn and not origin.startswith(SOURCE):
                continue  # outside the drawn scope
            if (origin, step.key) not in edge_labels:
                edges.append((origin, step.key))
                edge_labels[(origin, step.key)] = text

    order = [SOURCE + uri for uri in sources] + [s.key for s in steps]
    positions = graph.layer_positions(order, edges)
    groups = [("data sources", [_source_node(uri) for uri in sources], "#7f7f7f", "square")]
    types = list(dict.fromkeys(s.entity_type for s in steps))
    for i, entity_type in enumerate(types):
        nodes = [_step_node(s, labels) for s in steps if s.entity_type == entity_type and s.current]
        groups.append((entity_type, nodes, graph.PALETTE[i % 10], "circle"))
    earlier = [_step_node(s, labels) for s in steps if not s.current]
    if earlier:
        groups.append(("redefined since", earlier, "#bbbbbb", "circle-open"))

    tallest = Counter(x for x, _ in positions.values()).most_common(1)
    heading = title or ("Huntflow" if scope == "all" or not focus
                        else f"Huntflow of {', '.join(focus)}")
    fig = graph.figure(heading, groups, edges, positions, arrows=True,
                       edge_labels=edge_labels,
                       height=max(360, 90 * (tallest[0][1] if tallest else 1) + 140))
    lines = [f"{len(steps)} variable definitions, {len(sources)} data sources, "
             f"{len(edges)} links"]
    for step in steps:
        lines.append(f"{labels[step.key]}: {step.statement} "
                     f"[{step.entities} {step.entity_type}]")
    data = {
        "nodes": [{"key": SOURCE + uri, "kind": "source", "label": uri} for uri in sources]
        + [{"key": s.key, "kind": "variable", "label": labels[s.key], "name": s.name,
            "entity_type": s.entity_type, "command": s.command, "statement": s.statement,
            "entities": s.entities, "current": s.current} for s in steps],
        "edges": [{"from": a, "to": b, "label": edge_labels[(a, b)]} for a, b in edges],
    }
    slug = "huntflow_graph" + ("-" + "-".join(focus) if focus and scope != "all" else "")
    return Figure(slug, heading, fig, lines, data)


def _lineage(keys, by_key):
    seen, todo = set(), list(keys)
    while todo:
        key = todo.pop()
        if key in seen or key not in by_key:
            continue
        seen.add(key)
        todo.extend(by_key[key].inputs)
        todo.extend(by_key[key].references)
    return seen


def _labels(steps):
    seen = Counter()
    labels = {}
    for step in steps:
        seen[step.name] += 1
        labels[step.key] = step.name if step.current else f"{step.name} #{seen[step.name]}"
    return labels


def _step_node(step, labels):
    lines = [f"{labels[step.key]}: {step.entities} {step.entity_type}", step.statement]
    if not step.current:
        lines.append(f"{step.name} was redefined since")
    return {"key": step.key, "label": labels[step.key], "hover": graph.hover(lines),
            "customdata": ["variable", step.name, step.entity_type, step.command,
                           step.statement, step.entities]}


def _source_node(uri):
    short = posixpath.basename(uri.rstrip("/")) or uri
    return {"key": SOURCE + uri, "label": short, "hover": graph.hover(["data source", uri]),
            "customdata": ["source", uri, None, None, None, None]}
