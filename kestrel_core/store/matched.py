"""Regular expressions tested once per distinct value, not once per row.

A folder of Sigma rules is a thousand MATCHES and more on a few columns (command lines,
binary names).  In SQL each is a call per row per expression: on SQLite a call into
Python, on PostgreSQL a regex run.  Here each distinct value of a column is read once
against all the expressions on it (kestrel/regex.py's PatternSet: RE2, as everywhere
Kestrel matches itself), the values each expression matches are written to
`__kestrel_matched`, and the condition reads them through an index.  The table holds the facts of one statement that runs at once (a view must not
read it later: it is refilled); what each expression matched is kept until the store's
data changes, so a statement that asks twice (a GET, then its labels) tests once.
"""

from __future__ import annotations

import dataclasses

from .. import regex
from ..syntax import ast
from ..syntax.ecgp import ALWAYS, NEVER, as_node, simplify
from .where import MATCHED as TABLE
from .where import identifier


def fill(store, needed: dict) -> set:
    """Write the values each expression matches: `needed` maps (table, column,
    pattern) to the number the SQL reads them under; the numbers some value matches."""
    cursor = store.fp.connection.cursor()
    mark = store.fp.placeholder
    cursor.execute(f'CREATE TABLE IF NOT EXISTS "{TABLE}" ("pattern" INTEGER, "value" TEXT)')
    cursor.execute(f'DELETE FROM "{TABLE}"')
    memo = store.matched_memo()
    unknown = {}  # (table, column) -> the patterns not matched against it yet
    for table, column, pattern in needed:
        if (table, column, pattern) not in memo:
            unknown.setdefault((table, column), []).append(pattern)
    for (table, column), patterns in unknown.items():
        values = memo.get((table, column))
        if values is None:
            cursor.execute(f"SELECT DISTINCT CAST({identifier(column)} AS TEXT) AS v "
                           f"FROM {identifier(table)} WHERE {identifier(column)} IS NOT NULL")
            values = memo[(table, column)] = [row["v"] for row in cursor.fetchall()]
        memo.update(_matching(values, patterns, table, column))
    found, rows = set(), []
    for key, number in needed.items():
        if memo[key]:
            found.add(number)
            rows.extend((number, value) for value in memo[key])
    for at in range(0, len(rows), 1000):  # a statement per thousand: PostgreSQL's
        chunk = rows[at:at + 1000]         # executemany is a round trip per row
        cursor.execute(f'INSERT INTO "{TABLE}" VALUES '
                       + ", ".join([f"({mark}, {mark})"] * len(chunk)),
                       [item for row in chunk for item in row])
    cursor.execute(f'CREATE INDEX IF NOT EXISTS "{TABLE}_pv" ON "{TABLE}" ("pattern", "value")')
    return found


def _matching(values: list, patterns: list, table: str, column: str) -> dict:
    """(table, column, pattern) -> the values it matches, each value read once."""
    matched = {pattern: [] for pattern in patterns}
    expressions = regex.PatternSet(patterns)
    for value in values:
        for index in expressions.matching(value):
            matched[patterns[index]].append(value)
    return {(table, column, pattern): found for pattern, found in matched.items()}


def prune(node, sql):
    """`node` with each MATCHES that no stored value passes, and each comparison on a path
    the stored data lacks, taken as false (rendered by `sql` and filled): of a folder of
    rules, most name a program or command line the data never holds, or a field it does
    not have, and need not be asked row by row.  Folded by ecgp.simplify."""
    if node is ALWAYS or node is NEVER:
        return node
    return simplify(_marked(node, sql))


def _marked(node, sql):
    """`node` with the comparisons whose answer the stored data settles (a MATCHES no
    stored value passes, a path the stored data lacks) replaced by what they come to."""
    if isinstance(node, ast.BoolExpr):
        return dataclasses.replace(node, operands=tuple(_marked(o, sql) for o in node.operands))
    if id(node) in sql.true:
        return as_node(ALWAYS)
    if id(node) in sql.false:
        return as_node(NEVER)
    numbers = sql.leaves.get(id(node))
    if node.op == "MATCHES" and numbers is not None and not numbers & sql.found:
        # nothing matches: never true; negated, true wherever there is a value
        return dataclasses.replace(node, op="IS", value=None) if node.negated else as_node(NEVER)
    return node
