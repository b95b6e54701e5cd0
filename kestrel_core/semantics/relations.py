"""FIND's relations: which STIX references carry `created`, `accepted`, `contained`,
`loaded` and `owned` between two entity types, and which side holds them; `linked`
holds between entities of any types that one record (observation) holds.

Every other reference the stored data holds is `contained`: a custom one of an
extension object (x-oca-event's process_ref, parent_process_ref, file_ref,
network_ref, x-oca-asset's ip_refs, x-ibm-finding's src_ip_ref) or a STIX one no
relation names (resolves_to_refs).  The holder contains what it points to, as an
event's fields hold its process, file and connection; no other word fits references
whose meaning only their data source knows.  The types they point to are the stored
ids' (the catalog's `references`), whatever their names suggest.

`FIND R rel V` asks for R entities that stand in `rel` to V's entities (R rel V);
`FIND R rel BY V` for those that V's entities stand in `rel` to (V rel R).
"""

from __future__ import annotations

from ..stix import ADDRESSES

# (X, relation, Y) -> [(reference, holder)] where holder "x": X.ref -> Y, "y": Y.ref -> X
RELATIONS = {
    ("process", "created", "process"): [("parent_ref", "y"), ("child_refs", "x")],
    ("process", "created", "network-traffic"): [("opened_connection_refs", "x")],
    ("process", "loaded", "file"): [("binary_ref", "x"), ("image_ref", "x")],
    ("user-account", "owned", "process"): [("creator_user_ref", "y")],
    ("directory", "contained", "file"): [("contains_refs", "x"), ("parent_directory_ref", "y")],
    ("directory", "contained", "directory"): [("contains_refs", "x")],
    ("file", "contained", "artifact"): [("content_ref", "x")],
    ("network-traffic", "contained", "network-traffic"): [("encapsulates_refs", "x"),
                                                          ("encapsulated_by_ref", "y")],
    ("email-addr", "created", "email-message"): [("from_ref", "y"), ("sender_ref", "y")],
    ("email-addr", "accepted", "email-message"): [("to_refs", "y"), ("cc_refs", "y"),
                                                  ("bcc_refs", "y")],
    ("email-message", "contained", "artifact"): [("raw_email_ref", "x")],
    ("user-account", "owned", "email-addr"): [("belongs_to_ref", "y")],
    ("autonomous-system", "owned", "ipv4-addr"): [("belongs_to_refs", "y")],
    ("autonomous-system", "owned", "ipv6-addr"): [("belongs_to_refs", "y")],
    **{(a, "created", "network-traffic"): [("src_ref", "y")] for a in ADDRESSES},
    **{(a, "accepted", "network-traffic"): [("dst_ref", "y")] for a in ADDRESSES},
}

# (holder type, reference) of the references RELATIONS gives a meaning
NAMED = {(x if holder == "x" else y, ref)
         for (x, _, y), refs in RELATIONS.items() for ref, holder in refs}

# LINKED's one link, as v1 has it: the entities share a record, whatever their types and
# references. A STIX 2.0 record's references (declared ones and custom ones such as
# x-oca-event's process_ref) point inside it, so every related pair is also a linked one.
SAME_RECORD = (None, "record")


def links_for(result_type, relation, input_type, reversed_):
    """[(reference, direction)]: "in" = the result holds the reference, "out" = the input
    does; LINKED gives [SAME_RECORD]."""
    if relation == "linked":
        return [SAME_RECORD]
    x, y = (input_type, result_type) if reversed_ else (result_type, input_type)
    result_is_x = not reversed_
    links = []
    for ref, holder in RELATIONS.get((x, relation, y), []):
        result_holds = (holder == "x") == result_is_x
        links.append((ref, "in" if result_holds else "out"))
    return links


def relations_between(result_type, input_type):
    """Relation phrases that make sense for the pair (for error messages and completion):
    LINKED always."""
    phrases = {"LINKED"}
    for (x, relation, y) in RELATIONS:
        if (x, y) == (result_type, input_type):
            phrases.add(relation.upper())
        if (x, y) == (input_type, result_type):
            phrases.add(f"{relation.upper()} BY")
    return sorted(phrases)


def find_links(catalog, result_type, relation, input_type, reversed_):
    """links_for, and for CONTAINED the stored references no relation names, held by
    the container."""
    links = links_for(result_type, relation, input_type, reversed_)
    if relation == "contained":
        links += unnamed_links(catalog, result_type, input_type, reversed_)
    return links


def find_relations(catalog, result_type, input_type):
    """relations_between, with CONTAINED [BY] where the stored data has references no
    relation names between the two types."""
    phrases = set(relations_between(result_type, input_type))
    for reversed_, phrase in ((False, "CONTAINED"), (True, "CONTAINED BY")):
        if unnamed_links(catalog, result_type, input_type, reversed_):
            phrases.add(phrase)
    return sorted(phrases)


def unnamed_links(catalog, result_type, input_type, reversed_):
    """[(reference, direction)] of the stored references no relation names from the
    container (the result; with BY, the input) to the other type."""
    holder, target, direction = ((input_type, result_type, "out") if reversed_
                                 else (result_type, input_type, "in"))
    return [(ref, direction) for ref, targets in sorted(catalog.references(holder).items())
            if (holder, ref) not in NAMED and target in targets]
