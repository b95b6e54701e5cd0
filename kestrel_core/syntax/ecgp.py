"""ECGP -> STIX pattern, and time ranges -> concrete windows.

The pattern is what every data source receives (EXPLAIN shows it).  firepit
ignores START/STOP, so the window is also returned on its own for the store
to apply (see `time_window`).
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Optional

from ..errors import KestrelSemanticError
from ..timestamps import format_timestamp
from . import ast

UNIT_SECONDS = {"DAY": 86400, "HOUR": 3600, "MINUTE": 60, "SECOND": 1}

# A constant result after simplification: the ECGP is always true / always false.
ALWAYS, NEVER = True, False


def stix_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def stix_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return stix_string(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return stix_float(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(stix_value(v) for v in value) + ")"
    if value is None:
        raise KestrelSemanticError("null cannot be compared in a STIX pattern")
    raise KestrelSemanticError(f"a value of type {type(value).__name__} cannot go into a pattern")


def like_regex(pattern: str) -> str:
    """STIX's LIKE (case-sensitive; % any run, _ one character, nothing else special) as
    a Python regular expression, to use with fullmatch and re.DOTALL."""
    return "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)


def stix_float(value: float) -> str:
    """A float as STIX writes it: digits and a point, no exponent (1e16 -> 10000000000000000.0)."""
    text = format(Decimal(repr(value)), "f")
    return text if "." in text else text + ".0"


# Words of the STIX pattern grammar (case-sensitive): a path step spelled so is quoted.
STIX_KEYWORDS = frozenset(
    "AND OR NOT FOLLOWEDBY LIKE MATCHES ISSUPERSET ISSUBSET EXISTS LAST IN START STOP "
    "SECONDS true false WITHIN REPEATS TIMES".split())


def stix_path(path: ast.AttrPath, entity_type: str) -> str:
    steps = ast.path_steps(path.attribute)
    quoted = [f"'{s[:-3]}'[*]" if s.endswith("[*]") and s[:-3] in STIX_KEYWORDS
              else f"'{s}'" if s in STIX_KEYWORDS else s for s in steps]
    return f"{path.entity_type or entity_type}:{'.'.join(quoted)}"


def render(node, entity_type: str, expand_in: bool = False) -> str:
    """The comparison expression (inside the brackets) for `node`; with `expand_in`,
    `a IN (x, y)` is written `(a = x OR a = y)` (`NOT IN`: `(a != x AND a != y)`) for
    translators that take no lists."""
    if isinstance(node, ast.Comparison):
        if isinstance(node.value, ast.VarAttr) or (
            isinstance(node.value, tuple) and any(isinstance(v, ast.VarAttr) for v in node.value)
        ):
            raise KestrelSemanticError("variable references must be resolved first").at(
                node.span, None)
        path = stix_path(node.path, entity_type)
        if node.op == "IS":  # STIX has no null: a value exists, or not
            return f"{'' if node.negated else 'NOT '}EXISTS {path}"
        try:
            if expand_in and node.op == "IN" and isinstance(node.value, tuple) and node.value:
                op, joiner = ("!=", " AND ") if node.negated else ("=", " OR ")
                return "(" + joiner.join(f"{path} {op} {stix_value(v)}"
                                         for v in node.value) + ")"
            value = stix_value(node.value)
        except KestrelSemanticError as err:
            raise err.at(node.span, None)
        return f"{path} {'NOT ' if node.negated else ''}{node.op} {value}"
    parts = []
    for operand in node.operands:
        text = render(operand, entity_type, expand_in)
        if node.op == "AND" and isinstance(operand, ast.BoolExpr) and operand.op == "OR":
            text = f"({text})"
        parts.append(text)
    return f" {node.op} ".join(parts)


def to_stix(where, entity_type: str, window: Optional[tuple] = None,
            expand_in: bool = False) -> str:
    """The STIX pattern of a GET/FIND: `[...]` plus START/STOP when a window is set.

    `where` None (or ALWAYS after simplification) matches every entity of the type.
    """
    if where is None or where is ALWAYS:
        body = f"{entity_type}:type = {stix_string(entity_type)}"
    elif where is NEVER:
        raise ValueError("a pattern that can never match has no STIX form")
    else:
        body = render(where, entity_type, expand_in)
    pattern = f"[{body}]"
    if window:
        start, stop = window
        pattern += f" START t'{stamp_text(start)}' STOP t'{stamp_text(stop)}'"
    return pattern


def stamp_text(moment) -> str:
    return moment if isinstance(moment, str) else format_timestamp(moment)


def time_window(timerange, now: Optional[datetime] = None):
    """(start, stop) of a time range: text for START/STOP as written, datetimes for LAST."""
    if timerange is None:
        return None
    if isinstance(timerange, ast.AbsoluteTime):
        return (timerange.start, timerange.stop)
    stop = now or datetime.now(timezone.utc)
    return (stop - timedelta(seconds=timerange.amount * UNIT_SECONDS[timerange.unit]), stop)


def substitute(node, values_of):
    """A copy of the ECGP with every `var.attr` replaced by `values_of(VarAttr)` (a tuple)."""
    if node is None:
        return None
    if isinstance(node, ast.BoolExpr):
        return dataclasses.replace(
            node, operands=tuple(substitute(o, values_of) for o in node.operands))
    value = node.value
    if isinstance(value, ast.VarAttr):
        value = tuple(values_of(value))
    elif isinstance(value, tuple):
        flat = []
        for item in value:
            flat.extend(values_of(item) if isinstance(item, ast.VarAttr) else [item])
        value = tuple(flat)
    else:
        return node
    return dataclasses.replace(node, value=_dedupe(value))


def _dedupe(values: tuple) -> tuple:
    seen, out = set(), []
    for v in values:
        key = (type(v).__name__, v)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return tuple(out)


def simplify(node):
    """Fold comparisons against empty lists: `x IN ()` is NEVER, `x NOT IN ()` ALWAYS.

    Returns an ECGP node, ALWAYS or NEVER.
    """
    if node is None:
        return ALWAYS
    if isinstance(node, ast.Comparison):
        if isinstance(node.value, tuple) and not node.value:
            return ALWAYS if node.negated else NEVER
        return node
    absorbing, neutral = (NEVER, ALWAYS) if node.op == "AND" else (ALWAYS, NEVER)
    operands = []
    for operand in node.operands:
        result = simplify(operand)
        if result is absorbing:
            return absorbing
        if result is not neutral:
            operands.append(result)
    if not operands:
        return neutral
    if len(operands) == 1:
        return operands[0]
    return dataclasses.replace(node, operands=tuple(operands))


def center_part(node, entity_type: str):
    """The ECGP with extended-subgraph comparisons (other entity types) taken as true.

    Records are matched against the whole ECGP by the source; this part then
    picks the center entities inside the matched records.
    """
    return relax(node, lambda c: c.path.entity_type in (None, entity_type))


def relax(node, keep):
    """The ECGP with the comparisons `keep` refuses taken as true: it matches at least
    what `node` matches (comparisons are negated only one by one), simplified."""
    if node is None or isinstance(node, bool):
        return node
    if isinstance(node, ast.Comparison):
        return node if keep(node) else ALWAYS
    return simplify(dataclasses.replace(
        node, operands=tuple(as_node(relax(o, keep)) for o in node.operands)))


def as_node(result):
    """simplify() accepts ALWAYS/NEVER only at the top; wrap them as neutral comparisons."""
    if result is ALWAYS:
        return ast.Comparison(ast.AttrPath(None, "id"), "IN", (), negated=True)
    if result is NEVER:
        return ast.Comparison(ast.AttrPath(None, "id"), "IN", ())
    return result
