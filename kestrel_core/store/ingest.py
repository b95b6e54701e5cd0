"""Ingest: STIX bundles and objects into firepit's tables, fast.

firepit inserts row by row; the upserts here keep its statements and conflict rules
but batch them (SQLite: one executemany; PostgreSQL: COPY into a temporary table and
one INSERT ... SELECT).  Only the GET's own entity type is noted in __queries, once
per entity, so its view is a plain join.
"""

from __future__ import annotations

import functools
import io

import ujson

from .base import StoreBase
from .copy_format import copy_line
from .references import record_references
from .validation import check_data, check_type_names
from .where import identifier


class Ingesting(StoreBase):
    """Bundles and objects into the store, in batches, with firepit's semantics."""

    def __init__(self, location: str, session_id: str):
        super().__init__(location, session_id)
        self.fp.upsert_many = (self._sqlite_upsert_many if self.fp.dialect == "sqlite3"
                               else self._postgresql_upsert_many)

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
                    self._note_references(bundle)  # first: firepit takes the records apart
                    self.fp.cache(query_id, [bundle])
                if self.fp.dialect == "postgresql":
                    self._analyze()  # first: _deduplicate is planned on these statistics
                if entity_type is not None:
                    self._deduplicate(query_id)
        finally:
            self.fp.upsert_many = upsert

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
        self.fp.connection.commit()

    def _analyze(self):
        """Fresh planner statistics after a bulk load: with none, PostgreSQL may plan a
        record count over 100,000 entities as a nested loop that runs for half an hour."""
        cursor = self.fp.connection.cursor()
        for table in self.fp.types(private=True):
            cursor.execute(f"ANALYZE {identifier(table)}")
        self.fp.connection.commit()

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
