"""What FIND's EXPLAIN lines tell a hunter about its prefetch: which records it asked the
data source for (by what, in which time range), or why it asked for none and used the
stored records.  Facts in the notes (values, windows, counts) come from the raw JSON."""

import json
import uuid
from datetime import datetime, timedelta

import pytest

from kestrel.session import Session

STORED = "FIND used the records already stored"


def records(path):
    return [o for o in json.loads(path.read_text())["objects"] if o["type"] == "observed-data"]


def holding(recs, test):
    """The records holding an object for which `test` is true."""
    return [r for r in recs if any(test(o) for o in r["objects"].values())]


def moment(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def stamp(when):
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def window(recs):
    """The prefetch window of a variable: its records' time range, widened by the
    default offsets (-300 s, +300 s)."""
    start = min(moment(r["first_observed"]) for r in recs) - timedelta(seconds=300)
    stop = max(moment(r["last_observed"]) for r in recs) + timedelta(seconds=300)
    return start, stop


def explained(session, name):
    (result,) = session.execute(f"EXPLAIN {name}")
    return result.lines


@pytest.fixture
def hunt(store_url):
    with Session(session_id=f"fn_{uuid.uuid4().hex[:12]}", store_path=store_url) as session:
        yield session


@pytest.fixture(scope="module")
def doctored(shared_data):
    return shared_data / "doctored-1k.json"


def cmd(o):
    return o["type"] == "process" and o.get("name") == "cmd.exe"


def test_bundle_processes_are_not_prefetched(hunt, doctored):
    """A bundle gives each record its own process unless it has an x_unique_id, so its
    pid finds no other record of it: the note says that, and nothing is asked."""
    assert not any("x_unique_id" in o for r in records(doctored)
                   for o in r["objects"].values() if cmd(o))
    hunt.execute(f"procs = GET process FROM '{doctored}' WHERE name = 'cmd.exe'\n"
                 "kids = FIND process CREATED BY procs")
    found = [line for line in explained(hunt, "kids") if "prefetch" in line]
    assert found == [
        f"    {doctored}: no prefetch: procs has no x_unique_id to ask the data source for "
        "other records by (in this data source each record has its own process, whatever "
        f"its pid); {STORED}"]


def test_the_found_accounts_records_are_asked_for(hunt, doctored):
    """The accounts FIND found are the same entity in every record: their other records,
    by user_id, in the processes' time range, are what the bundle was read for."""
    recs = records(doctored)
    mine = holding(recs, cmd)
    users = {r["objects"][o["creator_user_ref"]]["user_id"] for r in mine
             for o in r["objects"].values() if cmd(o) and "creator_user_ref" in o}
    start, stop = window(mine)
    asked = [r for r in recs if start <= moment(r["first_observed"]) < stop and any(
        o["type"] == "user-account" and o.get("user_id") in users
        for o in r["objects"].values())]
    assert users and len(asked) > len(mine)
    hunt.execute(f"procs = GET process FROM '{doctored}' WHERE name = 'cmd.exe'\n"
                 "users = FIND user-account OWNED procs")
    lines = explained(hunt, "users")
    values = f"{len(users)} value{'' if len(users) == 1 else 's'}"
    at = lines.index(f"    {doctored}: prefetch: the other records of the user-account "
                     f"entities found, by user_id ({values}), {stamp(start)} to {stamp(stop)}")
    assert lines[at + 1] == (f"    {doctored}: prefetch: read 1 bundle file(s) from {doctored}: "
                             f"{len(recs)} observations, {len(asked)} in the time range "
                             "matching the pattern")


def test_addresses_say_what_was_asked_and_traffic_why_not(hunt, doctored):
    """An address is asked for by its value, with the traffic pointing at it; a bundle's
    network-traffic is its record's own, whatever its ports, so none is asked for."""
    recs = records(doctored)
    mine = holding(recs, lambda o: o["type"] == "ipv4-addr" and o["value"] == "192.168.1.1")
    start, stop = window(mine)
    hunt.execute(f"ips = GET ipv4-addr FROM '{doctored}' WHERE value = '192.168.1.1'\n"
                 "conns = FIND network-traffic ACCEPTED BY ips\n"
                 "peers = FIND ipv4-addr CREATED conns")
    lines = explained(hunt, "peers")
    assert lines[lines.index("conns = FIND network-traffic ACCEPTED BY ips") + 1] == (
        f"    {doctored}: prefetch: the records holding the ipv4-addr entities of ips, by "
        "value (1 value), or a network-traffic referring to them by dst_ref, "
        f"{stamp(start)} to {stamp(stop)}")
    assert lines[lines.index("peers = FIND ipv4-addr CREATED conns") + 1] == (
        f"    {doctored}: no prefetch: in this data source each record has its own "
        "network-traffic, whatever its src_port and dst_port, so no other record holds the "
        f"entities of conns; {STORED}")


def test_types_nothing_identifies(hunt, shared_data):
    """Kestrel knows no attribute that makes two records' x-oca-events one."""
    bundle = shared_data / "test_bundle_nt_2.json"
    hunt.execute(f"events = GET x-oca-event FROM '{bundle}'\n"
                 "ev_procs = FIND process LINKED events")
    assert explained(hunt, "ev_procs")[-1] == (
        f"    {bundle}: no prefetch: Kestrel knows no attribute that identifies an x-oca-event "
        f"across records, so the data source cannot be asked for other records of events; "
        f"{STORED}")


def test_an_empty_variable_has_nothing_to_look_up(hunt, doctored):
    assert not holding(records(doctored), lambda o: o.get("name") == "no-such.exe")
    hunt.execute(f"none = GET process FROM '{doctored}' WHERE name = 'no-such.exe'\n"
                 "none_kids = FIND process CREATED BY none")
    assert explained(hunt, "none_kids")[-1] == (
        f"    {doctored}: no prefetch: no record holds an entity of none, so there is nothing "
        f"to look up; {STORED}")


def test_prefetch_turned_off(store_url, doctored, tmp_path, monkeypatch):
    """The configuration, not the data, kept FIND from asking: the note says which."""
    (tmp_path / "kestrel.yaml").write_text("prefetch_find: false\n")
    monkeypatch.setenv("KESTREL_CONFIG", str(tmp_path / "kestrel.yaml"))
    with Session(session_id=f"fn_{uuid.uuid4().hex[:12]}", store_path=store_url) as session:
        session.execute(f"procs = GET process FROM '{doctored}' WHERE name = 'cmd.exe'\n"
                        "parents = FIND process CREATED procs")
        assert explained(session, "parents")[-1] == (
            f"    {doctored}: {STORED}: prefetch_find is off in the configuration")
