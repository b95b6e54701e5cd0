"""Attribute paths checked against what the store holds, and notes on attributes that
neither STIX nor the data know (the likely reason of an empty result)."""

from __future__ import annotations

import difflib

from ..stix import STIX_PROPERTIES
from ..syntax import ast
from ..syntax.ast import path_steps


def attribute_problem(attribute, columns, entity_type, catalog, via=None):
    """None if firepit can read `attribute` from entities with `columns` (of `entity_type`),
    else (why not, a close known name or None).

    A path is read as firepit reads it: a (flattened) column, e.g. `name` or
    `hashes.'SHA-256'` as stored from a STIX bundle; or a reference step followed by a path
    of the referenced type: `parent_ref.name` (a `_ref` column of the variable),
    `opened_connection_refs[*].dst_ref.value` (a `_refs` list, kept in firepit's __reflist),
    the referenced types being firepit's (`catalog.ref_targets`: a reference firepit cannot
    type, such as `x_refs`, leads nowhere; one that may point to several types needs one of
    them).  Nothing can be read below a plain column: `name.length`, or `hashes.'SHA-256'`
    when `hashes` is one JSON column (NEW/LOAD data), which firepit would read as a column
    named "hashes.'SHA-256'".  A path through a reference to a type the store has no table
    for is refused (firepit could not join it); a type whose table holds only `id` (an
    empty GET made it) accepts any attribute: there is nothing to check against.
    """
    known = list(columns)
    if set(known) <= {"id"} or attribute == "type":
        return None  # no data of this type stored: nothing to check against; STIX's type
    if attribute.replace("[*]", "") in known or catalog.stored_column(
            entity_type, attribute.replace("[*]", "")) in known:
        return None  # a column, or a path the store keeps under another name
    steps = path_steps(attribute)
    name = steps[0].replace("[*]", "")
    listed = ", ".join(sorted(c for c in known if c != "id"))
    reason = (f"{via} refers to {entity_type}, whose attributes are: {listed}" if via
              else f"attributes: {listed}")
    close = (difflib.get_close_matches(attribute, sorted(known), n=1)
             or difflib.get_close_matches(name, sorted(known), n=1) or [None])[0]
    if len(steps) == 1 or not name.endswith(("_ref", "_refs")):
        if len(steps) > 1 and name in known:
            return (f"{name} is a plain attribute, not a reference: nothing below it "
                    "can be read", None)
        return reason, close
    if name.endswith("_ref") and name not in known:
        return reason, close
    targets = catalog.ref_targets(entity_type, name)
    if not targets:
        return f"no entity type is known for the reference {name}", None
    problems = []
    for kind in targets:  # dst_ref: ipv4-addr or ipv6-addr; either may hold the rest
        kind_columns = list(catalog.type_columns(kind))
        if not kind_columns:  # no table: nothing to join
            problems.append((f"{name} refers to {kind}, and no {kind} entities are stored",
                             None))
            continue
        problem = attribute_problem(".".join(steps[1:]), kind_columns, kind, catalog, via=name)
        if problem is None:
            return None
        problems.append(problem)
    return problems[0]


# Properties every STIX cyber-observable may have.
COMMON_PROPERTIES = {"id", "type", "spec_version", "object_marking_refs", "granular_markings",
                     "defanged", "extensions"}


def unknown_attribute(attribute, entity_type, catalog):
    """None if `attribute` (a path) may be an attribute of `entity_type` entities in a data
    source: a STIX property of the type (or, through a reference, of the referenced type),
    an `x_` custom one, or one the stored data has; else (why not, the closest known one).
    Types this vocabulary does not describe (extensions such as x-oca-event) are the
    data's to define: nothing is refused there."""
    vocabulary = STIX_PROPERTIES.get(entity_type)
    if vocabulary is None:
        return None
    stored = set(catalog.type_columns(entity_type))
    if attribute.replace("[*]", "") in stored:
        return None  # a flattened column as stored: hashes.'SHA-256'
    steps = path_steps(attribute)
    head = steps[0].replace("[*]", "")
    known = set(vocabulary.split()) | COMMON_PROPERTIES | stored
    if head in known or head.startswith("x_"):
        if len(steps) == 1 or not head.endswith(("_ref", "_refs")):
            return None
        rest = ".".join(steps[1:])
        targets = catalog.ref_targets(entity_type, head)
        problems = [unknown_attribute(rest, target, catalog) for target in targets]
        if not targets or None in problems:
            return None
        return problems[0]
    close = difflib.get_close_matches(head, sorted(known - {"id", "type"}), n=1)
    return (f'{entity_type} has no "{head}" in STIX or in the stored data; custom attributes '
            "start with x_", close[0] if close else None)


def attribute_notes(where, entity_type, catalog) -> list:
    """Notes on WHERE attributes STIX knows that no stored entity has: a source may simply
    not send them (the likely reason of an empty result, where a typo is an error)."""
    notes = []
    for comparison in comparisons(where):
        kind = comparison.path.entity_type or entity_type
        head = comparison.path.attribute.split(".")[0].replace("[*]", "")
        stored = set(catalog.type_columns(kind))
        stix = STIX_PROPERTIES.get(kind, "").split()
        if stored - {"id"} and head not in stored and head in stix:
            notes.append(f'no stored {kind} has "{head}": the data source may not send it')
    return list(dict.fromkeys(notes))


def comparisons(node):
    """The comparisons written in an ECGP (None: none), in source order; not those of
    Sigma rules."""
    if isinstance(node, ast.RuleCondition):
        return
    if isinstance(node, ast.BoolExpr):
        for operand in node.operands:
            yield from comparisons(operand)
    elif isinstance(node, ast.Comparison):
        yield node
