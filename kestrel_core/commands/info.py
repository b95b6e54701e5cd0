"""INFO (what a variable holds) and EXPLAIN (how it was made)."""

from __future__ import annotations

from ..redaction import redact
from ..results import Text
from .base import Outcome


def run_info(resolved, ctx):
    variable = resolved.var(resolved.stmt.input)
    store = ctx.store
    seen = store.time_range(variable.view)
    if variable.grouped:  # rows, not entities
        entities = occurrences = store.count(variable.view)
    else:
        entities, occurrences = store.entity_counts(variable.view, variable.entity_type)
    lines = [
        f"entity type: {variable.entity_type}",
        f"entities: {entities}",
        f"occurrences: {occurrences}",
        f"records: {store.record_count(variable.view)}",
        f"attributes: {', '.join(c for c in store.columns(variable.view) if c != 'id')}",
        f"time range: {seen[0]} to {seen[1]}" if seen else "time range: none",
        f"data source: {variable.source or 'none'}",
        f"defined by: {variable.statement}",
    ]
    return Outcome(results=[Text(f"INFO {variable.name}", [redact(line) for line in lines])])


def run_explain(resolved, ctx):
    stmt = resolved.stmt
    lines = []
    for variable in _lineage(ctx, stmt.input):
        lines.append(f"{variable.statement}")
        if variable.rules:
            count = len(variable.rules)
            lines.append(f"    {count} Sigma rule{'s' if count != 1 else ''}, "
                         f"{'each ' if count != 1 else ''}with the condition it became:")
            lines.extend(f"      {rule}" for rule in variable.rules)
        if variable.pattern:
            lines.append(f"    STIX pattern: {_shortened(variable.pattern)}")
        for query in variable.native_queries:
            lines.append(f"    {variable.source}: {query}")
    return Outcome(results=[Text(f"EXPLAIN {stmt.input}", [redact(line) for line in lines])])


def _shortened(pattern: str, most: int = 4000) -> str:
    """A pattern as long as a folder of rules makes it is not read whole: its start."""
    if len(pattern) <= most:
        return pattern
    return f"{pattern[:most]} ... ({len(pattern):,} characters in all)"


def _lineage(ctx, name, seen=None):
    """The variable and everything it was derived from, oldest first."""
    seen = seen if seen is not None else set()
    variable = ctx.symtable.get(name)
    if variable is None or name in seen:
        return []
    seen.add(name)
    chain = []
    for parent in variable.inputs:
        if parent != name:
            chain.extend(_lineage(ctx, parent, seen))
    return chain + [variable]
