"""Kestrel v1 parity of data source locations (issue #17): several sources in one FROM,
and paths and file:// URLs relative to the working directory.

Expected values come from the raw bundles, read here with plain json.
"""

import json
import uuid

import pytest

from kestrel.errors import DataSourceError
from kestrel.session import Session

B4, B5 = "test_bundle_4.json", "test_bundle_5.json"


def _records(path):
    with open(path) as f:
        return [o for o in json.load(f)["objects"] if o["type"] == "observed-data"]


def _processes(path, name=None):
    """(record id, process) for each process (named `name`) in the bundle at `path`."""
    return [(r["id"], p) for r in _records(path) for p in r["objects"].values()
            if p["type"] == "process" and name in (None, p.get("name"))]


@pytest.fixture
def both(shared_data):
    """The two small bundles, absolute paths."""
    return shared_data / B4, shared_data / B5


@pytest.fixture
def hunt(store_url):
    with Session(session_id="v1src_" + uuid.uuid4().hex[:12], store_path=store_url) as hunt:
        yield hunt


@pytest.fixture
def session():
    with Session(session_id="v1src_" + uuid.uuid4().hex[:12]) as session:
        yield session


def _pids(session, name):
    return sorted(p["pid"] for p in session.get_variable(name))


# ------------------------------------------------------------------ several sources


@pytest.mark.parametrize("form", [
    "file://{a},file://{b}",   # each its own URI
    "file://{a},{b}",          # v1: an entry without a scheme takes the first one's
    "'{a},{b}'",               # paths
    "'{a},file://{b}'",
], ids=["uris", "v1-form", "paths", "path-then-uri"])
def test_several_files_in_one_from(hunt, both, form):
    a, b = both
    found = _processes(a, "powershell.exe") + _processes(b, "powershell.exe")
    assert len(found) == 5  # the independent count: 2 in one bundle, 3 in the other
    hunt.execute(f"ps = GET process FROM {form.format(a=a, b=b)} WHERE name = 'powershell.exe'")
    summary = hunt.variable_summary("ps")
    assert (summary.entities, summary.records) == (len(found), len({r for r, _ in found}))
    assert _pids(hunt, "ps") == sorted(p["pid"] for _, p in found)


def test_limit_counts_across_the_sources(hunt, both):
    """LIMIT 5 of the two bundles' 10 processes (4 + 6, each with its own x_unique_id):
    five, so some come from the second bundle."""
    a, b = both
    first = {p["x_unique_id"] for _, p in _processes(a)}
    second = {p["x_unique_id"] for _, p in _processes(b)}
    assert (len(first), len(second), first & second) == (4, 6, set())
    hunt.execute(f"everything = GET process FROM file://{a},file://{b}\n"
                 f"five = GET process FROM file://{a},file://{b} LIMIT 5")
    assert hunt.variable_summary("everything").entities == len(first | second)
    got = {p["x_unique_id"] for p in hunt.get_variable("five")}
    assert len(got) == 5 and got <= first | second and got & second


def test_explain_shows_each_sources_native_query(session, both):
    a, b = both
    uri = f"file://{a},file://{b}"
    session.execute(f"ps = GET process FROM {uri} WHERE name = 'powershell.exe'")
    text = session.execute("EXPLAIN ps")[0].to_text()
    for path in both:
        assert (f"    {uri}: read {path}: {len(_records(path))} observations, kept in the "
                "store") in text


def test_sources_used_so_far_lists_each(session, both):
    a, b = both
    session.execute(f"one = GET process FROM '{a}' WHERE pid = 1\n"
                    f"ps = GET process FROM file://{a},{b} WHERE name = 'powershell.exe'")
    files = [str(a), f"file://{a}", f"file://{b}"]
    assert [u for u in session.data_source_uris() if not u.startswith("stixshifter://")] == files
    assert set(files) <= set(session.complete("x = GET process FROM ").matches)
    session.execute("again = GET process WHERE name = 'powershell.exe'")  # the last FROM, whole
    assert _pids(session, "again") == _pids(session, "ps")


def test_find_on_a_variable_of_several_sources(hunt, both):
    """FIND finds every part in the store; the parents of the powershell processes are the
    processes their parent_ref names, in each bundle."""
    a, b = both
    parents = []
    for path in both:
        for record in _records(path):
            objects = record["objects"]
            parents += [objects[p["parent_ref"]]["pid"] for p in objects.values()
                        if p["type"] == "process" and p.get("name") == "powershell.exe"]
    hunt.execute(f"ps = GET process FROM file://{a},file://{b} WHERE name = 'powershell.exe'\n"
                 "parents = FIND process CREATED ps")
    assert _pids(hunt, "parents") == sorted(parents)
    explain = hunt.execute("EXPLAIN parents")[0].to_text()
    assert f"prefetch: {a} unchanged: answered from the store's copy" in explain
    assert f"prefetch: {b} unchanged: answered from the store's copy" in explain


@pytest.mark.parametrize("source, message", [
    ("file://{a},file://{tmp}/missing.json",
     "no STIX bundle at file://{tmp}/missing.json (file not found)"),
    ("'{a},{tmp}/missing.json'", "no STIX bundle at {tmp}/missing.json (file not found)"),
    ("file://{a},nosuch://host/x",
     'nosuch://host/x: unknown data source scheme "nosuch://" '
     "(known: file://, http://, https://, stixshifter://)"),
    ("'{a},,{b}'", "{a},,{b}: a data source between commas is empty"),
    ("'{a},'", "{a},: a data source between commas is empty"),
], ids=["missing-uri", "missing-path", "unknown-scheme", "empty-entry", "trailing-comma"])
def test_a_failing_part_names_itself(session, both, tmp_path, source, message):
    a, b = both
    session.execute(f"ps = GET process FROM '{a}' WHERE name = 'powershell.exe'")
    before = _pids(session, "ps")
    with pytest.raises(DataSourceError) as caught:
        session.execute(f"ps = GET process FROM {source.format(a=a, b=b, tmp=tmp_path)} "
                        "WHERE name = 'powershell.exe'")
    assert caught.value.message == message.format(a=a, b=b, tmp=tmp_path)
    assert session.get_variable_names() == ["ps"] and _pids(session, "ps") == before


def test_bad_json_in_a_later_part_names_that_file(session, both, tmp_path):
    a, b = both
    half = tmp_path / "half.json"
    text = b.read_text()
    half.write_text(text[: len(text) // 2])
    with pytest.raises(DataSourceError) as caught:
        session.execute(f"ps = GET process FROM file://{a},file://{half} WHERE pid > 0")
    assert caught.value.message.startswith(f"{half} is not valid JSON (")
    assert "ps" not in session.get_variable_names()


# ------------------------------------------------------------------ relative paths


@pytest.fixture
def beside_data(shared_data, monkeypatch):
    """The working directory is the data folder's parent; returns the folder's name."""
    monkeypatch.chdir(shared_data.parent)
    return shared_data.name


@pytest.mark.parametrize("form", [
    "{d}/doctored-1k.json",          # a bare path
    "'{d}/doctored-1k.json'",
    "file://{d}/doctored-1k.json",    # v1: what follows file:// is the path, not a host
    "file://./{d}/doctored-1k.json",
    "'{d}/doctored-1k.*'",             # a glob
], ids=["path", "quoted", "file-url", "file-url-dot", "glob"])
def test_relative_to_the_working_directory(session, shared_data, beside_data, form):
    cmd = _processes(shared_data / "doctored-1k.json", "cmd.exe")
    assert len({r for r, _ in cmd}) == 14
    session.execute(f"p = GET process FROM {form.format(d=beside_data)} WHERE name = 'cmd.exe'")
    assert session.variable_summary("p").records == len({r for r, _ in cmd})
    assert _pids(session, "p") == sorted(p["pid"] for _, p in cmd)


def test_relative_files_in_one_from(session, both, beside_data):
    found = [p["pid"] for path in both for _, p in _processes(path, "powershell.exe")]
    session.execute(f"ps = GET process FROM file://{beside_data}/{B4},{beside_data}/{B5} "
                    "WHERE name = 'powershell.exe'")
    assert _pids(session, "ps") == sorted(found)


def test_absolute_file_url_elsewhere(session, shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bundle = shared_data / "doctored-1k.json"
    session.execute(f"p = GET process FROM file://{bundle} WHERE name = 'cmd.exe'")
    assert _pids(session, "p") == sorted(p["pid"] for _, p in _processes(bundle, "cmd.exe"))


def test_file_colon_without_slashes_is_refused(session, beside_data):
    """v1 reads 'file:./x' as a path named so; here it says what to write instead."""
    with pytest.raises(DataSourceError) as caught:
        session.execute(f"p = GET process FROM 'file:./{beside_data}/doctored-1k.json' "
                        "WHERE name = 'cmd.exe'")
    assert caught.value.message == (
        f"file:./{beside_data}/doctored-1k.json is no file URL: write file://PATH "
        "(file:///abs/x.json, file://data/x.json) or the path alone")
