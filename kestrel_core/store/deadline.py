"""How long a PostgreSQL server may take to answer, enforced by the client.

The server's own `statement_timeout` ends a statement that runs too long, but a server
that stops answering (a stopped process, a host that drops packets) never ends anything,
and TCP keepalives do not notice a stopped process whose host still answers them.  So
every call of a cursor is watched: a server that has not answered `statement_timeout`
plus GRACE seconds after the call began has its connection shut, which ends the call
with an error the store reports, and the session connects again at its next statement.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

import psycopg2
import psycopg2.extras

# past the server's own statement_timeout, which a live server enforces itself
GRACE = 10.0
POLL = 0.5


class Deadline:
    """One connection's watch: at most one call at a time (a connection serves one)."""

    def __init__(self, connection, seconds: float):
        self.connection = connection
        self.seconds = seconds
        self.expired = False
        self._due = None  # (the call, when it is due): None between calls
        self._calls = 0
        threading.Thread(target=self._watch, name="kestrel-store-deadline",
                         daemon=True).start()

    @contextmanager
    def watch(self):
        self._calls += 1
        self._due = (self._calls, time.monotonic() + self.seconds + GRACE)
        try:
            yield
        except psycopg2.Error:
            if self.expired:
                raise psycopg2.OperationalError(
                    f"the server did not answer within {self.seconds + GRACE:g} s "
                    f"(statement_timeout and {GRACE:g} s): the connection is closed") from None
            raise
        finally:
            self._due = None

    def close(self):
        """Stop watching (the thread ends within a poll)."""
        self.connection = None

    def _watch(self):
        while self.connection is not None:
            time.sleep(POLL)
            due = self._due
            if due is not None and time.monotonic() > due[1] and self._due == due:
                self.expired = True
                _shut(self.connection)
                return

    def cursor_class(self, base=psycopg2.extras.RealDictCursor):
        """`base` with each call that waits for the server watched."""
        deadline = self

        class WatchedCursor(base):
            def execute(self, query, vars=None):
                with deadline.watch():
                    return super().execute(query, vars)

            def executemany(self, query, vars_list):
                with deadline.watch():
                    return super().executemany(query, vars_list)

            def copy_expert(self, sql, file, size=8192):
                with deadline.watch():
                    return super().copy_expert(sql, file, size)

            def fetchone(self):
                with deadline.watch():
                    return super().fetchone()

            def fetchmany(self, size=None):
                with deadline.watch():
                    return super().fetchmany(size) if size is not None else super().fetchmany()

            def fetchall(self):
                with deadline.watch():
                    return super().fetchall()

        return WatchedCursor


def _shut(connection):
    """End the wait of a call blocked on the connection's socket (libpq then reports the
    connection lost); the socket object made here shares the descriptor, which it must
    not close."""
    try:
        sock = socket.socket(fileno=connection.fileno())
    except (OSError, psycopg2.Error):
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.detach()
