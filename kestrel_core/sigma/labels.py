"""What matching rules tell about entities: the attributes they get and the table of the
rules that fired, shared by `WHERE SIGMA` and `APPLY python://sigma`.

    x_sigma_rules   the ids of the rules an entity matched (a JSON list; what it matched
                    before stays: the labels describe the entity, not one variable)
    x_sigma_level   the highest level among them
    x_sigma_score   (APPLY) the sum of the weights of the rules it matched there:
                    informational 1, low 2, medium 4, high 8, critical 16, so that one
                    rule of a level outweighs one of the level below
"""

from __future__ import annotations

import json
from pathlib import Path

from .rules import LEVELS, RuleSet, select

RULES, LEVEL, SCORE = "x_sigma_rules", "x_sigma_level", "x_sigma_score"
WEIGHTS = {level: 2 ** rank for rank, level in enumerate(LEVELS)}


def matches(store, variable, location: str) -> tuple:
    """(the RuleSet at `location` for the variable's entity type, {entity id: [Rule]})."""
    rules = select(location, variable.entity_type)
    return rules, hits_of(store, variable, rules)


class Hits(dict):
    """Row id -> the rules it matched; `keys` tells which rows are one entity."""

    def __init__(self, keys: dict):
        super().__init__()
        self.keys = keys

    def entities(self) -> tuple:
        """(how many entities matched some rule, {rule id: how many it matched}), in one
        pass over the rows."""
        every, per_rule = set(), {}
        for row, rules in self.items():
            key = self.keys[row]
            every.add(key)
            for rule in rules:
                per_rule.setdefault(rule.id, set()).add(key)
        return len(every), {rule: len(keys) for rule, keys in per_rule.items()}


def hits_of(store, variable, rules: RuleSet) -> Hits:
    matched, keys = store.matching(variable.view, variable.entity_type,
                                   [rule.condition for rule in rules.rules])
    hits = Hits(keys)
    for rule, ids in zip(rules.rules, matched):
        for entity in ids:
            hits.setdefault(entity, []).append(rule)
    return hits


def labels(row: dict, rules: list) -> dict:
    """x_sigma_rules and x_sigma_level of an entity (`row`, as stored) that matched
    `rules`."""
    ids = list(dict.fromkeys(_listed(row.get(RULES)) + [rule.id for rule in rules]))
    levels = [rule.rank for rule in rules]
    if row.get(LEVEL) in LEVELS:
        levels.append(LEVELS.index(row[LEVEL]))
    return {RULES: json.dumps(ids), LEVEL: LEVELS[max(levels)]}


def score(rules: list) -> int:
    return sum(WEIGHTS.get(rule.level, 1) for rule in rules)


def _listed(value) -> list:
    if not value:
        return []
    try:
        listed = json.loads(value)
    except (TypeError, ValueError):
        return []
    return [str(item) for item in listed] if isinstance(listed, list) else []


def fired_table(entity_type: str, hits: Hits, rules: RuleSet):
    """The rules that matched, highest level first, with how many entities each matched
    and the credit the rules' license asks for (title, author, id)."""
    import pandas as pd

    from ..results import Table

    fired = {rule.id: rule for matched in hits.values() for rule in matched}
    total, counts = hits.entities()
    ordered = sorted(fired.values(), key=lambda r: (-r.rank, -counts[r.id], r.title))
    frame = pd.DataFrame([{
        "rule": rule.title, "level": rule.level, "matched": counts[rule.id],
        "ATT&CK": ", ".join(rule.attack), "author": rule.author,
        "absent fields": ", ".join(rule.absent), "id": rule.id, "file": Path(rule.path).name,
    } for rule in ordered], columns=["rule", "level", "matched", "ATT&CK", "author",
                                     "absent fields", "id", "file"])
    ran = len(rules.rules)
    title = (f"{total:,} {entity_type} entities matched {len(fired):,} of {ran:,} "
             f"Sigma rule{'s' if ran != 1 else ''}")
    return Table(frame, title=title)


def not_run(rules: RuleSet) -> list:
    """Lines naming the rules that could not run (once each), and the rules skipped
    because they describe other entities."""
    lines = [str(problem) for problem in rules.problems]
    lines += [f"{count} rules describe {kind} entities: run them in a GET {kind}"
              for kind, count in rules.skipped.items()]
    return lines
