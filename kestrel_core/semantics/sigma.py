"""`SIGMA 'path'` in a WHERE: replaced by the comparisons its rules become, before any
other check, so the rest of the check stage and every command see an ordinary ECGP."""

from __future__ import annotations

import dataclasses

from ..errors import KestrelError
from ..syntax import ast
from ..syntax.ecgp import ALWAYS, NEVER, as_node


def has_sigma(node) -> bool:
    if isinstance(node, ast.SigmaRules):
        return True
    return isinstance(node, ast.BoolExpr) and any(has_sigma(o) for o in node.operands)


def expand(node, entity_type: str, source: str, uses: list):
    """`node` with each SIGMA clause replaced by its rules' conditions OR-ed (a rule
    matches what any of them matches); each clause's rules (kestrel.sigma.rules.RuleSet)
    go to `uses`."""
    if isinstance(node, ast.BoolExpr):
        return dataclasses.replace(node, operands=tuple(
            expand(o, entity_type, source, uses) for o in node.operands))
    if not isinstance(node, ast.SigmaRules):
        return node
    from ..sigma.rules import select
    from ..sigma.translate import any_of

    try:
        rules = select(node.path, entity_type)
    except KestrelError as err:
        raise err.at(node.span, source)
    uses.append(rules)
    condition = any_of([rule.condition for rule in rules.rules])
    if condition is ALWAYS or condition is NEVER:
        return as_node(condition)
    operands = condition.operands if isinstance(condition, ast.BoolExpr) and \
        condition.op == "OR" else (condition,)
    return ast.RuleCondition("OR", operands, node.span)


def expand_statement(stmt, entity_type: str, source: str):
    """(the statement with its SIGMA clauses expanded, the RuleSet of each)."""
    uses: list = []
    if isinstance(stmt, (ast.Get, ast.Find)):
        where = expand(stmt.where, entity_type, source, uses)
        return dataclasses.replace(stmt, where=where), tuple(uses)
    expression = stmt.expression
    where = expand(expression.where, entity_type, source, uses)
    return (dataclasses.replace(stmt, expression=dataclasses.replace(expression, where=where)),
            tuple(uses))
