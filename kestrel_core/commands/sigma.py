"""What a SIGMA clause adds to the statement that ran it: the entities of the result get
the rules they matched (kestrel.sigma.labels), a table names the rules that fired with
the credit their license asks for, the rules that could not run are listed once, and
EXPLAIN keeps the condition each rule became."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..results import Text
from ..sigma.labels import LEVEL, RULES, fired_table, hits_of, labels, not_run
from ..sigma.rules import RuleSet
from ..syntax import ast
from ..syntax.ecgp import ALWAYS
from ..syntax.unparse import ecgp_text
from .base import Outcome


def label(resolved, ctx, outcome: Outcome) -> Outcome:
    variable = outcome.variable
    if variable is None or variable.grouped:
        return outcome
    rules = RuleSet.combined(resolved.sigma)
    hits = hits_of(ctx.store, variable, rules)
    write_labels(ctx.store, variable.view, variable.entity_type, hits)
    results = [*outcome.results, fired_table(variable.entity_type, hits, rules)]
    lines = not_run(rules)
    if lines:
        results.append(Text("Sigma rules not run", lines))
    explained = tuple(f"{rule.title} ({rule.id}, {Path(rule.path).name}): "
                      f"{_condition_text(rule)}" for rule in rules.rules)
    return Outcome(dataclasses.replace(variable, rules=explained), results,
                   outcome.empty_notes)


def write_labels(store, view: str, entity_type: str, hits: dict):
    """Each entity's labels, joined with those it had."""
    if hits:
        had = [c for c in (RULES, LEVEL) if c in store.columns(view)]
        stored = ({row["id"]: row for row in store.rows(view, ["id", *had])} if had else {})
        store.set_texts(view, entity_type, {entity: labels(stored.get(entity, {}), rules)
                                            for entity, rules in hits.items()})


def _condition_text(rule) -> str:
    if isinstance(rule.condition, (ast.Comparison, ast.BoolExpr)):
        text = ecgp_text(rule.condition)
    else:
        text = "always true" if rule.condition is ALWAYS else "never true"
    if rule.absent:
        text += f"  [absent from STIX: {', '.join(rule.absent)}]"
    return text
