"""SAVE: a variable's entities to CSV, Parquet or JSON, gzipped when the name ends .gz."""

from __future__ import annotations

import contextlib
import gzip
import os
import uuid
from pathlib import Path

from ..errors import DataSourceError
from ..results import Text
from ..sources import local_path
from .base import Outcome
from .new import file_format

WRITERS = {
    "csv": lambda frame: frame.to_csv(index=False).encode("utf-8"),
    "parquet": lambda frame: frame.to_parquet(index=False),
    "json": lambda frame: frame.to_json(orient="records", indent=1).encode("utf-8"),
}


def run(resolved, ctx):
    import pandas as pd

    stmt = resolved.stmt
    variable = resolved.var(stmt.input)
    path = Path(local_path(stmt.path))
    kind, gzipped = file_format(path.name)
    writer = WRITERS.get(kind)
    if writer is None:
        raise ctx.error(DataSourceError, f"cannot SAVE to {stmt.path}: use .csv, .json or "
                        ".parquet (or .csv.gz, .json.gz, .parquet.gz)", stmt)
    folder = path.parent
    if not folder.is_dir():
        problem = "is not a directory" if folder.exists() else "does not exist"
        raise ctx.error(DataSourceError, f"cannot write {stmt.path}: {folder} {problem}", stmt)
    frame = pd.DataFrame(ctx.store.rows(variable.view))
    content = writer(frame)
    # written beside, then renamed over: a failed write (a full disk) leaves an old file
    # whole; a short name of its own, so any name the folder takes works for the file
    partial = folder / f".kestrel-{os.getpid()}-{uuid.uuid4().hex[:8]}.partial"
    try:
        partial.write_bytes(gzip.compress(content) if gzipped else content)
        os.replace(partial, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise ctx.error(DataSourceError,
                        f"cannot write {stmt.path}: {err.strerror or err}", stmt) from None
    return Outcome(results=[Text(f"saved {stmt.input}",
                                 [f"{len(frame)} {variable.entity_type} entities to {path}"])])
