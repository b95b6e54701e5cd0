"""Real stix-shifter connectors against servers started here on 127.0.0.1.

- ``bundle_http``: an HTTP server over the shared data (the ``stix_bundle`` connector reads
  bundles by URL); ``/slow/NAME`` answers after 3 s, and ``hits`` counts requests per path.
- ``mariadb``: a throwaway MariaDB server (its own datadir, socket and free port) holding
  mysqlrows.py's rows in the mysql connector's schema; Debian's mariadb-server (scripts/deps).
  Missing binaries skip these tests, or fail them when CI=true.
- ``hunt``: STIXSHIFTER_* profiles and a KESTREL_CONFIG file, isolated per test, and
  Sessions that are closed afterwards.
"""

import collections
import functools
import http.server
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import threading
import time
import uuid

import pytest
import yaml

from kestrel.session import Session

import mysqlrows as data
from sstools import DB_PASSWORD, DB_USER, free_port





# ------------------------------------------------------------------ HTTP for stix_bundle


@pytest.fixture(scope="session")
def bundle_http(shared_data):
    hits = collections.Counter()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            hits[self.path] += 1
            if self.path.startswith("/slow/"):
                time.sleep(3)
                self.path = self.path[len("/slow"):]
            super().do_GET()

        def log_message(self, *args):
            pass

    handler = functools.partial(Handler, directory=str(shared_data))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        server.base = f"http://127.0.0.1:{server.server_address[1]}"
        server.hits = hits
        yield server
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------ MariaDB for mysql


def _binary(*names):
    for name in names:
        found = shutil.which(name) or next(
            (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def mariadb():
    """A MariaDB server on 127.0.0.1 with tables `events` (hunt + recent rows) and `bulk`."""
    server, install = _binary("mariadbd", "mysqld"), _binary("mariadb-install-db",
                                                             "mysql_install_db")
    if not (server and install):
        msg = ("no MariaDB server binaries (mariadbd, mariadb-install-db); install them with "
               "`apt-get install mariadb-server` (scripts/test does so as root)")
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    import pymysql

    base = pathlib.Path(tempfile.mkdtemp(prefix="kestrel-mdb-"))
    datadir, sock, errlog = base / "data", base / "mysqld.sock", base / "error.log"
    as_root = ["--user=root"] if os.geteuid() == 0 else []  # it refuses root otherwise
    proc = None
    try:
        done = subprocess.run([install, "--no-defaults", f"--datadir={datadir}",
                               "--auth-root-authentication-method=normal", "--skip-test-db",
                               *as_root], capture_output=True, text=True)
        if done.returncode:
            pytest.fail(f"mariadb-install-db failed:\n{done.stdout}{done.stderr}")
        port = free_port()
        proc = subprocess.Popen(
            [server, "--no-defaults", f"--datadir={datadir}", f"--socket={sock}",
             f"--port={port}", "--bind-address=127.0.0.1", f"--pid-file={base / 'pid'}",
             f"--log-error={errlog}", "--skip-name-resolve", *as_root],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        root = _connect_root(pymysql, proc, sock, errlog)
        now_ms = int(time.time() * 1000)
        _load(root, now_ms)
        root.close()
        yield {"host": "127.0.0.1", "port": port, "database": "hunt", "user": DB_USER,
               "password": DB_PASSWORD, "now_ms": now_ms}
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(base, ignore_errors=True)


def _connect_root(pymysql, proc, sock, errlog):
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"mariadbd exited ({proc.returncode}):\n"
                        f"{errlog.read_text() if errlog.exists() else ''}")
        try:
            return pymysql.connect(unix_socket=str(sock), user="root", autocommit=True)
        except pymysql.err.OperationalError:
            if time.monotonic() > deadline:
                pytest.fail(f"mariadbd did not accept connections in 60 s:\n"
                            f"{errlog.read_text() if errlog.exists() else ''}")
            time.sleep(0.2)


def _load(conn, now_ms):
    columns = ", ".join(f"{name} {kind}" for name, kind in data.COLUMNS.items())
    names = list(data.COLUMNS)
    insert = (f"INSERT INTO hunt.{{}} ({', '.join(names)}) "
              f"VALUES ({', '.join(['%s'] * len(names))})")
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE hunt")
        cur.execute(f"CREATE USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{DB_PASSWORD}'")
        cur.execute(f"GRANT SELECT ON hunt.* TO '{DB_USER}'@'127.0.0.1'")
        for table, rows in (("events", data.hunt_rows() + data.recent_rows(now_ms)),
                            ("bulk", data.bulk_rows())):
            cur.execute(f"CREATE TABLE hunt.{table} ({columns})")
            values = [tuple(row[n] for n in names) for row in rows]
            for i in range(0, len(values), 2000):
                cur.executemany(insert.format(table), values[i:i + 2000])


# ------------------------------------------------------------------ profiles and sessions


class Hunt:
    """Profiles through the environment or a configuration file, and Sessions to use them."""

    def __init__(self, monkeypatch, tmp_path):
        self.monkeypatch, self.tmp_path = monkeypatch, tmp_path
        self.sessions = []
        for var in list(os.environ):
            if var.startswith("STIXSHIFTER_"):
                monkeypatch.delenv(var)
        self.config({})

    def env(self, name, connector, connection, config):
        for part, value in (("CONNECTOR", connector), ("CONNECTION", connection),
                            ("CONFIG", config)):
            if value is not None:
                text = value if isinstance(value, str) else json.dumps(value)
                self.monkeypatch.setenv(f"STIXSHIFTER_{name.upper()}_{part}", text)

    def config(self, content: dict):
        """Write the KESTREL_CONFIG file (read when a Session starts)."""
        path = self.tmp_path / "kestrel.yaml"
        path.write_text(yaml.safe_dump(content))
        self.monkeypatch.setenv("KESTREL_CONFIG", str(path))

    def session(self):
        session = Session(session_id="ss_" + uuid.uuid4().hex[:12])
        session.progress_messages = []
        session.progress = session.progress_messages.append
        self.sessions.append(session)
        return session

    def close(self):
        for session in self.sessions:
            session.close()


@pytest.fixture
def hunt(monkeypatch, tmp_path):
    helper = Hunt(monkeypatch, tmp_path)
    yield helper
    helper.close()




