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

import asyncio
import concurrent.futures
import contextvars
import copy
import functools
import importlib.util
import json
import logging
import os
import pkgutil
import queue
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from importlib import resources

import yaml

from ..errors import DataSourceError
from ..redaction import redact, remember, secrets_of
from ..syntax.ast import format_timestamp, parse_timestamp
from .match import matches

log = logging.getLogger(__name__)

ENV_PREFIX = "STIXSHIFTER_"
PARTS = ("connector", "connection", "config")
SETTINGS = {  # key -> kind; defaults live in config/defaults.yaml
    "page_size": int, "result_limit": int, "default_lookback": int, "call_timeout": int,
    "query_timeout": int, "poll_interval": float, "retries": int, "retry_backoff": float,
    "retry_on": list, "prefetch_batch": int,
}


class _ConnectorLog(logging.Handler):
    """stix-shifter's log lines go to the session log, redacted, never to the user's stderr."""

    def emit(self, record):
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call in a connector must not break a query
            message = str(record.msg)
        log.log(record.levelno, "%s: %s", record.name, redact(message))


def _capture_connector_logs():
    if any(isinstance(h, _ConnectorLog) for h in logging.getLogger("stix_shifter").handlers):
        return
    handler = _ConnectorLog()
    for name in ("stix_shifter", "stix_shifter_utils", "stix_shifter_modules"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


# ------------------------------------------------------------------ profiles


@dataclass
class Profile:
    name: str
    connector: str
    connection: dict
    config: dict
    settings: dict
    secrets: frozenset

    def error(self, message, code=None) -> DataSourceError:
        err = DataSourceError(redact(f"stixshifter://{self.name}: {message}", self.secrets))
        err.code = code  # the connector's error code, when it gave one
        return err


def _env_name(name, part):
    return f"{ENV_PREFIX}{name.upper()}_{part.upper()}"


def _kind(value):
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


class Profiles:
    """Profile lookup with errors that name the variable or key at fault."""

    def __init__(self, section: dict):
        self.section = section

    def raw(self) -> dict:
        """name -> part -> (value, origin); JSON is parsed later, so listing never fails."""
        found = {}
        profiles = self.section.get("profiles") or {}
        if isinstance(profiles, dict):
            for name, entry in profiles.items():
                where = f"configuration key stixshifter.profiles.{name}"
                parts = entry.items() if isinstance(entry, dict) else [("", entry)]
                found[str(name).lower()] = {k: (v, f"{where}.{k}" if k else where)
                                            for k, v in parts}
        for var, text in os.environ.items():
            if not var.startswith(ENV_PREFIX):
                continue
            name, _, part = var[len(ENV_PREFIX):].rpartition("_")
            if name and part.lower() in PARTS:
                found.setdefault(name.lower(), {})[part.lower()] = (text, var)
        return found

    def names(self) -> list:
        return sorted(self.raw())

    def get(self, name: str) -> Profile:
        if not isinstance(self.section.get("profiles") or {}, dict):
            raise DataSourceError("configuration stixshifter.profiles must be a mapping of "
                                  "profile names to {connector, connection, config}")
        key = name.lower()
        entry = self.raw().get(key)
        if entry is None:
            defined = ", ".join(self.names()) or "none"
            raise DataSourceError(
                f'no stix-shifter profile "{name}" (defined: {defined}); set '
                f"{_env_name(key, 'connector')}, {_env_name(key, 'connection')} and "
                f"{_env_name(key, 'config')}, or stixshifter.profiles.{key} in the configuration")
        if "" in entry:
            raise DataSourceError(f"{entry[''][1]} must be a mapping with connector, connection "
                                  f"and config, not {_kind(entry[''][0])}")
        parts = {part: self._part(key, entry, part) for part in PARTS}
        secrets = frozenset(secrets_of(parts["connection"]) | secrets_of(parts["config"]))
        remember(secrets)
        extra = {k: v for k, (v, _) in entry.items() if k not in PARTS}
        unknown = sorted(set(extra) - set(SETTINGS))
        if unknown:
            known = ", ".join(PARTS + tuple(SETTINGS))
            raise DataSourceError(f"unknown keys in stixshifter.profiles.{key}: "
                                  f"{', '.join(unknown)} (known: {known})")
        settings = merged_settings(self.section, extra, f"stixshifter.profiles.{key}")
        profile = Profile(key, parts["connector"], parts["connection"], parts["config"],
                          settings, secrets)
        _check_connector(profile, entry["connector"][1])
        return profile

    def _part(self, key, entry, part):
        if part not in entry:
            raise DataSourceError(
                f'stix-shifter profile "{key}" has no {part}: set {_env_name(key, part)} '
                f"or stixshifter.profiles.{key}.{part}")
        value, origin = entry[part]
        if part == "connector":
            if not isinstance(value, str) or not value.strip():
                raise DataSourceError(f"{origin} must name a connector (e.g. elastic_ecs), "
                                      f"not {_kind(value)}")
            return value.strip()
        if isinstance(value, str) and origin.startswith(ENV_PREFIX):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as err:  # its message never quotes the text
                raise DataSourceError(f"{origin} is not valid JSON ({err.msg} at line "
                                      f"{err.lineno}, column {err.colno})") from None
        if not isinstance(value, dict):
            raise DataSourceError(f"{origin} must be a JSON object, not {_kind(value)}")
        if part == "connection" and not ("host" in value or "url" in value):
            raise DataSourceError(f'{origin} lacks "host" (where the data source listens)')
        if part == "config" and not isinstance(value.get("auth"), dict):
            raise DataSourceError(f'{origin} lacks "auth", the credentials object '
                                  '(e.g. {"auth": {"username": ..., "password": ...}})')
        return copy.deepcopy(value)


def _check_connector(profile, origin):
    if importlib.util.find_spec(f"stix_shifter_modules.{profile.connector}") is None:
        import stix_shifter_modules

        installed = sorted(m.name for m in pkgutil.iter_modules(stix_shifter_modules.__path__))
        raise profile.error(
            f'connector "{profile.connector}" (from {origin}) is not installed (installed: '
            f"{', '.join(installed) or 'none'}); install it with pip install "
            f"stix-shifter-modules-{profile.connector}=={_stix_shifter_version()}")


def _stix_shifter_version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("stix-shifter")
    except PackageNotFoundError:
        return "<the stix-shifter version>"


@functools.lru_cache(maxsize=1)
def _package_defaults() -> dict:
    text = resources.files("kestrel").joinpath("config/defaults.yaml").read_text()
    return yaml.safe_load(text).get("stixshifter") or {}


def merged_settings(section: dict, overrides: dict, where: str) -> dict:
    """Package defaults < the configuration's stixshifter section < a profile's own keys."""
    settings = {k: copy.deepcopy(v) for k, v in _package_defaults().items() if k != "profiles"}
    layers = [({k: v for k, v in section.items() if k != "profiles"}, "stixshifter"),
              (overrides, where)]
    for layer, origin in layers:
        unknown = sorted(set(layer) - set(SETTINGS))
        if unknown:
            raise DataSourceError(f"unknown configuration keys in {origin}: {', '.join(unknown)} "
                                  f"(known: profiles, {', '.join(SETTINGS)})")
        for key, value in layer.items():
            settings[key] = _setting(key, value, f"{origin}.{key}")
    return settings


def _setting(key, value, origin):
    kind = SETTINGS[key]
    if kind is list:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        raise DataSourceError(f"configuration {origin} must be a list of error codes")
    if not isinstance(value, bool):
        try:
            number = kind(value)
            if number >= 0:
                return number
        except (TypeError, ValueError):
            pass
    raise DataSourceError(f"configuration {origin} must be a number >= 0, not {value!r}")


# ------------------------------------------------------------------ patterns


_TOKEN = re.compile(r"""
    (?P<string>[bht]?'(?:[^'\\]|\\.)*')
  | (?P<word>(?:[^\s()\[\],']|\[(?:\*|\d+)\]|'(?:[^'\\]|\\.)*')+)
  | (?P<punct>[()\[\],])
  | \s+""", re.X)


def expand_in(pattern: str) -> str:
    """`a IN (x, y)` -> `(a = x OR a = y)`, `a NOT IN (...)` -> `(a != x AND ...)`."""
    tokens = [(m.lastgroup, m.group(), m.start(), m.end())
              for m in _TOKEN.finditer(pattern) if m.lastgroup]
    out, last, i = [], 0, 0
    while i < len(tokens):
        kind, text, start, _ = tokens[i]
        negated = i + 1 < len(tokens) and tokens[i + 1][1].upper() == "NOT"
        j = i + (2 if negated else 1)
        if (kind == "word" and ":" in text and j + 1 < len(tokens)
                and tokens[j][1].upper() == "IN" and tokens[j + 1][1] == "("):
            values, k = [], j + 2
            while k < len(tokens) and tokens[k][1] != ")":
                if tokens[k][1] != ",":
                    values.append(tokens[k][1])
                k += 1
            if k < len(tokens) and values:
                op, joiner = ("!=", " AND ") if negated else ("=", " OR ")
                out.append(pattern[last:start])
                out.append("(" + joiner.join(f"{text} {op} {v}" for v in values) + ")")
                last, i = tokens[k][3], k + 1
                continue
        i += 1
    out.append(pattern[last:])
    return "".join(out)


def _window(window, lookback):
    if window is None:
        stop = datetime.now(timezone.utc)
        return stop - timedelta(seconds=lookback), stop
    return tuple(parse_timestamp(t) if isinstance(t, str) else t for t in window)


def _in_window(record, start, stop):
    try:
        return start <= parse_timestamp(record.get("first_observed", "")) < stop
    except ValueError:
        return False


class _Worker:
    """One daemon thread, with its own asyncio loop, running connector calls in turn.

    stix-shifter runs coroutines on the calling thread's loop, and a Jupyter kernel's main
    thread already runs one. A daemon thread (not a ThreadPoolExecutor's, which the
    interpreter joins at exit) lets a call past call_timeout be abandoned without keeping
    the process alive until the connector gives up."""

    def __init__(self):
        self.calls = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="stixshifter", daemon=True).start()

    def _serve(self):
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            while (call := self.calls.get()) is not None:
                future, context, function, args = call
                if not future.set_running_or_notify_cancel():
                    continue
                try:  # in the caller's context: its session's log gets the lines
                    future.set_result(context.run(function, *args))
                except BaseException as err:  # handed to the waiting caller
                    future.set_exception(err)
        finally:
            loop.close()

    def submit(self, function, *args) -> concurrent.futures.Future:
        future = concurrent.futures.Future()
        self.calls.put((future, contextvars.copy_context(), function, args))
        return future

    def shutdown(self):
        """Ends the thread after the call it runs, if any (never waits for it)."""
        self.calls.put(None)


# ------------------------------------------------------------------ the source


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

    def query(self, uri, entity_type, pattern, window, where=None, progress=None):
        from . import QueryResult

        names = [n.strip() for n in uri.split("://", 1)[1].split(",")]
        if not all(names):
            raise DataSourceError(f"{uri} names no profile (stixshifter://NAME[,NAME...])")
        profiles = [self.profiles.get(name) for name in names]  # all checked before any query
        report = progress or (lambda text: None)
        bundles, native = [], []
        for profile in profiles:
            run = _Run(profile, report)
            span = _window(window, profile.settings["default_lookback"])
            found, queries = run.query(pattern, span, entity_type, where)
            bundles.extend(found)
            label = f"{profile.name}: " if len(profiles) > 1 else ""
            native.extend(label + q for q in queries)
        return QueryResult(bundles, native)


class _Run:
    """One profile's query: translate, transmit with timeouts and retries, translate back."""

    def __init__(self, profile: Profile, report):
        _capture_connector_logs()
        self.profile = profile
        self.settings = profile.settings
        self.report = report
        options = dict(profile.connection.get("options") or {})
        options.setdefault("result_limit", self.settings["result_limit"])
        self.options = options
        self.identity = {"type": "identity", "identity_class": "events", "name": profile.name,
                         "id": f"identity--{uuid.uuid5(uuid.NAMESPACE_URL, profile.name)}"}

    def query(self, pattern, window, entity_type, where):
        """Every stix-shifter call runs in one worker thread with its own asyncio loop:
        stix-shifter runs coroutines on the calling thread's loop, and a Jupyter kernel's
        main thread already runs one."""
        self.pool = _Worker()
        try:
            return self._query(pattern, window, entity_type, where)
        finally:
            self.pool.shutdown()  # never waits for a hung call

    def _query(self, pattern, window, entity_type, where):
        from stix_shifter.stix_translation.stix_translation import StixTranslation

        start, stop = window
        full = f"{expand_in(pattern)} START t'{format_timestamp(start)}' " \
               f"STOP t'{format_timestamp(stop)}'"
        self.translation = StixTranslation()
        dsl = self._call("translate the pattern", self.translation.translate,
                         self.profile.connector, "query", self.identity, full,
                         copy.deepcopy(self.options))
        if not isinstance(dsl, dict) or "queries" not in dsl:
            raise self._failure("could not translate the pattern", dsl)
        queries = [q if isinstance(q, str) else json.dumps(q) for q in dsl["queries"]]
        log.info("stixshifter://%s: %s -> %s", self.profile.name, full,
                 redact(queries, self.profile.secrets))
        bundles = []
        transmission = self._transmission()
        for query in dsl["queries"]:
            bundles.extend(self._fetch(transmission, query, start, stop, entity_type, where))
        return bundles, [redact(q, self.profile.secrets) for q in queries]

    def _transmission(self):
        from stix_shifter.stix_transmission.stix_transmission import StixTransmission

        connection = copy.deepcopy(self.profile.connection)
        connection["options"] = copy.deepcopy(self.options)
        return StixTransmission(self.profile.connector, connection,
                                copy.deepcopy(self.profile.config))

    def _fetch(self, transmission, query, start, stop, entity_type, where):
        search_id = self._attempt("create the search", transmission.query, query)["search_id"]
        is_async = transmission.is_async()
        if isinstance(is_async, dict):  # the connector could not even start
            raise self._failure("could not start", is_async)
        try:
            if is_async:
                self._wait(transmission, search_id)
            return self._pages(transmission, search_id, start, stop, entity_type, where)
        finally:
            if is_async:
                try:
                    self._call("delete the search", transmission.delete, search_id)
                except DataSourceError as err:  # cleanup must not mask the result or error
                    log.warning("%s", err)

    def _wait(self, transmission, search_id):
        deadline = time.monotonic() + self.settings["query_timeout"]
        while True:
            status = self._attempt("report the search status", transmission.status, search_id)
            state = str(status.get("status", "")).upper()
            if state in ("ERROR", "CANCELED", "CANCELLED"):
                raise self._failure(f"search ended with status {state}", status)
            if state == "COMPLETED" or status.get("progress", 0) >= 100:
                return
            if time.monotonic() > deadline:
                raise self.profile.error(
                    f"the search still ran after {self.settings['query_timeout']} s "
                    "(stixshifter.query_timeout)", code="timeout")
            self.report(f"{self.profile.name}: search {status.get('progress', 0)}% done")
            time.sleep(self.settings["poll_interval"])

    def _pages(self, transmission, search_id, start, stop, entity_type, where):
        size, limit = self.settings["page_size"] or 1, int(self.options["result_limit"])
        bundles, offset, page, metadata = [], 0, 0, None
        while offset < limit:
            args = (search_id, offset, min(size, limit - offset))
            args += (metadata,) if metadata else ()
            response = self._attempt("fetch results", transmission.results, *args)
            rows = response.get("data") or []
            if not rows:
                break
            page, offset = page + 1, offset + len(rows)
            metadata = response.get("metadata") or metadata
            bundles.append(self._to_stix(rows, start, stop, entity_type, where))
            self.report(f"{self.profile.name}: page {page}, {offset} rows")
        else:
            log.warning("stixshifter://%s: stopped at result_limit %d; there may be more",
                        self.profile.name, limit)
            self.report(f"{self.profile.name}: stopped at result_limit {limit}")
        return [b for b in bundles if b]

    def _to_stix(self, rows, start, stop, entity_type, where):
        bundle = self._call("translate results to STIX", self.translation.translate,
                            self.profile.connector, "results", self.identity, rows,
                            copy.deepcopy(self.options))
        if not isinstance(bundle, dict) or "objects" not in bundle:
            raise self._failure("could not translate results to STIX", bundle)
        objects = bundle["objects"]
        shared = {o["id"]: o for o in objects if o.get("type") != "observed-data" and "id" in o}
        records = [o for o in objects if o.get("type") == "observed-data"
                   and _in_window(o, start, stop)
                   and (where is None or matches(where, o, entity_type, shared))]
        if not records:
            return None
        referenced = {r for o in records for r in o.get("object_refs", ())}
        kept = [o for i, o in shared.items() if i in referenced or o.get("type") == "identity"]
        return dict(bundle, objects=kept + records)

    # -------------------------------------------------------------- calls

    def _call(self, what, function, *args):
        """A connector call bounded by call_timeout (the thread is abandoned after that)."""
        try:
            future = self.pool.submit(function, *args)
            try:
                return future.result(timeout=self.settings["call_timeout"])
            except concurrent.futures.TimeoutError:
                raise self.profile.error(
                    f"the {self.profile.connector} connector did not {what} within "
                    f"{self.settings['call_timeout']} s (stixshifter.call_timeout)",
                    code="timeout") from None
        except DataSourceError:
            raise
        except Exception as err:  # stix-shifter reports most failures as dicts; not all
            log.debug("stix-shifter %s failed", what, exc_info=True)
            raise self.profile.error(f"the {self.profile.connector} connector failed to {what}: "
                                     f"{type(err).__name__}: {err}") from None

    def _attempt(self, what, function, *args):
        """`_call` with retries and doubling backoff on transient error codes."""
        delay = self.settings["retry_backoff"]
        for attempt in range(self.settings["retries"] + 1):
            response = self._call(what, function, *args)
            if isinstance(response, dict) and response.get("success"):
                return response
            code = response.get("code") if isinstance(response, dict) else None
            if code not in self.settings["retry_on"] or attempt == self.settings["retries"]:
                raise self._failure(f"could not {what}", response)
            self.report(f"{self.profile.name}: {what} failed ({code}); retry "
                        f"{attempt + 1} of {self.settings['retries']} in {delay:g} s")
            log.warning("stixshifter://%s: %s failed (%s); retrying in %g s",
                        self.profile.name, what, code, delay)
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def _failure(self, what, response) -> DataSourceError:
        """The connector's own code and message as a DataSourceError."""
        response = response if isinstance(response, dict) else {"error": repr(response)}
        code = response.get("code") or "unknown"
        head, arrow, body = str(response.get("error") or "no details given").partition(" => ")
        parts = dict.fromkeys((body or head).split("; "))  # connectors repeat themselves
        message = head + arrow + "; ".join(parts) if arrow else "; ".join(parts)
        return self.profile.error(f"the {self.profile.connector} connector {what} ({code}): "
                                  f"{message}", code=code)
