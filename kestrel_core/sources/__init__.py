"""Data sources chosen by URI scheme.

A source answers `query(uri, Query, progress)` (base.py) with STIX bundles to store
and the native queries it ran (for EXPLAIN); `progress(text)` reports how a long
query is going (pages, rows so far).  file://, http(s):// and bare paths are STIX
bundles; stixshifter:// runs stix-shifter connectors.
"""

from __future__ import annotations

from ..errors import DataSourceError
from .base import Query, QueryResult
from .bundle import BundleSource
from .stixshifter import StixShifterSource

__all__ = ["DataSourceManager", "Query", "QueryResult"]


class DataSourceManager:
    """Routes URIs to sources and remembers the last one (GET without FROM)."""

    def __init__(self, config):
        bundle = BundleSource(config)
        self.stixshifter = StixShifterSource(config)
        self.schemes = {"file": bundle, "http": bundle, "https": bundle, "": bundle,
                        "stixshifter": self.stixshifter}
        self.last_uri = None
        self.used = []

    def source_for(self, uri: str):
        scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
        if scheme not in self.schemes:
            known = ", ".join(f"{s}://" for s in sorted(self.schemes) if s)
            raise DataSourceError(f'unknown data source scheme "{scheme}://" (known: {known})')
        return self.schemes[scheme]

    def query(self, uri: str, query: Query, progress=None) -> QueryResult:
        report = progress or (lambda text: None)
        result = self.source_for(uri).query(uri, query, report)
        self.last_uri = uri
        if uri not in self.used:
            self.used.append(uri)
        return result

    def uris(self) -> list:
        """Sources used so far, then every stix-shifter profile (for completion)."""
        profiles = [f"stixshifter://{name}" for name in self.stixshifter.profile_names()]
        return list(dict.fromkeys(self.used + profiles))
