"""Expressions: `v2 = v1 [WHERE ...] [SORT BY ...] [LIMIT n [OFFSET m]]` and the
transforms TIMESTAMPED, ADDOBSID and RECORDS.  DISP shares `evaluate`."""

from __future__ import annotations

from .base import Outcome
from .narrow import narrow


def evaluate(ctx, resolved, name, selection):
    """The view of an expression (transformed, then narrowed to `selection`)."""
    expr = resolved.stmt.expression
    view = resolved.var(expr.input).view
    if expr.transform:
        transformed = ctx.new_view(name)
        ctx.store.transformed(transformed, view, expr.transform, resolved.entity_type)
        view = transformed
    return narrow(ctx, name, view, resolved.entity_type, selection)


def run_assign(resolved, ctx):
    stmt = resolved.stmt
    view = evaluate(ctx, resolved, stmt.output, resolved.selection)
    source = resolved.var(stmt.expression.input)
    return Outcome(ctx.make_variable(resolved, view, resolved.entity_type, source=source.source,
                                     grouped=source.grouped))
