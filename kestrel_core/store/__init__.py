"""The store: Kestrel variables as firepit views, in SQLite or PostgreSQL.

The only package that imports firepit.  Its modules, one concern each:
base (connection, errors, catalog), ingest (+ flatten, tables, copy_format,
validation), copies (bundles read once), indexes (reference indexes, statistics), reading,
views (the `Store` facade), where (ECGP -> SQL), references (what a `_ref` points to).
"""

from .base import ROW
from .views import Store

__all__ = ["ROW", "Store"]
