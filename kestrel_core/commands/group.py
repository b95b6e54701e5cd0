"""GROUP: rows per distinct key, with aggregations."""

from __future__ import annotations

from .base import Outcome


def run(resolved, ctx):
    stmt = resolved.stmt
    source = resolved.var(stmt.input)
    aggregations = [(a.func, a.attribute, a.name) for a in stmt.aggregations]
    if not aggregations:
        aggregations = [("COUNT", "*", "count")]
    view = ctx.new_view(stmt.output)
    ctx.store.group(view, source.entity_type, source.view, list(stmt.by), aggregations)
    return Outcome(ctx.make_variable(resolved, view, source.entity_type, source=source.source,
                                     grouped=True))
