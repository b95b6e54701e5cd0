"""The store's connection to firepit: opening it (per dialect), errors as StoreError,
view names and metadata, and the catalog the check stage reads (types, columns,
reference targets, values and time ranges of variables).

Every module of this package works through `self.fp` (firepit's storage); no module
outside it imports firepit.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import firepit
from firepit.exceptions import (
    DatabaseMismatch,
    IncompatibleType,
    InvalidAttr,
    InvalidStixPath,
    StixPatternError,
    UnknownViewname,
)

from ..errors import StoreError
from ..redaction import redact
from .indexes import BOOKKEEPING, Indexing
from .partition import Claim, schema_name
from .references import ref_targets
from .where import (LIKE_FUNCTION, POSTGRESQL_FUNCTIONS, SUBNET_FUNCTION, SqlWhere, identifier,
                    in_subnet, like, match)

log = logging.getLogger(__name__)

ROW = "__kestrel_row"  # a row number column that never meets a STIX attribute
QUERIES_INDEX = BOOKKEEPING["__queries"][0][0]  # GET's and FIND's views stream from it


FIREPIT_ERRORS = (DatabaseMismatch, IncompatibleType, InvalidAttr, InvalidStixPath,
                  StixPatternError, UnknownViewname)


def with_connect_timeout(location: str, seconds: int) -> str:
    """A PostgreSQL URL with libpq's connect_timeout, unless it sets one."""
    parts = urlsplit(location)
    if parts.scheme not in ("postgresql", "postgres") or not seconds:
        return location
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "connect_timeout" for key, _ in query):
        return location
    return urlunsplit(parts._replace(query=urlencode([*query, ("connect_timeout", seconds)])))


def database_error(err) -> bool:
    """A firepit or database driver (sqlite3, psycopg2) exception: the data's or the
    store's problem, not a bug of ours."""
    return (isinstance(err, FIREPIT_ERRORS)
            or type(err).__module__.split(".")[0] in ("sqlite3", "psycopg2", "firepit"))


@contextmanager
def store_errors(action: str):
    """firepit and database exceptions -> StoreError naming what was being done."""
    try:
        yield
    except FIREPIT_ERRORS as err:
        raise StoreError(f"{action}: {err}") from err
    except Exception as err:  # database driver errors (sqlite3, psycopg2)
        if database_error(err):
            # PostgreSQL adds lines quoting the SQL: the first names the problem
            problem = (str(err).strip().split("\n") or [""])[0]
            raise StoreError(f"{action}: {problem}") from err
        raise


class StoreBase(Indexing):
    """An open firepit storage, with Kestrel's SQL functions and indexes in place."""

    def __init__(self, location: str, session_id: str, connect_timeout=10,
                 statement_timeout=0):
        """`connect_timeout` and `statement_timeout` (seconds, 0: none) bound how long a
        PostgreSQL server may take to accept the connection and to answer a statement."""
        self.location = location
        self.session_id = session_id
        self.connect_timeout, self.statement_timeout = connect_timeout, statement_timeout
        self._references = {}  # see references()
        self.changed()
        self._connect()

    def _connect(self):
        opening = f"cannot open the store at {redact(self.location)}"
        location = with_connect_timeout(self.location, self.connect_timeout)
        self._claim, self._deadline = Claim(), None
        parts = urlsplit(location)  # as firepit reads it: no scheme or sqlite3 is a file
        if parts.scheme in ("", "sqlite3") and parts.path != ":memory:":
            self._claim.file(parts.path, redact(self.location))
        try:
            with store_errors(opening):
                self.fp = firepit.get_storage(location, schema_name(self.session_id))
        except BaseException:
            self._claim.release()
            raise
        try:
            if self.fp.dialect == "sqlite3":
                self._prepare_sqlite()
            else:
                with store_errors(opening):
                    self._claim.schema(self.fp, self.session_id)
                self._prepare_postgresql()
        except BaseException:
            self.close()
            raise
        self._init_indexing()
        self.index_tables(["__queries"])

    def reconnect_if_lost(self):
        """At a statement's start: a PostgreSQL connection that was lost (a server that
        restarted, or did not answer in time) is made again; the variables live in the
        server and come back with it.  A server still away is a StoreError."""
        if self.fp.dialect == "sqlite3" or not self.fp.connection.closed:
            return
        log.warning("the store's connection was lost; connecting again")
        self.close()
        self._references.clear()
        self.changed()
        try:
            self._connect()
        except StoreError as err:
            raise StoreError(f"the connection to the store was lost and cannot be made "
                             f"again: {err.message}") from None

    def lost(self) -> str | None:
        """Why the PostgreSQL connection is gone, when it is (a statement that failed
        with it failed for that reason, whatever the driver said on the way)."""
        if self.fp.dialect == "sqlite3" or not self.fp.connection.closed:
            return None
        from .deadline import GRACE

        if self._deadline is not None and self._deadline.expired:
            return (f"the store's server did not answer within "
                    f"{self._deadline.seconds + GRACE:g} s (store_statement_timeout and "
                    f"{GRACE:g} s), so its connection was closed")
        return "the connection to the store's server was lost"

    def close(self):
        if self._deadline is not None:
            self._deadline.close()
        self.fp.close()
        self._claim.release()

    def after_load(self, tables):
        """After a load wrote to `tables` (names of firepit tables, entity types and its
        own: `__contains`, `__reflist`, `__queries`): the indexes reference joins need on
        them (IF NOT EXISTS, once per store) and fresh planner statistics of them and of
        firepit's own tables, which every load writes (PostgreSQL: ANALYZE; SQLite:
        ANALYZE reading at most 1,000 rows per index).  Tables that do not exist are
        left out; a store that refuses (read-only) is logged and stays usable."""
        tables = list(dict.fromkeys([*tables, *BOOKKEEPING]))
        self.index_tables(tables)
        self.analyze(tables)

    def _prepare_sqlite(self):
        connection = self.fp.connection
        # LIKE is case-sensitive in STIX and in PostgreSQL; make SQLite agree
        connection.execute("PRAGMA case_sensitive_like = ON")
        # WAL without a sync per commit: a killed process loses nothing committed,
        # only a power cut may lose the last statements (ingest commits per batch)
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.create_function(LIKE_FUNCTION, 2, like, deterministic=True)
        connection.create_function("match", 2, match, deterministic=True)
        connection.create_function(SUBNET_FUNCTION, 2, in_subnet, deterministic=True)

    def _prepare_postgresql(self):
        """where.py's functions in the session's schema, once; bins in UTC; the statement
        timeout, watched by the client too (deadline.py); no JIT (compiling the
        expressions of a folder of Sigma rules took longer than running them: 10.3x the
        hand-written GET with it, 5.5x without, at 5,000), and room for the reference
        joins' hashes."""
        from .deadline import Deadline  # psycopg2: imported when a PostgreSQL store opens

        if self.statement_timeout:
            self._deadline = Deadline(self.fp.connection, self.statement_timeout)
            self.fp.connection.cursor_factory = self._deadline.cursor_class()
        with store_errors("cannot prepare the store"):
            cursor = self.fp.connection.cursor()
            cursor.execute("SET TIME ZONE 'UTC'")
            cursor.execute("SET statement_timeout = %s", (int(self.statement_timeout * 1000),))
            cursor.execute("SELECT current_setting('jit', true) AS jit")  # PostgreSQL 11+
            if cursor.fetchone()["jit"] is not None:
                cursor.execute("SET jit = off")
            # a reference path's ids are hashed once per statement only when they fit in
            # work_mem; the default 4 MB holds ~100,000, and past it each row rescans them
            # (a folder of Sigma rules at 100,000 processes: 600 s and more, 87 s at 256 MB)
            cursor.execute("SELECT pg_size_bytes(current_setting('work_mem')) AS bytes")
            if cursor.fetchone()["bytes"] < 64 * 2 ** 20:
                cursor.execute("SET work_mem = '64MB'")
            cursor.execute("SELECT proname FROM pg_proc JOIN pg_namespace ON pg_namespace.oid "
                           "= pronamespace WHERE nspname = current_schema()")
            present = {row["proname"] for row in cursor.fetchall()}
            for name, definition in POSTGRESQL_FUNCTIONS.items():
                if name not in present:
                    cursor.execute(definition)
            self.fp.connection.commit()

    def server_cursor(self):
        """A server-side cursor yielding tuples, planned as a plain query (same plan, same
        order), its fetches watched as every call is."""
        import psycopg2.extensions

        self.fp.connection.cursor().execute("SET LOCAL cursor_tuple_fraction = 1")
        plain = (self._deadline.cursor_class(psycopg2.extensions.cursor) if self._deadline
                 else psycopg2.extensions.cursor)
        return self.fp.connection.cursor(name=f"kestrel_{uuid.uuid4().hex}", cursor_factory=plain)

    @contextmanager
    def errors(self, action: str):
        """store_errors, and a rollback: after an error PostgreSQL refuses every further
        statement of the transaction ("current transaction is aborted")."""
        try:
            with store_errors(action):
                yield
        except BaseException:
            self.rollback()
            raise

    def changed(self):
        """The stored data changed (a load, attributes written, a rollback): forget what
        was learnt of it."""
        self._memo = {}
        self._renamed = None

    def stored_column(self, entity_type: str, path: str) -> str | None:
        """The column holding property `path` of `entity_type` entities when it is named
        otherwise (firepit names an extension's property x_<name>; tables.py names long
        and colliding ones), from firepit's __columns; else None."""
        if self._renamed is None:
            with self.errors("cannot read attributes"):
                self._renamed = {(row["otype"], row["path"]): row["shortname"]
                                 for row in self.fp._query(
                                     'SELECT otype, path, shortname FROM "__columns" '
                                     "WHERE path <> shortname").fetchall()}
        return self._renamed.get((entity_type, path))

    def matched_memo(self) -> dict:
        """What store/matched.py learnt of the stored values, until they change."""
        return self._memo

    def rollback(self):
        self.changed()
        try:
            self.fp.connection.rollback()
        except Exception as err:  # a closed or broken connection: nothing to undo
            log.debug("rollback: %s", err)

    # ------------------------------------------------------------ names

    @staticmethod
    def new_view_name(variable: str) -> str:
        """A view of its own for each definition, within PostgreSQL's 63-byte identifiers
        (which cut longer names, so two long variable names became one view): the
        variable's name is kept beside the view, its first 32 characters only help a
        reader of the store."""
        return f"{variable[:32]}__{uuid.uuid4().hex[:16]}"

    def drop(self, view: str):
        """Remove a view a failed statement may have left (ignores missing ones)."""
        try:
            self.fp.remove_view(view)
        except Exception as err:  # cleanup must never mask the real error
            log.debug("drop %s: %s", view, err)

    def views(self) -> list:
        return self.fp.get_view_data()

    def set_appdata(self, view: str, data: dict):
        with self.errors("cannot record variable metadata"):
            self.fp.set_appdata(view, json.dumps(data))

    def _create_view(self, view: str, select: str, entity_type: str, deps=None, first=None):
        """A view and its symbol, in one transaction after the statement `first`."""
        cursor = self.fp._execute("BEGIN;")
        if first:
            self.fp._execute(first, cursor)
        self.fp._create_view(view, select, entity_type, deps=deps, cursor=cursor)
        self.fp.connection.commit()
        cursor.close()

    def _has_table(self, name: str) -> bool:
        try:
            self.fp._query(f'SELECT 1 FROM "{name}" LIMIT 1').fetchall()
            return True
        except Exception:
            self.fp.connection.rollback()
            return False

    # ------------------------------------------------------------ catalog

    def columns(self, view: str) -> list:
        with self.errors("cannot read attributes"):
            return self.fp.columns(view)

    def _translator(self, prematch=False) -> SqlWhere:
        """ECGP/path -> SQL for one statement: each table's columns read once.  With
        `prematch`, for SQL run at once: MATCHES read values matched beforehand
        (`_possible`)."""
        return SqlWhere(self.fp.dialect, functools.lru_cache(maxsize=None)(self._table_columns),
                        self.stored_column, prematch)

    def _possible(self, sql: SqlWhere, where, render):
        """`where` (holding Sigma rules) with what no stored value can pass taken out:
        `render(where)` writes it once with `sql`, so that its regular expressions are
        tested once per distinct value (store/matched.py); the caller writes what is
        returned again with the same `sql`, which reads those results."""
        from .matched import prune

        render(where)
        self._fill(sql)
        sql.redraft()
        return prune(where, sql)

    def _fill(self, sql: SqlWhere):
        """Test the regular expressions `sql` wrote so far (store/matched.py)."""
        from .matched import fill

        if sql.matched:
            sql.found = fill(self, sql.matched)

    def _materialize(self, sql: SqlWhere):
        """Before SQL that `sql` wrote runs: the temporary tables of its reference
        subqueries (SqlWhere._hoisted), in the order they were named (an outer one may
        read an inner one), after the matched values they may read."""
        cursor = self.fp.connection.cursor()
        for subquery, name in (sql.hoisted or {}).items():
            if name in sql.made:
                continue
            sql.made.add(name)
            cursor.execute(f"DROP TABLE IF EXISTS temp.{name}")
            cursor.execute(f'CREATE TEMP TABLE {name} ("id" TEXT PRIMARY KEY) WITHOUT ROWID')
            cursor.execute(f"INSERT OR IGNORE INTO temp.{name} SELECT * FROM ({subquery})")

    def _table_columns(self, table: str) -> list:
        if table not in self.fp.types(private=True):
            return []
        return self.fp.columns(table)

    def type_columns(self, entity_type: str) -> list:
        if entity_type not in self.fp.types():
            return []
        return [c["name"] for c in self.fp.schema(entity_type)]

    def types(self) -> list:
        return self.fp.types()

    @staticmethod
    def ref_targets(entity_type: str, reference: str) -> list:
        return ref_targets(entity_type, reference)

    def references(self, entity_type: str) -> dict:
        """{reference: target types} of the `_ref` columns and `_refs` lists stored
        `entity_type` entities hold, the targets read off the stored ids (`type--...`):
        from the data once per type while the store is open, then kept up to date by
        ingest (no scan per statement)."""
        if entity_type not in self._references:
            self._references[entity_type] = self._read_references(entity_type)
        return {ref: sorted(targets) for ref, targets in self._references[entity_type].items()}

    def _read_references(self, entity_type: str) -> dict:
        found = {}
        if entity_type not in self.fp.types():
            return found
        prefix = ("substr({0}, 1, instr({0}, '--') - 1)" if self.fp.dialect == "sqlite3"
                  else "split_part({0}, '--', 1)")
        mark = self.fp.placeholder
        refs = [c for c in self.type_columns(entity_type) if c.endswith("_ref")]
        selects = [f"SELECT DISTINCT {mark} AS ref, {prefix.format(identifier(c))} AS target "
                   f"FROM {identifier(entity_type)} WHERE {identifier(c)} LIKE {mark}"
                   for c in refs]
        values = [v for c in refs for v in (c, "%--%")]
        if self._has_table("__reflist"):
            target = prefix.format(identifier("target_ref"))
            selects.append(f'SELECT DISTINCT "ref_name" AS ref, {target} AS target '
                           f'FROM "__reflist" WHERE "source_ref" LIKE {mark}')
            values.append(f"{entity_type}--%")
        with self.errors("cannot read the references"):
            for row in self.fp._query(" UNION ".join(selects), values) if selects else ():
                found.setdefault(row["ref"], set()).add(row["target"])
        return found
