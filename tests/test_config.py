"""Configuration: package defaults < KESTREL_CONFIG file < environment, seen through a Session."""

import json
import shutil
import uuid

import pytest

from kestrel.config import load_config
from kestrel.errors import KestrelError
from kestrel.results import Table
from kestrel.session import Session


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    """Write a user config and point KESTREL_CONFIG at it; no KESTREL_DISP_ROWS leaks in."""
    monkeypatch.delenv("KESTREL_DISP_ROWS", raising=False)
    path = tmp_path / "kestrel.yaml"

    def write(text):
        path.write_text(text)
        monkeypatch.setenv("KESTREL_CONFIG", str(path))
        return path

    return write


def _disp(shared_data, statement="DISP procs ATTR name, pid SORT BY pid ASC"):
    with Session(session_id="cfg_" + uuid.uuid4().hex[:12]) as session:
        session.execute(f"procs = GET process FROM '{shared_data}/doctored-1k.json' "
                        "WHERE name = 'cmd.exe'")
        tables = [r for r in session.execute(statement) if isinstance(r, Table)]
    assert len(tables) == 1
    return tables[0]


def test_disp_rows_from_file(config_file, shared_data, cmd_pids):
    config_file("disp_rows: 2\n")
    table = _disp(shared_data)
    assert table.shown == 2
    assert list(table.dataframe["pid"]) == cmd_pids[:2]
    assert table.total == len(cmd_pids)
    assert f"showing rows 1-2 of {len(cmd_pids)}" in table.to_text()


def test_limit_beats_disp_rows(config_file, shared_data, cmd_pids):
    config_file("disp_rows: 2\n")
    table = _disp(shared_data, "DISP procs ATTR name, pid SORT BY pid ASC LIMIT 5")
    assert list(table.dataframe["pid"]) == cmd_pids[:5]


def test_env_beats_file(config_file, shared_data, cmd_pids, monkeypatch):
    config_file("disp_rows: 2\n")
    monkeypatch.setenv("KESTREL_DISP_ROWS", "3")
    table = _disp(shared_data)
    assert list(table.dataframe["pid"]) == cmd_pids[:3]
    assert f"showing rows 1-3 of {len(cmd_pids)}" in table.to_text()


def test_defaults_without_user_file(tmp_path, monkeypatch):
    monkeypatch.delenv("KESTREL_DISP_ROWS", raising=False)
    monkeypatch.delenv("KESTREL_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.config/kestrel/kestrel.yaml
    config = load_config()
    assert (config.disp_rows, config.prefetch_find, config.http_timeout) == (50, True, 60)
    assert (config.timerange_start_offset, config.timerange_stop_offset) == (-300, 300)


def test_named_config_file_must_exist(tmp_path, monkeypatch):
    monkeypatch.setenv("KESTREL_CONFIG", str(tmp_path / "absent.yaml"))
    with pytest.raises(KestrelError, match="absent.yaml, which is not a file"):
        load_config()


def test_file_overrides_only_its_keys(config_file):
    config_file("http_timeout: 5\nprefetch_find: false\n")
    config = load_config()
    assert (config.http_timeout, config.prefetch_find, config.disp_rows) == (5, False, 50)


def test_empty_file_means_defaults(config_file):
    config_file("# nothing set\n")
    assert load_config().disp_rows == 50


def test_unknown_key_names_file(config_file):
    path = config_file("disp_rows: 2\nno_such_key: 1\n")
    with pytest.raises(KestrelError) as info:
        load_config()
    assert str(path) in str(info.value)
    assert "no_such_key" in str(info.value)


def test_unknown_key_fails_session(config_file):
    import tempfile

    path = config_file("no_such_key: 1\n")
    session_id = "cfg_" + uuid.uuid4().hex[:12]
    try:
        with pytest.raises(KestrelError) as info:
            Session(session_id=session_id)
        assert str(path) in str(info.value)
    finally:  # a failed Session() leaves its runtime directory (see the test below)
        shutil.rmtree(f"{tempfile.gettempdir()}/kestrel-session-{session_id}", ignore_errors=True)


def test_bad_yaml_names_file(config_file):
    path = config_file("disp_rows: [2\n")
    with pytest.raises(KestrelError) as info:
        load_config()
    assert str(path) in str(info.value)


def test_bad_value_names_file_and_key(config_file):
    path = config_file("disp_rows: lots\n")
    with pytest.raises(KestrelError) as info:
        load_config()
    assert str(path) in str(info.value)
    assert "disp_rows" in str(info.value)  # which key is wrong


@pytest.mark.parametrize("text", ["- disp_rows\n- 2\n", "just a string\n", "42\n"],
                         ids=["list", "string", "number"])
def test_yaml_not_a_mapping_is_kestrel_error(config_file, text):
    path = config_file(text)
    with pytest.raises(KestrelError) as info:
        load_config()
    assert str(path) in str(info.value)


def test_bad_env_value_is_kestrel_error(config_file, monkeypatch):
    config_file("disp_rows: 2\n")
    monkeypatch.setenv("KESTREL_DISP_ROWS", "many")
    with pytest.raises(KestrelError) as info:
        load_config()
    # the culprit is the environment variable, not the (valid) file
    assert "KESTREL_DISP_ROWS" in str(info.value)


def test_failed_session_leaves_nothing_behind(config_file):
    import logging
    import os
    import tempfile

    config_file("no_such_key: 1\n")
    session_id = "cfg_" + uuid.uuid4().hex[:12]
    handlers = {n: list(logging.getLogger(n).handlers) for n in ("kestrel", "firepit")}
    with pytest.raises(KestrelError):
        Session(session_id=session_id)
    leaked = os.path.join(tempfile.gettempdir(), f"kestrel-session-{session_id}")
    try:
        assert not os.path.exists(leaked), f"runtime directory left behind: {leaked}"
        assert {n: list(logging.getLogger(n).handlers) for n in handlers} == handlers
    finally:
        for n, before in handlers.items():
            for h in logging.getLogger(n).handlers[:]:
                if h not in before:
                    logging.getLogger(n).removeHandler(h)
                    h.close()
        shutil.rmtree(leaked, ignore_errors=True)


def _parents_expected(bundle):
    """Parents of cmd.exe processes, found inside the records GET stores (from raw JSON)."""
    names, pids, records = set(), set(), 0
    for r in bundle["objects"]:
        if r["type"] != "observed-data":
            continue
        objs = r["objects"]
        found = False
        for o in objs.values():
            if o.get("type") == "process" and o.get("name") == "cmd.exe" and o.get("parent_ref") in objs:
                parent = objs[o["parent_ref"]]
                found = True
                if parent.get("name") is not None:
                    names.add(parent["name"])
                if parent.get("pid") is not None:
                    pids.add(parent["pid"])
        records += found
    return sorted(names), sorted(pids), records


def test_prefetch_off_find_uses_the_store(config_file, tmp_path, shared_data):
    config_file("prefetch_find: false\n")
    bundle_path = tmp_path / "copy.json"
    shutil.copy(shared_data / "doctored-1k.json", bundle_path)
    want_names, want_pids, want_records = _parents_expected(
        json.loads(bundle_path.read_text()))
    assert want_pids
    with Session(session_id="cfg_" + uuid.uuid4().hex[:12]) as session:
        assert session.config.prefetch_find is False
        session.execute(f"procs = GET process FROM '{bundle_path}' WHERE name = 'cmd.exe'")
        bundle_path.unlink()  # FIND must not go back to the source
        session.execute("parents = FIND process CREATED procs")
        rows = session.get_variable("parents")
        assert sorted({p["name"] for p in rows if p.get("name") is not None}) == want_names
        assert sorted({p["pid"] for p in rows if p.get("pid") is not None}) == want_pids
        assert session.variable_summary("parents").records == want_records
        explained = "\n".join(r.to_text() for r in session.execute("EXPLAIN parents"))
        assert "prefetch:" not in explained


def test_prefetch_on_asks_the_source(config_file, shared_data):
    config_file("prefetch_find: true\n")
    with Session(session_id="cfg_" + uuid.uuid4().hex[:12]) as session:
        session.execute(f"procs = GET process FROM '{shared_data}/doctored-1k.json' "
                        "WHERE name = 'cmd.exe'")
        session.execute("parents = FIND process CREATED procs")
        explained = "\n".join(r.to_text() for r in session.execute("EXPLAIN parents"))
        assert "prefetch" in explained
