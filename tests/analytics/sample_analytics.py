"""Analytics the tests register through the configuration (`analytics:` section)."""

from typing import Literal, Optional

import pandas as pd
import plotly.graph_objects as go

from kestrel.analytics import AnalyticsResult
from kestrel.results import Text


def name_length(frames, *, attribute: str = "x_name_length", scale: int = 1):
    """Adds len(name) * scale to every entity."""
    updated = {}
    for name in frames:
        frame = frames[name]
        updated[name] = pd.DataFrame({"id": frame["id"], attribute: [
            len(n) * scale if isinstance(n, str) else None for n in frame["name"]]})
    return AnalyticsResult(updated=updated)


def parameters(frames, *, threshold: int, mode: Literal["fast", "slow"] = "fast",
               ratio: float = 0.5, words: list[str] = (), flag: bool = False,
               label: Optional[str] = None, anything=None, context=None):
    shown = {"threshold": threshold, "mode": mode, "ratio": ratio, "words": words,
             "flag": flag, "label": label, "anything": anything,
             "variables": list(context.variables), "types": context.entity_types}
    return AnalyticsResult(display=Text("parameters", [f"{k}={v!r}" for k, v in shown.items()]))


def explode(frames):
    raise ValueError("boom")


def lazy(frames):
    """Reads no frame: returns nothing."""
    return AnalyticsResult()


def half_bad(frames):
    """Fine for the first variable, unwritable for the second."""
    first, second = list(frames)
    return AnalyticsResult(updated={
        first: frames[first][["id"]].assign(x_ok=1),
        second: frames[second][["id"]].assign(**{"parent_ref.x_new": 1})})


def stranger(frames):
    return AnalyticsResult(updated={n: pd.DataFrame({"id": ["process--nope"], "x_a": [1]})
                                    for n in frames})


def no_id(frames):
    return AnalyticsResult(updated={n: pd.DataFrame({"x_a": [1]}) for n in frames})


def dict_value(frames):
    return AnalyticsResult(updated={n: frames[n][["id"]].assign(x_a=[{"a": 1}] * len(frames[n]))
                                    for n in frames})


def other_variable(frames):
    return AnalyticsResult(updated={"elsewhere": pd.DataFrame({"id": []})})


def not_a_result(frames):
    return 42


def plotly_figure(frames):
    return AnalyticsResult(display=go.Figure(go.Scatter(x=[1, 2], y=[3, 4]),
                                             layout={"title": {"text": "two points"}}))


def free_form(frames, **params):
    return AnalyticsResult(display=Text("free", [f"{k}={v!r}" for k, v in sorted(params.items())]))
