"""Indexes on the columns references are joined by, and fresh planner statistics.

firepit indexes ids (and, on PostgreSQL, __contains from record to entity) only.  A FIND,
a reference path in a WHERE or a record count joins `_ref` columns, __reflist and
__contains the other way: without an index there, a database may scan the whole table
once per row of the variable (25,000 x 250,000 rows for one FIND at 100k observations,
still running after 20 minutes).  With one, any plan a planner picks is at worst an
index probe per row; statistics let it choose hash joins where those are cheaper.
"""

from __future__ import annotations

import hashlib
import logging

from .where import identifier

log = logging.getLogger(__name__)

# firepit's own tables that joins read: (index, columns, the one dialect needing it or
# None), named as firepit (or Kestrel before) named them, so no store gets one twice
BOOKKEEPING = {
    "__contains": (("__contains_target_source", ("target_ref", "source_ref"), None),
                   # on PostgreSQL firepit's unique constraint is this index
                   ("__contains_source_target", ("source_ref", "target_ref"), "sqlite3")),
    "__reflist": (("__reflist_source_ref_idx", ("source_ref",), None),
                  ("__reflist_target_ref_idx", ("target_ref",), None)),
    # GET's and FIND's views join from their query's rows: they stream, where a view of
    # `id IN (SELECT ...)` built the whole id list before its first row (14 s at 2M)
    "__queries": (("__queries_query_sco", ("query_id", "sco_id"), None),),
}
# SDOs: their references (created_by_ref) are never followed
UNJOINED = frozenset(["observed-data", "identity"])
# rows SQLite's ANALYZE reads per index: statistics in milliseconds at any size, where a
# full ANALYZE reads every index whole
SQLITE_ANALYSIS_LIMIT = 1000


def index_name(table: str, column: str) -> str:
    """A name unique per (table, column) within PostgreSQL's 63 bytes."""
    digest = hashlib.sha1(f"{table}\0{column}".encode()).hexdigest()[:10]
    return f"kestrel_{table[:20]}_{column[:20]}_{digest}"


class Indexing:
    """Reference indexes and statistics of a store (`self.fp`, `self.rollback`)."""

    def _init_indexing(self):
        self._indexed = None  # the store's index names, read from its catalog when needed

    def index_tables(self, tables) -> bool:
        """The indexes reference joins need on `tables` (those that exist); True when
        one was missing (and made).  Nothing is asked of the database when all are known."""
        wanted = []
        for table in dict.fromkeys(tables):
            if table in BOOKKEEPING:
                wanted += [(name, table, columns) for name, columns, dialect
                           in BOOKKEEPING[table] if dialect in (None, self.fp.dialect)]
            elif not table.startswith("__") and table not in UNJOINED:
                wanted += [(index_name(table, c), table, (c,))
                           for c in self.fp.columns(table) if c.endswith("_ref")]
        return self._make_indexes(wanted)

    def index_columns(self, table: str, columns) -> bool:
        """Indexes on `table`'s `columns`, one each: the reference columns a query is
        about to join by (a variable made by NEW or LOAD had no load to index it)."""
        return self._make_indexes([(index_name(table, c), table, (c,)) for c in columns])

    def _tables(self) -> set:
        return set(self.fp.types(private=True))

    def _known_indexes(self) -> set:
        if self._indexed is None:
            self._indexed = {row["name"] for row in self.fp._query(
                "SELECT name FROM sqlite_master WHERE type = 'index'"
                if self.fp.dialect == "sqlite3" else "SELECT indexname AS name FROM "
                "pg_indexes WHERE schemaname = current_schema()")}
        return self._indexed

    def _make_indexes(self, wanted) -> bool:
        """Create the `wanted` (name, table, columns) the store lacks; True if any."""
        missing = [w for w in wanted if w[0] not in self._known_indexes()]
        if missing:
            existing = self._tables()
            missing = [w for w in missing if w[1] in existing]
        if not missing:
            return False
        try:
            cursor = self.fp.connection.cursor()
            for name, table, columns in missing:
                cursor.execute(f"CREATE INDEX IF NOT EXISTS {identifier(name)} ON "
                               f"{identifier(table)} ({', '.join(map(identifier, columns))})")
            self.fp.connection.commit()
        except Exception as err:  # read-only, or a role without CREATE: slower, still right
            log.warning("no index on the store's references (%s): joins may be slow", err)
            self.rollback()
        self._indexed.update(name for name, _, _ in missing)
        return bool(missing)

    def analyze(self, tables):
        """Fresh planner statistics for `tables` (those that exist): a planner without
        them, or with a table's from before a bulk load, misjudges every join on it."""
        existing = self._tables()
        tables = [t for t in dict.fromkeys(tables) if t in existing]
        if not tables:
            return
        try:
            cursor = self.fp.connection.cursor()
            if self.fp.dialect == "sqlite3":
                cursor.execute(f"PRAGMA analysis_limit = {SQLITE_ANALYSIS_LIMIT}")
            for table in tables:
                cursor.execute(f"ANALYZE {identifier(table)}")
            self.fp.connection.commit()
        except Exception as err:  # as for indexes: plans may be worse, results are right
            log.warning("no statistics for the store's tables (%s)", err)
            self.rollback()
