"""A throwaway PostgreSQL server for benchmarks, started the way the tests start theirs.

tests/conftest.py starts the tests' server with `own_postgres` (initdb with trust
authentication, the `postgres` user when we are root, listening only on 127.0.0.1); the
benchmarks start theirs with the same function, without pytest's fail/skip.

    with postgres_server() as url:      # postgresql://postgres@127.0.0.1:PORT/kestrel_bench
        ...
"""

from __future__ import annotations

import importlib.util
import pathlib
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
    if conftest._postgres_bindir() is None:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin; "
                           "install them with scripts/deps/postgresql.sh (apt-get install "
                           "postgresql) or pass --pg-url")
    with conftest.own_postgres(dbname, "kestrel-bench-pg-") as url:
        yield url


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
