"""Property-based fuzzing of execution (issue 9, part c).

Generated statements run in a real Session over doctored-1k.json, on SQLite and
on PostgreSQL: the only failure allowed is a KestrelError (not an internal one)
with a position, and a statement that fails leaves every earlier variable as it
was: same symbol table entry, same entities.  A statement that succeeds leaves
the other variables as they were, and its own variable can be read.

Examples: kestrel_strategies.budget(0.2) per store (HYPOTHESIS_PROFILE=ci: 40,
long: 4,000).
"""

import json
import uuid

import pytest
from hypothesis import example, given, settings

from kestrel.errors import KestrelError, KestrelInternalError
from kestrel.session import Session

import kestrel_strategies as ks


@pytest.fixture(scope="module", params=[
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
])
def hunt(request, tmp_path_factory, shared_data):
    """A Session with `procs` = every process of doctored-1k, kept for the module."""
    if request.param == "sqlite":
        location = str(tmp_path_factory.mktemp("fuzz") / "store.db")
    else:
        location = request.getfixturevalue("postgres_url")
    bundle = str(shared_data / "doctored-1k.json")
    session = Session(session_id=f"fuzz{uuid.uuid4().hex[:12]}", store_path=location)
    session.execute(f"procs = GET process FROM '{bundle}'")
    yield session, bundle
    session.close()


def rows_of(session, name):
    """A variable's entities, order-free, as comparable text."""
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in session.get_variable(name))


def snapshot(session):
    table = {name: (v.view, v.version, v.entity_type) for name, v in session.symtable.items()}
    contents = {name: rows_of(session, name) for name in sorted(session.symtable)}
    return table, contents


@settings(max_examples=ks.budget(0.2))
@given(data=ks.st.data())
@example(data=None)  # the fixed statements below, first
def test_generated_statement_fails_cleanly_or_changes_only_its_variable(hunt, data):
    session, bundle = hunt
    if data is None:
        statements = FIRST
    else:
        statements = [data.draw(ks.exec_statements(bundle), label="statement")]
    for statement in statements:
        run_one(session, statement)


# Found by this property or by hand: each once, before the random ones.
FIRST = [
    "x = GET process FROM procs WHERE pid = 'abc'",            # bigint = text on PostgreSQL
    "x = procs WHERE pid > 9223372036854775808",                # beyond 64 bits
    "x = GROUP procs BY BIN(pid, 100) WITH COUNT(name) AS n",
    "DISP procs SORT BY nosuchattr",
    "x = GET process FROM procs WHERE name MATCHES '^c.d\\.exe$' AND pid IN procs.pid",
]


def run_one(session, statement):
    before = snapshot(session)
    try:
        session.execute(statement)
    except KestrelInternalError as err:
        pytest.fail(f"internal error for {statement!r}:\n{err}")
    except KestrelError as err:
        assert err.line is not None and err.line >= 1, f"{statement!r}: no position: {err}"
        assert err.column is not None and err.column >= 1, f"{statement!r}: no column: {err}"
        after = snapshot(session)
        assert after == before, f"{statement!r} failed ({err.message}) but changed variables"
        return
    table, contents = snapshot(session)
    for name, rows in before[1].items():
        if name not in ("x", "_"):
            assert contents[name] == rows, f"{statement!r} changed {name}"
            assert table[name] == before[0][name]
