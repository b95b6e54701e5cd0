"""FIND's relations: which STIX references carry `created`, `accepted`, `contained`,
`loaded` and `owned` between two entity types, and which side holds them; `linked`
holds between entities of any types that one record (observation) holds.

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
