"""Which rows of a variable are one entity, per entity type, and which of its columns a
hunter reads as data.

firepit stores an entity once per id, and its ids are not what a hunter counts: a
process without `x_unique_id` gets a new id in every record (doctored-1k's 704
svchost.exe rows are 5 processes), while an address gets one id for its value.  The rule
here is the one summaries, DISP's rows and LIMIT count by (the store turns it into SQL):

- a type STIX 2.1 gives ID contributing properties: those (`STIX_ID_PROPERTIES`); a
  reference counts by what identifies the entity it points to (`src_ref` by the address's
  value), else by its id; `hashes` by one hash, the first present of MD5, SHA-1, SHA-256,
  SHA-512, then any other by name; `extensions` by every flattened extension attribute;
- a process: its `x_unique_id` when it has one, else its pid and name together with its
  host (`HOST`: the x-oca-asset of its record, by hostname, else host_id) when the store
  holds hosts.  Not its `created` time: connectors fill it with the event's time (every
  process in doctored-1k.json has its record's first_observed there), which would make
  every record a process of its own again;
- a record (observed-data): its id;
- any other type: every stored attribute but the id.

A record's own attributes (`RECORD_COLUMNS`, as TIMESTAMPED, ADDOBSID or a LOADed Kestrel
v1 file carry them) tell sightings apart, never entities.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

# STIX 2.1, each SCO's "ID Contributing Properties" (a reference as the path to what
# identifies its target; HASHES and EXTENSIONS stand for the flattened columns under them)
HASHES, EXTENSIONS = "hashes", "extensions"
ADDRESS = ("value",)
STIX_ID_PROPERTIES = {
    "artifact": (HASHES, "payload_bin"),
    "autonomous-system": ("number",),
    "directory": ("path",),
    "domain-name": ADDRESS,
    "email-addr": ADDRESS,
    "email-message": ("from_ref.value", "subject", "body"),
    "file": (HASHES, "name", EXTENSIONS, "parent_directory_ref.path"),
    "ipv4-addr": ADDRESS,
    "ipv6-addr": ADDRESS,
    "mac-addr": ADDRESS,
    "mutex": ("name",),
    "network-traffic": ("start", "end", "src_ref.value", "dst_ref.value", "src_port",
                        "dst_port", "protocols", EXTENSIONS),
    "software": ("name", "cpe", "swid", "vendor", "version"),
    "url": ADDRESS,
    "user-account": ("account_type", "user_id", "account_login"),
    "windows-registry-key": ("key", "values"),
    "x509-certificate": (HASHES, "serial_number"),
}
HASH_PREFERENCE = ("MD5", "SHA-1", "SHA-256", "SHA-512")  # STIX 2.1, 2.9 (as firepit's)
PROCESS_UNIQUE, PROCESS_PROPERTIES = "x_unique_id", ("pid", "name")
HOST = "host"  # DISP's column for a process's host: no attribute, its record's x-oca-asset
RECORD_COLUMNS = ("first_observed", "last_observed", "number_observed", "observation_id")


@dataclass(frozen=True)
class Identity:
    """What tells a type's entities apart over a variable's columns.

    `parts` are tuples of attribute paths: the first one with a value counts (a hash by
    preference; a reference's target, else the reference's id).  A process also has
    `unique` (x_unique_id: alone decides where present) and `host`."""

    parts: tuple
    unique: str | None = None
    host: bool = False


def identity_of(entity_type: str, columns: list) -> Identity:
    """The identity rule of `entity_type` over the columns a variable has."""
    if entity_type == "process":
        unique = PROCESS_UNIQUE if PROCESS_UNIQUE in columns else None
        return replace(_or_id(_present(PROCESS_PROPERTIES, columns)), unique=unique, host=True)
    if entity_type == "observed-data":
        return Identity((("id",),))
    properties = STIX_ID_PROPERTIES.get(entity_type)
    if properties is None:
        return _or_id(tuple((c,) for c in columns if c != "id" and c not in RECORD_COLUMNS))
    parts = []
    for name in properties:
        if name == HASHES:
            hashes = _hash_columns(columns)
            parts += [hashes] if hashes else []
        elif name == EXTENSIONS:
            parts += [(c,) for c in sorted(c for c in columns
                                           if c == EXTENSIONS or c.startswith(EXTENSIONS + "."))]
        elif "." in name:  # a reference: its target's identity (flattened by a LOAD), its id
            reference = name.split(".")[0]
            parts += [tuple(p for p in (name, reference) if _has(p, columns))]
        else:
            parts += list(_present((name,), columns))
    return _or_id(tuple(p for p in parts if p))


def reference_paths(entity_type: str) -> list:
    """The paths through references in a type's identity (`src_ref.value`): DISP shows
    them, so that two rows never differ only by what they point to."""
    return [p for p in STIX_ID_PROPERTIES.get(entity_type, ()) if "." in p]


def is_internal(column: str) -> bool:
    """Ids and flattened plumbing, not data: `id`, references as ids (`parent_ref`,
    `opened_connection_refs`), and a LOADed file's `parent_ref.id` / `parent_ref.type`."""
    steps = column.split(".")
    if column in ("id", "type") or steps[-1].endswith(("_ref", "_refs")):
        return True
    return len(steps) > 1 and steps[-1] in ("id", "type") and steps[-2].endswith("_ref")


def _or_id(parts) -> Identity:
    """No identifying attribute in the variable (bare ids): the stored id decides."""
    return Identity(parts or (("id",),))


def _present(names, columns) -> tuple:
    return tuple((n,) for n in names if n in columns)


def _has(path, columns) -> bool:
    """A column, or a path through a reference column the variable has."""
    return path in columns or path.split(".")[0] in columns


def _hash_columns(columns) -> tuple:
    """Hash columns (`hashes.MD5`, `hashes.'SHA-256'`) in STIX's order of preference, then
    `hashes` itself (NEW keeps the object as one JSON value)."""
    stored = [c for c in columns if c.startswith(HASHES + ".")]
    preferred = [c for name in HASH_PREFERENCE for c in stored
                 if c.split(".", 1)[1].strip("'") == name]
    whole = [HASHES] if HASHES in columns else []
    return tuple(preferred + sorted(c for c in stored if c not in preferred) + whole)
