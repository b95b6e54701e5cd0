"""Analytics for APPLY, registered explicitly (entry points `kestrel.analytics`).

An analytics is a callable `(frames: dict[str, DataFrame], **params) ->
AnalyticsResult`: `updated` maps variable names to frames with added
columns (written back to the store by id), `display` is a Result to show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Optional

from ..errors import AnalyticsError

ENTRY_POINT_GROUP = "kestrel.analytics"


@dataclass
class AnalyticsResult:
    updated: dict = field(default_factory=dict)
    display: Optional[object] = None


class AnalyticsManager:
    def __init__(self):
        self.registry = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}

    def names(self) -> list:
        return sorted(self.registry)

    def run(self, uri: str, frames: dict, params: dict) -> AnalyticsResult:
        scheme, _, name = uri.partition("://")
        if scheme != "python":
            raise AnalyticsError(f'unknown analytics scheme "{scheme}://" (known: python://)')
        if name not in self.registry:
            known = ", ".join(self.names()) or "none installed"
            raise AnalyticsError(f'no analytics "{name}" is registered (registered: {known})')
        function = self.registry[name].load()
        try:
            result = function(frames, **params)
        except TypeError as err:
            raise AnalyticsError(f"bad parameters for {uri}: {err}") from None
        except Exception as err:
            raise AnalyticsError(f"{uri} failed: {type(err).__name__}: {err}") from None
        if not isinstance(result, AnalyticsResult):
            raise AnalyticsError(f"{uri} returned {type(result).__name__}, not AnalyticsResult")
        return result
