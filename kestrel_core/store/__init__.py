"""The store: Kestrel variables as firepit views, in SQLite or PostgreSQL.

The only package that imports firepit.  Its modules, one concern each:
base (connection, errors, catalog), partition (which part of a store a session holds),
deadline (how long a PostgreSQL server may take), ingest (+ flatten, tables, copy_format,
validation), copies (bundles read once), indexes (reference indexes, statistics), reading,
views (the `Store` facade), where (ECGP -> SQL), matched (Sigma's expressions matched once
per value), references (what a `_ref` points to).
"""

from .base import ROW
from .views import Store

__all__ = ["ROW", "Store"]
