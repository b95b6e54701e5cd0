"""Hygiene (issue 9): what a hunt leaves behind and what it shows.

- The runtime directory is its owner's only, and is removed on close (kept in debug mode,
  by the CLI's --debug and the kernel's KESTREL_DEBUG=1).
- Credentials (a PostgreSQL store URL's password, a stix-shifter profile's password, a
  password in a bundle URL) appear in no error, output, progress message or log: of the
  Session, the CLI and a kernel.
- A hunt writes no file outside its runtime directory and the paths the hunter names
  (SAVE, the CLI's --output-dir): HOME, TMPDIR, the XDG directories and the working
  directory point into a fresh directory whose tree is compared before and after.
- python:// runs registered analytics only: naming a module that is importable but not
  registered neither imports nor runs it.
"""

import functools
import http.server
import json
import logging
import os
import pathlib
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import uuid
from urllib.parse import urlparse, urlunparse

import pytest
import yaml
from jupyter_client.manager import start_new_kernel

from kestrel.errors import AnalyticsError, DataSourceError, KestrelError, StoreError
from kestrel.session import Session

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "kernel"))
from kerneltools import run_cell, start_kernel  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
KESTREL = [sys.executable, "-m", "kestrel"]
CMD = "name = 'cmd.exe'"


@pytest.fixture(scope="module")
def doctored(shared_data):
    return shared_data / "doctored-1k.json"


def _runtime_dirs(tmp):
    return sorted(pathlib.Path(tmp).glob("kestrel-session-*"))


# ------------------------------------------------------------------ runtime directories


def test_the_runtime_directory_is_private_and_removed_on_close(doctored):
    session = Session(session_id="hyg_" + uuid.uuid4().hex[:10])
    runtime = pathlib.Path(session.runtime_directory)
    assert runtime.parent == pathlib.Path(tempfile.gettempdir())
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o700  # hunted data: the owner's only
    session.execute(f"procs = GET process FROM {doctored} WHERE {CMD}")
    assert {"local.db", "session.log"} <= {p.name for p in runtime.iterdir()}
    session.close()
    assert not runtime.exists()
    session.close()  # twice is fine


def test_a_session_that_fails_to_open_removes_its_runtime_directory(tmp_path):
    session_id = "hyg_" + uuid.uuid4().hex[:10]
    with pytest.raises(StoreError):
        Session(session_id=session_id, store_path=str(tmp_path / "no" / "such" / "dir.db"))
    assert not (pathlib.Path(tempfile.gettempdir()) / f"kestrel-session-{session_id}").exists()


def test_directories_that_are_not_the_sessions_own_are_kept(tmp_path, doctored):
    given = tmp_path / "given"
    given.mkdir()
    with Session(runtime_dir=str(given)) as session:  # the caller's directory
        session.execute(f"procs = GET process FROM {doctored} WHERE {CMD}")
    assert (given / "session.log").exists()
    session_id = "hyg_" + uuid.uuid4().hex[:10]
    runtime = pathlib.Path(tempfile.gettempdir()) / f"kestrel-session-{session_id}"
    store = runtime / "kept.db"  # a store the user names inside it (e.g. a crashed kernel's)
    try:
        with Session(session_id=session_id, store_path=str(store)) as session:
            session.execute(f"procs = GET process FROM {doctored} WHERE {CMD}")
        assert store.exists()
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def test_a_runtime_directory_someone_else_made_is_refused(tmp_path, monkeypatch):
    """In a shared temp dir a predictable name (a given session id) may already be taken
    by a link: the session must not write through it."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "kestrel-session-planted").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(KestrelError) as caught:
        Session(session_id="planted")
    assert "exists and is not ours" in str(caught.value)
    assert list(elsewhere.iterdir()) == []


def _run_cli(args, tmp, text, **env):
    return subprocess.run(KESTREL + args + ["-"], input=text, capture_output=True, text=True,
                          timeout=120, cwd=tmp, env=dict(os.environ, TMPDIR=str(tmp), **env))


def test_the_cli_removes_its_runtime_directory_unless_debugging(tmp_path, doctored):
    hunt = f"procs = GET process FROM {doctored} WHERE {CMD}\n"
    plain = tmp_path / "plain"
    plain.mkdir()
    assert _run_cli([], plain, hunt).returncode == 0
    assert list(plain.iterdir()) == []
    debug = tmp_path / "debug"
    debug.mkdir()
    assert _run_cli(["--debug"], debug, hunt).returncode == 0
    (kept,) = _runtime_dirs(debug)
    assert (kept / "session.log").read_text().count("executing: procs = GET") == 1
    link = debug / "kestrel-debug"
    assert link.resolve() == kept.resolve()  # TMPDIR/kestrel-debug links to it
    # a Python started in the temp folder still imports the package, not the link
    found = subprocess.run([sys.executable, "-c", "import kestrel; print(kestrel.__file__)"],
                           capture_output=True, text=True, cwd=debug, check=True)
    assert found.stdout.strip().endswith("__init__.py")


def test_the_kernel_keeps_its_runtime_directory_only_when_debugging(kernel_spec, tmp_path,
                                                                   doctored):
    for debug in ("", "1"):
        home = tmp_path / f"debug{debug or 0}"
        km, kc = start_kernel(home, KESTREL_DEBUG=debug)
        try:
            assert run_cell(kc, f"procs = GET process FROM {doctored} WHERE {CMD}").status == "ok"
            assert len(_runtime_dirs(home / "tmp")) == 1
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=False)
        assert len(_runtime_dirs(home / "tmp")) == (1 if debug else 0)


# ------------------------------------------------------------------ credentials


class Seen:
    """Everything a hunter or an admin may see, gathered to look for a secret in."""

    def __init__(self):
        self.texts = []

    def add(self, *texts):
        self.texts.extend(str(t) for t in texts)

    def error(self, err):
        self.add(err, json.dumps(err.to_dict()))

    def files(self, root):
        for path in pathlib.Path(root).rglob("*"):
            if path.is_file():
                self.add(path.read_bytes().decode("utf-8", "replace"))

    def assert_clean(self, *secrets):
        assert self.texts
        for secret in secrets:
            leaks = [t for t in self.texts if secret in t]
            assert not leaks, f"{secret!r} shown in: {leaks[0][:500]!r}"


def _with_password(url, password):
    parsed = urlparse(url)
    user = parsed.username or "postgres"
    netloc = f"{user}:{password}@{parsed.hostname}:{parsed.port}"
    return urlunparse(parsed._replace(netloc=netloc))


@pytest.fixture
def debug_link(tmp_path, monkeypatch):
    """Debug mode links TMPDIR/kestrel to the runtime directory: not the real one here."""
    from kestrel import runtime

    monkeypatch.setattr(runtime, "DEBUG_LINK", tmp_path / "kestrel-link")
    return tmp_path / "kestrel-link"


@pytest.mark.postgres
def test_a_store_password_is_never_shown(postgres_url, doctored, tmp_path, caplog, capfd,
                                         debug_link):
    """The test server trusts 127.0.0.1, so any password works: a URL carries one."""
    secret = "St0re-Pa55-" + uuid.uuid4().hex[:8]
    url = _with_password(postgres_url, secret)
    caplog.set_level(logging.DEBUG)
    for name in ("kestrel", "firepit"):
        caplog.set_level(logging.DEBUG, logger=name)
    seen = Seen()
    session_id = "pw_" + uuid.uuid4().hex[:10]
    with Session(session_id=session_id, store_path=url, runtime_dir=str(tmp_path / "rt"),
                 debug_mode=True) as session:
        session.progress = seen.add
        for stmt in (f"procs = GET process FROM {doctored} WHERE {CMD}",
                     "kids = FIND process CREATED BY procs", "INFO procs", "EXPLAIN kids",
                     "DISP procs ATTR pid", "bad = JOIN procs, procs BY name, pid",
                     "DISP nothing"):
            try:
                seen.add(*(r.to_text() for r in session.execute(stmt)))
            except KestrelError as err:
                seen.error(err)
    with pytest.raises(StoreError) as caught:  # a store that cannot be reached
        Session(store_path=_with_password(postgres_url.replace(
            f":{urlparse(postgres_url).port}/", ":1/"), secret))
    seen.error(caught.value)
    assert ":***@" in str(caught.value)
    # the CLI, debugging (its runtime directory and log are kept)
    done = _run_cli(["--store", url, "--session", session_id, "--debug"], tmp_path,
                    "DISP procs ATTR pid\nEXPLAIN kids\nx = JOIN procs, procs BY name, pid\n")
    assert done.returncode == 1 and done.stderr.startswith("StoreError: line 3, column 1: ")
    seen.add(done.stdout, done.stderr)
    seen.files(tmp_path)
    out, err = capfd.readouterr()
    seen.add(caplog.text, out, err)
    seen.assert_clean(secret)


@pytest.fixture(scope="module")
def http_data(shared_data):
    """A real HTTP server over the shared data, on 127.0.0.1."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(shared_data)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


WINDOW = "START 2019-11-16T00:00:00Z STOP 2019-11-17T00:00:00Z"


def test_a_stixshifter_password_is_never_shown_by_the_kernel(kernel_spec, tmp_path, http_data,
                                                             capfd):
    secret, user = "Pr0file-Pa55-" + uuid.uuid4().hex[:8], "hunter-" + uuid.uuid4().hex[:6]
    auth = json.dumps({"auth": {"username": user, "password": secret}})
    env = {"KESTREL_DEBUG": "1",
           "STIXSHIFTER_GONE_CONNECTOR": "stix_bundle",
           "STIXSHIFTER_GONE_CONNECTION": json.dumps(
               {"host": f"http://{user}:{secret}@{http_data}/no-such.json"}),
           "STIXSHIFTER_GONE_CONFIG": auth,
           "STIXSHIFTER_OK_CONNECTOR": "stix_bundle",
           "STIXSHIFTER_OK_CONNECTION": json.dumps(
               {"host": f"http://{http_data}/doctored-1k.json"}),
           "STIXSHIFTER_OK_CONFIG": auth}
    km, kc = start_kernel(tmp_path, **env)
    seen = Seen()
    try:
        statuses = []
        for code in (f"x = GET process FROM stixshifter://gone WHERE {CMD} {WINDOW}",
                     f"procs = GET process FROM stixshifter://ok WHERE {CMD} {WINDOW}",
                     "EXPLAIN procs\nINFO procs", "DISP procs ATTR pid",
                     f"y = GET process FROM stixshifter://ok,gone WHERE {CMD} {WINDOW}"):
            cell = run_cell(kc, code)
            statuses.append(cell.reply.get("ename", cell.status))
            seen.add(json.dumps(cell.reply), *(json.dumps(m["content"]) for m in cell.messages))
        assert statuses == ["DataSourceError", "ok", "ok", "ok", "DataSourceError"]
        completion = kc.complete("GET process FROM ", 17, reply=True, timeout=10)["content"]
        seen.add(json.dumps(completion))
        assert "stixshifter://gone" in completion["matches"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    (runtime,) = _runtime_dirs(tmp_path / "tmp")  # kept: KESTREL_DEBUG=1
    assert "ERROR kestrel.sources.stixshifter: stix_shifter_utils" in (
        runtime / "session.log").read_text()  # the connector's own lines are there
    seen.files(runtime)
    out, err = capfd.readouterr()
    seen.add(out, err)
    seen.assert_clean(secret, user)


def test_a_password_in_a_bundle_url_is_not_shown(http_data, tmp_path, capfd, debug_link):
    """Error messages, progress and the session log hide it (the statement the hunter typed,
    echoed under an error's caret, shows it as typed)."""
    secret = "Bundl3-Pa55-" + uuid.uuid4().hex[:8]
    base = f"http://reader:{secret}@{http_data}"
    seen = Seen()
    with Session(runtime_dir=str(tmp_path / "rt"), debug_mode=True) as session:
        session.progress = seen.add
        session.execute(f"web = GET process FROM {base}/doctored-1k.json WHERE {CMD}")
        for url in (f"{base}/no-such.json", f"{base}/README.md", f"{base}/no-such-dir/"):
            with pytest.raises(DataSourceError) as caught:
                session.execute(f"x = GET process FROM {url} WHERE {CMD}")
            seen.add(caught.value.message, caught.value.headline)
            assert "reader:***@" in caught.value.message
    # (the store keeps each variable's statement as typed: it is the hunter's own data)
    log = (tmp_path / "rt" / "session.log").read_text()
    seen.add(log)
    assert f"executing: web = GET process FROM http://reader:***@{http_data}/" in log
    out, err = capfd.readouterr()
    seen.add(out, err)
    seen.assert_clean(secret)


def test_log_records_hide_a_password_in_a_bundle_url(http_data, caplog):
    secret = "Bundl3-Pa55-" + uuid.uuid4().hex[:8]
    caplog.set_level(logging.DEBUG, logger="kestrel")
    with Session() as session:
        session.execute(f"web = GET process FROM http://reader:{secret}@{http_data}/"
                        f"doctored-1k.json WHERE {CMD}")
    assert "executing: web = GET" in caplog.text
    assert secret not in caplog.text


def test_info_and_explain_hide_a_password_in_a_bundle_url(http_data):
    secret = "Bundl3-Pa55-" + uuid.uuid4().hex[:8]
    with Session() as session:
        session.execute(f"web = GET process FROM http://reader:{secret}@{http_data}/"
                        f"doctored-1k.json WHERE {CMD}")
        shown = [r.to_text() for r in session.execute("INFO web\nEXPLAIN web")]
    assert not any(secret in text for text in shown)


# ------------------------------------------------------------------ files written


def _world(root: pathlib.Path) -> dict:
    """HOME, TMPDIR, the XDG directories and a working directory, all under root."""
    dirs = {"HOME": "home", "TMPDIR": "tmp", "XDG_CONFIG_HOME": "xdg/config",
            "XDG_CACHE_HOME": "xdg/cache", "XDG_DATA_HOME": "xdg/data",
            "XDG_STATE_HOME": "xdg/state", "XDG_RUNTIME_DIR": "xdg/runtime", "cwd": "work"}
    paths = {var: root / sub for var, sub in dirs.items()}
    for path in paths.values():
        path.mkdir(parents=True)
    (root / "work" / "named").mkdir()  # where the hunter SAVEs
    return paths


def _tree(root: pathlib.Path) -> dict:
    return {str(p.relative_to(root)): p.stat().st_size if p.is_file() else None
            for p in root.rglob("*")}


def _hunt(doctored, root):
    return "\n".join([
        f"procs = GET process FROM {doctored} WHERE {CMD}",
        "parents = FIND process CREATED procs",
        "files = FIND file LINKED procs",
        "DISP procs ATTR pid, name, command_line",
        "APPLY python://suspicious_cmdline ON procs",
        "APPLY python://process_tree ON procs, parents",
        f"SAVE procs TO \"{root}/work/named/procs.csv\"",
        'ips = NEW ipv4-addr ["10.0.0.1", "8.8.8.8"]',
        "APPLY python://ip_class ON ips",
        "flagged = GET process FROM procs WHERE x_suspicious_score > 0",
        "DISP flagged ATTR pid, x_suspicious_score",
    ]) + "\n"


NAMED = {"work/named/procs.csv", "work/figures",
         "work/figures/hunt-process_tree-procs-parents.html"}
# the one file Kestrel keeps for itself, documented: the built parser, in the user's cache
PARSER_CACHE = {"xdg/cache/kestrel", "xdg/cache/kestrel/parser.lark"}


def test_a_cli_hunt_writes_only_where_it_is_told(tmp_path, doctored):
    root = tmp_path / "world"
    paths = _world(root)
    hunt = tmp_path / "hunt.hf"  # outside the world: read, not written
    hunt.write_text(_hunt(doctored, root))
    before = _tree(root)
    env = {var: str(path) for var, path in paths.items() if var != "cwd"}
    done = subprocess.run(KESTREL + [str(hunt), "--output-dir", str(paths["cwd"] / "figures")],
                          capture_output=True, text=True, timeout=120, cwd=paths["cwd"],
                          env=dict(os.environ, **env))
    assert done.returncode == 0, done.stderr
    after = _tree(root)
    assert set(after) - set(before) == NAMED | PARSER_CACHE
    assert {k: v for k, v in after.items() if k not in NAMED | PARSER_CACHE} == before
    assert (root / "work/named/procs.csv").read_text().count("cmd.exe") >= 9


def test_a_kernel_hunt_writes_only_where_it_is_told(kernel_spec, tmp_path, doctored):
    root = tmp_path / "world"
    paths = _world(root)
    before = _tree(root)
    env = {var: str(path) for var, path in paths.items() if var != "cwd"}
    km, kc = start_new_kernel(kernel_name="kestrel", startup_timeout=60, cwd=str(paths["cwd"]),
                              env=dict(os.environ, **env))
    try:
        cell = run_cell(kc, _hunt(doctored, root))
        assert cell.status == "ok", cell.reply
        during = set(_tree(root)) - set(before)
        (runtime,) = _runtime_dirs(paths["TMPDIR"])
        # temporary files (the session's runtime directory, the figure renderer's browser
        # and page) come and go in TMPDIR; nothing else but what the hunt names
        assert {p for p in during if not p.startswith(("tmp/", "home/.ipython"))
                } == {"work/named/procs.csv"} | PARSER_CACHE
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    after = _tree(root)
    # ipykernel (not Kestrel) makes an IPython profile in HOME on its first start
    ipython = {p for p in after if p.startswith("home/.ipython")}
    assert set(after) - set(before) - ipython == {"work/named/procs.csv"} | PARSER_CACHE
    assert not runtime.exists()


# ------------------------------------------------------------------ python:// analytics

PROBE = '''
import pathlib
pathlib.Path({marker!r}).write_text("imported")


def run(frames, context=None):
    pathlib.Path({marker!r}).write_text("ran")
    from kestrel.analytics import AnalyticsResult
    return AnalyticsResult()
'''


def test_unregistered_python_analytics_are_never_imported(tmp_path, monkeypatch, doctored):
    module = "kestrel_probe_" + uuid.uuid4().hex[:8]
    marker = tmp_path / "marker"
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / f"{module}.py").write_text(PROBE.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    config = tmp_path / "kestrel.yaml"
    config.write_text("{}\n")
    monkeypatch.setenv("KESTREL_CONFIG", str(config))
    with Session(runtime_dir=str(tmp_path / "rt")) as session:
        session.execute(f"procs = GET process FROM {doctored} WHERE {CMD}")
        for uri in (module, f"{module}:run", f"{module}.run", "os:system", "os.system",
                    "subprocess:run", f"{module}/run"):
            with pytest.raises(AnalyticsError) as caught:
                session.execute(f"APPLY python://{uri} ON procs")
            assert caught.value.message == (
                f'no analytics "{uri}" is registered (registered: geoip, huntflow_graph, '
                'ip_class, ip_map, log4shell, process_tree, sigma, suspicious_cmdline, timeline)')
        assert session.complete("APPLY python://", 15).matches  # lists names, imports none
    assert not marker.exists() and module not in sys.modules

    # registered, the same module runs: the probe would have seen an import
    config.write_text(yaml.safe_dump({"analytics": {"probe": f"{module}:run"}}))
    with Session(runtime_dir=str(tmp_path / "rt2")) as session:
        session.execute(f"procs = GET process FROM {doctored} WHERE {CMD}")
        session.execute("APPLY python://probe ON procs")
    assert marker.read_text() == "ran"
    sys.modules.pop(module, None)


# ------------------------------------------------------------------ found along the way

def test_ip_class_on_an_empty_variable(doctored):
    with Session() as session:
        session.execute(f"procs = GET process FROM {doctored} WHERE {CMD}\n"
                        "conns = FIND network-traffic CREATED BY procs\n"
                        "ips = FIND ipv4-addr CREATED conns")
        assert session.variable_summary("ips").entities == 0
        session.execute("APPLY python://ip_class ON ips")
