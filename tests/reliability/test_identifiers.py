"""Names onto store identifiers, one to one (#26): variables, properties and session ids
that PostgreSQL's 63-byte names, `-`/`_` or SQLite's case-blind names would make one are
kept apart or refused, and one part of a store is held by one open Session at a time."""

import threading
import uuid

import pytest

from kestrel.errors import StoreError
from kestrel.session import Session
from kestrel.store import partition

from test_bad_data import process, record, write

LONG = "v" * 70


@pytest.fixture
def session(store_url):
    with Session(session_id=f"ids{uuid.uuid4().hex[:10]}", store_path=store_url) as session:
        yield session


@pytest.fixture
def impatient(monkeypatch):
    """A refused claim fails after 1 s instead of partition.CLAIM_PATIENCE."""
    monkeypatch.setattr(partition, "CLAIM_PATIENCE", 1.0)


def test_long_variable_names_hold_their_own_rows(session):
    """Two names sharing their first 63 bytes were one PostgreSQL view: both held the rows
    of whichever came last."""
    session.execute(f"{LONG}a = NEW process ['a.exe']\n{LONG}b = NEW process ['b.exe']")
    assert [r["name"] for r in session.get_variable(f"{LONG}a")] == ["a.exe"]
    assert [r["name"] for r in session.get_variable(f"{LONG}b")] == ["b.exe"]


def test_every_property_keeps_a_column_of_its_own(session, store_url, tmp_path):
    """Names longer than PostgreSQL keeps, names that differ only in case (one column on
    SQLite) and an extension's property beside a custom one of the same short name
    (firepit makes both x_owner_sid) each keep their value: the later ones in a column
    named after them with a digest."""
    long_a, long_b = "x_" + "k" * 70 + "a", "x_" + "k" * 70 + "b"
    path = write(tmp_path / "names.json", [record(0, process(
        7, name="odd.exe", **{long_a: 1, long_b: 2, "x_foo": "lower", "X_FOO": "upper",
                              "x_owner_sid": "custom",
                              "extensions": {"windows-process-ext": {"owner_sid": "S-1-5"}}}))])
    session.execute(f"p = GET process FROM {path} WHERE pid = 7")
    (row,) = session.get_variable("p")
    values = {value for key, value in row.items() if key.startswith(("x_", "X_"))}
    assert values == {1, 2, "lower", "upper", "custom", "S-1-5"}
    assert row["x_foo"] == "lower"
    if store_url.startswith("postgresql"):  # a name is cut at 63 bytes there
        assert long_a not in row and all(len(key.encode()) <= 63 for key in row)
    else:
        assert row[long_a] == 1 and row[long_b] == 2
    # each is read by its own path too, wherever a statement names an attribute
    ext = "extensions.'windows-process-ext'.owner_sid"
    for attribute, value in ((long_a, "1"), (long_b, "2"), ("X_FOO", "'upper'"),
                             (ext, "'S-1-5'"), ("x_owner_sid", "'custom'")):
        session.execute(f"hit = p WHERE {attribute} = {value}\n"
                        f"miss = p WHERE {attribute} != {value}")
        assert [r["pid"] for r in session.get_variable("hit")] == [7], attribute
        assert session.get_variable("miss") == [], attribute
    session.execute(f"from_source = GET process FROM {path} WHERE {ext} = 'S-1-5'")
    assert [r["pid"] for r in session.get_variable("from_source")] == [7]
    (table,) = session.execute(f"DISP p ATTR {ext}, X_FOO, {long_b}")
    assert table.dataframe.values.tolist() == [["S-1-5", "upper", 2]]
    # the columns hold: a later GET of the same names, one at a time, adds to them
    later = write(tmp_path / "later.json", [record(0, process(8, name="b", X_FOO="again")),
                                            record(1, process(9, name="c", x_foo="lower"))])
    session.execute(f"q = GET process FROM {later} WHERE pid >= 8\n"
                    "both = GET process FROM q WHERE x_foo = 'lower'")
    assert sorted(r["pid"] for r in session.get_variable("q")) == [8, 9]
    assert [r["pid"] for r in session.get_variable("both")] == [9]
    again = [r for r in session.get_variable("q") if r["pid"] == 8][0]
    assert "again" in again.values() and again["x_foo"] is None


@pytest.mark.postgres
def test_session_ids_that_map_to_one_schema_are_refused(postgres_url, impatient):
    tag = uuid.uuid4().hex[:8]
    with Session(session_id=f"s-{tag}", store_path=postgres_url) as first:
        first.execute("x = NEW process ['first.exe']")
    with pytest.raises(StoreError) as caught:
        Session(session_id=f"s_{tag}", store_path=postgres_url)
    assert (f"session id 's_{tag}' would share the store's schema 's_{tag}' with session "
            f"'s-{tag}'") in str(caught.value)
    with Session(session_id=f"s-{tag}", store_path=postgres_url) as again:
        assert [r["name"] for r in again.get_variable("x")] == ["first.exe"]


@pytest.mark.postgres
def test_long_session_ids_are_apart(postgres_url):
    """Ids that differ after 63 bytes shared a schema (PostgreSQL cut the name)."""
    stem = "hunt" * 20 + uuid.uuid4().hex[:8]
    with Session(session_id=stem + "-one", store_path=postgres_url) as one:
        one.execute("x = NEW process ['one.exe']")
        with Session(session_id=stem + "-two", store_path=postgres_url) as two:
            assert two.get_variable_names() == []
            two.execute("x = NEW process ['two.exe']")
            assert [r["name"] for r in two.get_variable("x")] == ["two.exe"]
        assert [r["name"] for r in one.get_variable("x")] == ["one.exe"]


def test_a_session_part_is_held_by_one_session_at_a_time(store_url, impatient):
    """A SQLite file (the session's store), or a PostgreSQL session id, open in one Session
    is refused to a second (they would interleave views and writes); it is free again
    when the first closes."""
    session_id = f"held{uuid.uuid4().hex[:8]}"
    first = Session(session_id=session_id, store_path=store_url)
    try:
        first.execute("x = NEW process ['first.exe']")
        with pytest.raises(StoreError) as caught:
            Session(session_id=session_id, store_path=store_url)
        assert "is open in another session" in str(caught.value)
        assert [r["name"] for r in first.get_variable("x")] == ["first.exe"]
    finally:
        first.close()
    with Session(session_id=session_id, store_path=store_url) as again:
        assert [r["name"] for r in again.get_variable("x")] == ["first.exe"]


def test_two_sessions_in_one_runtime_directory(tmp_path, impatient):
    runtime_dir = str(tmp_path / "rt")
    with Session(runtime_dir=runtime_dir) as first:
        with pytest.raises(StoreError) as caught:
            Session(runtime_dir=runtime_dir)
        assert f"the store {runtime_dir}/local.db is open in another session" in str(
            caught.value)
        first.execute("x = NEW process ['kept.exe']")
        assert [r["name"] for r in first.get_variable("x")] == ["kept.exe"]


def test_threads_with_sessions_on_one_sqlite_file_take_turns(tmp_path):
    """Each waits its turn, up to partition.CLAIM_PATIENCE (an UnboundLocalError came out
    of firepit when they ran at once); the file is one session, so all variables end up
    in it."""
    store = str(tmp_path / "shared.db")
    errors = []

    def hunt(i):
        try:
            with Session(store_path=store) as session:
                session.execute(f"x{i} = NEW process ['p{i}.exe']")
        except Exception as err:  # reported below, with the thread's number
            errors.append(f"{i}: {type(err).__name__}: {err}")

    threads = [threading.Thread(target=hunt, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Session(store_path=store) as session:
        assert sorted(session.get_variable_names()) == ["x0", "x1", "x2", "x3"]
