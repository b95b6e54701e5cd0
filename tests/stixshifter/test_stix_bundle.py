"""The real `stix_bundle` connector reading the shared bundles from an HTTP server on
127.0.0.1: GET, EXPLAIN, FIND prefetch, several profiles, paging, errors, redaction.
Expected values come from the bundle JSON with plain Python."""

import asyncio
import json
import threading
import time
import uuid
from datetime import datetime, timedelta

import pytest
from sstools import bundle_profile, free_port

from kestrel.errors import DataSourceError
from kestrel.session import Session

DAY = "START 2019-11-16T00:00:00Z STOP 2019-11-17T00:00:00Z"
NT_DAY = "START 2020-06-30T00:00:00Z STOP 2020-07-01T00:00:00Z"


def _records(shared_data, name):
    bundle = json.loads((shared_data / name).read_text())
    return [o for o in bundle["objects"] if o["type"] == "observed-data"]


def _time(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _conns(record):
    """(src ip, src_port, dst_port) of each network-traffic in a record."""
    objs = record["objects"]
    return {(objs[o["src_ref"]]["value"], o["src_port"], o["dst_port"])
            for o in objs.values() if o["type"] == "network-traffic"}


def _explain(session, name):
    return session.execute(f"EXPLAIN {name}")[0].to_text()


def test_get_returns_the_matching_records(hunt, bundle_http, shared_data):
    hunt.env("web", *bundle_profile(bundle_http, "doctored-1k.json"))
    session = hunt.session()
    session.execute(f"procs = GET process FROM stixshifter://web WHERE name = 'cmd.exe' {DAY}")
    matching = [r for r in _records(shared_data, "doctored-1k.json")
                if any(o.get("type") == "process" and o.get("name") == "cmd.exe"
                       for o in r["objects"].values())]
    pids = {o["pid"] for r in matching for o in r["objects"].values()
            if o.get("type") == "process" and o.get("name") == "cmd.exe"}
    assert {p["pid"] for p in session.get_variable("procs")} == pids
    assert session.variable_summary("procs").records == len(matching)
    assert "stixshifter://web: [process:name = 'cmd.exe'] START t'2019-11-16T00:00:00.000Z' " \
           "STOP t'2019-11-17T00:00:00.000Z'" in _explain(session, "procs")


def test_null_tests_are_matched_by_kestrel(hunt, bundle_http, shared_data):
    """stix-shifter cannot translate EXISTS: the connector gets the pattern without the null
    test (more records), and Kestrel keeps the records and entities that pass it."""
    hunt.env("web", *bundle_profile(bundle_http, "doctored-1k.json"))
    session = hunt.session()
    session.execute("procs = GET process FROM stixshifter://web WHERE name = 'cmd.exe' AND "
                    f"command_line IS NOT NULL {DAY}")
    found = [(r["id"], o["pid"]) for r in _records(shared_data, "doctored-1k.json")
             for o in r["objects"].values() if o.get("type") == "process"
             and o.get("name") == "cmd.exe" and "command_line" in o]
    assert found
    assert sorted(p["pid"] for p in session.get_variable("procs")) == sorted(p for _, p in found)
    assert session.variable_summary("procs").records == len({r for r, _ in found})
    explained = _explain(session, "procs")
    assert "STIX pattern: [process:name = 'cmd.exe' AND EXISTS process:command_line]" in explained
    assert "stixshifter://web: [process:name = 'cmd.exe'] START" in explained


def test_records_are_cut_to_the_window(hunt, bundle_http, shared_data):
    hunt.env("web", *bundle_profile(bundle_http, "doctored-1k.json"))
    session = hunt.session()
    session.execute("p = GET process FROM stixshifter://web WHERE name = 'svchost.exe' "
                    "START 2019-11-16T13:00:00Z STOP 2019-11-16T13:10:00Z")
    start, stop = _time("2019-11-16T13:00:00Z"), _time("2019-11-16T13:10:00Z")
    expected = [r for r in _records(shared_data, "doctored-1k.json")
                if start <= _time(r["first_observed"]) < stop
                and any(o.get("name") == "svchost.exe" for o in r["objects"].values())]
    assert 0 < len(expected) < 700
    assert session.variable_summary("p").records == len(expected)


def test_find_prefetches_records_of_the_variables_entities(hunt, bundle_http, shared_data):
    """srcs come from port-3128 records; their other connections are only in the source."""
    hunt.env("nt", *bundle_profile(bundle_http, "test_bundle.json"))
    session = hunt.session()
    session.execute(f"""conns = GET network-traffic FROM stixshifter://nt WHERE dst_port = 3128
                        {NT_DAY}
                        srcs = FIND ipv4-addr CREATED conns
                        more = FIND network-traffic CREATED BY srcs""")
    records = _records(shared_data, "test_bundle.json")
    proxy = [r for r in records if any(c[2] == 3128 for c in _conns(r))]
    srcs = {c[0] for r in proxy for c in _conns(r) if c[2] == 3128}
    start = min(_time(r["first_observed"]) for r in proxy) - timedelta(seconds=300)
    stop = max(_time(r["last_observed"]) for r in proxy) + timedelta(seconds=300)
    expected = {c[1:] for r in records if start <= _time(r["first_observed"]) < stop
                for c in _conns(r) if c[0] in srcs}
    assert {v["value"] for v in session.get_variable("srcs")} == srcs
    got = {(c["src_port"], c["dst_port"]) for c in session.get_variable("more")}
    assert got == expected
    assert len(expected) > len(proxy)  # more than the GET brought: the prefetch did it
    explain = _explain(session, "more")
    assert "stixshifter://nt: prefetch: [(ipv4-addr:value = '" in explain


def test_find_children_over_the_connector(hunt, bundle_http, shared_data):
    hunt.env("web", *bundle_profile(bundle_http, "doctored-1k.json"))
    session = hunt.session()
    session.execute(f"""procs = GET process FROM stixshifter://web WHERE name = 'cmd.exe' {DAY}
                        kids = FIND process CREATED BY procs""")
    kids = set()
    for r in _records(shared_data, "doctored-1k.json"):
        objs = r["objects"]
        kids |= {o["pid"] for o in objs.values() if o.get("type") == "process"
                 and objs.get(o.get("parent_ref"), {}).get("name") == "cmd.exe"}
    assert {k["pid"] for k in session.get_variable("kids")} == kids
    explain = _explain(session, "kids")
    assert "prefetch: [(process:pid = " in explain and "process:parent_ref.pid = " in explain


def test_several_profiles_in_one_get(hunt, bundle_http, shared_data):
    hunt.env("b2", *bundle_profile(bundle_http, "test_bundle_2.json"))
    hunt.env("b3", *bundle_profile(bundle_http, "test_bundle_3.json"))
    session = hunt.session()
    session.execute("c = GET network-traffic FROM stixshifter://b2,b3 "
                    "START 2020-01-01T00:00:00Z STOP 2021-01-01T00:00:00Z")
    both = _records(shared_data, "test_bundle_2.json") + _records(shared_data, "test_bundle_3.json")
    # the two bundles reuse observed-data ids, so the store keeps one record per id
    assert session.variable_summary("c").records == len({r["id"] for r in both})
    assert {(c["src_port"], c["dst_port"]) for c in session.get_variable("c")} == {
        c[1:] for r in both for c in _conns(r)}
    explain = _explain(session, "c")
    assert "stixshifter://b2,b3: b2: [network-traffic:type = 'network-traffic'] START" in explain
    assert "stixshifter://b2,b3: b3: [network-traffic:type = 'network-traffic'] START" in explain


def test_pages_of_the_configured_size(hunt, bundle_http, shared_data):
    """Profiles from the configuration file; page_size globally and per profile."""
    _, connection, config = bundle_profile(bundle_http, "test_bundle_3.json")
    profile = {"connector": "stix_bundle", "connection": connection, "config": config}
    hunt.config({"stixshifter": {"page_size": 4, "profiles": {
        "four": profile, "three": {**profile, "page_size": 3}}}})
    session = hunt.session()
    before = bundle_http.hits["/test_bundle_3.json"]
    session.execute(f"a = GET network-traffic FROM stixshifter://four {NT_DAY}")
    assert session.progress_messages == ["four: page 1, 4 rows", "four: page 2, 8 rows",
                                         "four: page 3, 10 rows"]
    assert bundle_http.hits["/test_bundle_3.json"] - before == 4  # 3 pages and an empty one
    session.progress_messages.clear()
    session.execute(f"b = GET network-traffic FROM stixshifter://three {NT_DAY}")
    assert session.progress_messages[-1] == "three: page 4, 10 rows"
    assert session.variable_summary("b").records == 10 == len(
        _records(shared_data, "test_bundle_3.json"))


def test_unreachable_server_is_retried_then_reported(hunt):
    hunt.config({"stixshifter": {"retries": 2, "retry_backoff": 0.05}})
    port = free_port()  # nothing listens there
    hunt.env("down", "stix_bundle", {"host": f"http://127.0.0.1:{port}/b.json"},
             {"auth": {"username": None, "password": None}})
    session = hunt.session()
    with pytest.raises(DataSourceError) as caught:
        session.execute(f"c = GET network-traffic FROM stixshifter://down {NT_DAY}")
    assert caught.value.message.startswith(
        "stixshifter://down: the stix_bundle connector could not fetch results "
        "(service_unavailable): stix_bundle connector error => client_connector_error: "
        f"(Cannot connect to host 127.0.0.1:{port}")
    assert session.progress_messages == [
        "down: fetch results failed (service_unavailable); retry 1 of 2 in 0.05 s",
        "down: fetch results failed (service_unavailable); retry 2 of 2 in 0.1 s"]
    assert "c" not in session.get_variable_names()


def test_http_error_is_the_connectors_message(hunt, bundle_http):
    hunt.env("gone", *bundle_profile(bundle_http, "no-such-bundle.json"))
    session = hunt.session()
    with pytest.raises(DataSourceError) as caught:
        session.execute(f"c = GET network-traffic FROM stixshifter://gone {NT_DAY}")
    assert caught.value.message.startswith(
        "stixshifter://gone: the stix_bundle connector could not fetch results (unknown): "
        "stix_bundle connector error => 404, message='File not found'")
    assert session.progress_messages == []  # not a transient error: no retry


def test_slow_call_times_out(hunt, bundle_http):
    hunt.config({"stixshifter": {"call_timeout": 1}})
    hunt.env("slow", *bundle_profile(bundle_http, "slow/test_bundle_3.json"))
    session = hunt.session()
    started = time.monotonic()
    with pytest.raises(DataSourceError) as caught:
        session.execute(f"c = GET network-traffic FROM stixshifter://slow {NT_DAY}")
    assert time.monotonic() - started < 2.5
    assert caught.value.message == ("stixshifter://slow: the stix_bundle connector did not "
                                    "fetch results within 1 s (stixshifter.call_timeout)")


def test_credentials_never_shown(hunt, bundle_http, capfd):
    user, password = "bundle-user-x", "bundle-secret-pw-9"
    in_url = bundle_http.base.replace("http://", f"http://{user}:{password}@")
    hunt.env("inurl", "stix_bundle", {"host": f"{in_url}/no-such.json"}, {"auth": {}})
    hunt.env("locked", *bundle_profile(bundle_http, "test_bundle_3.json",
                                       auth={"username": user, "password": password}))
    session = hunt.session()
    with pytest.raises(DataSourceError) as caught:
        session.execute(f"c = GET network-traffic FROM stixshifter://inurl {NT_DAY}")
    session.execute(f"ok = GET network-traffic FROM stixshifter://locked {NT_DAY}")
    log = open(session.log_path).read()
    out, err = capfd.readouterr()
    shown = [str(caught.value), json.dumps(caught.value.to_dict()), _explain(session, "ok"),
             *session.progress_messages, log, out, err]
    for text in shown:
        assert user not in text and password not in text
    assert "404" in str(caught.value)
    assert "connector error occurred" in log  # stix-shifter's own log, redacted, is kept
    assert "connector error" not in out + err  # and never reaches the user's terminal


def test_works_inside_a_running_event_loop(hunt, bundle_http):
    """As in the Jupyter kernel, whose main thread runs an asyncio loop (stix-shifter runs
    its coroutines on the caller's loop unless Kestrel gives it a thread of its own)."""
    hunt.env("b3", *bundle_profile(bundle_http, "test_bundle_3.json"))
    records = []

    async def hunt_in_a_loop():  # a thread of its own: whatever loop pytest's thread has
        with Session(session_id="loop_" + uuid.uuid4().hex[:12]) as session:
            session.execute(f"c = GET network-traffic FROM stixshifter://b3 {NT_DAY}")
            records.append(session.variable_summary("c").records)

    thread = threading.Thread(target=asyncio.run, args=(hunt_in_a_loop(),))
    thread.start()
    thread.join(60)
    assert records == [10]
