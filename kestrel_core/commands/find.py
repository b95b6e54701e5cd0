"""FIND: entities related to a variable's entities through STIX references.

`FIND R rel V` asks for R entities that stand in `rel` to V's entities
(R rel V); `FIND R rel BY V` for those that V's entities stand in `rel` to
(V rel R).  RELATIONS says, for each (X, rel, Y), which references carry
the relation and whether X or Y holds them.
"""

from __future__ import annotations

from datetime import timedelta

from ..errors import DataSourceError, UnsupportedRelation
from ..semantics import check_entity_type
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
    if ctx.config.prefetch_find and source_var.source:
        native = _prefetch(stmt, ctx, source_var, window)
    related = ctx.new_view(stmt.output)
    ctx.store.related(related, stmt.entity_type, source_var.view, links)
    view = narrow(ctx, stmt.output, related, stmt.entity_type, where, window, stmt.limit)
    return Outcome(ctx.make_variable(stmt, view, stmt.entity_type, source=source_var.source,
                                     native_queries=tuple(native)))


def _prefetch(stmt, ctx, source_var, window):
    """Ask the variable's data source for records around its entities' time."""
    if window is None:
        seen = ctx.entity_window(source_var.name)
        if seen is None:
            return []
        window = (seen[0] + timedelta(seconds=ctx.config.timerange_start_offset),
                  seen[1] + timedelta(seconds=ctx.config.timerange_stop_offset))
    body = f"[{stmt.entity_type}:type = '{stmt.entity_type}']"
    try:
        result = ctx.sources.query(source_var.source, stmt.entity_type, body, window,
                                   progress=ctx.progress)
    except DataSourceError as err:
        raise err.at(stmt.span, ctx.source_text)
    ctx.store.ingest(f"prefetch-{ctx.symtable.counter}-{stmt.output}", result.bundles)
    return ["prefetch: " + q for q in result.native_queries]
