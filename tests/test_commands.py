"""Commands the huntflow fixtures do not reach: transforms, JOIN, GROUP BY BIN,
SAVE/LOAD in every format, INFO, EXPLAIN, APPLY's errors.  Expected values come
from the bundle read with plain json."""

import json

import pandas as pd
import pytest

from kestrel.errors import AnalyticsError, KestrelSemanticError
from kestrel.results import Table, Text
from kestrel.session import Session


@pytest.fixture(scope="module")
def bundle(shared_data):
    return shared_data / "doctored-1k.json"


@pytest.fixture(scope="module")
def cmd(bundle):
    """(record id, first_observed, process) for every cmd.exe process in the bundle."""
    records = [o for o in json.loads(bundle.read_text())["objects"] if o["type"] == "observed-data"]
    return [(r["id"], r["first_observed"], p) for r in records for p in r["objects"].values()
            if p["type"] == "process" and p.get("name") == "cmd.exe"]


@pytest.fixture
def session(bundle):
    with Session() as session:
        session.execute(f"procs = GET process FROM '{bundle}' WHERE name = 'cmd.exe'")
        yield session


def table(outputs):
    (found,) = [o for o in outputs if isinstance(o, Table)]
    return found.dataframe


def test_timestamped_adds_first_observed(session, cmd):
    frame = table(session.execute("DISP TIMESTAMPED(procs) ATTR first_observed, pid"))
    got = sorted(zip(frame["first_observed"], frame["pid"]))
    assert got == sorted((seen, p["pid"]) for _, seen, p in cmd)


def test_timestamped_assignment_groups_by_time_bins(session, cmd):
    session.execute("ts = TIMESTAMPED(procs)\n"
                    "bins = GROUP ts BY BIN(first_observed, 10 MINUTES) WITH COUNT(pid) AS n")
    frame = table(session.execute("DISP bins"))
    assert int(frame["n"].sum()) == len(cmd)
    minutes = {seen[:14] + f"{int(seen[14:16]) // 10 * 10:02d}" for _, seen, _ in cmd}
    assert len(frame) == len(minutes)


def test_addobsid_and_records(session, cmd):
    frame = table(session.execute("DISP ADDOBSID(procs) ATTR observation_id, pid"))
    assert sorted(zip(frame["observation_id"], frame["pid"])) == sorted(
        (rid, p["pid"]) for rid, _, p in cmd)
    session.execute("recs = RECORDS(procs)")
    assert session.variable_summary("recs").entity_type == "observed-data"
    ids = {row["id"] for row in session.get_variable("recs", deref=False)}
    assert ids == {rid for rid, _, _ in cmd}


def test_join_on_an_attribute(session, bundle, cmd):
    session.execute(f"sys = GET process FROM '{bundle}' WHERE pid IN (10468, 6792, 1)\n"
                    "both = JOIN procs, sys BY pid, pid")
    pids = {row["pid"] for row in session.get_variable("both", deref=False)}
    assert pids == {10468, 6792} & {p["pid"] for _, _, p in cmd}


def test_join_through_a_reference_and_with_itself(session, bundle, cmd):
    """Children joined to their parents by parent_ref.pid; a variable joined with itself."""
    records = [o for o in json.loads(bundle.read_text())["objects"]
               if o["type"] == "observed-data"]
    cmd_pids = {p["pid"] for _, _, p in cmd}
    expected = {p["pid"] for r in records for p in r["objects"].values()
                if p["type"] == "process" and p.get("name") == "WMIC.exe"
                and r["objects"].get(p.get("parent_ref"), {}).get("pid") in cmd_pids}
    assert expected
    session.execute(f"wmic = GET process FROM '{bundle}' WHERE name = 'WMIC.exe'\n"
                    "kids = JOIN wmic, procs BY parent_ref.pid, pid\n"
                    "same = JOIN procs, procs BY pid, pid")
    assert {row["pid"] for row in session.get_variable("kids", deref=False)} == expected
    assert {row["pid"] for row in session.get_variable("same", deref=False)} == cmd_pids


def test_group_by_a_reference_path(session, bundle):
    """GROUP BY parent_ref.name WITH aggregations of a column and of another path."""
    records = [o for o in json.loads(bundle.read_text())["objects"]
               if o["type"] == "observed-data"]
    children = {}  # parent name -> {(child pid, parent pid)}
    for r in records:
        for p in r["objects"].values():
            parent = r["objects"].get(p.get("parent_ref"), {})
            if p["type"] == "process" and p.get("name") == "WMIC.exe" and parent:
                children.setdefault(parent.get("name"), set()).add((p["pid"], parent["pid"]))
    assert children
    session.execute(f"wmic = GET process FROM '{bundle}' WHERE name = 'WMIC.exe'\n"
                    "g = GROUP wmic BY parent_ref.name WITH NUNIQUE(pid) AS kids, "
                    "MAX(parent_ref.pid) AS top")
    rows = {r["parent_ref.name"]: (r["kids"], r["top"]) for r in session.get_variable("g")}
    assert rows == {name: (len({k for k, _ in pairs}), max(p for _, p in pairs))
                    for name, pairs in children.items()}


def test_merge_needs_one_entity_type(session, bundle):
    session.execute(f"ips = GET ipv4-addr FROM '{bundle}' WHERE value = '192.168.1.1'")
    with pytest.raises(KestrelSemanticError, match="different entity types: procs \\(process\\)"):
        session.execute("mixed = procs + ips")


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


def test_info_and_explain(session, cmd):
    (info,) = session.execute("INFO procs")
    lines = info.to_text()
    assert "entity type: process" in lines and f"records: {len(cmd)}" in lines
    first, last = min(s for _, s, _ in cmd), max(s for _, s, _ in cmd)
    assert f"time range: {first} to {last}" in lines
    session.execute("parents = FIND process CREATED procs")
    (explained,) = session.execute("EXPLAIN parents")
    text = explained.to_text()
    assert "STIX pattern: [process:name = 'cmd.exe']" in text
    assert text.index("procs = GET process") < text.index("parents = FIND process CREATED procs")


def test_apply_unknown_analytics_changes_nothing(session):
    before = session.get_variable("procs")
    with pytest.raises(AnalyticsError, match='no analytics "nosuch" is registered'):
        session.execute("APPLY python://nosuch ON procs WITH x=1")
    with pytest.raises(AnalyticsError, match="unknown analytics scheme"):
        session.execute("APPLY docker://x ON procs")
    assert session.get_variable("procs") == before
