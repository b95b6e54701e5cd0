"""Reading figures back (plotly JSON) and the bundle (plain json), for the analytics tests."""

import json
import re

PLOTLY = "application/vnd.plotly.v1+json"


def processes(observations, where=lambda obs, proc: True):
    """(observed-data, process) pairs of the bundle."""
    return [(o, p) for o in observations for p in o["objects"].values()
            if p["type"] == "process" and where(o, p)]


def ident(process):
    return (process.get("pid"), process.get("name"))


def traces(fig, role):
    return [t for t in fig["data"] if (t.get("meta") or {}).get("kestrel") == role]


def graph_of(fig):
    """(nodes {key: (legend group, customdata after the key)}, edges [(from, to)],
    positions {key: (x, y)}) from a node-link figure; edge ends sit on their nodes."""
    nodes, where = {}, {}
    for trace in traces(fig, "nodes"):
        for x, y, data in zip(trace["x"], trace["y"], trace["customdata"]):
            assert data[0] not in nodes, data[0]
            nodes[data[0]] = (trace["meta"]["group"], data[1:])
            where[data[0]] = (x, y)
    (lines,) = traces(fig, "edges")
    ends, edges = lines["customdata"], []
    assert len(ends) == len(lines["x"]) == len(lines["y"])
    for i in range(0, len(ends), 3):
        a, b = ends[i][0], ends[i + 1][0]
        assert (lines["x"][i], lines["y"][i]) == where[a]
        assert (lines["x"][i + 1], lines["y"][i + 1]) == where[b]
        assert ends[i + 2] == [None] and lines["x"][i + 2] is None
        edges.append((a, b))
    return nodes, edges, where


def tree_of(fig):
    """A process tree figure as ({(pid, name): (group, command lines, variables, entities)},
    {((pid, name), (pid, name))})."""
    nodes, edges, where = graph_of(fig)
    named = {key: (data[0], data[1]) for key, (_, data) in nodes.items()}
    assert len(set(named.values())) == len(named)
    assert all(where[a][1] > where[b][1] for a, b in edges)  # parents above children
    return ({named[k]: (group, set(data[2]), data[3], data[4])
             for k, (group, data) in nodes.items()},
            {(named[a], named[b]) for a, b in edges})


def figure_in_html(text):
    """The figure a plotly HTML page draws: the JSON given to Plotly.newPlot."""
    start = re.search(r"Plotly\.newPlot\(\s*[^,\s]+,\s*", text).end()
    decoder = json.JSONDecoder()
    data, end = decoder.raw_decode(text, start)
    layout, _ = decoder.raw_decode(text, re.match(r",\s*", text[end:]).end() + end)
    return {"data": data, "layout": layout}
