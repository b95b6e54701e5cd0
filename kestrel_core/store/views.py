"""The store: a Kestrel variable is a firepit view.

Every statement writes a new, uniquely named view, so redefining a variable never
disturbs views built on its old value, and a failed statement leaves nothing behind
(`drop`).  Time windows are applied here because firepit ignores START/STOP.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from firepit.query import Column, Filter, Join, Predicate, Projection, Query, Table, Unique

from ..syntax import ast
from ..syntax.ecgp import ALWAYS, NEVER, UNIT_SECONDS, center_part
from ..timestamps import format_timestamp
from .base import ROW
from .copies import Copies, about_others
from .matched import prune
from .reading import KEY, Reading
from .where import FALSE, identifier


class Store(Reading, Copies):
    """The view facade: statements derive views from views (or from ingested data)."""

    def extract(self, view: str, entity_type: str, query_id: str, where=None):
        """A view of the `entity_type` entities in `query_id` that match `where` (an ECGP);
        `query_id` was ingested with this `entity_type` (one __queries row per entity)."""
        if entity_type not in self.fp.types():
            self.empty_view(view, entity_type)
            return
        rules, columns = ast.holds_rules(where), self.fp.columns(entity_type)
        sql, table = self._translator(prematch=rules), identifier(entity_type)
        with self.errors(f"cannot select {entity_type} entities"):
            if rules:
                where = self._possible(sql, where, lambda w: self._entity_condition(
                    sql, w, entity_type, table, columns))
            condition = (self._entity_condition(sql, where, entity_type, table, columns)
                         if where is not None else None)
            if condition and rules:
                self._materialize(sql)
                fixed = f"{query_id}-rules"
                self._fix(fixed, f"SELECT DISTINCT {table}.\"id\" FROM __queries INNER JOIN "
                                 f"{table} ON {table}.\"id\" = __queries.sco_id WHERE "
                                 f"__queries.query_id = {sql.literal(query_id)} AND {condition}")
                query_id, condition = fixed, None
            self._create_view(view, self._queried(entity_type, query_id, condition),
                              entity_type, deps=[entity_type])

    def _queried(self, entity_type: str, query_id: str, condition=None) -> str:
        """The entities noted under `query_id` (one __queries row each): a join, no
        duplicates, read along the (query_id, sco_id) index."""
        table = identifier(entity_type)
        select = (f"SELECT {table}.* FROM __queries INNER JOIN {table} ON "
                  f"{table}.\"id\" = __queries.sco_id WHERE "
                  f"__queries.query_id = {self._translator().literal(query_id)}")
        return select + (f" AND {condition}" if condition else "")

    def _fix(self, query_id: str, ids: str):
        """Note the entity ids a SELECT gives under `query_id`, once: a view over a
        folder of Sigma rules would evaluate thousands of expressions at every read."""
        self.fp.connection.cursor().execute(
            f"INSERT INTO __queries (sco_id, query_id) SELECT m.\"id\", "
            f"{self._translator().literal(query_id)} FROM ({ids}) AS m")
        self.fp.connection.commit()

    def filter(self, view: str, entity_type: str, input_view: str, where):
        """A view of the entities of `input_view` that match `where` (an ECGP).  A
        comparison about another entity type holds when a record of the entity has such
        an entity that satisfies it (as GET matches records)."""
        with self.errors("cannot filter"):
            columns, rules = self.fp.columns(input_view), ast.holds_rules(where)
            sql = self._translator(prematch=rules and "id" in columns)
            select = f"SELECT * FROM ({self.fp._get_view_def(input_view)}) AS tmp"
            if sql.matched is not None:
                where = self._possible(sql, where, lambda w: self._entity_condition(
                    sql, w, entity_type, "tmp", columns))
            condition = self._entity_condition(sql, where, entity_type, "tmp", columns)
            if condition and sql.matched is not None:
                self._materialize(sql)
                fixed = f"rules-{uuid.uuid4().hex}"
                self._fix(fixed, f"SELECT DISTINCT tmp.\"id\" FROM "
                                 f"({self.fp._get_view_def(input_view)}) AS tmp WHERE {condition}")
                condition = (f'tmp."id" IN (SELECT sco_id FROM __queries WHERE query_id = '
                             f"{sql.literal(fixed)})")
            if condition:
                select += f" WHERE {condition}"
            self._create_view(view, select, entity_type, deps=[input_view])

    def _entity_condition(self, sql, where, entity_type, alias, columns):
        """SQL of `where` for the entity at `alias`: its own comparisons, and those about
        other types matched in a record that holds it; None when nothing is asked."""
        if where is ALWAYS or where is NEVER:
            return None if where is ALWAYS else FALSE
        own = center_part(where, entity_type)
        condition = None if own is ALWAYS else (
            FALSE if own is NEVER else sql.where(own, entity_type, alias, columns))
        if about_others(where, entity_type) and "id" in columns:
            record = self._record_condition(sql, where, entity_type, "k0.source_ref")
            condition = " AND ".join(filter(None, [condition, (
                f'EXISTS (SELECT 1 FROM "__contains" k0 WHERE k0.target_ref = {alias}."id" '
                f"AND {record})")]))
        return condition

    def matching(self, view: str, entity_type: str, conditions: list) -> tuple:
        """([ids of `view`'s entities matching each condition (an ECGP)], {id: entity
        key}): which Sigma rules each entity of a result matched, and which rows hold
        the same entity (kestrel.identity)."""
        sql, columns = self._translator(prematch=True), self.fp.columns(view)
        matched, keys = [set() for _ in conditions], {}
        key = self.entity_key(self.entity_parts(sql, entity_type, "tmp", columns))
        with self.errors("cannot match the rules"):
            for condition in conditions:  # written once to learn their expressions
                self._entity_condition(sql, condition, entity_type, "tmp", columns)
            self._fill(sql)
            possible = [prune(condition, sql) for condition in conditions]
            sql.redraft()
            tests = [(i, self._entity_condition(sql, c, entity_type, "tmp", columns) or "1 = 1")
                     for i, c in enumerate(possible) if c is not NEVER]
            self._materialize(sql)
            for at in range(0, max(len(tests), 1), 200):  # SQLite: 2,000 columns
                chunk = tests[at:at + 200]
                rows = self.fp._query(
                    f'SELECT DISTINCT tmp."id" AS id, {key} AS entity_key'
                    + "".join(f", CASE WHEN {t} THEN 1 ELSE 0 END AS r{n}" for n, (_, t)
                              in enumerate(chunk))
                    + f" FROM {identifier(view)} AS tmp").fetchall()
                for row in rows:
                    keys[row["id"]] = row["entity_key"]
                    for n, (i, _) in enumerate(chunk):
                        if row[f"r{n}"]:
                            matched[i].add(row["id"])
        return matched, keys

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

    def restrict_to_window(self, view: str, entity_type: str, input_view: str, start, stop):
        """Entities of `input_view` seen in records with start <= first_observed < stop."""
        self.index_tables(["__contains"])
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

    # ------------------------------------------------------------ deriving views

    def refine(self, view: str, entity_type: str, input_view: str, sort_by=None,
               ascending=True, limit=None, offset=None):
        """A view of `input_view` sorted by an attribute or a path through `_ref`s
        (`parent_ref.name`), entities lacking it last either way, and/or sliced.

        LIMIT and OFFSET count entities by their identity (kestrel.identity), each kept
        with all its occurrences, so the summary of `x LIMIT 5` says 5 and DISP shows 5
        rows (see _first_entities for which); a GROUP result's rows count as rows."""
        with self.errors("cannot sort or slice"):
            sql, columns = self._translator(), self.fp.columns(input_view)
            source = identifier(input_view)
            direction = "ASC" if ascending else "DESC"
            select = f"SELECT s.* FROM {source} AS s"
            sliced = limit is not None or offset
            # SQLite takes an OFFSET only after a LIMIT (-1 there, ALL here: none)
            unlimited = "-1" if self.fp.dialect == "sqlite3" else "ALL"
            slicing = (f" LIMIT {unlimited if limit is None else int(limit)}"
                       + (f" OFFSET {int(offset)}" if offset else ""))
            if sliced and "id" in columns:
                chosen = self._first_entities(sql, entity_type, source, columns, sort_by,
                                              ascending, slicing)
                key = self.entity_key(self.entity_parts(sql, entity_type, "s", columns))
                select += f" WHERE {key} IN ({chosen})"
            if sort_by:
                key = sql.value(sort_by, entity_type, "s", columns)
                select += f" ORDER BY {key} {direction} NULLS LAST"
            if sliced and "id" not in columns:  # rows of a GROUP result
                select += slicing
            self._create_view(view, select, entity_type, deps=[input_view])

    def _first_entities(self, sql, entity_type, source, columns, sort_by, ascending,
                        slicing) -> str:
        """The keys (Reading.entity_key) of the entities a LIMIT/OFFSET `slicing` keeps:
        without `sort_by` the first ones to appear (DISTINCT streams and stops there on
        SQLite); with it, by each entity's first value in that order, ties by key."""
        parts = self.entity_parts(sql, entity_type, "f", columns)
        if not sort_by:
            return f"SELECT DISTINCT {self.entity_key(parts)} FROM {source} AS f{slicing}"
        keys = [identifier(f"{KEY}{i}") for i in range(len(parts))]
        value = sql.value(sort_by, entity_type, "f", columns)
        first = "MIN" if ascending else "MAX"  # NULL only where every value is
        grouped = ", ".join(keys)
        return (f"SELECT {self.entity_key(keys)} FROM (SELECT {value} AS \"v\", "
                f"{', '.join(f'{p} AS {k}' for p, k in zip(parts, keys))} FROM {source} AS f) "
                f"AS g GROUP BY {grouped} ORDER BY {first}(\"v\") "
                f"{'ASC' if ascending else 'DESC'} NULLS LAST, {grouped}{slicing}")

    def transformed(self, view: str, input_view: str, transform: str, entity_type: str):
        """TIMESTAMPED (adds first_observed), ADDOBSID (adds observation_id) or RECORDS
        (the observed-data holding the entities) of `input_view`."""
        self.index_tables(["__contains"])  # each joins the entities to their records
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
        self.changed()
        with self.errors("cannot write attributes back"):
            self.fp.reassign(view, rows)

    def set_texts(self, view: str, entity_type: str, values: dict):
        """Set text attributes of `view`'s entities by id ({id: {attribute: text}}),
        adding the columns they need: Sigma's labels, two columns of many entities, which
        firepit's reassign rewrote whole, a statement per row (2 s of 20,000 labels)."""
        if not values:
            return
        self.changed()
        names = list(dict.fromkeys(name for row in values.values() for name in row))
        table, mark = identifier(entity_type), self.fp.placeholder
        with self.errors("cannot write attributes back"):
            cursor = self.fp.connection.cursor()
            new = [name for name in names if name not in self.fp.columns(entity_type)]
            for name in new:
                cursor.execute(f"ALTER TABLE {table} ADD COLUMN {identifier(name)} TEXT")
                cursor.execute('INSERT INTO "__columns" (otype, path, shortname, dtype) VALUES '
                               f"({mark}, {mark}, {mark}, 'str')", (entity_type, name, name))
            rows = [[*map(row.get, names), entity] for entity, row in values.items()]
            columns = [f"c{i}" for i in range(len(names))]
            setters = ", ".join(f"{identifier(n)} = v.{c}" for n, c in zip(names, columns))
            one = "(" + ", ".join([mark] * (len(names) + 1)) + ")"
            for at in range(0, len(rows), 500):
                chunk = rows[at:at + 500]
                cursor.execute(f"WITH v({', '.join(columns)}, id) AS (VALUES "
                               f"{', '.join([one] * len(chunk))}) UPDATE {table} SET "
                               f'{setters} FROM v WHERE {table}."id" = v.id',
                               [item for row in chunk for item in row])
            if new:  # a PostgreSQL view keeps the columns it was made with
                self.fp._recreate_view(view, self.fp._get_view_def(view), cursor)
            self.fp.connection.commit()

    def merge(self, view: str, input_views: list):
        """The union of the views' rows, each definition a subquery of its own: firepit
        joined the definitions as they are, so a sorted one's ORDER BY (and LIMIT) fell on
        the whole union, which the database refused: the merge failed, or on PostgreSQL
        firepit made it an empty view without a word."""
        with self.errors("cannot merge"):
            selects = [f"SELECT * FROM ({self.fp._get_view_def(name)}) AS m{i}"
                       for i, name in enumerate(input_views)]
            self._create_view(view, " UNION ".join(selects),
                              self.fp.table_type(input_views[0]), deps=input_views)

    def join(self, view: str, entity_type: str, left: str, left_on: str, right: str,
             right_type: str, right_on: str):
        """Each entity of `left` whose `left_on` equals some `right` entity's `right_on`
        (both may be reference paths), once, with the attributes it lacks taken from
        the first such `right` entity in `right`'s order (firepit's JOIN gave an entity
        once per match); aliased, so a variable may be joined with itself."""
        with self.errors("cannot join"):
            left_columns, right_columns = self.fp.columns(left), self.fp.columns(right)
            shown = [f"l.{identifier(c)}" if c not in right_columns else
                     f"COALESCE(l.{identifier(c)}, r.{identifier(c)}) AS {identifier(c)}"
                     for c in left_columns]
            shown += [f"r.{identifier(c)}" for c in right_columns if c not in left_columns]
            sql = self._translator()
            row, key = identifier(ROW), identifier(ROW + "_key")
            numbered = (f"SELECT n.*, ROW_NUMBER() OVER () AS {row} "
                        f"FROM {identifier(right)} AS n")
            keyed = f"{sql.value(right_on, right_type, 'n', right_columns)} AS {key}"
            # one row per key, the first of `right`'s: the database builds an index on it
            # for the join (SQLite does for a grouped subquery, PostgreSQL hashes), where
            # SQLite joined `right` itself by comparing every pair (87 s, 200,000 x 165)
            if self.fp.dialect == "sqlite3":  # bare columns come from the row of the MIN
                first = (f"SELECT MIN(n.{row}) AS {identifier(ROW + '_first')}, n.*, {keyed} "
                         f"FROM ({numbered}) AS n GROUP BY {key}")
            else:
                first = (f"SELECT DISTINCT ON ({key}) n.*, {keyed} FROM ({numbered}) AS n "
                         f"ORDER BY {key}, n.{row}")
            select = (f"SELECT {', '.join(shown)} FROM {identifier(left)} AS l INNER JOIN "
                      f"({first}) AS r ON "
                      f"{sql.value(left_on, entity_type, 'l', left_columns)} = r.{key}")
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

    def related(self, view: str, entity_type: str, input_view: str, links: list,
                window=None):
        """Entities of `entity_type` linked to `input_view` by any of `links`.

        A link is (ref_name, direction): direction "out" means the input entity holds
        the reference (input.ref -> result.id), "in" means the result holds it
        (result.ref -> input.id); `_refs` lists live in firepit's `__reflist` table,
        single `_ref`s are columns.  Direction "record" (no reference) means both are
        held by one record (firepit's `__contains`), one with `window[0] <=
        first_observed < window[1]` when a window is given.

        Each link is a semi-join (`IN`: the input's ids are read once) along an index
        (indexes.py), and the ids found are noted once in __queries under a query of
        their own: the view joins from them as a GET's does, so a summary or a later
        statement reads the result without joining again.
        """
        if entity_type not in self.fp.types():
            self.empty_view(view, entity_type)
            return
        selects = []
        for ref_name, direction in links:
            if direction == "record":
                selects.append(self._same_record_select(input_view, window))
            else:
                selects.extend(self._link_select(entity_type, input_view, ref_name, direction))
        if not selects:
            self.empty_view(view, entity_type)
            return
        query_id = f"find-{uuid.uuid4().hex}"
        noted = (f'INSERT INTO "__queries" (sco_id, query_id) SELECT found."id", '
                 f'{self._translator().literal(query_id)} FROM {identifier(entity_type)} AS '
                 f'found WHERE found."id" IN ({" UNION ".join(selects)})')
        with self.errors("cannot find related entities"):
            self._create_view(view, self._queried(entity_type, query_id), entity_type,
                              deps=[entity_type], first=noted)

    def _same_record_select(self, input_view, window):
        """Ids of the entities held by the records that hold `input_view`'s entities (in
        `window`): from the input's ids to their records and back along __contains'
        indexes, a record's time looked up by its id (never a scan per entity)."""
        if self.index_tables(["__contains"]):
            self.analyze(["__contains"])
        joined = timed = ""
        if window:
            literal = self._translator().literal
            joined = ' INNER JOIN "observed-data" AS o ON o."id" = c."source_ref"'
            timed = (f' AND o."first_observed" >= {literal(iso(window[0]))}'
                     f' AND o."first_observed" < {literal(iso(window[1]))}')
        records = (f'SELECT c."source_ref" FROM "__contains" AS c{joined} WHERE '
                   f'c."target_ref" IN (SELECT "id" FROM {identifier(input_view)}){timed}')
        return f'SELECT "target_ref" FROM "__contains" WHERE "source_ref" IN ({records})'

    def _link_select(self, entity_type, input_view, ref_name, direction):
        """The ids one link reaches from `input_view`'s entities ([] when the store holds
        no such reference), the input's ids read once (`IN`), never per row."""
        ids = f'SELECT "id" FROM {identifier(input_view)}'
        if ref_name.endswith("_refs"):
            if not self._has_table("__reflist"):
                return []
            if self.index_tables(["__reflist"]):
                self.analyze(["__reflist"])
            source, target = ("source_ref", "target_ref")
            if direction == "in":
                source, target = target, source
            return [f'SELECT r."{target}" FROM "__reflist" AS r WHERE r."ref_name" = '
                    f'{self._translator().literal(ref_name)} AND r."{source}" IN ({ids})']
        if direction == "out":
            if ref_name not in self.fp.columns(input_view):
                return []
            return [f"SELECT v.{identifier(ref_name)} FROM {identifier(input_view)} AS v"]
        if ref_name not in self.type_columns(entity_type):
            return []
        if self.index_columns(entity_type, [ref_name]):
            self.analyze([entity_type])
        return [f"SELECT t.\"id\" FROM {identifier(entity_type)} AS t "
                f"WHERE t.{identifier(ref_name)} IN ({ids})"]


def iso(moment) -> str:
    return format_timestamp(moment) if isinstance(moment, datetime) else moment

