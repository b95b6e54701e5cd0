"""GROUP: rows per distinct key, with aggregations."""

from __future__ import annotations

from ..semantics import check_attribute
from ..syntax import ast
from .base import Outcome


def run(stmt, ctx):
    source = ctx.var(stmt.input)
    columns = ctx.store.columns(source.view)
    keys = [k.attribute if isinstance(k, ast.Bin) else k for k in stmt.by]
    for attribute in keys + [a.attribute for a in stmt.aggregations if a.attribute != "*"]:
        check_attribute(attribute, columns, stmt.input, stmt, ctx.source_text,
                        source.entity_type, ctx.store.type_columns)
    aggregations = [(a.func, a.attribute, a.name) for a in stmt.aggregations]
    if not aggregations:
        aggregations = [("COUNT", "*", "count")]
    view = ctx.new_view(stmt.output)
    ctx.store.group(view, source.entity_type, source.view, list(stmt.by), aggregations)
    return Outcome(ctx.make_variable(stmt, view, source.entity_type, source=source.source,
                                     grouped=True))
