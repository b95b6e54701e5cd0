"""Record-level ECGP matching for bundle sources.

Kestrel matches an ECGP against each record: a comparison holds when some
object of its entity type in the record satisfies it, so extended subgraphs
(`ipv4-addr:value = ...` beside `process:name = ...`) constrain the record,
not one object.  STIX matchers apply one-object semantics instead, hence
this small evaluator.  The store then picks the center entities.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from ..syntax import ast


def record_objects(record: dict, shared: dict) -> dict:
    """id -> object for a record: embedded (STIX 2.0) or referenced (2.1)."""
    if isinstance(record.get("objects"), dict):
        return record["objects"]
    return {ref: shared[ref] for ref in record.get("object_refs", []) if ref in shared}


def matches(node, record: dict, center_type: str, shared: dict) -> bool:
    return _holds(node, record_objects(record, shared), center_type)


def _holds(node, objects: dict, center_type: str) -> bool:
    if isinstance(node, ast.BoolExpr):
        combine = all if node.op == "AND" else any
        return combine(_holds(o, objects, center_type) for o in node.operands)
    entity_type = node.path.entity_type or center_type
    for obj in objects.values():
        if obj.get("type") == entity_type:
            if any(_compare(node, v) for v in _resolve(obj, node.path.attribute, objects)):
                return True
    return False


def _resolve(obj, attribute: str, objects: dict) -> list:
    """Values at a path such as parent_ref.name or opened_connection_refs[*].dst_ref.value."""
    current = [obj]
    for step in re.findall(r"'[^']*'|[^.]+", attribute):
        key = step.strip("'").replace("[*]", "")
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


def _compare(node: ast.Comparison, actual) -> bool:
    result = _positive(node.op, actual, node.value)
    return not result if node.negated else result


def _key(value):
    """Comparable form: numbers and numeric text compare as numbers, as SQL does."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


@lru_cache(maxsize=64)
def _key_set(values: tuple) -> frozenset:
    return frozenset(_key(v) for v in values)


def _positive(op, actual, expected) -> bool:
    try:
        if op == "=":
            return _key(actual) == _key(expected)
        if op == "!=":
            return _key(actual) != _key(expected)
        if op == "IN":
            return _key(actual) in _key_set(expected)
        if op in (">", ">=", "<", "<="):
            return {">": actual > expected, ">=": actual >= expected,
                    "<": actual < expected, "<=": actual <= expected}[op]
        if op == "LIKE":
            return re.fullmatch(_like_regex(expected), str(actual), re.DOTALL) is not None
        if op == "MATCHES":
            return re.search(expected, str(actual)) is not None
        if op == "ISSUBSET":
            return ipaddress.ip_network(str(actual), strict=False).subnet_of(
                ipaddress.ip_network(expected, strict=False))
        if op == "ISSUPERSET":
            return ipaddress.ip_network(str(actual), strict=False).supernet_of(
                ipaddress.ip_network(expected, strict=False))
    except (TypeError, ValueError, re.error):
        return False
    return False


def _like_regex(pattern: str) -> str:
    return "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
