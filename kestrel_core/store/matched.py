"""Regular expressions tested once per distinct value, not once per row.

A folder of Sigma rules is a thousand MATCHES and more on a few columns (command lines,
binary names).  In SQL each is a call per row per expression: on SQLite a call into
Python, on PostgreSQL a regex run.  Here each expression is tested once against each
distinct value of its column, the values it matches written to `__kestrel_matched`, and
the condition reads them through an index.  The table holds the facts of one statement
that runs at once (a view must not read it later: it is refilled), and the expressions
are Python's, as everywhere else in the store and in the record matcher.
"""

from __future__ import annotations

import bisect
import re

import dataclasses

from ..syntax import ast
from ..syntax.ecgp import ALWAYS, NEVER
from .where import MATCHED as TABLE
from .. import regex
from .where import identifier

# our own anchored or searching expressions: `(?is)` or `(?s)`, then literal text with
# escapes, `.`, `.*`, \A, \Z, and one level of (?:...|...) alternatives
_FLAGS = re.compile(r"\(\?([a-z]+)\)")
_PIECE = re.compile(r"\\A|\\Z|\.\*|\.|\\[^A-Za-z0-9]|[^\\.()|*+?\[\]{}^$]")


def literals(pattern: str):
    """Text each match must contain, per alternative: [(alternative's longest literal
    run, case-insensitive?)], or None when the expression is not of the simple kind
    (then every value is tested)."""
    flags = _FLAGS.match(pattern)
    body = pattern[flags.end():] if flags else pattern
    folded = bool(flags and "i" in flags.group(1))
    if body.startswith("(?:") and body.endswith(")"):
        alternatives = body[3:-1].split("|")
    else:
        alternatives = [body]
    runs = []
    for alternative in alternatives:
        pieces = _PIECE.findall(alternative)
        if "".join(pieces) != alternative:
            return None
        longest, current = "", ""
        for piece in pieces:
            if piece in ("\\A", "\\Z", ".*", "."):
                current = ""
            else:
                current += piece[-1]
                longest = max(longest, current, key=len)
        if len(longest) < 3 or not longest.isascii():
            return None
        runs.append(longest)
    return [(run.lower() if folded else run, folded) for run in runs]


class Values:
    """The distinct values of one column, with a joined text to search literals in:
    ASCII values only (their case folds as str.lower does; others are always tested)."""

    def __init__(self, values: list):
        self.values = values
        self.ascii = [i for i, v in enumerate(values) if v.isascii() and "\n" not in v]
        plain = set(self.ascii)
        self.others = [i for i in range(len(values)) if i not in plain]
        texts = [values[i] for i in self.ascii]
        self.text = "\n".join(texts)
        self.lowered = self.text.lower()
        self.starts, at = [], 0
        for text in texts:
            self.starts.append(at)
            at += len(text) + 1

    def candidates(self, pattern: str) -> list:
        """Indexes of the values that may match: those holding a required literal."""
        runs = literals(pattern)
        if runs is None:
            return range(len(self.values))
        found = set(self.others)
        for run, folded in runs:
            text = self.lowered if folded else self.text
            at = text.find(run)
            while at >= 0:
                index = bisect.bisect_right(self.starts, at) - 1
                found.add(self.ascii[index])
                at = text.find(run, self.starts[index + 1] if index + 1 < len(self.starts)
                               else len(text))
        return sorted(found)

    def matching(self, pattern: str) -> list:
        candidates = self.candidates(pattern)
        if not candidates:
            return []  # not even compiled: most expressions of a folder of rules
        expression = regex.compiled(pattern)
        return [self.values[i] for i in candidates
                if expression.search(self.values[i]) is not None]


def fill(store, needed: dict) -> set:
    """Write the values each expression matches: `needed` maps (table, column,
    pattern) to the number the SQL reads them under; the numbers some value matches."""
    cursor = store.fp.connection.cursor()
    mark = store.fp.placeholder
    cursor.execute(f'CREATE TABLE IF NOT EXISTS "{TABLE}" ("pattern" INTEGER, "value" TEXT)')
    cursor.execute(f'DELETE FROM "{TABLE}"')
    columns, found = {}, set()
    for (table, column, pattern), number in needed.items():
        values = columns.get((table, column))
        if values is None:
            cursor.execute(f"SELECT DISTINCT CAST({identifier(column)} AS TEXT) AS v FROM "
                           f"{identifier(table)} WHERE {identifier(column)} IS NOT NULL")
            values = columns[(table, column)] = Values([row["v"] for row in cursor.fetchall()])
        rows = [(number, value) for value in values.matching(pattern)]
        if rows:
            found.add(number)
            cursor.executemany(f'INSERT INTO "{TABLE}" VALUES ({mark}, {mark})', rows)
    cursor.execute(f'CREATE INDEX IF NOT EXISTS "{TABLE}_pv" ON "{TABLE}" ("pattern", "value")')
    return found


def prune(node, sql):
    """`node` with each MATCHES that no stored value passes taken as false (rendered by
    `sql` and filled): of a folder of rules, most name a program or command line the
    data never holds, and need not be asked row by row."""
    if node is ALWAYS or node is NEVER:
        return node
    if isinstance(node, ast.Comparison):
        numbers = sql.leaves.get(id(node))
        impossible = (node.op == "MATCHES" and not node.negated and numbers is not None
                      and not numbers & sql.found)
        return NEVER if impossible else node
    absorbing, neutral = (NEVER, ALWAYS) if node.op == "AND" else (ALWAYS, NEVER)
    operands = []
    for operand in node.operands:
        kept = prune(operand, sql)
        if kept is absorbing:
            return absorbing
        if kept is not neutral:
            operands.append(kept)
    if not operands:
        return neutral
    if len(operands) == 1 and not isinstance(node, ast.RuleCondition):
        return operands[0]
    return dataclasses.replace(node, operands=tuple(operands))
