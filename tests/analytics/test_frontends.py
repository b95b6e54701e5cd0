"""Figures where hunters see them: the CLI writes standalone HTML pages and prints their
paths; a real Kestrel kernel sends plotly's MIME bundle with HTML and text fallbacks
(and a PNG: test_travel.py).
The figures' data are read back from the page / the bundle and checked against the
bundle (plain json)."""

import pathlib
import subprocess
import sys

import pytest
from figdata import PLOTLY, figure_in_html, ident, processes, traces, tree_of

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "kernel"))
from kerneltools import run_cell, start_kernel  # noqa: E402

SHELLS = "name IN ('cmd.exe', 'powershell.exe')"


def shells_and_parents(observations):
    shells = processes(observations, lambda o, p: p.get("name") in ("cmd.exe", "powershell.exe"))
    parents = [(o, o["objects"][p["parent_ref"]]) for o, p in shells if "parent_ref" in p]
    edges = {(ident(o["objects"][p["parent_ref"]]), ident(p)) for o, p in shells
             if "parent_ref" in p}
    return shells, parents, edges


def test_cli_writes_figures(tmp_path, bundle_path, observations):
    hunt = tmp_path / "hunt.hf"
    hunt.write_text(f"procs = GET process FROM '{bundle_path}' WHERE {SHELLS}\n"
                    "APPLY python://process_tree ON procs\n"
                    "APPLY python://process_tree ON procs WITH merge=false\n"
                    "APPLY python://timeline ON procs\n"
                    "APPLY python://huntflow_graph ON procs\n")
    out = tmp_path / "figures"
    run = subprocess.run([sys.executable, "-m", "kestrel", str(hunt), "--output-dir", str(out)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    printed = [line.split("figure: ", 1)[1] for line in run.stdout.splitlines()
               if line.startswith("figure: ")]
    names = ["hunt-process_tree-procs.html", "hunt-process_tree-procs-2.html",
             "hunt-timeline-procs.html", "hunt-huntflow_graph-procs.html"]
    assert printed == [str((out / n).resolve()) for n in names]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    assert "Process tree of procs\n  " in run.stdout and "Timeline of procs\n  " in run.stdout

    shells, parents, edges = shells_and_parents(observations)
    page = (out / names[0]).read_text()
    assert 'src="https://cdn.plot.ly' not in page and len(page) > 1_000_000  # offline
    nodes, drawn = tree_of(figure_in_html(page))
    assert set(nodes) == {ident(p) for _, p in shells + parents} and drawn == edges

    points = traces(figure_in_html((out / names[2]).read_text()), "points")
    assert sum(len(t["x"]) for t in points) == len(shells)


def test_cli_default_directory_and_failure(tmp_path, bundle_path):
    hunt = tmp_path / "h.hf"
    hunt.write_text(f"procs = GET process FROM '{bundle_path}' WHERE {SHELLS}\n"
                    "APPLY python://timeline ON procs\n")
    run = subprocess.run([sys.executable, "-m", "kestrel", str(hunt)], capture_output=True,
                         text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "h-timeline-procs.html").is_file()

    hunt.write_text(f"procs = GET process FROM '{bundle_path}' WHERE {SHELLS}\n"
                    "APPLY python://timeline ON procs WITH every=1\n")
    run = subprocess.run([sys.executable, "-m", "kestrel", str(hunt)], capture_output=True,
                         text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 1
    assert run.stderr.splitlines()[0] == ('AnalyticsError: line 2, column 1: python://timeline '
                                          'has no parameter "every" (parameters: per, title)')


@pytest.fixture(scope="module")
def kernel(kernel_spec, bundle_path, tmp_path_factory):
    km, kc = start_kernel(tmp_path_factory.mktemp("kernel"))
    cell = run_cell(kc, f"procs = GET process FROM '{bundle_path}' WHERE {SHELLS}")
    assert cell.status == "ok", cell.reply
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=False)


def test_kernel_sends_plotly_bundles(kernel, observations):
    cell = run_cell(kernel, "APPLY python://process_tree ON procs")
    assert cell.status == "ok" and not cell.errors
    (shown,) = cell.displays
    assert {PLOTLY, "text/html", "text/plain"} <= set(shown["data"])  # PNG: test_travel.py
    assert shown["metadata"]["kestrel"] == {"figure": "process_tree-procs"}
    assert "Plotly.newPlot" in shown["data"]["text/html"]
    assert shown["data"]["text/plain"].startswith("Process tree of procs\n")
    shells, parents, edges = shells_and_parents(observations)
    nodes, drawn = tree_of(shown["data"][PLOTLY])
    assert set(nodes) == {ident(p) for _, p in shells + parents} and drawn == edges
    assert figure_in_html(shown["data"]["text/html"])["data"] == shown["data"][PLOTLY]["data"]


def test_kernel_errors_change_nothing(kernel):
    before = run_cell(kernel, "DISP procs ATTR name, pid").displays
    cell = run_cell(kernel, "APPLY python://suspicious_cmdline ON procs WITH patterns=['(']")
    assert cell.status == "error" and cell.reply["ename"] == "AnalyticsError"
    (error,) = cell.errors
    assert error["evalue"] == ("line 1, column 1: python://suspicious_cmdline: pattern '(' is "
                               "not a regular expression: missing ): (")
    assert error["traceback"][1].startswith("  1 | APPLY python://suspicious_cmdline")
    assert run_cell(kernel, "DISP procs ATTR name, pid").displays == before

    cell = run_cell(kernel, "APPLY python://suspicious_cmdline ON procs WITH patterns=['wmic']\n"
                            "DISP procs ATTR pid, x_suspicious_score WHERE x_suspicious_score > 0")
    assert cell.status == "ok", cell.reply
    assert "procs: x_suspicious_score, x_suspicious_patterns written to" in cell.text()
