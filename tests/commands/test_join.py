"""JOIN (entities of the first variable whose attribute matches the second's) and merge
(`a + b`, the union of variables of one entity type)."""

import json
from datetime import datetime

import pytest

from kestrel.errors import KestrelSemanticError, UnknownAttribute


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


def test_merge_needs_one_entity_type(session, bundle):
    session.execute(f"ips = GET ipv4-addr FROM '{bundle}' WHERE value = '192.168.1.1'")
    with pytest.raises(KestrelSemanticError, match="different entity types: procs \\(process\\)"):
        session.execute("mixed = procs + ips")


def test_join_without_by_matches_ids(hunt, cmd):
    """procs was taken from allp, so they share entities: joined by id, allp gives procs."""
    hunt.execute("j_ids = JOIN allp, procs")
    rows = hunt.get_variable("j_ids", deref=False)
    assert sorted(r["pid"] for r in rows) == sorted(p["pid"] for _, _, p in cmd)
    assert {r["id"] for r in rows} == {r["id"] for r in hunt.get_variable("procs", deref=False)}


def test_merge_is_a_union_of_entities(hunt, processes):
    hunt.execute("j_wmic = GET process FROM allp WHERE name = 'WMIC.exe'\n"
                 "j_both = procs + j_wmic\n"
                 "j_again = allp + procs + procs")
    ids = {name: {r["id"] for r in hunt.get_variable(name, deref=False)}
           for name in ("procs", "j_wmic", "j_both", "j_again", "allp")}
    assert ids["j_both"] == ids["procs"] | ids["j_wmic"]
    assert ids["j_again"] == ids["allp"]
    assert sorted(r["pid"] for r in hunt.get_variable("j_both", deref=False)) == sorted(
        p["pid"] for _, p in processes if p["name"] in ("cmd.exe", "WMIC.exe"))
    assert hunt.variable_summary("j_again").occurrences == len(processes)


def test_unknown_attribute_suggests_one(hunt, process_attributes):
    with pytest.raises(UnknownAttribute) as caught:
        hunt.execute("j_bad = JOIN allp, procs BY pid, pdi")
    assert caught.value.message == ('"pdi" is not an attribute of procs (attributes: '
                                    f'{", ".join(process_attributes)})')
    assert caught.value.hint == 'did you mean "pid"?'
    assert "j_bad" not in hunt.get_variable_names()


def test_join_by_an_attribute_gives_each_entity_once(hunt, processes, cmd):
    """Every allp process with a cmd.exe pid, once: firepit's join gave one row per
    matching procs entity (28 rows for 14 entities, two cmd.exe processes per pid)."""
    cmd_pids = {p["pid"] for _, _, p in cmd}
    assert len(cmd_pids) < len(cmd)
    hunt.execute("j_pid = JOIN allp, procs BY pid, pid")
    rows = hunt.get_variable("j_pid", deref=False)
    assert sorted(r["pid"] for r in rows) == sorted(
        p["pid"] for _, p in processes if p["pid"] in cmd_pids)
    assert len({r["id"] for r in rows}) == len(rows) == hunt.variable_summary("j_pid").occurrences


def test_join_takes_what_an_entity_lacks_from_the_first_match(hunt, cmd):
    """An attribute the left entity lacks comes from the first matching right entity in
    the right variable's order: sorted latest first, the latest record of its pid."""
    hunt.execute("j_times = TIMESTAMPED(procs)\n"
                 "j_late = SORT j_times BY first_observed DESC\n"
                 "j_seen = JOIN procs, j_late BY pid, pid")
    latest = {}
    for _, seen, p in cmd:
        latest[p["pid"]] = max(latest.get(p["pid"], seen), seen, key=datetime.fromisoformat)
    assert len(set(latest.values())) > 1
    rows = hunt.get_variable("j_seen", deref=False)
    assert len(rows) == len(cmd)
    assert all(datetime.fromisoformat(str(r["first_observed"]).replace(" ", "T"))
               == datetime.fromisoformat(latest[r["pid"]]) for r in rows), rows
