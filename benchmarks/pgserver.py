"""A throwaway PostgreSQL server for benchmarks, started the way the tests start theirs.

tests/conftest.py's `postgres_url` fixture finds the server binaries and a free port with
`_postgres_bindir` and `_free_port`; they are imported from there, and the start below
follows the fixture step by step (initdb with trust authentication, the `postgres` user
when we are root, listening only on 127.0.0.1), without pytest's fail/skip.

    with postgres_server() as url:      # postgresql://postgres@127.0.0.1:PORT/kestrel_bench
        ...
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import pwd
import shutil
import subprocess
import tempfile
from contextlib import contextmanager

REPO = pathlib.Path(__file__).resolve().parent.parent


def _conftest():
    spec = importlib.util.spec_from_file_location("_kestrel_tests_conftest",
                                                  REPO / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def postgres_server(dbname: str = "kestrel_bench"):
    """URL of a database on a server of our own in a temp dir, stopped and removed at exit."""
    conftest = _conftest()
    bindir = conftest._postgres_bindir()
    if bindir is None:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin; "
                           "install them with scripts/deps/postgresql.sh (apt-get install "
                           "postgresql) or pass --pg-url")
    base = pathlib.Path(tempfile.mkdtemp(prefix="kestrel-bench-pg-"))
    datadir, logfile = base / "data", base / "server.log"
    run_as = []
    if os.geteuid() == 0:
        pg_user = pwd.getpwnam("postgres")  # PostgreSQL refuses to run as root
        os.chown(base, pg_user.pw_uid, pg_user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]

    def pg(*args):
        return subprocess.run(run_as + [str(bindir / args[0]), *args[1:]],
                              capture_output=True, text=True)

    def check(proc, what):
        if proc.returncode != 0:
            log = logfile.read_text() if logfile.exists() else ""
            raise RuntimeError(f"{what} failed ({proc.returncode}):\n"
                               f"{proc.stdout}{proc.stderr}{log}")

    port = conftest._free_port()
    try:
        check(pg("initdb", "-A", "trust", "-U", "postgres", "-E", "UTF8", "-D", str(datadir)),
              "initdb")
        check(pg("pg_ctl", "-D", str(datadir), "-l", str(logfile), "-w",
                 "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start"),
              "pg_ctl start")
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{dbname}"')
        conn.close()
        yield f"postgresql://postgres@127.0.0.1:{port}/{dbname}"
    finally:
        if datadir.exists():
            pg("pg_ctl", "-D", str(datadir), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


def drop_schema(url: str, schema: str):
    """Remove what one workload stored (firepit keeps a session in its own schema), first
    stopping what a killed workload left running (its connections are named after it)."""
    import psycopg2

    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s AND pid <> pg_backend_pid()", (schema,))
        cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    conn.close()
