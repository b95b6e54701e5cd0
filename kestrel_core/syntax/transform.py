"""Parse tree -> AST.  Pure: no store, no I/O, no symbol table.

Checks that need only the text of one statement (a clause given twice,
START after STOP, a reserved word used as a variable) are made here, with
the position of the offending part.
"""

from __future__ import annotations

import dataclasses
import math
import re
import unicodedata
from typing import NamedTuple

from lark import Token, Transformer, Tree, v_args

from ..errors import KestrelSyntaxError
from . import ast
from .ecgp import UNIT_SECONDS

ANONYMOUS = "_"

# The largest whole number SQLite and PostgreSQL take (LIMIT, OFFSET, BIN sizes).
MAX_INT = 2**63 - 1
# Integer literals beyond this many digits are refused (Python refuses above 4300).
MAX_DIGITS = 100
# LAST n UNIT may reach back at most this far (datetime arithmetic must stay in range).
MAX_LAST_SECONDS = 1000 * 366 * 86400


def span_of(item) -> ast.Span:
    """Span of a Token or of a Tree/meta (propagate_positions)."""
    meta = item if not isinstance(item, Tree) else item.meta
    if getattr(meta, "empty", False) or getattr(meta, "line", None) is None:
        return ast.NO_SPAN
    return ast.Span(meta.line, meta.column, meta.end_line, meta.end_column,
                    meta.start_pos, meta.end_pos)


def decode_string(token: Token, json_escapes: bool = False) -> str:
    """A string literal (quotes, Python escapes, r-prefix) to its value.

    Escapes are Python's (an unknown one such as `\\.` keeps its backslash);
    with `json_escapes` (NEW data) `\\/` is `/` as in JSON.  `\\uD83D\\uDE00`
    surrogate pairs are joined as in JSON; an unpaired surrogate is not text
    and is refused.  Any character may stand between the quotes, NUL included.
    """
    text = str(token)
    if text[0] in "rR":
        value = text[2:-1]  # verbatim, as in Python: r'a\'b' is a, backslash, quote, b
    else:
        value = _unescape(text[1:-1], token, json_escapes)
    if any("\ud800" <= c <= "\udfff" for c in value):
        value = _join_surrogates(value, token)
    return value


ESCAPES = {"\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f", "n": "\n",
           "r": "\r", "t": "\t", "v": "\v"}
HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


def _unescape(body: str, token: Token, json_escapes: bool) -> str:
    out, i = [], 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        start, kind = i, body[i + 1]  # the lexer guarantees a character after a backslash
        i += 2
        if kind in ESCAPES:
            out.append(ESCAPES[kind])
        elif json_escapes and kind == "/":
            out.append("/")
        elif kind in "01234567":
            digits = re.match(r"[0-7]{1,3}", body[start + 1:]).group()
            out.append(chr(int(digits, 8)))
            i = start + 1 + len(digits)
        elif kind in HEX_ESCAPES:
            size = HEX_ESCAPES[kind]
            digits = body[i:i + size]
            if not re.fullmatch(r"[0-9A-Fa-f]{%d}" % size, digits):
                raise _string_error(f"\\{kind} needs {size} hexadecimal digits", token, start,
                                    2 + len(re.match(r"[0-9A-Fa-f]*", digits).group()))
            code = int(digits, 16)
            if code > 0x10FFFF:
                raise _string_error(f"\\U{digits} is beyond Unicode (at most \\U0010FFFF)",
                                    token, start, 2 + size)
            out.append(chr(code))
            i += size
        elif kind == "N":
            found = re.match(r"\{([^{}]*)\}", body[i:])
            try:
                out.append(unicodedata.lookup(found.group(1)) if found else "")
            except KeyError:
                found = None
            if not found:
                raise _string_error("\\N needs a Unicode character name: \\N{BULLET}", token,
                                    start, 2)
            i += len(found.group())
        else:
            out.append("\\" + kind)  # as in Python: unknown escapes keep their backslash
    return "".join(out)


def _join_surrogates(value: str, token: Token) -> str:
    try:
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:
        lone = next(c for c in value if "\ud800" <= c <= "\udfff")
        raise _string_error(f"\\u{ord(lone):04x} is half of a surrogate pair, not a character",
                            token, None, len(str(token))) from None


def _string_error(message: str, token: Token, offset, width: int) -> KestrelSyntaxError:
    """An error inside a string literal, pointing at the escape at `offset` in its body
    (None: the whole literal); a string is on one line."""
    prefix = 2 if str(token)[0] in "rR" else 1
    span = span_of(token)
    if span is not ast.NO_SPAN and offset is not None:
        column = span.column + prefix + offset
        span = ast.Span(span.line, column, span.line, column + width,
                        span.start_pos + prefix + offset, span.start_pos + prefix + offset + width)
    return KestrelSyntaxError(f"invalid string: {message}").at(span, None)


def decode_number(token: Token):
    text = str(token)
    if any(c in text for c in ".eE"):
        value = float(text)
        if not math.isfinite(value):
            raise KestrelSyntaxError(f"number out of range: {text}").at(span_of(token), None)
        return value
    if len(text.lstrip("-").lstrip("0")) > MAX_DIGITS:
        raise KestrelSyntaxError(f"number out of range: more than {MAX_DIGITS} digits").at(
            span_of(token), None)
    return int(text)


def decode_int(token: Token, what: str, minimum: int = 0, maximum: int = MAX_INT) -> int:
    """A whole number of LIMIT, OFFSET, LAST or BIN, within what the stores can take."""
    digits = str(token).lstrip("0") or "0"
    value = int(digits) if len(digits) <= len(str(maximum)) else maximum + 1
    if value < minimum:
        raise KestrelSyntaxError(f"{what} must be at least {minimum}").at(span_of(token), None)
    if value > maximum:
        raise KestrelSyntaxError(f"{what} must be at most {maximum}").at(span_of(token), None)
    return value


def strip_timestamp(token: Token) -> str:
    text = str(token)
    if text[0] in "tT":
        text = text[1:]
    return text.strip("'\"")


class ToAst(Transformer):
    """Builds `ast` nodes; rules are named as in kestrel.lark."""

    def __init__(self, source: str):
        super().__init__()
        self.source = source

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
        return str(children[0])

    def arg_list(self, children):
        return tuple(children)

    @v_args(meta=True)
    def disp(self, meta, children):
        return _with_span(ast.Disp(expression=children[0]), meta)

    @v_args(meta=True)
    def info(self, meta, children):
        return _with_span(ast.Info(input=str(children[0])), meta)

    @v_args(meta=True)
    def explain(self, meta, children):
        return _with_span(ast.Explain(input=str(children[0])), meta)

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
        entity_type, _, attribute = str(path_token).rpartition(":")
        path = ast.AttrPath(entity_type or None, attribute_text(attribute), span_of(path_token))
        if op == "IN" and not isinstance(value, (tuple, ast.VarAttr)):
            value = (value,)  # `name IN 'a'` is `name IN ('a')`
        if isinstance(value, tuple) and op in ("=", "!="):
            op, negated = "IN", negated != (op == "!=")
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

    def operator(self, children):
        negated = len(children) == 2
        op = str(children[-1]).upper()
        return ("=" if op == "==" else op, negated)

    def value_list(self, children):
        flat = []
        for item in children:
            if isinstance(item, tuple):
                flat.extend(item)
            else:
                flat.append(item)
        return tuple(flat)

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
    steps = re.findall(r"'[^']*'(?:\[\*\])?|[^.]+", str(token))
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


def _with_span(stmt, meta):
    return dataclasses.replace(stmt, span=span_of(meta))
