"""Hardening (#26): credentials in every URL form stay out of errors; malformed kernel
requests get an error reply instead of none; a huge open string stays small."""

import pathlib
import subprocess
import sys

import pandas as pd
import pytest

from kestrel.errors import DataSourceError, KestrelError, StoreError
from kestrel.session import Session

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "kernel"))
from kerneltools import start_kernel  # noqa: E402

SECRET = "s3cret-Query-Pass"


@pytest.mark.parametrize("url", [
    f"postgresql://hunter@127.0.0.1:1/db?password={SECRET}",
    f"postgresql://hunter@127.0.0.1:1/db?sslmode=disable&password={SECRET}",
    f"postgresql://hunter:{SECRET}@127.0.0.1:1/db",
])
def test_a_password_in_any_url_form_is_redacted(url, tmp_path):
    with pytest.raises(StoreError) as caught:
        Session(store_path=url, runtime_dir=str(tmp_path / "rt"))
    assert SECRET not in str(caught.value)
    assert "***" in str(caught.value)


@pytest.mark.parametrize("msg_type, content, problem", [
    ("complete_request", {"code": None, "cursor_pos": 3}, "code must be a string"),
    ("complete_request", {"code": "DISP p", "cursor_pos": "x"},
     "cursor_pos must be a whole number, not 'x'"),
    ("inspect_request", {"code": "DISP p", "cursor_pos": [1], "detail_level": 0},
     "cursor_pos must be a whole number, not [1]"),
    ("is_complete_request", {"code": 7}, "code must be a string"),
    ("execute_request", {"code": None, "silent": False, "store_history": True,
                         "user_expressions": {}, "allow_stdin": False}, "code must be a string"),
])
def test_a_malformed_request_gets_an_error_reply(kernel_spec, tmp_path, msg_type, content,
                                                 problem):
    km, kc = start_kernel(tmp_path)
    try:
        msg = kc.session.msg(msg_type, content)
        kc.shell_channel.send(msg)
        reply = kc.get_shell_msg(timeout=20)
        while reply["parent_header"]["msg_id"] != msg["header"]["msg_id"]:
            reply = kc.get_shell_msg(timeout=20)  # replies to start-up requests come first
        assert reply["content"]["status"] == "error"
        assert reply["content"]["evalue"] == f"malformed request: {problem}"
        assert kc.kernel_info(reply=True, timeout=20)["content"]["status"] == "ok"  # still up
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.mark.parametrize("connector", ["../../x", "os.path", "a/b"])
def test_a_connector_name_with_path_parts_is_refused(connector, monkeypatch, tmp_path):
    monkeypatch.setenv("STIXSHIFTER_EVIL_CONNECTOR", connector)
    monkeypatch.setenv("STIXSHIFTER_EVIL_CONNECTION", '{"host": "127.0.0.1"}')
    monkeypatch.setenv("STIXSHIFTER_EVIL_CONFIG", '{"auth": {}}')
    with Session(runtime_dir=str(tmp_path / "rt")) as session:
        with pytest.raises(DataSourceError) as caught:
            session.execute("p = GET process FROM stixshifter://evil WHERE pid = 1")
    assert caught.value.message == (
        "STIXSHIFTER_EVIL_CONNECTOR must name a connector (letters, digits and _, e.g. "
        f"elastic_ecs), not {connector!r}")


def test_a_configuration_that_nests_too_deeply_or_is_a_folder(monkeypatch, tmp_path):
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    monkeypatch.setenv("KESTREL_CONFIG", str(deep))
    with pytest.raises(KestrelError) as caught:
        Session(runtime_dir=str(tmp_path / "rt"))
    assert caught.value.message == f"cannot read the configuration {deep}: it nests too deeply"
    monkeypatch.delenv("KESTREL_CONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    folder = tmp_path / ".config" / "kestrel" / "kestrel.yaml"
    folder.mkdir(parents=True)
    with pytest.raises(KestrelError) as caught:
        Session(runtime_dir=str(tmp_path / "rt"))
    assert caught.value.message == f"the configuration {folder} is not a file"


def test_save_to_a_name_too_long_is_a_data_source_error(tmp_path):
    with Session(runtime_dir=str(tmp_path / "rt")) as session:
        session.execute('p = NEW process [{"pid": 1}]')
        with pytest.raises(DataSourceError) as caught:
            session.execute(f"SAVE p TO '{tmp_path}/{'a' * 300}.csv'")
        assert caught.value.message.endswith(": File name too long")
        longest = tmp_path / ("b" * 251 + ".csv")  # 255 bytes: the folder takes it
        session.execute(f"SAVE p TO '{longest}'")
        assert pd.read_csv(longest)["pid"].tolist() == [1]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_an_unterminated_megabyte_string_stays_small(kernel_spec, tmp_path):
    """is_complete, completion and inspection on a cell holding a 1 MB string that never
    ends answer in a bounded process (the lexer's string pattern kept a backtracking
    state per character: 2.5 GB), and the kernel answers "incomplete"."""
    opened = "p = GET process FROM file:///x.json WHERE name = '" + "a" * 1_000_000
    probe = (
        "import sys\n"
        "from kestrel.session import Session\n"
        "code = sys.stdin.read()\n"
        "print(Session.is_complete(code))\n"
        "print(Session.is_complete(\"x = NEW process ['a']\\n\" + code[:-10] + \"'\\nDISP x\"))\n"
        "with Session() as session:\n"
        "    session.complete(code, len(code))\n"
        "    session.inspect(code, len(code))\n"
        # the peak of this process's own memory: ru_maxrss keeps the parent's across
        # exec, and pytest's grows past 600 MB over the whole suite
        "print([int(line.split()[1]) // 1024 for line in open('/proc/self/status')\n"
        "       if line.startswith('VmHWM:')][0])\n")
    done = subprocess.run([sys.executable, "-c", probe], input=opened, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    incomplete, complete, megabytes = done.stdout.split()
    assert (incomplete, complete) == ("incomplete", "complete")
    assert int(megabytes) < 600
    km, kc = start_kernel(tmp_path)
    try:
        msg = kc.session.msg("is_complete_request", {"code": opened})
        kc.shell_channel.send(msg)
        reply = kc.get_shell_msg(timeout=60)
        while reply["parent_header"]["msg_id"] != msg["header"]["msg_id"]:
            reply = kc.get_shell_msg(timeout=60)
        assert reply["content"]["status"] == "incomplete"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
