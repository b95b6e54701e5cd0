"""Where a Sigma field lives in STIX 2.0: one table per log source category.

A Sigma rule names Sysmon-style event fields; Kestrel's entities are STIX objects with
references resolved inside one observation.  Most fields are one attribute path; an image
is a path joined from two attributes (`Image`), the hashes a Sysmon list (`Hashes`).  A
field with no STIX equivalent maps to nothing: absent from every record, as in a SIEM
index without that field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union


@dataclass(frozen=True)
class Attribute:
    """A STIX attribute path of `entity_type` (None: the entity the rule is about)."""

    path: str
    entity_type: Optional[str] = None


@dataclass(frozen=True)
class ImagePath:
    """`<dir>SEP<name>` of a process at `prefix` (`` or `parent_ref.`): the binary's
    directory path and name; SEP alone before the binary's name when it has no directory,
    or before the process's name when its binary has no name."""

    prefix: str
    separator: str
    entity_type: Optional[str] = None

    @property
    def directory(self) -> Attribute:
        return Attribute(f"{self.prefix}binary_ref.parent_directory_ref.path", self.entity_type)

    @property
    def binary_name(self) -> Attribute:
        return Attribute(f"{self.prefix}binary_ref.name", self.entity_type)

    @property
    def process_name(self) -> Attribute:
        return Attribute(f"{self.prefix}name", self.entity_type)


@dataclass(frozen=True)
class HashList:
    """Sysmon's `Hashes` (`MD5=...,SHA1=...,SHA256=...`) from binary_ref.hashes."""

    prefix: str
    entity_type: Optional[str] = None

    def of(self, algorithm: str) -> Optional[Attribute]:
        key = HASH_KEYS.get(algorithm.upper())
        return Attribute(f"{self.prefix}binary_ref.hashes.{hash_key(key)}",
                         self.entity_type) if key else None


def hash_key(key: str) -> str:
    """A hash key as a path step: quoted when it holds more than letters and digits
    (`MD5`, `'SHA-256'`), as firepit names the columns."""
    return key if key.isalnum() else f"'{key}'"


Target = Union[Attribute, ImagePath, HashList]

# Sysmon's names of the hashes -> STIX 2.0's hash keys (IMPHASH has none)
HASH_KEYS = {"MD5": "MD5", "SHA1": "SHA-1", "SHA256": "SHA-256"}

# log source category -> the entity type its events are
ENTITY_TYPES = {"process_creation": "process", "network_connection": "network-traffic"}

SEPARATORS = {"windows": "\\", "linux": "/", "macos": "/"}


def _process_fields(separator: str, entity_type: Optional[str]) -> dict:
    """A process's own fields and its parent's, as seen from `entity_type`."""
    fields = {}
    for prefix, lead in (("", ""), ("parent_ref.", "Parent")):
        fields.update({
            f"{lead}Image": ImagePath(prefix, separator, entity_type),
            f"{lead}CommandLine": Attribute(f"{prefix}command_line", entity_type),
            f"{lead}ProcessId": Attribute(f"{prefix}pid", entity_type),
            f"{lead}User": Attribute(f"{prefix}creator_user_ref.user_id", entity_type),
        })
    fields.update({
        "CurrentDirectory": Attribute("cwd", entity_type),
        "Hashes": HashList("", entity_type),
        "md5": Attribute("binary_ref.hashes.MD5", entity_type),
        "sha1": Attribute("binary_ref.hashes.'SHA-1'", entity_type),
        "sha256": Attribute("binary_ref.hashes.'SHA-256'", entity_type),
    })
    return fields


def field_table(category: str, product: Optional[str]) -> dict:
    """Sigma field -> Target for rules of one log source; unknown fields are absent."""
    separator = SEPARATORS.get(product or "windows", "\\")
    if category == "process_creation":
        return _process_fields(separator, None)
    if category == "network_connection":
        # the process is another entity of the same observation: the one that opened it
        fields = _process_fields(separator, "process")
        fields = {name: fields[name] for name in ("Image", "CommandLine", "User", "ProcessId",
                                                  "ParentImage")}
        fields.update({
            "DestinationIp": Attribute("dst_ref.value"),
            "SourceIp": Attribute("src_ref.value"),
            "DestinationPort": Attribute("dst_port"),
            "SourcePort": Attribute("src_port"),
            "Protocol": Attribute("protocols[*]"),
        })
        return fields
    return {}
