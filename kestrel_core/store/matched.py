"""Regular expressions tested once per distinct value, not once per row.

A folder of Sigma rules is a thousand MATCHES and more on a few columns (command lines,
binary names).  In SQL each is a call per row per expression: on SQLite a call into
Python, on PostgreSQL a regex run.  Here each expression is tested once against each
distinct value of its column (kestrel/regex.py, as everywhere Kestrel matches itself), the
values it matches written to `__kestrel_matched`, and the condition reads them through an
index.  The table holds the facts of one statement that runs at once (a view must not
read it later: it is refilled); what each expression matched is kept until the store's
data changes, so a statement that asks twice (a GET, then its labels) tests once.
"""

from __future__ import annotations

import bisect
import dataclasses
import re

from .. import regex
from ..syntax import ast
from ..syntax.ecgp import ALWAYS, NEVER, as_node, simplify
from .where import MATCHED as TABLE
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
        if not longest or (folded and not _folds_apart(longest)):
            return None
        runs.append(longest)
    return [(run.lower() if folded else run, folded) for run in runs]


def _folds_apart(text: str) -> bool:
    """Whether no character of `text` outside ASCII matches an ASCII one when case is
    ignored (the Kelvin sign matches k): then ASCII text holds `text` only as itself."""
    return all(c.isascii() or not any(f.isascii() for f in (c.lower(), c.upper(),
                                                               c.casefold()))
               for c in text)


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
        return [self.values[i] for i in candidates if expression.search(self.values[i])]


def fill(store, needed: dict) -> set:
    """Write the values each expression matches: `needed` maps (table, column,
    pattern) to the number the SQL reads them under; the numbers some value matches."""
    cursor = store.fp.connection.cursor()
    mark = store.fp.placeholder
    cursor.execute(f'CREATE TABLE IF NOT EXISTS "{TABLE}" ("pattern" INTEGER, "value" TEXT)')
    cursor.execute(f'DELETE FROM "{TABLE}"')
    memo = store.matched_memo()
    found, rows = set(), []
    for (table, column, pattern), number in needed.items():
        matched = memo.get((table, column, pattern))
        if matched is None:
            values = memo.get((table, column))
            if values is None:
                cursor.execute(f"SELECT DISTINCT CAST({identifier(column)} AS TEXT) AS v "
                               f"FROM {identifier(table)} WHERE {identifier(column)} IS NOT "
                               "NULL")
                values = memo[(table, column)] = Values([r["v"] for r in cursor.fetchall()])
            matched = memo[(table, column, pattern)] = values.matching(pattern)
        if matched:
            found.add(number)
            rows.extend((number, value) for value in matched)
    for at in range(0, len(rows), 1000):  # a statement per thousand: PostgreSQL's
        chunk = rows[at:at + 1000]         # executemany is a round trip per row
        cursor.execute(f'INSERT INTO "{TABLE}" VALUES '
                       + ", ".join([f"({mark}, {mark})"] * len(chunk)),
                       [item for row in chunk for item in row])
    cursor.execute(f'CREATE INDEX IF NOT EXISTS "{TABLE}_pv" ON "{TABLE}" ("pattern", "value")')
    return found


def prune(node, sql):
    """`node` with each MATCHES that no stored value passes taken as false (rendered by
    `sql` and filled): of a folder of rules, most name a program or command line the
    data never holds, and need not be asked row by row.  Folded by ecgp.simplify."""
    if node is ALWAYS or node is NEVER:
        return node
    return simplify(_marked(node, sql))


def _marked(node, sql):
    """`node` with its impossible MATCHES replaced by a comparison that is never true."""
    if isinstance(node, ast.BoolExpr):
        return dataclasses.replace(node, operands=tuple(_marked(o, sql) for o in node.operands))
    numbers = sql.leaves.get(id(node))
    impossible = (node.op == "MATCHES" and not node.negated and numbers is not None
                  and not numbers & sql.found)
    return as_node(NEVER) if impossible else node
