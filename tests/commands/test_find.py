"""FIND: entities related to a variable's through STIX references (CREATED, CREATED BY,
OWNED, ACCEPTED) or held by the same records (LINKED), with WHERE, LIMIT and time ranges."""

import json
import uuid
from datetime import datetime

import pytest

from kestrel.errors import UnsupportedRelation, VariableNotFound
from kestrel.session import Session


def referenced(processes, name, reference):
    """What the processes named `name` point to by `reference`, in their own records."""
    return [r["objects"][p[reference]] for r, p in processes
            if p["name"] == name and reference in p]


def children(processes, name):
    """The processes whose parent_ref points to a process named `name`."""
    return [p for r, p in processes
            if r["objects"].get(p.get("parent_ref"), {}).get("name") == name]


def test_children_and_parents(hunt, processes):
    hunt.execute("f_kids = FIND process CREATED BY procs\n"
                 "f_parents = FIND process CREATED procs")
    for variable, want in (("f_kids", children(processes, "cmd.exe")),
                           ("f_parents", referenced(processes, "cmd.exe", "parent_ref"))):
        assert want
        assert sorted((r["name"], r["pid"]) for r in hunt.get_variable(variable, deref=False)) \
            == sorted((p["name"], p["pid"]) for p in want)


def test_where_and_limit(hunt, processes):
    kids = [p["pid"] for p in children(processes, "cmd.exe")]
    hunt.execute("f_late = FIND process CREATED BY procs WHERE pid > 10000\n"
                 "f_two = FIND process CREATED BY procs LIMIT 2")
    assert sorted(r["pid"] for r in hunt.get_variable("f_late", deref=False)) == sorted(
        p for p in kids if p > 10000)
    two = [r["pid"] for r in hunt.get_variable("f_two", deref=False)]
    assert len(two) == 2 and set(two) <= set(kids)


def test_connections_and_their_addresses(hunt, processes):
    """network-traffic CREATED BY processes, then the addresses that created (sent) and
    accepted (received) it."""
    ports, senders, receivers = [], set(), set()
    for r, p in processes:
        if p["name"] != "wdsync.exe":
            continue
        for key in p.get("opened_connection_refs", []):
            traffic = r["objects"][key]
            ports.append((traffic["src_port"], traffic["dst_port"]))
            for addresses, ref in ((senders, "src_ref"), (receivers, "dst_ref")):
                if r["objects"][traffic[ref]]["type"] == "ipv4-addr":
                    addresses.add(r["objects"][traffic[ref]]["value"])
    assert ports and senders and receivers
    hunt.execute("f_wd = GET process FROM allp WHERE name = 'wdsync.exe'\n"
                 "f_nt = FIND network-traffic CREATED BY f_wd\n"
                 "f_src = FIND ipv4-addr CREATED f_nt\n"
                 "f_dst = FIND ipv4-addr ACCEPTED f_nt")
    assert sorted((r["src_port"], r["dst_port"]) for r in hunt.get_variable("f_nt")) == sorted(
        ports)
    assert {r["value"] for r in hunt.get_variable("f_src")} == senders
    assert {r["value"] for r in hunt.get_variable("f_dst")} == receivers


def test_owners(hunt, processes):
    hunt.execute("f_users = FIND user-account OWNED procs")
    users = {u["user_id"] for u in referenced(processes, "cmd.exe", "creator_user_ref")}
    assert users
    assert {r["user_id"] for r in hunt.get_variable("f_users")} == users


def test_unsupported_relation_suggests_one(hunt):
    with pytest.raises(UnsupportedRelation) as caught:
        hunt.execute("f_bad = FIND file OWNED procs")
    assert caught.value.message == "no relation OWNED from process (procs) to file"
    assert caught.value.hint == "possible: FIND file LINKED procs, FIND file LOADED BY procs"
    assert "f_bad" not in hunt.get_variable_names()


def test_unknown_variable(hunt):
    with pytest.raises(VariableNotFound) as caught:
        hunt.execute("f_none = FIND process CREATED BY nosuch")
    assert caught.value.message.startswith('variable "nosuch" is not defined (defined: allp, ')


# ------------------------------------------------------------------ LINKED


def held_with(records, kind, holds):
    """The `kind` objects of the records that hold an object for which `holds` is true."""
    return [o for r in records if any(holds(x) for x in r["objects"].values())
            for o in r["objects"].values() if o["type"] == kind]


def named(name):
    return lambda o: o["type"] == "process" and o.get("name") == name


def test_linked_is_what_shares_a_record(hunt, records):
    """As in v1, whatever the types and their references: the addresses in the records
    of the svchost.exe processes (no STIX reference joins an address to a process)."""
    hunt.execute("f_svc = GET process FROM allp WHERE name = 'svchost.exe'\n"
                 "f_svc_ips = FIND ipv4-addr LINKED f_svc")
    want = {o["value"] for o in held_with(records, "ipv4-addr", named("svchost.exe"))}
    assert want
    assert {r["value"] for r in hunt.get_variable("f_svc_ips")} == want


def test_linked_beyond_declared_references(hunt, records, processes):
    """Where a relation is declared, LINKED still takes the whole record: the files of
    WMIC's records are its binary and its parent's (cmd.exe), LOADED BY gives one."""
    wmic = lambda o: o["type"] == "process" and o.get("command_line", "").startswith("wmic")
    hunt.execute("f_wmic = GET process FROM allp WHERE command_line LIKE 'wmic%'\n"
                 "f_wmic_files = FIND file LINKED f_wmic\n"
                 "f_wmic_bins = FIND file LOADED BY f_wmic")
    linked = {o["name"] for o in held_with(records, "file", wmic)}
    loaded = {r["objects"][p["binary_ref"]]["name"] for r, p in processes if wmic(p)}
    assert loaded < linked
    assert {r["name"] for r in hunt.get_variable("f_wmic_files")} == linked
    assert {r["name"] for r in hunt.get_variable("f_wmic_bins")} == loaded


def test_linked_of_one_type_holds_the_entities_themselves(hunt, records):
    """Processes LINKED to processes: every process of their records, themselves included
    (as in v1), each once: FIND's prefetch stores no second copy of records the store
    holds, whose processes (no unique id) firepit would store again as new entities."""
    hunt.execute("f_same = FIND process LINKED procs")
    want = sorted((p["name"], p["pid"]) for p in held_with(records, "process", named("cmd.exe")))
    assert len(want) > len(hunt.get_variable("procs"))
    assert sorted((r["name"], r["pid"]) for r in hunt.get_variable("f_same", deref=False)) == want


def test_linked_with_where_and_limit(hunt, records):
    hunt.execute("f_svc2 = GET process FROM allp WHERE name = 'svchost.exe'\n"
                 "f_local = FIND ipv4-addr LINKED f_svc2 WHERE value LIKE '192.168.%'\n"
                 "f_two = FIND ipv4-addr LINKED f_svc2 WHERE value LIKE '192.168.%' LIMIT 2")
    want = {o["value"] for o in held_with(records, "ipv4-addr", named("svchost.exe"))
            if o["value"].startswith("192.168.")}
    assert len(want) > 2
    assert {r["value"] for r in hunt.get_variable("f_local")} == want
    two = [r["value"] for r in hunt.get_variable("f_two")]
    assert len(two) == 2 and set(two) <= want


def test_linked_in_a_time_range_is_the_records(hunt, records):
    """START/STOP keep the links made by records within the range: an address seen then,
    but with svchost.exe only at other times, is not linked."""
    start, stop = "2019-11-16T13:20:00Z", "2019-11-16T13:40:00Z"
    within = [r for r in records if datetime.fromisoformat(start) <= datetime.fromisoformat(
        r["first_observed"]) < datetime.fromisoformat(stop)]
    want = {o["value"] for o in held_with(within, "ipv4-addr", named("svchost.exe"))}
    seen = {o["value"] for o in held_with(within, "ipv4-addr", lambda o: True)}
    ever = {o["value"] for o in held_with(records, "ipv4-addr", named("svchost.exe"))}
    assert want < ever & seen
    hunt.execute("f_svc3 = GET process FROM allp WHERE name = 'svchost.exe'\n"
                 f"f_then = FIND ipv4-addr LINKED f_svc3 START {start} STOP {stop}")
    assert {r["value"] for r in hunt.get_variable("f_then")} == want


def test_linked_in_the_last_days(hunt, records):
    """LAST reaches back from now: the 2019 records are within 100,000 days, not 1."""
    hunt.execute("f_svc4 = GET process FROM allp WHERE name = 'svchost.exe'\n"
                 "f_recent = FIND ipv4-addr LINKED f_svc4 LAST 1 DAYS\n"
                 "f_ages = FIND ipv4-addr LINKED f_svc4 LAST 100000 DAYS")
    assert hunt.get_variable("f_recent") == []
    assert {r["value"] for r in hunt.get_variable("f_ages")} == {
        o["value"] for o in held_with(records, "ipv4-addr", named("svchost.exe"))}


def bundle_records(path):
    return [o for o in json.loads(path.read_text())["objects"] if o["type"] == "observed-data"]


def test_linked_through_extension_objects(store_url, shared_data):
    """x-oca-event's custom references (process_ref, parent_process_ref, original_ref)
    stay inside their record, so LINKED follows them both ways; so does a record's
    address that no reference names (log4shell's 0.0.0.0).  One GET per bundle: a second
    GET of the same records would store their events and processes again as new
    entities (firepit gives them no identity), which LINKED would find too."""
    ecs, log4shell = shared_data / "test_bundle_nt_2.json", shared_data / "log4shell_bundle.json"
    created = lambda o: o["type"] == "x-oca-event" and o.get("action", "").startswith(
        "Process Create")
    any_event = lambda o: o["type"] == "x-oca-event"
    with Session(session_id=f"linked_{uuid.uuid4().hex[:12]}", store_path=store_url) as s:
        s.execute(f"events = GET x-oca-event FROM '{ecs}'\n"
                  "ev = GET x-oca-event FROM events WHERE action LIKE 'Process Create%'\n"
                  "ev_procs = FIND process LINKED ev\n"
                  "smss = GET process FROM ev_procs WHERE name = 'smss.exe'\n"
                  "smss_events = FIND x-oca-event LINKED smss\n"
                  f"ev4 = GET x-oca-event FROM '{log4shell}'\n"
                  "ev4_ips = FIND ipv4-addr LINKED ev4\n"
                  "ev4_payloads = FIND artifact LINKED ev4")
        procs = held_with(bundle_records(ecs), "process", created)
        assert sorted((p.get("name", ""), p["pid"]) for p in procs) == sorted(
            (r["name"] or "", r["pid"]) for r in s.get_variable("ev_procs", deref=False))
        events = held_with(bundle_records(ecs), "x-oca-event", named("smss.exe"))
        assert events and sorted((e["created"], e["action"]) for e in events) == sorted(
            (r["created"], r["action"]) for r in s.get_variable("smss_events", deref=False))
        addresses = {o["value"] for o in held_with(bundle_records(log4shell), "ipv4-addr",
                                                   any_event)}
        assert "0.0.0.0" in addresses
        assert {r["value"] for r in s.get_variable("ev4_ips")} == addresses
        assert {r["payload_bin"] for r in s.get_variable("ev4_payloads")} == {
            o["payload_bin"] for o in held_with(bundle_records(log4shell), "artifact",
                                                any_event)}


def test_linked_reads_the_record_table_by_index(tmp_path, bundle):
    """SQLite: LINKED goes from the input's ids to their records and back through
    __contains' indexes (firepit gives SQLite's __contains none), not a scan per entity."""
    with Session(session_id="linked_plan", store_path=str(tmp_path / "s.db")) as session:
        session.execute(f"svc = GET process FROM '{bundle}' WHERE name = 'svchost.exe'")
        connection, ran = session._store.fp.connection, []
        connection.set_trace_callback(ran.append)
        session.execute("near = FIND ipv4-addr LINKED svc START 2019-11-16T13:00:00Z "
                        "STOP 2019-11-16T13:10:00Z")
        connection.set_trace_callback(None)
        # the ids found are noted once, and the variable's view joins from them
        (found,) = [sql for sql in ran if sql.startswith('INSERT INTO "__queries"')]
        plan = " | ".join(row["detail"] for row in connection.execute(
            f"EXPLAIN QUERY PLAN {found}"))
        assert "__contains_target_source" in plan and "__contains_source_target" in plan, plan
        assert "SCAN __contains" not in plan and "SCAN c" not in plan, plan
