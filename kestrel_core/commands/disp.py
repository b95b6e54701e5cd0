"""DISP: a variable (or an expression of it) as a table."""

from __future__ import annotations

import dataclasses

from ..errors import StoreError
from ..identity import HOST, RECORD_COLUMNS, is_internal, reference_paths
from ..results import Table
from .base import Outcome
from .transform import evaluate

# Without SORT BY, DISP reads the view as a stream: it stops once it holds the page and
# has read this many rows, so the first page of a million rows costs about what the
# view's first rows cost.  When it stops before the end, the total is a lower bound.
COUNT_ROWS = 100_000


@dataclasses.dataclass
class DispTable(Table):
    """A DISP page.  `at_least` is set (and `total` None) when counting stopped before
    the end of a big variable: there are at least that many distinct rows."""

    at_least: int | None = None

    def _footer(self) -> str:
        if self.at_least is None:
            return super()._footer()
        first, last = self.offset + 1, self.offset + self.shown
        shown = f"rows {first}-{last}" if self.shown else "no rows"
        return (f"showing {shown} of at least {self.at_least} (counting stopped after "
                f"reading {COUNT_ROWS} rows; DISP ... SORT BY counts them all; use LIMIT n "
                "OFFSET m to see more)")

    def to_dict(self):
        return {**super().to_dict(), "total_at_least": self.at_least}


def _shown_columns(columns, attrs, entity_type, hosted):
    """ATTR's columns, or a hunter's: the entity's own attributes (and a process's host
    where it tells processes apart), then what it reaches through references (a LOADed
    file's `parent_ref.name`, and the paths its identity follows, such as
    network-traffic's `src_ref.value`), then its records' times; never ids, references as
    ids or a LOADed file's flattened ids and types."""
    if attrs:
        return list(attrs)
    data = [c for c in columns if not is_internal(c) and c not in RECORD_COLUMNS]
    own = [c for c in data if not c.split(".")[0].endswith(("_ref", "_refs"))]
    followed = [c for c in data if c not in own]
    followed += [p for p in reference_paths(entity_type)
                 if p not in followed and p.split(".")[0] in columns]
    if hosted and HOST not in own:
        own.append(HOST)
    return own + followed + [c for c in RECORD_COLUMNS if c in columns] or columns


def _page(ctx, view, shown, expr, cap, entity_type, view_type):
    """(rows, total, exact) of the page: a row per entity (`entity_type`), or per
    distinct combination of ATTR's values (None) of the view's `view_type` entities; an
    empty view has none (even when an attribute path cannot be joined), which only costs
    a count when reading failed."""
    store, offset = ctx.store, expr.offset or 0
    try:
        if entity_type is None:
            return store.distinct_page(view, shown, expr.sort_by, expr.ascending, cap,
                                       offset, count_rows=COUNT_ROWS, entity_type=view_type)
        return store.entity_page(view, entity_type, shown, expr.sort_by, expr.ascending,
                                 cap, offset, count_rows=COUNT_ROWS)
    except StoreError:
        if not store.count(view):
            return [], 0, True
        raise


def run(resolved, ctx):
    import pandas as pd

    expr = resolved.stmt.expression
    cap = ctx.config.disp_rows if expr.limit is None else expr.limit
    # WHERE and transforms build views; the store reads the page of distinct rows from
    # the last one (sorted and counted in the database with SORT BY, streamed without)
    before = len(ctx.created_views)
    try:
        view = evaluate(ctx, resolved, "disp", resolved.selection)
        # a row per entity, as summaries and LIMIT count them; with ATTR, or of a GROUP
        # result, a row per distinct combination of values
        by_values = expr.attrs or resolved.var(expr.input).grouped
        entity_type = None if by_values else resolved.entity_type
        columns = ctx.store.columns(view)
        shown = _shown_columns(columns, expr.attrs, entity_type,
                               entity_type is not None and ctx.store.hosted(entity_type, columns))
        rows, total, exact = _page(ctx, view, shown, expr, cap, entity_type,
                                   resolved.entity_type)
    finally:
        for temporary in reversed(ctx.created_views[before:]):
            ctx.store.drop(temporary)
        del ctx.created_views[before:]
    frame = pd.DataFrame(rows, columns=shown).astype(object)
    if not expr.attrs and len(frame):
        frame = frame.dropna(axis=1, how="all")  # attributes no shown entity has
    offset = expr.offset or 0
    if exact:
        return Outcome(results=[DispTable(frame, total=total, offset=offset)])
    return Outcome(results=[DispTable(frame, total=None, offset=offset, at_least=total)])
