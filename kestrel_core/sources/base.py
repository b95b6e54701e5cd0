"""What a data source is asked and what it answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Optional


@dataclass(frozen=True)
class Query:
    """Records holding `entity_type` entities that match `where` within `window`.

    `where` is a resolved ECGP (`var.attr` references already values) or None for
    every record holding an entity of the type; `window` is (start, stop), text or
    datetimes, or None.  `exact` asks for Kestrel's own matching of whole records
    (extended subgraphs, case-sensitive strings) on top of what a source's query
    language did; a FIND prefetch, which only fetches more records, leaves it off.
    """

    entity_type: str
    where: object = None
    window: Optional[tuple] = None
    exact: bool = True


@dataclass
class QueryResult:
    """What a source answers: bundles to store (a list, or an iterable produced while
    the store ingests), the native queries it ran and, for a query with a time window,
    the span (earliest, latest) of the records' first_observed the source read before
    cutting them to the window, and how many records it read (all complete once the
    bundles are read)."""

    bundles: Iterable
    native_queries: list = field(default_factory=list)
    time_span: Optional[TimeSpan] = None
    records: int = 0


@dataclass
class TimeSpan:
    """The earliest and latest of the record times seen."""

    earliest: datetime
    latest: datetime

    @staticmethod
    def of(*spans) -> Optional["TimeSpan"]:
        """The span covering all `spans` (None ones ignored)."""
        known = [s for s in spans if s is not None]
        if not known:
            return None
        return TimeSpan(min(s.earliest for s in known), max(s.latest for s in known))
