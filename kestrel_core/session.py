"""The Kestrel Session: an isolated, stateful runtime for a huntflow.

It only wires the stages: parse -> check -> run the command -> commit the
variable.  A statement that fails commits nothing and removes the views it
had started, so earlier variables keep their contents.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from . import completion, runtime, semantics
from .analytics import AnalyticsManager, huntflow
from . import commands
from .commands.apply import huntflow_steps
from .commands.base import Context
from .config import load_config
from .errors import (InvalidArgument, KestrelError, KestrelInternalError, StoreError,
                     VariableNotFound)
from .redaction import redact
from .results import Figure, Inspection, Syntax, VariableSummary
from .sources import DataSourceManager
from .stix import KNOWN_ENTITY_TYPES
from .store import Store
from .symbols import SymbolTable, Variable
from .syntax import ast
from .syntax.parser import is_variable_name, parse

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


# firepit creates its shared PostgreSQL schema on first use without a lock: sessions that
# open a fresh database at the same moment collide; a moment later the schema is there
_FIRST_USE_RACE = ("duplicate key value", "already exists", "concurrently updated")


def _open_store(location, session_id, config, attempts=5):
    for attempt in range(attempts):
        try:
            return Store(location, session_id, config.store_connect_timeout,
                         config.store_statement_timeout)
        except StoreError as err:
            if attempt == attempts - 1 or not any(m in str(err) for m in _FIRST_USE_RACE):
                raise
            time.sleep(0.05 * 2 ** attempt)


class Session(AbstractContextManager):
    """See ../shared/spec/000 and 001: the documented Session API."""

    def __init__(self, session_id=None, runtime_dir=None, store_path=None, debug_mode=False):
        self.session_id = session_id or str(uuid.uuid4())
        with runtime.acting_for(self.session_id):
            self._open(runtime_dir, store_path, debug_mode)

    def _open(self, runtime_dir, store_path, debug_mode):
        self.debug_mode = debug_mode
        # the caller's when it existed before (seed 000: created and passed in); a new one
        # the session makes is the session's, removed on close like a temporary one
        self.runtime_directory_is_owned_by_upper_layer = (
            runtime_dir is not None and os.path.isdir(runtime_dir))
        self.config = load_config()
        self.runtime_directory = runtime.prepare(runtime_dir, self.session_id, debug_mode)
        if runtime.holds(self.runtime_directory, store_path):
            # a store the user named (e.g. a crashed session's, reopened): never removed
            self.runtime_directory_is_owned_by_upper_layer = True
        self._log_handler = None
        try:
            self.log_path, self._log_handler = runtime.start_log(
                self.runtime_directory, self.session_id, debug_mode)
            location = store_path or os.path.join(self.runtime_directory, "local.db")
            self._store = _open_store(location, self.session_id, self.config)
        except BaseException:
            self._release_runtime()
            raise
        self.symtable = SymbolTable()
        self.data_source_manager = DataSourceManager(self.config)
        self.analytics_manager = AnalyticsManager(self.config.analytics)
        self.progress = None  # callable(text): front ends show how long statements go
        self._restore_variables()
        self._closed = False

    @property
    def store(self):
        """The firepit storage (the documented attribute); a new one after the store's
        connection was lost and made again."""
        return self._store.fp

    # ------------------------------------------------------------ lifecycle

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        """Close the store; remove the runtime directory unless debugging or not ours."""
        if self._closed:
            return
        self._closed = True
        with runtime.acting_for(self.session_id):
            self._store.close()
            self._release_runtime()

    def _release_runtime(self):
        if self._log_handler is not None:
            runtime.stop_log(self._log_handler)
        if not (self.debug_mode or self.runtime_directory_is_owned_by_upper_layer):
            runtime.remove(self.runtime_directory)

    def _restore_variables(self):
        """Variables of a reopened store (store_path) come back, newest definition winning."""
        for row in self._store.views():
            appdata = row.get("appdata")
            if not appdata:
                continue
            try:
                variable = Variable.from_appdata(json.loads(appdata))
            except (ValueError, TypeError):
                continue
            current = self.symtable.get(variable.name)
            if current is None or current.version < variable.version:
                self.symtable[variable.name] = variable
            self.symtable.counter = max(self.symtable.counter, variable.version)

    # ------------------------------------------------------------ execution

    def parse(self, codeblock):
        """The statements of a code block as dicts (`command` names the statement)."""
        return [stmt.to_dict() for stmt in parse(codeblock)]

    def execute(self, codeblock):
        """Run a code block; returns the outputs (Result objects) of its statements."""
        return list(self.execute_iter(codeblock))

    def execute_iter(self, codeblock):
        """Run a code block, yielding each statement's outputs as soon as it finishes,
        so a front end shows what succeeded before a later statement fails."""
        for stmt in parse(codeblock):
            yield from self._run(stmt, codeblock)

    def _run(self, stmt, codeblock):
        with runtime.acting_for(self.session_id):
            return self._run_statement(stmt, codeblock)

    def _run_statement(self, stmt, codeblock):
        ctx = Context(self._store, self.symtable, self.data_source_manager,
                      self.analytics_manager, self.config, codeblock,
                      progress=self.progress or (lambda text: None))
        started = time.monotonic()
        log.info("executing: %s", redact(codeblock[stmt.span.start_pos:stmt.span.end_pos]))
        try:
            self._store.reconnect_if_lost()
        except KestrelError as err:
            raise err.at(stmt.span, codeblock)
        try:
            resolved = semantics.check(stmt, self.symtable, self._store, codeblock,
                                       self.config, datetime.now(timezone.utc))
            outcome = commands.run(resolved, ctx)
            summary = None
            if outcome.variable is not None:
                # views are lazy: reading the new one here surfaces its errors before commit
                summary = self._summary_of(outcome.variable)
                self._store.set_appdata(outcome.variable.view, outcome.variable.to_appdata())
        except BaseException as err:
            self._store.rollback()
            for view in reversed(ctx.created_views):
                self._store.drop(view)
            lost = isinstance(err, Exception) and self._store.lost()
            if lost:
                err = StoreError(f"{lost}: the statement failed, the variables are kept in "
                                 "the store and the next statement connects again")
                raise err.at(stmt.span, codeblock) from None
            if isinstance(err, KestrelError):
                raise err.at(stmt.span, codeblock)
            if not isinstance(err, Exception):
                raise  # KeyboardInterrupt, SystemExit: nothing committed
            log.exception("internal error")
            raise KestrelInternalError(
                f"{type(err).__name__}: {err} (details in {self.log_path})"
            ).at(stmt.span, codeblock) from err
        results = list(outcome.results)
        if outcome.variable is not None:
            self.symtable[outcome.variable.name] = outcome.variable
            summary.seconds = time.monotonic() - started
            summary.command = stmt.command
            if not summary.entities:
                summary.notes.append(f"{outcome.variable.name} is empty: nothing matched")
                summary.notes.extend(outcome.empty_notes)
                summary.notes.extend(semantics.empty_result_notes(resolved, self._store))
            results.append(summary)
        return results

    # ------------------------------------------------------------ variables

    def _variable(self, name) -> Variable:
        """The variable `name`, about to be read (so a lost store connection is made again)."""
        self._store.reconnect_if_lost()
        if name not in self.symtable:
            defined = ", ".join(sorted(self.symtable)) or "none yet"
            raise VariableNotFound(f'variable "{name}" is not defined (defined: {defined})')
        return self.symtable[name]

    def get_variable_names(self):
        return list(self.symtable)

    def get_variable(self, var_name, deref=True):
        """The entities of a variable as a list of dicts (references followed when deref)."""
        variable = self._variable(var_name)
        if deref:
            return self._store.rows(variable.view)
        return self._store.raw_rows(variable.view)

    def create_variable(self, var_name, objects, object_type=None):
        """NEW from Python objects: a list of dicts, or of strings with object_type."""
        if not is_variable_name(var_name):
            raise InvalidArgument(f"{var_name!r} is not a variable name: a letter or _, then "
                                  "letters, digits or _, and not a keyword")
        stmt = ast.New(output_var=var_name, entity_type=object_type, data=tuple(objects))
        return self._run(stmt, f"NEW {object_type or ''} (from Python)")

    def variable_summary(self, name) -> VariableSummary:
        return self._summary_of(self._variable(name))

    def _summary_of(self, variable) -> VariableSummary:
        if variable.grouped:  # rows, not entities
            rows = self._store.count(variable.view)
            return VariableSummary(name=variable.name, entity_type=variable.entity_type,
                                   entities=rows, occurrences=rows, records=0, grouped=True)
        entities, occurrences = self._store.entity_counts(variable.view, variable.entity_type)
        return VariableSummary(name=variable.name, entity_type=variable.entity_type,
                               entities=entities, occurrences=occurrences,
                               records=self._store.record_count(variable.view))

    def variable_dataframe(self, name, limit=None) -> pd.DataFrame:
        """A variable as a DataFrame, for hunters who continue in pandas."""
        import pandas as pd

        return pd.DataFrame(self._store.rows(self._variable(name).view, limit=limit))

    def huntflow_graph(self, *names) -> Figure:
        """The huntflow graph (a Figure): what `names` were made from, or the whole
        hunt without names; the same as `APPLY python://huntflow_graph ON names`."""
        for name in names:
            self._variable(name)
        steps = huntflow_steps(self._store, self.symtable)
        return huntflow.build(steps, names, "lineage" if names else "all")

    def data_source_uris(self) -> list:
        """Data sources used so far, then every stix-shifter profile."""
        return self.data_source_manager.uris()

    def analytics_names(self) -> list:
        """The analytics APPLY can run (python://NAME)."""
        return self.analytics_manager.names()

    def variable_versions(self) -> dict:
        """name -> version of every variable: a front end compares two of these to
        tell which variables a cell created or changed."""
        return {name: variable.version for name, variable in self.symtable.items()}

    # ------------------------------------------------------------ front ends

    def complete(self, code, cursor_pos=None) -> completion.Completion:
        """Completion at cursor_pos (None: the end): whole candidates for the word there,
        its range and each candidate's kind (keyword, variable, attribute, ...)."""
        return completion.complete(code, cursor_pos, _Names(self))

    def do_complete(self, code, cursor_pos):
        """Suggested strings to complete the code at cursor_pos (documented API)."""
        return self.complete(code, cursor_pos).matches

    @staticmethod
    def is_complete(code) -> str:
        """"complete", "incomplete" (a clause, bracket or quote is open) or "invalid"."""
        return completion.is_complete(code)

    def inspect(self, code, cursor_pos=None):
        """What help shows for the word at cursor_pos: a variable's summary and first rows
        (Inspection), a keyword's syntax (Syntax), or None."""
        word, _, _ = completion.word_at(code, cursor_pos)
        if word in self.symtable:
            return Inspection(self.variable_summary(word),
                              self.variable_dataframe(word, limit=5))
        syntax = completion.keyword_syntax(word) if word else None
        return Syntax(word.upper(), syntax) if syntax else None


class _Names:
    """The names completion may offer besides keywords, read from a session (the
    context `kestrel.completion` asks for)."""

    def __init__(self, session):
        self._session = session

    def variable_names(self):
        return sorted(self._session.symtable)

    def variable_type(self, name):
        variable = self._session.symtable.get(name)
        return variable.entity_type if variable else None

    def entity_types(self):
        stored = {t for t in self._session._store.types() if t != "identity"}
        return sorted(KNOWN_ENTITY_TYPES | stored - {"observed-data"})

    def attributes_of(self, entity_type):
        return sorted(c for c in self._session._store.type_columns(entity_type) if c != "id")

    def data_source_uris(self):
        return self._session.data_source_uris()

    def analytics_names(self):
        return self._session.analytics_names()
