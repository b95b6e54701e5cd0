"""The Session API as documented (../shared/spec/000, 001), on real firepit stores."""

import os
import uuid

import pytest

from kestrel.errors import KestrelSyntaxError, UnknownAttribute, VariableNotFound
from kestrel.session import Session


def get_cmd(shared_data):
    return f"procs = GET process FROM '{shared_data}/doctored-1k.json' WHERE name = 'cmd.exe'"


def test_runtime_directory_is_temporary_and_removed(shared_data):
    with Session() as session:
        runtime_dir = session.runtime_directory
        assert os.path.isdir(runtime_dir)
        assert not session.runtime_directory_is_owned_by_upper_layer
        session.execute(get_cmd(shared_data))
    assert not os.path.exists(runtime_dir)


def test_runtime_directory_of_the_caller_is_kept(tmp_path):
    (tmp_path / "rt").mkdir()
    with Session(runtime_dir=str(tmp_path / "rt")) as session:
        assert session.runtime_directory_is_owned_by_upper_layer
    assert (tmp_path / "rt").is_dir()


def test_runtime_directory_the_session_creates_is_removed(tmp_path):
    """Seed 000: the upper layer owns a runtime_dir it created and passed in; one that
    does not exist yet is made by the session, which removes it on close (Kestrel v1)."""
    with Session(runtime_dir=str(tmp_path / "new")) as session:
        assert not session.runtime_directory_is_owned_by_upper_layer
        assert (tmp_path / "new" / "session.log").exists()
    assert not (tmp_path / "new").exists()


def test_debug_mode_keeps_directory(tmp_path):
    session = Session(debug_mode=True)
    session.close()
    assert os.path.isdir(session.runtime_directory)
    os.system(f"rm -rf '{session.runtime_directory}'")


def test_parse_returns_one_dict_per_statement():
    with Session() as session:
        parsed = session.parse("a = GET process FROM x.json WHERE pid = 4\nDISP a ATTR pid")
    assert [p["command"] for p in parsed] == ["get", "disp"]
    assert parsed[0]["output_var"] == "a"
    assert parsed[0]["where"]["value"] == 4


def test_variables_survive_a_failing_statement(shared_data):
    with Session() as session:
        session.execute(get_cmd(shared_data))
        before = session.get_variable("procs")
        with pytest.raises(UnknownAttribute):
            session.execute("procs = SORT procs BY no_such_attribute")
        with pytest.raises(VariableNotFound) as caught:
            session.execute("DISP nothing")
        assert 'defined: procs' in str(caught.value)
        with pytest.raises(KestrelSyntaxError):
            session.execute("procs = GET process WHERE")
        assert session.get_variable("procs") == before
        assert session.get_variable_names() == ["procs"]


def test_create_variable_and_get_variable():
    with Session() as session:
        session.create_variable("ips", ["10.0.0.1", "10.0.0.2"], "ipv4-addr")
        values = sorted(e["value"] for e in session.get_variable("ips"))
    assert values == ["10.0.0.1", "10.0.0.2"]


def test_reopened_store_restores_variables(shared_data, store_url):
    session_id = "s" + uuid.uuid4().hex
    with Session(session_id=session_id, store_path=store_url) as session:
        session.execute(get_cmd(shared_data))
        session.execute("procs = SORT procs BY pid DESC")
        expected = session.get_variable("procs")
    with Session(session_id=session_id, store_path=store_url) as session:
        assert session.get_variable_names() == ["procs"]
        assert session.get_variable("procs") == expected
        assert [p["pid"] for p in expected] == sorted((p["pid"] for p in expected), reverse=True)
