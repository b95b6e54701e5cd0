"""The only module that talks to firepit.

A Kestrel variable is a firepit view; every statement writes a new, uniquely
named view, so redefining a variable never disturbs views built on its old
value, and a failed statement leaves nothing behind (`drop`).  Time windows
are applied here because firepit ignores START/STOP.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import re
import uuid
from contextlib import contextmanager
from datetime import datetime

import firepit
import ujson
from firepit.exceptions import (
    DatabaseMismatch,
    IncompatibleType,
    InvalidAttr,
    InvalidStixPath,
    StixPatternError,
    UnknownViewname,
)
from firepit.query import (
    Column,
    Filter,
    Join,
    Limit,
    Offset,
    Order,
    Predicate,
    Projection,
    Query,
    Table,
    Unique,
)

from .errors import DataSourceError, StoreError
from .redaction import redact
from .sqlwhere import (LIKE_FUNCTION, NUL_ON_POSTGRESQL, POSTGRESQL_FUNCTIONS, SUBNET_FUNCTION,
                       SqlWhere, identifier, in_subnet, like)
from .syntax.ast import format_timestamp
from .syntax.ecgp import UNIT_SECONDS

log = logging.getLogger(__name__)

ROW = "__kestrel_row"  # a row number column that never meets a STIX attribute
QUERIES_INDEX = '"__queries_query_sco"'


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


class Store:
    def __init__(self, location: str, session_id: str):
        self.location = location
        self.session_id = session_id
        with store_errors(f"cannot open the store at {redact(location)}"):
            self.fp = firepit.get_storage(location, session_id)
        if self.fp.dialect == "sqlite3":
            # LIKE is case-sensitive in STIX and in PostgreSQL; make SQLite agree
            self.fp.connection.execute("PRAGMA case_sensitive_like = ON")
            # WAL without a sync per commit: a killed process loses nothing committed,
            # only a power cut may lose the last statements (ingest commits per batch)
            self.fp.connection.execute("PRAGMA journal_mode = WAL")
            self.fp.connection.execute("PRAGMA synchronous = NORMAL")
            # firepit inserts row by row on SQLite: batch instead (PostgreSQL: COPY, below)
            self.fp.upsert_many = self._sqlite_upsert_many
            self.fp.connection.create_function(LIKE_FUNCTION, 2, like, deterministic=True)
            self.fp.connection.create_function(SUBNET_FUNCTION, 2, in_subnet,
                                               deterministic=True)
        else:
            self._create_functions()
            # firepit's multi-row INSERTs: COPY instead (its own COPY leaves JSON unescaped)
            self.fp.upsert_many = self._postgresql_upsert_many
        self._index_queries()

    def close(self):
        self.fp.close()

    def _index_queries(self):
        """An index on __queries (query_id, sco_id): a GET's view joins from its query's
        rows and streams, where `id IN (SELECT ...)` built the whole id list before its
        first row (14 s for 2,000,000 entities); queries that probe a view by id (FIND's
        time range) seek it. Only a GET's own entity type is written there (ingest)."""
        try:
            cursor = self.fp.connection.cursor()
            cursor.execute(f'CREATE INDEX IF NOT EXISTS {QUERIES_INDEX} '
                           'ON "__queries" (query_id, sco_id)')
            self.fp.connection.commit()
        except Exception as err:  # a read-only store, a role without CREATE: slower, still usable
            log.warning("no index on the store's query table (%s): GETs read slower", err)
            self.rollback()

    def _create_functions(self):
        """sqlwhere's functions in the session's schema on PostgreSQL, once, and bins in UTC."""
        with store_errors("cannot prepare the store"):
            cursor = self.fp.connection.cursor()
            cursor.execute("SET TIME ZONE 'UTC'")
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

    def rollback(self):
        try:
            self.fp.connection.rollback()
        except Exception as err:  # a closed or broken connection: nothing to undo
            log.debug("rollback: %s", err)

    # firepit's upsert_many, one per dialect: `recorded` is the set of types whose ids go
    # to __queries under `query_id` (None: every type, as firepit's own callers such as
    # load() expect); ingest() narrows it to the GET's type, since only its view reads them

    def _sqlite_upsert_many(self, cursor, tablename, objs, query_id, schema, recorded=None,
                            **_kwargs):
        """firepit's upsert (same statement, same conflict rules) as one executemany."""
        colnames = [k for k in schema if k != "type"]
        names = ", ".join(f'"{c}"' for c in colnames)
        stmt = (f'INSERT INTO "{tablename}" ({names}) '
                f'VALUES ({", ".join("?" * len(colnames))})'
                + self._on_conflict(tablename, colnames, never_updated="observed-data"))
        cursor.executemany(stmt, [tuple(ujson.dumps(v, ensure_ascii=False)
                                        if isinstance(v, (list, dict)) else v for v in obj)
                                  for obj in objs])
        queried = _queried(tablename, colnames, objs, query_id, recorded)
        if queried:
            cursor.executemany('INSERT INTO "__queries" (sco_id, query_id) VALUES (?, ?)',
                               queried)

    def _postgresql_upsert_many(self, cursor, tablename, objs, query_id, schema,
                                recorded=None, **_kwargs):
        """firepit's PostgreSQL upsert (same conflict rules) as a COPY into a temporary
        table and one INSERT ... SELECT (in id order, as firepit's: no deadlock between
        processes sharing a session)."""
        colnames = list(schema)
        names = ", ".join(identifier(c) for c in colnames)
        cursor.execute(f"CREATE TEMP TABLE kestrel_load (LIKE {identifier(tablename)}) "
                       "ON COMMIT DROP")
        cursor.copy_expert(f"COPY kestrel_load ({names}) FROM STDIN",
                           io.StringIO("".join(copy_line(obj) for obj in objs)))
        stmt = f"INSERT INTO {identifier(tablename)} ({names}) SELECT {names} FROM kestrel_load"
        if "id" in colnames:
            stmt += ' ORDER BY "id"'
        cursor.execute(stmt + (self._on_conflict(tablename, colnames, never_updated="identity")
                               or " ON CONFLICT DO NOTHING"))
        cursor.execute("DROP TABLE kestrel_load")
        queried = _queried(tablename, colnames, objs, query_id, recorded)
        if queried:
            cursor.copy_expert('COPY "__queries" (sco_id, query_id) FROM STDIN',
                               io.StringIO("".join(copy_line(row) for row in queried)))

    def _on_conflict(self, tablename, colnames, never_updated: str) -> str:
        """firepit's conflict rule for entities already stored (merged attributes), except
        for the `never_updated` table (firepit's choice differs per dialect); '' without ids."""
        if "id" not in colnames:
            return ""
        excluded = self.fp._get_excluded(colnames, tablename)
        action = ("NOTHING" if not excluded or tablename == never_updated
                  else f"UPDATE SET {excluded}")
        return f" ON CONFLICT (id) DO {action}"

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

    # ------------------------------------------------------------ ingest and extract

    def ingest(self, query_id: str, bundles, entity_type: str | None = None):
        """Cache STIX bundles (dicts; a list or any iterable) under `query_id`, one at a
        time; with `entity_type`, note each entity of that type they hold once, for
        `extract` (without, as for FIND's prefetch, nothing is noted)."""
        upsert = self.fp.upsert_many
        self.fp.upsert_many = functools.partial(
            upsert, recorded=frozenset([entity_type] if entity_type else []))
        try:
            with self.errors("cannot store the data"):
                for bundle in bundles:
                    for obj in bundle.get("objects", ()):
                        check_type_names(obj)
                        check_data(obj)
                    self.fp.cache(query_id, [bundle])
                if self.fp.dialect == "postgresql":
                    self._analyze()  # first: _deduplicate is planned on these statistics
                if entity_type is not None:
                    self._deduplicate(query_id)
        finally:
            self.fp.upsert_many = upsert

    def _deduplicate(self, query_id: str):
        """One __queries row per entity of the query (an entity seen in many records
        gets one per record), so that its view is a plain join."""
        if self.fp.dialect == "sqlite3":
            self.fp.connection.execute(
                'DELETE FROM "__queries" WHERE query_id = ? AND rowid NOT IN (SELECT '
                'MIN(rowid) FROM "__queries" WHERE query_id = ? GROUP BY sco_id)',
                (query_id, query_id))
        else:  # never a nested loop (quadratic), whatever the statistics say
            cursor = self.fp.connection.cursor()
            cursor.execute("SET LOCAL enable_nestloop = off")
            cursor.execute(
                'DELETE FROM "__queries" AS later USING "__queries" AS earlier WHERE '
                "later.query_id = %s AND earlier.query_id = %s AND later.sco_id = "
                "earlier.sco_id AND later.ctid > earlier.ctid", (query_id, query_id))
        self.fp.connection.commit()

    def _analyze(self):
        """Fresh planner statistics after a bulk load: with none, PostgreSQL may plan a
        record count over 100,000 entities as a nested loop that runs for half an hour."""
        cursor = self.fp.connection.cursor()
        for table in self.fp.types(private=True):
            cursor.execute(f"ANALYZE {identifier(table)}")
        self.fp.connection.commit()

    def extract(self, view: str, entity_type: str, query_id: str, where=None):
        """A view of the `entity_type` entities in `query_id` that match `where` (an ECGP);
        `query_id` was ingested with this `entity_type` (one __queries row per entity)."""
        if entity_type not in self.fp.types():
            self.empty_view(view, entity_type)
            return
        table = identifier(entity_type)
        sql = self._translator()
        condition = f"__queries.query_id = {sql.literal(query_id)}"
        if where is not None:
            columns = self.fp.columns(entity_type)
            condition += f" AND {sql.where(where, entity_type, table, columns) or 'TRUE'}"
        # one __queries row per entity (see ingest): a join, no duplicates
        select = (f"SELECT {table}.* FROM __queries INNER JOIN {table} ON "
                  f"{table}.\"id\" = __queries.sco_id WHERE {condition}")
        with self.errors(f"cannot select {entity_type} entities"):
            self._create_view(view, select, entity_type, deps=[entity_type])

    def filter(self, view: str, entity_type: str, input_view: str, where):
        """A view of the entities of `input_view` that match `where` (an ECGP)."""
        with self.errors("cannot filter"):
            select = f"SELECT * FROM ({self.fp._get_view_def(input_view)}) AS tmp"
            condition = self._translator().where(where, entity_type, "tmp",
                                                 self.fp.columns(input_view))
            if condition:
                select += f" WHERE {condition}"
            self._create_view(view, select, entity_type, deps=[input_view])

    def copy_view(self, view: str, entity_type: str, source_view: str):
        """A new view with the same definition (and so the same rows, in the same order)."""
        with self.errors("cannot copy a variable"):
            if self.fp._is_sql_view(source_view):
                select = self.fp._get_view_def(source_view)
            else:
                select = f"SELECT * FROM {identifier(source_view)}"
            self._create_view(view, select, entity_type, deps=[source_view])

    def empty_view(self, view: str, entity_type: str):
        """A variable with no entities (e.g. a GET that matched nothing)."""
        with self.errors("cannot create an empty variable"):
            if entity_type not in self.fp.types():
                self.fp._create_table(entity_type, {"id": "TEXT UNIQUE"})
            self._create_view(view, f'SELECT * FROM "{entity_type}" WHERE 1 = 0', entity_type)

    def _create_view(self, view: str, select: str, entity_type: str, deps=None):
        cursor = self.fp._execute("BEGIN;")
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

    def load(self, view: str, objects: list, entity_type: str | None):
        if entity_type is not None:
            check_type_name(entity_type, "the entity type")
        for obj in objects:
            if isinstance(obj, dict) and ("type" in obj or entity_type is None):
                check_type_names(obj)
            check_data(obj)
        with self.errors("cannot load the objects"):
            return self.fp.load(view, objects, sco_type=entity_type, preserve_ids=True)

    def restrict_to_window(self, view: str, entity_type: str, input_view: str, start, stop):
        """Entities of `input_view` seen in records with start <= first_observed < stop."""
        query = Query([
            Table(input_view),
            Join("__contains", "id", "=", "target_ref"),
            Join("observed-data", "source_ref", "=", "id"),
            Filter([Predicate("first_observed", ">=", iso(start))]),
            Filter([Predicate("first_observed", "<", iso(stop))]),
            Projection([Column("*", input_view)]),
            Unique(),
        ])
        with self.errors("cannot apply the time range"):
            self.fp.assign_query(view, query, sco_type=entity_type)

    # ------------------------------------------------------------ reading

    def count(self, view: str) -> int:
        with self.errors("cannot count entities"):
            return self.fp.count(view)

    def record_count(self, view: str) -> int:
        """How many observations (records) hold the view's entities."""
        # IN (subquery) lets the database build the id set once instead of probing
        # the view (possibly a UNION of views) for every __contains row
        stmt = ('SELECT COUNT(DISTINCT "source_ref") AS "count" FROM "__contains" '
                f'WHERE "target_ref" IN (SELECT "id" FROM "{view}")')
        try:
            row = self.fp._query(stmt).fetchone()
        except Exception:  # views without records (NEW, LOAD, GROUP) have none
            self.fp.connection.rollback()
            return 0
        return int(list(row.values())[0]) if row else 0

    def columns(self, view: str) -> list:
        with self.errors("cannot read attributes"):
            return self.fp.columns(view)

    def _translator(self) -> SqlWhere:
        """ECGP/path -> SQL for one statement: each table's columns read once."""
        return SqlWhere(self.fp.dialect, functools.lru_cache(maxsize=None)(self._table_columns))

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

    def time_range(self, view: str):
        """(first, last) observation times of the view's records, or None."""
        try:
            summary = self.fp.summary(view)
        except Exception:
            return None
        if not summary.get("first_observed"):
            return None
        return (summary["first_observed"], summary["last_observed"])

    def rows(self, view: str, columns=None, limit=None, offset=None) -> list:
        """Entities as dicts; with no columns, every attribute plus those reached
        through references (`binary_ref.name`, ...)."""
        with self.errors("cannot read entities"):
            if ("ORDER BY" not in self.fp._get_view_def(view).upper()
                    or "id" not in self.fp.columns(view)):  # not entities (a GROUP result)
                return self.fp.lookup(view, cols=columns or "*", limit=limit, offset=offset)
            # a SORT result: firepit's joins may reorder rows (PostgreSQL's planner does,
            # and firepit cannot read the order back from PostgreSQL's view text), so the
            # rows are put back in the view's own order, then sliced
            found = self.fp.lookup(view, cols=columns or "*")
            order = {}
            for row in self.fp._query(f"SELECT {identifier('id')} FROM {identifier(view)}"):
                order.setdefault(row["id"], len(order))
            found.sort(key=lambda row: order.get(row.get("id"), len(order)))
            start = offset or 0
            return found[start:None if limit is None else start + limit]

    def distinct_page(self, view: str, columns: list, sort_by=None, ascending=True,
                      limit=None, offset=0, count_rows=None) -> tuple:
        """(rows, total, exact): one page of the distinct combinations of `columns`
        (reference paths such as parent_ref.name allowed) and how many distinct rows
        there are in all.

        With `sort_by`, the database groups, sorts, pages and counts. Without, rows keep
        the view's own order (a SORT result's) through their first appearance, read from
        one streamed scan of the view that stops once it holds offset + limit distinct
        rows and has read `count_rows` rows (None: the whole view), so a first page
        never waits for the rest of a big view. `exact` is False when the scan stopped
        before the end: `total` (the distinct rows seen) is then a lower bound."""
        wanted = list(columns) + ([sort_by] if sort_by and sort_by not in columns else [])
        query = Query(view)
        own = self.fp.columns(view)
        projection = []
        for column in wanted:
            if column in own:
                projection.append(Column(column, view))
            else:
                joins, table, target = self.fp.path_joins(view, None, column)
                query.extend(joins)
                projection.append(Column(target, table, alias=column))
        query.append(Projection(projection))
        inner, values = query.render(self.fp.placeholder, self.fp.dialect)
        inner = inner.rstrip().rstrip(";")
        if not sort_by:
            return self._first_distinct(inner, values, wanted, limit, offset, count_rows)
        names = ", ".join(f'"{c}"' for c in wanted)
        # ties keep the view's own order through their first appearance
        numbered = f'SELECT *, ROW_NUMBER() OVER () AS "{ROW}" FROM ({inner}) AS shown'
        order = f'"{sort_by}" {"ASC" if ascending else "DESC"}, ' if sort_by else ""
        page = (f"SELECT {names} FROM ({numbered}) AS numbered GROUP BY {names} "
                f'ORDER BY {order}MIN("{ROW}")')
        if limit is not None:
            page += f" LIMIT {int(limit)}"
        if offset:
            page += f" OFFSET {int(offset)}"
        count = f'SELECT COUNT(*) AS "count" FROM (SELECT {names} FROM ({inner}) AS shown ' \
                f"GROUP BY {names}) AS distinct_rows"
        with self.errors("cannot read entities"):
            rows = self.fp._query(page, values).fetchall()
            total = self.fp._query(count, values).fetchone()
        return rows, int(list(total.values())[0]), True

    def _first_distinct(self, select: str, values, names: list, limit, offset,
                        count_rows) -> tuple:
        """distinct_page without sorting: (rows, total, exact) from one streamed scan of
        `select`, in its order, deduplicated here (NULLs equal, as GROUP BY has them)."""
        enough = None if limit is None else offset + int(limit)
        seen, read, exact = {}, 0, False
        with self.errors("cannot read entities"):
            if self.fp.dialect == "sqlite3":  # sqlite3 steps the statement as rows are read
                cursor = self.fp.connection.cursor()
                cursor.row_factory = None
            else:  # a server-side cursor, planned as a plain query (same plan, same order)
                import psycopg2.extensions

                self.fp.connection.cursor().execute("SET LOCAL cursor_tuple_fraction = 1")
                cursor = self.fp.connection.cursor(name=f"kestrel_{uuid.uuid4().hex}",
                                                   cursor_factory=psycopg2.extensions.cursor)
            try:
                cursor.execute(select, values or ())
                while True:
                    batch = cursor.fetchmany(min(2000, count_rows or 2000))
                    if not batch:
                        exact = True
                        break
                    for row in batch:
                        try:
                            seen.setdefault(row, row)
                        except TypeError:  # lists or dicts (JSON) in a cell
                            seen.setdefault(tuple(
                                ("json", json.dumps(v, sort_keys=True, default=str))
                                if isinstance(v, (list, dict)) else v for v in row), row)
                    read += len(batch)
                    if (enough is not None and count_rows is not None
                            and len(seen) >= enough and read >= count_rows):
                        break
            finally:
                cursor.close()
            self.fp.connection.commit()  # ends PostgreSQL's read transaction
        rows = list(seen.values())
        rows = rows[offset:] if enough is None else rows[offset:enough]
        return [dict(zip(names, row)) for row in rows], len(seen), exact

    def raw_rows(self, view: str) -> list:
        """Entities as stored: references stay ids."""
        with self.errors("cannot read entities"):
            return self.fp.run_query(Query([Table(view)])).fetchall()

    def values(self, view: str, attribute: str) -> list:
        with self.errors(f"cannot read {attribute}"):
            return [v for v in self.fp.values(attribute, view) if v is not None]

    def timestamped(self, view: str, limit=None) -> list:
        with self.errors("cannot read timestamps"):
            return self.fp.timestamped(view, limit=limit)

    # ------------------------------------------------------------ deriving views

    def refine(self, view: str, entity_type: str, input_view: str, sort_by=None,
               ascending=True, limit=None, offset=None):
        """A view of `input_view` sorted and/or sliced."""
        query = Query([Table(input_view)])
        if sort_by:
            query.append(Order([(sort_by, Order.ASC if ascending else Order.DESC)]))
        if limit is not None:
            query.append(Limit(limit))
        if offset:
            query.append(Offset(offset))
        with self.errors("cannot sort or slice"):
            self.fp.assign_query(view, query, sco_type=entity_type)

    def transformed(self, view: str, input_view: str, transform: str, entity_type: str):
        """TIMESTAMPED (adds first_observed), ADDOBSID (adds observation_id) or RECORDS
        (the observed-data holding the entities) of `input_view`."""
        if transform == "TIMESTAMPED":
            query = self.fp.timestamped(input_view, run=False)
        elif transform == "ADDOBSID":
            query = self.fp.extract_observeddata_attribute(input_view, "id", run=False)
        else:
            query = Query([Table(input_view), Join("__contains", "id", "=", "target_ref"),
                           Join("observed-data", "source_ref", "=", "id"),
                           Projection([Column("*", "observed-data")]), Unique()])
        with self.errors(f"cannot compute {transform}"):
            self.fp.assign_query(view, query, sco_type=entity_type)

    def update(self, view: str, rows: list):
        """Write changed or added attributes of a view's entities back (matched by id)."""
        with self.errors("cannot write attributes back"):
            self.fp.reassign(view, rows)

    def merge(self, view: str, input_views: list):
        with self.errors("cannot merge"):
            self.fp.merge(view, input_views)

    def join(self, view: str, entity_type: str, left: str, left_on: str, right: str,
             right_type: str, right_on: str):
        """Entities of `left` whose `left_on` equals some `right` entity's `right_on` (both
        may be reference paths), with the right one's attributes where the left lacks
        them (firepit's JOIN; aliased, so a variable may be joined with itself)."""
        with self.errors("cannot join"):
            left_columns, right_columns = self.fp.columns(left), self.fp.columns(right)
            shown = [f"l.{identifier(c)}" if c not in right_columns else
                     f"COALESCE(l.{identifier(c)}, r.{identifier(c)}) AS {identifier(c)}"
                     for c in left_columns]
            shown += [f"r.{identifier(c)}" for c in right_columns if c not in left_columns]
            sql = self._translator()
            on = (f"{sql.value(left_on, entity_type, 'l', left_columns)} = "
                  f"{sql.value(right_on, right_type, 'r', right_columns)}")
            select = (f"SELECT {', '.join(shown)} FROM {identifier(left)} AS l "
                      f"INNER JOIN {identifier(right)} AS r ON {on}")
            self._create_view(view, select, entity_type, deps=[left, right])

    def group(self, view: str, entity_type: str, input_view: str, by: list,
              aggregations: list):
        """One row per distinct key (attributes, reference paths or BINs, a bin named
        `<attribute>_bin`), with (function, attribute, name) aggregations, by key."""
        with self.errors("cannot read attributes"):
            columns = self.fp.columns(input_view)
        sql = self._translator()
        keys = []
        for key in by:
            if isinstance(key, str):
                keys.append((sql.value(key, entity_type, "g", columns), key))
            else:
                value = sql.value(key.attribute, entity_type, "g", columns)
                keys.append((self._bin(value, key.size, key.unit), f"{key.attribute}_bin"))
        shown = [f"{expr} AS {identifier(name)}" for expr, name in keys]
        for func, attribute, name in aggregations:
            argument = ("*" if attribute == "*"
                        else sql.value(attribute, entity_type, "g", columns))
            call = (f"COUNT(DISTINCT {argument})" if func.upper() == "NUNIQUE"
                    else f"{func.upper()}({argument})")
            shown.append(f"{call} AS {identifier(name)}")
        grouping = ", ".join(expr for expr, _ in keys)
        select = (f"SELECT {', '.join(shown)} FROM {identifier(input_view)} AS g "
                  f"GROUP BY {grouping} ORDER BY {grouping}")
        with self.errors("cannot group"):
            self._create_view(view, select, entity_type, deps=[input_view])

    def _bin(self, value: str, size: int, unit) -> str:
        """firepit's bins: numbers to multiples of `size`; timestamps to the start of
        their `size` DAY/HOUR/MINUTE/SECOND interval, as STIX text."""
        if unit is None:
            return f"({value}) / {int(size)} * {int(size)}"
        seconds = int(size) * UNIT_SECONDS[unit]
        if self.fp.dialect == "postgresql":
            moment = (f"to_timestamp(FLOOR(EXTRACT(epoch FROM CAST({value} AS timestamptz)) / "
                      f"{seconds}) * {seconds})")
            return f"""to_char({moment} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""
        moment = f"datetime(strftime('%s', {value}) / {seconds} * {seconds}, 'unixepoch')"
        return f"strftime('%Y-%m-%dT%H:%M:%SZ', {moment})"

    def related(self, view: str, entity_type: str, input_view: str, links: list):
        """Entities of `entity_type` linked to `input_view` by any of `links`.

        A link is (ref_name, direction): direction "out" means the input
        entity holds the reference (input.ref -> result.id), "in" means the
        result holds it (result.ref -> input.id).  `_refs` lists live in
        firepit's `__reflist` table, single `_ref`s are columns.
        """
        if entity_type not in self.fp.types():
            self.empty_view(view, entity_type)
            return
        selects = []
        for ref_name, direction in links:
            selects.extend(self._link_select(entity_type, input_view, ref_name, direction))
        if not selects:
            self.empty_view(view, entity_type)
            return
        union = " UNION ".join(selects)
        with self.errors("cannot find related entities"):
            self._create_view(view, f'SELECT * FROM "{entity_type}" WHERE "id" IN ({union})',
                              entity_type, deps=[input_view])

    def _link_select(self, entity_type, input_view, ref_name, direction):
        if ref_name.endswith("_refs"):
            if not self._has_table("__reflist"):
                return []
            source, target = ("source_ref", "target_ref")
            if direction == "in":
                source, target = target, source
            return [f'SELECT r."{target}" FROM "__reflist" r JOIN "{input_view}" v'
                    f' ON r."{source}" = v."id" WHERE r."ref_name" = \'{ref_name}\'']
        if direction == "out":
            if ref_name not in self.fp.columns(input_view):
                return []
            return [f'SELECT v."{ref_name}" FROM "{input_view}" v']
        if ref_name not in self.type_columns(entity_type):
            return []
        return [f'SELECT t."id" FROM "{entity_type}" t JOIN "{input_view}" v'
                f' ON t."{ref_name}" = v."id"']


# STIX: lower-case letters, digits and single hyphens, at most 250 characters
TYPE_NAME = re.compile(r"(?=.{1,250}$)[a-z0-9]+(-[a-z0-9]+)*")


def check_type_names(obj):
    """Refuse an object (and the objects an observed-data embeds) whose type is not a STIX
    type name: firepit makes types SQL table names without checking them."""
    check_type_name(obj.get("type"), obj.get("id") or "an object")
    embedded = obj.get("objects")
    if isinstance(embedded, dict):
        for key, sco in embedded.items():
            if isinstance(sco, dict):
                check_type_name(sco.get("type"), f"object {key} of {obj.get('id', 'a record')}")


def check_type_name(name, owner: str):
    if not isinstance(name, str) or not TYPE_NAME.fullmatch(name):
        problem = "has no type" if name is None else f"has the type {name!r}"
        raise DataSourceError(f"refusing the data: {owner} {problem} (a type holds lower-case "
                              "letters, digits and single hyphens)")


# a name, or a flattened path of names (binary_ref.name, hashes.'SHA-256') as LOAD gives
PROPERTY_NAME = re.compile(r"[A-Za-z0-9_\-]+(\.([A-Za-z0-9_\-]+|'[A-Za-z0-9_\-]+'))*")


def check_data(obj, where: str = "", depth: int = 0, owner: str = ""):
    """Refuse data whose property names are not plain names, that nests deeper than
    STIX ever does, or with integers the store cannot hold (beyond 64 bits).

    firepit turns property names into SQL column names without checking them, so
    a name is data from the hunted systems that must not reach SQL as code.
    """
    if isinstance(obj, dict):
        owner = owner or _owner(obj)
        for key, value in obj.items():
            if depth >= MAX_DEPTH:
                _too_deep(owner, f"{where} in {key}" if not where else where)
            if key not in _PLAIN_NAMES:
                _check_property_name(obj, key, where)
            if isinstance(value, (dict, list)):
                check_data(value, f"{where} in {key}" if not where else where, depth + 1, owner)
            elif isinstance(value, int) and not isinstance(value, bool) and not (
                    INT64_MIN <= value <= INT64_MAX):
                raise DataSourceError(
                    f"refusing the data: {_owner(obj)} has {key}{where} = {value}, beyond "
                    "the 64-bit integers the store holds")
    elif isinstance(obj, list):
        for item in obj:
            if depth >= MAX_DEPTH:
                _too_deep(owner or "a list", where)
            if isinstance(item, (dict, list)):
                check_data(item, where, depth + 1, owner or "a list")


# property names already checked: records repeat the same few names millions of times
_PLAIN_NAMES: set = set()


def _check_property_name(obj: dict, key, where: str):
    if not isinstance(key, str) or not PROPERTY_NAME.fullmatch(key):
        raise DataSourceError(
            f"refusing the data: {_owner(obj)} has a property named {key!r}{where} "
            "(property names may hold letters, digits, _ and -, and dots between names)")
    if len(_PLAIN_NAMES) < 100_000 and len(key) <= 64:  # bounded, whatever the data
        _PLAIN_NAMES.add(key)


def _too_deep(owner: str, where: str):
    raise DataSourceError(f"refusing the data: {owner} has a value{where} nesting "
                          f"deeper than {MAX_DEPTH} levels")


MAX_DEPTH = 64
INT64_MIN, INT64_MAX = -2**63, 2**63 - 1


def _owner(obj: dict) -> str:
    return obj.get("id") or obj.get("type") or "an object"


def replace_nul(obj):
    """PostgreSQL text cannot hold NUL: keep U+FFFD in its place (in place, recursively),
    so that one hostile value cannot make a whole GET or LOAD fail (see _copy_value)."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(
        obj, list) else ()
    for key, value in items:
        if isinstance(value, str):
            if "\x00" in value:
                obj[key] = value.replace("\x00", NUL_ON_POSTGRESQL)
        elif isinstance(value, (dict, list)):
            replace_nul(value)


# COPY's text format escapes these (\\N is NULL); NUL, which PostgreSQL text cannot
# hold, becomes U+FFFD as replace_nul has it
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                              "\x00": NUL_ON_POSTGRESQL})


def copy_line(values) -> str:
    """One row in COPY's text format (JSON for lists and objects, as firepit stores them)."""
    return "\t".join(_copy_value(v) for v in values) + "\n"


def _copy_value(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "true" if value else "false"  # right for BOOLEAN and TEXT columns alike
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a whole float (pandas' ints beside a blank) fits BIGINT
    if isinstance(value, (list, dict)):
        text = ujson.dumps(value, ensure_ascii=False)
        if "\\u0000" in text:  # jsonb refuses \u0000: U+FFFD, as in plain text
            replace_nul(value)
            text = ujson.dumps(value, ensure_ascii=False)
        value = text
    elif not isinstance(value, str):
        return str(value)
    return value.translate(COPY_ESCAPES)


def iso(moment) -> str:
    return format_timestamp(moment) if isinstance(moment, datetime) else moment


def _queried(tablename, colnames, objs, query_id, recorded) -> list:
    """(id, query_id) rows for __queries: none unless the table is `recorded` (None: all)."""
    if not query_id or "id" not in colnames or (recorded is not None
                                                and tablename not in recorded):
        return []
    at = colnames.index("id")
    return [(obj[at], query_id) for obj in objs]
