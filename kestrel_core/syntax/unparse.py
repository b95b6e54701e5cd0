"""AST -> canonical Kestrel text (round-trip tests, EXPLAIN, INFO)."""

from __future__ import annotations

import json
import re

from . import ast


SYMBOLIC_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def python_string(value: str) -> str:
    """A Kestrel (Python-style) string literal that reads back as `value`.

    Characters that are not printable (NUL, other controls, line and paragraph
    separators) are written as escapes, so the text stays on one line and shows them.
    """
    return "'" + "".join(_escaped(c) for c in value) + "'"


def _escaped(char: str) -> str:
    if char in SYMBOLIC_ESCAPES:
        return SYMBOLIC_ESCAPES[char]
    if char.isprintable():
        return char
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def value_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return python_string(value)
    if isinstance(value, ast.VarAttr):
        return f"{value.variable}.{value.attribute}"
    if isinstance(value, tuple):
        return "(" + ", ".join(value_text(v) for v in value) + ")"
    return repr(value)


def ecgp_text(node) -> str:
    if isinstance(node, ast.SigmaRules):
        return f"SIGMA {value_text(node.path)}"
    if isinstance(node, ast.Comparison):
        path = node.path.attribute
        if node.path.entity_type:
            path = f"{node.path.entity_type}:{path}"
        if node.op == "IS":
            return f"{path} IS {'NOT ' if node.negated else ''}NULL"
        op = ("NOT " if node.negated else "") + node.op
        return f"{path} {op} {value_text(node.value)}"
    parts = []
    for operand in node.operands:
        text = ecgp_text(operand)
        if node.op == "AND" and isinstance(operand, ast.BoolExpr) and operand.op == "OR":
            text = f"({text})"
        parts.append(text)
    return f" {node.op} ".join(parts)


def timerange_text(timerange) -> str:
    if isinstance(timerange, ast.AbsoluteTime):
        return f"START {timerange.start} STOP {timerange.stop}"
    return f"LAST {timerange.amount} {timerange.unit}S"


def _tail(stmt) -> str:
    text = ""
    if stmt.where is not None:
        text += f" WHERE {ecgp_text(stmt.where)}"
    if stmt.timerange is not None:
        text += f" {timerange_text(stmt.timerange)}"
    if stmt.limit is not None:
        text += f" LIMIT {stmt.limit}"
    return text


def source_text(source: ast.Source) -> str:
    if source.kind == "variable" or re.fullmatch(r"[A-Za-z][\w+.\-]*://[^\s'\"]*", source.text):
        return source.text
    return python_string(source.text)


def expression_text(expr: ast.Expression) -> str:
    text = f"{expr.transform}({expr.input})" if expr.transform else expr.input
    if expr.where is not None:
        text += f" WHERE {ecgp_text(expr.where)}"
    if expr.attrs:
        text += " ATTR " + ", ".join(expr.attrs)
    if expr.sort_by:
        text += f" SORT BY {expr.sort_by} {'ASC' if expr.ascending else 'DESC'}"
    if expr.limit is not None:
        text += f" LIMIT {expr.limit}"
    if expr.offset is not None:
        text += f" OFFSET {expr.offset}"
    return text


def _body(stmt) -> str:
    if isinstance(stmt, ast.Get):
        source = f" FROM {source_text(stmt.source)}" if stmt.source else ""
        return f"GET {stmt.entity_type}{source}{_tail(stmt)}"
    if isinstance(stmt, ast.Find):
        by = " BY" if stmt.reversed else ""
        return f"FIND {stmt.entity_type} {stmt.relation.upper()}{by} {stmt.input}{_tail(stmt)}"
    if isinstance(stmt, ast.New):
        kind = f"{stmt.entity_type} " if stmt.entity_type else ""
        return f"NEW {kind}{json.dumps(list(stmt.data))}"
    if isinstance(stmt, ast.Load):
        kind = f" AS {stmt.entity_type}" if stmt.entity_type else ""
        return f"LOAD {python_string(stmt.path)}{kind}"
    if isinstance(stmt, ast.Save):
        return f"SAVE {stmt.input} TO {python_string(stmt.path)}"
    if isinstance(stmt, ast.Sort):
        return f"SORT {stmt.input} BY {stmt.attribute} {'ASC' if stmt.ascending else 'DESC'}"
    if isinstance(stmt, ast.Group):
        keys = [f"BIN({k.attribute}, {k.size}{' ' + k.unit + 'S' if k.unit else ''})"
                if isinstance(k, ast.Bin) else k for k in stmt.by]
        text = f"GROUP {stmt.input} BY {', '.join(keys)}"
        if stmt.aggregations:
            aggs = [f"{a.func}({a.attribute})" + (f" AS {a.alias}" if a.alias else "")
                    for a in stmt.aggregations]
            text += " WITH " + ", ".join(aggs)
        return text
    if isinstance(stmt, ast.Join):
        by = f" BY {stmt.left_attribute}, {stmt.right_attribute}" if stmt.left_attribute else ""
        return f"JOIN {stmt.left}, {stmt.right}{by}"
    if isinstance(stmt, ast.Apply):
        text = f"APPLY {stmt.uri} ON {', '.join(stmt.variables)}"
        if stmt.arguments:
            text += " WITH " + ", ".join(f"{k}={_arg_text(v)}" for k, v in stmt.arguments)
        return text
    if isinstance(stmt, ast.Disp):
        return f"DISP {expression_text(stmt.expression)}"
    if isinstance(stmt, ast.Info):
        return f"INFO {stmt.input}"
    if isinstance(stmt, ast.Describe):
        return f"DESCRIBE {stmt.input}.{stmt.attribute}"
    if isinstance(stmt, ast.Explain):
        return f"EXPLAIN {stmt.input}"
    if isinstance(stmt, ast.Assign):
        return expression_text(stmt.expression)
    if isinstance(stmt, ast.Merge):
        return " + ".join(stmt.variables)
    raise TypeError(f"cannot unparse {type(stmt).__name__}")


def _arg_text(value) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    return value_text(value)


def unparse(stmt) -> str:
    """One statement as canonical text; results always named (`_ = GET ...` for anonymous)."""
    body = _body(stmt)
    if stmt.output is not None:
        return f"{stmt.output} = {body}"
    return body
