"""DISP: a variable (or an expression of it) as a table."""

from __future__ import annotations

import dataclasses

import pandas as pd

from ..results import Table
from ..semantics import check_attribute
from .base import Outcome
from .transform import evaluate


def _shown_columns(columns, attrs):
    """ATTR's columns, or every attribute but internal ids and references.

    Rows are distinct: DISP shows each combination of values once."""
    if attrs:
        return list(attrs)
    return [c for c in columns if c != "id" and not c.endswith(("_ref", "_refs"))] or columns


def run(stmt, ctx):
    expr = stmt.expression
    cap = ctx.config.disp_rows if expr.limit is None else expr.limit
    whole = dataclasses.replace(expr, limit=None, offset=None)
    before = len(ctx.created_views)
    try:
        view, _ = evaluate(ctx, stmt, "disp", whole)
        columns = ctx.store.columns(view)
        for attribute in expr.attrs:
            check_attribute(attribute, columns, expr.input, stmt, ctx.source_text)
        empty = not ctx.store.count(view)
        rows = [] if empty else ctx.store.rows(view, _shown_columns(columns, expr.attrs))
    finally:
        for temporary in reversed(ctx.created_views[before:]):
            ctx.store.drop(temporary)
        del ctx.created_views[before:]
    frame = pd.DataFrame(rows, columns=_shown_columns(columns, expr.attrs))
    if not expr.attrs and len(frame):
        frame = frame.dropna(axis=1, how="all")  # attributes no shown entity has
    # the same entity seen in many records is one row to a hunter
    frame = frame.astype(object).drop_duplicates(ignore_index=True)
    start = expr.offset or 0
    shown = frame.iloc[start:start + cap].reset_index(drop=True)
    return Outcome(results=[Table(shown, total=len(frame), offset=start)])
