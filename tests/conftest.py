"""Shared fixtures: test data location and the stores (SQLite, PostgreSQL) tests run against.

- ``shared_data``: the shared data folder (``$KESTREL_SHARED_DATA`` or ``<repo>/../shared/data``).
- ``postgres_url``: a PostgreSQL URL, from ``$KESTREL_TEST_PG_URL`` or a throwaway server
  started for the test session on 127.0.0.1 and stopped at its end.
- ``store_url``: each test using it runs twice, on a SQLite file and on PostgreSQL
  (the latter marked ``postgres``; deselect with ``-m "not postgres"``);
  ``module_store_url`` is the same per test module.
"""

import glob
import json
import os
import pathlib
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from contextlib import contextmanager

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """The shared data folder the tests read their STIX bundles from."""
    path = pathlib.Path(os.environ.get("KESTREL_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")
    if not path.is_dir():
        pytest.fail(
            f"shared data folder not found: {path} "
            "(expected ../shared/data beside the repo, or set KESTREL_SHARED_DATA)"
        )
    return path


def _postgres_bindir() -> pathlib.Path | None:
    """The bin directory of the newest PostgreSQL installed the Debian way, if any."""
    bindirs = [pathlib.Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")]
    return max(bindirs, key=lambda d: float(d.parent.name), default=None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """URL of a PostgreSQL database for the tests.

    ``$KESTREL_TEST_PG_URL`` if set; otherwise a server of our own in a temp dir, run as
    the ``postgres`` user when we are root (PostgreSQL refuses to run as root), with
    trust authentication, listening only on 127.0.0.1, holding a database ``kestrel_test``.
    """
    if os.environ.get("KESTREL_TEST_PG_URL"):
        yield os.environ["KESTREL_TEST_PG_URL"]
        return

    if _postgres_bindir() is None:
        msg = (
            "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin; "
            "install them with `apt-get install postgresql` (scripts/test does so as root) "
            "or set KESTREL_TEST_PG_URL"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)

    try:
        with own_postgres("kestrel_test", "kestrel-pg-") as url:
            yield url
    except PostgresStartError as err:
        pytest.fail(str(err))


class PostgresStartError(RuntimeError):
    pass


@contextmanager
def own_postgres(dbname: str, prefix: str):
    """URL of database `dbname` on a server of our own in a temp dir (`prefix`), run as
    the ``postgres`` user when we are root, trust authentication, listening only on
    127.0.0.1; stopped and removed at exit.  The tests' fixture and the benchmarks
    (benchmarks/pgserver.py) both start theirs here."""
    bindir = _postgres_bindir()
    base = pathlib.Path(tempfile.mkdtemp(prefix=prefix))
    datadir, logfile = base / "data", base / "server.log"
    run_as = []
    if os.geteuid() == 0:
        try:
            pg_user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(base, ignore_errors=True)
            raise PostgresStartError("running as root but there is no `postgres` user to run "
                                     "the server as") from None
        os.chown(base, pg_user.pw_uid, pg_user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]

    def pg(*args):
        # capture_output is safe: with -l the server's output goes to the log file
        return subprocess.run(run_as + [str(bindir / args[0]), *args[1:]],
                              capture_output=True, text=True)

    def check(proc, what):
        if proc.returncode != 0:
            log = logfile.read_text() if logfile.exists() else ""
            raise PostgresStartError(f"{what} failed ({proc.returncode}):\n"
                                     f"{proc.stdout}{proc.stderr}{log}")

    port = _free_port()
    try:
        check(pg("initdb", "-A", "trust", "-U", "postgres", "-E", "UTF8", "-D", str(datadir)), "initdb")
        check(pg("pg_ctl", "-D", str(datadir), "-l", str(logfile), "-w",
                 "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start"), "pg_ctl start")

        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{dbname}"')
        conn.close()

        yield f"postgresql://postgres@127.0.0.1:{port}/{dbname}"
    finally:
        if datadir.exists():  # a no-op if the server never started
            pg("pg_ctl", "-D", str(datadir), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


STORES = dict(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
              ids=["sqlite", "postgresql"])


def _store_location(request, folder):
    if request.param == "sqlite":
        return str(folder / "store.db")
    return request.getfixturevalue("postgres_url")


@pytest.fixture(**STORES)
def store_url(request, tmp_path):
    """A firepit store location: a SQLite file path, or the PostgreSQL URL.

    PostgreSQL tests share one database; firepit keeps each session id in its own
    schema, so tests stay apart by using unique session ids.
    """
    yield _store_location(request, tmp_path)


@pytest.fixture(scope="module", **STORES)
def module_store_url(request, tmp_path_factory):
    """`store_url` for a module-scoped Session: tests that only read share one per store
    instead of loading the same data for each test."""
    return _store_location(request, tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="session")
def kernel_spec(tmp_path_factory):
    """`python -m kestrel_kernel.install --prefix TMP`, and JUPYTER_PATH pointing there."""
    prefix = tmp_path_factory.mktemp("jupyter-prefix")
    subprocess.run([sys.executable, "-m", "kestrel_kernel.install", "--prefix", str(prefix)],
                   check=True, capture_output=True, text=True)
    data_dir = prefix / "share" / "jupyter"
    saved = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(data_dir), saved]))
    yield data_dir / "kernels" / "kestrel"
    if saved is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = saved


@pytest.fixture(scope="session")
def cmd_pids(shared_data):
    """Sorted distinct pids of cmd.exe processes in doctored-1k, from the raw JSON."""
    bundle = json.loads((shared_data / "doctored-1k.json").read_text())
    return sorted({o["pid"] for r in bundle["objects"] if r["type"] == "observed-data"
                   for o in r["objects"].values()
                   if o.get("type") == "process" and o.get("name") == "cmd.exe"})
