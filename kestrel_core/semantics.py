"""Checks a statement against the symbol table and resolves what the text
leaves open: `var.attr` references become values, and the time range they
imply becomes a window.  Returns new values; the AST is never changed."""

from __future__ import annotations

import difflib
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
    if set(columns) <= {"id"}:
        return  # no data of this type stored yet: nothing to check against
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
