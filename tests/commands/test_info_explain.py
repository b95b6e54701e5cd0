"""INFO (what a variable holds) and EXPLAIN (the statements, STIX patterns and source
queries that made it, oldest first)."""

from datetime import datetime

import pytest
from identities import entities

from kestrel.errors import VariableNotFound


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


def test_info_lines(hunt, bundle, records, processes, process_attributes):
    (info,) = hunt.execute("INFO allp")
    seen = [r["first_observed"] for r in records if any(
        o["type"] == "process" for o in r["objects"].values())]
    assert info.title == "INFO allp"
    assert info.lines[:4] == ["entity type: process", f"entities: {len(entities(processes))}",
                              f"occurrences: {len(processes)}", f"records: {len(seen)}"]
    assert sorted(info.lines[4].removeprefix("attributes: ").split(", ")) == process_attributes
    assert info.lines[5:] == [
        f"time range: {min(seen, key=datetime.fromisoformat)} to "
        f"{max(seen, key=datetime.fromisoformat)}",
        f"data source: {bundle}",
        f"defined by: allp = GET process FROM '{bundle}'"]


def test_info_of_an_empty_variable_and_of_a_group(hunt, processes):
    hunt.execute("ie_none = allp WHERE name = 'no-such.exe'\n"
                 "ie_names = GROUP allp BY name")
    (empty,) = hunt.execute("INFO ie_none")
    assert empty.lines[1:4] == ["entities: 0", "occurrences: 0", "records: 0"]
    assert "time range: none" in empty.lines
    (group,) = hunt.execute("INFO ie_names")
    names = len({p["name"] for _, p in processes})
    assert group.lines[1:5] == [f"entities: {names}", f"occurrences: {names}", "records: 0",
                                "attributes: name, count"]


def test_explain_shows_the_lineage_and_what_the_source_was_asked(hunt, bundle, records, cmd):
    """Oldest first: the GET with its pattern and the bundle's account of what it read,
    then each statement built on it (indented lines say how each was run)."""
    get = f"ie_get = GET process FROM '{bundle}' WHERE name = 'cmd.exe'"
    hunt.execute(f"{get}\n"
                 "ie_kids = FIND process CREATED BY ie_get\n"
                 "ie_late = ie_kids WHERE pid > 10000")
    (explained,) = hunt.execute("EXPLAIN ie_late")
    assert explained.title == "EXPLAIN ie_late"
    assert [line for line in explained.lines if not line.startswith(" ")] == [
        get, "ie_kids = FIND process CREATED BY ie_get", "ie_late = ie_kids WHERE pid > 10000"]
    assert explained.lines[:2] == [get, "    STIX pattern: [process:name = 'cmd.exe']"]
    # read by this GET, or by an earlier one of this module's session
    assert explained.lines[2] in (
        f"    {bundle}: read {bundle}: {len(records)} observations, kept in the store",
        f"    {bundle}: {bundle} unchanged: answered from the store's copy of its "
        f"{len(records)} observations" + explained.lines[2].partition("observations")[2])


def test_explain_shows_the_time_range_in_the_pattern(hunt):
    """A GET from a variable with START/STOP: a STIX pattern with its qualifier."""
    start, stop = "2019-11-16T13:00:00Z", "2019-11-16T13:20:00.5Z"
    hunt.execute(f"ie_window = GET process FROM allp WHERE pid > 8000 START {start} STOP {stop}")
    (explained,) = hunt.execute("EXPLAIN ie_window")
    assert f"    STIX pattern: [process:pid > 8000] START t'{start}' STOP t'{stop}'" in \
        explained.lines


@pytest.mark.parametrize("command", ["INFO", "EXPLAIN"])
def test_unknown_variable(hunt, command):
    with pytest.raises(VariableNotFound) as caught:
        hunt.execute(f"{command} nosuch")
    assert caught.value.message.startswith('variable "nosuch" is not defined (defined: allp, ')
