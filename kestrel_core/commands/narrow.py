"""Shared by GET (from a variable), FIND and assignment: WHERE, time window, LIMIT."""

from __future__ import annotations

from ..semantics import check_references, check_values, resolve_where
from ..syntax.ecgp import NEVER, simplify, window_datetimes


def resolve(ctx, where, timerange):
    """(simplified ECGP or ALWAYS/NEVER, window) with `var.attr` references expanded."""
    check_values(where, ctx.source_text)
    check_references(ctx, where)
    resolved, window = resolve_where(where, ctx.entity_window, ctx.values_of, ctx.config,
                                     timerange, ctx.now)
    return simplify(resolved), window


def narrow(ctx, name, view, entity_type, where=True, window=None, limit=None, offset=None,
           sort_by=None, ascending=True):
    """Chain views that filter/slice `view`; returns the last one's name."""
    if where is NEVER:
        empty = ctx.new_view(name)
        ctx.store.empty_view(empty, entity_type)
        return empty
    if where is not True and where is not None:
        filtered = ctx.new_view(name)
        ctx.store.filter(filtered, entity_type, view, where)
        view = filtered
    if window:
        start, stop = window_datetimes(window)
        timed = ctx.new_view(name)
        ctx.store.restrict_to_window(timed, entity_type, view, start, stop)
        view = timed
    if sort_by or limit is not None or offset:
        sliced = ctx.new_view(name)
        ctx.store.refine(sliced, entity_type, view, sort_by, ascending, limit, offset)
        view = sliced
    return view
