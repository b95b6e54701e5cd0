"""The store's own ingest (store/flatten.py, store/tables.py) against firepit's cache():
the same bundle, stored both ways, gives the same tables, columns, column types and
rows, on SQLite (in the same row order) and PostgreSQL.

firepit gives a random id to an object with no identifying properties (a process
without a unique id); both sides draw them from one counter here, so that the ids
agree and every other value can be compared exactly.
"""

import copy
import itertools
import json
import uuid

import firepit
import pytest
from firepit.pgcommon import pg_shorten
from firepit.splitter import shorten_extension_name

from kestrel.store import flatten as flatten_module
from kestrel.store.views import Store

BUNDLES = ["doctored-1k.json", "log4shell_bundle.json", "powershell_search_stix_result.json",
           "test_bundle.json", "test_bundle_2.json", "test_bundle_4.json", "test_bundle_5.json",
           "test_bundle_nt_1.json", "test_bundle_nt_2.json"]


def record(i, objects, **extra):
    stamp = f"2024-01-01T00:00:{i % 60:02d}.000Z"
    return {"type": "observed-data", "id": f"observed-data--00000000-0000-4000-8000-{i:012d}",
            "created": stamp, "modified": stamp, "first_observed": stamp,
            "last_observed": stamp, "number_observed": 1, "objects": objects, **extra}


def shapes_bundle():
    """Shapes the shared data lacks: a process tree within one record, _refs lists, a
    reference to a missing object and to itself, hashes firepit prefers or not,
    extensions and long property names (shortened columns), a custom object keeping
    its nested values, a host asset giving processes ids, one entity in many records
    with values appearing later, a property first seen in a later record."""
    long_name = "x_" + "very_long_property_name_" * 3
    records = [
        record(0, {"0": {"type": "process", "pid": 4, "name": "a.exe", "parent_ref": "1",
                         "child_refs": ["2"], "opened_connection_refs": ["3", "9"]},
                   "1": {"type": "process", "pid": 1, "name": "init", "parent_ref": "1"},
                   "2": {"type": "process", "pid": 5, "binary_ref": "7"},
                   "3": {"type": "network-traffic", "src_ref": "4", "dst_ref": "5",
                         "src_port": 5000, "dst_port": 443, "protocols": ["tcp", "tls"]},
                   "4": {"type": "ipv4-addr", "value": "10.0.0.1"},
                   "5": {"type": "ipv4-addr", "value": "10.0.0.2"},
                   "6": {"type": "file", "name": "f", "hashes": {"SHA-256": "ab", "SHA-1": "cd"}},
                   "7": {"type": "file", "name": "g", "hashes": {"MD5": "ef", "SHA-1": "01"},
                         "parent_directory_ref": "8", long_name: 1},
                   "8": {"type": "directory", "path": "C:\\Windows"}}),
        record(1, {"0": {"type": "process", "pid": 7, "name": "b",
                         "extensions": {"x-oca-process-ext": {"process_uid": "u-1",
                                                              "depth": {"n": 2}}}},
                   "1": {"type": "x-custom", "nested": {"a": {"b": 1}}, "plain": "p"},
                   "2": {"type": "x-oca-asset", "hostname": "host-1"},
                   "3": {"type": "process", "pid": 8, "name": "c"},
                   "4": {"type": "user-account", "user_id": "root"},
                   "5": {"type": "ipv4-addr", "value": "10.0.0.1", "x_later": "seen"}}),
        record(2, {"0": {"type": "ipv4-addr", "value": "10.0.0.2", "x_later": "again"},
                   "1": {"type": "domain-name", "value": "example.com",
                         "resolves_to_refs": ["0", "5"]},
                   "2": {"type": "user-account", "user_id": "root", "display_name": "R"}},
               x_custom_record="kept"),
    ]
    identity = {"type": "identity", "id": "identity--00000000-0000-4000-8000-000000000001",
                "identity_class": "events", "name": "shapes", "created": "2024-01-01T00:00:00Z",
                "modified": "2024-01-01T00:00:00Z"}
    return {"type": "bundle", "id": "bundle--shapes", "objects": [identity, *records]}


def stix21_bundle():
    """STIX 2.1: objects beside the records, which refer to them."""
    objects = [
        {"type": "ipv4-addr", "spec_version": "2.1", "id": "ipv4-addr--1", "value": "10.1.1.1"},
        {"type": "ipv4-addr", "spec_version": "2.1", "id": "ipv4-addr--2", "value": "10.1.1.2"},
        {"type": "network-traffic", "spec_version": "2.1", "id": "network-traffic--3",
         "src_ref": "ipv4-addr--1", "dst_ref": "ipv4-addr--2", "dst_port": 80,
         "protocols": ["tcp"]},
        {"type": "domain-name", "spec_version": "2.1", "id": "domain-name--4",
         "value": "x.org", "resolves_to_refs": ["ipv4-addr--1", "ipv4-addr--2"]},
        {"type": "observed-data", "spec_version": "2.1", "id": "observed-data--5",
         "created": "2024-01-01T00:00:00Z", "modified": "2024-01-01T00:00:00Z",
         "first_observed": "2024-01-01T00:00:00Z", "last_observed": "2024-01-01T00:00:00Z",
         "number_observed": 1,
         "object_refs": ["ipv4-addr--1", "ipv4-addr--2", "network-traffic--3", "domain-name--4"]},
    ]
    return {"type": "bundle", "id": "bundle--21", "objects": objects}


def stored_tables(fp, ordered: bool) -> dict:
    """{table: (columns with types, rows)} of the data tables (not __queries, which
    firepit fills for every type and the store for the GET's type only)."""
    tables = {}
    for table in fp.types(private=True):
        if (table in ("__queries", "__symtable", "__metadata", "__kestrel_session")
                or table.startswith("sqlite_")
                or fp._is_sql_view(table)):
            continue
        columns = [(c["name"], c["type"]) for c in fp.schema(table)]
        order = " ORDER BY rowid" if ordered else ""
        rows = [tuple(row.values()) for row in fp._query(f'SELECT * FROM "{table}"{order}')]
        tables[table] = (columns, rows if ordered else sorted(rows, key=repr))
    return tables


def compare(bundle, store_url, tmp_path, monkeypatch):
    """Store `bundle` both ways, the random ids drawn from the same sequence each time."""
    results = []
    for side in ("firepit", "store"):
        counter = itertools.count()

        def next_id(counter=counter):
            return uuid.UUID(f"00000000-0000-4000-8000-{next(counter):012d}")

        monkeypatch.setattr(uuid, "uuid4", next_id)
        monkeypatch.setattr(flatten_module, "_uuid4", lambda next_id=next_id: str(next_id()))
        session_id = f"{side}{uuid.UUID(bytes=__import__('os').urandom(16)).hex[:10]}"
        location = str(tmp_path / f"{side}.db") if not store_url.startswith("postgresql") \
            else store_url
        if side == "firepit":
            fp = firepit.get_storage(location, session_id)
            fp.cache("q", [copy.deepcopy(bundle)])
        else:
            store = Store(location, session_id)
            store.ingest("q", [copy.deepcopy(bundle)])
            fp = store.fp
        results.append(stored_tables(fp, ordered=fp.dialect == "sqlite3"))
        fp.close()
    return results


def firepit_names(tables):
    """`tables` with each long property's column named as firepit names it on PostgreSQL
    (32 hex digits of the path's uuid5): the store keeps the path's first 40 bytes and a
    digest instead (README "Names onto the store"), the one difference allowed."""
    if "__columns" not in tables:
        return tables
    columns, rows = tables["__columns"]
    names = [name for name, _ in columns]
    renamed, entries = {}, []
    for row in rows:
        entry = dict(zip(names, row))
        path, short = entry["path"], entry["shortname"]
        shortened = shorten_extension_name(path)
        if len(shortened.encode()) > 48 and short != shortened:
            assert short.startswith(shortened[:40]) and len(short) <= 63
            renamed[entry["otype"], short] = entry["shortname"] = pg_shorten(path)
        entries.append(tuple(entry[name] for name in names))
    tables = {**tables, "__columns": (columns, entries)}
    for (table, short), theirs in renamed.items():
        columns, rows = tables[table]
        tables[table] = ([(theirs if name == short else name, kind) for name, kind in columns],
                         rows)
    return tables


def assert_same_tables(expected, actual):
    actual = firepit_names(actual)
    assert sorted(actual) == sorted(expected)
    for table, (columns, rows) in expected.items():
        assert actual[table][0] == columns, f"columns of {table}"
        assert len(actual[table][1]) == len(rows), f"rows of {table}"
        for theirs, ours in zip(rows, actual[table][1]):
            assert ours == theirs, f"a row of {table}"


@pytest.mark.parametrize("name", BUNDLES)
def test_shared_bundles_stored_as_firepit_stores_them(name, shared_data, store_url, tmp_path,
                                                      monkeypatch):
    bundle = json.loads((shared_data / name).read_text())
    expected, actual = compare(bundle, store_url, tmp_path, monkeypatch)
    assert sum(len(rows) for _, rows in expected.values()) > 0
    assert_same_tables(expected, actual)


@pytest.mark.parametrize("make", [shapes_bundle, stix21_bundle], ids=["shapes", "stix21"])
def test_other_shapes_stored_as_firepit_stores_them(make, store_url, tmp_path, monkeypatch):
    expected, actual = compare(make(), store_url, tmp_path, monkeypatch)
    assert_same_tables(expected, actual)


def test_ranks_as_firepit_gives_them(store_url, tmp_path, monkeypatch):
    """The record's process is ranked 1, not its parent; the source address, not the
    destination (independently of firepit: read off the bundle written here)."""
    bundle = shapes_bundle()
    _, actual = compare(bundle, store_url, tmp_path, monkeypatch)
    columns, rows = actual["__contains"]
    assert [c for c, _ in columns] == ["source_ref", "target_ref", "x_firepit_rank"]
    ranked = {(source[-2:], target.split("--")[0]) for source, target, rank in rows if rank == 1}
    assert ("00", "process") in ranked and ("00", "ipv4-addr") in ranked
    ranked_ids = {target for source, target, rank in rows if rank == 1}
    names = [c for c, _ in actual["process"][0]]
    processes = [dict(zip(names, row)) for row in actual["process"][1]]
    ranked_names = {p["name"] for p in processes if p["id"] in ranked_ids}
    assert "a.exe" in ranked_names and "init" not in ranked_names
