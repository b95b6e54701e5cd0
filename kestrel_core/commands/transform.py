"""Expressions: `v2 = v1 [WHERE ...] [SORT BY ...] [LIMIT n [OFFSET m]]` and the
transforms TIMESTAMPED, ADDOBSID and RECORDS.  DISP shares `evaluate`."""

from __future__ import annotations

from ..semantics import check_attribute, check_where
from .base import Outcome
from .narrow import narrow, resolve

TRANSFORM_TYPES = {"RECORDS": "observed-data"}


def evaluate(ctx, stmt, name, expr):
    """(view, entity_type) for an expression, building views as needed."""
    source = ctx.var(expr.input)
    view, entity_type = source.view, source.entity_type
    if expr.transform:
        transformed = ctx.new_view(name)
        entity_type = TRANSFORM_TYPES.get(expr.transform, entity_type)
        ctx.store.transformed(transformed, view, expr.transform, entity_type)
        view = transformed
    if expr.sort_by or expr.where is not None:
        columns, known = ctx.store.columns(view), ctx.store.type_columns
        if expr.sort_by:
            check_attribute(expr.sort_by, columns, expr.input, stmt, ctx.source_text,
                            entity_type, known)
        check_where(expr.where, columns, expr.input, entity_type, known, stmt, ctx.source_text)
    where, window = resolve(ctx, expr.where, None)
    view = narrow(ctx, name, view, entity_type, where, window, expr.limit, expr.offset,
                  expr.sort_by, expr.ascending)
    return view, entity_type


def run_assign(stmt, ctx):
    view, entity_type = evaluate(ctx, stmt, stmt.output, stmt.expression)
    source = ctx.var(stmt.expression.input)
    return Outcome(ctx.make_variable(stmt, view, entity_type, source=source.source,
                                     grouped=source.grouped))
