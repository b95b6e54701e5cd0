"""The session's runtime directory and its log."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

DEBUG_LINK = Path(tempfile.gettempdir()) / "kestrel"


def prepare(runtime_dir, session_id: str, debug: bool) -> str:
    """Create (or adopt) the runtime directory; in debug mode point /tmp/kestrel at it."""
    path = Path(runtime_dir) if runtime_dir else (
        Path(tempfile.gettempdir()) / f"kestrel-session-{session_id}")
    path.mkdir(parents=True, exist_ok=True)
    if debug:
        try:
            if DEBUG_LINK.is_symlink():
                DEBUG_LINK.unlink()
            if not DEBUG_LINK.exists():
                DEBUG_LINK.symlink_to(path, target_is_directory=True)
        except OSError:
            pass  # another user owns the link: the session still works
    return str(path)


def start_log(runtime_dir: str, debug: bool) -> tuple:
    """A handler writing kestrel and firepit messages to <runtime dir>/session.log."""
    log_path = os.path.join(runtime_dir, "session.log")
    handler = logging.FileHandler(log_path)
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


def remove(runtime_dir: str):
    shutil.rmtree(runtime_dir, ignore_errors=True)
