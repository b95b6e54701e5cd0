"""SORT: a variable ordered by one attribute."""

from __future__ import annotations

from .base import Outcome


def run(resolved, ctx):
    stmt = resolved.stmt
    source = resolved.var(stmt.input)
    view = ctx.new_view(stmt.output)
    ctx.store.refine(view, source.entity_type, source.view, stmt.attribute, stmt.ascending)
    return Outcome(ctx.make_variable(resolved, view, source.entity_type, source=source.source))
