"""Results -> Jupyter MIME bundles; the after-cell summary of variables.

Presentation only: what a table or a summary holds is decided by the core
(`kestrel.results`); here it becomes `text/html` + `text/plain`, and a Figure also
plotly's own `application/vnd.plotly.v1+json` (JupyterLab's plotly renderer, VS Code),
a static `image/png` (kaleido: viewers, PDF and Markdown exports) and HTML that draws
with no network (nbconvert's HTML, front ends without a plotly renderer; the PNG shows
where its scripts do not run).  plotly.js travels once per notebook, in the HTML of the
first figure: `Renderer` remembers which cell carries it.
"""

from __future__ import annotations

import base64
import html
import uuid

from kestrel.results import Figure, VariableSummary, static_images

PLOTLY_MIME = "application/vnd.plotly.v1+json"


class Renderer:
    """The MIME bundles of one kernel session's results."""

    def __init__(self):
        self.images = static_images()
        self.carrier = None      # the cell whose output carries plotly.js
        self.cell = None         # the cell being executed
        self.told = False        # the hunter knows why figures have no static image

    def start_cell(self, cell_id=None, deleted=()):
        """A cell starts (`cell_id` and the `deleted` cells as JupyterLab tells them in
        the request's metadata).  Re-running the carrier replaces its outputs, and a
        deleted carrier is gone: the next figure carries plotly.js again."""
        if self.carrier is not None and (self.carrier == cell_id or self.carrier in deleted):
            self.carrier = None
        self.cell = cell_id or uuid.uuid4().hex

    def bundle(self, result) -> dict:
        """A display_data content for one Result."""
        if isinstance(result, Figure):
            return self._figure(result)
        return {"data": {"text/html": result.to_html(), "text/plain": result.to_text()},
                "metadata": {}}

    def _figure(self, result: Figure) -> dict:
        png = self.images.png(result.figure)
        notes = []
        if png is None and not self.told:
            notes.append(f"no static image: {self.images.why}")
            self.told = True
        carry = self.carrier is None
        if carry:
            self.carrier = self.cell
        text = "\n".join([result.to_text()] + [f"note: {n}" for n in notes])
        data = {"text/html": result.to_html(plotlyjs=carry, image=png, notes=notes),
                "text/plain": text,
                PLOTLY_MIME: {"data": result.figure.get("data", []),
                              "layout": result.figure.get("layout", {}),
                              "config": {"responsive": True}}}
        metadata = {"kestrel": {"figure": result.name}}
        if png is not None:
            data["image/png"] = base64.b64encode(png).decode()
            width, height = result.image_size
            metadata["image/png"] = {"width": width, "height": height}
        return {"data": data, "metadata": metadata}

    def close(self):
        self.images.close()


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
