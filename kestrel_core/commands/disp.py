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
    # WHERE and transforms build views; sorting, distinct rows and the page are one query
    whole = dataclasses.replace(expr, limit=None, offset=None, sort_by=None)
    before = len(ctx.created_views)
    try:
        view, _ = evaluate(ctx, stmt, "disp", whole)
        columns = ctx.store.columns(view)
        for attribute in expr.attrs + ((expr.sort_by,) if expr.sort_by else ()):
            check_attribute(attribute, columns, expr.input, stmt, ctx.source_text)
        shown = _shown_columns(columns, expr.attrs)
        rows, total = ([], 0) if not ctx.store.count(view) else ctx.store.distinct_page(
            view, shown, expr.sort_by, expr.ascending, cap, expr.offset or 0)
    finally:
        for temporary in reversed(ctx.created_views[before:]):
            ctx.store.drop(temporary)
        del ctx.created_views[before:]
    frame = pd.DataFrame(rows, columns=shown).astype(object)
    if not expr.attrs and len(frame):
        frame = frame.dropna(axis=1, how="all")  # attributes no shown entity has
    return Outcome(results=[Table(frame, total=total, offset=expr.offset or 0)])
