"""Data the store refuses before it reaches SQL.

firepit turns type names into table names and property names into column names
without checking them, so names are data from the hunted systems that must not
reach SQL as code.
"""

from __future__ import annotations

import re

from ..errors import DataSourceError

# STIX: lower-case letters, digits and single hyphens, at most 250 characters
TYPE_NAME = re.compile(r"(?=.{1,250}$)[a-z0-9]+(-[a-z0-9]+)*")


def check_type_names(obj):
    """Refuse an object (and the objects an observed-data embeds) whose type is not a STIX
    type name: firepit makes types SQL table names without checking them."""
    check_type_name(obj.get("type"), obj.get("id") or "an object")
    embedded = obj.get("objects")
    if isinstance(embedded, dict):
        for key, sco in embedded.items():
            if isinstance(sco, dict):
                check_type_name(sco.get("type"), f"object {key} of {obj.get('id', 'a record')}")


def check_type_name(name, owner: str):
    if not isinstance(name, str) or not TYPE_NAME.fullmatch(name):
        problem = "has no type" if name is None else f"has the type {name!r}"
        raise DataSourceError(f"refusing the data: {owner} {problem} (a type holds lower-case "
                              "letters, digits and single hyphens)")


# a name, or a flattened path of names (binary_ref.name, hashes.'SHA-256') as LOAD gives
PROPERTY_NAME = re.compile(r"[A-Za-z0-9_\-]+(\.([A-Za-z0-9_\-]+|'[A-Za-z0-9_\-]+'))*")


def check_data(obj, where: str = "", depth: int = 0, owner: str = ""):
    """Refuse data whose property names are not plain names, that nests deeper than
    STIX ever does, or with integers the store cannot hold (beyond 64 bits).

    firepit turns property names into SQL column names without checking them, so
    a name is data from the hunted systems that must not reach SQL as code.
    """
    if isinstance(obj, dict):
        owner = owner or _owner(obj)
        for key, value in obj.items():
            if depth >= MAX_DEPTH:
                _too_deep(owner, f"{where} in {key}" if not where else where)
            if key not in _PLAIN_NAMES:
                _check_property_name(obj, key, where)
            if isinstance(value, (dict, list)):
                check_data(value, f"{where} in {key}" if not where else where, depth + 1, owner)
            elif isinstance(value, int) and not isinstance(value, bool) and not (
                    INT64_MIN <= value <= INT64_MAX):
                raise DataSourceError(
                    f"refusing the data: {_owner(obj)} has {key}{where} = {value}, beyond "
                    "the 64-bit integers the store holds")
    elif isinstance(obj, list):
        for item in obj:
            if depth >= MAX_DEPTH:
                _too_deep(owner or "a list", where)
            if isinstance(item, (dict, list)):
                check_data(item, where, depth + 1, owner or "a list")


# property names already checked: records repeat the same few names millions of times
_PLAIN_NAMES: set = set()


def _check_property_name(obj: dict, key, where: str):
    if not isinstance(key, str) or not PROPERTY_NAME.fullmatch(key):
        raise DataSourceError(
            f"refusing the data: {_owner(obj)} has a property named {key!r}{where} "
            "(property names may hold letters, digits, _ and -, and dots between names)")
    if len(_PLAIN_NAMES) < 100_000 and len(key) <= 64:  # bounded, whatever the data
        _PLAIN_NAMES.add(key)


def _too_deep(owner: str, where: str):
    raise DataSourceError(f"refusing the data: {owner} has a value{where} nesting "
                          f"deeper than {MAX_DEPTH} levels")


MAX_DEPTH = 64
INT64_MIN, INT64_MAX = -2**63, 2**63 - 1

# Properties (columns) an entity type may have: PostgreSQL holds 1,600 columns in a table,
# SQLite 2,000 (and as many in a view, which joins other tables' columns too)
MAX_PROPERTIES = 1000


def check_width(entity_type: str, columns: int, name: str):
    """Refuse the property `name` that would give `entity_type` more than MAX_PROPERTIES
    columns (`columns` it has with it), before the store fails half-way."""
    if columns > MAX_PROPERTIES:
        raise DataSourceError(
            f"refusing the data: {entity_type} entities would have more than "
            f"{MAX_PROPERTIES:,} properties (the store's columns; the next is {name!r})")


def _owner(obj: dict) -> str:
    return obj.get("id") or obj.get("type") or "an object"
