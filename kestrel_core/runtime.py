"""The session's runtime directory and its log."""

from __future__ import annotations

import contextvars
import logging
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import KestrelError
from .redaction import redact

# not "kestrel": a Python started in the temp folder would import the link as the package
DEBUG_LINK = Path(tempfile.gettempdir()) / "kestrel-debug"
# what firepit accepts (a schema name on PostgreSQL); never a path: no "/", no ".."
SESSION_ID = re.compile(r"[\w-]+")

# a library's loggers: without a session log, messages go nowhere (not to stderr)
logging.getLogger("kestrel").addHandler(logging.NullHandler())


def prepare(runtime_dir, session_id: str, debug: bool) -> str:
    """Create (or adopt) the runtime directory, readable by its owner only; in debug mode
    point /tmp/kestrel-debug at it."""
    if not isinstance(session_id, str) or not SESSION_ID.fullmatch(session_id):
        raise KestrelError(f"invalid session id {session_id!r}: use letters, digits, _ and -")
    path = Path(runtime_dir) if runtime_dir else (
        Path(tempfile.gettempdir()) / f"kestrel-session-{session_id}")
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not runtime_dir and (path.is_symlink() or path.stat().st_uid != os.geteuid()):
            # a name in a shared temp dir that someone else made: not a place for a hunt
            raise KestrelError(f"the runtime directory {path} exists and is not ours "
                               "(a link, or another user's)")
    except OSError as err:
        raise KestrelError(f"cannot create the runtime directory {path}: "
                           f"{err.strerror or err}") from None
    if debug:
        try:
            if DEBUG_LINK.is_symlink():
                DEBUG_LINK.unlink()
            if not DEBUG_LINK.exists():
                DEBUG_LINK.symlink_to(path, target_is_directory=True)
        except OSError:
            pass  # another user owns the link: the session still works
    return str(path)


# the session whose statement runs now: each session log keeps its own lines, though
# every session's handler listens to the same process-wide loggers
CURRENT_SESSION = contextvars.ContextVar("kestrel_session", default=None)


@contextmanager
def acting_for(session_id: str):
    token = CURRENT_SESSION.set(session_id)
    try:
        yield
    finally:
        CURRENT_SESSION.reset(token)


class _SessionLog(logging.FileHandler):
    """The session log: its session's lines (and those of no session), credentials
    redacted (URL passwords, stix-shifter secrets), and a write that fails (a full disk)
    drops the line instead of printing a traceback."""

    def __init__(self, path, session_id):
        super().__init__(path)
        self.session_id = session_id

    def filter(self, record):
        return CURRENT_SESSION.get() in (None, self.session_id) and super().filter(record)

    def format(self, record):
        return redact(super().format(record))

    def handleError(self, record):
        pass


def start_log(runtime_dir: str, session_id: str, debug: bool) -> tuple:
    """A handler writing kestrel and firepit messages to <runtime dir>/session.log."""
    log_path = os.path.join(runtime_dir, "session.log")
    try:
        handler = _SessionLog(log_path, session_id)
    except OSError as err:
        raise KestrelError(f"cannot write the session log {log_path}: "
                           f"{err.strerror or err}") from None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG if debug else logging.INFO)
    for name in ("kestrel", "firepit"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(min(logger.level or logging.INFO, handler.level))
    return log_path, handler


def stop_log(handler):
    for name in ("kestrel", "firepit"):
        logging.getLogger(name).removeHandler(handler)
    handler.close()


def holds(runtime_dir: str, store_path) -> bool:
    """Whether a SQLite store path lies in the runtime directory."""
    if not store_path or "://" in str(store_path):
        return False
    return Path(store_path).resolve().is_relative_to(Path(runtime_dir).resolve())


def remove(runtime_dir: str):
    shutil.rmtree(runtime_dir, ignore_errors=True)
