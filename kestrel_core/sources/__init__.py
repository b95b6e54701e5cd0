"""Data sources chosen by URI scheme.

stixshifter:// runs stix-shifter connectors: a query (`query(uri, Query, progress)`,
base.py) gets STIX bundles to store and the native queries it ran (for EXPLAIN);
`progress(text)` reports how a long query is going (pages, rows so far).  file://,
http(s):// and bare paths are STIX bundles, read whole once (`snapshots`, `read`):
the store keeps their records and answers queries about them itself.

A FROM may name several sources, comma-joined: each entry with a scheme starts a
part for its source, an entry without one continues the part before it (as in v1,
stixshifter://edr,siem is two profiles and file:///a.json,/b.json two files), and
the parts' records are stored together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import DataSourceError
from ..redaction import redact
from .base import Query, QueryResult, TimeSpan
from .bundle import SCHEME, BundleSource, entries, local_path
from .stixshifter import StixShifterSource

__all__ = ["DataSourceManager", "Query", "QueryResult", "local_path"]


@dataclass(frozen=True)
class Together:
    """What FIND asks of a FROM naming several sources: the narrowest of their prefetch
    settings, so a prefetch suits every part."""

    prefetch_batch: Optional[int]


class DataSourceManager:
    """Routes URIs to sources and remembers the last one (GET without FROM)."""

    def __init__(self, config):
        self.bundles = bundle = BundleSource(config)
        self.stixshifter = StixShifterSource(config)
        self.schemes = {"file": bundle, "http": bundle, "https": bundle, "": bundle,
                        "stixshifter": self.stixshifter}
        self.last_uri = None
        self.used = []

    def source_for(self, uri: str):
        sources = [self._source(part) for part in _parts(uri)]
        if len(sources) == 1:
            return sources[0]
        batches = [getattr(s, "prefetch_batch", None) for s in sources]
        return Together(min((b for b in batches if b), default=None))

    def _source(self, part: str):
        scheme = SCHEME.match(part)
        name = scheme.group()[:-3].lower() if scheme else ""
        if name not in self.schemes:
            known = ", ".join(f"{s}://" for s in sorted(self.schemes) if s)
            raise DataSourceError(f'{redact(part, ())}: unknown data source scheme "{name}://" '
                                  f"(known: {known})")
        return self.schemes[name]

    def parts(self, uri: str) -> list:
        """(part, read whole) for each part of a FROM (every part checked first): bundle
        parts are read whole, once, and kept by the store; the others are queried."""
        parts = _parts(uri)
        sources = [self._source(part) for part in parts]
        return [(part, isinstance(source, BundleSource)) for part, source in zip(parts, sources)]

    def answered(self, uri: str):
        """`uri` answered a GET: the next GET without FROM asks it, completion offers it."""
        self.last_uri = uri
        for entry in (e for part in _parts(uri) for e in entries(part)):
            if entry not in self.used:
                self.used.append(entry)

    def snapshots(self, part: str) -> list:
        """The bundles a part read whole names, as they are now (sources.bundle.Snapshot)."""
        return self.bundles.snapshots(part)

    def read(self, snapshot, progress=None) -> QueryResult:
        """Every record of one bundle."""
        return self.bundles.read(snapshot, progress or (lambda text: None))

    def query(self, uri: str, query: Query, progress=None) -> QueryResult:
        """Query the parts of `uri` that are not read whole (their native queries named
        by their part when `uri` has several)."""
        report = progress or (lambda text: None)
        every = self.parts(uri)
        parts = [part for part, whole in every if not whole]
        results = [self._source(part).query(part, query, report) for part in parts]
        if len(every) == 1:
            return results[0]
        combined = QueryResult([])
        combined.bundles = _one_after_another(parts, results, combined)
        return combined

    def uris(self) -> list:
        """Sources used so far, then every stix-shifter profile (for completion)."""
        profiles = [f"stixshifter://{name}" for name in self.stixshifter.profile_names()]
        return list(dict.fromkeys(self.used + profiles))


def _parts(uri: str) -> list:
    """A FROM's parts: each entry with a scheme starts one, the others continue it."""
    parts = []
    for entry in (e.strip() for e in uri.split(",")):
        if not entry:
            raise DataSourceError(f"{redact(uri, ())}: a data source between commas is empty")
        if parts and not SCHEME.match(entry):
            parts[-1] += "," + entry
        else:
            parts.append(entry)
    return parts


def _one_after_another(parts, results, combined):
    """The parts' bundles in turn; each part's native queries (known once its bundles are
    read) go to `combined`, named by the part unless they name it already (bundles do),
    and its record time span widens the combined one."""
    for part, result in zip(parts, results):
        yield from result.bundles
        shown = redact(part, ())  # a password in a URL as ***
        combined.native_queries.extend(q if shown in q else f"{shown}: {q}"
                                       for q in result.native_queries)
        combined.time_span = TimeSpan.of(combined.time_span, result.time_span)
