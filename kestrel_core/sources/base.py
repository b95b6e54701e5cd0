"""What a data source is asked and what it answers."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    the store ingests) and the native queries it ran (complete once bundles are read)."""

    bundles: Iterable
    native_queries: list = field(default_factory=list)
