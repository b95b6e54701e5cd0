"""DISP: a page of the distinct rows of a variable's attributes (ATTR, reference paths,
WHERE, SORT BY, LIMIT/OFFSET).  Without SORT BY the page comes from a streamed scan that
stops early: the same rows in the same order as grouping the whole view, and a total that
is exact or says it is a lower bound.  Runs on SQLite and PostgreSQL (``module_store_url``)."""

import uuid

import pytest

from kestrel.commands import disp as disp_command
from kestrel.errors import UnknownAttribute
from kestrel.results import Table
from kestrel.session import Session
from kestrel.store import ROW


@pytest.fixture(scope="module")
def session(module_store_url, bundle):
    """One per store for the module: DISP only reads (this replaces the conftest's)."""
    with Session(session_id=f"page_{uuid.uuid4().hex[:12]}",
                 store_path=module_store_url) as session:
        session.execute(f"allp = GET process FROM '{bundle}'\n"
                        "cmds = GET process WHERE name = 'cmd.exe'\n"
                        "sorted = SORT allp BY pid DESC\n"
                        "none = allp WHERE name = 'no-such-process'")
        yield session


def grouped(session, variable, columns, limit=None, offset=0):
    """The page as DISP computed it before streaming: GROUP BY over the whole view, in
    the order of each row's first appearance (the oracle)."""
    store = session._store
    view = session.symtable[variable].view
    names = ", ".join(f'"{c}"' for c in columns)
    page = (f'SELECT {names} FROM (SELECT *, ROW_NUMBER() OVER () AS "{ROW}" FROM '
            f'(SELECT {names} FROM "{view}") AS shown) AS numbered GROUP BY {names} '
            f'ORDER BY MIN("{ROW}")')
    rows = [tuple(r.values()) for r in store.fp._query(page).fetchall()]
    end = None if limit is None else offset + limit
    return rows[offset:end], len(rows)


def disp(session, statement):
    (table,) = [r for r in session.execute(statement) if isinstance(r, Table)]
    return table


def listed(table):
    return [tuple(row) for row in table.dataframe.itertuples(index=False)]


@pytest.mark.parametrize("variable", ["allp", "cmds", "sorted"])
@pytest.mark.parametrize("limit, offset", [(5, 0), (50, 0), (7, 3), (20, 400), (3, 10_000)])
def test_page_is_the_grouped_page(session, variable, limit, offset):
    want, total = grouped(session, variable, ["name", "pid"], limit, offset)
    assert total > 0
    table = disp(session, f"DISP {variable} ATTR name, pid LIMIT {limit} OFFSET {offset}")
    assert listed(table) == want
    assert table.total == total and table.offset == offset
    assert table.to_dict()["total"] == total


def test_sorted_variable_keeps_its_order(session):
    pids = [p for _, p in listed(disp(session, "DISP sorted ATTR name, pid LIMIT 30"))]
    assert pids == sorted(pids, reverse=True)


def test_store_page_of_reference_paths(session):
    """Attributes reached through references are projected by joins in the same scan."""
    store, view = session._store, session.symtable["allp"].view
    rows, total, exact = store.distinct_page(view, ["name", "binary_ref.name"], limit=10)
    oracle = store.distinct_page(view, ["name", "binary_ref.name"], sort_by=None, limit=None)
    assert exact and oracle[2] and total == oracle[1] == len(oracle[0])
    assert rows == oracle[0][:10]
    assert len({tuple(r.values()) for r in oracle[0]}) == len(oracle[0])


def test_counting_stops_with_a_lower_bound(session, monkeypatch):
    want, total = grouped(session, "allp", ["name", "pid"], 10, 0)
    monkeypatch.setattr(disp_command, "COUNT_ROWS", 100)
    table = disp(session, "DISP allp ATTR name, pid LIMIT 10")
    assert listed(table) == want
    assert table.total is None
    assert 10 <= table.at_least < total
    assert table.to_dict()["total"] is None
    assert table.to_dict()["total_at_least"] == table.at_least
    footer = table.to_text().splitlines()[-1]
    assert footer.startswith(f"showing rows 1-10 of at least {table.at_least} ")
    # a page past the budget is still right; one reaching past the end counts exactly
    deep, _ = grouped(session, "allp", ["name", "pid"], 5, total - 5)
    last = disp(session, f"DISP allp ATTR name, pid LIMIT 5 OFFSET {total - 5}")
    assert listed(last) == deep and (last.total or last.at_least) == total
    beyond = disp(session, f"DISP allp ATTR name, pid LIMIT 10 OFFSET {total - 5}")
    assert listed(beyond) == deep and beyond.total == total and beyond.at_least is None
    # SORT BY counts everything in the database
    assert disp(session, "DISP allp ATTR name, pid SORT BY pid LIMIT 3").total == total


def test_empty_variable(session):
    table = disp(session, "DISP none ATTR name, pid")
    assert table.total == 0 and table.dataframe.empty
    assert table.to_text().endswith("0 rows")


def test_all_columns_when_no_attr(session):
    """Without ATTR a row is an entity: as many rows as the summary counts, none twice."""
    table = disp(session, "DISP cmds LIMIT 1000")
    rows = listed(table)
    assert len(rows) == table.total == len(set(rows)) == session.variable_summary("cmds").entities


def test_attr_sort_limit_offset(session, cmd):
    """Distinct (pid, name) rows of cmd.exe by pid descending, the third to fifth."""
    table = disp(session, "DISP cmds ATTR pid, name SORT BY pid DESC LIMIT 3 OFFSET 2")
    rows = sorted({(p["pid"], p["name"]) for _, _, p in cmd}, reverse=True)
    assert listed(table) == rows[2:5]
    assert table.to_dict()["columns"] == ["pid", "name"]
    assert table.to_text().splitlines()[-1] == (
        f"showing rows 3-5 of {len(rows)} (use LIMIT n OFFSET m to see more)")


def test_reference_paths_and_where(session, processes):
    """ATTR through parent_ref; a WHERE narrows what DISP shows; no parent shows None."""
    table = disp(session, "DISP allp WHERE name = 'WMIC.exe' OR pid = 6164 "
                          "ATTR pid, parent_ref.name SORT BY pid LIMIT 1000")
    want = {(p["pid"], r["objects"].get(p.get("parent_ref"), {}).get("name"))
            for r, p in processes if p["name"] == "WMIC.exe" or p["pid"] == 6164}
    rows = [(r["pid"], r["parent_ref.name"]) for r in table.to_dict()["rows"]]
    assert sorted(rows, key=repr) == sorted(want, key=repr) and table.total == len(want)
    assert [pid for pid, _ in rows] == sorted(pid for pid, _ in want)


def test_several_paths_through_one_reference(session, processes):
    """ATTR parent_ref.name, parent_ref.pid and parent_ref.binary_ref.name: the paths share
    the parent's join (each adding it made the column names ambiguous)."""
    table = disp(session, "DISP cmds ATTR pid, parent_ref.name, parent_ref.pid, "
                          "parent_ref.binary_ref.name LIMIT 1000")

    def parent(record, process):
        found = record["objects"].get(process.get("parent_ref"), {})
        binary = record["objects"].get(found.get("binary_ref"), {})
        return (process["pid"], found.get("name"), found.get("pid"), binary.get("name"))

    want = {parent(r, p) for r, p in processes if p["name"] == "cmd.exe"}
    rows = {tuple(row.values()) for row in table.to_dict()["rows"]}
    assert rows == want and any(row[1] for row in want)


def test_default_page_is_disp_rows(session, processes):
    """Without LIMIT a page holds the configured disp_rows rows."""
    table = disp(session, "DISP allp ATTR pid, created")
    rows = len({(p["pid"], p.get("created")) for _, p in processes})
    page = session.config.disp_rows
    assert rows > page and table.shown == page and table.total == rows
    assert table.to_text().splitlines()[-1] == (
        f"showing rows 1-{page} of {rows} (use LIMIT n OFFSET m to see more)")


@pytest.mark.parametrize("statement, attribute, reason, close", [
    ("DISP cmds ATTR pid, nmae", "nmae", "attributes: {listed}", "name"),
    ("DISP cmds ATTR pid SORT BY pdi", "pdi", "attributes: {listed}", "pid"),
    ("DISP cmds ATTR parent_ref.nmae", "parent_ref.nmae",
     "parent_ref refers to process, whose attributes are: {listed}", "name"),
])
def test_unknown_attribute_suggests_one(session, process_attributes, statement, attribute,
                                        reason, close):
    with pytest.raises(UnknownAttribute) as caught:
        session.execute(statement)
    listed_attributes = ", ".join(process_attributes)
    assert caught.value.message == (f'"{attribute}" is not an attribute of cmds '
                                    f'({reason.format(listed=listed_attributes)})')
    assert caught.value.hint == f'did you mean "{close}"?'
