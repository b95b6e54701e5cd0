"""FIND along references no STIX relation names: custom ones of extension objects
(x-oca-event's process_ref, file_ref, host_ref, x-oca-asset's ip_refs, x-ibm-finding's
src_ip_ref, ...) and STIX ones such as resolves_to_refs, as CONTAINED: the holder
contains what it points to.  Expected values come from the raw JSON: what each
reference points to in its own record."""

import json
import uuid
from collections import Counter

import pytest

from kestrel.completion import keyword_syntax
from kestrel.errors import UnsupportedRelation
from kestrel.session import Session


def records(path):
    return [o for o in json.loads(path.read_text())["objects"] if o["type"] == "observed-data"]


def targets(record, obj):
    """What `obj`'s references (every *_ref and *_refs) point to in its record."""
    for name, value in obj.items():
        if name.endswith(("_ref", "_refs")):
            for key in value if isinstance(value, list) else [value]:
                if key in record["objects"]:
                    yield record["objects"][key]


def contained(recs, holds, kind):
    """The `kind` objects that objects for which `holds` is true point to."""
    return [t for r in recs for o in r["objects"].values() if holds(o)
            for t in targets(r, o) if t["type"] == kind]


def containing(recs, kind, test):
    """The `kind` objects that point to an object for which `test` is true."""
    return [o for r in recs for o in r["objects"].values()
            if o["type"] == kind and any(test(t) for t in targets(r, o))]


def linked(recs, holds, kind):
    """The `kind` objects of the records holding an object for which `holds` is true."""
    return [o for r in recs if any(holds(x) for x in r["objects"].values())
            for o in r["objects"].values() if o["type"] == kind]


def of_type(kind):
    return lambda o: o["type"] == kind


def values(session, name, *keys):
    return {tuple(row.get(k) for k in keys) for row in session.get_variable(name, deref=False)}


@pytest.fixture(scope="module")
def nt2(shared_data):
    return shared_data / "test_bundle_nt_2.json"


@pytest.fixture(scope="module")
def log4shell(shared_data):
    return shared_data / "log4shell_bundle.json"


@pytest.fixture(scope="module")
def hunt(nt2, log4shell, module_store_url):
    """ECS events (`events`) and QRadar findings (`findings`), one GET per bundle: a second
    GET of the same records would store their events again as new entities."""
    with Session(session_id=f"fc_{uuid.uuid4().hex[:12]}", store_path=module_store_url) as s:
        s.execute(f"events = GET x-oca-event FROM '{nt2}'\n"
                  f"findings = GET x-ibm-finding FROM '{log4shell}'")
        yield s


@pytest.mark.parametrize("kind, keys", [
    ("process", ("pid", "name")),       # process_ref and parent_process_ref
    ("file", ("name",)),                # file_ref: not the processes' binaries
    ("user-account", ("user_id",)),     # user_ref
    ("x-oca-asset", ("hostname",)),     # host_ref
])
def test_what_events_contain(hunt, nt2, kind, keys):
    name = f"fc_{kind.replace('-', '_')}"
    hunt.execute(f"{name} = FIND {kind} CONTAINED BY events")
    want = {tuple(o.get(k) for k in keys)
            for o in contained(records(nt2), of_type("x-oca-event"), kind)}
    assert want
    assert values(hunt, name, *keys) == want


def test_references_are_not_the_whole_record(hunt, nt2):
    """A file event's record also holds its process's binary: LINKED finds both, the
    event's file_ref one."""
    recs = records(nt2)
    mine = {o["name"] for o in contained(recs, of_type("x-oca-event"), "file")}
    near = {o["name"] for o in linked(recs, of_type("x-oca-event"), "file")}
    assert mine < near
    hunt.execute("fc_files = FIND file CONTAINED BY events\n"
                 "fc_near = FIND file LINKED events")
    assert values(hunt, "fc_files", "name") == {(n,) for n in mine}
    assert values(hunt, "fc_near", "name") == {(n,) for n in near}


def test_events_containing_processes(hunt, nt2):
    """The other way: the events pointing to an smss.exe process, each event once."""
    want = Counter((e["created"], e["action"]) for e in containing(
        records(nt2), "x-oca-event", lambda t: t.get("name") == "smss.exe"))
    assert 0 < sum(want.values()) < len(records(nt2))
    hunt.execute("fc_p = FIND process CONTAINED BY events\n"
                 "fc_smss = GET process FROM fc_p WHERE name = 'smss.exe'\n"
                 "fc_smss_events = FIND x-oca-event CONTAINED fc_smss")
    got = Counter((r["created"], r["action"])
                  for r in hunt.get_variable("fc_smss_events", deref=False))
    assert got == want


def test_addresses_of_hosts(hunt, nt2):
    """x-oca-asset's ip_refs and mac_refs, lists kept apart from the record's traffic
    addresses."""
    recs = records(nt2)
    ips = {o["value"] for o in contained(recs, of_type("x-oca-asset"), "ipv4-addr")}
    macs = {o["value"] for o in contained(recs, of_type("x-oca-asset"), "mac-addr")}
    assert ips < {o["value"] for o in linked(recs, of_type("x-oca-asset"), "ipv4-addr")}
    assert macs
    hunt.execute("fc_hosts = FIND x-oca-asset CONTAINED BY events\n"
                 "fc_host_ips = FIND ipv4-addr CONTAINED BY fc_hosts\n"
                 "fc_host_macs = FIND mac-addr CONTAINED BY fc_hosts")
    assert values(hunt, "fc_host_ips", "value") == {(v,) for v in ips}
    assert values(hunt, "fc_host_macs", "value") == {(v,) for v in macs}


def test_findings_and_their_addresses(hunt, log4shell):
    """x-ibm-finding's src_ip_ref and dst_ip_ref both ways, then the MAC addresses the
    addresses resolve to (resolves_to_refs, STIX, named by no relation).  0.0.0.0 is in
    every record but only some findings point to it; the prefetch (of the records
    holding 0.0.0.0 or a finding pointing to it) stores no second copy of them."""
    recs = records(log4shell)
    finding = of_type("x-ibm-finding")
    ips = {o["value"] for o in contained(recs, finding, "ipv4-addr")}
    macs = {t["value"] for r in recs for o in r["objects"].values()
            if o["type"] == "ipv4-addr" and o["value"] in ips
            for t in targets(r, o) if t["type"] == "mac-addr"}
    zero = Counter(f["start"] for f in containing(
        recs, "x-ibm-finding", lambda t: t.get("value") == "0.0.0.0"))
    assert 0 < sum(zero.values()) < len(linked(recs, lambda o: o.get("value") == "0.0.0.0",
                                               "x-ibm-finding"))
    hunt.execute("fc_ips = FIND ipv4-addr CONTAINED BY findings\n"
                 "fc_macs = FIND mac-addr CONTAINED BY fc_ips\n"
                 "fc_zero = GET ipv4-addr FROM fc_ips WHERE value = '0.0.0.0'\n"
                 "fc_zero_findings = FIND x-ibm-finding CONTAINED fc_zero")
    assert values(hunt, "fc_ips", "value") == {(v,) for v in ips}
    assert values(hunt, "fc_macs", "value") == {(v,) for v in macs}
    assert Counter(r["start"] for r in hunt.get_variable("fc_zero_findings", deref=False)) \
        == zero


def test_payloads_of_events(hunt, log4shell):
    """x-oca-event's original_ref: the raw log each event was read from."""
    recs = records(log4shell)
    want = {o["payload_bin"] for o in contained(recs, of_type("x-oca-event"), "artifact")}
    assert want
    hunt.execute("fc_ev4 = FIND x-oca-event LINKED findings\n"
                 "fc_raw = FIND artifact CONTAINED BY fc_ev4")
    assert values(hunt, "fc_raw", "payload_bin") == {(p,) for p in want}


def test_the_hint_names_the_custom_relation(hunt):
    with pytest.raises(UnsupportedRelation) as caught:
        hunt.execute("fc_bad = FIND process OWNED events")
    assert caught.value.message == "no relation OWNED from x-oca-event (events) to process"
    assert caught.value.hint == ("possible: FIND process CONTAINED BY events, "
                                 "FIND process LINKED events")


def test_shift_tab_on_contained_tells_of_custom_references():
    assert "x-oca-event's process_ref" in keyword_syntax("contained")


def test_target_types_come_from_the_data(hunt, log4shell):
    """By its name src_ip_ref may point to an IPv6 address too (firepit says so), but no
    stored finding's does: no relation, rather than an empty result."""
    pointed = {t["type"] for r in records(log4shell) for o in r["objects"].values()
               if o["type"] == "x-ibm-finding" for t in targets(r, o)}
    assert pointed == {"ipv4-addr"}
    with pytest.raises(UnsupportedRelation) as caught:
        hunt.execute("fc_v6 = FIND ipv6-addr CONTAINED BY findings")
    assert caught.value.message == ("no relation CONTAINED BY from x-ibm-finding (findings) "
                                    "to ipv6-addr")
    assert caught.value.hint == "possible: FIND ipv6-addr LINKED findings"


ALERTS = {"type": "bundle", "id": "bundle--5b4d9f0e-1c51-4f0b-9d0e-3f1b2a6c7d80", "objects": [
    {"type": "observed-data", "id": f"observed-data--5b4d9f0e-1c51-4f0b-9d0e-3f1b2a6c7d8{i}",
     "created": "2023-03-01T10:00:00.000Z", "modified": "2023-03-01T10:00:00.000Z",
     "first_observed": f"2023-03-01T10:0{i}:00.000Z",
     "last_observed": f"2023-03-01T10:0{i}:00.000Z", "number_observed": 1,
     "objects": {
         "0": {"type": "x-acme-alert", "rule": f"rule-{i}", "subject_ref": "1",
               "evidence_refs": ["2", "3"]},
         "1": {"type": "process", "pid": 100 + i, "name": f"tool{i}.exe", "binary_ref": "2"},
         "2": {"type": "file", "name": f"tool{i}.exe"},
         "3": {"type": "file", "name": f"loot{i}.zip"},
         "4": {"type": "file", "name": f"unrelated{i}.txt"}}}
    for i in range(1, 4)]}


def test_references_no_one_knows(store_url, tmp_path):
    """An extension object Kestrel and firepit have never heard of: its references are
    followed as the stored data has them, both ways; a type it does not point to has
    no relation."""
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps(ALERTS))
    recs = ALERTS["objects"]
    alert = of_type("x-acme-alert")
    with Session(session_id=f"fc_{uuid.uuid4().hex[:12]}", store_path=store_url) as s:
        s.execute(f"alerts = GET x-acme-alert FROM '{path}'\n"
                  "subjects = FIND process CONTAINED BY alerts\n"
                  "evidence = FIND file CONTAINED BY alerts\n"
                  "zips = GET file FROM evidence WHERE name LIKE '%.zip'\n"
                  "zip_alerts = FIND x-acme-alert CONTAINED zips")
        assert values(s, "subjects", "pid", "name") == {
            (o["pid"], o["name"]) for o in contained(recs, alert, "process")}
        assert values(s, "evidence", "name") == {
            (o["name"],) for o in contained(recs, alert, "file")}
        assert values(s, "zip_alerts", "rule") == {(o["rule"],) for o in containing(
            recs, "x-acme-alert", lambda t: t.get("name", "").endswith(".zip"))}
        with pytest.raises(UnsupportedRelation):
            s.execute("users = FIND user-account CONTAINED BY alerts")


def test_references_follow_what_is_stored(store_url, nt2, log4shell):
    """The relations change as data comes in, and a reopened store reads them back: the
    log4shell events point to no process; once the ECS events are stored, events do."""
    assert not contained(records(log4shell), of_type("x-oca-event"), "process")
    want = {(o["pid"], o.get("name"))
            for o in contained(records(nt2), of_type("x-oca-event"), "process")}
    session_id = f"fc_{uuid.uuid4().hex[:12]}"
    with Session(session_id=session_id, store_path=store_url) as s:
        s.execute(f"ev4 = GET x-oca-event FROM '{log4shell}'")
        with pytest.raises(UnsupportedRelation):
            s.execute("p4 = FIND process CONTAINED BY ev4")
        s.execute(f"events = GET x-oca-event FROM '{nt2}'\n"
                  "procs = FIND process CONTAINED BY events")
        assert values(s, "procs", "pid", "name") == want
    with Session(session_id=session_id, store_path=store_url) as s:
        s.execute("again = FIND process CONTAINED BY events")
        assert values(s, "again", "pid", "name") == want
