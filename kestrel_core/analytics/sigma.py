"""python://sigma: rank entities by the Sigma rules they match.

    APPLY python://sigma ON procs WITH rules='path/to/rules'
    SORT procs BY x_sigma_score DESC

`rules` is a rule file or a folder (recursive), read as WHERE SIGMA reads it; each
entity of the ON variables gets x_sigma_rules and x_sigma_level as from a WHERE SIGMA,
and x_sigma_score, the sum of the weights of the rules it matched (informational 1,
low 2, medium 4, high 8, critical 16; 0 when none).  The display is the table of the
rules that fired.
"""

from __future__ import annotations

import pandas as pd

from ..errors import AnalyticsError, KestrelError
from ..results import Text
from ..sigma.labels import LEVEL, RULES, SCORE, fired_table, labels, not_run, score
from . import AnalyticsResult


def sigma(frames, *, rules: str, context=None):
    if context is None:
        raise AnalyticsError("needs the hunt's store (call it through APPLY)")
    context.require_entities()
    updated, displays = {}, []
    for name in context.variables:
        frame = frames[name]
        try:
            ruleset, hits = context.sigma_matches(name, rules)
        except KestrelError as err:
            raise AnalyticsError(f"{name}: {err.message}", hint=err.hint) from err
        rows = []
        for record in frame.to_dict(orient="records"):
            matched = hits.get(record["id"], [])
            row = {"id": record["id"], SCORE: score(matched)}
            if matched:
                row.update(labels(record, matched))
            rows.append(row)
        updated[name] = pd.DataFrame(rows, columns=["id", RULES, LEVEL, SCORE]).astype(object)
        table = fired_table(context.entity_types[name], hits, ruleset)
        table.title = f"{name}: {table.title}"
        displays.append(table)
        lines = not_run(ruleset)
        if lines:
            displays.append(Text(f"{name}: Sigma rules not run", lines))
    return AnalyticsResult(updated=updated, display=displays)
