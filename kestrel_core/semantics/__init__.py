"""The check stage: parsed statement -> Resolved statement, before any handler runs.

The session runs it on every statement; commands receive what it resolved and
never import it.  It reads the store only through the `Catalog` interface.
"""

from .attributes import attribute_notes
from .resolved import Catalog, Resolved, Selection
from .statements import check, statement_where

__all__ = ["Catalog", "Resolved", "Selection", "check", "empty_result_notes"]


def empty_result_notes(resolved: Resolved, catalog: Catalog) -> list:
    """Why a statement may have found nothing: attributes neither STIX nor the data know."""
    return attribute_notes(statement_where(resolved.stmt), resolved.entity_type, catalog)
