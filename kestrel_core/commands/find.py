"""FIND: entities related to a variable's entities through STIX references, or (LINKED)
held by the same records.

The check stage resolved which references carry the relation (`resolved.links`).
Before joining in the store, FIND asks the variable's data source for the records of
its entities (prefetch): a hunt then sees relations its GET did not bring in.  A bundle
is in the store whole already (read_once.py): only a changed one is read again.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from ..errors import DataSourceError, StoreError
from ..sources import Query
from ..stix import ADDRESSES
from ..syntax import ast
from ..timestamps import format_timestamp, parse_timestamp, shifted, window_datetimes
from .base import Outcome
from .narrow import narrow
from .read_once import stored_copies


def run(resolved, ctx):
    stmt, selection = resolved.stmt, resolved.selection
    source_var = resolved.var(stmt.input)
    native = []
    prefetching = ctx.config.prefetch_find and source_var.source
    if prefetching:
        native = _copies(resolved, ctx, source_var) + _prefetch(resolved, ctx, source_var)
    elif source_var.source:
        native = [f"{STORED}: prefetch_find is off in the configuration"]
    related = ctx.new_view(stmt.output)
    # LINKED's time range is the shared record's; a reference has no record, so for other
    # relations it keeps the found entities seen in a record within it (narrow)
    linked = any(direction == "record" for _, direction in resolved.links)
    ctx.store.related(related, stmt.entity_type, source_var.view, resolved.links,
                      window_datetimes(selection.window) if linked else None)
    if prefetching and stmt.entity_type in VALUE_IDENTIFIED:
        native += _prefetch_records_of(resolved, ctx, source_var, related)
    view = narrow(ctx, stmt.output, related, stmt.entity_type,
                  replace(selection, window=None) if linked else selection)
    return Outcome(ctx.make_variable(resolved, view, stmt.entity_type, source=source_var.source,
                                     native_queries=tuple(native)))


# Attributes that identify an entity across records, best first; all of a tuple must have
# values. FIND asks selective sources (stix-shifter) for records holding these values.
IDENTITY = {
    "process": (("x_unique_id",), ("pid",)),
    "file": (("hashes.'SHA-256'",), ("hashes.MD5",), ("name",)),
    "directory": (("path",),),
    "user-account": (("user_id",), ("account_login",)),
    "network-traffic": (("src_port", "dst_port"),),
    "autonomous-system": (("number",),),
    "software": (("name",),),
    "x-oca-asset": (("hostname",),),
    **{t: (("value",),) for t in ADDRESSES + ("url", "email-addr")},
}


# How FIND's notes end when the data source was not asked (EXPLAIN shows them).
STORED = "FIND used the records already stored"

# Types whose firepit identity is their value: the same entity in every record, so
# fetching the records that hold a found entity completes its story (records, times).
VALUE_IDENTIFIED = {"user-account", "directory", "software", "url", "email-addr",
                    "autonomous-system", *ADDRESSES}


def _prefetch_window(ctx, source_var, window):
    """The FIND window, or the variable's records' time range widened by the offsets."""
    if window is not None:
        return window
    seen = ctx.store.time_range(source_var.view)
    if not seen:
        return None
    return (shifted(parse_timestamp(seen[0]), ctx.config.timerange_start_offset),
            shifted(parse_timestamp(seen[1]), ctx.config.timerange_stop_offset))


def _source(stmt, ctx, source_var):
    try:
        return ctx.sources.source_for(source_var.source)
    except DataSourceError as err:
        raise err.at(stmt.span, ctx.source_text)


def _prefetch_batch(stmt, ctx, source_var):
    return getattr(_source(stmt, ctx, source_var), "prefetch_batch", None)


def _prefetch(resolved, ctx, source_var):
    """Ask the variable's data source for the records holding the entities' identifying
    values (or pointing at them), around their time; a source that cannot express the
    query leaves FIND to the stored records.  The notes say what was asked, or why not."""
    stmt, name = resolved.stmt, source_var.name
    batch = _prefetch_batch(stmt, ctx, source_var)
    if not batch:  # nothing to ask (a bundle is in the store whole)
        return []
    window = _prefetch_window(ctx, source_var, resolved.selection.window)
    if window is None:
        return [f"no prefetch: no record holds an entity of {name}, so there is nothing to "
                f"look up; {STORED}"]
    attributes, values = _identified_by(ctx, source_var.entity_type, source_var.view,
                                        IDENTITY)
    if not attributes:
        return [f"no prefetch: {_unidentified(source_var)}; {STORED}"]
    refs = [ref for ref, direction in resolved.links
            if direction == "in" and ref.endswith("_ref")]
    pointing = (f", or {_a(stmt.entity_type)} {stmt.entity_type} referring to them by "
                f"{' or '.join(refs)}" if refs else "")
    asked = (f"prefetch: the records holding the {source_var.entity_type} entities of {name}, "
             f"by {_by(attributes, values)}{pointing}, {_between(window)}")
    queries = _identity_queries(stmt.entity_type, source_var.entity_type, refs, attributes,
                                values, batch)
    return [asked] + _fetch(stmt, ctx, source_var, queries, window,
                            "no prefetch: {}; " + STORED)


def _copies(resolved, ctx, source_var) -> list:
    """The variable's bundles are in the store whole (read again if they changed since):
    nothing to fetch from them."""
    try:
        parts = ctx.sources.parts(source_var.source)
    except DataSourceError as err:
        raise err.at(resolved.stmt.span, ctx.source_text)
    return [f"prefetch: {done}" for part, whole in parts if whole
            for done in stored_copies(ctx, part, resolved.stmt)[1]]


def _unidentified(source_var) -> str:
    """Why the variable's entities cannot be looked up in other records: they lack the
    attributes that would identify them, or Kestrel knows none for their type."""
    kind, name = source_var.entity_type, source_var.name
    if kind in IDENTITY:
        return (f"{name} has no {_alternatives(IDENTITY[kind])} to ask the data source for "
                "other records by")
    return (f"Kestrel knows no attribute that identifies {_a(kind)} {kind} across records, "
            f"so the data source cannot be asked for other records of {name}")


def _alternatives(identities) -> str:
    return " or ".join(" and ".join(attributes) for attributes in identities)


def _a(entity_type) -> str:
    return "an" if entity_type[0] in "aeiox" else "a"  # an x-oca-event, a user-account


def _by(attributes, values) -> str:
    """`pid (14 values)`, `src_port (3 values) and dst_port (1 value)`."""
    return " and ".join(f"{a} ({len(v)} value{'' if len(v) == 1 else 's'})"
                        for a, v in zip(attributes, values))


def _between(window) -> str:
    start, stop = window_datetimes(window)
    return f"{format_timestamp(start)} to {format_timestamp(stop)}"


def _prefetch_records_of(resolved, ctx, source_var, found_view):
    """Records holding the entities FIND found (value-identified types): counts and
    times of an address or an account then cover the whole window, as in v1."""
    stmt = resolved.stmt
    batch = _prefetch_batch(stmt, ctx, source_var)
    if not batch:
        return []
    window = _prefetch_window(ctx, source_var, resolved.selection.window)
    if window is None:
        return []
    attributes, values = _identified_by(ctx, stmt.entity_type, found_view,
                                        IDENTITY)
    if not attributes:
        return []
    queries = [_among(stmt.entity_type, attributes[0], values[0][i:i + batch])
               for i in range(0, len(values[0]), batch)]
    asked = (f"prefetch: the other records of the {stmt.entity_type} entities found, by "
             f"{_by(attributes[:1], values)}, {_between(window)}")
    return [asked] + _fetch(stmt, ctx, source_var, queries, window,
                            "no prefetch of the other records of the entities found: {}")


def _identified_by(ctx, entity_type, view, identities):
    """(attributes, their distinct values) of the first identity of `entity_type` the
    view's entities all have values for; ((), ()) when none."""
    for attributes in identities.get(entity_type, ()):
        values = [_distinct(ctx, view, a) for a in attributes]
        if all(values):
            return attributes, values
    return (), ()


def _among(entity_type, attribute, values):
    """`entity_type:attribute IN values` as an ECGP comparison."""
    return ast.Comparison(ast.AttrPath(entity_type, attribute), "IN", tuple(values))


def _fetch(stmt, ctx, source_var, wheres, window, unasked):
    """Query the variable's source for each ECGP and store what comes back; a query the
    source cannot express ends the prefetch with the note `unasked` (a format string
    taking the source's message)."""
    native = []
    for where in wheres:
        query = Query(stmt.entity_type, where, window, exact=False)
        try:
            result = ctx.sources.query(source_var.source, query, ctx.progress)
        except DataSourceError as err:
            if getattr(err, "code", None) in ("mapping_error", "not_implemented"):
                return native + [unasked.format(err.message)]  # the source can't say it
            raise err.at(stmt.span, ctx.source_text)
        ctx.store.ingest(f"prefetch-{uuid.uuid4().hex}", ctx.store.unstored(result.bundles))
        native.extend("prefetch: " + q for q in result.native_queries)
    return native


def _identity_queries(result_type, input_type, refs, attributes, values, batch):
    """ECGPs for records holding the variable's entities (or, by `refs` the result holds,
    pointing at them), `batch` values of the first identifying attribute at a time."""
    first, rest = values[0], list(zip(attributes[1:], values[1:]))
    queries = []
    for i in range(0, len(first), batch):
        chunk = first[i:i + batch]
        held = [_among(input_type, attributes[0], chunk)]
        held += [_among(result_type, f"{ref}.{attributes[0]}", chunk) for ref in refs]
        held = held[0] if len(held) == 1 else ast.BoolExpr("OR", tuple(held))
        extra = [_among(input_type, a, v) for a, v in rest]
        queries.append(ast.BoolExpr("AND", (held, *extra)) if extra else held)
    return queries


def _distinct(ctx, view, attribute):
    try:
        values = ctx.store.values(view, attribute)
    except StoreError:  # the variable has no such column
        return []
    return sorted({v for v in values if isinstance(v, (str, int, float))
                   and not isinstance(v, bool)}, key=lambda v: (str(type(v)), v))
