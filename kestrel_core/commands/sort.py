"""SORT: a variable ordered by one attribute."""

from __future__ import annotations

from ..semantics import check_attribute
from .base import Outcome


def run(stmt, ctx):
    source = ctx.var(stmt.input)
    check_attribute(stmt.attribute, ctx.store.columns(source.view), stmt.input, stmt,
                    ctx.source_text, source.entity_type, ctx.store.type_columns)
    view = ctx.new_view(stmt.output)
    ctx.store.refine(view, source.entity_type, source.view, stmt.attribute, stmt.ascending)
    return Outcome(ctx.make_variable(stmt, view, source.entity_type, source=source.source))
