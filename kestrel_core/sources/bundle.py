"""STIX 2.0/2.1 bundles from files, directories, globs and http(s) URLs.

A URI may list several, comma-joined; an entry without a scheme takes the first
entry's (`file:///a.json,/b.json`, as in v1).  A relative path, after file:// too,
starts at the working directory (in Jupyter, the notebook's folder).

A bundle is streamed (ijson), never held whole: each record is kept only if it
lies in the time window (firepit ignores START/STOP) and matches the ECGP as a
record (see match.py), so the store ingests just the matching records and
picks the center entities from them.  Like a real data source, a bundle
answers a query with the records that match it.
"""

from __future__ import annotations

import contextvars
import copy
import glob
import io
import os
import re
import threading
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote

import ijson
import requests
import urllib3

from ..errors import DataSourceError
from ..redaction import redact
from ..timestamps import format_timestamp, parse_timestamp, window_datetimes
from .base import QueryResult, TimeSpan
from .match import compiled, holds_type, record_objects

# Records to hand the store at a time: bounds memory whatever the bundle's size.
BATCH = 5000

SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")  # as the grammar's URI token starts


def entries(uri: str) -> list:
    """The comma-joined entries of a URI, each with the first entry's scheme:
    stixshifter://edr,siem is stixshifter://edr and stixshifter://siem."""
    first, *rest = [entry.strip() for entry in uri.split(",")]
    scheme = SCHEME.match(first)
    return [first] + [(scheme.group() if scheme else "") + entry for entry in rest]


def local_path(text: str) -> str:
    """The file a path or file:// URL names.  As in v1, all after file:// is the path:
    file:///abs/x.json is absolute and file://data/x.json relative (urlparse would take
    `data` for a host)."""
    if text[:7].lower() == "file://":
        return os.path.expanduser(unquote(text[7:]))
    if text[:5].lower() == "file:":
        raise DataSourceError(f"{text} is no file URL: write file://PATH (file:///abs/x.json, "
                              "file://data/x.json) or the path alone")
    return os.path.expanduser(text)


class BundleSource:
    # values per FIND prefetch pattern (matched here in Python, so large batches are fine)
    prefetch_batch = 1_000_000
    # A bundle's processes without x_unique_id (and its connections) get a new firepit
    # identity in every record, so records found by pid or ports would join nothing.
    prefetch_identities = {"process": (("x_unique_id",),), "network-traffic": ()}

    def __init__(self, config):
        self.timeout = config.http_timeout

    def query(self, uri, query, progress):
        """Records of the bundle(s) matching `query` (a Kestrel match of whole records,
        whatever `query.exact` says: a bundle has no query language of its own), as
        bundles of at most BATCH records, produced while the store ingests them (memory
        stays bounded); the native query's description is complete once they are read."""
        locations = [found for entry in entries(uri) for found in self._locations(entry)]
        result = QueryResult([])
        result.bundles = self._batches(uri, locations, query, progress, result)
        return result

    def _batches(self, uri, locations, query, progress, result):
        start, stop = window_datetimes(query.window) or (None, None)
        test = (compiled(query.where, query.entity_type) if query.where is not None
                else holds_type(query.entity_type))
        batch, kept, seen, shared = [], 0, 0, {}
        earliest = latest = None
        for location in locations:
            for record in self._records(location, shared):
                seen += 1
                if start is not None:
                    moment = _first_observed(record)
                    if earliest is None or moment < earliest:
                        earliest = moment
                    if latest is None or moment > latest:
                        latest = moment
                    if not start <= moment < stop:
                        continue
                if not test(record_objects(record, shared)):
                    continue
                batch.append(record)
                kept += 1
                if len(batch) == BATCH:
                    yield _bundle(batch, shared)
                    batch = []
                    progress(f"{_shown(uri)}: {seen} records read, {kept} match")
        if batch:
            yield _bundle(batch, shared)
        if earliest is not None:
            result.time_span = TimeSpan(earliest, latest)
        result.native_queries.append(
            f"read {len(locations)} bundle file(s) from {_shown(uri)}: {seen} observations, "
            f"{kept} in the time range matching the pattern")

    def _locations(self, uri):
        if _is_http(uri):
            return [uri]
        path = local_path(uri)
        if os.path.isdir(path):
            found = sorted(str(p) for p in Path(path).glob("*.json"))
        elif any(c in path for c in "*?["):
            found = sorted(glob.glob(path))
        else:
            found = [path] if os.path.isfile(path) else []
        if not found:
            raise DataSourceError(f"no STIX bundle at {_shown(uri)} (file not found)")
        return found

    def _records(self, location, shared):
        """observed-data of one file or URL, streamed; other objects with an id go to
        `shared` (STIX 2.1 records refer to them)."""
        if _is_http(location):
            stream = io.BytesIO(self._download(location))
        else:
            try:
                stream = open(location, "rb")
            except OSError as err:
                raise DataSourceError(f"cannot read {location}: {err.strerror}") from None
        with stream:
            yield from _observed_data(stream, _shown(location), shared)

    def _download(self, url):
        """The body at `url`, all of it within http_timeout seconds (a server that stalls
        or trickles fails then). The download runs in a daemon thread, so the wait here
        stays interruptible and an abandoned download never delays the process's exit."""
        shown, done, stop, box = _shown(url), threading.Event(), threading.Event(), {}

        def fetch():
            try:
                with requests.get(url, timeout=self.timeout, stream=True) as response:
                    response.raise_for_status()
                    chunks = []
                    while not stop.is_set():
                        chunk = response.raw.read1(1 << 16, decode_content=True)
                        if not chunk:
                            box["content"] = b"".join(chunks)
                            return
                        chunks.append(chunk)
            except Exception as err:  # any failure of the download is the caller's to report
                box["error"] = err
            finally:
                done.set()

        threading.Thread(target=contextvars.copy_context().run, args=(fetch,),
                         name="kestrel-http", daemon=True).start()
        try:
            finished = done.wait(self.timeout)
        finally:
            stop.set()  # a timeout, or KeyboardInterrupt: the download stops at its next read
        error = box.get("error")
        if not finished or isinstance(error, (requests.Timeout, urllib3.exceptions.TimeoutError)) \
                or "timed out" in str(error or ""):
            raise DataSourceError(f"cannot fetch {shown}: no complete answer within "
                                  f"{self.timeout} s (http_timeout)")
        if error is not None:
            reason = redact(f"{error.__class__.__name__}: {error}", ())
            raise DataSourceError(f"cannot fetch {shown}: {reason}")
        return box["content"]


def _is_http(uri: str) -> bool:
    return uri.lower().startswith(("http://", "https://"))


def _shown(uri: str) -> str:
    """A URI as messages show it: a password in it becomes ***."""
    return redact(uri, ())


def _observed_data(stream, location, shared):
    first = _first_byte(stream)
    if first == b"":
        raise DataSourceError(f"{location} is empty (not valid JSON)")
    if first not in (b"{", b"["):
        if first in b'"-0123456789tfn':  # JSON, but a lone string, number or constant
            raise DataSourceError(f"{location} is not a STIX bundle (no list of objects)")
        raise DataSourceError(f"{location} is not valid JSON (it starts with {first!r})")
    prefix = "objects.item" if first == b"{" else "item"
    objects = records = 0
    try:
        for obj in ijson.items(stream, prefix, use_float=True):
            objects += 1
            if not isinstance(obj, dict):
                continue
            if obj.get("type") == "observed-data":
                _check_record(obj, location)
                records += 1
                yield obj
            elif "id" in obj:
                shared[obj["id"]] = obj
    except ijson.JSONError as err:
        raise DataSourceError(f"{location} is not valid JSON ({err})") from None
    if not objects and first == b"{":
        stream.seek(0)
        top = _top_level_keys(stream, location)
        if not isinstance(top.get("objects"), list):
            raise DataSourceError(f"{location} is not a STIX bundle (no list of objects)")
    if objects and not records:
        raise DataSourceError(f"{location} holds no STIX observed-data objects")


def _first_byte(stream) -> bytes:
    while True:
        byte = stream.read(1)
        if byte == b"" or not byte.isspace():
            stream.seek(stream.tell() - len(byte))
            return byte


def _top_level_keys(stream, location) -> dict:
    try:
        return dict(ijson.kvitems(stream, "", use_float=True))
    except ijson.JSONError as err:
        raise DataSourceError(f"{location} is not valid JSON ({err})") from None


def _check_record(record, location):
    missing = [k for k in ("id", "first_observed", "last_observed") if k not in record]
    embedded = isinstance(record.get("objects"), dict)
    if missing or not (embedded or isinstance(record.get("object_refs"), list)):
        what = ", ".join(missing) or "objects (or object_refs)"
        raise DataSourceError(f"{location}: observed-data {record.get('id', '?')} lacks {what}")
    for key in ("first_observed", "last_observed"):
        record[key] = _utc_text(record[key])


STIX_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def _utc_text(value):
    """A record time as STIX writes it (UTC, `Z`); other ISO 8601 forms (an offset, a
    space for the T, no zone: taken as UTC) are rewritten, anything else kept as it is."""
    if not isinstance(value, str) or STIX_TIME.fullmatch(value):
        return value
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip())  # Python reads 6 digits at most
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return format_timestamp(moment)


def _bundle(records, shared):
    """A bundle firepit can cache: STIX 2.1 records bring the objects they refer to."""
    referenced = {ref for r in records for ref in r.get("object_refs", ())}
    # firepit's cache() rewrites the objects it gets; shared ones may serve another batch
    objects = records + [copy.deepcopy(shared[i]) for i in referenced if i in shared]
    return {"type": "bundle", "id": "bundle--kestrel",
            "spec_version": "2.1" if referenced else "2.0", "objects": objects}


def _first_observed(record):
    try:
        return parse_timestamp(record["first_observed"])
    except ValueError:
        raise DataSourceError(
            f"observed-data {record['id']} has a bad first_observed: {record['first_observed']}"
        ) from None
