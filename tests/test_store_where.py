"""WHERE on a variable, translated by the store (kestrel/sqlwhere.py), on SQLite and
PostgreSQL: every operator, reference paths, lists of references, lists of values,
booleans, and attributes some entities lack.  Expected entities are computed here in
Python from the same data, not by the store.
"""

import json
import re
import uuid

import pytest

from kestrel.errors import KestrelSemanticError
from kestrel.session import Session
from kestrel.syntax.unparse import python_string

# pid -> (process, its binary file, its parent's name, its connections' destinations)
PROCESSES = [
    dict(pid=1, name="cmd.exe", command_line="cmd /c dir C:\\", is_hidden=True,
         x_tags=["a", "b"], binary=("cmd.exe", "aa11"), parent="explorer.exe",
         dst=[("ipv4-addr", "10.0.0.1", 443)]),
    dict(pid=2, name="powershell.exe", command_line="powershell -enc AAA", is_hidden=False,
         x_tags=["b"], binary=("powershell.exe", "bb22"), parent="cmd.exe",
         dst=[("ipv4-addr", "192.168.1.5", 80), ("ipv6-addr", "fe80::1", 8080)]),
    dict(pid=3, name="svchost.exe", command_line="", binary=("svchost.exe", None),
         parent=None, dst=[("ipv4-addr", "not-an-address", 53)], x_tags="solo",
         x_ports=[53, 8080]),
    dict(pid=4, name="a'b\\", command_line="100% sure_", parent="cmd.exe",
         dst=[("ipv6-addr", "::1", 22)], x_ports=[22], is_hidden=False),
]


def bundle(path):
    identity = "identity--" + str(uuid.uuid4())
    objects = [{"type": "identity", "id": identity, "name": "t", "identity_class": "system"}]
    for i, spec in enumerate(PROCESSES):
        process = {k: spec[k] for k in ("pid", "name", "command_line", "is_hidden", "x_tags",
                                        "x_ports") if k in spec}
        process["type"] = "process"
        scos = {"0": process}
        if spec.get("binary"):
            name, md5 = spec["binary"]
            scos["1"] = {"type": "file", "name": name, **({"hashes": {"MD5": md5}} if md5 else {})}
            process["binary_ref"] = "1"
        if spec["parent"]:
            scos["2"] = {"type": "process", "pid": 100 + i, "name": spec["parent"]}
            process["parent_ref"] = "2"
        refs = []
        for j, (kind, value, port) in enumerate(spec["dst"]):
            scos[str(10 + 2 * j)] = {"type": kind, "value": value}
            scos[str(11 + 2 * j)] = {"type": "network-traffic", "dst_ref": str(10 + 2 * j),
                                     "dst_port": port, "protocols": ["tcp"]}
            refs.append(str(11 + 2 * j))
        if refs:
            process["opened_connection_refs"] = refs
        objects.append({
            "type": "observed-data", "id": f"observed-data--{uuid.uuid4()}",
            "created_by_ref": identity, "created": "2020-01-01T00:00:00.000Z",
            "modified": "2020-01-01T00:00:00.000Z",
            "first_observed": f"2020-01-01T00:00:0{i}.000Z",
            "last_observed": f"2020-01-01T00:00:0{i}.000Z", "number_observed": 1,
            "objects": scos,
        })
    path.write_text(json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                                "objects": objects}))
    return str(path)


def pids_where(test):
    return sorted(p["pid"] for p in PROCESSES if test(p))


def like(pattern, value):
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return value is not None and re.fullmatch(regex, value, re.DOTALL) is not None


def dsts(p):
    return [value for _, value, _ in p["dst"]]


def tags(p):
    """x_tags as a list: a single value is a list of one."""
    value = p.get("x_tags", [])
    return value if isinstance(value, list) else [value]


CASES = {
    "name = 'cmd.exe'": lambda p: p["name"] == "cmd.exe",
    "name != 'cmd.exe'": lambda p: p["name"] != "cmd.exe",
    "pid > 1 AND pid <= 3": lambda p: 1 < p["pid"] <= 3,
    "pid IN (1, 4, 99)": lambda p: p["pid"] in (1, 4),
    "name NOT IN ('cmd.exe', 'svchost.exe')": lambda p: p["name"] not in ("cmd.exe",
                                                                            "svchost.exe"),
    "command_line = ''": lambda p: p["command_line"] == "",
    r"command_line LIKE '%C:\\'": lambda p: like("%C:\\", p["command_line"]),
    "command_line LIKE '100% sure_'": lambda p: like("100% sure_", p["command_line"]),
    "name NOT LIKE '%.exe'": lambda p: not like("%.exe", p["name"]),
    "name = 'a\\'b\\\\'": lambda p: p["name"] == "a'b\\",
    "name MATCHES '^(cmd|power)'": lambda p: re.search("^(cmd|power)", p["name"]),
    "command_line NOT MATCHES 'enc'": lambda p: "enc" not in p["command_line"],
    # references
    "parent_ref.name = 'cmd.exe'": lambda p: p["parent"] == "cmd.exe",
    "parent_ref.name != 'cmd.exe'": lambda p: p["parent"] not in (None, "cmd.exe"),
    "binary_ref.hashes.MD5 = 'bb22'": lambda p: (p.get("binary") or (0, 0))[1] == "bb22",
    "binary_ref.name LIKE 's%'": lambda p: like("s%", (p.get("binary") or ("",))[0]),
    # a list of references, to two possible types (ipv4-addr and ipv6-addr)
    "opened_connection_refs[*].dst_ref.value = 'fe80::1'": lambda p: "fe80::1" in dsts(p),
    "opened_connection_refs[*].dst_ref.value ISSUBSET '192.168.0.0/16'":
        lambda p: "192.168.1.5" in dsts(p),
    "opened_connection_refs[*].dst_port IN (22, 443)":
        lambda p: any(port in (22, 443) for _, _, port in p["dst"]),
    # a list of values (one entity holds a single value instead: a list of one)
    "x_tags[*] = 'b'": lambda p: "b" in tags(p),
    "x_tags[*] LIKE 'a%'": lambda p: "a" in tags(p),
    "x_tags[*] = 'solo'": lambda p: "solo" in tags(p),
    "x_ports[*] = 53": lambda p: 53 in p.get("x_ports", []),
    "x_ports[*] > 1000": lambda p: any(n > 1000 for n in p.get("x_ports", [])),
    "x_ports[*] IN (22, 80)": lambda p: any(n in (22, 80) for n in p.get("x_ports", [])),
    "name[*] = 'cmd.exe'": lambda p: p["name"] == "cmd.exe",
    # a value that is no address is in no network
    "opened_connection_refs[*].dst_ref.value ISSUBSET '0.0.0.0/0'":
        lambda p: any(kind == "ipv4-addr" and value[0].isdigit()
                      for kind, value, _ in p["dst"]),
    # Python's word boundary, on PostgreSQL too
    r"name MATCHES r'\bcmd\b'": lambda p: re.search(r"\bcmd\b", p["name"]),
    "command_line MATCHES '(?P<flag>-enc) A+'": lambda p: "-enc AAA" in p["command_line"],
    # booleans
    "is_hidden = true": lambda p: p.get("is_hidden") is True,
    "is_hidden = false": lambda p: p.get("is_hidden") is False,
    # STIX: a comparison on a property an entity lacks is false, negated or not
    "binary_ref.hashes.MD5 != 'aa11'": lambda p: (p.get("binary") or (0, None))[1] not in (
        None, "aa11"),
    "binary_ref.hashes.MD5 NOT IN ('aa11')": lambda p: (p.get("binary") or (0, None))[1]
        not in (None, "aa11"),
    "opened_connection_refs[*].dst_ref.value ISSUBSET 'fe80::/16'":
        lambda p: "fe80::1" in dsts(p),
    "opened_connection_refs[*].dst_ref.value NOT ISSUBSET '10.0.0.0/8'":
        lambda p: any(not v.startswith("10.") for v in dsts(p)),
    "x_tags[*] != 'b'": lambda p: any(t != "b" for t in tags(p)),
    # boolean structure
    "(name = 'cmd.exe' OR pid = 4) AND parent_ref.name = 'explorer.exe'":
        lambda p: (p["name"] == "cmd.exe" or p["pid"] == 4) and p["parent"] == "explorer.exe",
    "name = 'svchost.exe' OR (pid >= 2 AND command_line LIKE 'power%')":
        lambda p: p["name"] == "svchost.exe" or (p["pid"] >= 2
                                                 and like("power%", p["command_line"])),
}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql",
                                                               marks=pytest.mark.postgres)])
def hunt(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("where")
    location = (str(folder / "s.db") if request.param == "sqlite"
                else request.getfixturevalue("postgres_url"))
    session = Session(session_id=f"where{uuid.uuid4().hex[:10]}", store_path=location)
    path = python_string(bundle(folder / "b.json"))
    session.execute(f"procs = GET process FROM {path} WHERE pid < 100")
    yield session, path
    session.close()


def pids(session, name):
    return sorted(r["pid"] for r in session.get_variable(name))


@pytest.mark.parametrize("ecgp", list(CASES))
def test_where_on_a_variable(hunt, ecgp):
    session, _ = hunt
    assert pids(session, "procs") == [1, 2, 3, 4]
    session.execute(f"x = procs WHERE {ecgp}")
    assert pids(session, "x") == pids_where(CASES[ecgp])


@pytest.mark.parametrize("ecgp", ["name = 'cmd.exe'", "parent_ref.name = 'cmd.exe'",
                                  "opened_connection_refs[*].dst_ref.value = 'fe80::1'",
                                  "x_tags[*] = 'b'", "command_line = ''", "is_hidden = true",
                                  "binary_ref.hashes.MD5 = 'bb22'",
                                  "name = 'a\\'b\\\\'", "name NOT LIKE '%.exe'",
                                  "binary_ref.hashes.MD5 != 'aa11'",
                                  "name MATCHES '^(cmd|power)'",
                                  "opened_connection_refs[*].dst_ref.value ISSUBSET "
                                  "'192.168.0.0/16'", "x_ports[*] > 1000"])
def test_where_on_a_data_source_agrees(hunt, ecgp):
    """The same ECGP in a GET from the bundle (matched by the source, then picked from
    the store) gives the same entities."""
    session, path = hunt
    session.execute(f"y = GET process FROM {path} WHERE ({ecgp}) AND pid < 100")
    assert pids(session, "y") == pids_where(CASES[ecgp])


def test_an_attribute_no_entity_has_matches_nothing_from_a_source(hunt):
    session, path = hunt
    session.execute(f"y = GET process FROM {path} WHERE x_nosuch = 'a'")
    assert pids(session, "y") == []


def test_group_results_filter_by_their_key(hunt):
    """A GROUP's key named like a reference path is a column of the result."""
    session, _ = hunt
    session.execute("g = GROUP procs BY parent_ref.name WITH COUNT(pid) AS n\n"
                    "h = g WHERE parent_ref.name = 'cmd.exe'")
    assert [(r["parent_ref.name"], r["n"]) for r in session.get_variable("h")] == [
        ("cmd.exe", len([p for p in PROCESSES if p["parent"] == "cmd.exe"]))]


@pytest.mark.parametrize("statement", [
    "x = GROUP procs BY opened_connection_refs[*].dst_port",
    "x = GROUP procs BY x_tags[*]",
    "x = JOIN procs, procs BY opened_connection_refs[*].dst_port, pid",
])
def test_group_and_join_keys_through_lists_are_refused(hunt, statement):
    session, _ = hunt
    with pytest.raises(KestrelSemanticError, match="goes through a list"):
        session.execute(statement.replace("x =", "listed ="))
    assert "listed" not in session.get_variable_names()


def test_group_by_type(hunt):
    session, _ = hunt
    session.execute("x = GROUP procs BY type WITH COUNT(pid) AS n")
    assert [(r["type"], r["n"]) for r in session.get_variable("x")] == [
        ("process", len(PROCESSES))]
