"""Which part of a store a session owns, held by one open Session at a time.

A SQLite store is one file: the file is the session (the session id names nothing in it),
and a second Session opening the file while the first is open would interleave two hunts'
views and writes, so the file is claimed with an exclusive `flock` for as long as the
Session is open.

A PostgreSQL store keeps each session in a schema named after the session id, written with
`_` for `-` (firepit passes it unquoted in the connection's options) and cut to 63 bytes by
the server.  The schema name is made from the id ("-" as "_", an id over 63 bytes as its
first 40 characters and a digest), the id that first used the schema is recorded in it, and
a session whose id maps to a schema recorded for another id is refused: ids never share
data silently.  An open session holds an advisory lock on its schema; the lock ends with the
connection, so a killed process frees it at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time

from ..errors import StoreError

PG_IDENTIFIER_BYTES = 63
OWNER_TABLE = "__kestrel_session"
# seconds a Session waits for the one holding its part to close (threads take turns;
# a killed holder's connection may take a moment to end)
CLAIM_PATIENCE = 10.0


def schema_name(session_id: str) -> str:
    """The PostgreSQL schema of a session id (firepit's name for it: `-` as `_`)."""
    name = session_id.replace("-", "_")
    if len(name.encode()) <= PG_IDENTIFIER_BYTES:
        return name
    digest = hashlib.sha256(session_id.encode()).hexdigest()[:16]
    return f"{name[:40]}_{digest}"


class Claim:
    """This Session's hold on its part of the store, given up by release(): a SQLite
    file's before the store opens it (firepit creates its tables then, and two at once
    on a new file fail inside firepit), a PostgreSQL schema's on the store's connection."""

    def __init__(self):
        self._file = None

    def file(self, path: str, shown: str):
        """Claim the SQLite file `path` (made if new: an empty file is an empty store);
        `shown` names the store in errors."""
        try:
            self._file = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            raise StoreError(f"cannot open the store at {shown}: unable to open database "
                             "file") from None
        try:
            _patiently(lambda: _try_flock(self._file))
        except _Held:
            self.release()
            raise StoreError(f"the store {os.path.abspath(path)} is open in another session "
                             "(a SQLite store holds one session at a time): close that one, "
                             "or give this session another store") from None

    def schema(self, fp, session_id: str):
        """Claim the PostgreSQL schema of the open store `fp`, recording `session_id`."""
        schema = fp.session_id
        key = int.from_bytes(hashlib.sha256(f"kestrel:{schema}".encode()).digest()[:8],
                             "big", signed=True)
        cursor = fp.connection.cursor()
        try:
            cursor.execute(f'CREATE TABLE IF NOT EXISTS "{OWNER_TABLE}" (session_id TEXT)')
            fp.connection.commit()
            try:
                _patiently(lambda: _try_advisory_lock(cursor, key))
            except _Held:
                _check_owner(cursor, schema, session_id)
                raise StoreError(f"session {session_id!r} is open in another session "
                                 "(a kernel or a kestrel run): close that one, or choose "
                                 "another session id") from None
            if _check_owner(cursor, schema, session_id) is None:
                cursor.execute(f'INSERT INTO "{OWNER_TABLE}" VALUES (%s)', (session_id,))
            fp.connection.commit()
        finally:
            cursor.close()

    def release(self):
        """A SQLite file's lock ends with its descriptor; PostgreSQL's with the connection,
        which the store closes."""
        if self._file is not None:
            os.close(self._file)
            self._file = None


class _Held(Exception):
    """Someone else holds the claim."""


def _try_flock(fd):
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _Held() from None


def _check_owner(cursor, schema, session_id):
    """The id recorded in the schema (None for a new one); another id is refused."""
    cursor.execute(f'SELECT session_id FROM "{OWNER_TABLE}"')
    row = cursor.fetchone()
    if row and row["session_id"] != session_id:
        raise StoreError(
            f"session id {session_id!r} would share the store's schema {schema!r} with "
            f"session {row['session_id']!r} (PostgreSQL writes - as _ and keeps 63 bytes of "
            "a name): choose another session id")
    return row and row["session_id"]


def _try_advisory_lock(cursor, key):
    cursor.execute("SELECT pg_try_advisory_lock(%s) AS held", (key,))
    if not cursor.fetchone()["held"]:
        raise _Held()


def _patiently(attempt):
    deadline = time.monotonic() + CLAIM_PATIENCE
    while True:
        try:
            return attempt()
        except _Held:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)
