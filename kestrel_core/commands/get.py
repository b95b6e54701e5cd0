"""GET: entities of one type from a data source (or a variable) matching an ECGP."""

from __future__ import annotations

import dataclasses
import uuid

from ..errors import DataSourceError
from ..redaction import redact
from ..sources import Query
from ..sources.base import TimeSpan
from ..syntax.ecgp import ALWAYS, NEVER, center_part, to_stix
from ..timestamps import format_timestamp, window_datetimes
from .base import Outcome
from .narrow import narrow
from .read_once import stored_copies


def run(resolved, ctx):
    stmt, selection = resolved.stmt, resolved.selection
    if stmt.source and stmt.source.kind == "variable":
        return _from_variable(resolved, ctx)
    uri = stmt.source.text if stmt.source else ctx.sources.last_uri
    if uri is None:
        raise ctx.error(DataSourceError, "GET without FROM needs an earlier GET with a data "
                        "source", stmt)
    where, window = selection.where, selection.window
    view = ctx.new_view(stmt.output)
    pattern, native, notes = None, [], []
    if where is NEVER:
        ctx.store.empty_view(view, stmt.entity_type)
        native = ["nothing to ask: a referenced variable has no values"]
    else:
        pattern = to_stix(where, stmt.entity_type, window)
        where = None if where is ALWAYS else where
        query_id, span = uuid.uuid4().hex, None
        parts = ctx.sources.parts(uri)
        queried = not all(whole for _, whole in parts)
        if queried:
            try:
                result = ctx.sources.query(uri, Query(stmt.entity_type, where, window),
                                           ctx.progress)
            except DataSourceError as err:
                raise err.at(stmt.span, ctx.source_text)
            ctx.store.ingest(query_id, result.bundles, stmt.entity_type)
            native, span = list(result.native_queries), result.time_span
        for part in (part for part, whole in parts if whole):
            keys, done, copied = stored_copies(ctx, part, stmt)
            ctx.store.note_matching(query_id, stmt.entity_type, keys, where, window)
            native += done
            span = TimeSpan.of(span, copied)
        ctx.sources.answered(uri)
        # a source's records hold other entities too; bundles' were matched entity by entity
        center = center_part(where, stmt.entity_type) if where is not None and queried \
            else ALWAYS
        ctx.store.extract(view, stmt.entity_type, query_id, None if center is ALWAYS else center)
        notes = _outside(window, span, uri)
    # the source matched the WHERE and the window: what is left is the LIMIT
    view = narrow(ctx, stmt.output, view, stmt.entity_type,
                  dataclasses.replace(selection, where=ALWAYS, window=None))
    variable = ctx.make_variable(resolved, view, stmt.entity_type, source=uri, pattern=pattern,
                                 native_queries=tuple(native))
    return Outcome(variable, empty_notes=notes)


def _outside(window, span, uri) -> list:
    """A note when the time range misses every record the source read: their own span
    says which range would find them (LAST 5 MINUTES on last year's data)."""
    if not window or span is None:
        return []
    start, stop = window_datetimes(window)
    if start <= span.latest and span.earliest < stop:
        return []
    return [f"the time range {format_timestamp(start)} to {format_timestamp(stop)} holds none "
            f"of the records of {redact(uri)}: they span {format_timestamp(span.earliest)} to "
            f"{format_timestamp(span.latest)}"]


def _from_variable(resolved, ctx):
    stmt, selection = resolved.stmt, resolved.selection
    source = resolved.var(stmt.source.text)
    view = narrow(ctx, stmt.output, source.view, stmt.entity_type, selection)
    where = selection.where
    pattern = (None if where in (ALWAYS, NEVER)
               else to_stix(where, stmt.entity_type, selection.window))
    return Outcome(ctx.make_variable(resolved, view, stmt.entity_type, source=source.source,
                                     pattern=pattern))
