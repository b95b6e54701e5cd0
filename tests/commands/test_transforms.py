"""TIMESTAMPED, ADDOBSID and RECORDS: entities with their records' times and ids, and the
records themselves, in DISP and in assignments."""

from datetime import datetime

from kestrel.results import Table


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


def test_records_of_all_processes(hunt, records):
    """RECORDS gives each observed-data holding an entity once, with its own attributes."""
    hunt.execute("t_recs = RECORDS(allp)")
    want = {r["id"]: r["first_observed"] for r in records
            if any(o["type"] == "process" for o in r["objects"].values())}
    rows = hunt.get_variable("t_recs", deref=False)
    assert len(rows) == len(want)
    assert {r["id"]: r["first_observed"] for r in rows} == want


def test_timestamped_rows_filter_by_time(hunt, processes):
    """A TIMESTAMPED variable holds a row per entity and record: WHERE may use its time
    (compared as text, so the bound has a fraction of a second, as the data's times do)."""
    since = "2019-11-16T13:30:00.000Z"
    hunt.execute(f"t_late = TIMESTAMPED(allp) WHERE first_observed >= '{since}'")
    want = sorted((r["first_observed"], p["pid"]) for r, p in processes
                  if datetime.fromisoformat(r["first_observed"]) >= datetime.fromisoformat(since))
    assert 0 < len(want) < len(processes)
    assert sorted((r["first_observed"], r["pid"])
                  for r in hunt.get_variable("t_late", deref=False)) == want


def test_addobsid_of_a_find_result(hunt, processes):
    """The records of children found by FIND: those holding each WMIC.exe under cmd.exe."""
    hunt.execute("t_kids = FIND process CREATED BY procs\n"
                 "t_obs = ADDOBSID(t_kids)")
    want = sorted((r["id"], p["pid"]) for r, p in processes
                  if r["objects"].get(p.get("parent_ref"), {}).get("name") == "cmd.exe")
    assert want
    assert sorted((r["observation_id"], r["pid"])
                  for r in hunt.get_variable("t_obs", deref=False)) == want
