"""SAVE a variable to CSV, JSON or Parquet and LOAD files back as entities."""

import csv
import gzip
import io
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
     "cannot SAVE to {tmp}/procs.txt: use .csv, .json or .parquet "
     "(or .csv.gz, .json.gz, .parquet.gz)"),
    ("SAVE procs TO '{tmp}/no/procs.csv'",
     "cannot write {tmp}/no/procs.csv: {tmp}/no does not exist"),
    ("ls_bad = LOAD '{tmp}/nothing.csv'", "no file at {tmp}/nothing.csv"),
    ("ls_bad = LOAD '{tmp}/empty.csv' AS process", "{tmp}/empty.csv has no rows"),
    ("ls_bad = LOAD '{tmp}/empty.txt' AS process",
     "cannot LOAD {tmp}/empty.txt: use .csv, .parquet or .json "
     "(or .csv.gz, .parquet.gz, .json.gz)"),
], ids=["save-suffix", "save-folder", "load-missing", "load-empty", "load-suffix"])
def test_refused(hunt, tmp_path, statement, message):
    (tmp_path / "empty.csv").write_text("name,pid\n")
    (tmp_path / "empty.txt").write_text("name,pid\ncmd.exe,1\n")
    with pytest.raises(DataSourceError) as caught:
        hunt.execute(statement.format(tmp=tmp_path))
    assert caught.value.message == message.format(tmp=tmp_path)
    assert "ls_bad" not in hunt.get_variable_names()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.csv", "empty.txt"]


# ------------------------------------------------------------------ gzip and file locations

GZIP_MAGIC = b"\x1f\x8b"


def _pids_in(path, kind):
    """The pids a SAVEd gzip file holds, read with gzip and the format's plain reader."""
    content = gzip.decompress(path.read_bytes())
    if kind == "csv":
        return sorted(int(r["pid"]) for r in csv.DictReader(io.StringIO(content.decode())))
    if kind == "json":
        return sorted(r["pid"] for r in json.loads(content))
    return sorted(pd.read_parquet(io.BytesIO(content))["pid"])


@pytest.mark.parametrize("kind", ["csv", "json", "parquet"])
def test_save_gzipped_and_load_back(hunt, tmp_path, kind, cmd):
    path = tmp_path / f"procs.{kind}.gz"
    (saved,) = hunt.execute(f"SAVE procs TO '{path}'")
    assert saved.lines == [f"{len(cmd)} process entities to {path}"]
    assert path.read_bytes()[:2] == GZIP_MAGIC
    assert _pids_in(path, kind) == sorted(p["pid"] for _, _, p in cmd)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no partial file left
    hunt.execute(f"gz_{kind} = LOAD '{path}' AS process")
    assert sorted({r["pid"] for r in hunt.get_variable(f"gz_{kind}")}) == sorted(
        {p["pid"] for _, _, p in cmd})


def test_save_gzipped_replaces_a_file(hunt, tmp_path, cmd):
    path = tmp_path / "procs.csv.gz"
    path.write_bytes(gzip.compress(b"old,content\n1,2\n"))
    hunt.execute(f"SAVE procs TO '{path}'")
    assert _pids_in(path, "csv") == sorted(p["pid"] for _, _, p in cmd)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_load_gzipped_files(hunt, shared_data, tmp_path):
    """.csv.gz, .json.gz and .jsonl.gz made with plain gzip from the shared inputs."""
    with open(shared_data / "test_input_data_procs.csv", newline="") as f:
        from_csv = sorted(tuple(int(r[k]) if k == "pid" else r[k] for k in ROW_KEYS)
                          for r in csv.DictReader(f))
    objects = json.loads((shared_data / "test_input_data_procs.json").read_text())
    from_json = sorted(tuple(o[k] for k in ROW_KEYS) for o in objects)
    files = {
        "gzl_csv": ("procs.csv.gz", (shared_data / "test_input_data_procs.csv").read_bytes()),
        "gzl_json": ("procs.json.gz", (shared_data / "test_input_data_procs.json").read_bytes()),
        "gzl_jsonl": ("procs.jsonl.gz", "\n".join(json.dumps(o) for o in objects).encode()),
    }
    for name, (file, content) in files.items():
        (tmp_path / file).write_bytes(gzip.compress(content))
        hunt.execute(f"{name} = LOAD '{tmp_path / file}' AS process")
    assert rows_of(hunt, "gzl_csv") == from_csv
    assert rows_of(hunt, "gzl_json") == rows_of(hunt, "gzl_jsonl") == from_json


def test_load_v1_parquet_gz(hunt, shared_data, tmp_path):
    """v1's SAVE wrote plain Parquet under a .parquet.gz name: LOAD reads those too."""
    objects = json.loads((shared_data / "test_input_data_procs.json").read_text())
    path = tmp_path / "v1.parquet.gz"
    pd.DataFrame(objects).to_parquet(path)
    assert path.read_bytes()[:4] == b"PAR1"
    hunt.execute(f"gzl_v1 = LOAD '{path}'")
    assert rows_of(hunt, "gzl_v1") == sorted(tuple(o[k] for k in ROW_KEYS) for o in objects)


def test_relative_paths_and_file_urls(hunt, tmp_path, monkeypatch, cmd):
    """SAVE and LOAD paths are relative to the working directory, bare or after file://
    (file://out/x is the path out/x, as in v1); file:///abs is absolute."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    hunt.execute("SAVE procs TO out/procs.csv.gz\n"
                 "SAVE procs TO file://out/procs.json\n"
                 f"SAVE procs TO file://{tmp_path}/procs.parquet")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.*")) == [
        "out/procs.csv.gz", "out/procs.json", "procs.parquet"]
    want = sorted({p["pid"] for _, _, p in cmd})
    for name, source in (("rel_path", "out/procs.csv.gz"), ("rel_url", "file://out/procs.json"),
                         ("rel_dot", "file://./out/procs.csv.gz"),
                         ("abs_url", f"file://{tmp_path}/procs.parquet")):
        hunt.execute(f"{name} = LOAD {source} AS process")
        assert sorted({r["pid"] for r in hunt.get_variable(name)}) == want, source


def test_load_relative_to_the_data(hunt, shared_data, monkeypatch):
    monkeypatch.chdir(shared_data.parent)
    with open(shared_data / "test_input_data_procs.csv", newline="") as f:
        want = sorted(tuple(int(r[k]) if k == "pid" else r[k] for k in ROW_KEYS)
                      for r in csv.DictReader(f))
    hunt.execute(f"rel_csv = LOAD {shared_data.name}/test_input_data_procs.csv AS process\n"
                 f"rel_csv2 = LOAD file://{shared_data.name}/test_input_data_procs.csv AS process")
    assert rows_of(hunt, "rel_csv") == rows_of(hunt, "rel_csv2") == want


@pytest.mark.parametrize("statement, message", [
    ("SAVE procs TO '{tmp}/procs.gz'",
     "cannot SAVE to {tmp}/procs.gz: use .csv, .json or .parquet "
     "(or .csv.gz, .json.gz, .parquet.gz)"),
    ("ls_bad = LOAD '{tmp}/cut.csv.gz' AS process",
     "cannot read {tmp}/cut.csv.gz: Compressed file ended before the end-of-stream marker "
     "was reached"),
    ("ls_bad = LOAD '{tmp}/bad.csv.gz' AS process",
     "cannot read {tmp}/bad.csv.gz: Unknown compression method"),
    ("ls_bad = LOAD 'file:{tmp}/cut.csv.gz' AS process",
     "file:{tmp}/cut.csv.gz is no file URL: write file://PATH (file:///abs/x.json, "
     "file://data/x.json) or the path alone"),
    ("SAVE procs TO 'file:{tmp}/procs.csv'",
     "file:{tmp}/procs.csv is no file URL: write file://PATH (file:///abs/x.json, "
     "file://data/x.json) or the path alone"),
], ids=["save-gz-alone", "load-cut-gzip", "load-bad-gzip", "load-file-colon", "save-file-colon"])
def test_refused_gzip_and_urls(hunt, tmp_path, statement, message):
    (tmp_path / "cut.csv.gz").write_bytes(gzip.compress(b"name,pid\ncmd.exe,1\n")[:-8])
    (tmp_path / "bad.csv.gz").write_bytes(GZIP_MAGIC + b"not deflate at all")
    with pytest.raises(DataSourceError) as caught:
        hunt.execute(statement.format(tmp=tmp_path))
    assert caught.value.message == message.format(tmp=tmp_path)
    assert "ls_bad" not in hunt.get_variable_names()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv.gz", "cut.csv.gz"]
