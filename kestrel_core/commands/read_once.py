"""Bundles read once: the store's copies of the bundles a FROM part names, reading
only those it lacks (new, or changed since: another size, modification time or body).
GET answers from them; FIND's prefetch has nothing left to fetch."""

from __future__ import annotations

from ..errors import DataSourceError
from ..redaction import redact
from ..sources.base import TimeSpan


def stored_copies(ctx, part: str, stmt) -> tuple:
    """(copy keys, what was done for EXPLAIN, the records' time span) for `part`."""
    keys, done, span = [], [], None
    try:
        for snapshot in ctx.sources.snapshots(part):
            copy = ctx.store.copy_of(snapshot.key)
            shown = redact(snapshot.location, ())
            if copy is None:
                result = ctx.sources.read(snapshot, ctx.progress)
                copy = ctx.store.store_copy(snapshot.key, snapshot.location, result)
                done.append(f"read {shown}: {copy['records']} observations, kept in the store")
            else:
                done.append(f"{shown} unchanged: answered from the store's copy of its "
                            f"{copy['records']} observations (read {copy['stored']})")
            keys.append(snapshot.key)
            if copy["earliest"] is not None:
                span = TimeSpan.of(span, TimeSpan(copy["earliest"], copy["latest"]))
    except DataSourceError as err:
        raise err.at(stmt.span, ctx.source_text)
    return keys, done, span
