"""Ingest: STIX bundles and objects into firepit's tables, fast.

firepit inserts row by row; the upserts here keep its statements and conflict rules
but batch them (SQLite: one executemany; PostgreSQL: COPY into a temporary table and
one INSERT ... SELECT).  Only the GET's own entity type is noted in __queries, once
per entity, so its view is a plain join.
"""

from __future__ import annotations

import gc
import io
from contextlib import contextmanager

import ujson

from .base import StoreBase
from .copy_format import copy_line, json_text
from .flatten import flatten
from .references import record_references
from .tables import TableWriter
from .validation import check_data, check_type_names
from .where import identifier


BULK_CACHE_KB = 64 * 1024  # SQLite's page cache while loading


class Ingesting(StoreBase):
    """Bundles and objects into the store, in batches, with firepit's semantics."""

    def __init__(self, *args, **kwargs):
        self._writer = None  # the TableWriter of the load under way
        super().__init__(*args, **kwargs)

    def _connect(self):
        super()._connect()
        self.fp.upsert_many = (self._sqlite_upsert_many if self.fp.dialect == "sqlite3"
                               else self._postgresql_upsert_many)

    # firepit's upsert_many, one per dialect: `recorded` is the set of types whose ids go
    # to __queries under `query_id` (None: every type, as firepit's own callers such as
    # load() expect); ingest() narrows it to the GET's type, since only its view reads them

    def _sqlite_upsert_many(self, cursor, tablename, objs, query_id, schema, recorded=None,
                            as_text=True, **_kwargs):
        """firepit's upsert (same statement, same conflict rules) as one executemany;
        lists and objects become JSON text unless the caller did that (not `as_text`)."""
        colnames = [k for k in schema if k != "type"]
        names = ", ".join(f'"{c}"' for c in colnames)
        stmt = (f'INSERT INTO "{tablename}" ({names}) '
                f'VALUES ({", ".join("?" * len(colnames))})'
                + self._on_conflict(tablename, colnames, never_updated="observed-data"))
        if as_text:
            objs = [tuple(ujson.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict))
                          else v for v in obj) for obj in objs]
        cursor.executemany(stmt, objs)
        queried = _queried(tablename, colnames, objs, query_id, recorded)
        if queried:
            cursor.executemany('INSERT INTO "__queries" (sco_id, query_id) VALUES (?, ?)',
                               queried)

    def _postgresql_upsert_many(self, cursor, tablename, objs, query_id, schema,
                                recorded=None, **_kwargs):
        """firepit's PostgreSQL upsert (same conflict rules) as a COPY into a temporary
        table and one INSERT ... SELECT (in id order, as firepit's: no deadlock between
        processes sharing a session)."""
        self._postgresql_write(cursor, tablename, schema, self._postgresql_encode(
            tablename, objs, query_id, schema, recorded))

    @staticmethod
    def _postgresql_encode(tablename, objs, query_id, schema, recorded) -> tuple:
        """The COPY text of the rows, and of their __queries rows."""
        queried = _queried(tablename, list(schema), objs, query_id, recorded)
        return ("".join(copy_line(obj) for obj in objs),
                "".join(copy_line(row) for row in queried))

    def _postgresql_write(self, cursor, tablename, schema, texts):
        rows, queried = texts
        colnames = list(schema)
        names = ", ".join(identifier(c) for c in colnames)
        cursor.execute(f"CREATE TEMP TABLE kestrel_load (LIKE {identifier(tablename)}) "
                       "ON COMMIT DROP")
        cursor.copy_expert(f"COPY kestrel_load ({names}) FROM STDIN", io.StringIO(rows))
        stmt = f"INSERT INTO {identifier(tablename)} ({names}) SELECT {names} FROM kestrel_load"
        if "id" in colnames:
            stmt += ' ORDER BY "id"'
        cursor.execute(stmt + (self._on_conflict(tablename, colnames, never_updated="identity")
                               or " ON CONFLICT DO NOTHING"))
        cursor.execute("DROP TABLE kestrel_load")
        if queried:
            cursor.copy_expert('COPY "__queries" (sco_id, query_id) FROM STDIN',
                               io.StringIO(queried))

    def _on_conflict(self, tablename, colnames, never_updated: str) -> str:
        """firepit's conflict rule for entities already stored (merged attributes), except
        for the `never_updated` table (firepit's choice differs per dialect); '' without ids."""
        if "id" not in colnames:
            return ""
        excluded = self.fp._get_excluded(colnames, tablename)
        action = ("NOTHING" if not excluded or tablename == never_updated
                  else f"UPDATE SET {excluded}")
        return f" ON CONFLICT (id) DO {action}"

    # ------------------------------------------------------------ ingest and extract

    def ingest(self, query_id: str, bundles, entity_type: str | None = None,
               finish=None) -> set:
        """Store STIX bundles (dicts; a list or any iterable) under `query_id`; with
        `entity_type`, note each entity of that type they hold once, for `extract`
        (without, as for FIND's prefetch, nothing is noted).  The rows are firepit's
        (flatten.py), written straight to its tables in one transaction, which
        `finish(cursor)` may add to: an interrupt or an error leaves the store as it
        was.  Returns the tables written to."""
        self.changed()
        recorded = frozenset([entity_type] if entity_type else [])
        if self.fp.dialect == "sqlite3":
            def encode(table, rows, schema):
                return rows

            def write(cursor, table, schema, rows):
                self._sqlite_upsert_many(cursor, table, rows, query_id, schema,
                                         recorded=recorded, as_text=False)
        else:
            def encode(table, rows, schema):
                return self._postgresql_encode(table, rows, query_id, schema, recorded)

            def write(cursor, table, schema, texts):
                self._postgresql_write(cursor, table, schema, texts)

        failed = True
        with self.errors("cannot store the data"), _no_cycle_collection(), self._bulk_load():
            # PostgreSQL works on a batch while the next is built (SQLite, in this process)
            writer = self._writer = TableWriter(
                self, encode, write, _sqlite_text if self.fp.dialect == "sqlite3" else json_text,
                background=self.fp.dialect == "postgresql")
            self._begin()
            try:
                for bundle in bundles:
                    objects = bundle.get("objects", ())
                    for obj in objects:
                        check_type_names(obj)
                        check_data(obj)
                    self._note_references(bundle)  # first: flatten takes the records apart
                    for obj in objects:
                        for table, row in flatten(obj):
                            writer.add(table, row)
                    writer.flush()
                writer.wait()
                failed = False
            finally:
                self._writer = None
                writer.close(failed)
            if entity_type is not None:
                self._deduplicate(query_id)
            if finish is not None:
                finish(self.fp.connection.cursor())
            self.fp.connection.commit()
        written = writer.tables_written | ({"__queries"} if entity_type else set())
        self.after_load(written)
        return written

    def _quiet(self):
        """Let the load's background write finish: a connection serves one thread at a
        time (what reads it during a load waits here first)."""
        if self._writer is not None:
            self._writer.wait()

    def _begin(self):
        """Open the load's transaction now: SQLite (as Python drives it) would run the
        new tables' CREATE TABLE outside it, committed whatever follows."""
        connection = self.fp.connection
        if self.fp.dialect == "sqlite3" and not connection.in_transaction:
            connection.execute("BEGIN")

    @contextmanager
    def _bulk_load(self):
        """SQLite tuned for a load: a page cache that holds the indexes being filled
        (ids are random, so each insert touches another page: the default 2 MB cache
        thrashes), and WAL checkpoints every 40 MB instead of every 4 MB."""
        if self.fp.dialect != "sqlite3":
            yield
            return
        connection = self.fp.connection
        saved = [next(iter(connection.execute(f"PRAGMA {name}").fetchone().values()))
                 for name in ("cache_size", "wal_autocheckpoint")]
        connection.execute(f"PRAGMA cache_size = {-BULK_CACHE_KB}")
        connection.execute("PRAGMA wal_autocheckpoint = 10000")
        try:
            yield
        finally:
            connection.execute(f"PRAGMA cache_size = {saved[0]}")
            connection.execute(f"PRAGMA wal_autocheckpoint = {saved[1]}")

    def _note_references(self, bundle):
        """Keep references() current without reading the data again: the references
        of the bundle's 2.0 records are added; a type referring from elsewhere (2.1
        objects, a record's own created_by_ref) is read again when next asked."""
        if not self._references:
            return
        for obj in bundle.get("objects", ()):
            self._references.pop(obj.get("type"), None)
            if obj.get("type") == "observed-data" and isinstance(obj.get("objects"), dict):
                for holder, ref, target in record_references(obj["objects"]):
                    if holder in self._references:
                        self._references[holder].setdefault(ref, set()).add(target)

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

    def load(self, view: str, objects: list, entity_type: str | None):
        """NEW/LOAD: objects (checked by those commands) as the entities of `view`."""
        self._references.clear()  # NEW/LOAD objects may hold references: read them again
        with self.errors("cannot load the objects"):
            return self.fp.load(view, objects, sco_type=entity_type, preserve_ids=True)


def _queried(tablename, colnames, objs, query_id, recorded) -> list:
    """(id, query_id) rows for __queries: none unless the table is `recorded` (None: all)."""
    if not query_id or "id" not in colnames or (recorded is not None
                                                and tablename not in recorded):
        return []
    at = colnames.index("id")
    return [(obj[at], query_id) for obj in objs]


@contextmanager
def _no_cycle_collection():
    """Python's cycle collector off while an ingest builds millions of small objects
    without cycles: it would walk them all again and again (a third of the time)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _sqlite_text(value) -> str:
    """A list or object as the JSON text firepit stores in SQLite."""
    return ujson.dumps(value, ensure_ascii=False)
