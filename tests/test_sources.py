"""Data sources on real components: bundle files, directories, globs, a real HTTP server,
STIX 2.0 and 2.1 bundles, extended subgraphs, LAST n, bad input.

Expected values are computed here from the raw JSON with plain Python, never by Kestrel.
"""

import functools
import http.server
import json
import shutil
import socket
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from kestrel.errors import DataSourceError, KestrelError
from kestrel.session import Session


# ------------------------------------------------------------------ helpers


def _load(path):
    with open(path) as f:
        return json.load(f)


def _records(bundle):
    return [o for o in bundle["objects"] if o.get("type") == "observed-data"]


def _objs(record, bundle=None):
    """Objects of a record: embedded (2.0) or referenced (2.1)."""
    if isinstance(record.get("objects"), dict):
        return list(record["objects"].values())
    by_id = {o["id"]: o for o in bundle["objects"] if "id" in o}
    return [by_id[r] for r in record.get("object_refs", []) if r in by_id]


def _has(objs, type_, attr, value):
    return any(o.get("type") == type_ and o.get(attr) == value for o in objs)


def _ts(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def session():
    with Session(session_id="src_" + uuid.uuid4().hex[:12]) as s:
        yield s


@pytest.fixture(scope="module")
def doctored(shared_data):
    return _load(shared_data / "doctored-1k.json")


@pytest.fixture(scope="module")
def cmd_records(doctored):
    """Records holding a process named cmd.exe in doctored-1k."""
    return sum(1 for r in _records(doctored) if _has(_objs(r), "process", "name", "cmd.exe"))


@pytest.fixture
def http_base(shared_data):
    """A real HTTP server on 127.0.0.1 serving the shared data folder."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(shared_data))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _assert_failure_keeps_variables(session, statement, *fragments):
    """`statement` raises a KestrelError naming all `fragments`; earlier variables intact."""
    before_names = session.get_variable_names()
    before = {n: session.get_variable(n) for n in before_names}
    with pytest.raises(KestrelError) as info:
        session.execute(statement)
    text = str(info.value)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    assert "Traceback" not in text
    assert session.get_variable_names() == before_names
    for name, rows in before.items():
        assert session.get_variable(name) == rows, name
    return info.value


# ------------------------------------------------------------------ http


def test_http_bundle_same_as_file(session, http_base, shared_data, cmd_records):
    assert cmd_records == 14  # sanity of the independent count
    session.execute(f"web = GET process FROM {http_base}/doctored-1k.json WHERE name = 'cmd.exe'")
    session.execute(f"disk = GET process FROM '{shared_data}/doctored-1k.json' WHERE name = 'cmd.exe'")
    assert session.variable_summary("web").records == cmd_records
    assert session.variable_summary("disk").records == cmd_records
    web_pids = sorted(p["pid"] for p in session.get_variable("web"))
    disk_pids = sorted(p["pid"] for p in session.get_variable("disk"))
    assert web_pids == disk_pids


def test_http_quoted_url(session, http_base, cmd_records):
    session.execute(f"web = GET process FROM '{http_base}/doctored-1k.json' WHERE name = 'cmd.exe'")
    assert session.variable_summary("web").records == cmd_records


def test_http_unreachable_is_datasource_error(session, shared_data):
    session.execute(f"procs = GET process FROM '{shared_data}/doctored-1k.json' WHERE name = 'cmd.exe'")
    url = f"http://127.0.0.1:{_free_port()}/doctored-1k.json"  # nothing listens there
    err = _assert_failure_keeps_variables(
        session, f"procs = GET process FROM {url} WHERE name = 'x.exe'", url)
    assert isinstance(err, DataSourceError)


def test_http_404_is_datasource_error(session, http_base, shared_data):
    session.execute(f"procs = GET process FROM '{shared_data}/doctored-1k.json' WHERE name = 'cmd.exe'")
    url = f"{http_base}/no-such-bundle.json"
    err = _assert_failure_keeps_variables(
        session, f"procs = GET process FROM {url} WHERE name = 'x.exe'", url, "404")
    assert isinstance(err, DataSourceError)


# ------------------------------------------------------------------ directories and globs

TWO_BUNDLES = ("test_bundle_4.json", "test_bundle_5.json")


@pytest.fixture
def two_bundles(tmp_path, shared_data):
    folder = tmp_path / "bundles"
    folder.mkdir()
    expected = 0
    ids = set()
    for name in TWO_BUNDLES:
        shutil.copy(shared_data / name, folder / name)
        bundle = _load(shared_data / name)
        for r in _records(bundle):
            ids.add(r["id"])
            if any(o.get("type") == "process" for o in _objs(r, bundle)):
                expected += 1
    assert len(ids) == sum(len(_records(_load(shared_data / n))) for n in TWO_BUNDLES)
    (folder / "notes.txt").write_text("not a bundle, not *.json")
    return folder, expected


def _per_file_records(session, folder):
    total = 0
    for name in TWO_BUNDLES:
        var = "f_" + name.split(".")[0]
        session.execute(f"{var} = GET process FROM '{folder / name}' WHERE pid > 0 OR pid <= 0")
        total += session.variable_summary(var).records
    return total


def test_directory_of_bundles(session, two_bundles):
    folder, expected = two_bundles
    assert expected == 5
    session.execute(f"d = GET process FROM '{folder}' WHERE pid > 0 OR pid <= 0")
    assert session.variable_summary("d").records == expected
    assert _per_file_records(session, folder) == expected


def test_glob_of_bundles(session, two_bundles):
    folder, expected = two_bundles
    session.execute(f"g = GET process FROM '{folder}/*.json' WHERE pid > 0 OR pid <= 0")
    assert session.variable_summary("g").records == expected


def test_glob_matching_nothing_is_an_error(session, tmp_path):
    _assert_failure_keeps_variables(
        session, f"g = GET process FROM '{tmp_path}/*.json' WHERE name = 'x'", str(tmp_path))


# ------------------------------------------------------------------ STIX 2.1

T0 = datetime(2021, 1, 1, tzinfo=timezone.utc)
RECORDS_21 = [  # (name, pid, ip, first_observed)
    ("a.exe", 100, "10.0.0.1", T0),
    ("b.exe", 200, "10.0.0.2", T0 + timedelta(hours=1)),
    ("a.exe", 300, "10.0.0.2", T0 + timedelta(hours=2)),
]


def _bundle_21(rows):
    objects = []
    for name, pid, ip, first in rows:
        proc = {"type": "process", "spec_version": "2.1", "id": f"process--{uuid.uuid4()}",
                "name": name, "pid": pid}
        addr = {"type": "ipv4-addr", "spec_version": "2.1",
                "id": f"ipv4-addr--{uuid.uuid4()}", "value": ip}
        obs = {"type": "observed-data", "spec_version": "2.1",
               "id": f"observed-data--{uuid.uuid4()}",
               "created": _ts(first), "modified": _ts(first),
               "first_observed": _ts(first), "last_observed": _ts(first + timedelta(seconds=1)),
               "number_observed": 1, "object_refs": [proc["id"], addr["id"]]}
        objects += [proc, addr, obs]
    return {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}


@pytest.fixture
def bundle_21(tmp_path):
    path = tmp_path / "stix21.json"
    path.write_text(json.dumps(_bundle_21(RECORDS_21)))
    return path


def _pids(session, var):
    return sorted(p["pid"] for p in session.get_variable(var))


def test_stix21_get_by_name(session, bundle_21):
    session.execute(f"a = GET process FROM '{bundle_21}' WHERE name = 'a.exe'")
    want = sorted(pid for name, pid, _, _ in RECORDS_21 if name == "a.exe")
    assert _pids(session, "a") == want == [100, 300]
    assert session.variable_summary("a").records == 2
    assert {p["name"] for p in session.get_variable("a")} == {"a.exe"}


def test_stix21_start_stop(session, bundle_21):
    # START <= first_observed < STOP: T0+1h is in, T0+2h (== STOP) is out
    session.execute(f"w = GET process FROM '{bundle_21}' WHERE name LIKE '%.exe' "
                    "START 2021-01-01T00:30:00Z STOP 2021-01-01T02:00:00Z")
    assert _pids(session, "w") == [200]
    session.execute(f"w2 = GET process FROM '{bundle_21}' WHERE name = 'a.exe' "
                    "START 2021-01-01T00:00:00Z STOP 2021-01-01T02:00:00.001Z")
    assert _pids(session, "w2") == [100, 300]
    session.execute(f"w3 = GET process FROM '{bundle_21}' WHERE name = 'a.exe' "
                    "START 2021-01-01T00:00:00.001Z STOP 2021-01-01T02:00:00Z")
    assert _pids(session, "w3") == []


def test_stix21_extended_subgraph(session, bundle_21):
    session.execute(f"x = GET process FROM '{bundle_21}' "
                    "WHERE name = 'a.exe' AND ipv4-addr:value = '10.0.0.2'")
    assert _pids(session, "x") == [300]
    assert session.variable_summary("x").records == 1
    session.execute(f"y = GET process FROM '{bundle_21}' "
                    "WHERE name = 'b.exe' AND ipv4-addr:value = '10.0.0.1'")
    assert _pids(session, "y") == []


def test_stix21_ipv4_entities(session, bundle_21):
    session.execute(f"ips = GET ipv4-addr FROM '{bundle_21}' WHERE value = '10.0.0.2'")
    assert sorted({i["value"] for i in session.get_variable("ips")}) == ["10.0.0.2"]
    assert session.variable_summary("ips").records == 2


# ------------------------------------------------------------------ extended subgraphs, STIX 2.0


def test_extended_subgraph_stix20(session, shared_data, doctored):
    want = [r for r in _records(doctored)
            if _has(_objs(r), "process", "name", "svchost.exe")
            and _has(_objs(r), "ipv4-addr", "value", "192.168.1.156")]
    all_svchost = [r for r in _records(doctored) if _has(_objs(r), "process", "name", "svchost.exe")]
    assert 0 < len(want) < len(all_svchost)  # the address really narrows the records
    session.execute(f"p = GET process FROM '{shared_data}/doctored-1k.json' "
                    "WHERE name = 'svchost.exe' AND ipv4-addr:value = '192.168.1.156'")
    assert session.variable_summary("p").records == len(want)
    assert {p["name"] for p in session.get_variable("p")} == {"svchost.exe"}
    want_pids = sorted({o["pid"] for r in want for o in _objs(r)
                        if o.get("type") == "process" and o.get("name") == "svchost.exe"})
    assert sorted({p["pid"] for p in session.get_variable("p")}) == want_pids


def test_extended_subgraph_or_mixing_types(session, shared_data, doctored):
    ip = "192.168.1.156"
    # a record counts when it holds a cmd.exe process OR that address; the center part of
    # the ECGP (name = 'cmd.exe' OR <true>) then keeps every process in those records
    want = [r for r in _records(doctored)
            if any(o.get("type") == "process" for o in _objs(r))
            and (_has(_objs(r), "process", "name", "cmd.exe") or _has(_objs(r), "ipv4-addr", "value", ip))]
    only_cmd = [r for r in _records(doctored) if _has(_objs(r), "process", "name", "cmd.exe")]
    assert len(want) > len(only_cmd)
    session.execute(f"p = GET process FROM '{shared_data}/doctored-1k.json' "
                    f"WHERE name = 'cmd.exe' OR ipv4-addr:value = '{ip}'")
    assert session.variable_summary("p").records == len(want)
    want_names = sorted({o.get("name") for r in want for o in _objs(r)
                         if o.get("type") == "process" and o.get("name") is not None})
    got_names = sorted({p["name"] for p in session.get_variable("p") if p.get("name") is not None})
    assert got_names == want_names


def test_extended_subgraph_other_type_only(session, shared_data, doctored):
    ip = "192.168.1.156"
    want = [r for r in _records(doctored)
            if any(o.get("type") == "process" for o in _objs(r))
            and _has(_objs(r), "ipv4-addr", "value", ip)]
    session.execute(f"p = GET process FROM '{shared_data}/doctored-1k.json' "
                    f"WHERE ipv4-addr:value = '{ip}'")
    assert session.variable_summary("p").records == len(want)


# ------------------------------------------------------------------ LAST n


@pytest.fixture
def recent_bundle(tmp_path):
    now = datetime.now(timezone.utc)
    rows = [("two-min.exe", 1, now - timedelta(minutes=2)),
            ("three-hours.exe", 2, now - timedelta(hours=3)),
            ("three-days.exe", 3, now - timedelta(days=3))]
    objects = []
    for name, pid, first in rows:
        objects.append({
            "type": "observed-data", "id": f"observed-data--{uuid.uuid4()}",
            "created": _ts(first), "modified": _ts(first),
            "first_observed": _ts(first), "last_observed": _ts(first + timedelta(seconds=1)),
            "number_observed": 1,
            "objects": {"0": {"type": "process", "name": name, "pid": pid}},
        })
    path = tmp_path / "recent.json"
    path.write_text(json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                                "spec_version": "2.0", "objects": objects}))
    return path


@pytest.mark.parametrize("last, names", [
    ("LAST 5 MINUTES", ["two-min.exe"]),
    ("LAST 4 HOURS", ["three-hours.exe", "two-min.exe"]),
    ("LAST 7 DAYS", ["three-days.exe", "three-hours.exe", "two-min.exe"]),
    ("LAST 1 MINUTES", []),
    ("LAST 600 SECONDS", ["two-min.exe"]),
])
def test_last_n(session, recent_bundle, last, names):
    session.execute(f"r = GET process FROM '{recent_bundle}' WHERE name LIKE '%.exe' {last}")
    assert session.variable_summary("r").records == len(names)
    assert sorted(p["name"] for p in session.get_variable("r")) == names


# ------------------------------------------------------------------ bad input


@pytest.fixture
def primed(session, shared_data):
    """A session holding `procs` (cmd.exe) and `ips` before the failing statement."""
    session.execute(f"procs = GET process FROM '{shared_data}/doctored-1k.json' WHERE name = 'cmd.exe'")
    session.execute('ips = NEW ipv4-addr ["10.0.0.1"]')
    return session


def _get(path, var="procs"):
    return f"{var} = GET process FROM '{path}' WHERE name = 'cmd.exe'"


def test_missing_file(primed, tmp_path):
    path = tmp_path / "missing.json"
    err = _assert_failure_keeps_variables(primed, _get(path), str(path), "not found")
    assert isinstance(err, DataSourceError)


def test_missing_file_to_new_variable(primed, tmp_path):
    path = tmp_path / "missing.json"
    _assert_failure_keeps_variables(primed, _get(path, "fresh"), str(path))
    assert "fresh" not in primed.get_variable_names()


def test_truncated_json(primed, tmp_path, shared_data):
    text = (shared_data / "test_bundle_4.json").read_text()
    path = tmp_path / "half.json"
    path.write_text(text[: len(text) // 2])
    err = _assert_failure_keeps_variables(primed, _get(path), str(path), "JSON")
    assert isinstance(err, DataSourceError)


@pytest.mark.parametrize("content, problem", [
    ({"a": 1}, "not a STIX bundle"),
    ([1, 2, 3], "observed-data"),
    ("just a string", "not a STIX bundle"),
    ({"type": "bundle", "objects": {"not": "a list"}}, "not a STIX bundle"),
], ids=["object", "list-of-numbers", "string", "objects-not-list"])
def test_non_stix_json(primed, tmp_path, content, problem):
    path = tmp_path / "nonstix.json"
    path.write_text(json.dumps(content))
    err = _assert_failure_keeps_variables(primed, _get(path), str(path), problem)
    assert isinstance(err, DataSourceError)


def test_observed_data_missing_first_observed(primed, tmp_path, shared_data):
    bundle = _load(shared_data / "test_bundle_4.json")
    record = _records(bundle)[0]
    del record["first_observed"]
    path = tmp_path / "nofirst.json"
    path.write_text(json.dumps(bundle))
    err = _assert_failure_keeps_variables(primed, _get(path), str(path), "first_observed", record["id"])
    assert isinstance(err, DataSourceError)


def test_observed_data_bad_first_observed(primed, tmp_path, shared_data):
    bundle = _load(shared_data / "test_bundle_4.json")
    record = _records(bundle)[0]
    record["first_observed"] = "yesterday"
    path = tmp_path / "badfirst.json"
    path.write_text(json.dumps(bundle))
    _assert_failure_keeps_variables(
        primed, _get(path) + " START 2021-01-01T00:00:00Z STOP 2022-01-01T00:00:00Z",
        "first_observed", "yesterday")


def test_bundle_without_observed_data(primed, tmp_path):
    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "spec_version": "2.0",
              "objects": [{"type": "identity", "id": f"identity--{uuid.uuid4()}",
                           "name": "x", "identity_class": "system"}]}
    path = tmp_path / "noobs.json"
    path.write_text(json.dumps(bundle))
    err = _assert_failure_keeps_variables(primed, _get(path), str(path), "observed-data")
    assert isinstance(err, DataSourceError)


def test_empty_file(primed, tmp_path):
    path = tmp_path / "empty.json"
    path.write_text("")
    err = _assert_failure_keeps_variables(primed, _get(path), str(path))
    assert isinstance(err, DataSourceError)
    text = str(err).lower()
    assert "empty" in text or "json" in text, text


def test_unknown_scheme(primed):
    _assert_failure_keeps_variables(
        primed, "procs = GET process FROM nosuch://host/x WHERE name = 'cmd.exe'", "nosuch://")


def test_error_then_success_in_same_session(primed, tmp_path, shared_data):
    path = tmp_path / "later.json"
    _assert_failure_keeps_variables(primed, _get(path, "later"), str(path))
    shutil.copy(shared_data / "doctored-1k.json", path)
    primed.execute(_get(path, "later"))
    assert primed.variable_summary("later").records == primed.variable_summary("procs").records


# ------------------------------------------------------------------ empty results


def test_get_matching_nothing_is_an_empty_variable(session, shared_data):
    results = session.execute(
        f"none = GET process FROM '{shared_data}/doctored-1k.json' WHERE name = 'no-such.exe'")
    assert "none" in session.get_variable_names()
    assert session.get_variable("none") == []
    summary = session.variable_summary("none")
    assert (summary.entities, summary.records) == (0, 0)
    assert any("empty" in n for r in results for n in getattr(r, "notes", []))
    # an empty variable is usable downstream
    session.execute("DISP none ATTR name, pid")
    session.execute("kids = FIND process CREATED BY none")
    assert session.get_variable("kids") == []


def test_get_outside_time_range_is_empty(session, shared_data):
    session.execute(f"none = GET process FROM '{shared_data}/doctored-1k.json' WHERE name = 'cmd.exe' "
                    "START 2030-01-01T00:00:00Z STOP 2030-01-02T00:00:00Z")
    assert session.get_variable("none") == []


def test_empty_bundle_objects_is_empty_variable(session, tmp_path):
    path = tmp_path / "nothing.json"
    path.write_text(json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": []}))
    session.execute(f"none = GET process FROM '{path}' WHERE name = 'cmd.exe'")
    assert session.get_variable("none") == []


# ------------------------------------------------------------------ URI forms and re-reading


def test_file_uri(session, shared_data, cmd_records):
    session.execute(f"p = GET process FROM file://{shared_data}/doctored-1k.json WHERE name = 'cmd.exe'")
    assert session.variable_summary("p").records == cmd_records


def test_changed_file_is_read_again(session, tmp_path):
    import os

    path = tmp_path / "changing.json"
    path.write_text(json.dumps(_bundle_21(RECORDS_21[:1])))
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    session.execute(f"a = GET process FROM '{path}' WHERE name LIKE '%.exe'")
    assert _pids(session, "a") == [100]
    path.write_text(json.dumps(_bundle_21(RECORDS_21)))
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    session.execute(f"b = GET process FROM '{path}' WHERE name LIKE '%.exe'")
    assert _pids(session, "b") == [100, 200, 300]
    assert _pids(session, "a") == [100]  # the earlier variable is unchanged


def test_plain_list_of_observed_data(session, tmp_path, shared_data):
    bundle = _load(shared_data / "test_bundle_4.json")
    path = tmp_path / "list.json"
    path.write_text(json.dumps(_records(bundle)))
    want = sum(1 for r in _records(bundle) if any(o.get("type") == "process" for o in _objs(r)))
    session.execute(f"p = GET process FROM '{path}' WHERE pid > 0 OR pid <= 0")
    assert session.variable_summary("p").records == want


def test_http_non_json_names_url(session, http_base):
    url = f"{http_base}/README.md"
    err = _assert_failure_keeps_variables(session, f"p = GET process FROM {url} WHERE name = 'x'",
                                          url, "JSON")
    assert isinstance(err, DataSourceError)


def test_directory_mixing_stix20_and_stix21(session, tmp_path, shared_data):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(shared_data / "test_bundle_4.json", folder / "a20.json")
    (folder / "b21.json").write_text(json.dumps(_bundle_21(RECORDS_21)))
    b20 = _load(shared_data / "test_bundle_4.json")
    want20 = sum(1 for r in _records(b20) if any(o.get("type") == "process" for o in _objs(r)))
    session.execute(f"m = GET process FROM '{folder}' WHERE pid > 0 OR pid <= 0")
    assert session.variable_summary("m").records == want20 + len(RECORDS_21)
    session.execute(f"n = GET process FROM '{folder}' WHERE name = 'a.exe'")
    assert _pids(session, "n") == [100, 300]
