"""`kestrel export` and `kestrel run` as a hunter uses them: real subprocesses, a real
Kestrel kernel through nbclient.  Expected rows come from the bundle read with plain json."""

import json
import shutil
import subprocess
import sys

import nbformat

HUNT = """# Hunting cmd.exe
# in the demo bundle

procs = GET process FROM data/doctored-1k.json
        WHERE name = 'cmd.exe'   # shells
DISP procs ATTR pid SORT BY pid
# their parents
parents = FIND process CREATED procs

DISP parents ATTR name
"""


def kestrel(*args, cwd):
    return subprocess.run([sys.executable, "-m", "kestrel", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_export_makes_a_cell_per_block_and_comments_markdown(tmp_path):
    (tmp_path / "hunt.hf").write_text(HUNT)
    done = kestrel("export", "hunt.hf", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    notebook = nbformat.read(tmp_path / "hunt.ipynb", as_version=4)
    assert [(c.cell_type, c.source) for c in notebook.cells] == [
        ("markdown", "Hunting cmd.exe\nin the demo bundle"),
        ("code", "procs = GET process FROM data/doctored-1k.json\n"
                 "        WHERE name = 'cmd.exe'   # shells\nDISP procs ATTR pid SORT BY pid"),
        ("markdown", "their parents"),
        ("code", "parents = FIND process CREATED procs"),
        ("code", "DISP parents ATTR name"),
    ]
    assert notebook.metadata.kernelspec.name == "kestrel"


def test_a_huntbook_sent_with_its_data_runs_elsewhere(kernel_spec, shared_data, tmp_path):
    """Export, execute, move the huntbook and its data to another folder, run it from a
    third one: relative paths resolve against the notebook's folder."""
    sent = tmp_path / "sent"
    (sent / "data").mkdir(parents=True)
    shutil.copy(shared_data / "doctored-1k.json", sent / "data")
    (sent / "hunt.hf").write_text(HUNT)
    assert kestrel("export", "hunt.hf", "--execute", cwd=sent).returncode == 0
    received = tmp_path / "received"
    shutil.copytree(sent, received)
    shutil.rmtree(sent)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = kestrel("run", received / "hunt.ipynb", "-o", elsewhere / "out.ipynb", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    records = [o for o in json.loads((shared_data / "doctored-1k.json").read_text())["objects"]
               if o["type"] == "observed-data"]
    pids = sorted({p["pid"] for r in records for p in r["objects"].values()
                   if p["type"] == "process" and p.get("name") == "cmd.exe"})
    notebook = nbformat.read(elsewhere / "out.ipynb", as_version=4)
    table = next(o["data"]["text/plain"] for o in notebook.cells[1].outputs
                 if "pid" in o.get("data", {}).get("text/plain", ""))
    assert [int(line) for line in table.splitlines()[1:1 + len(pids)]] == pids
    assert table in done.stdout


def test_run_stops_at_the_first_failing_cell_with_status_1(kernel_spec, shared_data, tmp_path):
    hunt = tmp_path / "bad.hf"
    hunt.write_text(f"procs = GET process FROM '{shared_data}/doctored-1k.json' "
                    "WHERE name = 'cmd.exe'\n\nDISP procs ATTR nmae\n\nDISP procs ATTR pid\n")
    assert kestrel("export", hunt, cwd=tmp_path).returncode == 0
    done = kestrel("run", tmp_path / "bad.ipynb", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith(f"kestrel: cell 2 of {tmp_path / 'bad.ipynb'} failed:\n"
                                  "UnknownAttribute: line 1, column ")
    notebook = nbformat.read(tmp_path / "bad.ipynb", as_version=4)
    assert notebook.cells[0].outputs and notebook.cells[1].outputs[0]["output_type"] == "error"
    assert notebook.cells[2].outputs == []  # not run


def test_export_of_a_broken_huntflow_says_where(tmp_path):
    (tmp_path / "broken.hf").write_text("procs = GET process WHERE\n")
    done = kestrel("export", "broken.hf", cwd=tmp_path)
    assert done.returncode == 1 and not (tmp_path / "broken.ipynb").exists()
    assert done.stderr.startswith("KestrelSyntaxError: line 1, column 26: unexpected end")
