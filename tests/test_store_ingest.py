"""The store's ingest and a GET's view, on SQLite and PostgreSQL (``store_url``):
an entity seen in many records, in many ingest batches, is one entity of the GET;
values that COPY's text format escapes (PostgreSQL loads with COPY) come back as they
went in; the GET's view joins from its query's rows instead of building an id list.
Expected values are computed here from the bundle written here."""

import json
import uuid

import pytest

from kestrel.store.base import QUERIES_INDEX
from kestrel.session import Session
from kestrel.sources import bundle as bundle_source

ADDRESSES = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "192.168.7.7"]


def write_bundle(path, records):
    """records: a list of {key: SCO} dicts, one observed-data each."""
    objects = []
    for i, scos in enumerate(records):
        stamp = f"2024-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000Z"
        objects.append({"type": "observed-data", "id": f"observed-data--{uuid.uuid4()}",
                        "created": stamp, "modified": stamp, "first_observed": stamp,
                        "last_observed": stamp, "number_observed": 1, "objects": scos})
    path.write_text(json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                                "objects": objects}))
    return path


def connection_records(count):
    """`count` records, each a connection between two of ADDRESSES: each address is in
    many records, so in many ingest batches."""
    return [{"0": {"type": "ipv4-addr", "value": ADDRESSES[i % 4]},
             "1": {"type": "ipv4-addr", "value": ADDRESSES[(i + 1) % 4]},
             "2": {"type": "network-traffic", "src_ref": "0", "dst_ref": "1",
                   "src_port": 1000 + i, "dst_port": 443, "protocols": ["tcp"]}}
            for i in range(count)]


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(bundle_source, "BATCH", 7)


def open_session(store_url):
    return Session(session_id=f"ingest-{uuid.uuid4().hex[:12]}", store_path=store_url)


def test_an_entity_in_many_batches_is_one_entity(store_url, tmp_path, small_batches):
    path = write_bundle(tmp_path / "b.json", connection_records(50))
    with open_session(store_url) as session:
        (summary,) = session.execute(f"ips = GET ipv4-addr FROM '{path}'")
        assert summary.entities == len(ADDRESSES)
        values = [row["value"] for row in session.get_variable("ips")]
        assert sorted(values) == sorted(ADDRESSES)
        session.execute(f"some = GET ipv4-addr FROM '{path}' WHERE value ISSUBSET '10.0.0.0/8'")
        assert sorted(r["value"] for r in session.get_variable("some")) == ADDRESSES[:3]
        # a second GET of the same entities: its own rows, the first variable unchanged
        session.execute(f"again = GET ipv4-addr FROM '{path}' WHERE value = '10.0.0.2'")
        assert [r["value"] for r in session.get_variable("again")] == ["10.0.0.2"]
        assert sorted(r["value"] for r in session.get_variable("ips")) == sorted(ADDRESSES)
        (table,) = session.execute("DISP ips ATTR value")
        assert table.total == len(ADDRESSES)
        (traffic,) = session.execute(f"traffic = GET network-traffic FROM '{path}'")
        assert traffic.entities == 50


ODD_VALUES = [
    "C:\\Windows\\System32\\cmd.exe",  # backslashes
    "tab\there, newline\nthere, return\rthere",
    "\\N",  # COPY's NULL, as text
    "quote ' and \" and \\\" and \\\\",
    "ünïcödé ✓",
    "",
]


def test_values_come_back_as_they_went_in(store_url, tmp_path):
    records = [{"0": {"type": "process", "pid": i + 1, "name": f"p{i}", "command_line": value,
                      "x_list": [value, i, True, None, {"k": value}],
                      "x_object": {"path": value, "n": i},
                      "is_hidden": i % 2 == 0, "x_big": 2**62 + i, "x_ratio": i / 3}}
               for i, value in enumerate(ODD_VALUES)]
    path = write_bundle(tmp_path / "odd.json", records)
    with open_session(store_url) as session:
        session.execute(f"procs = GET process FROM '{path}'")
        rows = {row["pid"]: row for row in session.get_variable("procs")}
        assert len(rows) == len(ODD_VALUES)
        for i, value in enumerate(ODD_VALUES):
            row = rows[i + 1]
            assert row["command_line"] == value
            assert json.loads(row["x_list"]) == [value, i, True, None, {"k": value}]
            # firepit flattens objects into columns
            assert (row["x_object.path"], row["x_object.n"]) == (value, i)
            assert bool(row["is_hidden"]) == (i % 2 == 0)
            assert row["x_big"] == 2**62 + i
            assert row["x_ratio"] == pytest.approx(i / 3)
        # matching reads what was stored: the odd values are found by equality
        for i, value in enumerate(ODD_VALUES):
            literal = json.dumps(value)[1:-1].replace("'", "\\'")
            session.execute(f"f{i} = GET process FROM procs WHERE command_line = '{literal}'")
            assert [r["pid"] for r in session.get_variable(f"f{i}")] == [i + 1]


def test_get_view_joins_from_its_query_rows(tmp_path):
    """SQLite: the view reads its query's rows through the query-id index and looks each
    entity up by id, so its first row needs no id list built first (14 s at 2M)."""
    path = write_bundle(tmp_path / "b.json", connection_records(20))
    with Session(session_id="plan", store_path=str(tmp_path / "s.db")) as session:
        session.execute(f"ips = GET ipv4-addr FROM '{path}' WHERE value != '10.0.0.1'")
        view = session.symtable["ips"].view
        plan = " | ".join(row["detail"] for row in session._store.fp.connection.execute(
            f'EXPLAIN QUERY PLAN SELECT * FROM "{view}"'))
        assert QUERIES_INDEX.strip('"') in plan, plan
        assert "LIST SUBQUERY" not in plan and "MATERIALIZE" not in plan, plan


def test_nul_in_a_list_keeps_list_matching(store_url, tmp_path):
    """PostgreSQL's jsonb refuses \\u0000: a list holding NUL is stored with U+FFFD, so
    its other elements still match (the entity is not lost from the GET)."""
    records = [{"0": {"type": "network-traffic", "src_port": 1, "protocols": ["tcp", "a\x00b"]}},
               {"0": {"type": "network-traffic", "src_port": 2, "protocols": ["udp"]}}]
    path = write_bundle(tmp_path / "nul.json", records)
    with open_session(store_url) as session:
        session.execute(f"tcp = GET network-traffic FROM '{path}' WHERE protocols[*] = 'tcp'")
        assert [r["src_port"] for r in session.get_variable("tcp")] == [1]


def test_whole_floats_fit_an_integer_column(store_url, tmp_path):
    """A port written 443.0 (as pandas writes integers beside a blank cell) goes into the
    column an earlier 80 made an integer one."""
    first = write_bundle(tmp_path / "a.json", [{"0": {"type": "network-traffic", "dst_port": 80}}])
    second = tmp_path / "b.json"
    write_bundle(second, [{"0": {"type": "network-traffic", "dst_port": 1}}])
    second.write_text(second.read_text().replace('"dst_port": 1}', '"dst_port": 443.0}'))
    with open_session(store_url) as session:
        session.execute(f"a = GET network-traffic FROM '{first}'")
        session.execute(f"b = GET network-traffic FROM '{second}'")
        assert [r["dst_port"] for r in session.get_variable("b")] == [443]
        session.execute("c = GET network-traffic FROM b WHERE dst_port = 443")
        assert [r["dst_port"] for r in session.get_variable("c")] == [443]


def test_nul_in_new_entities(store_url):
    """NEW goes through the same load as GET: PostgreSQL keeps U+FFFD for NUL (in text and
    in lists), SQLite keeps NUL."""
    with open_session(store_url) as session:
        session.execute('procs = NEW [{"type": "process", "pid": 1, "name": "a\\u0000b", '
                        '"x_tags": ["c\\u0000d"]}]')
        (row,) = session.get_variable("procs")
        nul = "\ufffd" if store_url.startswith("postgresql") else "\x00"
        assert row["name"] == f"a{nul}b"
        assert json.loads(row["x_tags"]) == [f"c{nul}d"]
