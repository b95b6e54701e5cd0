"""The Kestrel AST: frozen dataclasses, one per statement and ECGP node.

Every node carries the Span of its source text so that later stages
(semantics, commands) can point errors at the right place.  Nodes are
immutable: a stage that changes meaning (e.g. expanding `procs.pid`) returns
a new node with ``dataclasses.replace``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional, Union

from ..timestamps import parse_timestamp


@dataclass(frozen=True)
class Span:
    """1-based line/column of the first character; end is one past the last."""

    line: int
    column: int
    end_line: int
    end_column: int
    start_pos: int
    end_pos: int


NO_SPAN = Span(0, 0, 0, 0, 0, 0)


def _span_field():
    return field(default=NO_SPAN, compare=False, repr=False)


# ------------------------------------------------------------------ ECGP


@dataclass(frozen=True)
class VarAttr:
    """A value written as `variable.attribute`: expands to that attribute's values."""

    variable: str
    attribute: str
    span: Span = _span_field()


Scalar = Union[str, int, float, bool, None]
Value = Union[Scalar, tuple, VarAttr]


@dataclass(frozen=True)
class AttrPath:
    """`attribute` of entity `entity_type` (None: the statement's entity type)."""

    entity_type: Optional[str]
    attribute: str
    span: Span = _span_field()


_STEP = re.compile(r"'[^']*'(?:\[\*\])?|[^.]+")


def path_steps(attribute: str) -> list:
    """`binary_ref.hashes.'SHA-256'` -> ["binary_ref", "hashes", "'SHA-256'"]."""
    return _STEP.findall(attribute)


@dataclass(frozen=True)
class Comparison:
    """`path op value`; op is one of = != > >= < <= IN LIKE MATCHES ISSUBSET ISSUPERSET,
    or IS (value None): `path IS NULL`, negated `path IS NOT NULL`."""

    path: AttrPath
    op: str
    value: Value
    negated: bool = False
    span: Span = _span_field()


@dataclass(frozen=True)
class BoolExpr:
    """AND/OR over two or more operands, in source order."""

    op: str
    operands: tuple
    span: Span = _span_field()


@dataclass(frozen=True)
class RuleCondition(BoolExpr):
    """What a SIGMA clause became (an OR over its rules' conditions): the rules' fields
    were mapped when they were translated, so the check of the attributes a hunter wrote
    passes over it (a rule may name attributes the data lacks: they are absent)."""


def holds_rules(node) -> bool:
    """Whether an ECGP holds what SIGMA clauses became."""
    return isinstance(node, RuleCondition) or (
        isinstance(node, BoolExpr) and any(holds_rules(o) for o in node.operands))


@dataclass(frozen=True)
class SigmaRules:
    """`SIGMA 'path'`: the detection of the Sigma rules in a file or folder; the check
    stage replaces it with the comparisons the rules become."""

    path: str
    span: Span = _span_field()


Ecgp = Union[Comparison, BoolExpr, SigmaRules]


@dataclass(frozen=True)
class AbsoluteTime:
    """START/STOP as ISO-8601 UTC text, kept as written (the STIX pattern repeats it)."""

    start: str
    stop: str
    span: Span = _span_field()

    @property
    def start_dt(self) -> datetime:
        return parse_timestamp(self.start)

    @property
    def stop_dt(self) -> datetime:
        return parse_timestamp(self.stop)


@dataclass(frozen=True)
class RelativeTime:
    """LAST n UNIT: resolved against the clock when the statement runs."""

    amount: int
    unit: str  # DAY, HOUR, MINUTE or SECOND
    span: Span = _span_field()


TimeRange = Union[AbsoluteTime, RelativeTime]


# ------------------------------------------------------------------ statements


@dataclass(frozen=True)
class Source:
    """Where GET reads: a URI/path (kind 'uri') or a variable (kind 'variable')."""

    kind: str
    text: str
    span: Span = _span_field()


@dataclass(frozen=True)
class Bin:
    """GROUP BY BIN(attribute, size [unit]): buckets of numbers or of time."""

    attribute: str
    size: int
    unit: Optional[str] = None  # DAY, HOUR, MINUTE, SECOND for timestamps


@dataclass(frozen=True)
class Aggregation:
    func: str
    attribute: str
    alias: Optional[str] = None

    @property
    def name(self):
        return self.alias or f"{self.func.lower()}_{self.attribute}"


@dataclass(frozen=True)
class Statement:
    """Base: every statement has a span; `output` is the variable it (re)defines."""

    span: Span = field(default=NO_SPAN, compare=False, repr=False, kw_only=True)

    command = ""

    @property
    def output(self) -> Optional[str]:
        return getattr(self, "output_var", None)

    @property
    def inputs(self) -> tuple:
        """Variables the statement reads (not counting `var.attr` references)."""
        return ()

    def to_dict(self) -> dict:
        body = {"command": self.command}
        for f in dataclasses.fields(self):
            if f.name != "span":
                body[f.name] = _plain(getattr(self, f.name))
        body["span"] = dataclasses.asdict(self.span)
        return body


def _plain(value: Any):
    """Dataclasses to dicts (with a `node` name), tuples to lists, datetimes to ISO text."""
    if dataclasses.is_dataclass(value):
        out = {"node": type(value).__name__}
        for f in dataclasses.fields(value):
            if f.name != "span":
                out[f.name] = _plain(getattr(value, f.name))
        return out
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


@dataclass(frozen=True)
class Get(Statement):
    output_var: str
    entity_type: str
    source: Optional[Source] = None
    where: Optional[Ecgp] = None
    timerange: Optional[TimeRange] = None
    limit: Optional[int] = None
    command = "get"

    @property
    def inputs(self):
        return (self.source.text,) if self.source and self.source.kind == "variable" else ()


@dataclass(frozen=True)
class Find(Statement):
    output_var: str
    entity_type: str
    relation: str  # lower case: created, accepted, contained, linked, loaded, owned
    reversed: bool
    input: str
    where: Optional[Ecgp] = None
    timerange: Optional[TimeRange] = None
    limit: Optional[int] = None
    command = "find"

    @property
    def inputs(self):
        return (self.input,)


@dataclass(frozen=True)
class New(Statement):
    output_var: str
    entity_type: Optional[str]
    data: tuple  # of dicts or of strings
    command = "new"


@dataclass(frozen=True)
class Load(Statement):
    output_var: str
    path: str
    entity_type: Optional[str] = None
    command = "load"


@dataclass(frozen=True)
class Save(Statement):
    input: str
    path: str
    command = "save"

    @property
    def inputs(self):
        return (self.input,)


@dataclass(frozen=True)
class Sort(Statement):
    output_var: str
    input: str
    attribute: str
    ascending: bool = True
    command = "sort"

    @property
    def inputs(self):
        return (self.input,)


@dataclass(frozen=True)
class Group(Statement):
    output_var: str
    input: str
    by: tuple
    aggregations: tuple = ()
    command = "group"

    @property
    def inputs(self):
        return (self.input,)


@dataclass(frozen=True)
class Join(Statement):
    output_var: str
    left: str
    right: str
    left_attribute: Optional[str] = None
    right_attribute: Optional[str] = None
    command = "join"

    @property
    def inputs(self):
        return (self.left, self.right)


@dataclass(frozen=True)
class Apply(Statement):
    uri: str
    variables: tuple
    arguments: tuple  # of (name, value) pairs, in source order
    command = "apply"

    @property
    def inputs(self):
        return self.variables


@dataclass(frozen=True)
class Expression:
    """A variable (optionally transformed) refined by WHERE/ATTR/SORT BY/LIMIT/OFFSET."""

    input: str
    transform: Optional[str] = None  # TIMESTAMPED, ADDOBSID or RECORDS
    where: Optional[Ecgp] = None
    attrs: tuple = ()
    sort_by: Optional[str] = None
    ascending: bool = True
    limit: Optional[int] = None
    offset: Optional[int] = None
    span: Span = _span_field()


@dataclass(frozen=True)
class Assign(Statement):
    output_var: str
    expression: Expression
    command = "assign"

    @property
    def inputs(self):
        return (self.expression.input,)


@dataclass(frozen=True)
class Merge(Statement):
    output_var: str
    variables: tuple
    command = "merge"

    @property
    def inputs(self):
        return self.variables


@dataclass(frozen=True)
class Disp(Statement):
    expression: Expression
    command = "disp"

    @property
    def inputs(self):
        return (self.expression.input,)


@dataclass(frozen=True)
class Info(Statement):
    input: str
    command = "info"

    @property
    def inputs(self):
        return (self.input,)


@dataclass(frozen=True)
class Describe(Statement):
    """DESCRIBE var.attr: statistics of one attribute of a variable's entities."""

    input: str
    attribute: str
    command = "describe"

    @property
    def inputs(self):
        return (self.input,)


@dataclass(frozen=True)
class Explain(Statement):
    input: str
    command = "explain"

    @property
    def inputs(self):
        return (self.input,)


def var_attrs(node) -> list:
    """Every `variable.attribute` reference inside an ECGP, in source order."""
    if node is None:
        return []
    if isinstance(node, BoolExpr):
        return [ref for operand in node.operands for ref in var_attrs(operand)]
    if isinstance(node, Comparison):
        return list(_value_refs(node.value))
    return []


def _value_refs(value):
    if isinstance(value, VarAttr):
        yield value
    elif isinstance(value, tuple):
        for item in value:
            yield from _value_refs(item)
