"""Reading variables: counts, rows (references followed), pages of distinct rows,
values and times."""

from __future__ import annotations

import json
import uuid

from firepit.query import Column, Projection, Query, Table

from .base import ROW, StoreBase
from .where import identifier


class Reading(StoreBase):
    """What statements and front ends read of a variable."""

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
        # entities without the attribute last, either way, as SORT has them
        order = f'"{sort_by}" {"ASC" if ascending else "DESC"} NULLS LAST, ' if sort_by else ""
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

    def describe(self, view: str, entity_type: str, attribute: str, top: int = 5) -> dict:
        """DESCRIBE: count (values that are not NULL), unique, the `top` most frequent
        values with their counts (ties by value), and mean/min/max when every value is a
        number; computed in the database, whatever the variable's size."""
        with self.errors(f"cannot describe {attribute}"):
            value = self._translator().value(attribute, entity_type, "d",
                                             self.fp.columns(view))
            values = f"SELECT {value} AS v FROM {identifier(view)} AS d"
            if self.fp.dialect == "sqlite3":
                numeric = "typeof(v) IN ('integer', 'real')"
            else:
                numeric = ("pg_typeof(v)::text IN ('smallint', 'integer', 'bigint', 'real', "
                           "'double precision', 'numeric')")
            counts = self.fp._query(
                f"SELECT COUNT(v) AS count, COUNT(DISTINCT v) AS uniq, SUM(CASE WHEN "
                f"{numeric} THEN 1 ELSE 0 END) AS numbers FROM ({values}) AS s").fetchone()
            frequent = self.fp._query(
                f"SELECT v, COUNT(*) AS n FROM ({values}) AS s WHERE v IS NOT NULL "
                f"GROUP BY v ORDER BY n DESC, v LIMIT {int(top)}").fetchall()
            stats = {"count": counts["count"], "unique": counts["uniq"],
                     "top": frequent[0]["v"] if frequent else None,
                     "freq": frequent[0]["n"] if frequent else 0}
            if counts["count"] and counts["numbers"] == counts["count"]:
                spread = self.fp._query(f"SELECT AVG(v) AS mean, MIN(v) AS min, MAX(v) AS max "
                                        f"FROM ({values}) AS s").fetchone()
                stats.update(mean=float(spread["mean"]), min=spread["min"], max=spread["max"])
            self.fp.connection.commit()  # ends PostgreSQL's read transaction
        return {**stats, "top_values": [(row["v"], row["n"]) for row in frequent]}

    def values(self, view: str, attribute: str) -> list:
        with self.errors(f"cannot read {attribute}"):
            return [v for v in self.fp.values(attribute, view) if v is not None]

    def timestamped(self, view: str, limit=None) -> list:
        with self.errors("cannot read timestamps"):
            return self.fp.timestamped(view, limit=limit)

