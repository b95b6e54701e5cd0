"""Data sources chosen by URI scheme.

A source answers `query(uri, entity_type, pattern, window, where, progress)`
with STIX bundles to store and the native queries it ran (for EXPLAIN);
`progress(text)` reports how a long query is going (pages, rows so far).  file://, http(s)://
and bare paths are STIX bundles; stixshifter:// runs stix-shifter connectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from ..errors import DataSourceError
from .bundle import BundleSource
from .stixshifter import StixShifterSource


@dataclass
class QueryResult:
    """What a source answers: bundles to store (a list, or an iterable produced while
    the store ingests) and the native queries it ran (complete once bundles are read)."""

    bundles: Iterable
    native_queries: list = field(default_factory=list)


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

    def query(self, uri: str, entity_type: str, pattern: str, window, where=None,
              progress=None):
        """Ask the source; `where` (an ECGP) asks for record-level matching of it."""
        report = progress or (lambda text: None)
        result = self.source_for(uri).query(uri, entity_type, pattern, window, where, report)
        self.last_uri = uri
        if uri not in self.used:
            self.used.append(uri)
        return result

    def uris(self) -> list:
        """Sources used so far, then every stix-shifter profile (for completion)."""
        profiles = [f"stixshifter://{name}" for name in self.stixshifter.profile_names()]
        return list(dict.fromkeys(self.used + profiles))
