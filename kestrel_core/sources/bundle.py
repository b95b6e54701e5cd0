"""STIX 2.0/2.1 bundles from files, directories, globs and http(s) URLs.

The bundle is read once per session (re-read when a file changes), its
records are cut to the time window here (firepit ignores START/STOP), and
records must match extended subgraphs (other entity types in the ECGP) as a
whole (see match.py); the store then picks the center entities.
"""

from __future__ import annotations

import copy
import glob
import json
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import requests

from ..errors import DataSourceError
from ..syntax.ast import parse_timestamp
from .match import matches


class BundleSource:
    def __init__(self, config):
        self.timeout = config.http_timeout
        self._cache = {}

    def query(self, uri, entity_type, pattern, window, where=None, progress=None):
        """Records of the bundle(s) in `window`; with `where`, only records matching it."""
        from . import QueryResult

        records, shared = [], {}
        locations = self._locations(uri)
        for location in locations:
            found, objects = self._records(location)
            records.extend(found)
            shared.update(objects)
        if window:
            start, stop = (parse_timestamp(t) if isinstance(t, str) else t for t in window)
            records = [r for r in records if _in_window(r, start, stop)]
        if where is not None:
            records = [r for r in records if matches(where, r, entity_type, shared)]
        referenced = {ref for r in records for ref in r.get("object_refs", ())}
        objects = records + [o for i, o in shared.items() if i in referenced]
        spec = "2.1" if referenced else "2.0"
        bundle = {"type": "bundle", "id": "bundle--kestrel", "spec_version": spec,
                  "objects": copy.deepcopy(objects)}  # firepit's cache() consumes objects
        native = [f"read {len(locations)} bundle file(s) from {uri}; "
                  f"{len(records)} observations in the time range"]
        return QueryResult([bundle] if records else [], native)

    def _locations(self, uri):
        parsed = urlparse(uri)
        if parsed.scheme in ("http", "https"):
            return [uri]
        path = unquote(parsed.path) if parsed.scheme == "file" else uri
        path = os.path.expanduser(path)
        if os.path.isdir(path):
            found = sorted(str(p) for p in Path(path).glob("*.json"))
        elif any(c in path for c in "*?["):
            found = sorted(glob.glob(path))
        else:
            found = [path] if os.path.isfile(path) else []
        if not found:
            raise DataSourceError(f"no STIX bundle at {uri} (file not found)")
        return found

    def _records(self, location):
        if location.startswith(("http://", "https://")):
            return self._parse(self._download(location), location)
        stamp = os.stat(location).st_mtime_ns
        cached = self._cache.get(location)
        if cached and cached[0] == stamp:
            return cached[1]
        try:
            text = Path(location).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise DataSourceError(f"cannot read {location}: {err}") from None
        parsed = self._parse(text, location)
        self._cache[location] = (stamp, parsed)
        return parsed

    def _download(self, url):
        try:
            response = requests.get(url, timeout=self.timeout)
            response.raise_for_status()
        except requests.RequestException as err:
            raise DataSourceError(f"cannot fetch {url}: {err.__class__.__name__}: {err}") from None
        return response.text

    @staticmethod
    def _parse(text, location):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataSourceError(
                f"{location} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
            ) from None
        objects = data.get("objects") if isinstance(data, dict) else data
        if not isinstance(objects, list):
            raise DataSourceError(f"{location} is not a STIX bundle (no list of objects)")
        records = [o for o in objects if isinstance(o, dict) and o.get("type") == "observed-data"]
        shared = {o["id"]: o for o in objects
                  if isinstance(o, dict) and o.get("type") != "observed-data" and "id" in o}
        for record in records:
            missing = [k for k in ("id", "first_observed", "last_observed") if k not in record]
            embedded = isinstance(record.get("objects"), dict)
            if missing or not (embedded or isinstance(record.get("object_refs"), list)):
                what = ", ".join(missing) or "objects (or object_refs)"
                raise DataSourceError(
                    f"{location}: observed-data {record.get('id', '?')} lacks {what}")
        if objects and not records:
            raise DataSourceError(f"{location} holds no STIX observed-data objects")
        return records, shared


def _in_window(record, start, stop):
    try:
        first = parse_timestamp(record["first_observed"])
    except ValueError:
        raise DataSourceError(
            f"observed-data {record['id']} has a bad first_observed: {record['first_observed']}"
        ) from None
    return start <= first < stop
