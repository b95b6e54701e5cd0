"""The Kestrel kernel as a front end sees it: a real kernel process driven through
jupyter_client (execute, errors, inspect, interrupt, restart, shutdown). Expected counts
are computed from the bundle with plain json (see conftest.svchost)."""

import json
import os
import re
import subprocess
import sys
import time

import pytest
from kerneltools import generate_bundle, run_cell, start_kernel

DISP_ROWS = 4  # the module kernel's KESTREL_DISP_ROWS


@pytest.fixture(scope="module")
def kernel(kernel_spec, bundle, tmp_path_factory):
    """One kernel for the module, holding procs (the svchost.exe processes)."""
    km, kc = start_kernel(tmp_path_factory.mktemp("kernel"), KESTREL_DISP_ROWS=str(DISP_ROWS))
    cell = run_cell(kc, f"procs = GET process FROM file://{bundle} WHERE name = 'svchost.exe'")
    assert cell.status == "ok", cell.reply
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=False)


def rows(html):
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr.*?</tr>", body, re.S)]


def footer(html):
    return re.search(r"<p class='kestrel-footer'>(.*?)</p>", html).group(1)


# ------------------------------------------------------------ kernel_info, start


def test_kernel_info(kernel):
    info = kernel.kernel_info(reply=True, timeout=10)["content"]
    assert info["implementation"] == "kestrel"
    assert info["language_info"] == {
        "name": "kestrel", "version": "1", "mimetype": "text/x-kestrel", "file_extension": ".hf",
        "pygments_lexer": "kestrel", "codemirror_mode": "kestrel"}


def test_kernel_json_runs_this_python(kernel_spec):
    import sys

    spec = json.loads((kernel_spec / "kernel.json").read_text())
    assert spec["argv"] == [sys.executable, "-m", "kestrel_kernel", "-f", "{connection_file}"]
    assert spec["language"] == "kestrel" and spec["display_name"] == "Kestrel"
    assert (kernel_spec / "logo-32x32.png").read_bytes().startswith(b"\x89PNG")
    assert (kernel_spec / "logo-64x64.png").read_bytes().startswith(b"\x89PNG")


# ------------------------------------------------------------ execute


def test_get_shows_a_summary(kernel, bundle, svchost):
    cell = run_cell(kernel, f"procs = GET process FROM file://{bundle} WHERE name = 'svchost.exe'")
    assert cell.status == "ok" and cell.errors == []
    (summary,) = cell.displays
    html = summary["data"]["text/html"]
    assert rows(html) == [["procs", "process", str(svchost["entities"]),
                           str(svchost["occurrences"]), str(svchost["records"]), rows(html)[0][5]]]
    assert re.fullmatch(r"\d+\.\d\d s", rows(html)[0][5])
    assert re.fullmatch(r"cell: \d+\.\d\d s", footer(html))
    assert summary["data"]["text/plain"].startswith(
        f"procs: {svchost['entities']} process entities ({svchost['occurrences']} occurrences) "
        f"in {svchost['records']} records, ")


def test_disp_limit(kernel, svchost):
    cell = run_cell(kernel, "DISP procs ATTR name, pid LIMIT 3")
    assert cell.status == "ok"
    (table,) = cell.displays  # DISP changes no variable: no summary
    html = table["data"]["text/html"]
    shown = rows(html)
    assert len(shown) == 3
    assert all(name == "svchost.exe" and int(pid) in svchost["pids"] for name, pid in shown)
    more = f"showing rows 1-3 of {len(svchost['pids'])} (use LIMIT n OFFSET m to see more)"
    assert footer(html) == more
    assert table["data"]["text/plain"].endswith(more)


def test_disp_is_capped_by_kestrel_disp_rows(kernel, svchost):
    html = run_cell(kernel, "DISP procs ATTR pid").displays[0]["data"]["text/html"]
    assert len(rows(html)) == DISP_ROWS
    assert footer(html).startswith(f"showing rows 1-{DISP_ROWS} of {len(svchost['pids'])} (")


def test_several_statements_one_summary(kernel):
    cell = run_cell(kernel, "conns = FIND network-traffic CREATED BY procs\n"
                            "p2 = FIND process CREATED BY procs\n"
                            "DISP conns ATTR dst_port LIMIT 2")
    assert cell.status == "ok"
    table, summary = cell.displays
    assert len(rows(table["data"]["text/html"])) == 2
    assert [(r[0], r[1]) for r in rows(summary["data"]["text/html"])] == [
        ("conns", "network-traffic"), ("p2", "process")]


def test_silent_cells_run_without_output(kernel):
    cell = run_cell(kernel, "quiet = GET process WHERE name = 'cmd.exe'", silent=True)
    assert cell.status == "ok" and cell.displays == []
    assert run_cell(kernel, "INFO quiet").status == "ok"


def test_syntax_error(kernel):
    cell = run_cell(kernel, "DISP procs LIMIT 1\np3 = FIND process CREATED BY WHERE pid = 4")
    assert cell.status == "error"
    assert cell.reply["ename"] == "KestrelSyntaxError"
    assert cell.reply["evalue"] == "line 2, column 30: unexpected keyword WHERE"
    (error,) = cell.errors
    assert error["ename"] == "KestrelSyntaxError" and error["evalue"] == cell.reply["evalue"]
    assert error["traceback"][:3] == [
        "KestrelSyntaxError: line 2, column 30: unexpected keyword WHERE",
        "  2 | p3 = FIND process CREATED BY WHERE pid = 4",
        "    |                              ^^^^^",
    ]
    assert error["traceback"][3].startswith("expected: ")
    assert not any("Traceback" in line or ".py" in line for line in error["traceback"])
    assert cell.displays == []  # nothing ran: the cell did not parse


def test_semantic_error_names_what_exists(kernel):
    cell = run_cell(kernel, "DISP nothing")
    assert cell.status == "error" and cell.reply["ename"] == "VariableNotFound"
    assert re.match(r'line 1, column 1: variable "nothing" is not defined \(defined: .*procs',
                    cell.reply["evalue"])


def test_failed_statement_keeps_variables(kernel, svchost):
    cell = run_cell(kernel, "procs = GET process FROM file:///no/such/bundle.json")
    assert cell.status == "error" and cell.reply["ename"] == "DataSourceError"
    assert cell.displays == []  # no variable changed
    info = run_cell(kernel, "INFO procs")
    assert info.status == "ok" and f"entities: {svchost['entities']}" in info.text()
    (table,) = run_cell(kernel, "DISP procs ATTR pid LIMIT 2").displays
    assert len(rows(table["data"]["text/html"])) == 2


def test_statements_before_an_error_are_kept_and_summarised(kernel):
    cell = run_cell(kernel, "early = GET process WHERE name = 'cmd.exe'\nDISP missing")
    assert cell.status == "error" and cell.reply["ename"] == "VariableNotFound"
    (summary,) = cell.displays
    assert rows(summary["data"]["text/html"])[0][:2] == ["early", "process"]
    assert run_cell(kernel, "INFO early").status == "ok"


def test_a_table_before_an_error_is_shown(kernel, svchost):
    cell = run_cell(kernel, "DISP procs ATTR name LIMIT 1\nDISP missing")
    assert cell.status == "error" and cell.reply["ename"] == "VariableNotFound"
    (table,) = cell.displays
    assert rows(table["data"]["text/html"]) == [["svchost.exe"]]


def test_a_typo_in_a_where_is_an_error_cell(kernel, bundle):
    cell = run_cell(kernel, f"typo = GET process FROM file://{bundle} WHERE nmae = 'x'")
    assert cell.status == "error"
    (error,) = cell.errors
    assert error["ename"] == "UnknownAttribute"
    assert error["evalue"].startswith('line 1, column ') and '"nmae"' in error["evalue"]
    assert 'hint: did you mean "name"?' in error["traceback"]


def test_describe_shows_a_table(kernel, bundle, svchost):
    """DESCRIBE (Kestrel v1) as an HTML table and as text; the values from the bundle."""
    pids = [p["pid"] for p in _svchost_processes(bundle)]
    cell = run_cell(kernel, "DESCRIBE procs.pid")
    assert cell.status == "ok", cell.reply
    (shown,) = cell.displays
    stats = dict(rows(shown["data"]["text/html"])[:7])
    assert {k: stats[k] for k in ("count", "unique", "min", "max")} == {
        "count": str(len(pids)), "unique": str(len(set(pids))), "min": str(min(pids)),
        "max": str(max(pids))}
    assert shown["data"]["text/plain"].startswith(f"DESCRIBE procs.pid\n  count   {len(pids)}")


def _svchost_processes(bundle):
    objects = json.loads(bundle.read_text())["objects"]
    return [s for o in objects if o["type"] == "observed-data" for s in o["objects"].values()
            if s["type"] == "process" and s.get("name") == "svchost.exe"]


def _tracebacks(stderr: str) -> list:
    """The tracebacks in a kernel's stderr, less ipykernel 7.4's own race at shutdown: a
    flush scheduled on its I/O thread's closed pipe (ZMQError ENOTSOCK from iostream.py;
    ipykernel#1518 fixed the same race on the send path only)."""
    blocks = stderr.split("Traceback (most recent call last):")[1:]
    return [b for b in blocks if not ("ipykernel/iostream.py" in b and
                                      "ZMQError: Socket operation on non-socket" in b)]


def test_a_loopback_kernel_starts_without_transport_warnings(kernel_spec, tmp_path):
    """ipykernel warns of unencrypted TCP; on 127.0.0.1 the traffic never leaves the machine,
    so the Kestrel kernel keeps its stderr (what a notebook front end logs) quiet."""
    from jupyter_client import BlockingKernelClient
    from jupyter_client.connect import write_connection_file

    connection, _ = write_connection_file(str(tmp_path / "kernel.json"), ip="127.0.0.1")
    process = subprocess.Popen([sys.executable, "-m", "kestrel_kernel", "-f", connection],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=tmp_path, env=dict(os.environ, TMPDIR=str(tmp_path)))
    client = BlockingKernelClient(connection_file=connection)
    client.load_connection_file()
    client.start_channels()
    try:
        assert client.kernel_info(reply=True, timeout=60)["content"]["status"] == "ok"
        client.shutdown()
        try:
            _, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # ipykernel's shutdown race (_tracebacks) can
            process.kill()                 # also leave it hanging; the output is what counts
            _, stderr = process.communicate()
    finally:
        client.stop_channels()
        process.kill()
    assert "without encryption" not in stderr
    assert _tracebacks(stderr) == []


# ------------------------------------------------------------ inspect


def test_inspect_variable(kernel, svchost):
    reply = kernel.inspect("DISP procs ATTR pid", 7, reply=True, timeout=10)["content"]
    assert reply["status"] == "ok" and reply["found"]
    head = (f"procs: {svchost['entities']} process entities ({svchost['occurrences']} "
            f"occurrences) in {svchost['records']} records")
    assert reply["data"]["text/plain"].startswith(head)
    assert f"<b>{head}</b>" in reply["data"]["text/html"]
    assert len(rows(reply["data"]["text/html"])) == 5


def test_inspect_keyword(kernel):
    code = "x = find process CREATED BY procs"
    reply = kernel.inspect(code, 6, reply=True, timeout=10)["content"]
    assert reply["found"]
    assert reply["data"]["text/plain"].startswith("FIND: [var =] FIND <entity-type> <relation>")


def test_inspect_nothing(kernel):
    reply = kernel.inspect("DISP procs ATTR pid", 18, reply=True, timeout=10)["content"]
    assert reply == {"status": "ok", "found": False, "data": {}, "metadata": {}}


# ------------------------------------------------------------ interrupt, restart, shutdown


def test_interrupt_during_a_slow_get(kernel_spec, bundle, tmp_path, svchost):
    big = tmp_path / "big.json"
    generate_bundle(big, 100_000)
    km, kc = start_kernel(tmp_path)
    try:
        procs = f"procs = GET process FROM {bundle} WHERE name = 'svchost.exe'"
        assert run_cell(kc, procs).status == "ok"
        messages = []
        started = time.monotonic()
        msg_id = kc.execute(f"big = GET process FROM {big}")
        time.sleep(1.5)
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=120)
        elapsed = time.monotonic() - started
        while True:
            msg = kc.get_iopub_msg(timeout=10)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            messages.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        errors = [m["content"] for m in messages if m["msg_type"] == "error"]
        assert [e["evalue"] for e in errors] == [reply["content"]["evalue"]]
        assert reply["content"]["evalue"].startswith("interrupted: the statement was cancelled")
        assert km.is_alive()
        # the GET was cancelled, earlier variables are intact, the store still works
        assert run_cell(kc, "INFO big").reply["ename"] == "VariableNotFound"
        assert f"entities: {svchost['entities']}" in run_cell(kc, "INFO procs").text()
        again = run_cell(kc, f"small = GET process FROM {bundle} WHERE name = 'cmd.exe'")
        assert again.status == "ok"
        print(f"interrupted after {elapsed:.2f} s")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_restart_starts_a_fresh_session(kernel_spec, bundle, tmp_path):
    km, kc = start_kernel(tmp_path)
    try:
        assert run_cell(kc, f"procs = GET process FROM {bundle}").status == "ok"
        before = sorted((tmp_path / "tmp").glob("kestrel-session-*"))
        assert len(before) == 1
        km.restart_kernel(now=False)
        kc.wait_for_ready(timeout=60)
        assert run_cell(kc, "INFO procs").reply["ename"] == "VariableNotFound"
        assert run_cell(kc, f"procs = GET process FROM {bundle}").status == "ok"
        after = sorted((tmp_path / "tmp").glob("kestrel-session-*"))
        assert len(after) == 1 and after != before  # the old runtime dir was removed
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    assert list((tmp_path / "tmp").glob("kestrel-session-*")) == []  # shutdown closed it


def test_a_bad_configuration_is_told_not_fatal(kernel_spec, tmp_path):
    config = tmp_path / "kestrel.yaml"
    config.write_text("disp_rows: 10\nno_such_key: 1\n")
    km, kc = start_kernel(tmp_path, KESTREL_CONFIG=str(config))
    try:
        cell = run_cell(kc, "DISP procs")
        assert cell.status == "error" and cell.reply["ename"] == "KestrelError"
        assert "no_such_key" in cell.reply["evalue"] and km.is_alive()
        kc.is_complete("DISP procs WHERE")
        assert kc.get_shell_msg(timeout=10)["content"]["status"] == "incomplete"
        assert kc.complete("GET ", 4, reply=True, timeout=10)["content"]["matches"] == []
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
