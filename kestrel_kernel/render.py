"""Results -> Jupyter MIME bundles; the after-cell summary of variables.

Presentation only: what a table or a summary holds is decided by the core
(`kestrel.results`); here it becomes `text/html` + `text/plain`, and a Figure
also plotly's own `application/vnd.plotly.v1+json` (drawn by JupyterLab's
plotly renderer, VS Code, ...; front ends without one fall back to the HTML,
which loads plotly.js from its CDN).
"""

from __future__ import annotations

import html

from kestrel.results import Figure, VariableSummary

PLOTLY_MIME = "application/vnd.plotly.v1+json"


def bundle(result) -> dict:
    """A display_data content for one Result."""
    data = {"text/html": result.to_html(), "text/plain": result.to_text()}
    if isinstance(result, Figure):
        data[PLOTLY_MIME] = {"data": result.figure.get("data", []),
                             "layout": result.figure.get("layout", {}),
                             "config": {"responsive": True}}
        return {"data": data, "metadata": {"kestrel": {"figure": result.name}}}
    return {"data": data, "metadata": {}}


def summary_bundle(summaries: list, seconds: float) -> dict:
    """One compact table of the variables a cell created or changed, and the cell's time.

    Entities are distinct (kestrel.identity), beside the occurrences that store them. A
    GROUP result holds rows, not entities: its type reads "process (grouped)", its rows
    count as entities and it has no occurrences or records."""
    rows, lines, notes = [], [], []
    for s in summaries:
        kind = f"{s.entity_type} (grouped)" if s.grouped else s.entity_type
        occurrences, records = ("", "") if s.grouped else (str(s.occurrences), str(s.records))
        rows.append(
            f"<tr><td>{html.escape(s.name)}</td><td>{html.escape(kind)}</td>"
            f"<td>{s.entities}</td><td>{occurrences}</td><td>{records}</td>"
            f"<td>{s.seconds:.2f} s</td></tr>")
        lines.append(f"{s.name}: {s.counts()}, {s.seconds:.2f} s")
        notes.extend(s.notes)
    footer = f"cell: {seconds:.2f} s"
    text = "\n".join(lines + [f"note: {n}" for n in notes] + [footer])
    markup = (
        "<table class='kestrel-summary'><thead><tr><th>variable</th><th>type</th>"
        "<th>entities</th><th>occurrences</th><th>records</th><th>time</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        + "".join(f"<p class='kestrel-note'>{html.escape(n)}</p>" for n in notes)
        + f"<p class='kestrel-footer'>{html.escape(footer)}</p>"
    )
    return {"data": {"text/html": markup, "text/plain": text},
            "metadata": {"kestrel": {"summary": [s.to_dict() for s in summaries]}}}


def changed_variables(results: list, session, before: dict) -> list:
    """Summaries of the variables whose version differs from `before` (name -> version).

    A statement's own VariableSummary (it knows the command and its time) wins
    over a fresh one from the session.
    """
    from_results = {r.name: r for r in results if isinstance(r, VariableSummary)}
    changed = [name for name, version in session.variable_versions().items()
               if version != before.get(name)]
    return [from_results.get(name) or session.variable_summary(name) for name in changed]
