"""Node-link figures shared by the process tree and the huntflow graph.

Layouts are computed here (no graph library): a tidy top-down tree for process
trees, left-to-right layers for the huntflow.  Figures are plotly JSON dicts;
each trace says what it holds in `meta.kestrel` ("nodes" or "edges"), node
points carry their key in `customdata[i][0]`, and an edge trace lists, point by
point, the keys of the two ends then a gap (None): programs can read the graph
back from the figure.
"""

from __future__ import annotations

import json
import textwrap
from collections import defaultdict

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]


def tree_positions(nodes: list, edges: list) -> dict:
    """key -> (x, y): roots at y=0, children one level below, leaves side by side,
    a parent centred over its children.  Nodes are laid out once (a node with two
    parents sits under the first); cycles are broken where met."""
    children = defaultdict(list)
    has_parent = set()
    for parent, child in edges:
        if parent != child:
            children[parent].append(child)
            has_parent.add(child)
    order = {key: i for i, key in enumerate(nodes)}
    for key in children:
        children[key].sort(key=order.get)
    positions, next_leaf = {}, [0]

    def place(key, depth):
        positions[key] = None  # being placed: a cycle back here stops
        xs = []
        for child in children.get(key, []):
            if child not in positions:
                xs.append(place(child, depth + 1))
        x = (xs[0] + xs[-1]) / 2 if xs else next_leaf[0]
        if not xs:
            next_leaf[0] += 1
        positions[key] = (x, -depth)
        return x

    for key in nodes:
        if key not in has_parent and key not in positions:
            place(key, 0)
    for key in nodes:  # only cycles are left
        if key not in positions:
            place(key, 0)
    return positions


def layer_positions(nodes: list, edges: list) -> dict:
    """key -> (x, y): x the longest path from a node without inputs; y a row, top down:
    a node takes its first input's row when free (chains stay straight), else the
    next free row, never one where a straight edge would run through another node."""
    inputs = defaultdict(list)
    for source, target in edges:
        inputs[target].append(source)
    depth = {}

    def depth_of(key, seen=()):
        if key not in depth:
            if key in seen:
                return 0
            depth[key] = 1 + max((depth_of(k, seen + (key,)) for k in inputs.get(key, [])),
                                 default=-1)
        return depth[key]

    for key in nodes:
        depth_of(key)
    used = defaultdict(set)  # layer -> rows taken
    row = {}
    for key in sorted(nodes, key=lambda k: depth[k]):  # stable: given order within a layer
        layer = depth[key]
        placed = [p for p in inputs.get(key, []) if p in row]
        preferred = row[placed[0]] if placed else 0

        def clear(r):
            if r in used[layer]:
                return False
            return not any(row[p] == r and any(r in used[between]
                                               for between in range(depth[p] + 1, layer))
                           for p in placed)

        r = preferred
        while not clear(r):
            r += 1
        row[key] = r
        used[layer].add(r)
    return {key: (depth[key], -row[key]) for key in nodes}


def hover(lines: list, width: int = 80) -> str:
    """Hover text: lines wrapped at `width` characters, joined with <br>."""
    out = []
    for line in lines:
        out.extend(textwrap.wrap(str(line), width, break_long_words=True,
                                 replace_whitespace=False) or [""])
    return "<br>".join(_escape(x) for x in out)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def figure(title: str, groups: list, edges: list, positions: dict, *, arrows=False,
           edge_labels=None, height=None) -> dict:
    """A node-link figure as a plotly JSON dict.

    groups: [(legend name, [node dict: key, label, hover, customdata...], colour, symbol)]
    edges: [(source key, target key)], drawn as lines (with arrowheads when `arrows`),
    `edge_labels` {(source, target): text} written at their middle."""
    import plotly.graph_objects as go  # here, not at import: the session imports this module

    fig = go.Figure()
    xs, ys, ends = [], [], []
    for source, target in edges:
        (x0, y0), (x1, y1) = positions[source], positions[target]
        xs += [x0, x1, None]
        ys += [y0, y1, None]
        ends += [[source], [target], [None]]
    fig.add_trace(go.Scatter(x=xs, y=ys, customdata=ends, mode="lines", hoverinfo="skip",
                             line={"color": "#9a9a9a", "width": 1.2}, showlegend=False,
                             name="edges", meta={"kestrel": "edges"}))
    for name, nodes, colour, symbol in groups:
        fig.add_trace(go.Scatter(
            x=[positions[n["key"]][0] for n in nodes],
            y=[positions[n["key"]][1] for n in nodes],
            mode="markers+text", name=name, text=[n["label"] for n in nodes],
            textposition="bottom center", textfont={"size": 11},
            hovertext=[n["hover"] for n in nodes], hoverinfo="text",
            customdata=[[n["key"]] + list(n.get("customdata", [])) for n in nodes],
            marker={"size": 14, "color": colour, "symbol": symbol,
                    "line": {"width": 1, "color": "#333"}},
            meta={"kestrel": "nodes", "group": name},
        ))
    annotations = []
    if arrows:
        for source, target in edges:
            (x0, y0), (x1, y1) = positions[source], positions[target]
            annotations.append({"x": x1, "y": y1, "ax": x0, "ay": y0, "xref": "x", "yref": "y",
                                "axref": "x", "ayref": "y", "showarrow": True, "arrowhead": 3,
                                "arrowsize": 1.2, "arrowwidth": 1.2, "arrowcolor": "#9a9a9a",
                                "standoff": 9, "startstandoff": 9, "text": ""})
    for (source, target), text in (edge_labels or {}).items():
        (x0, y0), (x1, y1) = positions[source], positions[target]
        annotations.append({"x": (x0 + x1) / 2, "y": (y0 + y1) / 2, "xref": "x", "yref": "y",
                            "text": _escape(text), "showarrow": False,
                            "font": {"size": 10, "color": "#555"},
                            "bgcolor": "rgba(255,255,255,0.8)"})
    hidden = {"showgrid": False, "zeroline": False, "showticklabels": False, "title": ""}
    fig.update_layout(title={"text": _escape(title)}, xaxis=hidden,
                      yaxis=dict(hidden), hovermode="closest", plot_bgcolor="white",
                      annotations=annotations, margin={"l": 20, "r": 20, "t": 50, "b": 20},
                      legend={"orientation": "h"},
                      height=height)
    return as_json(fig)


def as_json(fig) -> dict:
    """A plotly figure as plain JSON data (no numpy, no plotly objects)."""
    return json.loads(fig.to_json())
