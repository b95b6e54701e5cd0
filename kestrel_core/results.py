"""What a statement gives back: display objects with a text form (CLI) and an
HTML form (kernel), kept apart from any front end.

pandas and plotly are imported where a result needs them, not with this module:
together they are most of a session's start-up (tests/test_startup.py)."""

from __future__ import annotations

import html
import pathlib
import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
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
        return f"{total} row" if total == 1 else f"{total} rows"

    def to_text(self):
        body = "(no rows)" if self.dataframe.empty else text_table(self.dataframe)
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

    def to_html(self, plotlyjs=True, image=None, notes=()):
        """An HTML fragment that draws the figure with no network (plotly.js inline unless
        `plotlyjs` is False: then a figure before it on the page must carry it), showing
        the PNG `image` until it has drawn: see kestrel.analytics.offline."""
        from .analytics import offline

        return offline.figure_html(self.figure, plotlyjs=plotlyjs, image=image, notes=notes,
                                   alt=self.title)

    @property
    def image_size(self) -> tuple:
        """(width, height) of the figure's static image: its layout's, else a notebook's."""
        from .analytics import offline

        return offline.image_size(self.figure)

    def write_html(self, path):
        """A standalone page, plotly.js and basemaps inside: opens offline, can be mailed."""
        from .analytics import offline

        page = offline.page_html(self.figure, self.title)
        pathlib.Path(path).write_text(page, encoding="utf-8")
        return path

    def to_dict(self):
        return {"kind": "figure", "name": self.name, "title": self.title,
                "lines": list(self.lines), "data": self.data, "figure": self.figure}


def static_images():
    """What draws Figures as PNGs for a front end (kestrel.analytics.static_images: one local
    browser, started on first use, closed with `close()`)."""
    from .analytics.static_images import StaticImages

    return StaticImages()


@dataclass
class Inspection(Result):
    """What Shift-Tab shows on a variable: what it holds and its first rows."""

    summary: VariableSummary
    head: pd.DataFrame

    def _heading(self) -> str:
        return f"{self.summary.name}: {self.summary.counts()}"

    def to_text(self):
        return self._heading() + "\n" + text_table(self.head)

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
        import pandas as pd

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


TEXT_CELL_WIDTH = 40  # characters of a value on one line of a text table


def text_table(frame: pd.DataFrame) -> str:
    """A DataFrame as text for a terminal or a viewer without HTML: columns aligned
    (numbers right, the rest left), a value longer than TEXT_CELL_WIDTH wrapped onto
    more lines within its column (nothing is cut: pandas' to_string would stretch the
    row across the screen; then a blank line comes before each row), no index."""
    import pandas as pd

    names = [str(c) for c in frame.columns]
    right = [pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t)
             for t in frame.dtypes]
    rows = [[_wrapped(value) for value in row]
            for row in frame.itertuples(index=False, name=None)]
    widths = [max([len(name)] + [len(line) for row in rows for line in row[i]])
              for i, name in enumerate(names)]

    def line(cells):
        return "  ".join(c.rjust(w) if r else c.ljust(w)
                         for c, w, r in zip(cells, widths, right)).rstrip()

    wraps = any(len(cell) > 1 for row in rows for cell in row)
    lines = [line(names)]
    for row in rows:
        if wraps:  # a blank line between rows tells a row from a wrapped value's next line
            lines.append("")
        lines += [line([cell[k] if k < len(cell) else "" for cell in row])
                  for k in range(max((len(cell) for cell in row), default=1))]
    return "\n".join(lines)


def _wrapped(value) -> list:
    """A table value as its lines: empty when missing, a whole float without `.0`."""
    import math

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return [""]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    text = " ".join(str(value).split("\n")).replace("\t", " ").replace("\r", " ")
    if len(text) <= TEXT_CELL_WIDTH:
        return [text]
    return textwrap.wrap(text, TEXT_CELL_WIDTH, break_on_hyphens=False) or [""]


def _cell(value):
    """A statistic as a table shows it (a mean with at most 6 decimals)."""
    return round(value, 6) if isinstance(value, float) else value
