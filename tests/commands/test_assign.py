"""Assignment: `v = w [WHERE ...] [SORT BY ...] [LIMIT n [OFFSET m]]`, a new variable from
another's entities."""

from datetime import datetime, timedelta

import pytest

from kestrel.errors import UnknownAttribute, VariableNotFound


def test_where_sort_limit_offset(hunt, processes):
    """LIMIT and OFFSET count entities (here one per pid), each with all its occurrences."""
    hunt.execute("a_page = allp WHERE name = 'svchost.exe' SORT BY pid DESC LIMIT 2 OFFSET 1")
    pids = [p["pid"] for _, p in processes if p["name"] == "svchost.exe"]
    chosen = sorted(set(pids), reverse=True)[1:3]
    assert [r["pid"] for r in hunt.get_variable("a_page", deref=False)] == sorted(
        (p for p in pids if p in chosen), reverse=True)


def test_offset_without_limit(hunt, processes, cmd):
    """OFFSET alone skips entities (it was ignored: every entity was kept)."""
    hunt.execute("a_tail = allp SORT BY pid OFFSET 40\n"
                 "a_rest = procs OFFSET 2")
    entities = sorted({(p["pid"], p["name"]) for _, p in processes})
    assert [r["pid"] for r in hunt.get_variable("a_tail", deref=False)] == sorted(
        p["pid"] for _, p in processes if (p["pid"], p["name"]) in entities[40:])
    rest = [r["pid"] for r in hunt.get_variable("a_rest", deref=False)]
    skipped = {p["pid"] for _, _, p in cmd} - set(rest)
    assert len(skipped) == 2 and sorted(rest) == sorted(p["pid"] for _, _, p in cmd
                                                        if p["pid"] not in skipped)


def test_offset_past_the_end_is_empty(hunt):
    hunt.execute("a_past = procs SORT BY pid LIMIT 5 OFFSET 1000")
    assert hunt.get_variable("a_past") == []


def test_where_through_a_reference(hunt, processes):
    hunt.execute("a_kids = allp WHERE parent_ref.name = 'cmd.exe' AND pid < 12000")
    want = sorted(p["pid"] for r, p in processes if p["pid"] < 12000
                  and r["objects"].get(p.get("parent_ref"), {}).get("name") == "cmd.exe")
    assert want
    assert sorted(r["pid"] for r in hunt.get_variable("a_kids", deref=False)) == want


def test_where_with_a_variable_reference(hunt, processes):
    """`pid IN (4, a_task.pid)` takes the pids a_task holds, and the time range of its
    records widened by the configured offsets: only the System processes (pid 4) seen
    around the two taskeng.exe ones."""
    hunt.execute("a_task = GET process FROM allp WHERE name = 'taskeng.exe'\n"
                 "a_near = allp WHERE pid IN (4, a_task.pid)")
    task = [(datetime.fromisoformat(r["first_observed"]), p["pid"])
            for r, p in processes if p["name"] == "taskeng.exe"]
    start = min(t for t, _ in task) + timedelta(seconds=hunt.config.timerange_start_offset)
    stop = max(t for t, _ in task) + timedelta(seconds=hunt.config.timerange_stop_offset)
    want = sorted(p["pid"] for r, p in processes if p["pid"] in {4} | {pid for _, pid in task}
                  and start <= datetime.fromisoformat(r["first_observed"]) < stop)
    assert 4 in want and len(want) < sum(p["pid"] == 4 for _, p in processes)
    assert sorted(r["pid"] for r in hunt.get_variable("a_near", deref=False)) == want


def test_a_copy_has_the_same_entities(hunt):
    hunt.execute("a_copy = procs")
    assert hunt.get_variable("a_copy") == hunt.get_variable("procs")


def test_unknown_attribute_points_at_it(hunt, process_attributes):
    statement = "a_bad = procs WHERE nmae = 'x' LIMIT 3"
    with pytest.raises(UnknownAttribute) as caught:
        hunt.execute(statement)
    assert caught.value.message == ('"nmae" is not an attribute of procs (attributes: '
                                    f'{", ".join(process_attributes)})')
    assert caught.value.hint == 'did you mean "name"?'
    assert (caught.value.line, caught.value.column) == (1, statement.index("nmae") + 1)
    caret = " " * statement.index("nmae") + "^^^^"
    assert f"  1 | {statement}\n    | {caret}\nhint: " in str(caught.value)


@pytest.mark.parametrize("statement", ["a_bad = nosuch WHERE pid = 1",
                                       "a_bad = procs WHERE pid = nosuch.pid"])
def test_unknown_variable(hunt, statement):
    with pytest.raises(VariableNotFound) as caught:
        hunt.execute(statement)
    assert caught.value.message.startswith('variable "nosuch" is not defined (defined: ')
    assert "a_bad" not in hunt.get_variable_names()
