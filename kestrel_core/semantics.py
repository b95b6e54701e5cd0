"""Checks a statement against the symbol table and resolves what the text
leaves open: `var.attr` references become values, and the time range they
imply becomes a window.  Returns new values; the AST is never changed."""

from __future__ import annotations

import difflib
import ipaddress
import re
from datetime import timedelta

from .errors import KestrelSemanticError, UnknownAttribute, UnknownEntityType, VariableNotFound
from .references import path_steps, ref_targets
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


def check_attribute(attribute, columns, variable, stmt, source, entity_type=None,
                    type_columns=None, span=None):
    """`attribute` is a column of the variable (`columns`, entities of `entity_type`) or a
    path through its references to a column of the referenced type (`type_columns(type)`:
    the store's columns of a type); UnknownAttribute otherwise, at `span` (the attribute's,
    when the AST has one) or else at the statement.  See `attribute_problem`."""
    problem = attribute_problem(attribute, columns, entity_type, type_columns)
    if problem is None:
        return
    reason, close = problem
    where = span if span is not None and span.line else getattr(stmt, "span", None)
    raise UnknownAttribute(
        f'"{attribute}" is not an attribute of {variable} ({reason})',
        hint=f'did you mean "{close}"?' if close else None,
    ).at(where, source)


def attribute_problem(attribute, columns, entity_type, type_columns, via=None):
    """None if firepit can read `attribute` from entities with `columns` (of `entity_type`),
    else (why not, a close known name or None).

    A path is read as firepit reads it: a (flattened) column, e.g. `name` or
    `hashes.'SHA-256'` as stored from a STIX bundle; or a reference step followed by a path
    of the referenced type: `parent_ref.name` (a `_ref` column of the variable),
    `opened_connection_refs[*].dst_ref.value` (a `_refs` list, kept in firepit's __reflist),
    the referenced types being firepit's (a reference firepit cannot type, such as
    `x_refs`, leads nowhere; one that may point to several types needs one of them).  Nothing can be read below a plain column: `name.length`,
    or `hashes.'SHA-256'` when `hashes` is one JSON column (NEW/LOAD data), which firepit
    would read as a column named "hashes.'SHA-256'".  A path through a reference to a
    type the store has no table for is refused (firepit could not join it); a type whose
    table holds only `id` (an empty GET made it) accepts any attribute: there is nothing
    to check against.
    """
    known = list(columns)
    if set(known) <= {"id"} or attribute == "type":
        return None  # no data of this type stored: nothing to check against; STIX's type
    if attribute.replace("[*]", "") in known:
        return None
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
    targets = ref_targets(entity_type, name)
    if not targets:
        return f"no entity type is known for the reference {name}", None
    problems = []
    for kind in targets:  # dst_ref: ipv4-addr or ipv6-addr; either may hold the rest
        kind_columns = list(type_columns(kind)) if type_columns else []
        if not kind_columns:  # no table: nothing to join
            problems.append((f"{name} refers to {kind}, and no {kind} entities are stored",
                             None))
            continue
        problem = attribute_problem(".".join(steps[1:]), kind_columns, kind, type_columns,
                                    via=name)
        if problem is None:
            return None
        problems.append(problem)
    return problems[0]


def check_where(where, columns, variable, entity_type, type_columns, stmt, source):
    """A WHERE on a variable (`x = procs WHERE ...`, `GET ... FROM procs WHERE ...`) names
    the variable's attributes.  A comparison about another entity type (`ipv4-addr:value`
    in a WHERE on processes) is checked against that type's stored columns, if any."""
    for comparison in _comparisons(where):
        path = comparison.path
        kind = path.entity_type or entity_type
        if kind == entity_type:
            check_attribute(path.attribute, columns, variable, stmt, source, kind,
                            type_columns, path.span)
        else:
            check_attribute(path.attribute, type_columns(kind), kind, stmt, source, kind,
                            type_columns, path.span)


def check_values(where, source):
    """Values an operator cannot use, refused before any data source is asked: a
    MATCHES that is no regular expression, an ISSUBSET/ISSUPERSET that is no IP network."""
    for comparison in _comparisons(where):
        values = comparison.value if isinstance(comparison.value, tuple) else (comparison.value,)
        for value in values:
            if isinstance(value, ast.VarAttr):
                continue
            problem = _value_problem(comparison.op, value)
            if problem:
                raise KestrelSemanticError(problem).at(comparison.span, source)


def _value_problem(op, value):
    if op == "MATCHES":
        try:
            re.compile(value)
        except (TypeError, re.error, OverflowError, RecursionError) as err:
            return f"MATCHES needs a regular expression: {value!r} is not one ({err})"
    elif op in ("ISSUBSET", "ISSUPERSET"):
        try:
            ipaddress.ip_network(value, strict=False)
        except (TypeError, ValueError):
            return f"{op} needs an IP address or network (CIDR), not {value!r}"
    return None


def check_references(ctx, where):
    """Each `var.attr` of a WHERE names an attribute of var, before its values are read
    (commands.narrow.resolve)."""
    store = ctx.store
    for ref in ast.var_attrs(where):
        variable = ctx.var(ref.variable)
        check_attribute(ref.attribute, store.columns(variable.view), ref.variable, None,
                        ctx.source_text, variable.entity_type, store.type_columns, ref.span)


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


# STIX 2.1 properties of the common cyber-observables (custom ones start with x_).
STIX_PROPERTIES = {
    "process": "is_hidden pid created_time cwd command_line environment_variables "
               "opened_connection_refs creator_user_ref image_ref parent_ref child_refs "
               "name created binary_ref arguments extensions",
    "file": "hashes size name name_enc magic_number_hex mime_type ctime mtime atime "
            "parent_directory_ref contains_refs content_ref extensions created modified accessed",
    "directory": "path path_enc ctime mtime atime contains_refs created modified accessed",
    "network-traffic": "start end is_active src_ref dst_ref src_port dst_port protocols "
                       "src_byte_count dst_byte_count src_packets dst_packets ipfix "
                       "src_payload_ref dst_payload_ref encapsulates_refs encapsulated_by_ref "
                       "extensions",
    "user-account": "user_id credential account_login account_type display_name is_service_account "
                    "is_privileged can_escalate_privs is_disabled account_created account_expires "
                    "credential_last_changed account_first_login account_last_login extensions",
    "ipv4-addr": "value resolves_to_refs belongs_to_refs",
    "ipv6-addr": "value resolves_to_refs belongs_to_refs",
    "mac-addr": "value",
    "domain-name": "value resolves_to_refs",
    "url": "value",
    "email-addr": "value display_name belongs_to_ref",
}


def attribute_notes(where, entity_type, columns_of) -> list:
    """Warnings for ECGP attributes that neither STIX nor the stored data know.

    STIX allows custom attributes and a source may simply lack some, so this is a
    note on an empty result, not an error: usually it is a typo.
    """
    notes = []
    for comparison in _comparisons(where):
        kind = comparison.path.entity_type or entity_type
        head = comparison.path.attribute.split(".")[0].replace("[*]", "")
        known = set(columns_of(kind)) | set(STIX_PROPERTIES.get(kind, "").split())
        if known and head not in known and not head.startswith("x_"):
            close = difflib.get_close_matches(head, sorted(known), n=1)
            hint = f'; did you mean "{close[0]}"?' if close else ""
            notes.append(f'{kind} has no attribute "{head}" in STIX or in the stored data{hint}')
    return list(dict.fromkeys(notes))


def _comparisons(node):
    if isinstance(node, ast.BoolExpr):
        for operand in node.operands:
            yield from _comparisons(operand)
    elif isinstance(node, ast.Comparison):
        yield node
