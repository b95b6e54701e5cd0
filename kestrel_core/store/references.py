"""STIX reference names -> the entity types they may point to.

firepit's own table, so that the attribute paths Kestrel accepts (the check stage,
through the store's catalog) and the joins the store writes (where.py) follow
references exactly as firepit stores them.
"""

from __future__ import annotations

from firepit.props import ref_type


def ref_targets(entity_type: str, reference: str) -> list:
    """Types `reference` of an `entity_type` entity may point to ([] if unknown)."""
    targets = ref_type(entity_type, reference) if entity_type else []
    return list(targets) if isinstance(targets, (list, tuple)) else [targets]


def record_references(objects: dict):
    """(holder type, reference, target type) of the references among a STIX 2.0
    record's objects, resolved as firepit resolves them: within the record (one to an
    object the record lacks is dropped)."""
    for obj in objects.values():
        for name, value in obj.items():
            if not name.endswith(("_ref", "_refs")):
                continue
            for key in value if isinstance(value, list) else [value]:
                target = objects.get(key) if isinstance(key, str) else None
                if isinstance(target, dict) and target.get("type"):
                    yield obj.get("type"), name, target["type"]
