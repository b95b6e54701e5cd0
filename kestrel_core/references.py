"""STIX reference names -> the entity types they may point to.

firepit's own table, so that the attribute paths Kestrel accepts (semantics) and
the joins the store writes (sqlwhere) follow references exactly as firepit stores
them; the one place outside store.py that reads firepit.
"""

from __future__ import annotations

import re

from firepit.props import ref_type

_STEP = re.compile(r"'[^']*'(?:\[\*\])?|[^.]+")


def ref_targets(entity_type: str, reference: str) -> list:
    """Types `reference` of an `entity_type` entity may point to ([] if unknown)."""
    targets = ref_type(entity_type, reference) if entity_type else []
    return list(targets) if isinstance(targets, (list, tuple)) else [targets]


def path_steps(attribute: str) -> list:
    """`binary_ref.hashes.'SHA-256'` -> ["binary_ref", "hashes", "'SHA-256'"]."""
    return _STEP.findall(attribute)
