"""JOIN (two variables on attributes) and merge (`v = a + b`)."""

from __future__ import annotations

from ..errors import KestrelSemanticError
from ..semantics import check_attribute
from .base import Outcome


def run_join(stmt, ctx):
    left, right = ctx.var(stmt.left), ctx.var(stmt.right)
    left_on = stmt.left_attribute or "id"
    right_on = stmt.right_attribute or "id"
    check_attribute(left_on, ctx.store.columns(left.view), left.name, stmt, ctx.source_text,
                    left.entity_type, ctx.store.type_columns)
    check_attribute(right_on, ctx.store.columns(right.view), right.name, stmt, ctx.source_text,
                    right.entity_type, ctx.store.type_columns)
    view = ctx.new_view(stmt.output)
    ctx.store.join(view, left.entity_type, left.view, left_on, right.view, right.entity_type,
                   right_on)
    return Outcome(ctx.make_variable(stmt, view, left.entity_type, source=left.source))


def run_merge(stmt, ctx):
    variables = [ctx.var(name) for name in stmt.variables]
    types = {v.entity_type for v in variables}
    if len(types) > 1:
        listing = ", ".join(f"{v.name} ({v.entity_type})" for v in variables)
        raise ctx.error(KestrelSemanticError,
                        f"cannot merge variables of different entity types: {listing}", stmt)
    view = ctx.new_view(stmt.output)
    ctx.store.merge(view, [v.view for v in variables])
    sources = {v.source for v in variables}
    return Outcome(ctx.make_variable(stmt, view, types.pop(),
                                     source=sources.pop() if len(sources) == 1 else None))
