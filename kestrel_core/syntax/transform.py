"""Parse tree -> AST.  Pure: no store, no I/O, no symbol table.

Checks that need only the text of one statement (a clause given twice,
START after STOP, a reserved word used as a variable) are made here, with
the position of the offending part.
"""

from __future__ import annotations

import dataclasses
import re
from typing import NamedTuple

from lark import Token, Transformer, v_args

from ..errors import KestrelSyntaxError
from . import ast
from .ecgp import UNIT_SECONDS
from .literals import decode_int, decode_number, decode_string, span_of, strip_timestamp

ANONYMOUS = "_"

# LAST n UNIT may reach back at most this far (datetime arithmetic must stay in range).
MAX_LAST_SECONDS = 1000 * 366 * 86400


class ToAst(Transformer):
    """Builds `ast` nodes; rules are named as in kestrel.lark."""

    def __init__(self, source: str, is_variable_name):
        super().__init__()
        self.source = source
        self.is_variable_name = is_variable_name  # the grammar's VARIABLE, for bare words

    def _error(self, message, item, **kwargs):
        return KestrelSyntaxError(message, **kwargs).at(span_of(item), self.source)

    # ------------------------------------------------------------ huntflow

    def start(self, statements):
        return list(statements)

    @v_args(meta=True)
    def assignment(self, meta, children):
        name, body = children
        output = str(name)
        if isinstance(body, ast.Expression):
            stmt = ast.Assign(output_var=output, expression=body)
        elif isinstance(body, tuple) and body and body[0] == "merge":
            stmt = ast.Merge(output_var=output, variables=body[1])
        else:
            stmt = body(output)
        return _with_span(stmt, meta)

    @v_args(meta=True)
    def anonymous(self, meta, children):
        return _with_span(children[0](ANONYMOUS), meta)

    # ------------------------------------------------------------ commands
    # Result-producing commands return a function of the output name,
    # applied by `assignment` or `anonymous`.

    def get(self, children):
        entity_type, rest = str(children[0]), children[1:]
        source = None
        if rest and isinstance(rest[0], ast.Source):
            source, rest = rest[0], rest[1:]
        elif rest and isinstance(rest[0], _PathText):
            source, rest = ast.Source("uri", str(rest[0]), rest[0].span), rest[1:]
        tail = _tail_clauses(rest)
        return lambda out: ast.Get(output_var=out, entity_type=entity_type, source=source, **tail)

    def find(self, children):
        entity_type, relation = str(children[0]), str(children[1]).lower()
        rest = children[2:]
        reversed_ = bool(rest) and rest[0] == "reversed"
        if reversed_:
            rest = rest[1:]
        input_var, tail = str(rest[0]), _tail_clauses(rest[1:])
        return lambda out: ast.Find(output_var=out, entity_type=entity_type, relation=relation,
                                    reversed=reversed_, input=input_var, **tail)

    def reversed(self, _children):
        return "reversed"

    @v_args(meta=True)
    def new(self, meta, children):
        entity_type = str(children[0]) if len(children) == 2 else None
        data = children[-1]
        if not data:
            raise self._error("NEW needs at least one entity", meta)
        return lambda out: ast.New(output_var=out, entity_type=entity_type, data=tuple(data))

    def load(self, children):
        path = str(children[0])
        entity_type = str(children[1]) if len(children) > 1 else None
        return lambda out: ast.Load(output_var=out, path=path, entity_type=entity_type)

    @v_args(meta=True)
    def save(self, meta, children):
        return _with_span(ast.Save(input=str(children[0]), path=str(children[1])), meta)

    def sort(self, children):
        input_var, attribute = str(children[0]), attribute_text(children[1])
        ascending = len(children) < 3 or str(children[2]).upper() == "ASC"
        return lambda out: ast.Sort(output_var=out, input=input_var, attribute=attribute,
                                    ascending=ascending)

    def group(self, children):
        input_var, rest = str(children[0]), children[1:]
        by = tuple(attribute_text(c) if isinstance(c, Token) else c for c in rest
                   if not isinstance(c, ast.Aggregation))
        aggregations = tuple(c for c in rest if isinstance(c, ast.Aggregation))
        return lambda out: ast.Group(output_var=out, input=input_var, by=by,
                                     aggregations=aggregations)

    def bin(self, children):
        unit = _time_unit(children[2]) if len(children) > 2 else None
        return ast.Bin(attribute_text(children[0]), decode_int(children[1], "a BIN size", 1),
                       unit)

    def aggregation(self, children):
        func, attribute = str(children[0]).upper(), attribute_text(children[1])
        alias = str(children[2]) if len(children) > 2 else None
        return ast.Aggregation(func, attribute, alias)

    def join(self, children):
        left, right = str(children[0]), str(children[1])
        left_attr = attribute_text(children[2]) if len(children) > 2 else None
        right_attr = attribute_text(children[3]) if len(children) > 3 else None
        return lambda out: ast.Join(output_var=out, left=left, right=right,
                                    left_attribute=left_attr, right_attribute=right_attr)

    @v_args(meta=True)
    def apply(self, meta, children):
        uri = str(children[0])
        variables = tuple(str(c) for c in children[1:] if isinstance(c, Token))
        arguments = tuple(c for c in children[1:] if isinstance(c, tuple))
        names = [name for name, _ in arguments]
        for name in set(names):
            if names.count(name) > 1:
                raise self._error(f'argument "{name}" is given twice', meta)
        return _with_span(ast.Apply(uri=uri, variables=variables, arguments=arguments), meta)

    def argument(self, children):
        return (str(children[0]), children[1])

    def bare_word(self, children):
        """A word; `name.attr` whose name could be a variable may refer to its attribute
        (the check stage decides: a defined variable's values, else the word as text)."""
        token = children[0]
        variable, dot, attribute = str(token).partition(".")
        if dot and _ATTRIBUTE.fullmatch(attribute) and self.is_variable_name(variable):
            return ast.VarAttr(variable, attribute, span_of(token))
        return str(token)

    def arg_list(self, children):
        return _flatten(children)

    @v_args(meta=True)
    def disp(self, meta, children):
        return _with_span(ast.Disp(expression=children[0]), meta)

    @v_args(meta=True)
    def info(self, meta, children):
        return _with_span(ast.Info(input=str(children[0])), meta)

    @v_args(meta=True)
    def explain(self, meta, children):
        return _with_span(ast.Explain(input=str(children[0])), meta)

    @v_args(meta=True)
    def describe(self, meta, children):
        reference = self.var_attr(children)
        return _with_span(ast.Describe(input=reference.variable,
                                       attribute=reference.attribute), meta)

    def merge(self, children):
        return ("merge", tuple(str(c) for c in children))

    # ------------------------------------------------------------ expressions

    @v_args(meta=True)
    def expression(self, meta, children):
        head, clauses = children[0], children[1:]
        if isinstance(head, tuple):
            transform, input_var = head
        else:
            transform, input_var = None, str(head)
        fields = {}
        for clause in clauses:
            if clause.name in fields:
                raise self._error(f"{clause.name.upper()} is given twice", clause.meta)
            fields[clause.name] = clause.value
        if "offset" in fields and "limit" not in fields:
            fields["limit"] = None
        sort_by, ascending = fields.pop("sort", (None, True))
        return ast.Expression(input=input_var, transform=transform, sort_by=sort_by,
                              ascending=ascending, span=span_of(meta), **fields)

    def transformed(self, children):
        return (str(children[0]).upper(), str(children[1]))

    @v_args(meta=True)
    def where_clause(self, meta, children):
        return Clause("where", children[0], meta)

    @v_args(meta=True)
    def attr_clause(self, meta, children):
        return Clause("attrs", children[0], meta)

    @v_args(meta=True)
    def sort_clause(self, meta, children):
        ascending = len(children) < 2 or str(children[1]).upper() == "ASC"
        return Clause("sort", (attribute_text(children[0]), ascending), meta)

    @v_args(meta=True)
    def limit_clause(self, meta, children):
        return Clause("limit", decode_int(children[0], "LIMIT"), meta)

    @v_args(meta=True)
    def offset_clause(self, meta, children):
        return Clause("offset", decode_int(children[0], "OFFSET"), meta)

    def attribute_list(self, children):
        return tuple(attribute_text(c) for c in children)

    # ------------------------------------------------------------ sources and paths

    @v_args(meta=True)
    def uri(self, meta, children):
        return ast.Source("uri", str(children[0]), span_of(meta))

    @v_args(meta=True)
    def variable_source(self, meta, children):
        return ast.Source("variable", str(children[0]), span_of(meta))

    @v_args(meta=True)
    def path(self, meta, children):
        text = str(children[0])
        if not text:
            raise self._error("empty path", meta)
        # A GET source is a Source; LOAD/SAVE take the text (see `get` and `load`).
        return _PathText(text, span_of(meta))

    # ------------------------------------------------------------ ECGP

    @v_args(meta=True)
    def or_(self, meta, children):
        return _bool("OR", children, meta)

    @v_args(meta=True)
    def and_(self, meta, children):
        return _bool("AND", children, meta)

    @v_args(meta=True)
    def compare(self, meta, children):
        path_token, (op, negated), value = children
        path = _attr_path(path_token)
        if isinstance(value, tuple) and op in ("=", "!="):
            not_in = "NOT IN" if negated != (op == "!=") else "IN"
            raise self._error('a list should be paired with the operator "IN"', meta,
                              hint=f"write {path_token} {not_in} (...): true when it equals "
                                   f"{'none' if not_in == 'NOT IN' else 'any'} of the values")
        if op == "IN" and not isinstance(value, (tuple, ast.VarAttr)):
            raise self._error('the operator "IN" should be paired with a list, not a single '
                              "literal", meta, hint=f"write {path_token} = ... or {path_token} "
                                                    "IN (...)")
        if isinstance(value, ast.VarAttr) and op in ("=", "!="):
            # `pid = procs.pid` means any of procs' pids
            op, negated = "IN", negated != (op == "!=")
        if op in ("LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET") and not isinstance(value, str):
            raise self._error(f"{op} needs a quoted string", meta)
        if op in (">", ">=", "<", "<=") and isinstance(value, (tuple, ast.VarAttr)):
            raise self._error(f"{op} needs a single value, not a list", meta)
        if op in (">", ">=", "<", "<=") and (value is None or isinstance(value, bool)):
            word = "null" if value is None else str(value).lower()
            raise self._error(f"{op} needs a number or a string, not {word}", meta)
        return ast.Comparison(path, op, value, negated, span_of(meta))

    @v_args(meta=True)
    def null_test(self, meta, children):
        """`x IS NULL` (no value), `x IS NOT NULL` (a value): op IS, negated for NOT."""
        return ast.Comparison(_attr_path(children[0]), "IS", None, len(children) == 3,
                              span_of(meta))

    @v_args(meta=True)
    def sigma_rules(self, meta, children):
        return ast.SigmaRules(children[0], span_of(meta))

    def operator(self, children):
        negated = len(children) == 2
        op = str(children[-1]).upper()
        return ("=" if op == "==" else op, negated)

    def value_list(self, children):
        return _flatten(children)

    def var_attr(self, children):
        token = children[0]
        variable, _, attribute = str(token).partition(".")
        return ast.VarAttr(variable, attribute_text(attribute), span_of(token))

    def string(self, children):
        return decode_string(children[0])

    raw_string = string

    def json_string(self, children):
        return decode_string(children[0], json_escapes=True)

    def number(self, children):
        return decode_number(children[0])

    def true(self, _children):
        return True

    def false(self, _children):
        return False

    def null(self, _children):
        return None

    # ------------------------------------------------------------ time

    @v_args(meta=True)
    def absolute_time(self, meta, children):
        start, stop = (strip_timestamp(t) for t in children)
        timerange = ast.AbsoluteTime(start, stop, span_of(meta))
        try:
            if timerange.start_dt >= timerange.stop_dt:
                raise self._error("START must be before STOP", meta)
        except ValueError as err:
            raise self._error(f"invalid timestamp: {err}", meta) from None
        return timerange

    @v_args(meta=True)
    def relative_time(self, meta, children):
        amount, unit = decode_int(children[0], "LAST"), _time_unit(children[1])
        if amount <= 0:
            raise self._error("LAST needs a positive number", meta)
        if amount * UNIT_SECONDS[unit] > MAX_LAST_SECONDS:
            raise self._error("LAST reaches back at most 1000 years", meta)
        return ast.RelativeTime(amount, unit, span_of(meta))

    # ------------------------------------------------------------ JSON for NEW

    def json_array(self, children):
        return list(children)

    def json_object(self, children):
        return dict(children)

    def json_pair(self, children):
        return (decode_string(children[0], json_escapes=True), children[1])

    def __default__(self, data, children, meta):
        raise AssertionError(f"grammar rule without AST mapping: {data}")


class Clause(NamedTuple):
    """WHERE/ATTR/SORT BY/LIMIT/OFFSET before they land in a statement."""

    name: str
    value: object
    meta: object


def _tail_clauses(items) -> dict:
    """GET/FIND's optional WHERE, time range and LIMIT as keyword arguments."""
    tail = {}
    for item in items:
        if isinstance(item, (ast.AbsoluteTime, ast.RelativeTime)):
            tail["timerange"] = item
        else:
            tail[item.name] = item.value
    return tail


class _PathText(str):
    """A path's text that remembers its span (GET turns it into a Source)."""

    def __new__(cls, text, span):
        obj = super().__new__(cls, text)
        obj.span = span
        return obj


def attribute_text(token) -> str:
    """An attribute path in canonical form: a step is quoted exactly when it is not a
    plain name (`hashes.SHA-256` and `hashes.'SHA-256'` are both `hashes.'SHA-256'`,
    `hashes.'MD5'` is `hashes.MD5`), as STIX patterns and firepit's columns write it."""
    steps = ast.path_steps(str(token))
    out = []
    for step in steps:
        star = step.endswith("[*]")
        name = step[:-3] if star else step
        name = name.strip("'")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            name = f"'{name}'"
        out.append(name + ("[*]" if star else ""))
    return ".".join(out)


def _time_unit(token) -> str:
    text = str(token).upper()
    return {"D": "DAY", "H": "HOUR", "M": "MINUTE", "S": "SECOND"}.get(text, text.rstrip("S"))


def _bool(op, children, meta):
    operands = []
    for child in children:
        if isinstance(child, ast.BoolExpr) and child.op == op:
            operands.extend(child.operands)
        else:
            operands.append(child)
    return ast.BoolExpr(op, tuple(operands), span_of(meta))


def _attr_path(token) -> ast.AttrPath:
    entity_type, _, attribute = str(token).rpartition(":")
    return ast.AttrPath(entity_type or None, attribute_text(attribute), span_of(token))


def _flatten(items) -> tuple:
    """Nested lists are flattened: (a, (b, c)) is (a, b, c)."""
    flat = []
    for item in items:
        if isinstance(item, tuple):
            flat.extend(item)
        else:
            flat.append(item)
    return tuple(flat)


_ATTRIBUTE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


def _with_span(stmt, meta):
    return dataclasses.replace(stmt, span=span_of(meta))
