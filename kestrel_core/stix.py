"""STIX vocabulary Kestrel relies on: the entity types it knows without data, and
the properties STIX 2.1 defines for the common ones (custom ones start with x_)."""

from __future__ import annotations

from .errors import UnknownEntityType

# STIX 2.0/2.1 cyber-observable types, plus the OCA/IBM extensions data sources send.
KNOWN_ENTITY_TYPES = {
    "artifact", "autonomous-system", "directory", "domain-name", "email-addr",
    "email-message", "file", "ipv4-addr", "ipv6-addr", "mac-addr", "mutex",
    "network-traffic", "process", "software", "url", "user-account",
    "windows-registry-key", "x509-certificate",
    "x-oca-asset", "x-oca-event", "x-ibm-finding", "x-ecs-process", "x-cbcloud", "x-qradar",
}

# STIX 2.1 domain, relationship and meta objects: what a bundle holds beside its
# observations (observed-data) and their cyber-observables.
NOT_OBSERVABLES = {
    "attack-pattern", "campaign", "course-of-action", "grouping", "identity", "incident",
    "indicator", "infrastructure", "intrusion-set", "location", "malware",
    "malware-analysis", "note", "observed-data", "opinion", "report", "threat-actor", "tool",
    "vulnerability", "relationship", "sighting", "marking-definition", "language-content",
    "extension-definition",
}

# Addresses: identified by their value; they create (src_ref) or accept (dst_ref) traffic.
ADDRESSES = ("ipv4-addr", "ipv6-addr", "mac-addr", "domain-name")

STIX_PROPERTIES = {
    "process": "is_hidden pid created_time cwd command_line environment_variables "
               "opened_connection_refs creator_user_ref image_ref parent_ref child_refs "
               "name created binary_ref arguments extensions",
    "file": "hashes size name name_enc magic_number_hex mime_type ctime mtime atime "
            "parent_directory_ref contains_refs content_ref extensions created modified accessed",
    "directory": "path path_enc ctime mtime atime contains_refs created modified accessed",
    "network-traffic": "start end is_active src_ref dst_ref src_port dst_port protocols "
                       "src_byte_count dst_byte_count src_packets dst_packets ipfix "
                       "src_payload_ref dst_payload_ref encapsulates_refs encapsulated_by_ref "
                       "extensions",
    "user-account": "user_id credential account_login account_type display_name is_service_account "
                    "is_privileged can_escalate_privs is_disabled account_created account_expires "
                    "credential_last_changed account_first_login account_last_login extensions",
    "ipv4-addr": "value resolves_to_refs belongs_to_refs",
    "ipv6-addr": "value resolves_to_refs belongs_to_refs",
    "mac-addr": "value",
    "domain-name": "value resolves_to_refs",
    "url": "value",
    "email-addr": "value display_name belongs_to_ref",
}


def entity_type_error(entity_type: str, stored_types) -> UnknownEntityType | None:
    """The error for a type that is neither known, nor stored, nor an x-... extension."""
    if (entity_type in KNOWN_ENTITY_TYPES or entity_type in stored_types
            or entity_type.startswith("x-")):
        return None
    return UnknownEntityType(
        f'unknown entity type "{entity_type}"',
        hint="entity types are STIX cyber-observables such as process, file, "
             "network-traffic, ipv4-addr, user-account, or x-... extensions")
