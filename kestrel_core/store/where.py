"""ECGP -> SQL WHERE over firepit's tables, for the store's views.

firepit's own translation reads STIX pattern text with a lexer that cannot take a
string ending in a backslash, an empty string, or NUL, so the store translates the
ECGP itself.  Views cannot hold bound parameters, so values become SQL literals quoted
by the standard rule (quotes doubled, nothing else special; on PostgreSQL an escape
string E'...' with backslashes doubled, which no server setting reads otherwise).  The
meaning is firepit's and STIX's: a comparison on an attribute an entity lacks is false
(negated or not), references are followed through the referenced tables, lists of
references through firepit's __reflist, and comparisons about other entity types
(extended subgraphs) are left to the data source, which matched whole records.
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Callable

from .. import regex
from ..errors import KestrelSemanticError
from ..syntax import ast
from ..syntax.ast import path_steps
from ..syntax.ecgp import like_regex
from .references import ref_targets

FALSE = "1 = 0"
NULL = "CAST(NULL AS TEXT)"  # typed: PostgreSQL refuses a bare NULL in GROUP/ORDER BY


def identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SqlWhere:
    """Translates for one dialect ("sqlite3" or "postgresql"); `columns_of(table)`
    gives a table's columns, empty when the table does not exist."""

    def __init__(self, dialect: str, columns_of: Callable[[str], list],
                 stored_column: Callable[[str, str], str | None] = lambda t, p: None,
                 prematch=False):
        self.dialect = dialect
        self.columns_of = columns_of
        self.stored_column = stored_column
        # (table, column, regex) -> number: MATCHES read from the values matched before
        # the statement runs (store/matched.py), when `prematch`
        self.matched = {} if prematch else None
        # SQLite, SQL run at once: reference subqueries as temporary tables, one per
        # distinct subquery (store/base.py's _materialize makes them), see _path
        self.hoisted = {} if prematch and dialect == "sqlite3" else None
        self.made: set = set()  # the temporary tables made so far
        self.leaves: dict = {}   # id(comparison) -> the numbers its MATCHES read
        self.found: set = set()  # numbers that some stored value matches
        # id(comparison) of those no stored entity can pass (a path the stored data
        # lacks), and of the IS NULL every entity passes (the same)
        self.false: set = set()
        self.true: set = set()

    def where(self, node, entity_type: str, table: str, columns: list) -> str | None:
        """The condition on rows of `table` (`entity_type` entities with `columns`); None
        when nothing in `node` is about `entity_type`."""
        if isinstance(node, ast.Comparison):
            if node.path.entity_type not in (None, entity_type):
                return None
            test = self._path(entity_type, table, columns, path_steps(node.path.attribute),
                              node)
            if test == FALSE:
                (self.true if node.op == "IS" and not node.negated else self.false).add(id(node))
            if node.op == "IS" and not node.negated:  # IS NULL: no value there, however
                return f"NOT COALESCE({test}, FALSE)"   # the path is reached
            return test
        parts = [p for p in (self.where(o, entity_type, table, columns)
                             for o in node.operands) if p]
        if not parts:
            return None
        while len(parts) > 32:  # SQLite refuses expressions deeper than 1,000: a long
            parts = [f"({' {} '.format(node.op).join(parts[i:i + 32])})"  # chain nests
                     for i in range(0, len(parts), 32)]                 # 32 at a time
        return "(" + f" {node.op} ".join(parts) + ")"

    # ------------------------------------------------------------ attribute paths

    def _path(self, entity_type, table, columns, steps, node, depth=0) -> str:
        head = steps[0].removesuffix("[*]")
        whole = ".".join(steps).removesuffix("[*]")
        if len(steps) > 1 and head.endswith(("_ref", "_refs")) and whole not in columns:
            alias = f"r{depth}"
            tests = [(t, self._path(t, alias, self.columns_of(t), steps[1:], node, depth + 1))
                     for t in ref_targets(entity_type, head) if self.columns_of(t)]
            inner = " UNION ".join(
                f"SELECT {alias}.{identifier('id')} FROM {identifier(t)} AS {alias} WHERE {test}"
                for t, test in tests if test != FALSE)
            if not inner or (head.endswith("_ref") and head not in columns):
                return FALSE
            if self.hoisted is not None:
                inner = f'SELECT "id" FROM {self._hoisted(inner)}'
            if head.endswith("_ref"):
                return f"{table}.{identifier(head)} IN ({inner})"
            if not self.columns_of("__reflist"):
                return FALSE
            return (f'{table}."id" IN (SELECT "source_ref" FROM "__reflist" WHERE '
                    f'"ref_name" = {self.literal(head)} AND "target_ref" IN ({inner}))')
        column = ".".join(steps)
        listed = column.endswith("[*]")
        column = self._column(entity_type, column.removesuffix("[*]"), columns)
        if column not in columns:
            if column == "type":
                return self._test(self.literal(entity_type), node)
            return FALSE  # STIX: a comparison on a missing property is false
        expression = f"{table}.{identifier(column)}"
        if not listed:
            return self._test(expression, node, (entity_type, column))
        # a list stored as JSON text (a single value counts as a list of one): true when
        # some element passes
        if self.dialect == "postgresql":
            elements = f"jsonb_array_elements({JSON_LIST_FUNCTION}({expression})) AS e(item)"
            element = _typed_element("e.item", node.value)
        else:
            elements = (f"json_each(CASE WHEN json_valid({expression}) AND json_type("
                        f"{expression}) = 'array' THEN {expression} ELSE json_array("
                        f"{expression}) END) AS e")
            element = "e.value"
        return f"EXISTS (SELECT 1 FROM {elements} WHERE {self._test(element, node)})"

    def value(self, attribute: str, entity_type: str, table: str, columns: list,
              depth=0) -> str:
        """The value of `attribute` (a column or a path through `_ref`s) for a row of
        `table` (`entity_type` entities with `columns`): a scalar SQL expression, NULL
        where an entity lacks it."""
        steps = path_steps(attribute)
        head = steps[0]
        column = self._column(entity_type, attribute, columns)
        if column in columns:
            return f"{table}.{identifier(column)}"
        if "[*]" in attribute or (len(steps) > 1 and head.endswith("_refs")):
            raise KestrelSemanticError(f"{attribute} goes through a list: it has no single "
                                       "value to group, join or sort by")
        if attribute == "type":
            return f"CAST({self.literal(entity_type)} AS TEXT)"  # typed, as NULL
        if len(steps) == 1 or not head.endswith("_ref") or head not in columns:
            return NULL
        alias = f"v{depth}"
        rest = ".".join(steps[1:])
        values = [f"(SELECT {self.value(rest, t, alias, self.columns_of(t), depth + 1)} "
                  f"FROM {identifier(t)} AS {alias} "
                  f"WHERE {alias}.\"id\" = {table}.{identifier(head)})"
                  for t in ref_targets(entity_type, head) if self.columns_of(t)]
        if not values:
            return NULL
        return values[0] if len(values) == 1 else f"COALESCE({', '.join(values)})"

    def redraft(self):
        """Forget the subqueries a draft wrote (the one that learnt which expressions to
        match): only the final SQL's are made."""
        if self.hoisted is not None:
            self.hoisted = {}

    def _hoisted(self, subquery: str) -> str:
        """The temporary table that will hold the ids `subquery` selects.  SQLite builds
        an index of a subquery's rows for each IN that names it (a folder of Sigma rules
        names the same few, such as the processes whose binary has a name, a hundred
        times: 2.5 s at 20,000 processes), but reads an IN over a table's indexed
        column through that index."""
        name = self.hoisted.get(subquery)
        if name is None:
            name = self.hoisted[subquery] = identifier(f"__kestrel_ref{len(self.hoisted)}")
        return name

    def _column(self, entity_type, path, columns) -> str:
        """The column of a property path: itself, or the name the store gave it."""
        if path in columns:
            return path
        return self.stored_column(entity_type, path) or path

    # ------------------------------------------------------------ operators and values

    def _test(self, expression: str, node, source=None) -> str:
        """`node`'s test of the SQL `expression`; `source` (table, column) is where it
        is stored, when it is a column."""
        op, value = node.op, node.value
        if op == "IS":  # a value is there (where() negates the whole path for IS NULL)
            return f"{expression} IS NOT NULL"
        if op == "IN":
            values = value if isinstance(value, tuple) else (value,)
            test = f"{expression} IN ({', '.join(self.literal(v) for v in values)})"
        elif op == "MATCHES" and self.matched is not None and source and not \
                node.path.attribute.endswith("payload_bin"):
            number = self.matched.setdefault((*source, value), len(self.matched))
            self.leaves.setdefault(id(node), set()).add(number)
            test = (f'CAST({expression} AS TEXT) IN (SELECT "value" FROM "{MATCHED}" '
                    f'WHERE "pattern" = {number})')
            if node.negated:  # no value, no match either way (NULL IN an empty set is
                test = f"CASE WHEN {expression} IS NULL THEN NULL ELSE {test} END"  # false)
        elif op in ("LIKE", "MATCHES"):  # the check stage checked the expression
            test = self._text_match(expression, op, value,
                                    node.path.attribute.endswith("payload_bin"))
        elif op in ("ISSUBSET", "ISSUPERSET"):  # and the network
            text, network = f"CAST({expression} AS TEXT)", self.literal(value)
            test = (f"{SUBNET_FUNCTION}({text}, {network})" if op == "ISSUBSET"
                    else f"{SUBNET_FUNCTION}({network}, {text})")
        else:
            test = f"{expression} {op} {self.literal(value)}"
        return f"NOT ({test})" if node.negated else test

    def _text_match(self, expression, op, regex, binary) -> str:
        pattern = self.literal(regex)
        text = f"CAST({expression} AS TEXT)"
        if binary:  # base64 in the store: firepit's functions decode it
            return f"{'like_bin' if op == 'LIKE' else 'match_bin'}({pattern}, {text})"
        if op == "LIKE":
            if self.dialect == "postgresql":
                # STIX's LIKE knows only % and _; PostgreSQL's also takes \ as an escape
                return f"{text} LIKE {pattern} ESCAPE ''"
            # SQLite's LIKE stops reading at a NUL: such values go to like() in Python
            if pattern.startswith("CAST(X'"):
                return f"{LIKE_FUNCTION}({pattern}, {text})"
            return (f"CASE WHEN instr({text}, char(0)) > 0 THEN {LIKE_FUNCTION}({pattern}, "
                    f"{text}) ELSE {text} LIKE {pattern} END")
        if self.dialect == "postgresql":
            return f"{text} ~ {self.literal(postgresql_regex(regex))}"
        return f"match({pattern}, {text})"

    def literal(self, value) -> str:
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise KestrelSemanticError(f"{value} cannot be compared")
            return repr(value)
        if isinstance(value, str):
            if "\x00" in value:
                if self.dialect != "postgresql":
                    # Python's sqlite3 refuses SQL text holding NUL: spell the bytes
                    return f"CAST(X'{value.encode('utf-8', 'surrogatepass').hex()}' AS TEXT)"
                value = value.replace("\x00", NUL_ON_POSTGRESQL)
            if self.dialect == "postgresql":
                # an escape string reads the same whatever standard_conforming_strings says
                return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
            return "'" + value.replace("'", "''") + "'"
        if value is None:
            raise KestrelSemanticError("null cannot be compared")
        raise KestrelSemanticError(f"a value of type {type(value).__name__} cannot be compared")


LIKE_FUNCTION = "kestrel_like"
MATCHED = "__kestrel_matched"  # see store/matched.py
SUBNET_FUNCTION = "kestrel_in_subnet"
JSON_LIST_FUNCTION = "kestrel_json_list"

# PostgreSQL's side of the same functions, in the session's schema: a value that is no
# address is in no network, and a value that is no JSON list is a list of itself
POSTGRESQL_FUNCTIONS = {
    SUBNET_FUNCTION: """CREATE OR REPLACE FUNCTION kestrel_in_subnet(address TEXT, network TEXT)
RETURNS boolean AS $$
BEGIN
    RETURN CAST(address AS inet) <<= CAST(network AS inet);
EXCEPTION WHEN others THEN
    RETURN false;
END; $$ LANGUAGE plpgsql IMMUTABLE""",
    JSON_LIST_FUNCTION: """CREATE OR REPLACE FUNCTION kestrel_json_list(value anyelement)
RETURNS jsonb AS $$
DECLARE
    parsed jsonb;
BEGIN
    IF value IS NULL THEN
        RETURN '[]'::jsonb;
    END IF;
    BEGIN
        parsed := CAST(CAST(value AS TEXT) AS jsonb);
    EXCEPTION WHEN others THEN
        RETURN jsonb_build_array(value);
    END;
    IF jsonb_typeof(parsed) = 'array' THEN
        RETURN parsed;
    END IF;
    RETURN jsonb_build_array(value);
END; $$ LANGUAGE plpgsql IMMUTABLE""",
}


def like(pattern, value) -> bool:
    """STIX/SQL LIKE (case-sensitive, % and _ only), for SQLite values holding NUL."""
    if pattern is None or value is None:
        return None
    return regex.compiled(like_regex(pattern)).fullmatch(value)


def match(pattern, value) -> bool:
    """MATCHES for SQLite: a search, `.` matching newlines, on RE2 (kestrel/regex.py)."""
    if pattern is None or value is None:
        return False
    return regex.search(pattern, value)


def in_subnet(address, network) -> bool:
    """ISSUBSET for SQLite: IPv4 and IPv6; a value that is no address is in no network."""
    if address is None or network is None:
        return None
    try:
        return (ipaddress.ip_network(address, strict=False).subnet_of(
            ipaddress.ip_network(network, strict=False)))
    except (TypeError, ValueError):  # not an address, or the other IP version
        return False


# PostgreSQL text cannot hold NUL: the store keeps U+FFFD in its place (data and values).
NUL_ON_POSTGRESQL = "\ufffd"


# Python's regular expressions (what the bundle matcher and SQLite use) -> PostgreSQL's:
# word boundaries are \y and \Y there (\b is a backspace), groups have no names
_PYTHON_ONLY = re.compile(r"\\[bB]|\(\?P<[A-Za-z_][A-Za-z0-9_]*>|\(\?P=[A-Za-z_][A-Za-z0-9_]*\)|\\.")


def postgresql_regex(regex: str) -> str:
    def replace(match):
        text = match.group()
        if text in ("\\b", "\\B"):
            return "\\y" if text == "\\b" else "\\Y"
        if text.startswith("(?P<"):
            return "("
        if text.startswith("(?P="):
            raise KestrelSemanticError(f"MATCHES on PostgreSQL cannot refer back to a named "
                                       f"group ({text})")
        return text  # any other escape stays as it is
    return _PYTHON_ONLY.sub(replace, regex)


def _typed_element(element: str, value) -> str:
    """A jsonb list element as SQL of the compared value's kind (PostgreSQL compares
    text, numbers and booleans only with their own kind)."""
    values = value if isinstance(value, tuple) else (value,)
    if all(isinstance(v, bool) for v in values):
        kind, cast = "boolean", "boolean"
    elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        kind, cast = "number", "numeric"
    else:
        return f"({element} #>> '{{}}')"
    return f"(CASE WHEN jsonb_typeof({element}) = '{kind}' THEN CAST({element} #>> '{{}}' AS {cast}) END)"
