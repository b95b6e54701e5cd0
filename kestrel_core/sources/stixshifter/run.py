"""One profile's query: the STIX pattern (with START/STOP, `IN` spelled as ORs),
translated, transmitted with timeouts and retries, read page by page and translated
back to STIX, cut to the window and, when asked, matched as Kestrel matches records.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import copy
import json
import logging
import queue
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

from ...errors import DataSourceError
from ...redaction import redact
from ...syntax.ecgp import relax, to_stix
from ...timestamps import parse_timestamp, window_datetimes
from ..base import Query, QueryResult, TimeSpan
from ..match import matches
from .profiles import Profile

log = logging.getLogger(__package__)  # one logger for the source: kestrel.sources.stixshifter


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



def stix_pattern(where, entity_type: str, window: tuple) -> str:
    """The pattern a connector translates: always with START/STOP (connectors otherwise
    search only their last minutes), `x IN (...)` as ORs of equalities (some connectors,
    mysql 8.1.3, mistranslate IN), and without `IS [NOT] NULL`, which stix-shifter cannot
    translate (EXISTS): the source then answers more, and Kestrel matches the records."""
    exists_free = relax(where, lambda comparison: comparison.op != "IS")
    return to_stix(exists_free, entity_type, window, expand_in=True)


def _window(window, lookback) -> tuple:
    """A query's window as datetimes: the last `lookback` seconds when it has none."""
    if window is None:
        stop = datetime.now(timezone.utc)
        return stop - timedelta(seconds=lookback), stop
    return window_datetimes(window)


def _first_observed(record):
    """A record's time, or None when it has none that reads as one."""
    try:
        return parse_timestamp(record.get("first_observed", ""))
    except ValueError:
        return None


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
        import asyncio  # here: a session that never runs a connector does without it

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


class Run:
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

    def query(self, query: Query) -> QueryResult:
        """The bundles, native queries and record time span for `query`.  Every
        stix-shifter call runs in one worker thread with its own asyncio loop: stix-shifter
        runs coroutines on the calling thread's loop, and a Jupyter kernel's main thread
        already runs one."""
        self.pool = _Worker()
        try:
            return self._query(query)
        finally:
            self.pool.shutdown()  # never waits for a hung call

    def _query(self, query: Query):
        from stix_shifter.stix_translation.stix_translation import StixTranslation

        self.query, self.window = query, _window(query.window, self.settings["default_lookback"])
        full = stix_pattern(query.where, query.entity_type, self.window)
        self.translation = StixTranslation()
        dsl = self._call("translate the pattern", self.translation.translate,
                         self.profile.connector, "query", self.identity, full,
                         copy.deepcopy(self.options))
        if not isinstance(dsl, dict) or "queries" not in dsl:
            raise self._failure("could not translate the pattern", dsl)
        queries = [q if isinstance(q, str) else json.dumps(q) for q in dsl["queries"]]
        log.info("stixshifter://%s: %s -> %s", self.profile.name, full,
                 redact(queries, self.profile.secrets))
        bundles, self.span = [], None
        transmission = self._transmission()
        for native in dsl["queries"]:
            bundles.extend(self._fetch(transmission, native))
        return QueryResult(bundles, [redact(q, self.profile.secrets) for q in queries],
                           self.span)

    def _transmission(self):
        from stix_shifter.stix_transmission.stix_transmission import StixTransmission

        connection = copy.deepcopy(self.profile.connection)
        connection["options"] = copy.deepcopy(self.options)
        return StixTransmission(self.profile.connector, connection,
                                copy.deepcopy(self.profile.config))

    def _fetch(self, transmission, native):
        search_id = self._attempt("create the search", transmission.query, native)["search_id"]
        is_async = transmission.is_async()
        if isinstance(is_async, dict):  # the connector could not even start
            raise self._failure("could not start", is_async)
        try:
            if is_async:
                self._wait(transmission, search_id)
            return self._pages(transmission, search_id)
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

    def _pages(self, transmission, search_id):
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
            bundles.append(self._to_stix(rows))
            self.report(f"{self.profile.name}: page {page}, {offset} rows")
        else:
            log.warning("stixshifter://%s: stopped at result_limit %d; there may be more",
                        self.profile.name, limit)
            self.report(f"{self.profile.name}: stopped at result_limit {limit}")
        return [b for b in bundles if b]

    def _to_stix(self, rows):
        bundle = self._call("translate results to STIX", self.translation.translate,
                            self.profile.connector, "results", self.identity, rows,
                            copy.deepcopy(self.options))
        if not isinstance(bundle, dict) or "objects" not in bundle:
            raise self._failure("could not translate results to STIX", bundle)
        objects = bundle["objects"]
        shared = {o["id"]: o for o in objects if o.get("type") != "observed-data" and "id" in o}
        start, stop = self.window
        records = []
        for record in (o for o in objects if o.get("type") == "observed-data"):
            moment = _first_observed(record)
            if moment is None:
                continue
            self.span = TimeSpan.of(self.span, TimeSpan(moment, moment))
            if start <= moment < stop and self._matches(record, shared):
                records.append(record)
        if not records:
            return None
        referenced = {r for o in records for r in o.get("object_refs", ())}
        kept = [o for i, o in shared.items() if i in referenced or o.get("type") == "identity"]
        return dict(bundle, objects=kept + records)

    def _matches(self, record, shared) -> bool:
        """Kestrel's own matching of the whole record, when the query asks for it."""
        query = self.query
        if not query.exact or query.where is None:
            return True
        return matches(query.where, record, query.entity_type, shared)

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
