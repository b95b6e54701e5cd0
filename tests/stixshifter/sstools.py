"""Helpers the stix-shifter tests import (a module of its own: `conftest` names clash
between test folders)."""

import socket

DB_USER, DB_PASSWORD = "hunter_k7", "Pa55-w0rd-for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bundle_profile(http, name, auth=None, **options):
    connection = {"host": f"{http.base}/{name}"}
    if options:
        connection["options"] = options
    return "stix_bundle", connection, {"auth": auth or {"username": None, "password": None}}


def mysql_profile(db, table="events", password=None, port=None, **options):
    connection = {"host": db["host"], "port": port or db["port"], "database": db["database"],
                  "options": {"table": table, **options}}
    config = {"auth": {"username": db["user"], "password": password or db["password"]}}
    return "mysql", connection, config
