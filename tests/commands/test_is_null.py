"""`IS NULL` / `IS NOT NULL` (Kestrel v1's null tests) in assignment, GET and FIND, alone and
with AND/OR and parentheses, on both stores.  An attribute IS NULL when the entity has no
value for it (a path through a reference: when there is no value at its end).  Expected
counts come from the bundle read with plain json (each process object is one entity)."""

import pytest


def _parent(record, process):
    return record["objects"].get(process.get("parent_ref"), {})


@pytest.mark.parametrize("where, holds", [
    ("command_line IS NULL", lambda r, p: "command_line" not in p),
    ("command_line IS NOT NULL", lambda r, p: "command_line" in p),
    ("command_line is not null AND name = 'cmd.exe'",
     lambda r, p: "command_line" in p and p.get("name") == "cmd.exe"),
    ("(pid = 5960 OR name = 'taskeng.exe') AND command_line IS NULL",
     lambda r, p: (p.get("pid") == 5960 or p.get("name") == "taskeng.exe")
     and "command_line" not in p),
    ("name = 'svchost.exe' OR command_line IS NOT NULL",
     lambda r, p: p.get("name") == "svchost.exe" or "command_line" in p),
    ("parent_ref.command_line IS NOT NULL", lambda r, p: "command_line" in _parent(r, p)),
    ("parent_ref.name IS NULL", lambda r, p: "name" not in _parent(r, p)),
])
def test_assignment(hunt, processes, where, holds):
    name = f"n{abs(hash(where)) % 10**8}"
    hunt.execute(f"{name} = allp WHERE {where}")
    expected = [p for r, p in processes if holds(r, p)]
    assert hunt.variable_summary(name).occurrences == len(expected)
    assert sorted(p["pid"] for p in hunt.get_variable(name)) == sorted(p["pid"] for p in expected)


def test_the_v1_counts(hunt):
    """Kestrel v1's own test (test_command_assign.py) on this bundle: 948 and 52 of 1000."""
    hunt.execute("v1null = allp WHERE command_line IS NULL\n"
                 "v1value = allp WHERE command_line IS NOT NULL")
    assert hunt.variable_summary("v1null").occurrences == 948
    assert hunt.variable_summary("v1value").occurrences == 52


def test_get_from_a_bundle(hunt, bundle, records):
    hunt.execute(f"withcl = GET process FROM '{bundle}' WHERE command_line IS NOT NULL")
    holding = [r for r in records if any(
        o["type"] == "process" and "command_line" in o for o in r["objects"].values())]
    found = [o for r in holding for o in r["objects"].values()
             if o["type"] == "process" and "command_line" in o]
    summary = hunt.variable_summary("withcl")
    assert (summary.occurrences, summary.records) == (len(found), len(holding))
    explained = hunt.execute("EXPLAIN withcl")[0].to_text()
    assert "STIX pattern: [EXISTS process:command_line]" in explained


@pytest.mark.parametrize("find, expected", [
    ("FIND process CREATED BY procs WHERE command_line IS NOT NULL",
     lambda r, p: _parent(r, p).get("name") == "cmd.exe" and "command_line" in p),
    ("FIND process CREATED BY allp WHERE (x_unknown IS NULL AND pid > 0) OR name = 'x'",
     lambda r, p: "parent_ref" in p and p.get("pid", 0) > 0),
])
def test_find_with_a_null_test(hunt, processes, find, expected):
    """Children of the cmd.exe processes with a command line; all children, none of which
    has an `x_unknown` (a FIND's WHERE may name attributes the data lacks)."""
    name = f"f{abs(hash(find)) % 10**8}"
    hunt.execute(f"{name} = {find}")
    found = [p for r, p in processes if expected(r, p)]
    assert found  # the bundle has such processes: the test can fail
    assert sorted(p["pid"] for p in hunt.get_variable(name)) == sorted(p["pid"] for p in found)
