"""APPLY: run a registered analytics over variables; write back what it adds."""

from __future__ import annotations

import pandas as pd

from ..errors import AnalyticsError
from .base import Outcome


def run(stmt, ctx):
    variables = {name: ctx.var(name) for name in stmt.variables}
    frames = {name: pd.DataFrame(ctx.store.raw_rows(v.view)) for name, v in variables.items()}
    try:
        result = ctx.analytics.run(stmt.uri, frames, dict(stmt.arguments))
    except AnalyticsError as err:
        raise err.at(stmt.span, ctx.source_text)
    for name, frame in (result.updated or {}).items():
        if name not in variables:
            raise ctx.error(AnalyticsError, f"{stmt.uri} returned data for an unknown "
                            f"variable {name}", stmt)
        rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        ctx.store.update(variables[name].view, rows)
    return Outcome(results=[result.display] if result.display is not None else [])
