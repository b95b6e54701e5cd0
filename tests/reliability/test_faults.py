"""Faults injected into real components (issue 9): a hunt survives an interrupted or killed
kernel, a data source that hangs, a full disk and an unusable runtime directory or store.

Every fault hits a statement that is really in progress: a GET of a generated bundle (one
process per observation, all matching) is past its first batch when the kernel shows its
progress, and a slow HTTP server tells when it has started to answer.  After each fault the
variables made before it must hold the same rows, and the session (or a new one on the same
store) must go on working.  Expected rows come from the raw JSON or from what the kernel
showed before the fault, never from the code under test after it.
"""

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest
import yaml
from jupyter_client.manager import start_new_kernel

from kestrel.errors import DataSourceError, KestrelError, StoreError
from kestrel.session import Session

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "kernel"))
from kerneltools import generate_bundle, run_cell, start_kernel  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
KESTREL = [sys.executable, "-m", "kestrel"]
BIG = 50_000  # observations: a GET of all of them takes about 5 s here, 10 batches
CMD = "name = 'cmd.exe'"
ATTRS = "ATTR pid, name, command_line"


@pytest.fixture(scope="module")
def doctored(shared_data):
    return shared_data / "doctored-1k.json"


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.json"
    generate_bundle(path, BIG)
    return path


def _rows(session, name):
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in session.get_variable(name))


def _lines(text):
    """A DISP table's lines, sorted: rows that tie may come in any order."""
    return sorted(text.splitlines())


def _disp(session, name, attrs=ATTRS):
    (table,) = session.execute(f"DISP {name} {attrs}")
    return _lines(table.to_text())


# ------------------------------------------------------------------ a server that stalls


class StallingServer:
    """HTTP on 127.0.0.1 that accepts and then: never answers ("silent"), sends headers and
    stalls ("headers"), or trickles `body` a few bytes at a time ("trickle").  `answering`
    is set once a response has begun; every connection is closed on exit."""

    def __init__(self, mode, body=b"", step=64, interval=0.05):
        self.mode, self.body, self.step, self.interval = mode, body, step, interval
        self.answering, self.closing, self.conns = threading.Event(), threading.Event(), []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/bundle.json"

    def __enter__(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.closing.set()
        self.sock.close()
        for conn in self.conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self):
        while not self.closing.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        try:
            conn.recv(65536)
            if self.mode == "silent":
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % max(len(self.body), 1))
            self.answering.set()
            if self.mode == "headers":
                return
            for i in range(0, len(self.body), self.step):
                if self.closing.is_set():
                    return
                conn.sendall(self.body[i:i + self.step])
                time.sleep(self.interval)
        except OSError:
            pass


# ------------------------------------------------------------------ (a) interrupt


def _until_idle(kc, msg_id, timeout=60):
    """iopub messages of one request until the kernel is idle again."""
    messages, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=deadline - time.monotonic())
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return messages
    raise AssertionError(f"no idle status for {msg_id}")


def _wait_for_progress(kc, msg_id, timeout=60):
    """Waits until the request shows a query's progress (its first batch is stored)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=deadline - time.monotonic())
        if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "display_data"
                and "records read" in msg["content"]["data"].get("text/plain", "")):
            return msg["content"]["data"]["text/plain"]
        assert not (msg["parent_header"].get("msg_id") == msg_id
                    and msg["msg_type"] == "status"
                    and msg["content"]["execution_state"] == "idle"), "the GET ended first"
    raise AssertionError("the GET showed no progress")


@pytest.fixture
def kernel(kernel_spec, tmp_path):
    km, kc = start_kernel(tmp_path)
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=not km.is_alive())


def _interrupted(km, kc, msg_id, queued_id):
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=60)
    assert reply["parent_header"]["msg_id"] == msg_id
    messages = _until_idle(kc, msg_id)
    queued = kc.get_shell_msg(timeout=60)
    assert queued["parent_header"]["msg_id"] == queued_id
    return reply["content"], messages, queued["content"]


def _check_interrupted(reply, messages, queued):
    # a clear error, shown in the notebook; the cell queued behind it does not run
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    assert reply["evalue"] == ("interrupted: the statement was cancelled; earlier variables "
                               "are unchanged")
    errors = [m["content"] for m in messages if m["msg_type"] == "error"]
    assert [(e["ename"], e["evalue"]) for e in errors] == [(reply["ename"], reply["evalue"])]
    assert not any("Traceback" in line for e in errors for line in e["traceback"])
    assert queued["status"] == "aborted"


def test_interrupt_during_a_get_keeps_the_hunt(kernel, doctored, big):
    km, kc = kernel
    assert run_cell(kc, f"procs = GET process FROM {doctored} WHERE {CMD}").status == "ok"
    shown = _lines(run_cell(kc, f"DISP procs {ATTRS}").text())
    msg_id = kc.execute(f"big = GET process FROM {big}")
    queued_id = kc.execute("after = GET process FROM procs")  # Run All: queued behind it
    progress = _wait_for_progress(kc, msg_id)
    reply, messages, queued = _interrupted(km, kc, msg_id, queued_id)
    _check_interrupted(reply, messages, queued)
    print(f"interrupted at: {progress}")

    assert km.is_alive()
    for name in ("big", "after"):
        assert run_cell(kc, f"INFO {name}").reply["ename"] == "VariableNotFound"
    assert _lines(run_cell(kc, f"DISP procs {ATTRS}").text()) == shown
    assert run_cell(kc, "kids = FIND process CREATED BY procs").status == "ok"
    again = run_cell(kc, f"again = GET process FROM {doctored} WHERE {CMD}")
    assert again.status == "ok"
    assert _lines(run_cell(kc, f"DISP again {ATTRS}").text()) == shown


def test_interrupt_during_a_download_keeps_the_hunt(kernel, doctored):
    km, kc = kernel
    assert run_cell(kc, f"procs = GET process FROM {doctored} WHERE {CMD}").status == "ok"
    shown = _lines(run_cell(kc, f"DISP procs {ATTRS}").text())
    with StallingServer("trickle", doctored.read_bytes()) as server:  # about 2 minutes
        started = time.monotonic()
        msg_id = kc.execute(f"web = GET process FROM {server.url} WHERE {CMD}")
        queued_id = kc.execute("DISP procs")
        assert server.answering.wait(30)
        time.sleep(0.3)
        reply, messages, queued = _interrupted(km, kc, msg_id, queued_id)
        assert time.monotonic() - started < 15
    _check_interrupted(reply, messages, queued)
    assert run_cell(kc, "INFO web").reply["ename"] == "VariableNotFound"
    assert _lines(run_cell(kc, f"DISP procs {ATTRS}").text()) == shown


# ------------------------------------------------------------------ (b) SIGKILL


def test_a_killed_kernel_leaves_a_store_that_reopens(kernel, tmp_path, doctored, big):
    """SIGKILL during a GET: a Session on the kernel's store (its runtime directory survives
    a kill) and session id gets the earlier variables back, with the rows the kernel showed."""
    km, kc = kernel
    hunt = (f"procs = GET process FROM {doctored} WHERE {CMD}\n"
            "parents = FIND process CREATED procs\n"
            "conns = FIND network-traffic CREATED BY procs")
    assert run_cell(kc, hunt).status == "ok"
    conn_attrs = "ATTR src_port, dst_port"
    shown = {name: _lines(run_cell(kc, f"DISP {name} {ATTRS}").text())
             for name in ("procs", "parents")}
    shown["conns"] = _lines(run_cell(kc, f"DISP conns {conn_attrs}").text())
    (runtime,) = (tmp_path / "tmp").glob("kestrel-session-*")

    msg_id = kc.execute(f"big = GET process FROM {big}")
    _wait_for_progress(kc, msg_id)
    km.signal_kernel(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while km.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not km.is_alive()

    session_id = runtime.name.removeprefix("kestrel-session-")
    store = runtime / "local.db"
    for again in ([], ["more"]):  # reopening and closing keeps the store: the user named it
        with Session(session_id=session_id, store_path=str(store)) as session:
            assert sorted(session.get_variable_names()) == ["conns"] + again + ["parents", "procs"]
            assert _disp(session, "procs") == shown["procs"]
            assert _disp(session, "parents") == shown["parents"]
            assert _disp(session, "conns", conn_attrs) == shown["conns"]
            session.execute(f"more = GET process FROM {doctored} WHERE name = 'svchost.exe'")
            assert session.variable_summary("more").entities > 0
        assert store.exists()


def _cli(args, env=None, **kwargs):
    return subprocess.Popen(KESTREL + args, cwd=REPO, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=dict(os.environ, PYTHONUNBUFFERED="1",
                                                             **(env or {})), **kwargs)


def test_a_killed_cli_run_reopens_on_its_store(store_url, tmp_path, doctored, big, cmd_pids):
    """`kestrel --store S --session ID` killed by SIGKILL during a GET, on SQLite and
    PostgreSQL: a new run with the same store and session id has the earlier variables."""
    session_id = "killed_" + uuid.uuid4().hex[:10]
    hunt = tmp_path / "hunt.hf"
    hunt.write_text(f"procs = GET process FROM {doctored} WHERE {CMD}\n"
                    f"DISP procs {ATTRS}\n"
                    f"big = GET process FROM {big}\n")
    proc = _cli([str(hunt), "--store", store_url, "--session", session_id],
                env={"TMPDIR": str(tmp_path)})
    while not re.fullmatch(r"\d+ rows\n|showing rows .*\n", line := proc.stdout.readline()):
        assert line, f"the run ended early: {proc.stderr.read()}"  # DISP procs is done
    time.sleep(1.0)  # into the big GET (about 5 s)
    assert proc.poll() is None, "the GET was over before the kill"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    proc.stderr.close()

    check = tmp_path / "check.hf"
    check.write_text(f"DISP procs {ATTRS}\nmore = GET process FROM procs WHERE pid > 0\n")
    done = subprocess.run(KESTREL + [str(check), "--store", store_url, "--session", session_id],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, TMPDIR=str(tmp_path)))
    assert done.returncode == 0, done.stderr
    with Session(session_id=session_id, store_path=store_url) as session:
        assert sorted(session.get_variable_names()) == ["more", "procs"]
        assert sorted({r["pid"] for r in session.get_variable("procs")}) == cmd_pids
        assert _rows(session, "more") == _rows(session, "procs")
        assert set(_disp(session, "procs")) <= set(done.stdout.splitlines())


# ------------------------------------------------------------------ (c) a hanging source


@pytest.fixture
def configured(tmp_path, monkeypatch):
    """Writes a KESTREL_CONFIG file (read when a Session starts)."""
    for var in list(os.environ):
        if var.startswith("STIXSHIFTER_"):
            monkeypatch.delenv(var)

    def write(content):
        path = tmp_path / "kestrel.yaml"
        path.write_text(yaml.safe_dump(content))
        monkeypatch.setenv("KESTREL_CONFIG", str(path))
        return path

    return write


@pytest.mark.parametrize("mode", ["silent", "headers", "trickle"])
def test_a_hanging_http_source_times_out(mode, configured, doctored, cmd_pids):
    configured({"http_timeout": 2})
    # a trickle of 1000 bytes takes 6 s: past the timeout, and a bounded wait if it fails
    with Session(session_id="hang_" + uuid.uuid4().hex[:10]) as session, \
            StallingServer(mode, doctored.read_bytes()[:1000], step=16, interval=0.1) as server:
        session.execute(f"procs = GET process FROM {doctored} WHERE {CMD}")
        before = _rows(session, "procs")
        started = time.monotonic()
        with pytest.raises(DataSourceError) as caught:
            session.execute(f"procs = GET process FROM {server.url} WHERE {CMD}")
        took = time.monotonic() - started
        assert 1.9 < took < 4, took
        assert caught.value.message == (f"cannot fetch {server.url}: no complete answer "
                                        "within 2 s (http_timeout)")
        assert caught.value.line == 1
        assert _rows(session, "procs") == before
        session.execute("kids = FIND process CREATED BY procs")
        session.execute(f"again = GET process FROM {doctored} WHERE {CMD}")
        assert sorted({r["pid"] for r in session.get_variable("again")}) == cmd_pids


def _stixshifter_env(monkeypatch, name, url):
    monkeypatch.setenv(f"STIXSHIFTER_{name.upper()}_CONNECTOR", "stix_bundle")
    monkeypatch.setenv(f"STIXSHIFTER_{name.upper()}_CONNECTION", json.dumps({"host": url}))
    monkeypatch.setenv(f"STIXSHIFTER_{name.upper()}_CONFIG",
                       json.dumps({"auth": {"username": None, "password": None}}))


WINDOW = "START 2019-11-16T00:00:00Z STOP 2019-11-17T00:00:00Z"


def test_a_hanging_stixshifter_source_times_out(configured, monkeypatch, doctored, cmd_pids):
    configured({"stixshifter": {"call_timeout": 2, "retries": 0}})
    with StallingServer("silent") as server:
        _stixshifter_env(monkeypatch, "hang", server.url)
        with Session(session_id="hang_" + uuid.uuid4().hex[:10]) as session:
            session.execute(f"procs = GET process FROM {doctored} WHERE {CMD}")
            before = _rows(session, "procs")
            started = time.monotonic()
            with pytest.raises(DataSourceError) as caught:
                session.execute(f"x = GET process FROM stixshifter://hang WHERE {CMD} {WINDOW}")
            assert time.monotonic() - started < 10  # 2 s, and stix-shifter's first import
            assert caught.value.message == (
                "stixshifter://hang: the stix_bundle connector did not fetch results within "
                "2 s (stixshifter.call_timeout)")
            assert _rows(session, "procs") == before and "x" not in session.get_variable_names()
            session.execute(f"again = GET process FROM {doctored} WHERE {CMD}")
            assert sorted({r["pid"] for r in session.get_variable("again")}) == cmd_pids


def test_an_abandoned_connector_call_does_not_hold_the_process(configured, monkeypatch):
    """The stix_bundle connector gives up on a silent server after 30 s by itself; a run
    whose call_timeout is 2 s must end without waiting for it."""
    config = configured({"stixshifter": {"call_timeout": 2, "retries": 0}})
    with StallingServer("silent") as server:
        _stixshifter_env(monkeypatch, "hang", server.url)
        started = time.monotonic()
        done = subprocess.run(KESTREL + ["-"], input=f"x = GET process FROM stixshifter://hang "
                              f"WHERE {CMD} {WINDOW}\n", capture_output=True, text=True,
                              timeout=60, cwd=REPO, env=dict(os.environ, KESTREL_CONFIG=str(config)))
        took = time.monotonic() - started
    assert done.returncode == 1
    assert done.stderr.startswith("DataSourceError: line 1, column 1: stixshifter://hang: the "
                                  "stix_bundle connector did not fetch results within 2 s")
    assert "Traceback" not in done.stderr and "timeout_error" not in done.stderr
    assert took < 20, f"the run took {took:.1f} s: it waited for the abandoned call"


# ------------------------------------------------------------------ (d) a full disk

FULL_DISK = """
import json, os, resource, signal, sys
from kestrel.errors import KestrelError
from kestrel.session import Session

store, doctored, big, mode = sys.argv[1:5]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
out = {}
def rows(s, name):
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in s.get_variable(name))
def shown(s, name):  # what a hunter sees (a new GET gets new firepit ids for processes)
    return sorted(map(list, {(r["pid"], r["name"], r.get("command_line"))
                             for r in s.get_variable(name)}))
def attempt(s, stmt):
    try:
        s.execute(stmt)
        return None
    except KestrelError as err:
        return [type(err).__name__, str(err)]
with Session(session_id="full", store_path=store) as s:
    s.execute(f"procs = GET process FROM {doctored} WHERE name = 'cmd.exe'")
    s.execute("kids = FIND process CREATED BY procs")
    before = {n: rows(s, n) for n in ("procs", "kids")}
    out["shown"] = shown(s, "procs")
    files = [os.path.join(os.path.dirname(store), f) for f in os.listdir(os.path.dirname(store))]
    # "store": the store's files may not grow by more than 64 KB; "all": no file may grow
    # (the session log included): the disk is full
    limit = (max(map(os.path.getsize, files)) + 65536 if mode == "store"
             else os.path.getsize(s.log_path))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    out["big"] = attempt(s, f"big = GET process FROM {big}")
    out["small"] = attempt(s, "small = GET process FROM procs WHERE pid > 0")
    out["names_full"] = s.get_variable_names()
    out["kept_full"] = {n: rows(s, n) == before[n] for n in before}
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    out["after"] = attempt(s, f"after = GET process FROM {doctored} WHERE name = 'cmd.exe'")
    out["shown_after"] = shown(s, "after")
with Session(session_id="full", store_path=store) as s:
    out["names_reopened"] = sorted(s.get_variable_names())
    out["kept_reopened"] = {n: rows(s, n) == before[n] for n in before}
print(json.dumps(out))
"""


@pytest.mark.parametrize("mode", ["store", "all"])
def test_a_full_disk_fails_the_get_cleanly(mode, tmp_path, doctored, big):
    """RLIMIT_FSIZE makes every write past a size fail with EFBIG, as a full disk would
    (SQLite reports it as a disk I/O error): the GET fails with a StoreError, nothing
    reaches stderr (the session log drops what it cannot write), earlier variables stay
    readable, and once there is room again the session and its store go on."""
    (tmp_path / "store").mkdir()
    script = tmp_path / "full_disk.py"
    script.write_text(FULL_DISK)
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "store" / "s.db"),
                           str(doctored), str(big), mode], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env=dict(os.environ, TMPDIR=str(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no traceback, not even from the log that cannot be written
    out = json.loads(done.stdout)
    name, text = out["big"]
    assert name == "StoreError"
    assert text.startswith("StoreError: line 1, column 1: cannot store the data: disk I/O error")
    assert "Traceback" not in text
    # a small view may still fit; if not, it fails the same way
    assert out["small"] is None or out["small"][0] == "StoreError"
    small = [] if out["small"] else ["small"]
    assert out["names_full"] == ["procs", "kids"] + small
    assert out["kept_full"] == {"procs": True, "kids": True}
    assert out["after"] is None and out["shown_after"] == out["shown"]
    assert out["names_reopened"] == sorted(["after", "kids", "procs"] + small)
    assert out["kept_reopened"] == {"procs": True, "kids": True}


@pytest.mark.parametrize("alias", ["b = procs", "b = GET process FROM procs"])
def test_a_reopened_store_keeps_aliased_variables(alias, tmp_path, doctored, cmd_pids):
    store = str(tmp_path / "s.db")
    with Session(session_id="alias", store_path=store) as session:
        session.execute(f"procs = GET process FROM {doctored} WHERE {CMD}\n{alias}")
    with Session(session_id="alias", store_path=store) as session:
        assert sorted(session.get_variable_names()) == ["b", "procs"]
        for name in ("b", "procs"):
            assert sorted({r["pid"] for r in session.get_variable(name)}) == cmd_pids


# ------------------------------------------------------------------ (e) unusable paths


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "regular-file"
    path.write_text("not a directory\n")
    return path


def test_a_runtime_dir_under_a_file_is_a_kestrel_error(a_file):
    for where in (a_file / "runtime", a_file):
        with pytest.raises(KestrelError) as caught:
            Session(runtime_dir=str(where))
        assert str(caught.value).startswith(f"KestrelError: cannot create the runtime "
                                            f"directory {where}: ")
    assert a_file.read_text() == "not a directory\n"


def test_a_store_under_a_file_is_a_store_error(a_file, tmp_path):
    before = set(pathlib.Path(tmp_path).iterdir())
    with pytest.raises(StoreError) as caught:
        Session(store_path=str(a_file / "store.db"), runtime_dir=str(tmp_path / "rt"))
    assert str(caught.value) == (f"StoreError: cannot open the store at {a_file}/store.db: "
                                 "unable to open database file")
    # the runtime directory did not exist: the session made it, and removed it on failing
    assert set(pathlib.Path(tmp_path).iterdir()) == before


def test_a_session_id_is_never_a_path(tmp_path):
    """A session id names the runtime directory, which close() removes: an id holding a
    path must not reach the file system (it used to remove the directory it named)."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    escape = os.path.relpath(victim, "/tmp")
    for session_id in (f"x/{'../' * 8}{victim}", f"x/../{escape}", "..", "a b", "a/b"):
        with pytest.raises(KestrelError) as caught:
            Session(session_id=session_id).close()
        if session_id:
            assert str(caught.value) == (f"KestrelError: invalid session id {session_id!r}: "
                                         "use letters, digits, _ and -")
    assert (victim / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize("args, message", [
    (["--store", "{file}/store.db"], "StoreError: cannot open the store at {file}/store.db: "
                                     "unable to open database file"),
    (["--session", "../../etc"], "KestrelError: invalid session id '../../etc': use letters, "
                                 "digits, _ and -"),
])
def test_the_cli_reports_unusable_paths_in_one_line(args, message, a_file, tmp_path):
    args = [a.format(file=a_file) for a in args]
    done = subprocess.run(KESTREL + ["-"] + args, input="x = NEW ipv4-addr ['10.0.0.1']\n",
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env=dict(os.environ, TMPDIR=str(tmp_path)))
    assert done.returncode == 1
    assert done.stderr == message.format(file=a_file) + "\n"
    assert done.stdout == ""


@pytest.mark.parametrize("where", ["missing/procs.csv", "regular-file/procs.csv"])
def test_save_to_an_unusable_path_says_why(where, a_file, tmp_path, doctored):
    with Session(runtime_dir=str(tmp_path / "rt")) as session:
        session.execute(f"procs = GET process FROM {doctored} WHERE {CMD}")
        with pytest.raises(DataSourceError) as caught:
            session.execute(f'SAVE procs TO "{tmp_path / where}"')
        assert caught.value.message.startswith(f"cannot write {tmp_path / where}: ")
        assert not caught.value.message.endswith("None")


def test_a_kernel_with_an_unusable_temp_dir_still_hunts(kernel_spec, tmp_path, a_file, doctored):
    """TMPDIR names a file: Python falls back to another temp dir and the kernel works."""
    km, kc = start_new_kernel(kernel_name="kestrel", startup_timeout=60, cwd=str(tmp_path),
                              env=dict(os.environ, TMPDIR=str(a_file)))
    try:
        cell = run_cell(kc, f"procs = GET process FROM {doctored} WHERE {CMD}")
        assert cell.status == "ok", cell.reply
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)  # the kernel closes its session (in the fallback dir)
    assert a_file.read_text() == "not a directory\n"


# ------------------------------------------------------------------ a PostgreSQL server that stops


@pytest.fixture
def own_server():
    """A PostgreSQL server for this test alone (it is frozen and stopped): its URL and a
    function running pg_ctl on it."""
    from benchmarks.pgserver import postgres_server
    import psycopg2

    with postgres_server("kestrel_frozen") as url:
        with psycopg2.connect(url) as conn, conn.cursor() as cursor:
            cursor.execute("SHOW data_directory")
            datadir = pathlib.Path(cursor.fetchone()[0])
        conn.close()
        user = datadir.stat().st_uid
        run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() != user else []
        port = url.rsplit(":", 1)[1].split("/")[0]
        bindir = next(pathlib.Path("/usr/lib/postgresql").glob("*/bin"))

        def pg_ctl(*args):
            subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(datadir), "-w", *args],
                           check=True, capture_output=True)

        def restart():
            pg_ctl("-l", str(datadir.parent / "server.log"), "-o",
                   f"-p {port} -k {datadir.parent} -c listen_addresses=127.0.0.1", "start")

        yield url, pg_ctl, restart, user


def _server_processes(user):
    found = subprocess.run(["pgrep", "-U", str(user), "-f", "postgres"], capture_output=True,
                           text=True).stdout.split()
    return [int(pid) for pid in found if int(pid) != os.getpid()]


@pytest.mark.postgres
def test_a_frozen_or_stopped_postgres_server_fails_statements_cleanly(own_server, doctored,
                                                                       monkeypatch):
    """A server that stops answering (SIGSTOP) fails the statement after the statement
    timeout and the grace, with a StoreError, where it blocked forever; a stopped server
    fails each statement with a StoreError (the third was an internal error); when the
    server is back, the next statement connects again and the variables are there."""
    url, pg_ctl, restart, user = own_server
    monkeypatch.setenv("KESTREL_STORE_STATEMENT_TIMEOUT", "1")
    with Session(session_id="frozen", store_path=url) as session:
        session.execute(f"p = GET process FROM {doctored} WHERE {CMD}")
        expected = _rows(session, "p")
        frozen = _server_processes(user)
        assert frozen
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(StoreError) as caught:
                session.execute("c = p WHERE pid > 0")
            waited = time.monotonic() - started
        finally:
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
        assert 10 < waited < 30
        assert caught.value.message == (
            "the store's server did not answer within 11 s (store_statement_timeout and 10 s), "
            "so its connection was closed: the statement failed, the variables are kept in "
            "the store and the next statement connects again")
        assert _rows(session, "p") == expected  # connected again

        pg_ctl("-m", "fast", "stop")
        messages = []
        for _ in range(3):
            with pytest.raises(StoreError) as caught:
                session.execute("DISP p")
            messages.append(caught.value.message)
        assert messages[0] == (
            "the connection to the store's server was lost: the statement failed, the "
            "variables are kept in the store and the next statement connects again")
        for message in messages[1:]:
            assert message.startswith("the connection to the store was lost and cannot be "
                                      "made again: cannot open the store at ")
            assert "Connection refused" in message
        restart()
        session.execute("c = p WHERE pid > 0")
        assert _rows(session, "c") == expected
