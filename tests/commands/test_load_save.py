"""SAVE a variable to CSV, JSON or Parquet and LOAD files back as entities."""

import csv
import json

import pandas as pd
import pytest

from kestrel.errors import DataSourceError, InvalidArgument
from kestrel.results import Text


@pytest.mark.parametrize("suffix", [".csv", ".json", ".parquet"])
def test_save_and_load_back(session, tmp_path, suffix, cmd):
    path = tmp_path / f"procs{suffix}"
    (saved,) = session.execute(f"SAVE procs TO '{path}'")
    assert isinstance(saved, Text) and str(path) in saved.to_text()
    reader = {".csv": pd.read_csv, ".json": pd.read_json, ".parquet": pd.read_parquet}[suffix]
    assert sorted(reader(path)["pid"]) == sorted(p["pid"] for _, _, p in cmd)
    session.execute(f"again = LOAD '{path}' AS process")
    assert sorted({r["pid"] for r in session.get_variable("again")}) == sorted(
        {p["pid"] for _, _, p in cmd})


ROW_KEYS = ("id", "pid", "name", "command_line", "parent_ref.name")


def rows_of(hunt, name):
    """The LOADed attributes, as stored (the file's flattened `parent_ref.name` is a column)."""
    return sorted(tuple(r[k] for k in ROW_KEYS) for r in hunt.get_variable(name, deref=False))


def test_csv_rows_become_entities(hunt, shared_data):
    path = shared_data / "test_input_data_procs.csv"
    with open(path, newline="") as f:
        want = sorted(tuple(int(r[k]) if k == "pid" else r[k] for k in ROW_KEYS)
                      for r in csv.DictReader(f))
    (summary,) = hunt.execute(f"ls_csv = LOAD '{path}' AS process")
    assert (summary.entity_type, summary.entities, summary.records) == ("process", len(want), 0)
    assert rows_of(hunt, "ls_csv") == want


def test_json_objects_name_their_type(hunt, shared_data):
    """Objects with a "type" need no AS; without one, AS names it."""
    typed = shared_data / "test_input_data_procs.json"
    untyped = shared_data / "test_input_data_procs_no_type.json"
    with pytest.raises(InvalidArgument, match=": the entity type is unknown: name it "):
        hunt.execute(f"ls_bad = LOAD '{untyped}'")
    hunt.execute(f"ls_typed = LOAD '{typed}'\n"
                 f"ls_untyped = LOAD '{untyped}' AS process")
    for name, path in (("ls_typed", typed), ("ls_untyped", untyped)):
        assert hunt.variable_summary(name).entity_type == "process"
        assert rows_of(hunt, name) == sorted(tuple(o[k] for k in ROW_KEYS)
                                             for o in json.loads(path.read_text()))
    assert "ls_bad" not in hunt.get_variable_names()


def test_strings_and_a_csv_of_addresses(hunt, shared_data):
    names = shared_data / "test_input_data_procs_list.json"
    ips = shared_data / "test_input_data_ips.csv"
    hunt.execute(f"ls_names = LOAD '{names}' AS process\n"
                 f"ls_ips = LOAD '{ips}' AS ipv4-addr")
    assert sorted(r["name"] for r in hunt.get_variable("ls_names")) == sorted(
        json.loads(names.read_text()))
    with open(ips, newline="") as f:
        want = sorted((r["value"], int(r["risk"])) for r in csv.DictReader(f))
    assert sorted((r["value"], r["risk"]) for r in hunt.get_variable("ls_ips")) == want


def test_save_writes_attributes_reached_through_references(hunt, tmp_path, cmd, records):
    """A saved process carries its binary's name (binary_ref.name), as DISP shows it."""
    objects = {r["id"]: r["objects"] for r in records}
    path = tmp_path / "procs.csv"
    (saved,) = hunt.execute(f"SAVE procs TO '{path}'")
    assert saved.lines == [f"{len(cmd)} process entities to {path}"]
    with open(path, newline="") as f:
        got = sorted((int(r["pid"]), r["binary_ref.name"]) for r in csv.DictReader(f))
    assert got == sorted((p["pid"], objects[rid][p["binary_ref"]]["name"]) for rid, _, p in cmd)


@pytest.mark.parametrize("statement, message", [
    ("SAVE procs TO '{tmp}/procs.txt'",
     "cannot SAVE to {tmp}/procs.txt: use .csv, .json, .parquet"),
    ("SAVE procs TO '{tmp}/no/procs.csv'",
     "cannot write {tmp}/no/procs.csv: {tmp}/no does not exist"),
    ("ls_bad = LOAD '{tmp}/nothing.csv'", "no file at {tmp}/nothing.csv"),
    ("ls_bad = LOAD '{tmp}/empty.csv' AS process", "{tmp}/empty.csv has no rows"),
    ("ls_bad = LOAD '{tmp}/empty.txt' AS process",
     "cannot LOAD {tmp}/empty.txt: use .csv, .parquet or .json"),
], ids=["save-suffix", "save-folder", "load-missing", "load-empty", "load-suffix"])
def test_refused(hunt, tmp_path, statement, message):
    (tmp_path / "empty.csv").write_text("name,pid\n")
    (tmp_path / "empty.txt").write_text("name,pid\ncmd.exe,1\n")
    with pytest.raises(DataSourceError) as caught:
        hunt.execute(statement.format(tmp=tmp_path))
    assert caught.value.message == message.format(tmp=tmp_path)
    assert "ls_bad" not in hunt.get_variable_names()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.csv", "empty.txt"]
