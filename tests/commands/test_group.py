"""GROUP: one row per distinct key (attributes, reference paths, BIN buckets) with
aggregations."""

import json
from collections import Counter

import pytest

from kestrel.errors import UnknownAttribute


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


def by_name(processes):
    """name -> pids of the processes of that name (one per entity)."""
    groups = {}
    for _, p in processes:
        groups.setdefault(p["name"], []).append(p["pid"])
    return groups


def test_aggregations(hunt, processes):
    hunt.execute("gr_all = GROUP allp BY name WITH COUNT(pid) AS n, NUNIQUE(pid) AS u, "
                 "MIN(pid) AS lo, MAX(pid) AS hi, SUM(pid) AS total, AVG(pid) AS mean")
    rows = {r["name"]: r for r in hunt.get_variable("gr_all")}
    groups = by_name(processes)
    assert {name: (r["n"], r["u"], r["lo"], r["hi"], r["total"]) for name, r in rows.items()} \
        == {name: (len(pids), len(set(pids)), min(pids), max(pids), sum(pids))
            for name, pids in groups.items()}
    for name, pids in groups.items():
        assert float(rows[name]["mean"]) == pytest.approx(sum(pids) / len(pids))
    assert hunt.variable_summary("gr_all").grouped


def test_without_aggregations_rows_are_counted(hunt, processes):
    """No WITH: a `count` of the entities per key."""
    hunt.execute("gr_count = GROUP allp BY name")
    assert {r["name"]: r["count"] for r in hunt.get_variable("gr_count")} == {
        name: len(pids) for name, pids in by_name(processes).items()}


def test_two_keys_and_an_unnamed_aggregation(hunt, cmd):
    """An aggregation without AS is named function_attribute."""
    hunt.execute("gr_two = GROUP procs BY name, pid WITH COUNT(created)")
    want = Counter()
    for _, _, p in cmd:
        want[(p["name"], p["pid"])] += "created" in p
    assert {(r["name"], r["pid"]): r["count_created"]
            for r in hunt.get_variable("gr_two")} == want


def test_bins_of_a_number(hunt, processes):
    hunt.execute("gr_bins = GROUP allp BY BIN(pid, 1000) WITH COUNT(pid) AS n")
    assert {r["pid_bin"]: r["n"] for r in hunt.get_variable("gr_bins")} == Counter(
        p["pid"] // 1000 * 1000 for _, p in processes)


def test_a_group_is_a_variable_to_filter_and_sort(hunt, processes):
    hunt.execute("gr_n = GROUP allp BY name WITH COUNT(pid) AS n\n"
                 "gr_big = gr_n WHERE n > 20 SORT BY n DESC")
    counts = {name: len(pids) for name, pids in by_name(processes).items()}
    assert [r["n"] for r in hunt.get_variable("gr_big")] == sorted(
        (n for n in counts.values() if n > 20), reverse=True)
    assert {r["name"] for r in hunt.get_variable("gr_big")} == {
        name for name, n in counts.items() if n > 20}


@pytest.mark.parametrize("statement, attribute, close", [
    ("gr_bad = GROUP allp BY nmae", "nmae", "name"),
    ("gr_bad = GROUP allp BY name WITH MAX(pdi) AS top", "pdi", "pid"),
])
def test_unknown_attribute_suggests_one(hunt, process_attributes, statement, attribute, close):
    with pytest.raises(UnknownAttribute) as caught:
        hunt.execute(statement)
    assert caught.value.message == (f'"{attribute}" is not an attribute of allp (attributes: '
                                    f'{", ".join(process_attributes)})')
    assert caught.value.hint == f'did you mean "{close}"?'
    assert "gr_bad" not in hunt.get_variable_names()
