"""A WHERE and a time range resolved against the symbol table: values an operator
cannot use refused before any source is asked, `var.attr` references replaced by the
variable's values, and the window they imply."""

from __future__ import annotations

import ipaddress

from .. import regex
from ..errors import KestrelSemanticError
from ..syntax import ast
from ..syntax.ecgp import simplify, substitute, time_window
from ..timestamps import parse_timestamp, shifted
from .attributes import comparisons


def check_values(where, source):
    """Values an operator cannot use, refused before any data source is asked: a
    MATCHES that is no regular expression, an ISSUBSET/ISSUPERSET that is no IP network."""
    for comparison in comparisons(where):
        values = comparison.value if isinstance(comparison.value, tuple) else (comparison.value,)
        for value in values:
            if isinstance(value, ast.VarAttr):
                continue
            problem = _value_problem(comparison.op, value)
            if problem:
                raise KestrelSemanticError(problem).at(comparison.span, source)


def _value_problem(op, value):
    if op == "MATCHES":
        reason = regex.problem(value)
        if reason:
            return f"MATCHES needs a regular expression: {value!r} is not one ({reason})"
    elif op in ("ISSUBSET", "ISSUPERSET"):
        try:
            ipaddress.ip_network(value, strict=False)
        except (TypeError, ValueError):
            return f"{op} needs an IP address or network (CIDR), not {value!r}"
    return None


def resolve_where(where, timerange, variables, catalog, config, now):
    """(simplified ECGP or ALWAYS/NEVER, window) of a WHERE whose `var.attr` references
    name `variables` (name -> Variable).

    An explicit START/STOP or LAST wins; otherwise the referenced variables' records
    give the window, widened by the configured offsets.
    """
    refs = ast.var_attrs(where)
    resolved = where
    if refs:
        resolved = substitute(where, lambda ref: catalog.values(variables[ref.variable].view,
                                                                ref.attribute))
    window = time_window(timerange, now)
    if window is None and refs:
        ranges = [r for r in (catalog.time_range(variables[ref.variable].view) for ref in refs)
                  if r]
        if ranges:
            start = min(parse_timestamp(r[0]) for r in ranges)
            stop = max(parse_timestamp(r[1]) for r in ranges)
            window = (shifted(start, config.timerange_start_offset),
                      shifted(stop, config.timerange_stop_offset))
    return simplify(resolved), window
