"""GET: entities of one type from a data source (or a variable) matching an ECGP."""

from __future__ import annotations

import uuid

from ..errors import DataSourceError, KestrelSemanticError
from ..semantics import check_entity_type, check_where
from ..syntax.ecgp import ALWAYS, NEVER, center_part, to_stix
from .base import Outcome
from .narrow import narrow, resolve


def run(stmt, ctx):
    check_entity_type(stmt.entity_type, stmt, ctx.source_text, ctx.store.types())
    if stmt.source and stmt.source.kind == "variable":
        return _from_variable(stmt, ctx)
    # a data source may hold attributes the store has not seen: not checked here
    where, window = resolve(ctx, stmt.where, stmt.timerange)

    uri = stmt.source.text if stmt.source else ctx.sources.last_uri
    if uri is None:
        raise ctx.error(DataSourceError, "GET without FROM needs an earlier GET with a data "
                        "source", stmt)
    view = ctx.new_view(stmt.output)
    pattern, native = None, []
    if where is NEVER:
        ctx.store.empty_view(view, stmt.entity_type)
        native = ["nothing to ask: a referenced variable has no values"]
    else:
        pattern = to_stix(where, stmt.entity_type, window)
        body = to_stix(where, stmt.entity_type)
        try:
            result = ctx.sources.query(uri, stmt.entity_type, body, window,
                                       None if where is ALWAYS else where, ctx.progress)
        except DataSourceError as err:
            raise err.at(stmt.span, ctx.source_text)
        native = result.native_queries
        query_id = uuid.uuid4().hex
        ctx.store.ingest(query_id, result.bundles, stmt.entity_type)
        center = center_part(where, stmt.entity_type)
        ctx.store.extract(view, stmt.entity_type, query_id, None if center is ALWAYS else center)
    view = narrow(ctx, stmt.output, view, stmt.entity_type, limit=stmt.limit)
    variable = ctx.make_variable(stmt, view, stmt.entity_type, source=uri, pattern=pattern,
                                 native_queries=tuple(native))
    return Outcome(variable)


def _from_variable(stmt, ctx):
    source = ctx.var(stmt.source.text)
    if source.entity_type != stmt.entity_type:
        raise ctx.error(KestrelSemanticError,
                        f'{source.name} holds {source.entity_type} entities, not '
                        f'{stmt.entity_type}', stmt)
    check_where(stmt.where, ctx.store.columns(source.view), source.name, source.entity_type,
                ctx.store.type_columns, stmt, ctx.source_text)
    where, window = resolve(ctx, stmt.where, stmt.timerange)
    view = narrow(ctx, stmt.output, source.view, stmt.entity_type, where, window, stmt.limit)
    pattern = None if where in (ALWAYS, NEVER) else to_stix(where, stmt.entity_type, window)
    return Outcome(ctx.make_variable(stmt, view, stmt.entity_type, source=source.source,
                                     pattern=pattern))
