"""python://timeline: when the entities of variables were seen.

    APPLY python://timeline ON procs[, conns] [WITH per=name, title='...']

One point per (entity, record) at the record's `first_observed` (UTC), one row
per entity as a hunter names it: "name (pid)" for processes, else `value`
(addresses, domains, URLs), `name`, `user_id`, "src_port -> dst_port" for
network traffic, or the entity id.  `per=attribute` names rows by that attribute
instead (a process reported in many records is then one row).  Each ON
variable is a colour.  Entities without records (NEW, LOAD) have no points.
"""

from __future__ import annotations

import math
from typing import Optional

import plotly.graph_objects as go

from ..errors import AnalyticsError
from ..results import Figure
from . import AnalyticsResult, graph

MAX_TEXT_ROWS = 50


def timeline(frames, *, per: Optional[str] = None, title: str = "", context=None):
    if context is None:
        raise AnalyticsError("needs the hunt's records (call it through APPLY)")
    names = list(context.variables)
    context.require_entities()
    points = []
    for name in names:
        records = context.timestamped(name)
        if per is not None and len(records) and per not in records.columns:
            known = ", ".join(sorted(c for c in records.columns if c != "first_observed"))
            raise AnalyticsError(f'{name} has no attribute "{per}" (attributes: {known})')
        for row in records.to_dict(orient="records"):
            when = row.get("first_observed")
            if _missing(when):
                continue
            label = (_text(row.get(per)) if per is not None
                     else entity_label(context.entity_types[name], row))
            points.append({"variable": name, "label": label, "id": row.get("id"),
                           "first_observed": str(when)})
    points.sort(key=lambda p: (p["first_observed"], p["label"], p["variable"], p["id"] or ""))
    rows = list(dict.fromkeys(p["label"] for p in points))  # by first appearance
    which = ", ".join(names)
    heading = title or f"Timeline of {which}" + (f" per {per}" if per else "")

    fig = go.Figure()
    for i, name in enumerate(names):
        mine = [p for p in points if p["variable"] == name]
        fig.add_trace(go.Scatter(
            x=[plotly_time(p["first_observed"]) for p in mine], y=[p["label"] for p in mine],
            mode="markers", name=name,
            marker={"size": 9, "color": graph.PALETTE[i % 10], "opacity": 0.8},
            customdata=[[p["id"], p["first_observed"]] for p in mine],
            hovertext=[graph.hover([p["label"], f"seen {p['first_observed']}", f"in {name}",
                                    p["id"] or ""]) for p in mine],
            hoverinfo="text", meta={"kestrel": "points", "variable": name}))
    fig.update_layout(
        title={"text": heading}, hovermode="closest", plot_bgcolor="white",
        xaxis={"title": "first_observed (UTC)", "type": "date", "showgrid": True,
               "gridcolor": "#eee"},
        yaxis={"type": "category", "categoryorder": "array", "categoryarray": rows,
               "autorange": "reversed", "showgrid": True, "gridcolor": "#f3f3f3"},
        height=max(360, 22 * len(rows) + 160),
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
        margin={"l": 20, "r": 20, "t": 50, "b": 40})

    lines = [_summary(points, rows)] + _per_row(points, rows)
    slug = "timeline-" + "-".join(names)
    return AnalyticsResult(display=Figure(slug, heading, graph.as_json(fig), lines,
                                          {"points": points}))


def entity_label(entity_type: str, row: dict) -> str:
    if entity_type == "process":
        name, pid = _text(row.get("name")), row.get("pid")
        return f"{name} ({_text(pid)})" if not _missing(pid) else name
    if entity_type == "network-traffic":
        src, dst = row.get("src_port"), row.get("dst_port")
        if not (_missing(src) and _missing(dst)):
            return f"{_text(src)} -> {_text(dst)}"
    for attribute in ("value", "name", "user_id", "account_login", "path", "key"):
        if not _missing(row.get(attribute)):
            return _text(row.get(attribute))
    return _text(row.get("id"))


def plotly_time(iso: str) -> str:
    """'2019-11-16T12:59:17.034Z' -> '2019-11-16 12:59:17.034' (plotly reads it as is)."""
    return iso.replace("T", " ").removesuffix("Z")


def _summary(points, rows):
    if not points:
        return "no records with first_observed"
    return (f"{len(points)} records in {len(rows)} rows, "
            f"from {points[0]['first_observed']} to {points[-1]['first_observed']}")


def _per_row(points, rows):
    by_row = {}
    for p in points:
        by_row.setdefault(p["label"], []).append(p["first_observed"])
    lines = []
    for label in rows[:MAX_TEXT_ROWS]:
        times = by_row[label]
        span = times[0] if len(times) == 1 else f"{times[0]} .. {times[-1]}"
        lines.append(f"{label}: {len(times)} records, {span}")
    if len(rows) > MAX_TEXT_ROWS:
        lines.append(f"... {len(rows) - MAX_TEXT_ROWS} more rows in the figure")
    return lines


def _text(value) -> str:
    if _missing(value) or value == "":
        return "?"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
