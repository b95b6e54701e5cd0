"""WHERE SIGMA and APPLY python://sigma on both stores, over a small bundle whose answers
are known by reading it: Sigma's string semantics (case, wildcards and their escapes,
modifiers), the image path joined from two STIX attributes, absent fields, `not`,
network rules about the process that opened the traffic, bad rules, labels, EXPLAIN."""

from __future__ import annotations

import json
import textwrap
import uuid

import pytest

from kestrel.errors import KestrelError, SigmaRuleError
from kestrel.session import Session

SHA256 = "ABC123" + "0" * 58


def _process(pid, name=None, command_line=None, **refs):
    obj = {"type": "process", "pid": pid}
    if name:
        obj["name"] = name
    if command_line:
        obj["command_line"] = command_line
    obj.update(refs)
    return obj


def _record(number, objects):
    return {"type": "observed-data", "id": f"observed-data--{uuid.UUID(int=number)}",
            "created": "2021-06-01T00:00:00.000Z", "modified": "2021-06-01T00:00:00.000Z",
            "first_observed": f"2021-06-01T00:00:{number:02d}.000Z",
            "last_observed": f"2021-06-01T00:00:{number:02d}.000Z", "number_observed": 1,
            "objects": objects}


def _bundle() -> dict:
    """Processes 100-707: what each has is what the rules below test."""
    records = [
        _record(1, {  # cmd.exe, child of OUTLOOK.EXE, both with directories
            "0": _process(101, "cmd.exe", "cmd.exe /c whoami", binary_ref="1",
                          parent_ref="3"),
            "1": {"type": "file", "name": "cmd.exe", "parent_directory_ref": "2",
                  "hashes": {"SHA-256": SHA256, "MD5": "d41d8cd98f00b204e9800998ecf8427e"}},
            "2": {"type": "directory", "path": "C:\\Windows\\System32"},
            "3": _process(100, "OUTLOOK.EXE", binary_ref="4"),
            "4": {"type": "file", "name": "OUTLOOK.EXE", "parent_directory_ref": "5"},
            "5": {"type": "directory", "path": "C:\\Program Files\\Microsoft Office"},
        }),
        _record(2, {"0": _process(202, "WMIC.exe", "wmic logicaldisk get caption")}),
        _record(3, {  # a binary name without a directory
            "0": _process(303, None, "Evil.exe -enc SQBFAFgA", binary_ref="1"),
            "1": {"type": "file", "name": "Evil.EXE"},
        }),
        _record(4, {
            "0": _process(404, "notepad.exe", "notepad.exe C:\\x\\a*b.txt", binary_ref="1"),
            "1": {"type": "file", "name": "notepad.exe", "parent_directory_ref": "2"},
            "2": {"type": "directory", "path": "C:\\Users\\Bob\\AppData\\Local\\Temp"},
        }),
        _record(5, {
            "0": _process(505, "powershell.exe", "POWERSHELL -ExecutionPolicy Bypass",
                          binary_ref="1", creator_user_ref="3"),
            "1": {"type": "file", "name": "powershell.exe", "parent_directory_ref": "2"},
            "2": {"type": "directory", "path": "C:\\Windows\\System32\\WindowsPowerShell"},
            "3": {"type": "user-account", "user_id": "NT AUTHORITY\\SYSTEM"},
        }),
        _record(6, {  # rundll32 opening a connection to 10.1.2.3:443
            "0": _process(606, binary_ref="1", opened_connection_refs=["3"]),
            "1": {"type": "file", "name": "rundll32.exe", "parent_directory_ref": "2"},
            "2": {"type": "directory", "path": "C:\\Windows\\System32"},
            "3": {"type": "network-traffic", "src_ref": "4", "dst_ref": "5", "src_port": 50000,
                  "dst_port": 443, "protocols": ["tcp"]},
            "4": {"type": "ipv4-addr", "value": "192.168.1.5"},
            "5": {"type": "ipv4-addr", "value": "10.1.2.3"},
        }),
        _record(7, {  # chrome asking 8.8.8.8 on port 53
            "0": _process(707, binary_ref="1", opened_connection_refs=["3"]),
            "1": {"type": "file", "name": "chrome.exe", "parent_directory_ref": "2"},
            "2": {"type": "directory", "path": "C:\\Program Files\\Google"},
            "3": {"type": "network-traffic", "src_ref": "4", "dst_ref": "5", "src_port": 50001,
                  "dst_port": 53, "protocols": ["udp"]},
            "4": {"type": "ipv4-addr", "value": "192.168.1.5"},
            "5": {"type": "ipv4-addr", "value": "8.8.8.8"},
        }),
    ]
    identity = {"type": "identity", "id": "identity--" + str(uuid.UUID(int=99)),
                "name": "test", "identity_class": "individual",
                "created": "2021-06-01T00:00:00.000Z", "modified": "2021-06-01T00:00:00.000Z"}
    for record in records:
        record["created_by_ref"] = identity["id"]
    return {"type": "bundle", "id": f"bundle--{uuid.UUID(int=1)}", "spec_version": "2.0",
            "objects": [identity, *records]}


ALL = {100, 101, 202, 303, 404, 505, 606, 707}


def rule(detection: str, category="process_creation", product="windows", level="medium",
         title="test rule") -> str:
    return textwrap.dedent(f"""\
        title: {title}
        id: {uuid.uuid4()}
        status: test
        author: Kestrel tests
        level: {level}
        tags:
            - attack.execution
            - attack.t1059
        logsource:
            category: {category}
            product: {product}
        detection:
        """) + textwrap.indent(textwrap.dedent(detection), "    ")


# (detection, processes it matches): each answer read off _bundle by hand
CASES = {
    "endswith_image": ("sel:\n  Image|endswith: '\\cmd.exe'\ncondition: sel", {101}),
    "image_from_name_only": ("sel:\n  Image|endswith: '\\wmic.exe'\ncondition: sel", {202}),
    "startswith_needs_a_directory":
        ("sel:\n  Image|startswith: 'C:\\'\ncondition: sel", {100, 101, 404, 505, 606, 707}),
    "whole_image_without_directory": ("sel:\n  Image: '\\evil.exe'\ncondition: sel", {303}),
    "directory_in_the_middle": ("sel:\n  Image|contains: '\\temp\\'\ncondition: sel", {404}),
    "directory_and_name": (
        "sel:\n  Image|endswith: '\\System32\\cmd.exe'\ncondition: sel", {101}),
    "wildcard_across_the_separator": (
        "sel:\n  Image: 'C:\\Windows*32.exe'\ncondition: sel", {606}),
    "cased_differs": ("sel:\n  Image|endswith|cased: '\\CMD.exe'\ncondition: sel", set()),
    "cased_same": ("sel:\n  Image|endswith|cased: '\\cmd.exe'\ncondition: sel", {101}),
    "escaped_star": ("sel:\n  CommandLine|endswith: 'a\\*b.txt'\ncondition: sel", {404}),
    "question_mark": (
        "sel:\n  CommandLine: 'wmic logicaldisk get ca?tion'\ncondition: sel", {202}),
    "list_is_or": (
        "sel:\n  Image|endswith:\n    - '\\cmd.exe'\n    - '\\notepad.exe'\ncondition: sel",
        {101, 404}),
    "all_modifier": (
        "sel:\n  CommandLine|contains|all:\n    - 'wmic'\n    - 'caption'\ncondition: sel",
        {202}),
    "not_on_an_absent_field": (
        "sel:\n  Image|endswith: '.exe'\nfilter:\n  OriginalFileName: 'cmd.exe'\n"
        "condition: sel and not filter", ALL),
    "not_holds_where_the_field_is_absent": (
        "sel:\n  Image|endswith: '.exe'\nfilter:\n  CommandLine|contains: 'whoami'\n"
        "condition: sel and not filter", ALL - {101}),
    "absent_field_never_matches": ("sel:\n  Description: 'anything'\ncondition: sel", set()),
    "null_is_absent": ("sel:\n  CommandLine: null\ncondition: sel", {100, 606, 707}),
    "regex_is_case_sensitive": ("sel:\n  CommandLine|re: 'bypass$'\ncondition: sel", set()),
    "regex_flag_i": ("sel:\n  CommandLine|re|i: 'bypass$'\ncondition: sel", {505}),
    "regex_searches": ("sel:\n  CommandLine|re: 'Bypass$'\ncondition: sel", {505}),
    "windash": ("sel:\n  CommandLine|windash|contains: '/enc '\ncondition: sel", {303}),
    "wide_base64offset": (
        "sel:\n  CommandLine|wide|base64offset|contains: 'IEX'\ncondition: sel", {303}),
    "user": ("sel:\n  User|contains: 'AUTHORI'\ncondition: sel", {505}),
    "parent_image": ("sel:\n  ParentImage|endswith: '\\outlook.exe'\ncondition: sel", {101}),
    "hashes": (f"sel:\n  Hashes|contains: 'SHA256={SHA256.lower()}'\ncondition: sel", {101}),
    "imphash_is_absent": ("sel:\n  Hashes|contains: 'IMPHASH=ABCDEF'\ncondition: sel", set()),
    "number": ("sel:\n  ProcessId: 202\ncondition: sel", {202}),
    "greater_than": ("sel:\n  ProcessId|gt: 600\ncondition: sel", {606, 707}),
    "exists": ("sel:\n  CommandLine|exists: false\ncondition: sel", {100, 606, 707}),
    "one_of": (
        "sel_a:\n  ProcessId: 101\nsel_b:\n  ProcessId: 202\ncondition: 1 of sel_*",
        {101, 202}),
    "all_of_them": (
        "sel_a:\n  Image|endswith: '.exe'\nsel_b:\n  CommandLine|contains: 'wmic'\n"
        "condition: all of them", {202}),
}


@pytest.fixture(scope="module")
def hunt(module_store_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sigma")
    bundle = folder / "bundle.json"
    bundle.write_text(json.dumps(_bundle()))
    rules = folder / "rules"
    rules.mkdir()
    for name, (detection, _) in CASES.items():
        (rules / f"{name}.yml").write_text(rule(detection, title=name))
    with Session(session_id=f"sigma_{uuid.uuid4().hex[:12]}",
                 store_path=module_store_url) as session:
        session.execute(f"procs = GET process FROM file://{bundle}")
        yield session, folder


def _pids(session, name) -> set:
    return {row["pid"] for row in session.get_variable(name)}


@pytest.mark.parametrize("name", CASES)
def test_rule_on_a_variable(hunt, name):
    session, folder = hunt
    session.execute(f"hits = procs WHERE SIGMA '{folder / 'rules' / name}.yml'")
    assert _pids(session, "hits") == CASES[name][1]


@pytest.mark.parametrize("name", ["endswith_image", "not_holds_where_the_field_is_absent",
                                  "parent_image", "hashes", "null_is_absent"])
def test_rule_in_a_get_from_the_bundle(hunt, name):
    session, folder = hunt
    session.execute(f"hits = GET process FROM file://{folder / 'bundle.json'} "
                    f"WHERE SIGMA '{folder / 'rules' / name}.yml'")
    assert _pids(session, "hits") == CASES[name][1]


def test_a_folder_matches_what_any_rule_matches_and_labels_each_entity(hunt):
    session, folder = hunt
    results = session.execute(f"hits = procs WHERE SIGMA '{folder / 'rules'}'")
    expected = set().union(*(pids for _, pids in CASES.values()))
    assert _pids(session, "hits") == expected
    fired = {name for name, (_, pids) in CASES.items() if pids}
    tables = [r for r in results if getattr(r, "title", "").endswith("Sigma rules")]
    assert tables[0].title == (f"{len(expected)} process entities matched {len(fired)} of "
                               f"{len(CASES)} Sigma rules")
    frame = tables[0].dataframe
    assert set(frame["rule"]) == fired
    assert set(frame["author"]) == {"Kestrel tests"}
    assert set(frame["ATT&CK"]) == {"execution, T1059"}
    titles = {}
    for path in (folder / "rules").iterdir():
        titles[path.read_text().split("\nid: ")[1].split("\n")[0]] = path.stem
    for row in session.get_variable("hits"):
        labelled = {titles[i] for i in json.loads(row["x_sigma_rules"])}
        assert labelled == {n for n, (_, pids) in CASES.items() if row["pid"] in pids}
        assert row["x_sigma_level"] == "medium"


def test_sigma_with_other_conditions(hunt):
    session, folder = hunt
    path = folder / "rules" / "startswith_needs_a_directory.yml"
    session.execute(f"hits = procs WHERE SIGMA '{path}' AND pid > 500")
    assert _pids(session, "hits") == {505, 606, 707}
    session.execute(f"hits = procs WHERE pid = 202 OR (SIGMA '{path}' AND pid < 101)")
    assert _pids(session, "hits") == {100, 202}


NAMED = {100, 101, 202, 404, 505}  # the processes with a name of their own


@pytest.mark.parametrize("source", ["procs", "bundle"])
def test_a_negated_match_beside_rules_is_false_where_the_value_is_absent(hunt, source):
    """Beside Sigma rules, a hand-written NOT MATCHES reads the values matched before the
    statement, as the rules do: where the attribute is absent it is false, as a STIX
    comparison on a missing property is, whether some value matches (^cmd) or none."""
    session, folder = hunt
    where = f"SIGMA '{folder / 'rules' / 'startswith_needs_a_directory.yml'}'"
    get = ("hits = procs WHERE" if source == "procs"
           else f"hits = GET process FROM file://{folder / 'bundle.json'} WHERE")
    rule_pids = CASES["startswith_needs_a_directory"][1]
    for pattern, excluded in (("^nothing matches this$", set()), ("^cmd", {101})):
        session.execute(f"{get} {where} AND name NOT MATCHES '{pattern}'")
        assert _pids(session, "hits") == (rule_pids & NAMED) - excluded, pattern


def test_explain_shows_the_condition_each_rule_became(hunt):
    session, folder = hunt
    session.execute(f"hits = procs WHERE SIGMA '{folder / 'rules' / 'endswith_image.yml'}'")
    text = session.execute("EXPLAIN hits")[0].to_text()
    assert "1 Sigma rule, with the condition it became:" in text
    assert ("endswith_image.yml): binary_ref.name MATCHES '(?is)\\\\Acmd\\\\.exe\\\\Z' OR "
            "binary_ref.name IS NULL AND name MATCHES '(?is)\\\\Acmd\\\\.exe\\\\Z'") in text
    session.execute(f"hits = procs WHERE SIGMA '{folder / 'rules' / 'absent_field_never_matches.yml'}'")
    assert "never true  [absent from STIX: Description]" in \
        session.execute("EXPLAIN hits")[0].to_text()


def test_rank_with_apply(hunt, tmp_path):
    session, folder = hunt
    rules = tmp_path / "rank"
    rules.mkdir()
    (rules / "high.yml").write_text(rule("sel:\n  ProcessId: 101\ncondition: sel", level="high"))
    (rules / "low.yml").write_text(rule("sel:\n  Image|endswith: '.exe'\ncondition: sel",
                                        level="low"))
    (rules / "critical.yml").write_text(rule("sel:\n  ProcessId: 606\ncondition: sel",
                                             level="critical"))
    session.execute("ranked = procs")
    out = session.execute(f"APPLY python://sigma ON ranked WITH rules='{rules}'")
    assert "ranked: x_sigma_rules, x_sigma_level, x_sigma_score written" in out[-1].to_text()
    session.execute("top = SORT ranked BY x_sigma_score DESC")
    rows = session.get_variable("top")
    scores = {row["pid"]: row["x_sigma_score"] for row in rows}
    # low 2, high 8, critical 16: each process has an image ending in .exe
    assert scores == {606: 18, 101: 10, 100: 2, 202: 2, 303: 2, 404: 2, 505: 2, 707: 2}
    assert rows[0]["pid"] == 606 and rows[0]["x_sigma_level"] == "critical"
    assert {row["x_sigma_level"] for row in rows if row["pid"] == 101} == {"high"}


def test_network_rules_ask_about_the_process_that_opened_the_traffic(hunt, tmp_path):
    session, folder = hunt
    bundle = folder / "bundle.json"
    cases = {
        "sel:\n  DestinationIp|cidr: '10.0.0.0/8'\ncondition: sel": {443},
        "sel:\n  Image|endswith: '\\rundll32.exe'\n  DestinationIp|cidr: '10.0.0.0/8'\n"
        "condition: sel": {443},
        "sel:\n  Image|endswith: '\\chrome.exe'\n  DestinationIp|cidr: '10.0.0.0/8'\n"
        "condition: sel": set(),
        "sel:\n  DestinationPort: 53\n  Protocol: udp\ncondition: sel": {53},
        "sel:\n  DestinationPort: 53\nfilter:\n  Image|endswith: '\\chrome.exe'\n"
        "condition: sel and not filter": set(),
    }
    session.execute(f"conns = GET network-traffic FROM file://{bundle}")
    for i, (detection, ports) in enumerate(cases.items()):
        path = tmp_path / f"net{i}.yml"
        path.write_text(rule(detection, category="network_connection"))
        session.execute(f"hits = GET network-traffic FROM file://{bundle} WHERE SIGMA '{path}'")
        assert {r["dst_port"] for r in session.get_variable("hits")} == ports, detection
        session.execute(f"hits = conns WHERE SIGMA '{path}'")
        assert {r["dst_port"] for r in session.get_variable("hits")} == ports, detection


def test_linux_images_join_with_a_slash(hunt, tmp_path):
    session, folder = hunt
    for image, pids in (("/cmd.exe", {101}), ("\\cmd.exe", set())):
        path = tmp_path / "linux.yml"
        path.write_text(rule(f"sel:\n  Image|endswith: '{image}'\ncondition: sel",
                             product="linux"))
        session.execute(f"hits = procs WHERE SIGMA '{path}'")
        assert _pids(session, "hits") == pids, image


# ------------------------------------------------------------------ bad rules


def _error(session, statement) -> KestrelError:
    with pytest.raises(KestrelError) as caught:
        session.execute(statement)
    return caught.value


def test_a_missing_path_is_an_error_at_the_clause(hunt):
    session, _ = hunt
    error = _error(session, "hits = procs WHERE SIGMA 'no/such/rules'")
    assert isinstance(error, SigmaRuleError)
    assert error.message == "no Sigma rule at no/such/rules: no such file or folder"
    assert (error.line, error.column) == (1, 20)


def test_yaml_errors_name_the_file_and_line(hunt, tmp_path):
    session, _ = hunt
    path = tmp_path / "broken.yml"
    path.write_text("title: broken\ndetection:\n  sel: [\n")
    error = _error(session, f"hits = procs WHERE SIGMA '{path}'")
    assert error.message.startswith("Sigma rule broken.yml: line 4, column 1: not valid YAML")


def test_sigma_errors_name_the_file(hunt, tmp_path):
    session, _ = hunt
    path = tmp_path / "nodetection.yml"
    path.write_text("title: no detection\nlogsource:\n  category: process_creation\n")
    error = _error(session, f"hits = procs WHERE SIGMA '{path}'")
    assert error.message.startswith("Sigma rule nodetection.yml: ")
    assert "detection" in error.message.lower()


def test_not_applicable_rules_are_refused_with_the_reason(hunt, tmp_path):
    session, _ = hunt
    reasons = {
        "keywords:\n  - evil\ncondition: keywords": "searches keywords in whole events",
        "sel:\n  CommandLine|fieldref: Image\ncondition: sel": "|fieldref compares two fields",
        "sel:\n  Image|re: 'evil'\ncondition: sel": "an image path",
        "sel:\n  CommandLine|expand: '%admin_users%'\ncondition: sel": "placeholder %admin_users%",
    }
    for i, (detection, reason) in enumerate(reasons.items()):
        path = tmp_path / f"na{i}.yml"
        path.write_text(rule(detection, title=f"rule {i}"))
        error = _error(session, f"hits = procs WHERE SIGMA '{path}'")
        assert "not applicable" in error.message and reason in error.message, error.message
    path = tmp_path / "file_event.yml"
    path.write_text(rule("sel:\n  TargetFilename: x\ncondition: sel", category="file_event"))
    error = _error(session, f"hits = procs WHERE SIGMA '{path}'")
    assert "its log source (file_event) has no Kestrel entity type" in error.message


def test_a_regular_expression_only_backtracking_runs_is_an_error(hunt, tmp_path):
    """pySigma checks `|re` with RE2, the engine Kestrel matches with (kestrel/regex.py)."""
    session, _ = hunt
    path = tmp_path / "lookahead.yml"
    path.write_text(rule("sel:\n  CommandLine|re: 'a(?=b)'\ncondition: sel"))
    error = _error(session, f"hits = procs WHERE SIGMA '{path}'")
    assert error.message.startswith("Sigma rule lookahead.yml: Regular expression 'a(?=b)' is "
                                    "invalid")


def test_a_rule_for_another_entity_type_is_an_error_with_a_hint(hunt, tmp_path):
    session, _ = hunt
    path = tmp_path / "net.yml"
    path.write_text(rule("sel:\n  DestinationPort: 53\ncondition: sel",
                         category="network_connection", title="DNS"))
    error = _error(session, f"hits = procs WHERE SIGMA '{path}'")
    assert error.message == ("DNS (net.yml) is a network_connection rule: it describes "
                             "network-traffic entities, not process")
    assert error.hint == f"GET network-traffic ... WHERE SIGMA '{path}'"


def test_a_folder_runs_the_good_rules_and_lists_the_others_once(hunt, tmp_path):
    session, _ = hunt
    (tmp_path / "good.yml").write_text(rule("sel:\n  ProcessId: 202\ncondition: sel"))
    (tmp_path / "broken.yml").write_text("title: [\n")
    (tmp_path / "keywords.yml").write_text(rule("keywords:\n  - evil\ncondition: keywords",
                                                title="kw"))
    (tmp_path / "net.yml").write_text(rule("sel:\n  DestinationPort: 53\ncondition: sel",
                                           category="network_connection"))
    results = session.execute(f"hits = procs WHERE SIGMA '{tmp_path}'")
    assert _pids(session, "hits") == {202}
    lines = next(r for r in results if getattr(r, "title", "") == "Sigma rules not run").lines
    assert len(lines) == 3
    assert lines[0].startswith("broken.yml: line 2, column 1: not valid YAML")
    assert lines[1].startswith("kw (keywords.yml): not applicable")
    assert lines[2] == "1 rules describe network-traffic entities: run them in a GET " \
                       "network-traffic"


def test_a_failed_sigma_statement_keeps_the_session_data(hunt):
    session, folder = hunt
    session.execute(f"kept = procs WHERE SIGMA '{folder / 'rules' / 'number.yml'}'")
    _error(session, "kept = procs WHERE SIGMA 'missing.yml'")
    assert _pids(session, "kept") == {202}
    assert _pids(session, "procs") == ALL


def test_rules_are_completed_in_sigma_quotes(tmp_path):
    from kestrel.completion import complete

    (tmp_path / "a_rule.yml").write_text("")
    (tmp_path / "notes.txt").write_text("")
    (tmp_path / "more").mkdir()
    code = f"x = procs WHERE SIGMA '{tmp_path}/"
    found = complete(code, None, context=None)
    assert found.matches == [f"{tmp_path}/a_rule.yml", f"{tmp_path}/more/"]
    assert found.cursor_start == code.index("'") + 1


def test_an_empty_path_and_group_rows_are_refused(hunt):
    session, folder = hunt
    error = _error(session, "hits = procs WHERE SIGMA ''")
    assert error.message == "SIGMA needs a rule file or a folder of rules, not ''"
    session.execute("g = GROUP procs BY name")
    error = _error(session, f"hits = g WHERE SIGMA '{folder / 'rules' / 'number.yml'}'")
    assert error.message == "SIGMA matches entities: g holds GROUP rows"


def test_a_folder_with_a_link_loop_is_read_once(hunt, tmp_path):
    session, _ = hunt
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "r.yml").write_text(rule("sel:\n  ProcessId: 202\ncondition: sel"))
    (tmp_path / "sub" / "loop").symlink_to(tmp_path, target_is_directory=True)
    results = session.execute(f"hits = procs WHERE SIGMA '{tmp_path}'")
    assert _pids(session, "hits") == {202}
    assert any(getattr(r, "title", "").endswith("matched 1 of 1 Sigma rule") for r in results)
