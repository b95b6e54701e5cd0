"""Analytics for APPLY: `APPLY python://name ON var, ... WITH key=value, ...`.

An analytics is a Python callable, registered explicitly (nothing else runs):
under the entry point group `kestrel.analytics` by a package, or by the
configuration (`analytics: {name: "module:function"}`, which wins on a clash).

    def my_analytics(frames, *, threshold: int = 5, context=None) -> AnalyticsResult

`frames` maps each ON variable (in order) to a pandas DataFrame of its entities,
references followed (`parent_ref.name`, ...), as `Session.variable_dataframe`
gives them; frames load when first read.  Keyword parameters are what WITH may
set; their annotations and defaults are checked before the call (see
`python.py`).  A parameter named `context` receives an `AnalyticsContext`.

It returns an `AnalyticsResult`: `updated` maps variable names to frames whose
new (or changed) attributes are written back to those entities (matched by
`id`), `display` is what to show (a `kestrel.results.Result`, a plotly figure
or a DataFrame).  Raise `kestrel.errors.AnalyticsError` for a message the
hunter should read as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from ..errors import AnalyticsError
from .python import ENTRY_POINT_GROUP, PythonAnalytics

__all__ = ["AnalyticsContext", "AnalyticsManager", "AnalyticsResult", "HuntflowStep",
           "ENTRY_POINT_GROUP"]


@dataclass
class AnalyticsResult:
    updated: dict = field(default_factory=dict)
    display: Optional[object] = None


@dataclass(frozen=True)
class HuntflowStep:
    """One definition of a variable in the hunt (a redefinition is another step)."""

    key: str              # "name@version": unique in the hunt
    name: str
    version: int
    entity_type: str
    command: str          # get, find, group, merge, ... ("" when unknown)
    statement: str        # canonical text of the statement that made it
    inputs: tuple = ()    # keys of the steps it was derived from
    references: tuple = ()  # keys of the steps whose values its WHERE used (`procs.pid`)
    source: Optional[str] = None  # the data source it came from, for steps with no inputs
    entities: int = 0
    current: bool = True  # False once the name was redefined


@dataclass(frozen=True)
class AnalyticsContext:
    """What an analytics may ask of the hunt besides the frames (given to a
    parameter named `context`)."""

    uri: str
    variables: tuple           # the ON variables, in order
    entity_types: dict         # ON variable -> entity type
    grouped: tuple = ()        # ON variables that hold GROUP rows, not entities
    geoip_db: tuple = ()       # the configuration's MaxMind databases (geoip, ip_map)
    _timestamped: Callable = None
    _huntflow: Callable = None
    _sigma: Callable = None

    def require_entities(self):
        """AnalyticsError when an ON variable holds GROUP rows (no ids, no records)."""
        if self.grouped:
            raise AnalyticsError(f"{', '.join(self.grouped)}: GROUP rows, not entities "
                                 "(apply it to the variable that was grouped)")

    def timestamped(self, name):
        """One row per (entity, record) of an ON variable: its stored attributes
        (references as ids) plus the record's `first_observed`."""
        if name not in self.variables:
            raise AnalyticsError(f"{name} is not one of the ON variables")
        return self._timestamped(name)

    def huntflow(self) -> tuple:
        """Every variable definition of the hunt as HuntflowSteps, oldest first."""
        return self._huntflow()

    def sigma_matches(self, name, location: str) -> tuple:
        """(the Sigma rules at `location` for an ON variable's entity type, {entity id:
        [rules it matches]}), matched by the store as WHERE SIGMA matches them."""
        if name not in self.variables:
            raise AnalyticsError(f"{name} is not one of the ON variables")
        return self._sigma(name, location)


class AnalyticsManager:
    """Analytics by URI scheme; only python:// exists."""

    def __init__(self, configured: Optional[dict] = None):
        self.python = PythonAnalytics(configured or {})

    def names(self) -> list:
        return self.python.names()

    def run(self, uri: str, frames, params: dict, context: AnalyticsContext = None):
        scheme, _, name = uri.partition("://")
        if scheme != "python":
            raise AnalyticsError(f'unknown analytics scheme "{scheme}://" (known: python://)')
        result = self.python.run(name, frames, params, context)
        if not isinstance(result, AnalyticsResult):
            raise AnalyticsError(f"{uri} returned {type(result).__name__}, not AnalyticsResult")
        return result
