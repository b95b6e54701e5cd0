"""Sources read once: a bundle's records kept whole in the store, so that each GET and
FIND prefetch of the unchanged bundle is answered with SQL instead of another read.

A copy is named by the key its source derives from what identifies the content (a
file's path, size and modification time; a URL's body, hashed).  Its records are
noted in __queries under `copy-KEY`, and COPIES says which copies are complete: the
copy is stored in one transaction, so an interrupted read leaves none and the next
GET reads the bundle again.  A record the store holds already (the same bundle under
another path, an earlier version of it) is noted, not stored again: stored twice, a
process without a unique id would become two entities.
"""

from __future__ import annotations

from datetime import datetime, timezone

from ..syntax import ast
from ..syntax.ecgp import ALWAYS, NEVER, center_part
from ..timestamps import format_timestamp, parse_timestamp, window_datetimes
from .ingest import Ingesting
from .where import identifier

COPIES = "__kestrel_copies"
RECORDS = "observed-data"


class Copies(Ingesting):
    """The store's copies of sources, and GETs answered from them."""

    def copy_of(self, key: str) -> dict | None:
        """The complete copy `key` (location, records, earliest, latest, stored), or None."""
        if COPIES not in self.fp.types(private=True):
            return None
        with self.errors("cannot read the store's copies"):
            row = self.fp._query(f"SELECT * FROM {COPIES} WHERE key = {self.fp.placeholder}",
                                 (key,)).fetchone()
        if row is None:
            return None
        copy = dict(row)
        for end in ("earliest", "latest"):
            copy[end] = parse_timestamp(copy[end]) if copy[end] else None
        return copy

    def store_copy(self, key: str, location: str, result) -> dict:
        """Store every record of `result` (a source's answer, read while stored) as the
        copy `key` of `location`, and return it (as copy_of)."""
        known = set()
        fresh = not self._holds_records()

        def finish(cursor):
            mark = self.fp.placeholder
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {COPIES} (key TEXT PRIMARY KEY, "
                           "location TEXT, records BIGINT, earliest TEXT, latest TEXT, "
                           "stored TEXT)")
            cursor.executemany(f'INSERT INTO "__queries" (sco_id, query_id) VALUES ({mark}, '
                               f"{mark})", [(record, f"copy-{key}") for record in known])
            span = result.time_span
            cursor.execute(f"INSERT INTO {COPIES} VALUES ({', '.join([mark] * 6)})", (
                key, location, result.records,
                format_timestamp(span.earliest) if span else None,
                format_timestamp(span.latest) if span else None,
                format_timestamp(datetime.now(timezone.utc))))

        bundles = result.bundles if fresh else self.unstored(result.bundles, known)
        self.ingest(f"copy-{key}", bundles, RECORDS, finish)
        return self.copy_of(key)

    def unstored(self, bundles, known: set = None):
        """The bundles less the records the store holds already (their ids go to `known`):
        stored again, a record's entities that firepit identifies per record (processes
        without x_unique_id) would be copied, and LINKED would find the copies in it."""
        if RECORDS not in self.fp.types():  # asked before the load: a failed read ends it
            return bundles
        return self._unstored(bundles, set() if known is None else known)

    def _unstored(self, bundles, known: set):
        for bundle in bundles:
            objects = bundle.get("objects", ())
            held = self.stored_records([o.get("id") for o in objects
                                        if o.get("type") == RECORDS])
            if held:
                known.update(held)
                objects = [o for o in objects
                           if o.get("type") != RECORDS or o.get("id") not in held]
                bundle = {**bundle, "objects": objects}
            yield bundle

    def _holds_records(self) -> bool:
        if RECORDS not in self.fp.types():
            return False
        with self.errors("cannot read the store's records"):
            return bool(self.fp._query(f'SELECT 1 FROM "{RECORDS}" LIMIT 1').fetchall())

    def stored_records(self, ids: list) -> set:
        """Which of these observed-data ids the store holds.  Read in the transaction of a
        load under way (firepit's queries commit, and a load is one transaction): the
        bundles a load reads ask this as they go."""
        self._quiet()
        held, cursor = set(), self.fp.connection.cursor()
        with self.errors("cannot read the stored records"):
            for at in range(0, len(ids), 500):
                chunk = ids[at:at + 500]
                cursor.execute(f'SELECT "id" FROM "{RECORDS}" WHERE "id" IN '
                               f"({', '.join([self.fp.placeholder] * len(chunk))})", chunk)
                held.update(row["id"] for row in cursor.fetchall())
        return held

    def note_matching(self, query_id: str, entity_type: str, keys: list, where, window):
        """Note under `query_id` (for `extract`) the `entity_type` entities in the records
        of the copies `keys` that lie in `window` and match `where` as a record does
        (bundle records are matched whole: a comparison about another entity type holds
        when the record has such an entity), and whose own comparisons hold."""
        if entity_type not in self.fp.types() or not keys:
            return
        sql = self._translator(prematch=ast.holds_rules(where))
        table = identifier(entity_type)
        held = ['c.target_ref = e."id"', "s.query_id IN "
                f"({', '.join(sql.literal(f'copy-{k}') for k in keys)})"]
        joins, own = "", []
        if window:
            start, stop = window_datetimes(window)
            joins = f' JOIN "{RECORDS}" r ON r."id" = s.sco_id'
            held += [f'r."first_observed" >= {sql.literal(format_timestamp(start))}',
                     f'r."first_observed" < {sql.literal(format_timestamp(stop))}']
        if where is not None and sql.matched is not None:
            with self.errors(f"cannot select {entity_type} entities"):
                where = self._possible(sql, where, lambda w: self._conditions(
                    sql, w, entity_type))
            if where is NEVER:
                return
        if where is not None and where is not ALWAYS:
            center, record = self._conditions(sql, where, entity_type)
            if center is NEVER:
                return
            own = [center]
            held += [record] if record else []
        # each entity once, tested where it is stored: a semi-join, no DISTINCT over
        # its occurrences in every record
        in_copies = (f'EXISTS (SELECT 1 FROM "__contains" c JOIN "__queries" s ON s.sco_id = '
                     f"c.source_ref{joins} WHERE {' AND '.join(held)})")
        with self.errors(f"cannot select {entity_type} entities"):
            self._materialize(sql)
            self.fp.connection.cursor().execute(
                f'INSERT INTO "__queries" (sco_id, query_id) SELECT e."id", '
                f"{sql.literal(query_id)} FROM {table} e WHERE "
                f"{' AND '.join([*filter(None, own), in_copies])}")
            self.fp.connection.commit()

    def _conditions(self, sql, where, entity_type) -> tuple:
        """(SQL of `where`'s own comparisons for the entity `e`, or NEVER; SQL of the
        record s.sco_id matching all of it when it asks about other types, or None)."""
        center = center_part(where, entity_type)
        if center is NEVER:
            return NEVER, None
        own = (None if center is ALWAYS
               else sql.where(center, entity_type, "e", self.fp.columns(entity_type)))
        record = (self._record_condition(sql, where, entity_type)
                  if about_others(where, entity_type) else None)
        return own, record

    def _record_condition(self, sql, node, center: str, record: str = "s.sco_id") -> str:
        """`node` matched against the record `record`: each comparison holds when some
        entity of its type in the record satisfies it."""
        if isinstance(node, ast.BoolExpr):
            parts = [self._record_condition(sql, o, center, record) for o in node.operands]
            return "(" + f" {node.op} ".join(parts) + ")"
        kind = node.path.entity_type or center
        if kind not in self.fp.types():
            return "1 = 0"
        test = sql.where(node, kind, "x", self.fp.columns(kind)) or "1 = 1"
        return (f'EXISTS (SELECT 1 FROM "__contains" k JOIN {identifier(kind)} x ON '
                f'x."id" = k.target_ref WHERE k.source_ref = {record} AND {test})')


def about_others(node, entity_type: str) -> bool:
    """Whether an ECGP compares attributes of other entity types (extended subgraphs)."""
    if isinstance(node, ast.BoolExpr):
        return any(about_others(o, entity_type) for o in node.operands)
    return node.path.entity_type not in (None, entity_type)
