"""APPLY: run a registered analytics over variables; write back what it adds.

The analytics gets each ON variable as a DataFrame (loaded when first read),
its parameters checked against its signature, and a context (entity types,
records with timestamps, the huntflow).  What it returns is checked whole
before anything is written, so a failing APPLY changes no variable: every
returned frame must keep `id`, hold only entities of its variable, and add
plain attributes (`x_score`, not `parent_ref.x`) with scalar values.
Changed or new attributes are written onto the stored rows, matched by id.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING

from ..analytics import AnalyticsContext, HuntflowStep
from ..errors import AnalyticsError, KestrelError
from ..redaction import redact
from ..results import Figure, Result, Table, Text
from ..symbols import Variable
from .base import Outcome

if TYPE_CHECKING:
    import pandas as pd

ATTRIBUTE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def run(resolved, ctx):
    import pandas as pd

    stmt = resolved.stmt
    variables = {name: resolved.var(name) for name in stmt.variables}
    frames = LazyFrames({name: (lambda v=v: frame_of(ctx.store, v))
                         for name, v in variables.items()})
    context = AnalyticsContext(
        uri=stmt.uri, variables=tuple(variables),
        entity_types={name: v.entity_type for name, v in variables.items()},
        grouped=tuple(name for name, v in variables.items() if v.grouped),
        geoip_db=tuple(ctx.config.geoip_db),
        _timestamped=lambda name: pd.DataFrame(ctx.store.timestamped(variables[name].view)),
        _huntflow=lambda: huntflow_steps(ctx.store, ctx.symtable),
        _sigma=lambda name, location: _sigma_matches(ctx.store, variables[name], location),
    )
    try:
        result = ctx.analytics.run(stmt.uri, frames, dict(resolved.arguments), context)
        displays = _displays(stmt.uri, result.display)
        writes = _checked_writes(stmt.uri, ctx, variables, frames, result.updated or {})
    except AnalyticsError as err:
        raise err.at(stmt.span, ctx.source_text)
    lines = []
    for name, (rows, columns) in writes.items():
        ctx.store.update(variables[name].view, rows)
        lines.append(f"{name}: {', '.join(columns)} written to {len(rows)} entities")
    if lines:
        displays.append(Text(f"APPLY {stmt.uri}", lines))
    return Outcome(results=displays)


def _sigma_matches(store, variable: Variable, location: str) -> tuple:
    from ..sigma.labels import matches
    return matches(store, variable, location)


def frame_of(store, variable: Variable) -> pd.DataFrame:
    """A variable as an analytics sees it: entities, references followed."""
    import pandas as pd

    return pd.DataFrame(store.rows(variable.view))


class LazyFrames(Mapping):
    """name -> DataFrame, each read from the store when first asked for."""

    def __init__(self, loaders: dict):
        self._loaders, self._frames = loaders, {}

    def __getitem__(self, name):
        if name not in self._frames:
            self._frames[name] = self._loaders[name]()
        return self._frames[name]

    def __iter__(self):
        return iter(self._loaders)

    def __len__(self):
        return len(self._loaders)

    def loaded(self, name):
        return self._frames.get(name)


# ------------------------------------------------------------ what comes back


def _displays(uri, display) -> list:
    import pandas as pd

    items = display if isinstance(display, (list, tuple)) else [display]
    shown = []
    for item in items:
        if item is None:
            continue
        if isinstance(item, Result):
            shown.append(item)
        elif isinstance(item, pd.DataFrame):
            shown.append(Table(item, total=len(item)))
        elif hasattr(item, "to_plotly_json"):
            figure = json.loads(item.to_json())
            title = (figure.get("layout", {}).get("title") or {}).get("text") or uri
            shown.append(Figure(uri.partition("://")[2], title, figure))
        else:
            raise AnalyticsError(f"{uri} returned a display of type {type(item).__name__} "
                                 "(expected a kestrel Result, a plotly figure or a DataFrame)")
    return shown


def _checked_writes(uri, ctx, variables, frames, updated) -> dict:
    """{variable: (rows to write back, attributes written)}; AnalyticsError if anything
    returned cannot be written."""
    import pandas as pd

    writes = {}
    for name, frame in updated.items():
        if name not in variables:
            raise AnalyticsError(f"{uri} returned data for {name}, which is not an ON "
                                 f"variable ({', '.join(variables)})")
        variable = variables[name]
        if not isinstance(frame, pd.DataFrame):
            raise AnalyticsError(f"{uri} returned {type(frame).__name__} for {name}, "
                                 "not a DataFrame")
        if variable.grouped:
            raise AnalyticsError(f"{uri} cannot write to {name}: it holds GROUP rows, "
                                 "not entities")
        if "id" not in frame.columns:
            raise AnalyticsError(f"{uri} returned a frame for {name} without its id column "
                                 "(needed to write attributes back)")
        stored = {row["id"]: row for row in ctx.store.raw_rows(variable.view)}
        ids = [i for i in frame["id"] if not _missing(i)]
        strangers = sorted(set(ids) - set(stored))
        if strangers or len(ids) < len(frame):
            what = (f"{len(strangers)} ids that are not entities of {name} "
                    f"(e.g. {strangers[0]})" if strangers else "rows without an id")
            raise AnalyticsError(f"{uri} returned {what}")
        columns = _written_columns(uri, name, frame, stored, frames.loaded(name))
        kept = set(next(iter(stored.values()), {}))  # attributes the entities have already
        rows, written = [], set()
        for record in frame.to_dict(orient="records"):
            changes = {}
            for column in columns:
                value = _plain(uri, name, column, record[column])
                if column in kept:
                    if not _same(stored[record["id"]].get(column), value):
                        changes[column] = value
                elif value is not None:
                    changes[column] = value
            if changes:
                rows.append({**stored[record["id"]], **changes, "type": variable.entity_type})
                written.update(changes)
        if rows:
            writes[name] = (rows, [c for c in columns if c in written])
    return writes


def _written_columns(uri, name, frame, stored, given) -> list:
    """Attributes of a returned frame to write: new ones and stored ones, not ids,
    types or what was reached through a reference."""
    sample = next(iter(stored.values()), {})
    read = set(given.columns) if given is not None else set()
    columns = []
    for column in frame.columns:
        if column in ("id", "type"):
            continue
        if not isinstance(column, str):
            raise AnalyticsError(f"{uri} returned a column named {column!r} for {name}")
        if "." in column:
            if column in read:
                continue  # read through a reference: not this entity's to write
            raise AnalyticsError(f"{uri} cannot write {column} to {name}: attributes reached "
                                 "through references are read-only")
        if not ATTRIBUTE.match(column):
            raise AnalyticsError(f'{uri} returned an attribute named "{column}" for {name} '
                                 "(letters, digits and _ only)")
        if column.endswith("_ref") or column.endswith("_refs"):
            if column in sample or column in read:
                continue  # references are kept as they are
            raise AnalyticsError(f"{uri} cannot add the reference {column} to {name}")
        columns.append(column)
    return columns


def _plain(uri, name, column, value):
    """A value as the store keeps it: None, bool, int, float or str."""
    import pandas as pd

    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict, str)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if value is pd.NA:
        return None
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise AnalyticsError(f"{uri} returned a {type(value).__name__} for {name}.{column}; "
                         "attributes hold strings, numbers or booleans")


def _same(old, new) -> bool:
    if old is None or new is None:
        return old is None and new is None
    try:
        return bool(old == new)
    except (TypeError, ValueError):
        return False


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# ------------------------------------------------------------ the huntflow


def huntflow_steps(store, symtable) -> tuple:
    """Every variable definition in the store (all versions), oldest first."""
    definitions = []
    for row in store.views():
        try:
            definitions.append(Variable.from_appdata(json.loads(row.get("appdata") or "")))
        except (ValueError, TypeError):
            continue
    definitions.sort(key=lambda v: v.version)
    current = {name: v.version for name, v in symtable.items()}
    seen = {}  # name -> key of its latest definition so far

    steps = []
    for variable in definitions:
        inputs = tuple(seen[n] for n in dict.fromkeys(variable.inputs) if n in seen)
        refs = tuple(seen[n] for n in dict.fromkeys(variable.references)
                     if n in seen and n not in variable.inputs)
        key = f"{variable.name}@{variable.version}"
        try:  # distinct entities, as summaries count them (a GROUP result: its rows)
            entities = (store.count(variable.view) if variable.grouped
                        else store.entity_counts(variable.view, variable.entity_type)[0])
        except KestrelError:
            entities = 0
        steps.append(HuntflowStep(
            key=key, name=variable.name, version=variable.version,
            entity_type=variable.entity_type, command=variable.command,
            statement=redact(variable.statement), inputs=inputs, references=refs,
            source=redact(variable.source) if variable.source and not variable.inputs else None,
            entities=entities,
            current=current.get(variable.name) == variable.version))
        seen[variable.name] = key
    return tuple(steps)
