"""The LALR parser kept between processes: building its tables takes ~80 ms of every
start-up, loading them ~10 ms.

The cache lives in the user's cache folder (~/.cache/kestrel), used only when that
folder is the user's own and nobody else may write there, since loading it unpickles
it.  A key in its first line (grammar, options, lark and Python versions) tells a stale
cache, which is rebuilt; one that cannot be read is rebuilt too; a cache is written
beside and renamed over, so no process reads half of one.  Without a usable folder the
parser is built every time.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import tempfile
from contextlib import suppress
from importlib import resources
from pathlib import Path

import lark
from lark import Lark


def cache_folder() -> Path | None:
    """$XDG_CACHE_HOME/kestrel (~/.cache/kestrel), created private; None when it cannot
    be made or is not safely ours (a link, another user's, writable by others)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    try:
        folder = Path(base if os.path.isabs(base) else Path.home() / ".cache") / "kestrel"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.lstat()
    except (OSError, RuntimeError):  # RuntimeError: no home directory
        return None
    if (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid()
            or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
        return None
    return folder


def load_parser(package: str, grammar: str, folder: Path | None, **options) -> Lark:
    """The Lark of `grammar` (a file of `package`), from the cache in `folder` when it
    was built from the same grammar and options; else built (and cached when a folder
    is given)."""
    text = resources.files(package).joinpath(grammar).read_text(encoding="utf-8")
    key = hashlib.sha256(repr((text, sorted(options.items()), lark.__version__,
                               sys.version_info[:2])).encode()).hexdigest().encode()
    path = folder / "parser.lark" if folder is not None else None
    if path is not None:
        with suppress(Exception):  # missing, stale or damaged (any error unpickling): build
            with open(path, "rb") as cached:
                if cached.readline().rstrip(b"\n") == key:
                    return Lark.load(cached)
    built = Lark(text, **options)
    if path is not None:
        _write(built, key, path)
    return built


def _write(parser: Lark, key: bytes, path: Path):
    def save(out):
        out.write(key + b"\n")
        parser.save(out)
    write_atomic(path, save)


def write_atomic(path: Path, save):
    """`save(file)` written beside `path` and renamed over it; a write that fails (a full
    disk, something that cannot be pickled) only costs the cache, never the caller."""
    partial = None
    try:
        handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-",
                                           suffix=".partial")
        with os.fdopen(handle, "wb") as out:
            save(out)
        os.replace(partial, path)
    except Exception:
        if partial is not None:
            with suppress(OSError):
                os.unlink(partial)
