"""Injection (issue 9): attacker-controlled text is stored and matched as data, never run.

SQL metacharacters, quotes, backslashes, NUL and unicode go into every value
position (WHERE =, IN, LIKE, MATCHES; NEW data; LOAD'ed CSV), into attribute and
variable names, and into the data itself (command lines and file names of a
generated bundle).  Values must come back byte-identical, matches must follow
the operators' meaning, and the store's tables must stay intact — on SQLite and
on PostgreSQL (`store_url`).
"""

import csv
import json
import re
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kestrel.errors import (KestrelError, KestrelInternalError, KestrelSyntaxError,
                            UnknownAttribute)
from kestrel.session import Session
from kestrel.syntax.parser import parse
from kestrel.syntax.unparse import python_string

import kestrel_strategies as ks

# Values a hostile data source (or hunter) may send.  One holding NUL has its own
# tests below (PostgreSQL keeps U+FFFD in its place).
NASTY = [
    "",
    "C:\\Windows\\",
    "\\",
    "'; DROP TABLE process; --",
    '"; DROP TABLE process; --',
    "x' OR '1'='1",
    "') OR 1=1 --",
    "a'b\"c",
    "100%",
    "%",
    "_",
    "a_b",
    "50%_off",
    "C:\\Windows\\System32\\cmd.exe",
    "\\\\server\\share\\x",
    "a\\'b",
    "a\\%b",
    "\\'; DROP TABLE process; --",
    "tab\there",
    "line\nbreak\r\nand more",
    "emoji 😀 and 🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
    "ünïcödé ✓ 中文 עברית",
    "\u2028\u2029\x85\x0b\x0c",
    "$1 ${x} {{x}} %s %(x)s ?",
    "/* comment */ -- comment",
    "' || (SELECT 1) || '",
    "E'\\x41'",
    "x\u202eexe.txt",  # right-to-left override
    " leading and trailing ",
]
TRAILING_BACKSLASH = "C:\\Windows\\"
WITH_NUL = "nul\x00byte"

# STIX's and SQL's LIKE: % any run, _ one character; nothing else is special.


def like(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def write_bundle(path, values, *, key="command_line", extra=None):
    """A STIX 2.0 bundle: record i holds process pid 5000+i whose `key` (command_line)
    is values[i], and the file (its binary) named values[i]."""
    identity = f"identity--{uuid.uuid4()}"
    objects = [{"type": "identity", "id": identity, "name": "fuzz", "identity_class": "system"}]
    for i, value in enumerate(values):
        process = {"type": "process", "pid": 5000 + i, "name": f"p{i}.exe", key: value,
                   "binary_ref": "1"}
        process.update(extra or {})
        objects.append({
            "type": "observed-data", "id": f"observed-data--{uuid.uuid4()}",
            "created_by_ref": identity, "created": "2020-01-01T00:00:00.000Z",
            "modified": "2020-01-01T00:00:00.000Z",
            "first_observed": f"2020-01-01T00:00:{i % 60:02d}.000Z",
            "last_observed": f"2020-01-01T00:00:{i % 60:02d}.000Z", "number_observed": 1,
            "objects": {"0": process, "1": {"type": "file", "name": value}},
        })
    path.write_text(json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                                "objects": objects}), encoding="utf-8")
    return str(path)


def open_session(store_url):
    return Session(session_id=f"inj{uuid.uuid4().hex[:12]}", store_path=store_url)


def table_counts(session) -> dict:
    """Every table of the store with its row count: what must survive an attack."""
    fp = session.store
    return {table: fp.count(table) for table in fp.tables()}


def pids(session, name):
    return sorted(r["pid"] for r in session.get_variable(name))


def check_intact(session, before, *variables):
    after = table_counts(session)
    assert set(after) >= set(before), f"tables lost: {set(before) - set(after)}"
    for table, count in before.items():
        assert after[table] >= count, f"rows lost from {table}"
    for name in variables:
        session.get_variable(name)  # still readable


# ------------------------------------------------------------------ the data itself


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_hostile_data_is_stored_and_matched_as_data(store, tmp_path, request):
    store_url = str(tmp_path / "s.db") if store == "sqlite" else request.getfixturevalue(
        "postgres_url")
    bundle = write_bundle(tmp_path / "hostile.json", NASTY)
    problems = []
    with open_session(store_url) as session:
        session.execute(f"allp = GET process FROM {python_string(bundle)}")
        stored = {r["pid"]: r for r in session.get_variable("allp")}
        for i, value in enumerate(NASTY):
            if stored[5000 + i]["command_line"] != value:
                problems.append(f"stored {value!r} as {stored[5000 + i]['command_line']!r}")
            if stored[5000 + i].get("binary_ref.name") != value:
                problems.append(f"file name {value!r} came back as "
                                f"{stored[5000 + i].get('binary_ref.name')!r}")
        before = table_counts(session)
        for i, value in enumerate(NASTY):
            literal = python_string(value)
            exact = [5000 + i]
            liked = sorted(5000 + j for j, v in enumerate(NASTY) if like(value, v))
            queries = {
                f"GET process FROM {python_string(bundle)} WHERE command_line = {literal}": exact,
                f"GET process FROM allp WHERE command_line = {literal}": exact,
                f"GET process FROM allp WHERE command_line IN ('zz', {literal}, 'yy')": exact,
                f"GET process FROM allp WHERE command_line LIKE {literal}": liked,
                f"GET process FROM {python_string(bundle)} WHERE command_line LIKE {literal}":
                    liked,
                f"GET process FROM allp WHERE binary_ref.name = {literal}": exact,
                f"allp WHERE command_line = {literal}": exact,
                f"GET process FROM allp WHERE command_line != {literal}":
                    sorted(p for p in stored if p != 5000 + i),
            }
            for query, expected in queries.items():
                try:
                    session.execute(f"x = {query}")
                    got = pids(session, "x")
                except KestrelError as err:
                    problems.append(f"{query!r}: {err.message}")
                    continue
                if got != expected:
                    problems.append(f"{query!r}: got {got}, expected {expected}")
            session.execute(f"DISP allp WHERE command_line = {literal} ATTR command_line")
        check_intact(session, before, "allp")
        assert pids(session, "allp") == sorted(stored)
    assert problems == []


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_matches_takes_a_regular_expression_as_data(store, tmp_path, request):
    store_url = str(tmp_path / "s.db") if store == "sqlite" else request.getfixturevalue(
        "postgres_url")
    values = ["cmd.exe", "cmdXexe", "'; DROP TABLE process; --", "a|b", "(x)"]
    bundle = write_bundle(tmp_path / "re.json", values)
    with open_session(store_url) as session:
        session.execute(f"allp = GET process FROM {python_string(bundle)}")
        before = table_counts(session)
        cases = {
            r"^cmd\.exe$": [5000],
            "^cmd.exe$": [5000, 5001],
            "DROP TABLE": [5002],
            r"^a\|b$": [5003],
            r"^\(x\)$": [5004],
        }
        for regex, expected in cases.items():
            session.execute(f"x = GET process FROM allp WHERE command_line MATCHES "
                            f"{python_string(regex)}")
            assert pids(session, "x") == expected, regex
        check_intact(session, before, "allp")


@settings(max_examples=ks.budget(0.05))
@given(values=st.lists(st.one_of(ks.string_values, st.sampled_from(NASTY)), min_size=1,
                       max_size=6, unique=True))
def test_generated_hostile_values_round_trip_on_sqlite(values, tmp_path_factory):
    """The same with generated values (NUL included: SQLite text holds it)."""
    folder = tmp_path_factory.mktemp("gen")
    bundle = write_bundle(folder / "gen.json", values)
    with open_session(str(folder / "s.db")) as session:
        session.execute(f"allp = GET process FROM {python_string(bundle)}")
        stored = {r["pid"]: r["command_line"] for r in session.get_variable("allp")}
        assert stored == {5000 + i: v for i, v in enumerate(values)}
        before = table_counts(session)
        for i, value in enumerate(values):
            session.execute(f"x = GET process FROM allp WHERE command_line = "
                            f"{python_string(value)}")
            assert pids(session, "x") == [5000 + i]
            session.execute(f"x = GET process FROM allp WHERE command_line LIKE "
                            f"{python_string(value)}")
            assert pids(session, "x") == sorted(5000 + j for j, v in enumerate(values)
                                                if like(value, v))
        check_intact(session, before, "allp")


def test_value_ending_in_a_backslash_matches(store_url, tmp_path):
    bundle = write_bundle(tmp_path / "bs.json", [TRAILING_BACKSLASH, "other"])
    with open_session(store_url) as session:
        session.execute(f"allp = GET process FROM {python_string(bundle)}")
        session.execute(f"x = GET process FROM allp WHERE command_line = "
                        f"{python_string(TRAILING_BACKSLASH)}")
        assert pids(session, "x") == [5000]


def test_empty_string_value_matches(store_url, tmp_path):
    bundle = write_bundle(tmp_path / "empty.json", ["", "other"])
    with open_session(store_url) as session:
        session.execute(f"allp = GET process FROM {python_string(bundle)}")
        session.execute("x = GET process FROM allp WHERE command_line = ''")
        assert pids(session, "x") == [5000]


def test_nul_in_the_data_is_stored_on_sqlite(tmp_path):
    bundle = write_bundle(tmp_path / "nul.json", [WITH_NUL, "nul"])
    with open_session(str(tmp_path / "s.db")) as session:
        session.execute(f"allp = GET process FROM {python_string(bundle)}")
        assert {r["command_line"] for r in session.get_variable("allp")} == {WITH_NUL, "nul"}


def test_nul_in_the_data_matches_on_sqlite(tmp_path):
    bundle = write_bundle(tmp_path / "nul.json", [WITH_NUL, "nul"])
    with open_session(str(tmp_path / "s.db")) as session:
        session.execute(f"allp = GET process FROM {python_string(bundle)}")
        session.execute(f"x = GET process FROM allp WHERE command_line = "
                        f"{python_string(WITH_NUL)}")
        assert pids(session, "x") == [5000]


@pytest.mark.postgres
def test_nul_in_the_data_on_postgresql(postgres_url, tmp_path):
    """PostgreSQL text cannot hold NUL: the store keeps U+FFFD in its place (documented),
    in the data and in the values compared, so the GET works and the value still matches."""
    bundle = write_bundle(tmp_path / "nul.json", [WITH_NUL, "nul"])
    with open_session(postgres_url) as session:
        session.execute(f"allp = GET process FROM {python_string(bundle)}")
        assert {r["command_line"] for r in session.get_variable("allp")} == {
            WITH_NUL.replace("\x00", "\ufffd"), "nul"}
        session.execute(f"x = GET process FROM allp WHERE command_line = "
                        f"{python_string(WITH_NUL)}")
        assert pids(session, "x") == [5000]


# ------------------------------------------------------------------ values written by the hunter


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_hostile_values_in_new_and_load(store, tmp_path, request):
    store_url = str(tmp_path / "s.db") if store == "sqlite" else request.getfixturevalue(
        "postgres_url")
    values = NASTY
    with open_session(store_url) as session:
        session.execute('ips = NEW ipv4-addr ["10.0.0.1"]')
        before = table_counts(session)
        objects = [{"type": "process", "pid": 7000 + i, "name": v, "command_line": v}
                   for i, v in enumerate(values)]
        session.execute("procs = NEW " + json.dumps(objects))
        by_pid = {r["pid"]: r for r in session.get_variable("procs")}
        for i, value in enumerate(values):
            assert by_pid[7000 + i]["name"] == value
            assert by_pid[7000 + i]["command_line"] == value
        # NEW of strings (the type's main attribute)
        session.execute("names = NEW process " + json.dumps(values))
        assert sorted(r["name"] for r in session.get_variable("names")) == sorted(values)
        # LOAD a CSV holding them
        path = tmp_path / "procs.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["pid", "name", "command_line"])
            for i, value in enumerate(values):
                writer.writerow([8000 + i, f"p{i}", value])
        session.execute(f"loaded = LOAD {python_string(str(path))} AS process")
        by_pid = {r["pid"]: r for r in session.get_variable("loaded")}
        for i, value in enumerate(values):
            got = by_pid[8000 + i].get("command_line")
            # pandas' read_csv: surrounding spaces are kept, the value is the cell; an
            # empty cell is no value
            assert got == (value or None), (value, got)
        for i, value in enumerate(values):
            session.execute(f"x = procs WHERE name = {python_string(value)}")
            assert pids(session, "x") == [7000 + i]
        check_intact(session, before, "ips", "procs", "names", "loaded")


# ------------------------------------------------------------------ attribute names


HOSTILE_ATTRIBUTES = [
    'name"; DROP TABLE process; --',
    "name'; DROP TABLE process; --",
    "name; DROP TABLE process",
    'hashes."x"',
    "hashes.'x\"; DROP TABLE process; --'",
    "parent_ref.'a b'",
    "name--",
    "name/**/",
    "na me",
]
ATTRIBUTE_POSITIONS = [
    "DISP procs ATTR {a}",
    "DISP procs SORT BY {a}",
    "x = SORT procs BY {a}",
    "x = GROUP procs BY {a}",
    "x = GROUP procs BY pid WITH COUNT({a}) AS n",
    "x = GROUP procs BY BIN({a}, 5)",
    "x = JOIN procs, procs BY {a}, pid",
    "x = procs WHERE {a} = 1",
    "x = GET process FROM procs WHERE {a} = 'x'",
    "x = procs WHERE pid IN procs.{a}",
]


@pytest.mark.parametrize("position", ATTRIBUTE_POSITIONS)
@pytest.mark.parametrize("attribute", HOSTILE_ATTRIBUTES)
def test_hostile_attribute_names_are_syntax_errors(position, attribute):
    """The grammar's attribute paths hold letters, digits, _, - , . , [*] and
    quoted steps of those: anything else never gets past the parser."""
    with pytest.raises(KestrelSyntaxError) as caught:
        parse(position.format(a=attribute))
    assert caught.value.line == 1 and caught.value.column >= 1


# Attribute names that parse but are not columns of the variable: each must be refused
# with UnknownAttribute at the statement, nothing changed, before any SQL runs.
UNKNOWN_ATTRIBUTES = ["nosuch", "hashes.'SHA-256'", "parent_ref.nosuch",
                      "opened_connection_refs[*].nosuch", "x_refs.nosuch", "name.length"]
KNOWN_ATTRIBUTES = ["name", "parent_ref.name", "binary_ref.name"]

def _unknown_cases():
    for position in ATTRIBUTE_POSITIONS:
        for attribute in UNKNOWN_ATTRIBUTES:
            yield pytest.param(position.format(a=attribute), id=position.format(a=attribute))


def _known_cases():
    for position in ATTRIBUTE_POSITIONS:
        for attribute in KNOWN_ATTRIBUTES:
            yield pytest.param(position.format(a=attribute), id=position.format(a=attribute))


@pytest.fixture(scope="module")
def procs_session(tmp_path_factory, shared_data):
    folder = tmp_path_factory.mktemp("attrs")
    session = Session(session_id=f"attr{uuid.uuid4().hex[:12]}", store_path=str(folder / "s.db"))
    doctored = python_string(str(shared_data / "doctored-1k.json"))
    session.execute(f"procs = GET process FROM {doctored} WHERE name = 'cmd.exe'")
    yield session
    session.close()


def symbols(session):
    return {n: (v.view, v.version) for n, v in session.symtable.items()}


@pytest.mark.parametrize("statement", list(_unknown_cases()))
def test_unknown_attribute_is_refused(procs_session, statement):
    before = symbols(procs_session)
    with pytest.raises(KestrelError) as caught:
        procs_session.execute(statement)
    assert type(caught.value).__name__ == "UnknownAttribute", str(caught.value)
    assert caught.value.line == 1
    assert symbols(procs_session) == before
    procs_session.get_variable("procs")


@pytest.mark.parametrize("statement", list(_known_cases()))
def test_known_attribute_is_accepted(procs_session, statement):
    procs_session.execute(statement)
    if statement.startswith("x ="):
        procs_session.get_variable("x")


@pytest.mark.parametrize("statement, line, column", [
    ("x = procs WHERE name = 'a' OR\n  parent_ref.nme = 'b'", 2, 3),
    ("x = GET process FROM procs WHERE pid IN procs.parent_ref.pidd", 1, 41),
    ("x = procs WHERE file:nosuch = 'a'", 1, 17),  # another type's stored columns
])
def test_unknown_attribute_points_at_itself(procs_session, statement, line, column):
    before = symbols(procs_session)
    with pytest.raises(KestrelError) as caught:
        procs_session.execute(statement)
    assert type(caught.value).__name__ == "UnknownAttribute", str(caught.value)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert symbols(procs_session) == before


@pytest.mark.parametrize("statement", [
    "DISP procs ATTR binary_ref.hashes.MD5",             # a flattened column of the file
    "x = procs WHERE x-oca-asset:hostname = 'a'",        # a type the store has no table for
])
def test_attribute_the_store_can_read_is_accepted(procs_session, statement):
    procs_session.execute(statement)


def test_get_from_a_data_source_may_name_attributes_the_store_has_not_seen(procs_session,
                                                                           shared_data):
    """The source may hold STIX attributes the store has not seen, and x_ custom ones: an
    empty result with a note, not an error; a name neither STIX nor the data know is a
    typo, refused at the attribute (#19)."""
    doctored = python_string(str(shared_data / "doctored-1k.json"))
    (summary,) = procs_session.execute(f"x = GET process FROM {doctored} WHERE cwd = 'a'")
    assert any('"cwd"' in note for note in summary.notes), summary.notes
    (summary,) = procs_session.execute(f"x = GET process FROM {doctored} WHERE x_nosuch = 'a'")
    assert summary.entities == 0
    with pytest.raises(UnknownAttribute) as caught:
        procs_session.execute(f"x = GET process FROM {doctored} WHERE nosuch = 'a'")
    assert caught.value.message.startswith('"nosuch" is not an attribute of process')


def test_keys_inside_a_json_attribute_are_refused(tmp_path):
    """NEW keeps `hashes` as one JSON column: firepit would read hashes.'SHA-256' as a
    column of that name (none), so it is refused rather than silently matching nothing."""
    with Session(session_id=f"json{uuid.uuid4().hex[:12]}",
                 store_path=str(tmp_path / "s.db")) as session:
        session.execute('f = NEW file [{"name": "a", "hashes": {"SHA-256": "x"}}]')
        for statement in ("DISP f ATTR hashes.'SHA-256'", "x = f WHERE hashes.'SHA-256' = 'x'"):
            with pytest.raises(KestrelError) as caught:
                session.execute(statement)
            assert type(caught.value).__name__ == "UnknownAttribute", str(caught.value)
        session.execute("DISP f ATTR hashes")


# ------------------------------------------------------------------ property names in data

HOSTILE_KEYS = {
    "drop_table": 'x" TEXT; DROP TABLE "ipv4-addr" CASCADE; --',
    "space": "na me",
    "quote": 'a"b',
    "semicolon": "x;y",
}
def _key_cases(keys):
    """Property names from the data reach SQL as identifiers in firepit (on PostgreSQL a
    `x" TEXT; DROP TABLE ...` key would run): the store refuses them first."""
    for store in ("sqlite", "postgresql"):
        for label in keys:
            marks = [pytest.mark.postgres] if store == "postgresql" else []
            yield pytest.param(store, HOSTILE_KEYS[label], marks=marks, id=f"{store}-{label}")


def _location(store, tmp_path, request):
    if store == "sqlite":
        return str(tmp_path / "s.db")
    return request.getfixturevalue("postgres_url")


@pytest.mark.parametrize("store, key", list(_key_cases(HOSTILE_KEYS)))
def test_property_names_in_new_data_are_refused(store, key, tmp_path, request):
    with open_session(_location(store, tmp_path, request)) as session:
        session.execute('ips = NEW ipv4-addr ["10.0.0.1"]')
        session.execute('procs = NEW [{"type": "process", "name": "a.exe", "pid": 1}]')
        before = table_counts(session)
        statement = "x = NEW " + json.dumps([{"type": "process", "pid": 3, key: "v"}])
        with pytest.raises(KestrelError) as caught:
            session.execute(statement)
        assert not isinstance(caught.value, KestrelInternalError), caught.value
        check_intact(session, before, "ips", "procs")


HOSTILE_TYPES = {
    "drop_table": 'x"(id TEXT); DROP TABLE "process" CASCADE; CREATE TABLE "y',
    "quote": 'ipv4-addr"',
    "upper": "Process",
    "space": "network traffic",
}


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
@pytest.mark.parametrize("label", list(HOSTILE_TYPES))
def test_type_names_in_data_are_refused(store, label, tmp_path, request):
    """firepit makes an object's type a table name: a bundle, NEW data or create_variable
    holding a type that is not a STIX type name is refused, and nothing is dropped."""
    hostile = HOSTILE_TYPES[label]
    identity = f"identity--{uuid.uuid4()}"
    bundle = tmp_path / "types.json"
    bundle.write_text(json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": [
        {"type": "identity", "id": identity, "name": "x", "identity_class": "system"},
        {"type": "observed-data", "id": f"observed-data--{uuid.uuid4()}",
         "created_by_ref": identity, "created": "2020-01-01T00:00:00.000Z",
         "modified": "2020-01-01T00:00:00.000Z", "first_observed": "2020-01-01T00:00:00.000Z",
         "last_observed": "2020-01-01T00:00:00.000Z", "number_observed": 1,
         "objects": {"0": {"type": "process", "pid": 1, "name": "a.exe"},
                     "1": {"type": hostile, "value": "v"}}}]}))
    with open_session(_location(store, tmp_path, request)) as session:
        session.execute("keep = NEW process ['keep.exe']")
        before = table_counts(session)
        attempts = [lambda: session.execute(f"x = GET process FROM {python_string(str(bundle))}"),
                    lambda: session.execute("x = NEW " + json.dumps([{"type": hostile,
                                                                      "value": "v"}])),
                    lambda: session.create_variable("x", ["v"], hostile)]
        for attempt in attempts:
            with pytest.raises(KestrelError) as caught:
                attempt()
            assert not isinstance(caught.value, KestrelInternalError), str(caught.value)
            assert hostile in str(caught.value)
        check_intact(session, before, "keep")
        assert [r["name"] for r in session.get_variable("keep")] == ["keep.exe"]


@pytest.mark.parametrize("store, key", list(_key_cases(["drop_table", "space"])))
def test_property_names_in_a_bundle_are_refused(store, key, tmp_path, request, shared_data):
    """The data itself: a custom property of a process in a bundle."""
    bundle = write_bundle(tmp_path / "keys.json", ["v"], key=key)
    doctored = python_string(str(shared_data / "doctored-1k.json"))
    with open_session(_location(store, tmp_path, request)) as session:
        session.execute(f"addrs = GET ipv4-addr FROM {doctored}")
        session.execute(f"procs = GET process FROM {doctored} WHERE name = 'cmd.exe'")
        before = table_counts(session)
        try:
            session.execute(f"x = GET process FROM {python_string(bundle)}")
        except KestrelInternalError as err:
            pytest.fail(f"internal error: {err}")
        except KestrelError:
            pass  # refusing the bundle (or the property) is fine
        check_intact(session, before, "addrs", "procs")


# ------------------------------------------------------------------ variable names


@pytest.mark.parametrize("name", [
    'x"', "x'", "x;", "x y", "x-y", "1x", "x.y", "ünï", "x\x00", "get", "WHERE", "x--",
    'x"; DROP TABLE process; --',
])
def test_hostile_variable_names_are_syntax_errors(name):
    for statement in (f"{name} = NEW process ['a']", f"DISP {name}", f"y = {name} + z",
                      f"y = GET process FROM {name} WHERE pid = 1"):
        try:
            statements = parse(statement)
        except KestrelSyntaxError as err:
            assert err.line == 1 and err.column >= 1
            continue
        # what parses must not have taken the hostile text as a variable name
        for stmt in statements:
            names = {stmt.output, *stmt.inputs} - {None}
            assert name not in names, statement


@pytest.mark.parametrize("name", [
    'x"; DROP TABLE process; --', "x y", "x\x00",
    pytest.param("", id="empty"),
    pytest.param("get", id="keyword"),
])
def test_hostile_variable_names_from_python(store_url, name):
    """Session.create_variable takes a name without the parser: it must refuse it too."""
    with open_session(store_url) as session:
        session.execute("procs = NEW process ['a.exe']")
        before = table_counts(session)
        try:
            session.create_variable(name, ["b.exe"], "process")
        except KestrelInternalError as err:
            pytest.fail(f"internal error: {err}")
        except KestrelError:
            pass
        else:
            pytest.fail(f"variable name {name!r} accepted")
        with pytest.raises(KestrelError):
            session.get_variable(name)
        check_intact(session, before, "procs")


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgresql",
                                                            marks=pytest.mark.postgres)])
def test_new_with_an_integer_beyond_64_bits(store, tmp_path, request):
    with open_session(_location(store, tmp_path, request)) as session:
        session.execute("procs = NEW process ['a.exe']")
        with pytest.raises(KestrelError) as caught:
            session.execute('x = NEW [{"type": "process", "pid": 18446744073709551616}]')
        assert not isinstance(caught.value, KestrelInternalError), str(caught.value)
        assert caught.value.line == 1
        assert "pid = 18446744073709551616, beyond the 64-bit integers" in str(caught.value)
        assert "x" not in session.get_variable_names()
        session.get_variable("procs")
        session.execute("y = procs")
