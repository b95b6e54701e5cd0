"""NEW and LOAD: variables from literal data or from a file."""

from __future__ import annotations

import copy
import gzip
import io
import json
import math
import zlib
from pathlib import Path

from ..errors import DataSourceError, InvalidArgument
from ..sources import local_path
from ..stix import entity_type_error
from ..store.validation import check_data, check_type_name, check_type_names, check_width
from .base import Outcome


def create(ctx, resolved, objects, entity_type, source_label):
    """Store `objects` (dicts or strings) as a new variable of `entity_type` (None: the
    objects' own "type"), once the data passes the checks the store relies on."""
    stmt = resolved.stmt
    if entity_type is None:
        types = {o.get("type") for o in objects if isinstance(o, dict)}
        if len(types) != 1 or None in types or any(not isinstance(o, dict) for o in objects):
            raise ctx.error(InvalidArgument, "the entity type is unknown: name it (NEW process "
                            "[...], LOAD ... AS process) or give every object one \"type\"", stmt)
        entity_type = types.pop()
    unknown = entity_type_error(entity_type, ctx.store.types())
    if unknown is not None:
        raise unknown
    if any(isinstance(o, dict) and o.get("type", entity_type) != entity_type for o in objects):
        raise ctx.error(InvalidArgument, f"objects of another type than {entity_type}", stmt)
    if not all(isinstance(o, (dict, str)) for o in objects):
        raise ctx.error(InvalidArgument, "NEW takes a list of objects or a list of strings", stmt)
    check_type_name(entity_type, "the entity type")
    names = set(ctx.store.type_columns(entity_type)) | {"type"}
    for obj in objects:
        new = obj.keys() - names if isinstance(obj, dict) else ()
        if new:
            names |= new
            check_width(entity_type, len(names) - 1, min(new))
    for obj in objects:
        if isinstance(obj, dict) and "type" in obj:
            check_type_names(obj)
        check_data(obj)
    view = ctx.new_view(stmt.output)
    ctx.store.load(view, copy.deepcopy(list(objects)), entity_type)
    return Outcome(ctx.make_variable(resolved, view, entity_type, source=source_label))


def run_new(resolved, ctx):
    stmt = resolved.stmt
    return create(ctx, resolved, stmt.data, stmt.entity_type, None)


def file_format(name: str) -> tuple:
    """(format, gzipped) by a file's name: ("csv", True) for procs.csv.gz."""
    gzipped = name.lower().endswith(".gz")
    return Path(name[:-3] if gzipped else name).suffix.lower()[1:], gzipped


LOADED = ("csv", "parquet", "pq", "json", "jsonl")
GZIP_MAGIC = b"\x1f\x8b"


def read_rows(path: str) -> list:
    """Rows of a CSV, Parquet, JSON or JSON-lines file, gzipped or not, as dicts (empty
    cells dropped)."""
    import pandas as pd

    file = Path(local_path(path))
    if not file.is_file():
        raise DataSourceError(f"no file at {path}")
    kind, _ = file_format(file.name)
    if kind not in LOADED:
        raise DataSourceError(f"cannot LOAD {path}: use .csv, .parquet or .json "
                              "(or .csv.gz, .parquet.gz, .json.gz)")
    try:
        content = file.read_bytes()
        # by content, not name: v1 named plain Parquet files .parquet.gz
        if content[:2] == GZIP_MAGIC:
            content = gzip.decompress(content)
        if kind in ("json", "jsonl"):
            data = _json_objects(content.decode("utf-8"), kind == "jsonl")
            if data and all(isinstance(x, str) for x in data):
                return data
            frame = pd.DataFrame(data)
        elif kind == "csv":
            frame = pd.read_csv(io.BytesIO(content))
        else:
            frame = pd.read_parquet(io.BytesIO(content))
    except (ValueError, OSError, EOFError, zlib.error) as err:
        raise DataSourceError(f"cannot read {path}: {err}") from None
    return [{k: _plain(v) for k, v in row.items() if not _missing(v)}
            for row in frame.to_dict(orient="records")]


def _json_objects(text, lines):
    if lines:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    if isinstance(data, dict):
        data = data.get("objects", [data])
    if not isinstance(data, list):
        raise ValueError("expected a list of objects")
    return data


def _missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def run_load(resolved, ctx):
    stmt = resolved.stmt
    try:
        rows = read_rows(stmt.path)
    except DataSourceError as err:
        raise err.at(stmt.span, ctx.source_text)
    if not rows:
        raise ctx.error(DataSourceError, f"{stmt.path} has no rows", stmt)
    return create(ctx, resolved, rows, stmt.entity_type, stmt.path)
