"""FIND: entities related to a variable's through STIX references (CREATED, CREATED BY,
OWNED, LINKED, ACCEPTED), with WHERE and LIMIT."""

import pytest

from kestrel.errors import UnsupportedRelation, VariableNotFound


def referenced(processes, name, reference):
    """What the processes named `name` point to by `reference`, in their own records."""
    return [r["objects"][p[reference]] for r, p in processes
            if p["name"] == name and reference in p]


def children(processes, name):
    """The processes whose parent_ref points to a process named `name`."""
    return [p for r, p in processes
            if r["objects"].get(p.get("parent_ref"), {}).get("name") == name]


def test_children_and_parents(hunt, processes):
    hunt.execute("f_kids = FIND process CREATED BY procs\n"
                 "f_parents = FIND process CREATED procs")
    for variable, want in (("f_kids", children(processes, "cmd.exe")),
                           ("f_parents", referenced(processes, "cmd.exe", "parent_ref"))):
        assert want
        assert sorted((r["name"], r["pid"]) for r in hunt.get_variable(variable, deref=False)) \
            == sorted((p["name"], p["pid"]) for p in want)


def test_where_and_limit(hunt, processes):
    kids = [p["pid"] for p in children(processes, "cmd.exe")]
    hunt.execute("f_late = FIND process CREATED BY procs WHERE pid > 10000\n"
                 "f_two = FIND process CREATED BY procs LIMIT 2")
    assert sorted(r["pid"] for r in hunt.get_variable("f_late", deref=False)) == sorted(
        p for p in kids if p > 10000)
    two = [r["pid"] for r in hunt.get_variable("f_two", deref=False)]
    assert len(two) == 2 and set(two) <= set(kids)


def test_connections_and_their_addresses(hunt, processes):
    """network-traffic CREATED BY processes, then the addresses that created (sent) and
    accepted (received) it."""
    ports, senders, receivers = [], set(), set()
    for r, p in processes:
        if p["name"] != "wdsync.exe":
            continue
        for key in p.get("opened_connection_refs", []):
            traffic = r["objects"][key]
            ports.append((traffic["src_port"], traffic["dst_port"]))
            for addresses, ref in ((senders, "src_ref"), (receivers, "dst_ref")):
                if r["objects"][traffic[ref]]["type"] == "ipv4-addr":
                    addresses.add(r["objects"][traffic[ref]]["value"])
    assert ports and senders and receivers
    hunt.execute("f_wd = GET process FROM allp WHERE name = 'wdsync.exe'\n"
                 "f_nt = FIND network-traffic CREATED BY f_wd\n"
                 "f_src = FIND ipv4-addr CREATED f_nt\n"
                 "f_dst = FIND ipv4-addr ACCEPTED f_nt")
    assert sorted((r["src_port"], r["dst_port"]) for r in hunt.get_variable("f_nt")) == sorted(
        ports)
    assert {r["value"] for r in hunt.get_variable("f_src")} == senders
    assert {r["value"] for r in hunt.get_variable("f_dst")} == receivers


@pytest.mark.parametrize("relation", ["OWNED", "LINKED"])
def test_owners(hunt, processes, relation):
    """LINKED follows every relation between the two types: here the same as OWNED."""
    hunt.execute(f"f_users_{relation} = FIND user-account {relation} procs")
    users = {u["user_id"] for u in referenced(processes, "cmd.exe", "creator_user_ref")}
    assert users
    assert {r["user_id"] for r in hunt.get_variable(f"f_users_{relation}")} == users


def test_unsupported_relation_suggests_one(hunt):
    with pytest.raises(UnsupportedRelation) as caught:
        hunt.execute("f_bad = FIND file OWNED procs")
    assert caught.value.message == "no relation OWNED from process (procs) to file"
    assert caught.value.hint == "possible: FIND file LOADED BY procs"
    assert "f_bad" not in hunt.get_variable_names()


def test_unknown_variable(hunt):
    with pytest.raises(VariableNotFound) as caught:
        hunt.execute("f_none = FIND process CREATED BY nosuch")
    assert caught.value.message.startswith('variable "nosuch" is not defined (defined: allp, ')
