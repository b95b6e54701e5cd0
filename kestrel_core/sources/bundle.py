"""STIX 2.0/2.1 bundles from files, directories, globs and http(s) URLs.

A URI may list several, comma-joined; an entry without a scheme takes the first
entry's (`file:///a.json,/b.json`, as in v1).  A relative path, after file:// too,
starts at the working directory (in Jupyter, the notebook's folder).

A bundle is read once and streamed (ijson), never held whole: all its records go
to the store, which answers every later GET and FIND of the unchanged bundle with
SQL (store/copies.py).  A changed bundle (another size or modification time; for
a URL, another body) is read again.
"""

from __future__ import annotations

import contextvars
import glob
import hashlib
import io
import os
import re
import threading
from datetime import datetime, timezone
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import ijson

from ..errors import DataSourceError
from ..redaction import redact
from ..timestamps import format_timestamp, parse_timestamp
from ..stix import NOT_OBSERVABLES
from .base import QueryResult, TimeSpan
from .depth import DepthGuard

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


@dataclass
class Snapshot:
    """One bundle file or URL as it is now: `key` names its content (a file's path, size
    and modification time; a URL's body, hashed), so an unchanged bundle is known
    without reading it again.  A downloaded body is kept for `read`."""

    location: str
    key: str
    body: bytes | None = None


class BundleSource:
    """Bundles are read whole, once: the store keeps every record (store/copies.py) and
    answers each GET and FIND of an unchanged bundle itself."""

    def __init__(self, config):
        self.timeout = config.http_timeout

    def snapshots(self, uri) -> list:
        """The files and URLs a URI names (globs, folders, comma-joined entries), as now."""
        return [self._snapshot(found) for entry in entries(uri)
                for found in self._locations(entry)]

    def _snapshot(self, location) -> Snapshot:
        if _is_http(location):
            body = self._download(location)
            return Snapshot(location, _key("url", location, hashlib.sha256(body).hexdigest()),
                            body)
        try:
            status = os.stat(location)
        except OSError as err:
            raise DataSourceError(f"cannot read {location}: {err.strerror}") from None
        return Snapshot(location, _key("file", os.path.realpath(location), status.st_size,
                                       status.st_mtime_ns))

    def read(self, snapshot: Snapshot, progress) -> QueryResult:
        """Every record of the bundle, as bundles of at most BATCH records produced while
        the store ingests them (memory stays bounded); the result's description and time
        span are complete once they are read."""
        result = QueryResult([])
        result.bundles = self._batches(snapshot, progress, result)
        return result

    def _batches(self, snapshot, progress, result):
        """The bundle's records and observables (STIX 2.1 has them beside the records),
        BATCH records at a time, in their order: the store takes each object alone."""
        batch, seen, earliest, latest = [], 0, None, None
        for obj in self._objects(snapshot):
            batch.append(obj)
            if obj["type"] != "observed-data":
                continue
            seen += 1
            moment = _first_observed(obj)
            if earliest is None or moment < earliest:
                earliest = moment
            if latest is None or moment > latest:
                latest = moment
            if seen % BATCH == 0:
                yield {"type": "bundle", "id": "bundle--kestrel", "objects": batch}
                batch = []
                progress(f"{_shown(snapshot.location)}: {seen} records read")
        if batch:
            yield {"type": "bundle", "id": "bundle--kestrel", "objects": batch}
        if earliest is not None:
            result.time_span = TimeSpan(earliest, latest)
        result.records = seen
        result.native_queries.append(f"read {_shown(snapshot.location)}: {seen} observations")

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

    def _objects(self, snapshot):
        """observed-data and cyber-observables of one file or URL, streamed."""
        location = snapshot.location
        if snapshot.body is not None:
            stream = io.BytesIO(snapshot.body)
        else:
            try:
                stream = open(location, "rb")
            except OSError as err:
                raise DataSourceError(f"cannot read {location}: {err.strerror}") from None
        with stream:
            yield from _observations(DepthGuard(stream, _shown(location)), _shown(location))

    def _download(self, url):
        """The body at `url`, all of it within http_timeout seconds (a server that stalls
        or trickles fails then). The download runs in a daemon thread, so the wait here
        stays interruptible and an abandoned download never delays the process's exit."""
        import requests  # only for http(s) sources
        import urllib3

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


def _key(*parts) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:32]


def _is_http(uri: str) -> bool:
    return uri.lower().startswith(("http://", "https://"))


def _shown(uri: str) -> str:
    """A URI as messages show it: a password in it becomes ***."""
    return redact(uri, ())


def _observations(stream, location):
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
            kind = obj.get("type")
            if kind == "observed-data":
                _check_record(obj, location)
                records += 1
                yield obj
            elif "id" in obj and isinstance(kind, str) and kind not in NOT_OBSERVABLES:
                yield obj
    except ijson.JSONError as err:
        raise DataSourceError(f"{location} is not valid JSON ({err})") from None
    except UnicodeDecodeError:  # a lone surrogate escape (\udc00), which no text holds
        raise DataSourceError(f"{location} is not valid JSON: after its first {objects} "
                              "objects, a string holds an escape that is no character "
                              "(a lone surrogate such as \\udc00)") from None
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
    odd = [key for key, obj in record["objects"].items() if not isinstance(obj, dict)] \
        if embedded else []
    if odd:
        raise DataSourceError(f"{location}: observed-data {record['id']} holds {odd[0]!r}, "
                              "which is not a STIX object (a JSON object with a type)")
    for key in ("first_observed", "last_observed"):
        if not isinstance(record[key], str):
            raise DataSourceError(f"{location}: observed-data {record['id']} has a bad {key}: "
                                  f"{record[key]!r} (a timestamp is text)")
        record[key] = _utc_text(record[key])


STIX_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def _utc_text(value):
    """A record time as STIX writes it (UTC, `Z`); other ISO 8601 forms (an offset, a
    space for the T, no zone: taken as UTC) are rewritten, anything else kept as it is."""
    if STIX_TIME.fullmatch(value):
        return value
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip())  # Python reads 6 digits at most
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return format_timestamp(moment)


def _first_observed(record):
    try:
        return parse_timestamp(record["first_observed"])
    except ValueError:
        raise DataSourceError(
            f"observed-data {record['id']} has a bad first_observed: {record['first_observed']}"
        ) from None
