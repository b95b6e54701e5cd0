"""JOIN (two variables on attributes) and merge (`v = a + b`)."""

from __future__ import annotations

from .base import Outcome


def run_join(resolved, ctx):
    stmt = resolved.stmt
    left, right = resolved.var(stmt.left), resolved.var(stmt.right)
    view = ctx.new_view(stmt.output)
    ctx.store.join(view, left.entity_type, left.view, stmt.left_attribute or "id", right.view,
                   right.entity_type, stmt.right_attribute or "id")
    return Outcome(ctx.make_variable(resolved, view, left.entity_type, source=left.source))


def run_merge(resolved, ctx):
    stmt = resolved.stmt
    variables = [resolved.var(name) for name in stmt.variables]
    view = ctx.new_view(stmt.output)
    ctx.store.merge(view, [v.view for v in variables])
    sources = {v.source for v in variables}
    return Outcome(ctx.make_variable(resolved, view, resolved.entity_type,
                                     source=sources.pop() if len(sources) == 1 else None))
