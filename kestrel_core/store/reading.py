"""Reading variables: counts (entities by their identity, kestrel.identity), rows
(references followed), pages of distinct rows or entities, values and times."""

from __future__ import annotations

import json
import logging

from firepit.query import Column, Projection, Query, Table

from ..identity import HOST, RECORD_COLUMNS, identity_of
from .base import ROW, StoreBase, database_error
from .where import identifier

log = logging.getLogger(__name__)

KEY = ROW + "_key"  # an entity's identity beside its columns


class Reading(StoreBase):
    """What statements and front ends read of a variable."""

    def count(self, view: str) -> int:
        """Rows of the view: a GROUP result's rows, or entities' occurrences as stored."""
        with self.errors("cannot count entities"):
            return self.fp.count(view)

    def entity_counts(self, view: str, entity_type: str) -> tuple:
        """(entities, occurrences): distinct entities by their identity (kestrel.identity)
        and the rows that store them, counted by the database in one scan."""
        with self.errors("cannot count entities"):
            parts = self.entity_parts(self._translator(), entity_type, "e",
                                      self.fp.columns(view))
            row = self.fp._query(
                'SELECT COUNT(*) AS "entities", SUM("n") AS "occurrences" FROM (SELECT '
                f'COUNT(*) AS "n" FROM {identifier(view)} AS e GROUP BY {", ".join(parts)}) '
                "AS g").fetchone()
            self.fp.connection.commit()  # ends PostgreSQL's read transaction
        return int(row["entities"]), int(row["occurrences"] or 0)

    def entity_parts(self, sql, entity_type: str, table: str, columns: list,
                     sightings: bool = False) -> list:
        """SQL values that are all equal (NULL as NULL, as GROUP BY has it) for two rows of
        `table` (with `columns`) exactly when they hold the same entity by
        kestrel.identity's rule; with `sightings`, the same entity in the same record
        (where rows carry their record's columns: TIMESTAMPED, ADDOBSID)."""
        rule = identity_of(entity_type, columns)
        parts = [self._first_value(sql, part, entity_type, table, columns)
                 for part in rule.parts]
        if self.hosted(entity_type, columns):
            parts.append(self._host(table))
        if rule.unique:  # alone where present; the rest counts only where it is not
            unique = f"{table}.{identifier(rule.unique)}"
            parts = [unique] + [f"CASE WHEN {unique} IS NULL THEN {p} END" for p in parts]
        if sightings:
            parts += [f"{table}.{identifier(c)}" for c in RECORD_COLUMNS if c in columns]
        return parts

    def hosted(self, entity_type: str, columns: list) -> bool:
        """Whether rows of `entity_type` with `columns` count their host (processes, in a
        store that holds x-oca-assets)."""
        return (identity_of(entity_type, columns).host and "id" in columns
                and "x-oca-asset" in self.fp.types())

    def entity_key(self, parts: list) -> str:
        """The parts as one text value (a JSON list: no two values run together)."""
        key = self._json(parts)
        return key if self.fp.dialect == "sqlite3" else f"CAST({key} AS TEXT)"

    @staticmethod
    def _first_value(sql, paths, entity_type, table, columns) -> str:
        values = [sql.value(path, entity_type, table, columns) for path in paths]
        return values[0] if len(values) == 1 else f"COALESCE({', '.join(values)})"

    def _json(self, values: list) -> str:
        """A JSON list of SQL values, in lists of 50 (PostgreSQL takes 100 arguments)."""
        function = "json_array" if self.fp.dialect == "sqlite3" else "json_build_array"
        if len(values) > 50:
            values = [self._json(values[i:i + 50]) for i in range(0, len(values), 50)]
        return f"{function}({', '.join(values)})"

    def _host(self, table: str) -> str:
        """The host of a process row: the x-oca-asset its record holds (by hostname, else
        host_id, else id), through __contains both ways."""
        self.index_tables(["__contains"])
        asset = self._table_columns("x-oca-asset")
        names = [f"a.{identifier(c)}" for c in ("hostname", "host_id", "id") if c in asset]
        host = f'COALESCE({", ".join(names)})' if len(names) > 1 else names[0]  # SQLite: 2+
        return (f'(SELECT MIN({host}) '
                'FROM "__contains" AS c1 INNER JOIN "__contains" AS c2 ON c2."source_ref" = '
                'c1."source_ref" INNER JOIN "x-oca-asset" AS a ON a."id" = c2."target_ref" '
                f'WHERE c1."target_ref" = {table}."id")')

    def record_count(self, view: str) -> int:
        """How many observations (records) hold the view's entities: the view's ids read
        once (IN), each looked up in __contains' index from entity to record."""
        self.index_tables(["__contains"])
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
        self.index_tables(["__contains"])  # firepit joins the view to its records
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
                return self._lookup(view, columns, limit, offset)
            # a SORT result: firepit's joins may reorder rows (PostgreSQL's planner does,
            # and firepit cannot read the order back from PostgreSQL's view text), so the
            # rows are put back in the view's own order, then sliced
            found = self._lookup(view, columns)
            order = {}
            for row in self.fp._query(f"SELECT {identifier('id')} FROM {identifier(view)}"):
                order.setdefault(row["id"], len(order))
            found.sort(key=lambda row: order.get(row.get("id"), len(order)))
            start = offset or 0
            return found[start:None if limit is None else start + limit]

    def _lookup(self, view: str, columns=None, limit=None, offset=None) -> list:
        """firepit's rows of a view, with the attributes its references reach when no
        `columns` are named; where firepit cannot follow them (a cycle of references
        between types recursed for ever; two reference targets whose columns it joins
        under one alias, or coalesces though their types differ), the rows as stored,
        references as ids: hostile data must not leave a variable unreadable."""
        try:
            return self.fp.lookup(view, cols=columns or "*", limit=limit, offset=offset)
        except Exception as err:
            if columns or not (isinstance(err, RecursionError) or database_error(err)):
                raise
            log.warning("%s: references not followed: %s", view, err)
            self.fp.connection.rollback()
        return self.fp.lookup(view, cols=self.fp.columns(view), limit=limit, offset=offset)

    def distinct_page(self, view: str, columns: list, sort_by=None, ascending=True,
                      limit=None, offset=0, count_rows=None, entity_type=None) -> tuple:
        """(rows, total, exact): one page of the distinct combinations of `columns`
        (reference paths such as parent_ref.name allowed) and how many distinct rows
        there are in all.

        With `sort_by`, the database groups, sorts, pages and counts. Without, rows keep
        the view's own order (a SORT result's) through their first appearance, read from
        one streamed scan of the view that stops once it holds offset + limit distinct
        rows and has read `count_rows` rows (None: the whole view), so a first page
        never waits for the rest of a big view. `exact` is False when the scan stopped
        before the end: `total` (the distinct rows seen) is then a lower bound.  A
        property the store names otherwise (`entity_type`'s, see stored_column) is read
        from its column under its own name."""
        wanted = list(columns) + ([sort_by] if sort_by and sort_by not in columns else [])
        query = Query(view)
        own = self.fp.columns(view)
        projection, joined = [], []
        for column in wanted:
            stored = column if column in own else self.stored_column(entity_type, column)
            if stored in own:
                projection.append(Column(stored, view, alias=column if stored != column else None))
            else:
                joins, table, target = self.fp.path_joins(view, None, column)
                for join in joins:  # paths through one reference share its join
                    if vars(join) not in joined:
                        joined.append(vars(join))
                        query.append(join)
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

    def entity_page(self, view: str, entity_type: str, columns: list, sort_by=None,
                    ascending=True, limit=None, offset=0, count_rows=None) -> tuple:
        """(rows, total, exact) as distinct_page, with a row per entity (by
        kestrel.identity; per entity and record where the view carries its records'
        columns) holding `columns` of its first occurrence (in SORT BY's order with
        `sort_by`; a process's HOST among them), and the number of entities: what a
        summary counts."""
        wanted = list(columns) + ([sort_by] if sort_by and sort_by not in columns else [])
        sql, own = self._translator(), self.fp.columns(view)
        parts = self.entity_parts(sql, entity_type, "e", own, sightings=True)
        def value(column):  # a process's HOST is its record's, not an attribute
            if column == HOST and column not in own:
                return self._host("e")
            return sql.value(column, entity_type, "e", own)

        shown = ", ".join(f"{value(c)} AS {identifier(c)}" for c in wanted)
        source = f"FROM {identifier(view)} AS e"
        if not sort_by:
            return self._first_distinct(
                f"SELECT {shown}, {self.entity_key(parts)} {source}", None, wanted, limit,
                offset, count_rows, keyed=True)
        keys = [identifier(f"{KEY}{i}") for i in range(len(parts))]
        inner = f"SELECT {shown}, {', '.join(f'{p} AS {k}' for p, k in zip(parts, keys))} {source}"
        names = ", ".join(identifier(c) for c in wanted)
        order = f'{identifier(sort_by)} {"ASC" if ascending else "DESC"} NULLS LAST, "{ROW}"'
        numbered = f'SELECT shown.*, ROW_NUMBER() OVER () AS "{ROW}" FROM ({inner}) AS shown'
        # an entity's first occurrence in that order; ties keep the view's own order
        firsts = (f'SELECT numbered.*, ROW_NUMBER() OVER (PARTITION BY {", ".join(keys)} '
                  f'ORDER BY {order}) AS "{ROW}_first" FROM ({numbered}) AS numbered')
        page = f'SELECT {names} FROM ({firsts}) AS firsts WHERE "{ROW}_first" = 1 ORDER BY {order}'
        if limit is not None:
            page += f" LIMIT {int(limit)}"
        if offset:
            page += f" OFFSET {int(offset)}"
        count = f'SELECT COUNT(*) AS "count" FROM (SELECT 1 {source} GROUP BY {", ".join(parts)}) g'
        with self.errors("cannot read entities"):
            rows = self.fp._query(page).fetchall()
            total = self.fp._query(count).fetchone()
            self.fp.connection.commit()  # ends PostgreSQL's read transaction
        return rows, int(total["count"]), True

    def _first_distinct(self, select: str, values, names: list, limit, offset,
                        count_rows, keyed=False) -> tuple:
        """distinct_page without sorting: (rows, total, exact) from one streamed scan of
        `select`, in its order, deduplicated here (NULLs equal, as GROUP BY has them); when
        `keyed`, by the scan's last column (an entity's identity), which is not shown."""
        enough = None if limit is None else offset + int(limit)
        seen, read, exact = {}, 0, False
        with self.errors("cannot read entities"):
            if self.fp.dialect == "sqlite3":  # sqlite3 steps the statement as rows are read
                cursor = self.fp.connection.cursor()
                cursor.row_factory = None
            else:
                cursor = self.server_cursor()
            try:
                cursor.execute(select, values or ())
                while True:
                    batch = cursor.fetchmany(min(2000, count_rows or 2000))
                    if not batch:
                        exact = True
                        break
                    for row in batch:
                        if keyed:
                            seen.setdefault(row[-1], row[:-1])
                            continue
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

