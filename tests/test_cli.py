"""`kestrel FILE` as a user runs it: a real subprocess (`python -m kestrel`) on temp huntflows."""

import json
import os
import re
import uuid
import subprocess
import sys

import pytest


def run_cli(*args, stdin=None, cwd=None, env=None):
    full_env = dict(os.environ)
    full_env.pop("KESTREL_CONFIG", None)
    full_env.pop("KESTREL_DISP_ROWS", None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "kestrel", *map(str, args)],
                          input=stdin, capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=full_env)


def _huntflow(shared_data):
    return (f"procs = GET process FROM '{shared_data}/doctored-1k.json' WHERE name = 'cmd.exe'\n"
            "DISP procs ATTR name, pid SORT BY pid ASC LIMIT 3\n")


def test_success_prints_summaries_and_tables(tmp_path, shared_data, cmd_pids):
    hf = tmp_path / "hunt.hf"
    hf.write_text(_huntflow(shared_data))
    proc = run_cli(hf)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(rf"procs: {len(cmd_pids)} process entities \(14 occurrences\) in 14 "
                     r"records \(GET", out), out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if re.fullmatch(r"\s*name\s+pid\s*", line))
    rows = [line.split() for line in lines[header + 1: header + 4]]
    assert rows == [["cmd.exe", str(pid)] for pid in cmd_pids[:3]], out
    assert f"showing rows 1-3 of {len(cmd_pids)}" in out
    assert "Traceback" not in proc.stderr


def test_describe_prints_the_statistics(tmp_path, shared_data, cmd_pids):
    """count is of values (one per entity: 14 cmd.exe processes), unique of distinct ones."""
    bundle = json.loads((shared_data / "doctored-1k.json").read_text())
    entities = [o for r in bundle["objects"] if r["type"] == "observed-data"
                for o in r["objects"].values()
                if o["type"] == "process" and o.get("name") == "cmd.exe"]
    hf = tmp_path / "describe.hf"
    hf.write_text(_huntflow(shared_data) + "DESCRIBE procs.pid\n")
    proc = run_cli(hf)
    assert proc.returncode == 0, proc.stderr
    block = proc.stdout.split("DESCRIBE procs.pid\n", 1)[1].splitlines()
    stats = dict(line.split(None, 1) for line in block[:7])
    assert (stats["count"], stats["unique"]) == (str(len(entities)), str(len(cmd_pids)))
    assert (stats["min"], stats["max"]) == (str(min(cmd_pids)), str(max(cmd_pids)))


def test_a_typo_in_a_where_exits_1(tmp_path, shared_data):
    hf = tmp_path / "typo.hf"
    hf.write_text(f"procs = GET process FROM '{shared_data}/doctored-1k.json' WHERE nmae = 'x'\n")
    proc = run_cli(hf)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith('UnknownAttribute: line 1, column ')
    assert 'hint: did you mean "name"?' in proc.stderr and "Traceback" not in proc.stderr


def test_syntax_error_exit_1_with_caret(tmp_path):
    hf = tmp_path / "bad.hf"
    hf.write_text("# a comment\np2 = FIND process CREATED BY WHERE pid = 4\n")
    proc = run_cli(hf)
    assert proc.returncode == 1
    err = proc.stderr
    assert "Traceback" not in err
    assert "KestrelSyntaxError: line 2, column 30" in err, err
    assert "  2 | p2 = FIND process CREATED BY WHERE pid = 4" in err
    assert "    |                              ^^^^^" in err
    assert "expected:" in err


def test_error_after_output_keeps_earlier_output(tmp_path, shared_data):
    hf = tmp_path / "late.hf"
    hf.write_text(_huntflow(shared_data) + "DISP nothing\n")
    proc = run_cli(hf)
    assert proc.returncode == 1
    assert "procs:" in proc.stdout
    assert "VariableNotFound" in proc.stderr and "nothing" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_data_source_error_exit_1(tmp_path):
    missing = tmp_path / "nope.json"
    hf = tmp_path / "ds.hf"
    hf.write_text(f"p = GET process FROM '{missing}' WHERE name = 'x'\n")
    proc = run_cli(hf)
    assert proc.returncode == 1
    assert "DataSourceError" in proc.stderr and str(missing) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_huntflow_file(tmp_path):
    missing = tmp_path / "no-such.hf"
    proc = run_cli(missing)
    assert proc.returncode == 1
    assert str(missing) in proc.stderr
    assert "No such file" in proc.stderr or "not found" in proc.stderr.lower()
    assert "Traceback" not in proc.stderr


def test_huntflow_is_a_directory(tmp_path):
    proc = run_cli(tmp_path)
    assert proc.returncode == 1
    assert str(tmp_path) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_stdin(shared_data, cmd_pids):
    proc = run_cli("-", stdin=_huntflow(shared_data))
    assert proc.returncode == 0, proc.stderr
    assert "procs:" in proc.stdout
    assert re.search(rf"cmd\.exe\s+{cmd_pids[0]}\b", proc.stdout)


def test_empty_huntflow(tmp_path):
    hf = tmp_path / "empty.hf"
    hf.write_text("# nothing but a comment\n\n")
    proc = run_cli(hf)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr


def test_store_file_created_and_reused(tmp_path, shared_data, cmd_pids):
    store = tmp_path / "s.db"
    hf = tmp_path / "hunt.hf"
    hf.write_text(_huntflow(shared_data))
    first = run_cli(hf, "--store", store)
    assert first.returncode == 0, first.stderr
    assert store.is_file() and store.stat().st_size > 0
    # README: `--store` keeps the variables (reopening it restores them).  Each CLI run
    # has a new random session id; a SQLite store is one file, so it restores anyway.
    again = tmp_path / "again.hf"
    again.write_text("DISP procs ATTR name, pid SORT BY pid ASC LIMIT 1\n")
    proc = run_cli(again, "--store", store)
    assert proc.returncode == 0, proc.stderr
    assert re.search(rf"cmd\.exe\s+{cmd_pids[0]}\b", proc.stdout), proc.stdout


@pytest.mark.postgres
def test_postgres_store_restores_variables_across_runs(tmp_path, shared_data, postgres_url):
    """On PostgreSQL the session id names the schema: --session reopens it."""
    session = "cli" + uuid.uuid4().hex
    hf = tmp_path / "hunt.hf"
    hf.write_text(_huntflow(shared_data))
    first = run_cli(hf, "--store", postgres_url, "--session", session)
    assert first.returncode == 0, first.stderr
    again = tmp_path / "again.hf"
    again.write_text("DISP procs ATTR name, pid LIMIT 1\n")
    proc = run_cli(again, "--store", postgres_url, "--session", session)
    assert proc.returncode == 0, proc.stderr
    assert "cmd.exe" in proc.stdout
    other = run_cli(again, "--store", postgres_url, "--session", "cli" + uuid.uuid4().hex)
    assert other.returncode == 1 and "VariableNotFound" in other.stderr


def test_help():
    proc = run_cli("--help")
    assert proc.returncode == 0
    assert "--store" in proc.stdout and "huntflow" in proc.stdout


@pytest.mark.parametrize("text, fragment", [
    ("no_such_key: 1\n", "no_such_key"),
    ("- disp_rows\n- 2\n", ""),
], ids=["unknown-key", "not-a-mapping"])
def test_bad_configuration_exit_1_without_traceback(tmp_path, text, fragment):
    config = tmp_path / "kestrel.yaml"
    config.write_text(text)
    hf = tmp_path / "ok.hf"
    hf.write_text('x = NEW ipv4-addr ["10.0.0.1"]\n')
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = run_cli(hf, env={"KESTREL_CONFIG": str(config), "TMPDIR": str(tmpdir)})
    assert list(tmpdir.iterdir()) == []  # a failed Session() leaves no runtime directory
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr, proc.stderr
    assert str(config) in proc.stderr and fragment in proc.stderr
