"""A statement that fails changes nothing (issue 9; STYLE (c)): minimal reproductions
of the failures the execution fuzzer found, on SQLite and PostgreSQL.

Each case: `x = procs` is defined, then a statement assigning `x` fails; the error
must be a KestrelError with a position, and `x` and `procs` must keep their view
and their entities, and the session must go on working.
"""

import json
import uuid

import pytest

from kestrel.errors import KestrelError, KestrelInternalError
from kestrel.session import Session
from kestrel.syntax.unparse import python_string

FAILING = {
    # an invalid regular expression: refused (with its position) before any SQL runs
    "matches_invalid_regex": "x = GET process FROM procs WHERE name MATCHES '('",
    # not an IP network
    "issubset_not_a_network": "x = procs WHERE pid ISSUBSET 'not-a-cidr'",
    # a data source that does not exist
    "missing_source": "x = GET process FROM 'no/such/bundle.json' WHERE pid = 1",
    # data the store refuses: an integer beyond 64 bits
    "integer_beyond_64_bits": 'x = NEW [{"type": "process", "pid": 18446744073709551616}]',
}


def _cases():
    """firepit views are lazy: the session reads a new view before committing it, so an
    error that SQL raises only on reading still changes nothing.  PostgreSQL checks views
    when it creates them and the store rolls back the failed transaction."""
    for store in ("sqlite", "postgresql"):
        for label, statement in FAILING.items():
            marks = []
            if store == "postgresql":
                marks.append(pytest.mark.postgres)
            yield pytest.param(store, statement, marks=marks, id=f"{store}-{label}")


def _location(store, tmp_path, request):
    if store == "sqlite":
        return str(tmp_path / "s.db")
    return request.getfixturevalue("postgres_url")


def _rows(session, name):
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in session.get_variable(name))


@pytest.fixture
def doctored(shared_data):
    return python_string(str(shared_data / "doctored-1k.json"))


@pytest.mark.parametrize("store, statement", list(_cases()))
def test_failed_statement_changes_nothing(store, statement, tmp_path, request, doctored):
    with Session(session_id=f"atom{uuid.uuid4().hex[:12]}",
                 store_path=_location(store, tmp_path, request)) as session:
        session.execute(f"procs = GET process FROM {doctored} WHERE name = 'cmd.exe'")
        session.execute("x = procs")
        before = {n: (v.view, v.version) for n, v in session.symtable.items()}
        rows = {n: _rows(session, n) for n in ("procs", "x")}
        with pytest.raises(KestrelError) as caught:
            session.execute(statement)
        assert not isinstance(caught.value, KestrelInternalError), str(caught.value)
        assert caught.value.line == 1 and caught.value.column >= 1, str(caught.value)
        assert {n: (v.view, v.version) for n, v in session.symtable.items()} == before
        assert {n: _rows(session, n) for n in ("procs", "x")} == rows


@pytest.mark.parametrize("store", [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
])
def test_session_goes_on_after_a_database_error(store, tmp_path, request, doctored):
    """`pid = 'abc'` compares a bigint with text: no match on SQLite, an error on
    PostgreSQL.  Either way the session must go on."""
    with Session(session_id=f"atom{uuid.uuid4().hex[:12]}",
                 store_path=_location(store, tmp_path, request)) as session:
        session.execute(f"procs = GET process FROM {doctored} WHERE name = 'cmd.exe'")
        rows = _rows(session, "procs")
        try:
            session.execute("x = GET process FROM procs WHERE pid = 'abc'")
        except KestrelInternalError as err:
            pytest.fail(f"internal error: {err}")
        except KestrelError as err:
            assert err.line == 1
        assert _rows(session, "procs") == rows
        session.execute("y = procs WHERE pid > 0")
        assert _rows(session, "y") == rows
