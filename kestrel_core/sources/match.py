"""Record-level ECGP matching, to re-match the records of stix-shifter sources (bundles
are matched the same way by the store, in SQL: store/copies.py).

Kestrel matches an ECGP against each record: a comparison holds when some
object of its entity type in the record satisfies it, so extended subgraphs
(`ipv4-addr:value = ...` beside `process:name = ...`) constrain the record,
not one object.  STIX matchers apply one-object semantics instead, hence
this small evaluator.  The store then picks the center entities.

An ECGP is compiled once into a predicate (lists become sets), since one
query tests it against every record a source returns.
"""

from __future__ import annotations

import ipaddress
import re

from .. import regex
from ..syntax import ast
from ..syntax.ast import path_steps
from ..syntax.ecgp import like_regex


def record_objects(record: dict, shared: dict) -> dict:
    """id -> object for a record: embedded (STIX 2.0) or referenced (2.1)."""
    if isinstance(record.get("objects"), dict):
        return record["objects"]
    return {ref: shared[ref] for ref in record.get("object_refs", []) if ref in shared}


def matches(node, record: dict, center_type: str, shared: dict) -> bool:
    return compiled(node, center_type)(record_objects(record, shared))


_COMPILED: dict = {}  # id(node) -> (node, center type, predicate); ids, not hashes of big lists


def compiled(node, center_type: str):
    """The predicate of `node` (compiled once per node object)."""
    found = _COMPILED.get(id(node))
    if found is None or found[0] is not node or found[1] != center_type:
        if len(_COMPILED) > 64:
            _COMPILED.clear()
        found = _COMPILED[id(node)] = (node, center_type, _compile(node, center_type))
    return found[2]


def _compile(node, center_type: str):
    """A predicate over a record's objects (id -> object) for the ECGP `node`."""
    if isinstance(node, ast.BoolExpr):
        parts = tuple(_compile(o, center_type) for o in node.operands)
        if node.op == "AND":
            return lambda objects: all(part(objects) for part in parts)
        return lambda objects: any(part(objects) for part in parts)
    entity_type = node.path.entity_type or center_type
    steps = tuple(step.replace("[*]", "").strip("'") for step in path_steps(node.path.attribute))
    negated = node.negated
    if node.op == "IS":  # IS NULL: some such object has no value there; NOT: has one
        return lambda objects: any(
            bool(_resolve(obj, steps, objects)) == negated
            for obj in objects.values() if obj.get("type") == entity_type)
    test = _test(node.op, node.value)

    def holds(objects):
        for obj in objects.values():
            if obj.get("type") == entity_type:
                if any(test(v) != negated for v in _resolve(obj, steps, objects)):
                    return True
        return False

    return holds


def _resolve(obj, steps, objects) -> list:
    """Values at a path such as parent_ref.name or opened_connection_refs[*].dst_ref.value."""
    current = [obj]
    for key in steps:
        following = []
        for item in current:
            if not isinstance(item, dict) or key not in item:
                continue
            value = item[key]
            if key.endswith("_ref"):
                value = objects.get(value)
            elif key.endswith("_refs"):
                value = [objects.get(ref) for ref in value]
            following.extend(value if isinstance(value, list) else [value])
        current = [v for v in following if v is not None]
    return current


NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _key(value):
    """Comparable form: numbers and numeric text compare as numbers, as SQL does."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and NUMBER.fullmatch(value):
        return float(value)
    return value


def _test(op, expected):
    """A function of an actual value for `op expected` (negation is applied by the caller)."""
    if op == "IN":
        keys = frozenset(_key(v) for v in expected)
        return _safe(lambda actual: _key(actual) in keys)
    if op in ("=", "!="):
        key = _key(expected)
        return _safe((lambda a: _key(a) == key) if op == "=" else (lambda a: _key(a) != key))
    if op in (">", ">=", "<", "<="):
        compare = {">": lambda a: a > expected, ">=": lambda a: a >= expected,
                   "<": lambda a: a < expected, "<=": lambda a: a <= expected}[op]
        return _safe(compare)
    if op == "LIKE":
        like = regex.compiled(like_regex(expected))
        return _safe(lambda a: like.fullmatch(str(a)))
    if op == "MATCHES":
        try:
            expression = regex.compiled(expected)  # as the store's MATCHES
        except regex.RegexError:
            return lambda a: False
        return _safe(lambda a: expression.search(str(a)))
    network = _network(expected)
    if network is None:
        return lambda a: False
    if op == "ISSUBSET":
        return _safe(lambda a: _network(a).subnet_of(network))
    return _safe(lambda a: _network(a).supernet_of(network))


def _safe(test):
    """Values of the wrong kind do not match (and never raise)."""
    def guarded(actual):
        try:
            return bool(test(actual))
        except (TypeError, ValueError, AttributeError):
            return False
    return guarded


def _network(value):
    try:
        return ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        return None
