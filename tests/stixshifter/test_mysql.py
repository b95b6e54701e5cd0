"""The real `mysql` connector against a MariaDB server on 127.0.0.1 (conftest.mariadb):
GET, IN, windows, EXPLAIN, FIND prefetch, 10,000+ rows in pages, result_limit, the
default window, several profiles, connector errors, redaction.  Expected values are
computed from mysqlrows.py's rows with plain Python."""

import json
import math
import time

import mysqlrows as data
import pytest
from sstools import DB_PASSWORD, DB_USER, bundle_profile, free_port, mysql_profile

from kestrel.errors import DataSourceError

DAY = "START 2024-01-01T00:00:00Z STOP 2024-01-02T00:00:00Z"


def _in(row, start, stop):
    return data.ms(start) <= row["entry_time"] < data.ms(stop)


def _ports(session, name):
    return sorted(c["src_port"] for c in session.get_variable(name))


def _explain(session, name):
    return session.execute(f"EXPLAIN {name}")[0].to_text()


@pytest.fixture
def db(hunt, mariadb):
    hunt.env("db", *mysql_profile(mariadb))
    return hunt.session()


def test_get_processes(db):
    db.execute(f"procs = GET process FROM stixshifter://db WHERE name = 'cmd.exe' {DAY}")
    expected = [r for r in data.hunt_rows() if r["process_name"] == "cmd.exe"]
    assert sorted(p["pid"] for p in db.get_variable("procs")) == sorted(
        r["process_id"] for r in expected)
    assert db.variable_summary("procs").records == len(expected)
    assert "stixshifter://db: SELECT * FROM events WHERE process_name = 'cmd.exe' AND " \
           "(entry_time >= 1704067200000 AND entry_time <= 1704153600000) limit 1000000" \
           in _explain(db, "procs")


def test_in_list_returns_every_value(db):
    """The connector turns IN into `IN (4444 OR 53)`; Kestrel sends ORs instead."""
    db.execute(f"c = GET network-traffic FROM stixshifter://db WHERE dst_port IN (4444, 53) {DAY}")
    expected = [r["source_port"] for r in data.hunt_rows() if r["dest_port"] in (4444, 53)]
    assert _ports(db, "c") == sorted(expected)
    native = _explain(db, "c")
    assert "dest_port = '4444'" in native and "dest_port = '53'" in native


def test_records_are_cut_to_the_window(db):
    """STOP is exclusive (the connector's SQL says <=; its 11:00 row must not come)."""
    start, stop = "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z"
    db.execute(f"c = GET network-traffic FROM stixshifter://db WHERE dst_port = 443 "
               f"START {start} STOP {stop}")
    expected = [r["source_port"] for r in data.hunt_rows()
                if r["dest_port"] == 443 and _in(r, start, stop)]
    assert _ports(db, "c") == sorted(expected) and len(expected) == 2


def test_extended_subgraph(db):
    db.execute(f"c = GET network-traffic FROM stixshifter://db "
               f"WHERE dst_port = 443 AND ipv4-addr:value = '{data.A}' {DAY}")
    expected = [r["source_port"] for r in data.hunt_rows() if r["dest_port"] == 443
                and data.A in (r["source_ipaddr"], r["dest_ipaddr"])]
    assert _ports(db, "c") == sorted(expected)


def test_find_prefetches_connections_in_the_widened_window(db):
    """srcs (A, B) come from the 4444 rows; their other connections within 5 minutes of
    those rows are fetched by FIND's prefetch, later and earlier ones are not."""
    db.execute(f"""beacons = GET network-traffic FROM stixshifter://db WHERE dst_port = 4444 {DAY}
                   srcs = FIND ipv4-addr CREATED beacons
                   more = FIND network-traffic CREATED BY srcs""")
    rows = data.hunt_rows()
    beacons = [r for r in rows if r["dest_port"] == 4444]
    srcs = {r["source_ipaddr"] for r in beacons}
    start = min(r["entry_time"] for r in beacons) - 300_000
    stop = max(r["entry_time"] for r in beacons) + 300_000
    expected = [r["source_port"] for r in rows
                if r["source_ipaddr"] in srcs and start <= r["entry_time"] < stop]
    assert {v["value"] for v in db.get_variable("srcs")} == srcs == {data.A, data.B}
    assert _ports(db, "more") == sorted(expected)
    assert len(expected) > len(beacons)
    assert "stixshifter://db: prefetch: SELECT * FROM events WHERE " in _explain(db, "more")


def test_more_than_10000_rows_in_pages(hunt, mariadb, capsys):
    hunt.env("bulk", *mysql_profile(mariadb, table="bulk"))
    session = hunt.session()
    started = time.monotonic()
    session.execute(f"c = GET network-traffic FROM stixshifter://bulk WHERE dst_port = "
                    f"{data.BULK_PORT} START 2024-02-01T00:00:00Z STOP 2024-02-02T00:00:00Z")
    seconds = time.monotonic() - started
    summary = session.variable_summary("c")
    assert summary.entities == summary.records == data.BULK_COUNT
    assert _ports(session, "c") == [r["source_port"] for r in data.bulk_rows()]
    pages = math.ceil(data.BULK_COUNT / 2000)
    assert session.progress_messages[-1] == f"bulk: page {pages}, {data.BULK_COUNT} rows"
    assert len(session.progress_messages) == pages
    with capsys.disabled():
        print(f"\n  mysql: {data.BULK_COUNT} rows in {pages} pages: {seconds:.1f} s")


def test_result_limit_caps_and_says_so(hunt, mariadb):
    hunt.env("bulk", *mysql_profile(mariadb, table="bulk", result_limit=5000))
    session = hunt.session()
    session.execute(f"c = GET network-traffic FROM stixshifter://bulk WHERE dst_port = "
                    f"{data.BULK_PORT} START 2024-02-01T00:00:00Z STOP 2024-02-02T00:00:00Z")
    assert session.variable_summary("c").records == 5000
    assert session.progress_messages[-2:] == ["bulk: page 3, 5000 rows",
                                              "bulk: stopped at result_limit 5000"]


@pytest.mark.parametrize("lookback, minutes", [(None, [10]), (14400, [10, 180])])
def test_default_window_without_a_time_range(hunt, mariadb, lookback, minutes):
    if lookback:
        hunt.config({"stixshifter": {"default_lookback": lookback}})
    hunt.env("db", *mysql_profile(mariadb))
    session = hunt.session()
    session.execute(f"c = GET network-traffic FROM stixshifter://db "
                    f"WHERE dst_port = {data.RECENT_PORT}")
    expected = [r["source_port"] for r in data.recent_rows(mariadb["now_ms"])
                if (mariadb["now_ms"] - r["entry_time"]) // 60_000 in minutes]
    assert _ports(session, "c") == sorted(expected)


def test_mysql_and_bundle_in_one_get(hunt, mariadb, bundle_http, shared_data):
    hunt.env("db", *mysql_profile(mariadb))
    hunt.env("nt", *bundle_profile(bundle_http, "test_bundle.json"))
    session = hunt.session()
    session.execute("c = GET network-traffic FROM stixshifter://db,nt WHERE dst_port = 22 "
                    "START 2020-01-01T00:00:00Z STOP 2025-01-01T00:00:00Z")
    bundle = json.loads((shared_data / "test_bundle.json").read_text())
    from_bundle = [o for r in bundle["objects"] if r["type"] == "observed-data"
                   for o in r["objects"].values()
                   if o["type"] == "network-traffic" and o["dst_port"] == 22]
    from_db = [r for r in data.hunt_rows() if r["dest_port"] == 22]
    assert session.variable_summary("c").records == len(from_bundle) + len(from_db)
    explain = _explain(session, "c")
    assert "stixshifter://db,nt: db: SELECT * FROM events WHERE dest_port = '22'" in explain
    assert "stixshifter://db,nt: nt: [network-traffic:dst_port = 22] START" in explain


# ------------------------------------------------------------------ errors and credentials


def _fails(hunt, mariadb, **profile):
    hunt.env("bad", *mysql_profile(mariadb, **profile))
    session = hunt.session()
    with pytest.raises(DataSourceError) as caught:
        session.execute(f"c = GET network-traffic FROM stixshifter://bad WHERE dst_port = 22 {DAY}")
    assert "c" not in session.get_variable_names()
    return caught.value, session


def test_wrong_password_is_reported_without_credentials(hunt, mariadb, capfd, caplog):
    err, session = _fails(hunt, mariadb, password="not-the-Pa55-word")
    assert err.message == (
        "stixshifter://bad: the mysql connector could not fetch results (unknown): mysql "
        "connector error => (1045, \"Access denied for user '***'@'127.0.0.1' (using "
        "password: YES)\")")
    out, stderr = capfd.readouterr()
    log = open(session.log_path).read()
    # pytest also hooks stix-shifter's own (non-propagating) loggers: look at ours
    records = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("kestrel"))
    for text in (str(err), json.dumps(err.to_dict()), log, out, stderr, records):
        assert DB_USER not in text and "not-the-Pa55-word" not in text
        assert DB_PASSWORD not in text
    assert "Access denied for user '***'" in log


def test_unreachable_server(hunt, mariadb):
    err, _ = _fails(hunt, mariadb, port=free_port())
    assert err.message == (
        "stixshifter://bad: the mysql connector could not fetch results (authentication_fail): "
        "mysql connector error => (2003, \"Can't connect to MySQL server on '127.0.0.1'\")")


def test_connector_error_code_and_message(hunt, mariadb):
    err, _ = _fails(hunt, mariadb, table="nosuch")
    assert err.message == (
        "stixshifter://bad: the mysql connector could not fetch results (unknown): mysql "
        "connector error => (1146, \"Table 'hunt.nosuch' doesn't exist\")")
    assert err.code == "unknown"


def test_untranslatable_pattern(db):
    with pytest.raises(DataSourceError) as caught:
        db.execute(f"a = GET x-oca-asset FROM stixshifter://db WHERE hostname = 'h' {DAY}")
    assert caught.value.message == (
        "stixshifter://db: the mysql connector could not translate the pattern "
        "(mapping_error): mysql connector error => data mapping error : Unable to map the "
        "following STIX objects and properties: ['x-oca-asset:hostname'] to data source fields")


def test_find_file_loaded_by_processes(db):
    db.execute(f"""procs = GET process FROM stixshifter://db WHERE name = 'beacon.exe' {DAY}
                   files = FIND file LOADED BY procs""")
    expected = {r["filename"] for r in data.hunt_rows() if r["process_name"] == "beacon.exe"}
    assert {f["name"] for f in db.get_variable("files")} == expected - {None}
    assert "prefetch: SELECT * FROM events WHERE process_id = '4343' OR process_id = '4242'" \
        in _explain(db, "files")


def test_find_without_identifying_values_skips_the_prefetch(db):
    db.execute(f"""orphans = GET process FROM stixshifter://db WHERE name = 'orphan.exe' {DAY}
                   files = FIND file LOADED BY orphans""")
    assert [f["name"] for f in db.get_variable("files")] == ["orphan.exe"]
    assert ("no prefetch: orphans has no x_unique_id or pid to ask the data source for other "
            "records by; FIND used the records already stored") in _explain(db, "files")
