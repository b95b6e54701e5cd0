"""Checks a statement against the symbol table and resolves what the text
leaves open: `var.attr` references become values, and the time range they
imply becomes a window.  Returns new values; the AST is never changed."""

from __future__ import annotations

from datetime import timedelta

from .errors import KestrelSemanticError, UnknownAttribute, UnknownEntityType, VariableNotFound
from .syntax import ast
from .syntax.ecgp import substitute, time_window

# STIX 2.0/2.1 cyber-observable types, plus the OCA/IBM extensions data sources send.
KNOWN_ENTITY_TYPES = {
    "artifact", "autonomous-system", "directory", "domain-name", "email-addr",
    "email-message", "file", "ipv4-addr", "ipv6-addr", "mac-addr", "mutex",
    "network-traffic", "process", "software", "url", "user-account",
    "windows-registry-key", "x509-certificate",
    "x-oca-asset", "x-oca-event", "x-ibm-finding", "x-ecs-process", "x-cbcloud", "x-qradar",
}


def check_variables(stmt, symtable, source):
    """Every variable the statement reads exists (including `var.attr` references)."""
    names = list(stmt.inputs)
    for ref in ast.var_attrs(statement_where(stmt)):
        names.append(ref.variable)
    for name in names:
        if name not in symtable:
            defined = ", ".join(sorted(symtable)) or "none yet"
            raise VariableNotFound(f'variable "{name}" is not defined (defined: {defined})').at(
                stmt.span, source)


def check_entity_type(entity_type, stmt, source, store_types=()):
    if entity_type not in KNOWN_ENTITY_TYPES and entity_type not in store_types:
        if not entity_type.startswith("x-"):
            raise UnknownEntityType(
                f'unknown entity type "{entity_type}"',
                hint="entity types are STIX cyber-observables such as process, file, "
                     "network-traffic, ipv4-addr, user-account, or x-... extensions",
            ).at(stmt.span, source)


def check_attribute(attribute, columns, variable, stmt, source):
    """`attribute` is a column of the variable (or a ref path through one)."""
    head = attribute.split(".")[0].replace("[*]", "")
    if attribute in columns or head in columns or head.endswith("_refs"):
        return
    known = ", ".join(sorted(c for c in columns if c != "id")) or "none"
    raise UnknownAttribute(
        f'"{attribute}" is not an attribute of {variable} (attributes: {known})'
    ).at(stmt.span, source)


def resolve_where(where, entity_window, lookup_values, config, timerange, now=None):
    """(ECGP with references expanded, window) for GET/FIND/WHERE.

    An explicit START/STOP or LAST wins; otherwise referenced variables'
    records give the window, widened by the configured offsets.
    """
    refs = ast.var_attrs(where)
    resolved = substitute(where, lookup_values) if refs else where
    window = time_window(timerange, now)
    if window is None and refs:
        ranges = [r for r in (entity_window(ref.variable) for ref in refs) if r]
        if ranges:
            start = min(r[0] for r in ranges) + timedelta(seconds=config.timerange_start_offset)
            stop = max(r[1] for r in ranges) + timedelta(seconds=config.timerange_stop_offset)
            window = (start, stop)
    return resolved, window


def require(condition, message, stmt, source, error=KestrelSemanticError):
    if not condition:
        raise error(message).at(stmt.span, source)


def statement_where(stmt):
    """The ECGP of a GET/FIND, or of an expression's WHERE; None if there is none."""
    expression = getattr(stmt, "expression", None)
    return expression.where if expression is not None else getattr(stmt, "where", None)


def attribute_notes(where, entity_type, columns_of) -> list:
    """Warnings for ECGP attributes no stored entity of their type has.

    STIX allows them and a source may simply lack them, so this is a note on
    the result, not an error: usually it is a typo behind an empty variable.
    """
    notes = []
    for comparison in _comparisons(where):
        kind = comparison.path.entity_type or entity_type
        columns = columns_of(kind)
        head = comparison.path.attribute.split(".")[0].replace("[*]", "")
        if columns and head not in columns and not head.endswith("_refs"):
            known = ", ".join(sorted(c for c in columns if c != "id"))
            notes.append(f'no {kind} in the store has the attribute "{head}" (known: {known})')
    return list(dict.fromkeys(notes))


def _comparisons(node):
    if isinstance(node, ast.BoolExpr):
        for operand in node.operands:
            yield from _comparisons(operand)
    elif isinstance(node, ast.Comparison):
        yield node
