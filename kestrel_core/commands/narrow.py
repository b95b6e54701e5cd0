"""Views that narrow a variable to a resolved selection: WHERE, time window, order,
slice.  Shared by GET (from a variable), FIND, assignment and DISP."""

from __future__ import annotations

from ..syntax.ecgp import ALWAYS, NEVER
from ..timestamps import window_datetimes


def narrow(ctx, name, view, entity_type, selection):
    """Chain views that filter/slice `view` as `selection` says; returns the last one's name."""
    if selection.where is NEVER:
        empty = ctx.new_view(name)
        ctx.store.empty_view(empty, entity_type)
        return empty
    if selection.where is not ALWAYS:
        filtered = ctx.new_view(name)
        ctx.store.filter(filtered, entity_type, view, selection.where)
        view = filtered
    if selection.window:
        start, stop = window_datetimes(selection.window)
        timed = ctx.new_view(name)
        ctx.store.restrict_to_window(timed, entity_type, view, start, stop)
        view = timed
    if selection.sort_by or selection.limit is not None or selection.offset:
        sliced = ctx.new_view(name)
        ctx.store.refine(sliced, entity_type, view, selection.sort_by, selection.ascending,
                         selection.limit, selection.offset)
        view = sliced
    return view
