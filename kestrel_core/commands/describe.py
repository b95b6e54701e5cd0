"""DESCRIBE: statistics of one attribute of a variable (Kestrel v1's DESCRIBE)."""

from __future__ import annotations

from ..results import Description
from .base import Outcome


def run(resolved, ctx):
    stmt = resolved.stmt
    variable = resolved.var(stmt.input)
    stats = ctx.store.describe(variable.view, variable.entity_type, stmt.attribute)
    top_values = stats.pop("top_values")
    return Outcome(results=[Description(stmt.input, stmt.attribute, stats, top_values)])
