"""Distinct entities (#19): summaries, INFO, DISP's rows and LIMIT count entities by their
identity (kestrel/identity.py), beside the occurrences and records that hold them, on
SQLite and PostgreSQL.  Expected counts come from the raw bundles through the oracle in
tests/identities.py, never from Kestrel's output."""

import json
import re
import subprocess
import sys
import uuid

import pytest
from identities import entities, host, objects

from kestrel.results import Table
from kestrel.session import Session

# (bundle, entity type): every rule of the table on real data — STIX properties with
# references (network-traffic), hashes (file), processes with and without x_unique_id
# and with hosts, types without STIX properties (x-ecs-process, x-qradar)
CASES = [("doctored-1k.json", t) for t in ("process", "ipv4-addr", "ipv6-addr", "user-account",
                                            "network-traffic", "directory", "file")]
CASES += [("powershell_search_stix_result.json", t) for t in ("process", "file", "x-cbcloud")]
CASES += [("test_bundle.json", t) for t in ("network-traffic", "user-account", "url")]
CASES += [("test_bundle_nt_2.json", t) for t in ("process", "x-ecs-process", "x-oca-asset",
                                                 "mac-addr", "x-ecs-user", "file")]
CASES += [("log4shell_bundle.json", t) for t in ("artifact", "network-traffic", "x-qradar")]


@pytest.fixture(scope="module")
def session(module_store_url):
    with Session(session_id=f"ident_{uuid.uuid4().hex[:12]}",
                 store_path=module_store_url) as session:
        yield session


def table(session, statement) -> Table:
    (found,) = [r for r in session.execute(statement) if isinstance(r, Table)]
    return found


@pytest.mark.parametrize("bundle, entity_type", CASES, ids=lambda v: v.removesuffix(".json"))
def test_summary_and_disp_count_entities(session, shared_data, bundle, entity_type):
    """The summary's entities, INFO's and DISP's rows are the distinct entities by the
    rule; the records are those holding an object of the type."""
    pairs = objects(shared_data / bundle, entity_type)
    name = f"v_{uuid.uuid4().hex[:8]}"
    (summary,) = session.execute(f"{name} = GET {entity_type} FROM '{shared_data / bundle}'")
    assert (summary.entities, summary.records) == (len(entities(pairs)),
                                                   len({r["id"] for r, _ in pairs}))
    (info,) = session.execute(f"INFO {name}")
    assert f"entities: {summary.entities}" in info.lines
    shown = table(session, f"DISP {name} LIMIT 100000")
    assert shown.total == len(shown.dataframe) == summary.entities


def test_svchost_is_five_processes_seen_704_times(session, shared_data):
    """The issue's example: processes without x_unique_id get a firepit id per record."""
    pairs = objects(shared_data / "doctored-1k.json", "process")
    svchost = [(r, p) for r, p in pairs if p["name"] == "svchost.exe"]
    (summary,) = session.execute(f"procs = GET process FROM '{shared_data}/doctored-1k.json' "
                                 "WHERE name = 'svchost.exe'")
    assert (summary.entities, summary.occurrences, summary.records) == (
        len(entities(svchost)), len(svchost), len({r["id"] for r, _ in svchost}))
    assert summary.to_text().startswith(
        f"procs: {len(entities(svchost))} process entities ({len(svchost)} occurrences) in "
        f"{len({r['id'] for r, _ in svchost})} records (GET, ")
    (info,) = session.execute("INFO procs")
    assert info.lines[1:4] == [f"entities: {summary.entities}",
                               f"occurrences: {summary.occurrences}",
                               f"records: {summary.records}"]
    assert session.inspect("procs", 2).to_text().startswith(f"procs: {summary.counts()}\n")
    # the variable keeps every occurrence as stored
    assert len(session.get_variable("procs")) == len(svchost)


def test_a_process_on_several_hosts_is_one_entity_per_host(session, shared_data):
    """test_bundle_nt_2: pid 4 on three hosts (x-oca-asset in the same record) and two
    smss.exe: five processes, where pid and name alone would say three; DISP shows the
    host that tells them apart."""
    pairs = objects(shared_data / "test_bundle_nt_2.json", "process")
    assert len({(p.get("pid"), p.get("name")) for _, p in pairs}) < len(entities(pairs))
    assert len({host(r) for r, _ in pairs}) > 1
    (summary,) = session.execute(
        f"hosts = GET process FROM '{shared_data}/test_bundle_nt_2.json'")
    assert summary.entities == len(entities(pairs))
    rows = table(session, "DISP hosts").to_dict()["rows"]
    assert sorted((r["pid"], r["name"] or "", r["host"]) for r in rows) == sorted(
        {(p["pid"], p.get("name", ""), host(r)) for r, p in pairs})


def test_new_files_count_by_their_hashes(session):
    """NEW keeps `hashes` as one JSON value: two files of one name with different hashes
    are two entities, the same hashes again is the same file."""
    files = [{"type": "file", "name": "a", "hashes": {"SHA-256": h}} for h in "xyx"]
    (summary,) = session.execute(f"hashed = NEW {json.dumps(files)}")
    assert summary.entities == len(entities([({"objects": {}}, f) for f in files])) == 2


def test_limit_counts_entities(store_url, shared_data):
    """FIND ... LIMIT 5 reports 5 and shows 5 rows: the first 5 entities, each with all its
    occurrences, where 5 rows would have held fewer processes (svchost.exe in many
    records); an assignment's LIMIT and OFFSET slice the same way.  A store of its own:
    each GET of the bundle stores its processes again (new ids), and LINKED finds all."""
    pairs = objects(shared_data / "doctored-1k.json", "process")
    linked = [(r, p) for r, p in pairs if any(o.get("user_id") == "SYSTEM"
                                              for o in r["objects"].values())]
    assert len(entities(linked)) > 5

    def occurrences(kept):
        return len([p for _, p in linked if (p["pid"], p["name"]) in kept])

    with Session(session_id=f"limit_{uuid.uuid4().hex[:12]}", store_path=store_url) as session:
        session.execute(f"system = GET user-account FROM '{shared_data}/doctored-1k.json' "
                        "WHERE user_id = 'SYSTEM'")
        (summary,) = session.execute("near = FIND process LINKED system LIMIT 5")
        shown = table(session, "DISP near")
        assert summary.entities == len(shown.dataframe) == shown.total == 5
        kept = {(r["pid"], r["name"]) for r in session.get_variable("near", deref=False)}
        assert summary.occurrences == occurrences(kept)
        (sliced,) = session.execute("some = near LIMIT 2 OFFSET 3")
        some = {(r["pid"], r["name"]) for r in session.get_variable("some", deref=False)}
        assert sliced.entities == len(some) == 2 and some < kept
        assert sliced.occurrences == occurrences(some)


def test_limit_of_a_group_counts_rows(session, shared_data):
    session.execute(f"everything = GET process FROM '{shared_data}/doctored-1k.json'\n"
                    "names = GROUP everything BY name")
    (summary,) = session.execute("few = names LIMIT 3")
    assert summary.grouped and summary.entities == summary.occurrences == 3


def test_the_cli_prints_entities_occurrences_and_records(shared_data, tmp_path):
    """`kestrel FILE` in a subprocess, as a hunter runs it."""
    pairs = objects(shared_data / "doctored-1k.json", "process")
    svchost = [(r, p) for r, p in pairs if p["name"] == "svchost.exe"]
    hunt = tmp_path / "hunt.hf"
    hunt.write_text(f"procs = GET process FROM '{shared_data}/doctored-1k.json' "
                    "WHERE name = 'svchost.exe'\nDISP procs\n")
    done = subprocess.run([sys.executable, "-m", "kestrel", str(hunt)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    want = (f"procs: {len(entities(svchost))} process entities ({len(svchost)} occurrences) "
            f"in {len({r['id'] for r, _ in svchost})} records (GET, ")
    assert done.stdout.startswith(want), done.stdout
    assert re.search(rf"^{len(entities(svchost))} rows$", done.stdout, re.M), done.stdout
