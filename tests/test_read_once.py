"""Bundles are read once per store: later GETs (and FIND's prefetch) of an unchanged
bundle are answered by the store's copy, a changed bundle is read again, an
interrupted read leaves no copy and nothing half-stored, and the store's answer is
the one matching each record whole gives (computed here with plain Python).
"""

import functools
import http.server
import json
import os
import shutil
import threading
import uuid

import pytest

from kestrel.errors import KestrelError
from kestrel.session import Session
from kestrel.sources import bundle as bundle_source


def records_of(path):
    return [o for o in json.loads(path.read_text())["objects"] if o["type"] == "observed-data"]


def objects_of(record):
    return list(record["objects"].values())


@pytest.fixture
def doctored(shared_data, tmp_path):
    """A copy of doctored-1k.json this test may change."""
    path = tmp_path / "doctored.json"
    shutil.copy(shared_data / "doctored-1k.json", path)
    return path


def open_session(store_url, tmp_path):
    return Session(session_id=f"once{uuid.uuid4().hex[:10]}", store_path=store_url)


def stored_processes(session) -> int:
    if "process" not in session._store.fp.types():
        return 0
    return session._store.fp._query('SELECT COUNT(*) AS n FROM "process"').fetchone()["n"]


def test_an_unchanged_bundle_is_not_read_again(store_url, tmp_path, doctored):
    with open_session(store_url, tmp_path) as session:
        (first,) = session.execute(f"a = GET process FROM file://{doctored} "
                                   "WHERE name = 'cmd.exe'")
        stored = stored_processes(session)
        # garbage of the same size, the same modification time: only a reread would notice
        status = doctored.stat()
        doctored.write_bytes(b"x" * status.st_size)
        os.utime(doctored, ns=(status.st_atime_ns, status.st_mtime_ns))
        (second,) = session.execute(f"b = GET process FROM file://{doctored} "
                                    "WHERE name = 'cmd.exe'")
        assert (second.entities, second.records) == (first.entities, first.records)
        assert stored_processes(session) == stored  # nothing stored twice
        explain = session.execute("EXPLAIN b")[0].to_text()
        assert "unchanged: answered from the store's copy of its 974 observations" in explain


def test_a_changed_bundle_is_read_again(store_url, tmp_path, doctored):
    bundle = json.loads(doctored.read_text())
    with open_session(store_url, tmp_path) as session:
        session.execute(f"a = GET process FROM file://{doctored} WHERE name = 'cmd.exe'")
        before = session.variable_summary("a").entities
        record = json.loads(json.dumps(records_of(doctored)[0]))
        record["id"] = f"observed-data--{uuid.uuid4()}"
        record["objects"] = {"0": {"type": "process", "pid": 77777, "name": "cmd.exe"}}
        bundle["objects"].append(record)
        doctored.write_text(json.dumps(bundle))
        session.execute(f"b = GET process FROM file://{doctored} WHERE name = 'cmd.exe'")
        assert session.variable_summary("b").entities == before + 1
        assert 77777 in [row["pid"] for row in session.get_variable("b")]
        # the records read before are not stored again: a's processes keep one copy each
        assert session.variable_summary("a").entities == before


def test_one_bundle_under_two_paths_is_stored_once(store_url, tmp_path, doctored):
    other = tmp_path / "again.json"
    shutil.copy(doctored, other)
    with open_session(store_url, tmp_path) as session:
        session.execute(f"a = GET process FROM file://{doctored}")
        stored = stored_processes(session)
        session.execute(f"b = GET process FROM file://{other}")
        assert stored_processes(session) == stored
        assert (session.variable_summary("b").entities
                == session.variable_summary("a").entities)


def test_an_interrupted_read_leaves_no_trace(store_url, tmp_path, doctored, monkeypatch,
                                             shared_data):
    monkeypatch.setattr(bundle_source, "BATCH", 100)
    with open_session(store_url, tmp_path) as session:
        ips = shared_data / "test_bundle.json"
        session.execute(f"early = GET ipv4-addr FROM file://{ips} WHERE value LIKE '10.%'")
        early = [row["value"] for row in session.get_variable("early")]
        stored = stored_processes(session)
        doctored.write_text(doctored.read_text().replace('"cmd.exe"', '"cmd2.exe"'))

        def interrupt(text, calls=[]):
            calls.append(text)
            if len(calls) == 3:  # mid-read, after 300 records
                raise KeyboardInterrupt

        session.progress = interrupt
        with pytest.raises(KeyboardInterrupt):
            session.execute(f"late = GET process FROM file://{doctored}")
        session.progress = None
        assert "late" not in session.symtable
        assert stored_processes(session) == stored
        assert [row["value"] for row in session.get_variable("early")] == early
        # the next GET reads it whole
        session.execute(f"late = GET process FROM file://{doctored} WHERE name = 'cmd2.exe'")
        want = {o["pid"] for r in records_of(doctored) for o in objects_of(r)
                if o["type"] == "process" and o.get("name") == "cmd2.exe"}
        assert {row["pid"] for row in session.get_variable("late")} == want


def test_a_bad_bundle_stores_nothing(store_url, tmp_path, doctored, monkeypatch):
    monkeypatch.setattr(bundle_source, "BATCH", 100)
    text = doctored.read_text()
    doctored.write_text(text[: len(text) * 2 // 3])  # cut short: invalid JSON at the end
    with open_session(store_url, tmp_path) as session:
        with pytest.raises(KestrelError, match="not valid JSON"):
            session.execute(f"p = GET process FROM file://{doctored}")
        assert "process" not in session._store.fp.types()


def matching(path, test):
    """Processes (pid, name) of the records `test` accepts (given the record's objects)."""
    return sorted({(o["pid"], o.get("name")) for r in records_of(path)
                   if test(objects_of(r)) for o in objects_of(r) if o["type"] == "process"})


def holds(objects, kind, test):
    return any(o["type"] == kind and test(o) for o in objects)


CASES = [
    ("name = 'svchost.exe' AND ipv4-addr:value LIKE '192.168.%'",
     lambda objs: holds(objs, "ipv4-addr", lambda o: o["value"].startswith("192.168.")),
     lambda p: p.get("name") == "svchost.exe"),
    ("name = 'cmd.exe' OR ipv4-addr:value = '192.168.1.156'",
     lambda objs: holds(objs, "process", lambda o: o.get("name") == "cmd.exe")
     or holds(objs, "ipv4-addr", lambda o: o["value"] == "192.168.1.156"),
     lambda p: True),
    ("user-account:user_id = 'SYSTEM' AND network-traffic:dst_port = 443",
     lambda objs: holds(objs, "user-account", lambda o: o.get("user_id") == "SYSTEM")
     and holds(objs, "network-traffic", lambda o: o.get("dst_port") == 443),
     lambda p: True),
]


@pytest.mark.parametrize("where, record_test, own_test", CASES, ids=["and", "or", "others"])
def test_records_are_matched_whole(store_url, tmp_path, doctored, where, record_test,
                                   own_test):
    want = sorted({(o["pid"], o.get("name")) for r in records_of(doctored)
                   if record_test(objects_of(r)) for o in objects_of(r)
                   if o["type"] == "process" and own_test(o)})
    assert want
    with open_session(store_url, tmp_path) as session:
        session.execute(f"all = GET process FROM file://{doctored}")  # the copy, first
        session.execute(f"p = GET process FROM file://{doctored} WHERE {where}")
        got = sorted({(row["pid"], row.get("name")) for row in session.get_variable("p")})
        assert got == want


def test_a_time_range_cuts_the_copy(store_url, tmp_path, doctored):
    records = sorted(records_of(doctored), key=lambda r: r["first_observed"])
    start, stop = records[100]["first_observed"], records[300]["first_observed"]
    want = {o["pid"] for r in records if start <= r["first_observed"] < stop
            for o in objects_of(r) if o["type"] == "process"}
    with open_session(store_url, tmp_path) as session:
        session.execute(f"all = GET process FROM file://{doctored}")
        session.execute(f"p = GET process FROM file://{doctored} START {start} STOP {stop}")
        assert {row["pid"] for row in session.get_variable("p")} == want


def test_the_copy_outlives_the_session(tmp_path, doctored):
    """A store reopened (same runtime directory, same store) still holds the copy."""
    store = str(tmp_path / "kept.db")
    with Session(session_id="kept", store_path=store) as session:
        session.execute(f"a = GET process FROM file://{doctored} WHERE name = 'cmd.exe'")
        entities = session.variable_summary("a").entities
    doctored_status = doctored.stat()
    doctored.write_bytes(b" " * doctored_status.st_size)
    os.utime(doctored, ns=(doctored_status.st_atime_ns, doctored_status.st_mtime_ns))
    with Session(session_id="kept", store_path=store) as session:
        session.execute(f"b = GET process FROM file://{doctored} WHERE name = 'cmd.exe'")
        assert session.variable_summary("b").entities == entities


@pytest.fixture
def served(tmp_path):
    """A real HTTP server on 127.0.0.1 over a folder this test may change."""
    folder = tmp_path / "served"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_url_is_stored_again_only_when_its_body_changes(store_url, tmp_path, served,
                                                          shared_data):
    folder, base = served
    shutil.copy(shared_data / "test_bundle_4.json", folder / "b.json")
    with open_session(store_url, tmp_path) as session:
        session.execute(f"a = GET process FROM {base}/b.json")
        stored = stored_processes(session)
        session.execute(f"b = GET process FROM {base}/b.json")
        assert stored_processes(session) == stored
        assert "unchanged" in session.execute("EXPLAIN b")[0].to_text()
        shutil.copy(shared_data / "test_bundle_5.json", folder / "b.json")
        session.execute(f"c = GET process FROM {base}/b.json")
        want = {o["pid"] for r in records_of(folder / "b.json") for o in objects_of(r)
                if o["type"] == "process"}
        assert {row["pid"] for row in session.get_variable("c")} == want


def test_stix21_objects_stream_in_any_order(store_url, tmp_path):
    """STIX 2.1 records refer to observables beside them, before or after: each object
    is stored alone as it comes (none held back for the records), and the domain
    objects (an indicator) are not stored."""
    stamp = "2024-01-01T00:00:00.000Z"
    records = [{"type": "observed-data", "spec_version": "2.1", "id": f"observed-data--{i}",
                "created": stamp, "modified": stamp, "first_observed": stamp,
                "last_observed": stamp, "number_observed": 1,
                "object_refs": [f"process--{i}", f"ipv4-addr--{i}"]} for i in range(4)]
    observables = [o for i in range(4) for o in (
        {"type": "process", "spec_version": "2.1", "id": f"process--{i}", "pid": 100 + i,
         "name": "cmd.exe" if i % 2 else "sh"},
        {"type": "ipv4-addr", "spec_version": "2.1", "id": f"ipv4-addr--{i}",
         "value": f"10.0.0.{i}"})]
    indicator = {"type": "indicator", "spec_version": "2.1", "id": "indicator--1",
                 "created": stamp, "modified": stamp, "pattern": "[process:name = 'x']",
                 "pattern_type": "stix", "valid_from": stamp}
    path = tmp_path / "b21.json"
    path.write_text(json.dumps({"type": "bundle", "id": "bundle--21", "objects": [
        records[0], records[1], *observables, indicator, records[2], records[3]]}))
    with open_session(store_url, tmp_path) as session:
        session.execute(f"p = GET process FROM file://{path} WHERE name = 'cmd.exe'")
        assert sorted(row["pid"] for row in session.get_variable("p")) == [101, 103]
        session.execute("ips = FIND ipv4-addr LINKED p")
        assert sorted(row["value"] for row in session.get_variable("ips")) == [
            "10.0.0.1", "10.0.0.3"]
        assert "indicator" not in session._store.fp.types()
