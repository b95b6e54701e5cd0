"""stixshifter://NAME[,NAME...]: SIEMs and EDRs through stix-shifter connectors.

A profile (connector, connection, config) comes from the configuration
(`stixshifter.profiles.NAME`) or from STIXSHIFTER_NAME_CONNECTOR, _CONNECTION
and _CONFIG (JSON).  A variable wins over the file for its part, and the
environment is read at every query, so a notebook may add profiles.

A query translates the STIX pattern, always with START/STOP (connectors
otherwise search only their last minutes), into native queries; runs each
(create, poll while asynchronous, fetch pages until an empty one, with
options.result_limit raised: connectors default to 10,000); translates the
pages back to STIX; and cuts the records to the window here, as for bundles,
since connectors apply time ranges loosely.  `x IN (...)` is sent as ORs of
equalities: some connectors (mysql 8.1.3) mistranslate IN.  Secrets
(config.auth and secret-like keys) are redacted from every message, native
query and log line.
"""

from __future__ import annotations

from ...errors import DataSourceError
from ..base import QueryResult, TimeSpan
from .profiles import Profiles, merged_settings
from .run import Run, stix_pattern

__all__ = ["StixShifterSource", "stix_pattern"]


class StixShifterSource:
    """Runs queries on stix-shifter profiles; FIND asks it for records by entity identity."""

    def __init__(self, config):
        self.section = config.stixshifter if isinstance(config.stixshifter, dict) else {}
        self.profiles = Profiles(self.section)

    @property
    def prefetch_batch(self) -> int:
        """Values per FIND prefetch query: this source wants narrow patterns, not all of a type."""
        return merged_settings(self.section, {}, "stixshifter")["prefetch_batch"]

    def profile_names(self) -> list:
        return self.profiles.names()

    def query(self, uri, query, progress):
        names = [n.strip() for n in uri.split("://", 1)[1].split(",")]
        if not all(names):
            raise DataSourceError(f"{uri} names no profile (stixshifter://NAME[,NAME...])")
        profiles = [self.profiles.get(name) for name in names]  # all checked before any query
        combined = QueryResult([])
        for profile in profiles:
            found = Run(profile, progress).query(query)
            combined.bundles.extend(found.bundles)
            label = f"{profile.name}: " if len(profiles) > 1 else ""
            combined.native_queries.extend(label + q for q in found.native_queries)
            combined.time_span = TimeSpan.of(combined.time_span, found.time_span)
        return combined
