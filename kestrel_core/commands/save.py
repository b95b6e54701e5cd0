"""SAVE: a variable's entities to CSV, Parquet or JSON."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..errors import DataSourceError
from ..results import Text
from .base import Outcome

WRITERS = {
    ".csv": lambda frame, path: frame.to_csv(path, index=False),
    ".parquet": lambda frame, path: frame.to_parquet(path, index=False),
    ".json": lambda frame, path: frame.to_json(path, orient="records", indent=1),
}


def run(resolved, ctx):
    stmt = resolved.stmt
    variable = resolved.var(stmt.input)
    path = Path(stmt.path).expanduser()
    writer = WRITERS.get(path.suffix.lower())
    if writer is None:
        raise ctx.error(DataSourceError, f"cannot SAVE to {stmt.path}: use "
                        + ", ".join(sorted(WRITERS)), stmt)
    folder = path.parent
    if not folder.is_dir():
        problem = "is not a directory" if folder.exists() else "does not exist"
        raise ctx.error(DataSourceError, f"cannot write {stmt.path}: {folder} {problem}", stmt)
    frame = pd.DataFrame(ctx.store.rows(variable.view))
    # written beside, then renamed over: a failed write (a full disk) leaves an old file whole
    partial = folder / f".{path.name}.{os.getpid()}.partial"
    try:
        writer(frame, partial)
        os.replace(partial, path)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise ctx.error(DataSourceError,
                        f"cannot write {stmt.path}: {err.strerror or err}", stmt) from None
    return Outcome(results=[Text(f"saved {stmt.input}",
                                 [f"{len(frame)} {variable.entity_type} entities to {path}"])])
