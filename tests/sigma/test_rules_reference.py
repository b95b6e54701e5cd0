"""Sigma rules: the reference evaluator (tests/sigma/reference.py) on hand-made cases, then
Kestrel's `WHERE SIGMA` against it, rule by rule.

The reference is written apart from kestrel_core (it imports nothing of it); its unit tests
below have answers worked out by hand.  The differential tests run every SigmaHQ rule of
../shared/data/sigma/rules (windows/process_creation, linux/process_creation,
windows/network_connection) and compare the keys of the entities Kestrel returns with the
reference's, on

- every shared bundle holding the rule's entity type (processes, network traffic);
- synthetic records made from the rules' own values (the shared bundles make only a handful
  of rules fire), a bundle per SYNTHETIC_CHUNK rules;
- for network rules, copies without `Initiated`/`SourceIsIpv6` (fields no STIX record has,
  which keep nearly every SigmaHQ network rule from firing), on both.

One Session per bundle: its entities are read once (`ents = GET process FROM file://...`),
then each rule is `hits_N = ents WHERE SIGMA '<rule>'`; a few rules also run as GET ... FROM
the bundle WHERE SIGMA.  A rule Kestrel reports "not applicable", or the reference cannot
evaluate, is skipped; each differential writes its counts (compared, matching something,
different, skipped) in a line at the end of the run.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import itertools
import json
import os
import pathlib
import re
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from sigma.conditions import (ConditionAND, ConditionFieldEqualsValueExpression,
                              ConditionNOT, ConditionOR)
from sigma.rule import SigmaRule
from sigma.types import (CompareOperators, Placeholder, SigmaBool, SigmaCIDRExpression,
                         SigmaCompareExpression, SigmaExpansion, SigmaNumber, SigmaString,
                         SpecialChars)


def _load_reference():
    """reference.py beside this file, under a name of its own.  (No tests/sigma/__init__.py:
    a package `sigma` here would hide pySigma's `sigma` from the tests and from Kestrel.)"""
    name = "kestrel_tests_sigma_reference"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, pathlib.Path(__file__).with_name(
            "reference.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


ref = _load_reference()

# as tests/conftest.py's `shared_data` fixture finds it (a fixture is no use at collection
# time, when the rule files are listed for parametrization)
REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED_DATA = pathlib.Path(os.environ.get("KESTREL_SHARED_DATA")
                           or REPO_ROOT.parent / "shared" / "data")
RULES = SHARED_DATA / "sigma" / "rules"

# rule folder -> the entity type its events are
RULE_FOLDERS = {
    "windows/process_creation": "process",
    "linux/process_creation": "process",
    "windows/network_connection": "network-traffic",
}
# the shared bundles holding each entity type
BUNDLES = {
    "process": ["doctored-1k.json", "powershell_search_stix_result.json", "test_bundle_4.json",
                "test_bundle_5.json", "test_bundle_nt_1.json", "test_bundle_nt_2.json"],
    "network-traffic": ["doctored-1k.json", "test_bundle.json", "test_bundle_2.json",
                        "test_bundle_3.json", "log4shell_bundle.json", "test_bundle_nt_1.json",
                        "test_bundle_nt_2.json"],
}
OUTLOOK = "windows/process_creation/proc_creation_win_office_outlook_susp_child_processes.yml"
WMIC_VOLUME = "windows/process_creation/proc_creation_win_wmic_recon_volume.yml"


def _rule_files(folder: str) -> list:
    return sorted(p.relative_to(RULES).as_posix() for p in (RULES / folder).glob("*.yml"))


# ---------------------------------------------------------------------------------------------
# the reference on hand-made rules and records


def _rule(detection: str, category="process_creation", product="windows") -> SigmaRule:
    return SigmaRule.from_yaml(f"""
title: test
logsource:
    category: {category}
    product: {product}
detection:
{detection}
""")


def _proc_record(pid=1, name="a.exe", command_line=None, binary=None, directory=None,
                 parent=None, user=None, **more) -> dict:
    """A record holding a process (object 0), its binary (1), directory (2), user (3) and
    parent (4, a dict of process attributes, with `binary`/`directory` of its own)."""
    objects = {"0": {"type": "process", "pid": pid, "name": name, **more}}
    if command_line is not None:
        objects["0"]["command_line"] = command_line
    if binary is not None:
        objects["1"] = {"type": "file", "name": binary}
        objects["0"]["binary_ref"] = "1"
        if directory is not None:
            objects["2"] = {"type": "directory", "path": directory}
            objects["1"]["parent_directory_ref"] = "2"
    if user is not None:
        objects["3"] = {"type": "user-account", "user_id": user}
        objects["0"]["creator_user_ref"] = "3"
    if parent is not None:
        parent = dict(parent)
        p_binary, p_dir = parent.pop("binary", None), parent.pop("directory", None)
        objects["4"] = {"type": "process", **parent}
        objects["0"]["parent_ref"] = "4"
        if p_binary is not None:
            objects["5"] = {"type": "file", "name": p_binary}
            objects["4"]["binary_ref"] = "5"
            if p_dir is not None:
                objects["6"] = {"type": "directory", "path": p_dir}
                objects["5"]["parent_directory_ref"] = "6"
    return {"type": "observed-data", "id": f"observed-data--{pid}", "objects": objects}


def _pids(rule, records) -> set:
    return {e.key[1] for e in ref.matching_events(rule, records)}


def test_fields_of_a_process_event():
    record = _proc_record(
        pid=10, name="cmd.exe", command_line="cmd /c dir", binary="cmd.exe",
        directory="C:\\Windows\\System32", user="John", cwd="C:\\Users\\John",
        parent={"pid": 9, "name": "OUTLOOK.EXE", "command_line": "outlook",
                "binary": "OUTLOOK.EXE", "directory": "C:\\Office"})
    record["objects"]["1"]["hashes"] = {"SHA-256": "cc", "MD5": "aa", "SHA-512": "zz"}
    events = {e.key[1]: e.fields for e in ref.process_events([record], "\\")}
    assert events[10] == {
        "Image": "C:\\Windows\\System32\\cmd.exe", "CommandLine": "cmd /c dir",
        "ProcessId": 10, "CurrentDirectory": "C:\\Users\\John", "User": "John",
        "ParentImage": "C:\\Office\\OUTLOOK.EXE", "ParentCommandLine": "outlook",
        "ParentProcessId": 9, "Hashes": "MD5=aa,SHA256=cc", "md5": "aa", "sha256": "cc"}
    # the parent is an event of its own, with no parent
    assert events[9] == {"Image": "C:\\Office\\OUTLOOK.EXE", "CommandLine": "outlook",
                         "ProcessId": 9}


def test_image_with_and_without_directory():
    records = [
        _proc_record(pid=1, name="x", binary="wmic.exe", directory="C:\\Windows\\System32\\wbem"),
        _proc_record(pid=2, name="x", binary="wmic.exe"),          # no directory: \wmic.exe
        _proc_record(pid=3, name="wmic.exe"),                      # no binary: \<name>
        _proc_record(pid=4, name="notwmic.exe"),
    ]
    images = {e.key[1]: e.fields.get("Image") for e in ref.process_events(records, "\\")}
    assert images == {1: "C:\\Windows\\System32\\wbem\\wmic.exe", 2: "\\wmic.exe",
                      3: "\\wmic.exe", 4: "\\notwmic.exe"}
    endswith = _rule("    sel:\n        Image|endswith: '\\WMIC.exe'\n    condition: sel")
    assert _pids(endswith, records) == {1, 2, 3}
    exact = _rule("    sel:\n        Image: 'C:\\Windows\\System32\\wbem\\WMIC.EXE'\n"
                  "    condition: sel")
    assert _pids(exact, records) == {1}
    # linux rules join with /
    linux = [_proc_record(pid=5, name="x", binary="curl", directory="/usr/bin")]
    assert ref.process_events(linux, "/")[0].fields["Image"] == "/usr/bin/curl"
    curl = _rule("    sel:\n        Image|endswith: '/curl'\n    condition: sel", product="linux")
    assert _pids(curl, linux) == {5}
    assert _pids(curl, [_proc_record(pid=6, name="x", binary="curl", directory="C:\\bin")]) \
        == {6}  # C:\bin/curl: the separator is the rule's product's


def test_no_image_at_all():
    record = {"type": "observed-data", "id": "o", "objects": {"0": {"type": "process", "pid": 7}}}
    (event,) = ref.process_events([record], "\\")
    assert event.fields == {"ProcessId": 7}


def test_strings_are_case_insensitive_unless_cased():
    records = [_proc_record(pid=1, command_line="PowerShell -EncodedCommand AbC")]
    assert _pids(_rule("    sel:\n        CommandLine|contains: 'encodedcommand abc'\n"
                       "    condition: sel"), records) == {1}
    assert _pids(_rule("    sel:\n        CommandLine|contains|cased: 'encodedcommand'\n"
                       "    condition: sel"), records) == set()
    assert _pids(_rule("    sel:\n        CommandLine|contains|cased: 'EncodedCommand AbC'\n"
                       "    condition: sel"), records) == {1}
    # whole-value match without modifiers
    assert _pids(_rule("    sel:\n        CommandLine: 'powershell'\n    condition: sel"),
                 records) == set()
    assert _pids(_rule("    sel:\n        CommandLine: 'POWERSHELL -encodedcommand abc'\n"
                       "    condition: sel"), records) == {1}


def test_wildcards_and_escapes():
    records = [_proc_record(pid=1, command_line="a*b"), _proc_record(pid=2, command_line="aXb"),
               _proc_record(pid=3, command_line="a?b"), _proc_record(pid=4, command_line="aXYb"),
               _proc_record(pid=5, command_line="a\\b"), _proc_record(pid=6, command_line="a\\\\b"),
               _proc_record(pid=7, command_line="line1\nline2")]
    def pids(value):
        return _pids(_rule(f"    sel:\n        CommandLine: '{value}'\n    condition: sel"),
                     records)
    assert pids("a*b") == {1, 2, 3, 4, 5, 6}
    assert pids("a?b") == {1, 2, 3, 5}
    assert pids("a\\*b") == {1}             # escaped: a literal *
    assert pids("a\\?b") == {3}             # a literal ?
    assert pids("a\\\\b") == {5}            # \\ is one literal backslash
    assert pids("a\\b") == {5}              # a backslash before a plain character stays
    assert pids("a\\\\\\\\b") == {6}        # two escaped backslashes
    assert pids("line1*") == {7}            # * crosses line ends
    assert pids("*") == {1, 2, 3, 4, 5, 6, 7}


def test_not_on_an_absent_field_is_true():
    records = [_proc_record(pid=1, command_line="x"), _proc_record(pid=2)]
    rule = _rule("    sel:\n        OriginalFileName: 'cmd.exe'\n    condition: not sel")
    assert _pids(rule, records) == {1, 2}         # OriginalFileName: absent everywhere
    rule = _rule("    sel:\n        CommandLine: 'x'\n    condition: not sel")
    assert _pids(rule, records) == {2}            # absent: the comparison false, its not true
    rule = _rule("    sel:\n        CommandLine|contains: ''\n    condition: sel")
    assert _pids(rule, records) == {1}            # even * needs a value
    null = _rule("    sel:\n        CommandLine: null\n    condition: sel")
    assert _pids(null, records) == {2}
    exists = _rule("    sel:\n        CommandLine|exists: true\n    condition: sel")
    assert _pids(exists, records) == {1}
    absent = _rule("    sel:\n        CommandLine|exists: false\n    condition: sel")
    assert _pids(absent, records) == {2}


def test_lists_all_and_selectors():
    records = [_proc_record(pid=1, command_line="net user /add"),
               _proc_record(pid=2, command_line="net user"),
               _proc_record(pid=3, command_line="whoami")]
    any_of = _rule("    sel:\n        CommandLine|contains:\n            - '/add'\n"
                   "            - 'whoami'\n    condition: sel")
    assert _pids(any_of, records) == {1, 3}
    all_of = _rule("    sel:\n        CommandLine|contains|all:\n            - 'net'\n"
                   "            - '/add'\n    condition: sel")
    assert _pids(all_of, records) == {1}
    one_of = _rule("    sel_a:\n        CommandLine|startswith: 'net'\n"
                   "    sel_b:\n        CommandLine|endswith: 'ami'\n"
                   "    filter:\n        CommandLine|contains: 'add'\n"
                   "    condition: 1 of sel_* and not filter")
    assert _pids(one_of, records) == {2, 3}
    all_sel = _rule("    sel_a:\n        CommandLine|startswith: 'net'\n"
                    "    sel_b:\n        CommandLine|endswith: 'add'\n"
                    "    condition: all of sel_*")
    assert _pids(all_sel, records) == {1}


def test_windash_expansion():
    records = [_proc_record(pid=1, command_line="x.exe -enc AAA"),
               _proc_record(pid=2, command_line="x.exe /enc AAA"),
               _proc_record(pid=3, command_line="x.exe \u2013enc AAA"),
               _proc_record(pid=4, command_line="x.exe enc AAA")]
    rule = _rule("    sel:\n        CommandLine|windash|contains: ' -enc '\n    condition: sel")
    assert _pids(rule, records) == {1, 2, 3}


def test_regular_expressions_and_flags():
    records = [_proc_record(pid=1, command_line="Invoke-Mimikatz"),
               _proc_record(pid=2, command_line="invoke-mimikatz"),
               _proc_record(pid=3, command_line="first\nInvoke-X"),
               _proc_record(pid=4, command_line="a.b")]
    def pids(mods, value):
        return _pids(_rule(f"    sel:\n        CommandLine|re{mods}: '{value}'\n"
                           "    condition: sel"), records)
    assert pids("", "Invoke-M") == {1}              # case-sensitive, anywhere
    assert pids("|i", "invoke-m") == {1, 2}
    assert pids("", "^Invoke") == {1}               # ^: start of the value only
    assert pids("|m", "^Invoke") == {1, 3}          # with m: start of any line
    assert pids("", "first.Invoke") == set()        # . stops at a line end
    assert pids("|s", "first.Invoke") == {3}
    assert pids("", ".*katz$") == {1, 2}            # * and ? keep their regex meaning
    assert pids("", "^a\\.b$") == {4}
    assert pids("", "^ab?\\.b$") == {4}


def test_numbers_and_comparisons():
    records = [_proc_record(pid=4, command_line="4"), _proc_record(pid=400, command_line="x")]
    assert _pids(_rule("    sel:\n        ProcessId: 4\n    condition: sel"), records) == {4}
    assert _pids(_rule("    sel:\n        ProcessId: '4*'\n    condition: sel"),
                 records) == {4, 400}                         # a string on a number: as text
    assert _pids(_rule("    sel:\n        CommandLine: 4\n    condition: sel"),
                 records) == {4}                              # a number on text: as text
    assert _pids(_rule("    sel:\n        ProcessId|gt: 4\n    condition: sel"), records) == {400}
    assert _pids(_rule("    sel:\n        ProcessId|gte: 4\n    condition: sel"),
                 records) == {4, 400}
    assert _pids(_rule("    sel:\n        ProcessId|lt: 400\n    condition: sel"), records) == {4}
    assert _pids(_rule("    sel:\n        ProcessId|lte: 3\n    condition: sel"), records) == set()


def _traffic_record(src, dst, dst_port, protocols, image=None, opener=True, rid="o1"):
    objects = {"0": {"type": "ipv4-addr" if ":" not in src else "ipv6-addr", "value": src},
               "1": {"type": "ipv4-addr" if ":" not in dst else "ipv6-addr", "value": dst},
               "2": {"type": "network-traffic", "src_ref": "0", "dst_ref": "1", "src_port": 5000,
                     "dst_port": dst_port, "protocols": protocols}}
    if image is not None:
        objects["3"] = {"type": "process", "pid": 1, "name": image}
        if opener:
            objects["3"]["opened_connection_refs"] = ["2"]
    return {"type": "observed-data", "id": rid, "objects": objects}


def _net(detection):
    return _rule(detection, category="network_connection")


def _dsts(rule, records):
    return {e.key[3] for e in ref.matching_events(rule, records)}


def test_network_events_cidr_ports_protocols():
    records = [_traffic_record("10.0.0.1", "192.168.1.5", 443, ["tcp", "ssl"], image="a.exe"),
               _traffic_record("10.0.0.1", "8.8.8.8", 53, ["udp", "dns"], image="b.exe"),
               _traffic_record("fe80::1", "2001:db8::1", 80, ["tcp"])]
    (first, *_) = ref.network_events(records, "\\")
    assert first.key == ("network-traffic", "10.0.0.1", 5000, "192.168.1.5", 443, ("tcp", "ssl"))
    assert first.candidates() == [{"SourceIp": "10.0.0.1", "DestinationIp": "192.168.1.5",
                                   "SourcePort": 5000, "DestinationPort": 443,
                                   "Protocol": ["tcp", "ssl"], "Image": "\\a.exe"}]
    private = _net("    sel:\n        DestinationIp|cidr:\n            - '192.168.0.0/16'\n"
                   "            - '2001:db8::/32'\n    condition: sel")
    assert _dsts(private, records) == {"192.168.1.5", "2001:db8::1"}
    not_private = _net("    sel:\n        DestinationIp|cidr: '192.168.0.0/16'\n"
                       "    condition: not sel")
    assert _dsts(not_private, records) == {"8.8.8.8", "2001:db8::1"}
    port = _net("    sel:\n        DestinationPort:\n            - 53\n            - 80\n"
                "    condition: sel")
    assert _dsts(port, records) == {"8.8.8.8", "2001:db8::1"}
    proto = _net("    sel:\n        Protocol: 'UDP'\n    condition: sel")   # any element
    assert _dsts(proto, records) == {"8.8.8.8"}
    image = _net("    sel:\n        Image|endswith: '\\b.exe'\n        DestinationPort: 53\n"
                 "    condition: sel")
    assert _dsts(image, records) == {"8.8.8.8"}
    no_image = _net("    sel:\n        Image|exists: true\n    condition: not sel")
    assert _dsts(no_image, records) == {"2001:db8::1"}
    initiated = _net("    sel:\n        Initiated: 'true'\n    condition: sel")   # absent
    assert _dsts(initiated, records) == set()


def test_network_event_process_not_the_opener():
    # no process holds the traffic in opened_connection_refs: any process of the record
    record = _traffic_record("10.0.0.1", "1.1.1.1", 80, ["tcp"], image="c.exe", opener=False)
    record["objects"]["4"] = {"type": "process", "pid": 2, "name": "d.exe",
                              "command_line": "d.exe --go"}
    rule = _net("    sel:\n        Image|endswith: '\\d.exe'\n        CommandLine|contains: go\n"
                "    condition: sel")
    assert _dsts(rule, [record]) == {"1.1.1.1"}
    # Image and CommandLine come from one process, never mixed
    mixed = _net("    sel:\n        Image|endswith: '\\c.exe'\n        CommandLine|contains: go\n"
                 "    condition: sel")
    assert _dsts(mixed, [record]) == set()


def test_unsupported_parts_raise():
    records = [_proc_record(pid=1, command_line="x")]
    keywords = _rule("    keywords:\n        - 'mimikatz'\n    condition: keywords")
    with pytest.raises(ref.NotSupported):
        ref.matching_events(keywords, records)
    fieldref = _rule("    sel:\n        CommandLine|fieldref: Image\n    condition: sel")
    with pytest.raises(ref.NotSupported):
        ref.matching_events(fieldref, records)
    placeholder = _rule("    sel:\n        CommandLine|expand: '%admins%'\n    condition: sel")
    with pytest.raises(ref.NotSupported):
        ref.matching_events(placeholder, records)
    other = _rule("    sel:\n        CommandLine: x\n    condition: sel", category="file_event")
    with pytest.raises(ref.NotSupported):
        ref.matching_events(other, records)


def test_every_shared_rule_parses_and_compiles():
    """Every rule of the three folders is read by pySigma and compiled by the reference,
    but for the one `|fieldref` rule."""
    unsupported = Counter()
    count = 0
    for folder in RULE_FOLDERS:
        for rel in _rule_files(folder):
            count += 1
            try:
                ref.compile_rule(ref.load_rule(RULES / rel))
            except ref.NotSupported as err:
                unsupported[str(err)] += 1
    assert count == 1183 + 122 + 51
    assert unsupported == {"field reference (|fieldref)": 1}


def test_reference_keys_tell_process_events_apart():
    """Process events sharing a key have the same fields: a set of keys loses nothing.
    (Network traffic is keyed as Kestrel's entity is, by its addresses, ports and protocols:
    the same traffic seen in several records with different processes is one key, in the
    result when one of its events matches.)"""
    for bundle in BUNDLES["process"]:
        records = ref.load_records(SHARED_DATA / bundle)
        events = ref.process_events(records, "\\")
        assert events, bundle
        by_key: dict = {}
        for event in events:
            first = by_key.setdefault(event.key, event)
            assert first.candidates() == event.candidates(), (bundle, event.key)
    for bundle in BUNDLES["network-traffic"]:
        assert ref.network_events(ref.load_records(SHARED_DATA / bundle), "\\"), bundle


# known facts of doctored-1k.json (../shared/data/sigma/README.md)

@pytest.fixture(scope="module")
def doctored_records():
    return ref.load_records(SHARED_DATA / "doctored-1k.json")


def _suspect_cmd_lines(records) -> dict:
    """The cmd.exe events of doctored-1k whose command lines run `wmic /node:` and regsvr32."""
    found = {}
    for event in ref.process_events(records, "\\"):
        line = (event.fields.get("CommandLine") or "").lower()
        if "wmic /node:" in line or "regsvr32" in line:
            found[event.key] = event
    return found


def _image_keyed_rules() -> list:
    """Rules named for WMIC or regsvr32 that name its image (\\wmic.exe, \\regsvr32.exe)."""
    chosen = []
    for rel in _rule_files("windows/process_creation"):
        name = rel.rsplit("/", 1)[1]
        text = (RULES / rel).read_text(encoding="utf-8").lower()
        if ((name.startswith("proc_creation_win_wmic_") and "\\wmic.exe" in text)
                or (name.startswith("proc_creation_win_regsvr32_") and "\\regsvr32.exe" in text)):
            chosen.append(rel)
    return chosen


def test_reference_known_facts_on_doctored(doctored_records):
    outlook = ref.matching_events(ref.load_rule(RULES / OUTLOOK), doctored_records)
    assert [(e.fields["Image"], e.fields["ParentImage"]) for e in outlook] == [
        ("C:\\Windows\\SysWOW64\\cmd.exe",
         "C:\\Program Files\\Microsoft Office\\Office16\\OUTLOOK.EXE")]
    wmic = ref.matching_events(ref.load_rule(RULES / WMIC_VOLUME), doctored_records)
    assert len(wmic) == 7
    assert {e.fields["Image"] for e in wmic} == {"C:\\Windows\\SysWOW64\\wbem\\WMIC.exe"}

    suspects = _suspect_cmd_lines(doctored_records)
    assert len(suspects) == 2
    assert {e.fields["Image"].rsplit("\\", 1)[1] for e in suspects.values()} == {"cmd.exe"}
    rules = _image_keyed_rules()
    assert len(rules) > 20
    for rel in rules:
        hits = ref.matching_keys(ref.load_rule(RULES / rel), doctored_records)
        assert not hits & suspects.keys(), rel


# ---------------------------------------------------------------------------------------------
# differential: Kestrel's WHERE SIGMA against the reference


def _kestrel_has_sigma() -> bool:
    grammar = REPO_ROOT / "kestrel_core" / "grammar" / "kestrel.lark"
    return grammar.is_file() and "SIGMA" in grammar.read_text(encoding="utf-8")


needs_kestrel_sigma = pytest.mark.skipif(not _kestrel_has_sigma(),
                                         reason="Kestrel's grammar has no WHERE SIGMA yet")


class Hunt:
    """One Session over one bundle: its entities of one type read once (`ents`), each rule
    then a WHERE SIGMA on that variable; the reference's events of the bundle alongside."""

    names = itertools.count()

    def __init__(self, path: pathlib.Path, entity_type: str):
        from kestrel.session import Session

        self.path, self.entity_type = path, entity_type
        self.records = ref.load_records(path)
        self.session = Session()
        self.session.execute(f"ents = GET {entity_type} FROM file://{path}")
        self.events: dict = {}

    def reference(self, rule) -> set:
        """The reference's matching keys (NotSupported raised through)."""
        return ref.matching_keys(rule, self.records, self._events(rule))

    def _events(self, rule) -> list:
        source = (rule.logsource.product, rule.logsource.category)
        if source not in self.events:
            self.events[source] = ref.events_for(rule, self.records)
        return self.events[source]

    def explain(self, rule, keys: set) -> str:
        """The reference's Sigma fields of the events with these keys."""
        lines = []
        for event in self._events(rule):
            if event.key in keys:
                lines.append(f"    {event.key[:3]}: {event.candidates()}")
                keys = keys - {event.key}
        return "\n".join(lines)

    def keys_of(self, rows) -> set:
        if self.entity_type == "process":
            return {ref.process_key_of_row(r) for r in rows}
        return {ref.traffic_key_of_row(r) for r in rows}

    def kestrel(self, rule_path) -> set:
        """Kestrel's matching keys (KestrelError raised through)."""
        name = f"hits_{next(self.names)}"
        self.session.execute(f"{name} = ents WHERE SIGMA '{rule_path}'")
        return self.keys_of(self.session.get_variable(name))

    def close(self):
        self.session.close()


@pytest.fixture(scope="module")
def skipped():
    """Counts of the rules compared and skipped by the differential tests (written to the
    terminal when the module ends, by `hunts`)."""
    return Counter()


def _report(request, counts: Counter, title: str) -> None:
    """One line on the terminal (past pytest's capture) with the counts of a differential."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and counts:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\n{title} (rule x bundle): {dict(sorted(counts.items()))}")


@pytest.fixture(scope="module")
def hunts(request, skipped):
    """One Hunt per (bundle, entity type), opened when first needed."""
    opened: dict = {}

    def hunt(bundle, entity_type) -> Hunt:
        if (bundle, entity_type) not in opened:
            opened[(bundle, entity_type)] = Hunt(SHARED_DATA / bundle, entity_type)
        return opened[(bundle, entity_type)]

    yield hunt
    for h in opened.values():
        h.close()
    _report(request, skipped, "Sigma differential, shared bundles")


CASES = [
    pytest.param(bundle, entity_type, rel, id=f"{bundle}::{rel}")
    for folder, entity_type in RULE_FOLDERS.items()
    for bundle in BUNDLES[entity_type]
    for rel in _rule_files(folder)
]


def _show(keys: set) -> str:
    return "\n".join(f"    {k}" for k in sorted(keys, key=repr)) or "    (none)"


def _compare(hunt: Hunt, rel: str, counts: Counter, where: str,
             rule_path: pathlib.Path | None = None) -> None:
    """Kestrel's matches of one rule (`rel` under RULES, or the file `rule_path`) against
    the reference's, on one Hunt's bundle."""
    from kestrel.errors import KestrelError

    rule_path = rule_path or RULES / rel
    rule = ref.load_rule(rule_path)
    try:
        actual = hunt.kestrel(rule_path)
    except KestrelError as err:
        if "not applicable" in str(err):
            counts["kestrel: not applicable"] += 1
            pytest.skip(f"Kestrel: {err}")
        raise
    try:
        expected = hunt.reference(rule)
    except ref.NotSupported as err:
        counts["reference: not supported"] += 1
        pytest.skip(f"reference: {err}")
    counts["compared"] += 1
    counts["compared, matching something"] += bool(expected or actual)
    if actual != expected:
        counts["different"] += 1
    assert actual == expected, (
        f"rule {rel} ({rule.title}) on {where}:\n"
        f"  expected only (reference):\n{_show(expected - actual)}\n"
        f"  actual only (Kestrel):\n{_show(actual - expected)}\n"
        f"  both: {len(expected & actual)}\n"
        f"  the reference's fields of those events:\n"
        f"{hunt.explain(rule, expected ^ actual)}")


@needs_kestrel_sigma
@pytest.mark.parametrize("bundle, entity_type, rel", CASES)
def test_rule_matches_as_reference(hunts, skipped, bundle, entity_type, rel):
    _compare(hunts(bundle, entity_type), rel, skipped, bundle)


# ---------------------------------------------------------------------------------------------
# differential on synthetic records: the shared bundles make few rules fire (a handful of
# (rule, bundle) pairs), so every rule also runs over records made from its own values, a
# bundle per SYNTHETIC_CHUNK rules of one folder (each rule then meets its neighbours' events
# too).  The records are what the reference's field contract reads backwards: a rule's
# `Image|endswith: '\\cmd.exe'` becomes a binary cmd.exe in a directory `X`, and so on.

SYNTHETIC_CHUNK = 40      # rules per synthetic bundle (one Session each)
SYNTHETIC_VARIANTS = 8    # events per rule besides its base event and the base's variants
SYNTHETIC_FIELDS = {
    "process": {"Image", "CommandLine", "User", "CurrentDirectory", "ProcessId",
                "ParentImage", "ParentCommandLine", "ParentProcessId", "Hashes", "md5",
                "sha1", "sha256"},
    "network-traffic": {"Image", "CommandLine", "User", "ParentImage", "DestinationIp",
                        "SourceIp", "DestinationPort", "SourcePort", "Protocol"},
}
EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _leaves(node, negated=False):
    """(field, value, negated) of a condition tree's comparisons, in the rule's order."""
    if isinstance(node, ConditionNOT):
        for arg in node.args:
            yield from _leaves(arg, not negated)
    elif isinstance(node, (ConditionAND, ConditionOR)):
        for arg in node.args:
            yield from _leaves(arg, negated)
    elif isinstance(node, ConditionFieldEqualsValueExpression):
        yield node.field, node.value, negated


def _realize(value):
    """(text, free start, free end): a field value the Sigma value matches, and whether the
    value allows anything before / after it (a leading / trailing `*`); None where this
    generator has none (regular expressions, null, exists, placeholders)."""
    if isinstance(value, SigmaString):
        if not value.s or any(isinstance(p, Placeholder) for p in value.s):
            return None
        text = "".join(p if isinstance(p, str) else "X" for p in value.s)
        return (text, value.s[0] is SpecialChars.WILDCARD_MULTI,
                value.s[-1] is SpecialChars.WILDCARD_MULTI)
    if isinstance(value, SigmaExpansion):
        for inner in value.values:
            found = _realize(inner)
            if found is not None:
                return found
        return None
    if isinstance(value, SigmaCIDRExpression):
        network = ipaddress.ip_network(value.cidr, strict=False)
        return str(network.network_address + (1 if network.num_addresses > 2 else 0)), 0, 0
    if isinstance(value, SigmaCompareExpression):
        n = value.number.number
        return {CompareOperators.GT: n + 1, CompareOperators.LT: n - 1,
                CompareOperators.NEQ: n + 1}.get(value.op, n), 0, 0
    if isinstance(value, SigmaBool):
        return str(bool(value)).lower(), 0, 0
    if isinstance(value, SigmaNumber):
        return value.number, 0, 0
    return None


def _witness(node, branch: int) -> list:
    """(field, realized value) a rule's condition asks for together, taking the `branch`-th
    alternative (modulo their number) of every OR; negated parts ask for nothing."""
    if isinstance(node, ConditionAND):
        return [leaf for arg in node.args for leaf in _witness(arg, branch)]
    if isinstance(node, ConditionOR):
        return _witness(node.args[branch % len(node.args)], branch)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        found = _realize(node.value)
        return [(node.field, found)] if found is not None else []
    return []


def _combine(found: list):
    """One value matching every (text, free start, free end) of a field at once where it
    can: the exact one if any, else a prefix, the middles and a suffix joined."""
    exact = [t for t, head, tail in found if not head and not tail]
    if exact or not all(isinstance(t, str) for t, _, _ in found):
        return (exact or [t for t, _, _ in found])[0]
    prefix = next((t for t, head, _ in found if not head), "")
    suffix = next((t for t, _, tail in found if not tail), "")
    middles = [t for t, head, tail in found if head and tail]
    return prefix + "".join(middles) + suffix


def _variants(rule, entity_type) -> list:
    """Dicts of Sigma fields for a rule: witnesses of its condition (the first, second, ...
    alternative of its ORs; the first with its case swapped too), then the first witness
    with one comparison's value put in (filters included), for SYNTHETIC_VARIANTS
    comparisons spread over the rule."""
    known = SYNTHETIC_FIELDS[entity_type]
    trees = [c.parsed for c in rule.detection.parsed_condition]
    events = []
    for branch in range(3):
        per_field: dict = {}
        for tree in trees:
            for f, found in _witness(tree, branch):
                if f in known:
                    per_field.setdefault(f, []).append(found)
        witness = {f: _combine(found) for f, found in per_field.items()}
        if witness not in events:
            events.append(witness)
    base = events[0]
    swapped = {f: v.swapcase() if isinstance(v, str) else v for f, v in base.items()}
    if swapped != base:
        events.append(swapped)
    leaves = [(f, _realize(v)) for tree in trees for f, v, _ in _leaves(tree) if f in known]
    others = [(f, found[0]) for f, found in leaves
              if found is not None and base.get(f) != found[0]]
    step = max(1, len(others) // SYNTHETIC_VARIANTS)
    for f, v in others[::step][:SYNTHETIC_VARIANTS]:
        events.append({**base, f: v})
    return events


HASH_NAMES = {"MD5": "MD5", "SHA1": "SHA-1", "SHA256": "SHA-256"}


class _Builder:
    """STIX 2.0 records from Sigma field dicts (the reference's contract read backwards)."""

    def __init__(self, sep: str):
        self.sep, self.serial, self.records = sep, itertools.count(1), []

    def _image(self, objects: dict, image: str) -> tuple:
        """(the binary's ref, its name) for an image path, with its directory if any."""
        directory, _, name = str(image).rpartition(self.sep)
        binary = {"type": "file", "name": name}
        if directory:
            objects[str(len(objects))] = {"type": "directory", "path": directory}
            binary["parent_directory_ref"] = str(len(objects) - 1)
        objects[str(len(objects))] = binary
        return str(len(objects) - 1), name

    def _process(self, objects: dict, fields: dict, n: int, lead: str = "") -> str:
        """A process (or with lead "Parent", its parent) of `fields`; returns its ref."""
        pid = fields.get(f"{lead}ProcessId")
        pid = pid if isinstance(pid, int) else (n if not lead else 1_000_000 + n)
        created = (EPOCH + timedelta(seconds=n, milliseconds=500 if lead else 0))
        process = {"type": "process", "pid": pid,
                   "created": created.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}
        name = f"proc{n}.exe"
        if fields.get(f"{lead}Image") is not None:
            process["binary_ref"], name = self._image(objects, fields[f"{lead}Image"])
        process["name"] = name
        if fields.get(f"{lead}CommandLine") is not None:
            process["command_line"] = str(fields[f"{lead}CommandLine"])
        if not lead:
            if fields.get("CurrentDirectory") is not None:
                process["cwd"] = str(fields["CurrentDirectory"])
            if fields.get("User") is not None:
                objects[str(len(objects))] = {"type": "user-account",
                                              "user_id": str(fields["User"])}
                process["creator_user_ref"] = str(len(objects) - 1)
            hashes = {}
            for algorithm, digest in re.findall(r"(MD5|SHA1|SHA256)=([0-9A-Fa-f]+)",
                                                str(fields.get("Hashes", ""))):
                hashes[HASH_NAMES[algorithm]] = digest
            for field_name, stix_name in (("md5", "MD5"), ("sha1", "SHA-1"),
                                          ("sha256", "SHA-256")):
                if fields.get(field_name) is not None:
                    hashes[stix_name] = str(fields[field_name])
            if hashes:
                if "binary_ref" not in process:
                    objects[str(len(objects))] = {"type": "file"}
                    process["binary_ref"] = str(len(objects) - 1)
                objects[process["binary_ref"]]["hashes"] = hashes
            if any(fields.get(f"Parent{f}") is not None
                   for f in ("Image", "CommandLine", "ProcessId")):
                process["parent_ref"] = self._process(objects, fields, n, "Parent")
        objects[str(len(objects))] = process
        return str(len(objects) - 1)

    def _address(self, objects: dict, value, default: str) -> str:
        try:
            address = ipaddress.ip_address(str(value))
        except ValueError:
            address = ipaddress.ip_address(default)
        objects[str(len(objects))] = {"type": f"ipv{address.version}-addr",
                                      "value": str(address)}
        return str(len(objects) - 1)

    @staticmethod
    def _port(value, default: int) -> int:
        try:
            return int(value)
        except (TypeError, ValueError):
            return default

    def add(self, fields: dict, entity_type: str) -> None:
        n = next(self.serial)
        objects: dict = {}
        if entity_type == "process":
            self._process(objects, fields, n)
        else:
            traffic = {"type": "network-traffic",
                       "src_ref": self._address(objects, fields.get("SourceIp"), "10.1.2.3"),
                       "dst_ref": self._address(objects, fields.get("DestinationIp"),
                                                "10.9.8.7"),
                       "src_port": self._port(fields.get("SourcePort"), 20000 + n),
                       "dst_port": self._port(fields.get("DestinationPort"), 30000 + n),
                       "protocols": [str(fields.get("Protocol", "tcp"))]}
            objects[str(len(objects))] = traffic
            traffic_ref = str(len(objects) - 1)
            # as in Sysmon's network events, the process that opened it is always there
            opener = self._process(objects, fields, n)
            objects[opener]["opened_connection_refs"] = [traffic_ref]
        when = (EPOCH + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        self.records.append({
            "type": "observed-data", "id": f"observed-data--00000000-0000-4000-8000-{n:012d}",
            "created": when, "modified": when, "first_observed": when, "last_observed": when,
            "number_observed": 1, "objects": objects})

    def bundle(self) -> dict:
        return {"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000000",
                "spec_version": "2.0", "objects": self.records}


def synthetic_bundle(rels: list, entity_type: str, product: str) -> dict:
    """A STIX bundle of the synthetic events of the rules `rels` (files under RULES, or
    paths)."""
    builder = _Builder(ref.SEPARATORS[product])
    for rel in rels:
        for fields in _variants(ref.load_rule(RULES / rel), entity_type):
            builder.add(fields, entity_type)
    return builder.bundle()


def _chunks() -> list:
    """(chunk id, folder, rule files) of SYNTHETIC_CHUNK rules each."""
    chunks = []
    for folder in RULE_FOLDERS:
        rels = _rule_files(folder)
        for i in range(0, len(rels), SYNTHETIC_CHUNK):
            chunks.append((f"{folder.replace('/', '-')}-{i // SYNTHETIC_CHUNK:02d}", folder,
                           rels[i:i + SYNTHETIC_CHUNK]))
    return chunks


CHUNKS = _chunks()
SYNTHETIC_CASES = [pytest.param(chunk, rel, id=f"synthetic-{chunk}::{rel}")
                   for chunk, _, rels in CHUNKS for rel in rels]


@pytest.fixture(scope="module")
def synthetic_counts():
    return Counter()


@pytest.fixture(scope="module")
def synthetic_hunts(request, tmp_path_factory, synthetic_counts):
    """The Hunt of a chunk's synthetic bundle (one open at a time: chunks come in order)."""
    chunks = {chunk: (folder, rels) for chunk, folder, rels in CHUNKS}
    current: dict = {}
    folder_path = tmp_path_factory.mktemp("sigma-synthetic")

    def hunt(chunk) -> Hunt:
        if chunk not in current:
            for h in current.values():
                h.close()
            current.clear()
            folder, rels = chunks[chunk]
            entity_type = RULE_FOLDERS[folder]
            path = folder_path / f"{chunk}.json"
            path.write_text(json.dumps(synthetic_bundle(rels, entity_type,
                                                        folder.split("/")[0])))
            current[chunk] = Hunt(path, entity_type)
        return current[chunk]

    yield hunt
    for h in current.values():
        h.close()
    _report(request, synthetic_counts, "Sigma differential, synthetic records")


def test_synthetic_records_make_rules_fire():
    """The generator is worth its time: on its own records the reference fires most rules."""
    fired = total = 0
    for chunk, folder, rels in CHUNKS[:3] + CHUNKS[-3:]:
        entity_type = RULE_FOLDERS[folder]
        records = synthetic_bundle(rels, entity_type, folder.split("/")[0])["objects"]
        for rel in rels:
            rule = ref.load_rule(RULES / rel)
            try:
                fired += bool(ref.matching_keys(rule, records))
            except ref.NotSupported:
                continue
            total += 1
    assert fired > 0.6 * total, (fired, total)


@needs_kestrel_sigma
@pytest.mark.parametrize("chunk, rel", SYNTHETIC_CASES)
def test_rule_matches_as_reference_on_synthetic_records(synthetic_hunts, synthetic_counts,
                                                        chunk, rel):
    _compare(synthetic_hunts(chunk), rel, synthetic_counts, f"synthetic bundle {chunk}")


# ---------------------------------------------------------------------------------------------
# network_connection rules without `Initiated` and `SourceIsIpv6`: nearly every SigmaHQ network
# rule asks for `Initiated: 'true'`, a field no STIX record has, so none can fire as written;
# copies without those two fields (written to a temporary folder) exercise the rest (Image of
# the record's process, addresses, CIDR, ports) on the shared bundles and synthetic records.

ABSENT_NETWORK_FIELDS = ("Initiated", "SourceIsIpv6")
NETWORK_RULES = _rule_files("windows/network_connection")


def _strip(definition):
    """A detection definition without the items on ABSENT_NETWORK_FIELDS (None if empty)."""
    if isinstance(definition, dict):
        kept = {k: v for k, v in definition.items()
                if k.split("|")[0] not in ABSENT_NETWORK_FIELDS}
        return kept or None
    if isinstance(definition, list) and definition and all(isinstance(d, dict)
                                                           for d in definition):
        kept = [d for d in (_strip(d) for d in definition) if d]
        return kept or None
    return definition


def stripped_rule(rel: str, folder: pathlib.Path) -> pathlib.Path | None:
    """A copy of a network rule without ABSENT_NETWORK_FIELDS in `folder`, or None when
    that leaves a selection empty or changes nothing."""
    import yaml

    rule = yaml.safe_load((RULES / rel).read_text(encoding="utf-8"))
    detection = rule["detection"]
    changed = False
    for name, definition in list(detection.items()):
        if name == "condition":
            continue
        kept = _strip(definition)
        if kept is None:
            return None
        changed |= kept != definition
        detection[name] = kept
    if not changed:
        return None
    path = folder / pathlib.Path(rel).name
    path.write_text(yaml.safe_dump(rule, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def stripped(request, tmp_path_factory):
    """(rule paths by rel, Hunt of a synthetic bundle made from them, counts)."""
    folder = tmp_path_factory.mktemp("sigma-stripped")
    paths = {rel: stripped_rule(rel, folder) for rel in NETWORK_RULES}
    paths = {rel: path for rel, path in paths.items() if path is not None}
    bundle = folder / "synthetic-network.json"
    bundle.write_text(json.dumps(synthetic_bundle(list(paths.values()), "network-traffic",
                                                  "windows")))
    hunt = Hunt(bundle, "network-traffic")
    counts = Counter()
    yield paths, hunt, counts
    hunt.close()
    _report(request, counts, "Sigma differential, network rules without Initiated")


def test_stripped_network_rules():
    """Most network rules lose only Initiated/SourceIsIpv6, and then about half fire on
    their synthetic records (the others ask for DestinationHostname, absent too)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        paths = [p for p in (stripped_rule(rel, pathlib.Path(tmp)) for rel in NETWORK_RULES) if p]
        assert len(paths) > 40
        records = synthetic_bundle(paths, "network-traffic", "windows")["objects"]
        fired = sum(bool(ref.matching_keys(ref.load_rule(p), records)) for p in paths)
        assert fired > 0.4 * len(paths), (fired, len(paths))


STRIPPED_CASES = [pytest.param(bundle, rel, id=f"stripped-{bundle}::{rel}")
                  for bundle in BUNDLES["network-traffic"] + ["synthetic"]
                  for rel in NETWORK_RULES]


@needs_kestrel_sigma
@pytest.mark.parametrize("bundle, rel", STRIPPED_CASES)
def test_network_rule_without_initiated_matches_as_reference(hunts, stripped, bundle, rel):
    paths, synthetic_hunt, counts = stripped
    if rel not in paths:
        pytest.skip("no Initiated/SourceIsIpv6 to take out, or nothing left")
    hunt = synthetic_hunt if bundle == "synthetic" else hunts(bundle, "network-traffic")
    _compare(hunt, rel, counts, f"{bundle} (rule without {'/'.join(ABSENT_NETWORK_FIELDS)})",
             rule_path=paths[rel])


# ---------------------------------------------------------------------------------------------
# differential on hand-made records: the corners of the field contract and of Sigma's value
# semantics, each rule's answer worked out by hand (checked on the reference) and then asked
# of Kestrel.


def _stamp(i: int) -> str:
    return (EPOCH + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _edge_record(i: int, objects: dict) -> dict:
    return {"type": "observed-data", "id": f"observed-data--00000000-0000-4000-8000-{i:012d}",
            "created": _stamp(i), "modified": _stamp(i), "first_observed": _stamp(i),
            "last_observed": _stamp(i), "number_observed": 1, "objects": objects}


def _edge_process(i: int, pid: int, **attrs) -> dict:
    """A record with one process: name, cl (command line), bin (binary name; None for a
    binary without name), dir, hashes, user, cwd."""
    objects, process = {}, {"type": "process", "pid": pid}
    if "name" in attrs:
        process["name"] = attrs["name"]
    if "cl" in attrs:
        process["command_line"] = attrs["cl"]
    if "cwd" in attrs:
        process["cwd"] = attrs["cwd"]
    if "bin" in attrs or "hashes" in attrs:
        binary = {"type": "file"}
        if attrs.get("bin") is not None:
            binary["name"] = attrs["bin"]
        if "hashes" in attrs:
            binary["hashes"] = attrs["hashes"]
        if "dir" in attrs:
            objects["9"] = {"type": "directory", "path": attrs["dir"]}
            binary["parent_directory_ref"] = "9"
        objects["8"] = binary
        process["binary_ref"] = "8"
    if "user" in attrs:
        objects["7"] = {"type": "user-account", "user_id": attrs["user"]}
        process["creator_user_ref"] = "7"
    objects["0"] = process
    return _edge_record(i, objects)


EDGE_PROCESSES = [
    _edge_process(1, 101, name="cmd.exe", bin="cmd.exe", dir="C:\\Windows\\System32",
                  cl="cmd /c whoami"),
    _edge_process(2, 102, name="cmd.exe", bin="cmd.exe", cl="cmd /c WHOAMI"),   # no directory
    _edge_process(3, 103, name="cmd.exe", cl="cmd\n/c whoami"),        # no binary; a newline
    _edge_process(4, 104, name="cmd.exe", bin=None, dir="C:\\x", cl=""),  # binary without name
    _edge_process(5, 105, cl="ÄRGER straße"),                        # no name, no binary
    _edge_process(6, 106, name="x.exe", bin="x.exe", dir="C:\\a*b?c", cl="a*b?c\\d",
                  user="NT AUTHORITY\\SYSTEM", cwd="C:\\Users\\Public\\"),
    _edge_process(7, 107, name="y.exe", bin="Y.EXE", dir="c:\\windows\\system32",
                  cl="-enc AAA /enc BBB", hashes={"MD5": "aa", "SHA-256": "BB"}),
]
ALL_PIDS = [101, 102, 103, 104, 105, 106, 107]

# (name, detection (YAML under `detection:`), pids it matches)
EDGE_PROCESS_RULES = [
    ("image_endswith", "sel:\n    Image|endswith: '\\cmd.exe'\ncondition: sel",
     [101, 102, 103, 104]),
    ("image_exact_case", "sel:\n    Image: 'c:\\windows\\system32\\CMD.exe'\ncondition: sel",
     [101]),
    ("image_without_directory", "sel:\n    Image: '\\cmd.exe'\ncondition: sel",
     [102, 103, 104]),
    ("not_image", "sel:\n    Image|endswith: '\\cmd.exe'\ncondition: not sel", [105, 106, 107]),
    ("image_null", "sel:\n    Image: null\ncondition: sel", [105]),
    ("image_exists_false", "sel:\n    Image|exists: false\ncondition: sel", [105]),
    ("command_line_exists", "sel:\n    CommandLine|exists: true\ncondition: sel", ALL_PIDS),
    ("wildcard_multi", "sel:\n    CommandLine: 'cmd*whoami'\ncondition: sel", [101, 102, 103]),
    ("wildcard_single", "sel:\n    CommandLine: 'cmd?/c whoami'\ncondition: sel",
     [101, 102, 103]),
    ("empty_string", "sel:\n    CommandLine: ''\ncondition: sel", [104]),
    ("contains_empty", "sel:\n    CommandLine|contains: ''\ncondition: sel", ALL_PIDS),
    ("non_ascii_case", "sel:\n    CommandLine|contains: 'ärger STRAßE'\ncondition: sel", [105]),
    ("escaped_wildcards", "sel:\n    CommandLine: 'a\\*b\\?c\\d'\ncondition: sel", [106]),
    ("escaped_wildcards_image", "sel:\n    Image|startswith: 'C:\\a\\*b\\?c\\'\ncondition: sel",
     [106]),
    ("regex_case_sensitive", "sel:\n    CommandLine|re: 'WHOAMI'\ncondition: sel", [102]),
    ("regex_i", "sel:\n    CommandLine|re|i: 'WHOAMI$'\ncondition: sel", [101, 102, 103]),
    ("regex_m", "sel:\n    CommandLine|re|m: '^/c'\ncondition: sel", [103]),
    ("regex_s", "sel:\n    CommandLine|re|s: 'cmd.+whoami'\ncondition: sel", [101, 103]),
    ("regex_dot_stops_at_newline", "sel:\n    CommandLine|re: 'cmd.+whoami'\ncondition: sel",
     [101]),
    ("cased", "sel:\n    CommandLine|cased|contains: 'WHOAMI'\ncondition: sel", [102]),
    ("windash", "sel:\n    CommandLine|windash|contains|all:\n      - ' -enc '\n      - '-enc B'\n"
     "condition: sel", [107]),
    ("user", "sel:\n    User|contains: 'AUTHORI'\ncondition: sel", [106]),
    ("current_directory", "sel:\n    CurrentDirectory|endswith: '\\Public\\'\ncondition: sel",
     [106]),
    ("hashes_sha256", "sel:\n    Hashes|contains: 'SHA256=bb'\ncondition: sel", [107]),
    ("hashes_md5", "sel:\n    Hashes|contains: 'MD5=AA'\ncondition: sel", [107]),
    ("md5", "sel:\n    md5: 'AA'\ncondition: sel", [107]),
    ("sha256", "sel:\n    sha256: 'bb'\ncondition: sel", [107]),
    ("process_id", "sel:\n    ProcessId: 104\ncondition: sel", [104]),
    ("process_id_gt", "sel:\n    ProcessId|gt: 105\ncondition: sel", [106, 107]),
    ("process_id_as_text", "sel:\n    ProcessId: '10*'\ncondition: sel", ALL_PIDS),
    ("absent_field_negated", "sel:\n    OriginalFileName: 'cmd.exe'\ncondition: not sel",
     ALL_PIDS),
    ("absent_field", "sel:\n    OriginalFileName: 'cmd.exe'\ncondition: sel", []),
]


def _edge_traffic(i: int, src_port: int, processes: list) -> dict:
    """A record with traffic 10.0.0.1:src_port -> 10.0.0.2:80/tcp and `processes`, dicts of
    name (binary name), cl, opener (holds the traffic), parent (index of its parent)."""
    objects = {"0": {"type": "ipv4-addr", "value": "10.0.0.1"},
               "1": {"type": "ipv4-addr", "value": f"10.0.{i}.2"},
               "2": {"type": "network-traffic", "src_ref": "0", "dst_ref": "1",
                     "src_port": src_port, "dst_port": 80, "protocols": ["tcp"]}}
    for n, spec in enumerate(processes):
        objects[f"b{n}"] = {"type": "file", "name": spec["name"]}
        process = {"type": "process", "pid": 1000 * i + n, "name": spec["name"],
                   "binary_ref": f"b{n}"}
        if "cl" in spec:
            process["command_line"] = spec["cl"]
        if spec.get("opener"):
            process["opened_connection_refs"] = ["2"]
        if "parent" in spec:
            process["parent_ref"] = f"p{spec['parent']}"
        objects[f"p{n}"] = process
    return _edge_record(i, objects)


EDGE_TRAFFIC = [
    # 1001: opened by a.exe, whose parent notepad.exe is in the record too
    _edge_traffic(1, 1001, [{"name": "notepad.exe"},
                            {"name": "a.exe", "opener": True, "parent": 0}]),
    _edge_traffic(2, 1002, []),                                            # no process
    _edge_traffic(3, 1003, [{"name": "notepad.exe", "cl": "notepad x", "opener": True}]),
    _edge_traffic(4, 1004, [{"name": "notepad.exe"}]),                     # not the opener
    # 1005: no opener; the image of one process, the command line of another
    _edge_traffic(5, 1005, [{"name": "notepad.exe"}, {"name": "b.exe", "cl": "b.exe go"}]),
]

# (name, detection, src ports it matches)
EDGE_NETWORK_RULES = [
    ("image", "sel:\n    Image|endswith: '\\notepad.exe'\ncondition: sel", [1003, 1004, 1005]),
    ("not_image", "sel:\n    Image|endswith: '\\notepad.exe'\ncondition: not sel",
     [1001, 1002, 1005]),
    ("image_and_command_line_of_one_process",
     "sel:\n    Image|endswith: '\\notepad.exe'\n    CommandLine|contains: 'go'\ncondition: sel",
     []),
    ("parent_image", "sel:\n    ParentImage|endswith: '\\notepad.exe'\ncondition: sel", [1001]),
    ("image_null", "sel:\n    Image: null\ncondition: sel", [1002]),
    ("port_but_not_image",
     "sel:\n    DestinationPort: 80\nfilter:\n    Image|endswith: '\\a.exe'\n"
     "condition: sel and not filter", [1002, 1003, 1004, 1005]),
    ("cidr", "sel:\n    DestinationIp|cidr: '10.0.0.0/22'\n    Protocol: TCP\ncondition: sel",
     [1001, 1002, 1003]),
]
# Kestrel matches a network rule's process fields as extended subgraphs, record by record
# (README, Limits): any process of the record may pass (a parent beside the opener, Image and
# CommandLine from two processes), and a record without a process passes no condition on a
# process field, not its `not` or `null` either.  Its answers where that differs from the
# reference's (one opener per event), worked out by hand from EDGE_TRAFFIC:
RECORD_LEVEL = {
    "image": [1001, 1003, 1004, 1005],             # 1001: its parent notepad.exe
    "not_image": [1001, 1005],                     # 1002: no process to be not notepad
    "image_and_command_line_of_one_process": [1005],
    "image_null": [],
    "port_but_not_image": [1001, 1003, 1004, 1005],  # 1001: notepad.exe is not a.exe
}

EDGE_CASES = (
    [pytest.param("process", name, detection, expected, id=f"process-{name}")
     for name, detection, expected in EDGE_PROCESS_RULES]
    + [pytest.param("network-traffic", name, detection, expected, id=f"network-{name}")
       for name, detection, expected in EDGE_NETWORK_RULES])


def _edge_rule_text(name: str, detection: str, entity_type: str) -> str:
    category = "process_creation" if entity_type == "process" else "network_connection"
    body = "\n".join("    " + line for line in detection.splitlines())
    return (f"title: edge {name}\nlogsource:\n    category: {category}\n"
            f"    product: windows\ndetection:\n{body}\n")


def _edge_answer(entity_type: str, keys: set) -> list:
    """pids of process keys, source ports of traffic keys."""
    return sorted(k[1] if entity_type == "process" else k[2] for k in keys)


@pytest.mark.parametrize("entity_type, name, detection, expected", EDGE_CASES)
def test_reference_on_edge_records(entity_type, name, detection, expected):
    rule = SigmaRule.from_yaml(_edge_rule_text(name, detection, entity_type))
    records = EDGE_PROCESSES if entity_type == "process" else EDGE_TRAFFIC
    assert _edge_answer(entity_type, ref.matching_keys(rule, records)) == expected


@pytest.fixture(scope="module")
def edge_hunts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sigma-edge")
    opened = {}
    for entity_type, records in (("process", EDGE_PROCESSES), ("network-traffic", EDGE_TRAFFIC)):
        path = folder / f"edge-{entity_type}.json"
        path.write_text(json.dumps({"type": "bundle", "spec_version": "2.0",
                                    "id": "bundle--00000000-0000-4000-8000-000000000000",
                                    "objects": records}))
        opened[entity_type] = Hunt(path, entity_type)
    yield folder, opened
    for h in opened.values():
        h.close()


@needs_kestrel_sigma
@pytest.mark.parametrize("entity_type, name, detection, expected", EDGE_CASES)
def test_kestrel_on_edge_records(edge_hunts, entity_type, name, detection, expected):
    folder, opened = edge_hunts
    path = folder / f"{entity_type}-{name}.yml"
    path.write_text(_edge_rule_text(name, detection, entity_type))
    actual = _edge_answer(entity_type, opened[entity_type].kestrel(path))
    if entity_type == "network-traffic":
        expected = RECORD_LEVEL.get(name, expected)
    assert actual == expected, (f"{name}: Kestrel {actual}, expected {expected} "
                                f"(worked out by hand)")


# a few rules as GET ... FROM the bundle WHERE SIGMA, straight from the file
DIRECT = [
    ("doctored-1k.json", "process", OUTLOOK),
    ("doctored-1k.json", "process", WMIC_VOLUME),
    ("doctored-1k.json", "process",
     "windows/process_creation/proc_creation_win_susp_non_exe_image.yml"),
    ("test_bundle_nt_1.json", "process",
     "windows/process_creation/proc_creation_win_powershell_non_interactive_execution.yml"),
    ("powershell_search_stix_result.json", "process",
     "windows/process_creation/proc_creation_win_powershell_non_interactive_execution.yml"),
    ("doctored-1k.json", "process",
     "linux/process_creation/proc_creation_lnx_susp_shell_child_process_from_parent_tmp_folder.yml"),
    ("test_bundle.json", "network-traffic",
     "windows/network_connection/net_connection_win_susp_outbound_smtp_connections.yml"),
    ("test_bundle_nt_2.json", "network-traffic",
     "windows/network_connection/net_connection_win_susp_remote_powershell_session.yml"),
]


def _get_where_sigma(bundle: str, entity_type: str, rule_path: pathlib.Path) -> set:
    """Keys of `GET entity_type FROM file://bundle WHERE SIGMA 'rule_path'` in a Session of
    its own (skips the test when Kestrel reports the rule not applicable)."""
    from kestrel.errors import KestrelError
    from kestrel.session import Session

    with Session() as s:
        try:
            s.execute(f"hits = GET {entity_type} FROM file://{SHARED_DATA / bundle} "
                      f"WHERE SIGMA '{rule_path}'")
        except KestrelError as err:
            if "not applicable" in str(err):
                pytest.skip(f"Kestrel: {err}")
            raise
        rows = s.get_variable("hits")
    if entity_type == "process":
        return {ref.process_key_of_row(r) for r in rows}
    return {ref.traffic_key_of_row(r) for r in rows}


@needs_kestrel_sigma
@pytest.mark.parametrize("bundle, entity_type, rel", [pytest.param(*c, id=f"{c[0]}::{c[2]}")
                                                      for c in DIRECT])
def test_get_from_bundle_where_sigma(bundle, entity_type, rel):
    rule = ref.load_rule(RULES / rel)
    expected = ref.matching_keys(rule, ref.load_records(SHARED_DATA / bundle))
    actual = _get_where_sigma(bundle, entity_type, RULES / rel)
    assert actual == expected, (
        f"rule {rel} ({rule.title}) on {bundle}:\n"
        f"  expected only (reference):\n{_show(expected - actual)}\n"
        f"  actual only (Kestrel):\n{_show(actual - expected)}")


@needs_kestrel_sigma
@pytest.mark.parametrize("bundle, count", [("test_bundle_nt_1.json", 4),
                                           ("test_bundle_nt_2.json", 7)])
def test_get_from_bundle_where_sigma_network_rule_without_initiated(tmp_path, bundle, count):
    """WinRM traffic (port 5985) of the Elastic bundles fires the remote PowerShell session
    rule once Initiated/SourceIsIpv6 are taken out of it."""
    rel = "windows/network_connection/net_connection_win_susp_remote_powershell_session.yml"
    path = stripped_rule(rel, tmp_path)
    expected = ref.matching_keys(ref.load_rule(path), ref.load_records(SHARED_DATA / bundle))
    assert len(expected) == count
    assert {k[4] for k in expected} == {5985}
    assert _get_where_sigma(bundle, "network-traffic", path) == expected


@needs_kestrel_sigma
def test_kestrel_known_facts_on_doctored(hunts, doctored_records):
    from kestrel.errors import KestrelError

    hunt = hunts("doctored-1k.json", "process")
    outlook = hunt.kestrel(RULES / OUTLOOK)
    assert len(outlook) == 1
    ((_, pid, name, *_),) = outlook
    assert (pid, name) == (8972, "cmd.exe")
    wmic = hunt.kestrel(RULES / WMIC_VOLUME)
    assert len(wmic) == 7 and {k[2] for k in wmic} == {"WMIC.exe"}
    suspects = _suspect_cmd_lines(doctored_records)
    for rel in _image_keyed_rules():
        try:
            hits = hunt.kestrel(RULES / rel)
        except KestrelError as err:  # a rule Kestrel does not run has no hits
            if "not applicable" in str(err):
                continue
            raise
        assert not hits & suspects.keys(), rel
