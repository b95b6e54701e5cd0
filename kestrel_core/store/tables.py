"""Flattened rows into firepit's tables, a batch at a time.

firepit's SplitWriter keeps each type's columns (a new property adds a column and a
__columns row), merges the rows of one entity within a batch (a later value wins
unless it is missing) and upserts per type.  TableWriter does the same with the rows
of a whole batch at once.  It never commits, and changes the schema in the
caller's transaction too (firepit's own table and column changes commit): an ingest
is one transaction, which an interrupt or an error undoes whole.
"""

from __future__ import annotations

import contextvars
import hashlib
import re
from concurrent.futures import ThreadPoolExecutor

from firepit.exceptions import InvalidStixPath
from firepit.splitter import shorten_extension_name
from firepit.validate import validate_path

from .validation import check_width
from .where import identifier

# firepit's own names for what it never stores as a column
_NOT_COLUMNS = frozenset(["type", "spec_version"])
# firepit's cut for a column name (PostgreSQL keeps 63 bytes), and ours
_LONGEST_NAME, _CUT_NAME = 48, 40
# names an entity's column must not take: the columns of firepit's tables its views join
# (an entity's query_id made them ambiguous), PostgreSQL's system columns
_RESERVED = frozenset(["query_id", "sco_id", "source_ref", "target_ref", "ref_name",
                       "x_firepit_rank", "ctid", "xmin", "xmax", "cmin", "cmax", "tableoid",
                       "oid"])
_NESTED = (list, dict)


class TableWriter:
    """Rows (type, flat dict) -> firepit's tables, with firepit's schema rules."""

    def __init__(self, store, encode, write, as_text, background: bool = False):
        """`encode(table, rows, schema)` prepares one table's merged rows (their lists and
        objects already made text by `as_text`) for `write(cursor, table, schema, encoded)`;
        `background` writes in a thread, for a server that works while this process
        builds the next batch (encoding stays here: it needs the interpreter)."""
        self.fp = store.fp
        self.encode, self.write, self.as_text = encode, write, as_text
        self._pool = ThreadPoolExecutor(1, "kestrel-write") if background else None
        self._writing = None
        self.infer_type = self.fp._get_writer().infer_type
        self.schemas: dict = {}
        for column in self.fp.schema():
            self.schemas.setdefault(column["table"], {})[column["name"]] = column["type"]
        self.pending: dict = {}  # table -> {id: row} (or [rows] for tables without ids)
        self.short: dict = {}  # (table, property path) -> its column name
        self.held: dict = {}   # table -> {column name as the store compares it: its path}
        for table, schema in self.schemas.items():
            self.held[table] = {self._fold(column): column for column in schema}
        if "__columns" in self.schemas:
            for row in self.fp._query('SELECT otype, path, shortname FROM "__columns"'):
                self.short[row["otype"], row["path"]] = row["shortname"]
                self.held.setdefault(row["otype"], {})[self._fold(row["shortname"])] = \
                    row["path"]
        self.plans: dict = {}  # (table, its rows' property names) -> _plan
        self.tables_written: set = set()

    def add(self, table: str, flat: dict):
        plan = self.plans.get((table, tuple(flat)))
        if plan is None or plan[0] != len(self.schemas[table]):
            plan = self._plan(table, flat)
        row = list(map(flat.get, plan[1]))
        kinds = set(map(type, row))
        if list in kinds or dict in kinds:
            row = [self.as_text(v) if type(v) in _NESTED else v for v in row]
        pending = self.pending.get(table)
        if pending is None:
            pending = self.pending[table] = {} if plan[2] is not None else []
        if type(pending) is list:
            pending.append(row)
            return
        rid = row[plan[2]]
        earlier = pending.get(rid)
        if earlier is None:
            pending[rid] = row
        else:  # the same entity again in this batch: a later value wins unless missing
            for at, value in enumerate(row):
                if value is not None:
                    earlier[at] = value

    def _plan(self, table: str, flat: dict) -> tuple:
        """How rows shaped like `flat` (the same properties in the same order) fill the
        table: (its width then, the property each column takes, the id's column), after
        adding the table or the columns they bring."""
        schema = self.schemas.get(table)
        if schema is None:
            schema = self._new_table(table, flat)
        sources = {}
        for key, value in flat.items():
            short = self.short.get((table, key)) or self._column_name(table, key)
            if short not in schema and key not in _NOT_COLUMNS:
                self._new_column(table, schema, key, short, value)
            sources[short] = key
        keys = [sources.get(column) for column in schema]
        plan = (len(schema), keys, list(schema).index("id") if "id" in schema else None)
        self.plans[table, tuple(flat)] = plan
        return plan

    def flush(self):
        """Write the batch's rows (the caller commits).  In the background, the batch is
        written while the caller builds the next one; its error is raised by the next
        flush, or by `wait`."""
        batch, self.pending = self.pending, {}
        if not batch:
            return
        batch = [(table, schema, self.encode(table, rows, schema)) for table, rows, schema in (
            (table, list(rows.values()) if type(rows) is dict else rows,
             dict(self.schemas[table])) for table, rows in batch.items()) if rows]
        if self._pool is None:
            self._write(batch)
            return
        self.wait()
        self._writing = self._pool.submit(contextvars.copy_context().run, self._write, batch)

    def wait(self):
        """Wait for the batch being written (its error is raised here)."""
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()

    def close(self, failed: bool):
        """End the background writer; after a failure, stop its statement (the caller
        rolls back) and keep quiet about its own error."""
        if self._pool is None:
            return
        if failed and self._writing is not None:
            self.fp.connection.cancel()
        try:
            self.wait()
        except Exception:
            if not failed:
                raise
        finally:
            self._pool.shutdown()

    def _write(self, batch):
        cursor = self.fp.connection.cursor()
        try:
            for table, schema, encoded in batch:
                self.write(cursor, table, schema, encoded)
                self.tables_written.add(table)
        finally:
            cursor.close()

    def _column_name(self, table: str, key: str) -> str:
        """The column of property path `key` in `table`, one per property: firepit's
        name for it (an extension's property as x_<name>), unless another property of
        the table holds that name (the same name from an extension and as a custom
        property; names that differ only in case on SQLite, whose names ignore case), it
        is a name firepit's views need (_RESERVED) or cannot read ('x-y' from a property
        x-y: its letters, digits and _ are kept), or, on PostgreSQL, it is longer than
        firepit's 48 bytes (the server cuts names at 63; firepit made it 32 hex digits):
        then its first 40 bytes and a digest of the path."""
        held = self.held.setdefault(table, {})
        name = shorten_extension_name(key)
        too_long = self.fp.dialect == "postgresql" and len(name.encode()) > _LONGEST_NAME
        odd = not table.startswith("__") and (name.lower() in _RESERVED or not _a_path(name))
        if too_long or odd or held.get(self._fold(name), key) != key:
            if odd:
                name = re.sub(r"\W", "_", name)
            cut = name.encode()[:_CUT_NAME].decode(errors="ignore")
            name = f"{cut}_{hashlib.sha1(key.encode()).hexdigest()[:8]}"
        held[self._fold(name)] = key
        self.short[table, key] = name
        return name

    def _fold(self, name: str) -> str:
        return name.lower() if self.fp.dialect == "sqlite3" else name


    def _new_table(self, table: str, flat: dict) -> dict:
        schema = self.schemas[table] = {}
        for key, value in flat.items():
            if key not in _NOT_COLUMNS:
                short = self.short.get((table, key)) or self._column_name(table, key)
                if short not in schema:
                    check_width(table, len(schema) + 1, key)
                    schema[short] = self.infer_type(key, value)
                    self._note_column(table, key, short, value)
        columns = ", ".join(f"{identifier(c)} {kind}" for c, kind in schema.items())
        unlogged = "UNLOGGED " if self.fp.dialect == "postgresql" else ""  # as firepit's
        self.wait()  # the connection serves one thread at a time
        cursor = self.fp.connection.cursor()
        cursor.execute(f"CREATE {unlogged}TABLE {identifier(table)} ({columns})")
        self.fp._create_index(table, cursor)  # firepit's indexes (reference tables)
        cursor.close()
        return schema

    def _new_column(self, table, schema, key, short, value):
        check_width(table, len(schema) + 1, key)
        schema[short] = self.infer_type(key, value)
        self.wait()
        self.fp.connection.cursor().execute(
            f"ALTER TABLE {identifier(table)} ADD COLUMN {identifier(short)} {schema[short]}")
        pending = self.pending.get(table)
        for row in (pending.values() if type(pending) is dict else pending or ()):
            row.append(None)
        self._note_column(table, key, short, value)

    def _note_column(self, table, key, short, value):
        """firepit's __columns row: which STIX path a column holds, and its Python type."""
        self.add("__columns", {"otype": table, "path": key, "shortname": short,
                               "dtype": value.__class__.__name__})


def _a_path(name: str) -> bool:
    """Whether firepit reads `name` as a column (its STIX path syntax)."""
    try:
        validate_path(name)
    except InvalidStixPath:
        return False
    return True
