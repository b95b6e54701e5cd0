"""FIND: entities related to a variable's entities through STIX references.

`FIND R rel V` asks for R entities that stand in `rel` to V's entities
(R rel V); `FIND R rel BY V` for those that V's entities stand in `rel` to
(V rel R).  RELATIONS says, for each (X, rel, Y), which references carry
the relation and whether X or Y holds them.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from ..errors import DataSourceError, StoreError, UnsupportedRelation
from ..semantics import check_entity_type
from ..syntax.ecgp import stix_value
from .base import Outcome
from .narrow import narrow, resolve

ADDRESSES = ("ipv4-addr", "ipv6-addr", "mac-addr", "domain-name")

# (X, relation, Y) -> [(reference, holder)] where holder "x": X.ref -> Y, "y": Y.ref -> X
RELATIONS = {
    ("process", "created", "process"): [("parent_ref", "y"), ("child_refs", "x")],
    ("process", "created", "network-traffic"): [("opened_connection_refs", "x")],
    ("process", "loaded", "file"): [("binary_ref", "x"), ("image_ref", "x")],
    ("user-account", "owned", "process"): [("creator_user_ref", "y")],
    ("directory", "contained", "file"): [("contains_refs", "x"), ("parent_directory_ref", "y")],
    ("directory", "contained", "directory"): [("contains_refs", "x")],
    ("file", "contained", "artifact"): [("content_ref", "x")],
    ("network-traffic", "contained", "network-traffic"): [("encapsulates_refs", "x"),
                                                          ("encapsulated_by_ref", "y")],
    ("email-addr", "created", "email-message"): [("from_ref", "y"), ("sender_ref", "y")],
    ("email-addr", "accepted", "email-message"): [("to_refs", "y"), ("cc_refs", "y"),
                                                  ("bcc_refs", "y")],
    ("email-message", "contained", "artifact"): [("raw_email_ref", "x")],
    ("user-account", "owned", "email-addr"): [("belongs_to_ref", "y")],
    ("autonomous-system", "owned", "ipv4-addr"): [("belongs_to_refs", "y")],
    ("autonomous-system", "owned", "ipv6-addr"): [("belongs_to_refs", "y")],
    ("domain-name", "linked", "ipv4-addr"): [("resolves_to_refs", "x")],
    ("domain-name", "linked", "ipv6-addr"): [("resolves_to_refs", "x")],
    **{(a, "created", "network-traffic"): [("src_ref", "y")] for a in ADDRESSES},
    **{(a, "accepted", "network-traffic"): [("dst_ref", "y")] for a in ADDRESSES},
}


def links_for(result_type, relation, input_type, reversed_):
    """[(reference, direction)]: "in" = the result holds the reference, "out" = the input does."""
    x, y = (input_type, result_type) if reversed_ else (result_type, input_type)
    result_is_x = not reversed_
    if relation == "linked":
        return _generic_links(result_type, input_type)
    links = []
    for ref, holder in RELATIONS.get((x, relation, y), []):
        result_holds = (holder == "x") == result_is_x
        links.append((ref, "in" if result_holds else "out"))
    return links


def _generic_links(result_type, input_type):
    """LINKED: every declared relation between the two types, either way round."""
    links = []
    for (x, _, y), refs in RELATIONS.items():
        for ref, holder in refs:
            if (x, y) == (result_type, input_type):
                links.append((ref, "in" if holder == "x" else "out"))
            if (x, y) == (input_type, result_type):
                links.append((ref, "out" if holder == "x" else "in"))
    return list(dict.fromkeys(links))


def relations_between(result_type, input_type):
    """Relation phrases that make sense for the pair (for error messages and completion)."""
    phrases = set()
    for (x, relation, y) in RELATIONS:
        if (x, y) == (result_type, input_type):
            phrases.add(relation.upper())
        if (x, y) == (input_type, result_type):
            phrases.add(f"{relation.upper()} BY")
    return sorted(phrases)


def run(stmt, ctx):
    check_entity_type(stmt.entity_type, stmt, ctx.source_text, ctx.store.types())
    source_var = ctx.var(stmt.input)
    links = links_for(stmt.entity_type, stmt.relation, source_var.entity_type, stmt.reversed)
    if not links:
        possible = relations_between(stmt.entity_type, source_var.entity_type)
        by = " BY" if stmt.reversed else ""
        raise ctx.error(
            UnsupportedRelation,
            f"no relation {stmt.relation.upper()}{by} from {source_var.entity_type} "
            f"({stmt.input}) to {stmt.entity_type}", stmt,
            hint=("possible: " + ", ".join(f"FIND {stmt.entity_type} {p} {stmt.input}"
                                            for p in possible)) if possible else
            "these entity types are not related by STIX references",
        )
    where, window = resolve(ctx, stmt.where, stmt.timerange)
    native = []
    prefetching = ctx.config.prefetch_find and source_var.source
    if prefetching:
        native = _prefetch(stmt, ctx, source_var, window)
    related = ctx.new_view(stmt.output)
    ctx.store.related(related, stmt.entity_type, source_var.view, links)
    if prefetching and stmt.entity_type in VALUE_IDENTIFIED:
        native += _prefetch_records_of(stmt, ctx, source_var, related, window)
    view = narrow(ctx, stmt.output, related, stmt.entity_type, where, window, stmt.limit)
    return Outcome(ctx.make_variable(stmt, view, stmt.entity_type, source=source_var.source,
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


# Types whose firepit identity is their value: the same entity in every record, so
# fetching the records that hold a found entity completes its story (records, times).
VALUE_IDENTIFIED = {"user-account", "directory", "software", "url", "email-addr",
                    "autonomous-system", *ADDRESSES}


def _prefetch_window(ctx, source_var, window):
    """The FIND window, or the variable's records' time range widened by the offsets."""
    if window is not None:
        return window
    seen = ctx.entity_window(source_var.name)
    if seen is None:
        return None
    return (seen[0] + timedelta(seconds=ctx.config.timerange_start_offset),
            seen[1] + timedelta(seconds=ctx.config.timerange_stop_offset))


def _source(stmt, ctx, source_var):
    try:
        return ctx.sources.source_for(source_var.source)
    except DataSourceError as err:
        raise err.at(stmt.span, ctx.source_text)


def _prefetch_batch(stmt, ctx, source_var):
    return getattr(_source(stmt, ctx, source_var), "prefetch_batch", None)


def _identities(stmt, ctx, source_var) -> dict:
    """IDENTITY, less what the variable's source says cannot identify an entity."""
    return {**IDENTITY, **getattr(_source(stmt, ctx, source_var), "prefetch_identities", {})}


def _prefetch(stmt, ctx, source_var, window):
    """Ask the variable's data source for the records holding the entities' identifying
    values (or pointing at them), around their time; a source that cannot express the
    pattern leaves FIND to the stored records."""
    window = _prefetch_window(ctx, source_var, window)
    batch = _prefetch_batch(stmt, ctx, source_var)
    if window is None or not batch:
        return []
    bodies = _identity_patterns(stmt, ctx, source_var, batch)
    if not bodies:
        return [f"prefetch skipped: {source_var.name} has no identifying attribute"]
    return _fetch(stmt, ctx, source_var, bodies, window, stmt.entity_type)


def _prefetch_records_of(stmt, ctx, source_var, found_view, window):
    """Records holding the entities FIND found (value-identified types): counts and
    times of an address or an account then cover the whole window, as in v1."""
    window = _prefetch_window(ctx, source_var, window)
    batch = _prefetch_batch(stmt, ctx, source_var)
    if window is None or not batch:
        return []
    bodies = _value_patterns(ctx, stmt.entity_type, found_view, batch,
                             _identities(stmt, ctx, source_var))
    return _fetch(stmt, ctx, source_var, bodies, window, stmt.entity_type)


def _value_patterns(ctx, entity_type, view, batch, identities):
    for attributes in identities.get(entity_type, ()):
        values = [_distinct(ctx, view, a) for a in attributes]
        if all(values):
            break
    else:
        return []
    first = values[0]
    return [f"[{entity_type}:{attributes[0]} IN {stix_value(tuple(first[i:i + batch]))}]"
            for i in range(0, len(first), batch)]


def _fetch(stmt, ctx, source_var, bodies, window, entity_type):
    """Query the variable's source with each pattern and store what comes back."""
    native = []
    for body in bodies:
        try:
            result = ctx.sources.query(source_var.source, entity_type, body, window,
                                       progress=ctx.progress)
        except DataSourceError as err:
            if getattr(err, "code", None) in ("mapping_error", "not_implemented"):
                return native + [f"prefetch skipped: {err.message}"]  # the source can't say it
            raise err.at(stmt.span, ctx.source_text)
        ctx.store.ingest(f"prefetch-{uuid.uuid4().hex}", result.bundles)
        native.extend("prefetch: " + q for q in result.native_queries)
    return native


def _identity_patterns(stmt, ctx, source_var, batch):
    """Patterns for records holding the variable's entities (or, for references the result
    holds, pointing at them), `batch` values of the first identifying attribute at a time."""
    input_type = source_var.entity_type
    for attributes in _identities(stmt, ctx, source_var).get(input_type, ()):
        values = [_distinct(ctx, source_var.view, a) for a in attributes]
        if all(values):
            break
    else:
        return []
    links = links_for(stmt.entity_type, stmt.relation, input_type, stmt.reversed)
    refs = [ref for ref, direction in links if direction == "in" and ref.endswith("_ref")]
    first, rest = values[0], list(zip(attributes[1:], values[1:]))
    patterns = []
    for i in range(0, len(first), batch):
        chunk = first[i:i + batch]
        paths = [f"{input_type}:{attributes[0]}"] + [f"{stmt.entity_type}:{ref}.{attributes[0]}"
                                                    for ref in refs]
        held = " OR ".join(f"{path} IN {stix_value(tuple(chunk))}" for path in paths)
        extra = " AND ".join(f"{input_type}:{a} IN {stix_value(tuple(v))}" for a, v in rest)
        patterns.append(f"[({held}) AND {extra}]" if extra else f"[{held}]")
    return patterns


def _distinct(ctx, view, attribute):
    try:
        values = ctx.store.values(view, attribute)
    except StoreError:  # the variable has no such column
        return []
    return sorted({v for v in values if isinstance(v, (str, int, float))
                   and not isinstance(v, bool)}, key=lambda v: (str(type(v)), v))
