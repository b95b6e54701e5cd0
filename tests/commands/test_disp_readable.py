"""DISP without ATTR shows what a hunter reads as data (#19): a LOADed Kestrel v1 file's
attributes and the paths it flattened, never its ids and types; NEW's attributes; what a
network connection's identity points to (`src_ref.value`); a row per entity, its first
occurrence's values.  Ids show when asked (`ATTR id`).  Expected rows come from the files
read with csv/json, on SQLite and PostgreSQL."""

import csv
import uuid

import pytest
from identities import entities, objects

from kestrel.results import Table
from kestrel.session import Session

RECORD = ("first_observed", "last_observed", "number_observed")


@pytest.fixture
def fresh(store_url):
    """A session on a store of its own: LOAD makes the process table's columns."""
    with Session(session_id=f"read_{uuid.uuid4().hex[:12]}", store_path=store_url) as session:
        yield session


def disp(session, statement) -> Table:
    (found,) = [r for r in session.execute(statement) if isinstance(r, Table)]
    return found


def kind(column):
    """0: the entity's own attribute, 1: a path through a reference, 2: its record's."""
    return 2 if column in RECORD else int(column.split(".")[0].endswith("_ref"))


def test_a_loaded_v1_file_shows_its_data_not_its_ids(fresh, shared_data):
    """test_input_data_procs.csv (a Kestrel v1 SAVE) flattens references into
    `parent_ref.name`, `parent_ref.id`, `parent_ref.type`: the ids and types are plumbing."""
    path = shared_data / "test_input_data_procs.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    data = [c for c in rows[0] if c.split(".")[-1] not in ("id", "type")]
    assert len(data) < len(rows[0]) - 2  # ids and types at several depths
    fresh.execute(f"loaded = LOAD '{path}' AS process")
    shown = disp(fresh, "DISP loaded")
    columns = list(shown.dataframe.columns)
    assert sorted(columns) == sorted(data)
    assert columns == sorted(columns, key=kind)  # own attributes, paths, record times
    assert sorted(map(tuple, shown.dataframe.astype(str).values.tolist())) == sorted(
        tuple(r[c] for c in columns) for r in rows)
    ids = disp(fresh, "DISP loaded ATTR id, parent_ref.id")
    assert sorted(map(tuple, ids.dataframe.values.tolist())) == sorted(
        (r["id"], r["parent_ref.id"]) for r in rows)


def test_new_shows_its_attributes(fresh):
    fresh.execute('n = NEW process [{"name": "evil.exe", "pid": 666}, {"name": "a.exe", '
                  '"pid": 1}]\nips = NEW ipv4-addr ["10.0.0.1", "192.168.1.1"]')
    assert sorted(disp(fresh, "DISP n").to_dict()["rows"], key=str) == [
        {"name": "a.exe", "pid": 1}, {"name": "evil.exe", "pid": 666}]
    assert sorted(disp(fresh, "DISP ips").to_dict()["rows"], key=str) == [
        {"value": "10.0.0.1"}, {"value": "192.168.1.1"}]
    assert all(i.startswith("process--") for i in disp(fresh, "DISP n ATTR id").dataframe["id"])


def test_connections_show_their_addresses(fresh, shared_data):
    """Two connections that differ only in their addresses are two rows that say so."""
    pairs = objects(shared_data / "doctored-1k.json", "network-traffic")
    fresh.execute(f"conns = GET network-traffic FROM '{shared_data}/doctored-1k.json'")
    shown = disp(fresh, "DISP conns LIMIT 100000")
    assert list(shown.dataframe.columns) == ["src_port", "dst_port", "protocols",
                                             "src_ref.value", "dst_ref.value"]
    values = lambda r, ref: r["objects"][ref]["value"]  # noqa: E731
    assert {tuple(row) for row in shown.dataframe[["src_ref.value", "src_port",
                                                    "dst_ref.value", "dst_port"]].values} == {
        (values(r, o["src_ref"]), o["src_port"], values(r, o["dst_ref"]), o["dst_port"])
        for r, o in pairs}
    assert shown.total == len(shown.dataframe) == len(entities(pairs))


def test_a_row_per_entity_from_one_occurrence(fresh, shared_data):
    """svchost.exe: a row per process holding one of its real occurrences; SORT BY orders
    the processes by their first occurrence in that order (the latest `created`)."""
    pairs = [(r, p) for r, p in objects(shared_data / "doctored-1k.json", "process")
             if p["name"] == "svchost.exe"]
    fresh.execute(f"procs = GET process FROM '{shared_data}/doctored-1k.json' "
                  "WHERE name = 'svchost.exe'")
    shown = disp(fresh, "DISP procs")
    columns = list(shown.dataframe.columns)
    assert columns[:3] == ["pid", "name", "created"] and set(columns) <= {
        "pid", "name", "created", "command_line"}  # as the occurrences shown have them
    rows = [tuple(row) for row in shown.dataframe.values]
    assert len(rows) == shown.total == len({row[0] for row in rows}) == len(entities(pairs))
    assert set(rows) <= {tuple(p.get(c) for c in columns) for _, p in pairs}
    latest = {}
    for _, p in pairs:
        latest[p["pid"]] = max(latest.get(p["pid"], ""), p.get("created", ""))
    page = disp(fresh, "DISP procs SORT BY created DESC LIMIT 3 OFFSET 1")
    assert [tuple(row) for row in page.dataframe[["pid", "created"]].values] == sorted(
        latest.items(), key=lambda item: item[1], reverse=True)[1:4]
    assert page.total == len(latest)


def test_timestamped_rows_are_sightings(fresh, shared_data):
    """TIMESTAMPED adds the record's time: a row per entity and time, not per entity."""
    pairs = [(r, p) for r, p in objects(shared_data / "doctored-1k.json", "process")
             if p["name"] == "cmd.exe"]
    fresh.execute(f"procs = GET process FROM '{shared_data}/doctored-1k.json' "
                  "WHERE name = 'cmd.exe'")
    shown = disp(fresh, "DISP TIMESTAMPED(procs) LIMIT 1000")
    assert list(shown.dataframe.columns)[-1] == "first_observed"
    assert sorted(map(tuple, shown.dataframe[["pid", "first_observed"]].values.tolist())) == \
        sorted({(p["pid"], r["first_observed"]) for r, p in pairs})
