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
from .references import ref_targets
from .where import (LIKE_FUNCTION, POSTGRESQL_FUNCTIONS, SUBNET_FUNCTION, SqlWhere, identifier,
                    in_subnet, like, match)

log = logging.getLogger(__name__)

ROW = "__kestrel_row"  # a row number column that never meets a STIX attribute
QUERIES_INDEX = BOOKKEEPING["__queries"][0][0]  # GET's and FIND's views stream from it


FIREPIT_ERRORS = (DatabaseMismatch, IncompatibleType, InvalidAttr, InvalidStixPath,
                  StixPatternError, UnknownViewname)


@contextmanager
def store_errors(action: str):
    """firepit and database exceptions -> StoreError naming what was being done."""
    try:
        yield
    except FIREPIT_ERRORS as err:
        raise StoreError(f"{action}: {err}") from err
    except Exception as err:  # database driver errors (sqlite3, psycopg2)
        if type(err).__module__.split(".")[0] in ("sqlite3", "psycopg2", "firepit"):
            # PostgreSQL adds lines quoting the SQL: the first names the problem
            problem = (str(err).strip().split("\n") or [""])[0]
            raise StoreError(f"{action}: {problem}") from err
        raise


class StoreBase(Indexing):
    """An open firepit storage, with Kestrel's SQL functions and indexes in place."""

    def __init__(self, location: str, session_id: str):
        self.location = location
        self.session_id = session_id
        self._references = {}  # see references()
        self._memo = {}        # see matched_memo()
        with store_errors(f"cannot open the store at {redact(location)}"):
            self.fp = firepit.get_storage(location, session_id)
        if self.fp.dialect == "sqlite3":
            # LIKE is case-sensitive in STIX and in PostgreSQL; make SQLite agree
            self.fp.connection.execute("PRAGMA case_sensitive_like = ON")
            # WAL without a sync per commit: a killed process loses nothing committed,
            # only a power cut may lose the last statements (ingest commits per batch)
            self.fp.connection.execute("PRAGMA journal_mode = WAL")
            self.fp.connection.execute("PRAGMA synchronous = NORMAL")
            self.fp.connection.create_function(LIKE_FUNCTION, 2, like, deterministic=True)
            self.fp.connection.create_function("match", 2, match, deterministic=True)
            self.fp.connection.create_function(SUBNET_FUNCTION, 2, in_subnet,
                                               deterministic=True)
        else:
            self._create_functions()
        self._init_indexing()
        self.index_tables(["__queries"])

    def close(self):
        self.fp.close()

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

    def _create_functions(self):
        """where.py's functions in the session's schema on PostgreSQL, once, bins in UTC,
        no JIT (compiling the expressions of a folder of Sigma rules took longer than
        running them: 10.3x the hand-written GET with it, 5.5x without, at 5,000), and
        room for the reference joins' hashes."""
        with store_errors("cannot prepare the store"):
            cursor = self.fp.connection.cursor()
            cursor.execute("SET TIME ZONE 'UTC'")
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
        return f"{variable}__{uuid.uuid4().hex[:10]}"

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
                        prematch)

    def _possible(self, sql: SqlWhere, where, render):
        """`where` (holding Sigma rules) with what no stored value can pass taken out:
        `render(where)` writes it once with `sql`, so that its regular expressions are
        tested once per distinct value (store/matched.py); the caller writes what is
        returned again with the same `sql`, which reads those results."""
        from .matched import prune

        render(where)
        self._fill(sql)
        return prune(where, sql)

    def _fill(self, sql: SqlWhere):
        """Test the regular expressions `sql` wrote so far (store/matched.py)."""
        from .matched import fill

        if sql.matched:
            sql.found = fill(self, sql.matched)

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
