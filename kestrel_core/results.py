"""What a statement gives back: display objects with a text form (CLI) and an
HTML form (kernel), kept apart from any front end."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Optional

import pandas as pd


class Result:
    """Base of every statement output."""

    def to_text(self) -> str:
        raise NotImplementedError

    def to_html(self) -> str:
        return f"<pre>{html.escape(self.to_text())}</pre>"

    def to_dict(self) -> dict:
        raise NotImplementedError

    def __str__(self):
        return self.to_text()


@dataclass
class VariableSummary(Result):
    """A variable a statement created or changed: its distinct `entities` (by
    kestrel.identity), the `occurrences` that store them (a process without a unique
    id has one per record) and the `records` holding them; a GROUP result's rows count
    as both entities and occurrences."""

    name: str
    entity_type: str
    entities: int
    occurrences: int
    records: int
    seconds: float = 0.0
    command: str = ""
    notes: list = field(default_factory=list)
    grouped: bool = False

    def counts(self) -> str:
        """'5 process entities (704 occurrences) in 704 records'"""
        if self.grouped:
            return f"{self.entities} rows grouped from {self.entity_type}"
        return (f"{self.entities} {self.entity_type} entities ({self.occurrences} "
                f"occurrences) in {self.records} records")

    def to_text(self):
        text = f"{self.name}: {self.counts()} ({self.command.upper()}, {self.seconds:.2f} s)"
        return "\n".join([text] + [f"note: {n}" for n in self.notes])

    def to_html(self):
        notes = "".join(f"<p class='kestrel-note'>{html.escape(n)}</p>" for n in self.notes)
        return (
            "<table class='kestrel-summary'><thead><tr><th>variable</th><th>type</th>"
            "<th>entities</th><th>occurrences</th><th>records</th><th>time</th></tr></thead>"
            f"<tbody><tr><td>{html.escape(self.name)}</td>"
            f"<td>{html.escape(self.entity_type)}</td><td>{self.entities}</td>"
            f"<td>{self.occurrences}</td><td>{self.records}</td><td>{self.seconds:.2f} s</td>"
            f"</tr></tbody></table>{notes}"
        )

    def to_dict(self):
        return {"kind": "variable", "name": self.name, "entity_type": self.entity_type,
                "entities": self.entities, "occurrences": self.occurrences,
                "records": self.records, "seconds": self.seconds, "command": self.command,
                "notes": list(self.notes), "grouped": self.grouped}


@dataclass
class Table(Result):
    """Rows for DISP (and GROUP views): a DataFrame plus how many rows exist in all."""

    dataframe: pd.DataFrame
    total: Optional[int] = None   # rows in all, before LIMIT/OFFSET
    title: str = ""
    offset: int = 0

    @property
    def shown(self) -> int:
        return len(self.dataframe)

    def _footer(self) -> str:
        total = self.total if self.total is not None else self.shown
        if total > self.shown:
            first, last = self.offset + 1, self.offset + self.shown
            shown = f"rows {first}-{last}" if self.shown else "no rows"
            return f"showing {shown} of {total} (use LIMIT n OFFSET m to see more)"
        return f"{total} rows"

    def to_text(self):
        if self.dataframe.empty:
            body = "(no rows)"
        else:
            body = self.dataframe.to_string(index=False, na_rep="")
        head = f"{self.title}\n" if self.title else ""
        return f"{head}{body}\n{self._footer()}"

    def to_html(self):
        table = self.dataframe.to_html(index=False, na_rep="", classes="kestrel-table",
                                       border=0, escape=True)
        head = f"<p><b>{html.escape(self.title)}</b></p>" if self.title else ""
        return f"{head}{table}<p class='kestrel-footer'>{html.escape(self._footer())}</p>"

    def to_dict(self):
        frame = self.dataframe.astype(object).where(self.dataframe.notna(), None)
        return {"kind": "table", "title": self.title, "columns": list(frame.columns),
                "rows": frame.to_dict(orient="records"), "total": self.total,
                "offset": self.offset}


@dataclass
class Text(Result):
    """Plain information (INFO, EXPLAIN, SAVE)."""

    title: str
    lines: list

    def to_text(self):
        return "\n".join([self.title] + [f"  {line}" for line in self.lines])

    def to_html(self):
        items = "".join(f"<li><code>{html.escape(line)}</code></li>" for line in self.lines)
        return f"<p><b>{html.escape(self.title)}</b></p><ul class='kestrel-info'>{items}</ul>"

    def to_dict(self):
        return {"kind": "text", "title": self.title, "lines": list(self.lines)}


@dataclass
class Figure(Result):
    """A plotly figure (as its JSON dict: `data`, `layout`) with a text account of it.

    `name` is a short slug for file names (e.g. "process_tree-procs"); `lines` say in
    words what the figure shows, for the CLI and `text/plain`; `data` holds what was
    drawn (nodes, edges, points) for programs that read `to_dict()`."""

    name: str
    title: str
    figure: dict
    lines: list = field(default_factory=list)
    data: dict = field(default_factory=dict)

    def to_text(self):
        return "\n".join([self.title] + [f"  {line}" for line in self.lines])

    def to_html(self, plotlyjs="cdn"):
        """An HTML fragment drawing the figure; plotly.js from its CDN unless
        plotlyjs=True (embedded, works offline)."""
        import plotly.io

        div = plotly.io.to_html(self.figure, full_html=False, include_plotlyjs=plotlyjs,
                                config={"responsive": True})
        return f"<div class='kestrel-figure'>{div}</div>"

    def write_html(self, path):
        """A standalone page with plotly.js embedded: opens offline, can be mailed."""
        import plotly.io

        plotly.io.write_html(self.figure, str(path), include_plotlyjs=True, full_html=True,
                             config={"responsive": True})
        return path

    def to_dict(self):
        return {"kind": "figure", "name": self.name, "title": self.title,
                "lines": list(self.lines), "data": self.data, "figure": self.figure}


@dataclass
class Inspection(Result):
    """What Shift-Tab shows on a variable: what it holds and its first rows."""

    summary: VariableSummary
    head: pd.DataFrame

    def _heading(self) -> str:
        return f"{self.summary.name}: {self.summary.counts()}"

    def to_text(self):
        return self._heading() + "\n" + self.head.to_string(index=False, na_rep="")

    def to_html(self):
        table = self.head.to_html(index=False, na_rep="", classes="kestrel-table", border=0)
        return f"<p><b>{html.escape(self._heading())}</b></p>{table}"

    def to_dict(self):
        frame = self.head.astype(object).where(self.head.notna(), None)
        return {"kind": "inspection", "summary": self.summary.to_dict(),
                "rows": frame.to_dict(orient="records")}


@dataclass
class Syntax(Result):
    """What Shift-Tab shows on a keyword: its syntax."""

    keyword: str
    syntax: str

    def to_text(self):
        return f"{self.keyword}: {self.syntax}"

    def to_html(self):
        return f"<b>{html.escape(self.keyword)}</b>: <code>{html.escape(self.syntax)}</code>"

    def to_dict(self):
        return {"kind": "syntax", "keyword": self.keyword, "syntax": self.syntax}


@dataclass
class Description(Result):
    """DESCRIBE var.attr: statistics of one attribute (v1's keys: count, unique, top,
    freq; mean, min, max for numbers) and its most frequent values."""

    variable: str
    attribute: str
    stats: dict
    top_values: list = field(default_factory=list)  # (value, occurrences), most first

    @property
    def title(self) -> str:
        return f"DESCRIBE {self.variable}.{self.attribute}"

    def to_text(self):
        lines = [self.title] + [f"  {key:<7} {_cell(value)}" for key, value in self.stats.items()]
        if self.top_values:
            lines.append("  top values (entities):")
            lines += [f"  {count:>9}  {value}" for value, count in self.top_values]
        return "\n".join(lines)

    def to_html(self):
        stats = pd.DataFrame({"statistic": list(self.stats),
                              "value": [_cell(v) for v in self.stats.values()]}, dtype=object)
        markup = stats.to_html(index=False, header=False, classes="kestrel-table", border=0)
        if self.top_values:
            top = pd.DataFrame(self.top_values, columns=["top values", "entities"], dtype=object)
            markup += top.to_html(index=False, classes="kestrel-table", border=0)
        return f"<p><b>{html.escape(self.title)}</b></p>{markup}"

    def to_dict(self):
        return {"kind": "describe", "variable": self.variable, "attribute": self.attribute,
                "data": dict(self.stats),
                "top_values": [list(pair) for pair in self.top_values]}


def _cell(value):
    """A statistic as a table shows it (a mean with at most 6 decimals)."""
    return round(value, 6) if isinstance(value, float) else value
