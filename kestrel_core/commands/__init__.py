"""One handler per command: handler(resolved, ctx) -> Outcome.

The registry is explicit: AST class -> handler.  A handler receives what the check
stage (kestrel.semantics) resolved and only executes: it never checks names or
types, never changes the symbol table; the session commits its Outcome only when
it succeeds.

Handlers import pandas in the functions that use it, never at module level: it is
most of a session's start-up (tests/test_startup.py).
"""

from __future__ import annotations

from ..syntax import ast
from . import (apply, describe, disp, find, get, group, info, join, new, save, sigma, sort,
               transform)

HANDLERS = {
    ast.Get: get.run,
    ast.Find: find.run,
    ast.New: new.run_new,
    ast.Load: new.run_load,
    ast.Save: save.run,
    ast.Sort: sort.run,
    ast.Group: group.run,
    ast.Join: join.run_join,
    ast.Merge: join.run_merge,
    ast.Apply: apply.run,
    ast.Disp: disp.run,
    ast.Assign: transform.run_assign,
    ast.Info: info.run_info,
    ast.Explain: info.run_explain,
    ast.Describe: describe.run,
}


def run(resolved, ctx):
    """The statement's handler, then what its SIGMA clauses add (labels, the rules that
    fired)."""
    outcome = HANDLERS[type(resolved.stmt)](resolved, ctx)
    return sigma.label(resolved, ctx, outcome) if resolved.sigma else outcome
