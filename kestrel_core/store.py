"""The only module that talks to firepit.

A Kestrel variable is a firepit view; every statement writes a new, uniquely
named view, so redefining a variable never disturbs views built on its old
value, and a failed statement leaves nothing behind (`drop`).  Time windows
are applied here because firepit ignores START/STOP.
"""

from __future__ import annotations

import json
import re
import logging
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
    BinnedColumn,
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
from .syntax.ast import format_timestamp

log = logging.getLogger(__name__)

ROW = "__kestrel_row"  # a row number column that never meets a STIX attribute

# Kestrel time units -> firepit's BinnedColumn units (None: numeric bins)
BIN_UNITS = {"DAY": "d", "HOUR": "h", "MINUTE": "m", "SECOND": "s"}

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
            raise StoreError(f"{action}: {err}") from err
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
            # firepit inserts row by row on SQLite (PostgreSQL gets COPY): batch instead
            self.fp.upsert_many = self._sqlite_upsert_many

    def close(self):
        self.fp.close()

    def _sqlite_upsert_many(self, cursor, tablename, objs, query_id, schema, **_kwargs):
        """firepit's upsert (same statement, same conflict rules) as one executemany."""
        colnames = [k for k in schema if k != "type"]
        names = ", ".join(f'"{c}"' for c in colnames)
        stmt = (f'INSERT INTO "{tablename}" ({names}) '
                f'VALUES ({", ".join("?" * len(colnames))})')
        if "id" in colnames:
            excluded = self.fp._get_excluded(colnames, tablename)
            action = ("NOTHING" if not excluded or tablename == "observed-data"
                      else f"UPDATE SET {excluded}")
            stmt += f" ON CONFLICT (id) DO {action}"
        cursor.executemany(stmt, [tuple(ujson.dumps(v, ensure_ascii=False)
                                        if isinstance(v, (list, dict)) else v for v in obj)
                                  for obj in objs])
        if query_id and "id" in colnames:
            at = colnames.index("id")
            cursor.executemany('INSERT INTO "__queries" (sco_id, query_id) VALUES (?, ?)',
                               [(obj[at], query_id) for obj in objs])

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
        with store_errors("cannot record variable metadata"):
            self.fp.set_appdata(view, json.dumps(data))

    # ------------------------------------------------------------ ingest and extract

    def ingest(self, query_id: str, bundles):
        """Cache STIX bundles (dicts; a list or any iterable) under `query_id`, one at a time."""
        with store_errors("cannot store the data"):
            for bundle in bundles:
                for obj in bundle.get("objects", ()):
                    check_property_names(obj)
                self.fp.cache(query_id, [bundle])

    def extract(self, view: str, entity_type: str, query_id: str, pattern: str | None):
        """A view of the `entity_type` entities in `query_id` that match `pattern`."""
        if entity_type not in self.fp.types():
            self.empty_view(view, entity_type)
            return
        with store_errors(f"cannot select {entity_type} entities"):
            self.fp.extract(view, entity_type, query_id, pattern or "")

    def filter(self, view: str, entity_type: str, input_view: str, pattern: str):
        with store_errors("cannot filter"):
            self.fp.filter(view, entity_type, input_view, pattern)

    def empty_view(self, view: str, entity_type: str):
        """A variable with no entities (e.g. a GET that matched nothing)."""
        with store_errors("cannot create an empty variable"):
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
        for obj in objects:
            check_property_names(obj)
        with store_errors("cannot load the objects"):
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
        with store_errors("cannot apply the time range"):
            self.fp.assign_query(view, query, sco_type=entity_type)

    # ------------------------------------------------------------ reading

    def count(self, view: str) -> int:
        with store_errors("cannot count entities"):
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
        with store_errors("cannot read attributes"):
            return self.fp.columns(view)

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
        with store_errors("cannot read entities"):
            return self.fp.lookup(view, cols=columns or "*", limit=limit, offset=offset)

    def distinct_page(self, view: str, columns: list, sort_by=None, ascending=True,
                      limit=None, offset=0) -> tuple:
        """(rows, total): one page of the distinct combinations of `columns` (reference
        paths such as parent_ref.name allowed), sorted in the database, and how many
        distinct rows there are in all: DISP's first page never reads the whole view."""
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
        names = ", ".join(f'"{c}"' for c in wanted)
        # rows keep the view's own order (a SORT result) through their first appearance
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
        with store_errors("cannot read entities"):
            rows = self.fp._query(page, values).fetchall()
            total = self.fp._query(count, values).fetchone()
        return rows, int(list(total.values())[0])

    def raw_rows(self, view: str) -> list:
        """Entities as stored: references stay ids."""
        with store_errors("cannot read entities"):
            return self.fp.run_query(Query([Table(view)])).fetchall()

    def values(self, view: str, attribute: str) -> list:
        with store_errors(f"cannot read {attribute}"):
            return [v for v in self.fp.values(attribute, view) if v is not None]

    def timestamped(self, view: str, limit=None) -> list:
        with store_errors("cannot read timestamps"):
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
        with store_errors("cannot sort or slice"):
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
        with store_errors(f"cannot compute {transform}"):
            self.fp.assign_query(view, query, sco_type=entity_type)

    def update(self, view: str, rows: list):
        """Write changed or added attributes of a view's entities back (matched by id)."""
        with store_errors("cannot write attributes back"):
            self.fp.reassign(view, rows)

    def merge(self, view: str, input_views: list):
        with store_errors("cannot merge"):
            self.fp.merge(view, input_views)

    def join(self, view: str, left: str, left_on: str, right: str, right_on: str):
        with store_errors("cannot join"):
            self.fp.join(view, left, left_on, right, right_on)

    def group(self, view: str, input_view: str, by: list, aggregations: list):
        # a bin's own name: SQLite would GROUP BY the raw column of the same name
        keys = [BinnedColumn(k.attribute, k.size, BIN_UNITS.get(k.unit),
                             alias=f"{k.attribute}_bin")
                if not isinstance(k, str) else k for k in by]
        with store_errors("cannot group"):
            self.fp.group(view, input_view, keys, aggregations)

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
        with store_errors("cannot find related entities"):
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


# a name, or a flattened path of names (binary_ref.name, hashes.'SHA-256') as LOAD gives
PROPERTY_NAME = re.compile(r"[A-Za-z0-9_\-]+(\.([A-Za-z0-9_\-]+|'[A-Za-z0-9_\-]+'))*")


def check_property_names(obj, where: str = ""):
    """Refuse data whose property names are not plain names.

    firepit turns property names into SQL column names without checking them, so
    a name is data from the hunted systems that must not reach SQL as code.
    """
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str) or not PROPERTY_NAME.fullmatch(key):
                owner = obj.get("id") or obj.get("type") or "an object"
                raise DataSourceError(
                    f"refusing the data: {owner} has a property named {key!r}{where} "
                    "(property names may hold letters, digits, _ and -, and dots between names)")
            check_property_names(value, f"{where} in {key}" if not where else where)
    elif isinstance(obj, list):
        for item in obj:
            check_property_names(item, where)


def iso(moment) -> str:
    return format_timestamp(moment) if isinstance(moment, datetime) else moment


def redact(location: str) -> str:
    """A store URL without its password."""
    if "://" in location and "@" in location:
        scheme, rest = location.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return location
