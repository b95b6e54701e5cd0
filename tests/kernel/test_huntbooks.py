"""Every huntbook in examples/huntbooks runs headless (nbclient, the real kernel) without
errors, and its tables hold what the bundle says, computed here with plain json."""

import base64
import collections
import json
import pathlib
import re
from datetime import datetime, timedelta

import nbformat
import pytest
from nbclient import NotebookClient

from figdata import graph_of, traces
from identities import entities

BOOKS = pathlib.Path(__file__).resolve().parents[2] / "examples" / "huntbooks"
DATA_IN_BOOKS = "../../../shared/data/"  # how the huntbooks name the shared data folder


# ------------------------------------------------------------ the bundle, read independently


@pytest.fixture(scope="module")
def observations(bundle):
    return [o for o in json.loads(bundle.read_text())["objects"] if o["type"] == "observed-data"]


def processes(observations, where=lambda obs, proc: True):
    return [(o, p) for o in observations for p in o["objects"].values()
            if p["type"] == "process" and where(o, p)]


def when(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def rows_of(pairs):
    """DISP rows of (name, pid): distinct, a missing name shown empty."""
    return {(p.get("name") or "", str(p.get("pid"))) for _, p in pairs}


# ------------------------------------------------------------ running a huntbook


@pytest.fixture(scope="module")
def run_book(kernel_spec, shared_data):
    def run(name):
        nb = nbformat.read(BOOKS / name, as_version=4)
        if (BOOKS / DATA_IN_BOOKS).resolve() != shared_data.resolve():  # KESTREL_SHARED_DATA
            for cell in nb.cells:
                cell.source = cell.source.replace(DATA_IN_BOOKS, f"{shared_data}/")
        NotebookClient(nb, timeout=120, kernel_name="kestrel",
                       resources={"metadata": {"path": str(BOOKS)}}).execute()
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                assert output["output_type"] == "display_data", (cell.id, output)
        return {cell.id: cell.get("outputs", []) for cell in nb.cells}
    return run


def tables(outputs):
    """Rows of the DISP tables in a cell's outputs."""
    return [_rows(o["data"]["text/html"]) for o in outputs
            if "kestrel-table" in o["data"]["text/html"]]


def summary(outputs):
    """{variable: (type, entities, occurrences, records)} from the cell's summary table
    (occurrences and records None for GROUP results)."""
    (html,) = [o["data"]["text/html"] for o in outputs
               if "class='kestrel-summary'" in o["data"]["text/html"]]
    return {r[0]: (r[1], int(r[2]), *(int(n) if n else None for n in r[3:5]))
            for r in _rows(html)}


def _rows(html):
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [tuple(re.findall(r"<td>(.*?)</td>", row))
            for row in re.findall(r"<tr.*?</tr>", body, re.S)]


def texts(outputs):
    return "\n".join(o["data"]["text/plain"] for o in outputs)


# ------------------------------------------------------------ tests


@pytest.mark.parametrize("path", sorted(BOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "kestrel"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.id
    assert any(DATA_IN_BOOKS in c.source for c in nb.cells if c.cell_type == "code")


def test_quickstart(run_book, observations):
    out = run_book("quickstart.ipynb")
    procs = processes(observations)
    records = len({o["id"] for o, _ in procs})
    assert summary(out["get-procs"]) == {
        "procs": ("process", len(entities(procs)), len(procs), records)}

    (shown,) = tables(out["disp-procs"])
    by_pid = sorted(rows_of(procs), key=lambda r: int(r[1]) if r[1] != "None" else 1 << 62)
    assert [pid for _, pid in shown] == [pid for _, pid in by_pid[:5]]
    assert set(shown) <= rows_of(procs)

    info = texts(out["info-procs"])
    assert f"entities: {len(entities(procs))}\n  occurrences: {len(procs)}" in info
    assert f"records: {records}" in info

    counts = collections.Counter(p.get("name") for _, p in procs if p.get("pid") is not None)
    (groups,) = tables(out["group-names"])
    assert len(groups) == 10
    assert [(name, int(n)) for name, n in groups] == sorted(
        [(name, counts[name]) for name, _ in groups], key=lambda r: -r[1])
    assert int(groups[0][1]) == max(counts.values())
    groups_in_all = len({p.get("name") for _, p in procs})
    assert summary(out["group-names"])["names"] == ("process (grouped)", groups_in_all, None,
                                                    None)


def test_process_tree(run_book, observations):
    out = run_book("process_tree.ipynb")
    shells = processes(observations, lambda o, p: p.get("name") in ("cmd.exe", "powershell.exe"))
    assert set(tables(out["get-shells"])[0]) == rows_of(shells)

    parents = [(o, o["objects"][p["parent_ref"]]) for o, p in shells if "parent_ref" in p]
    assert set(tables(out["find-parents"])[0]) == rows_of(parents)
    assert summary(out["find-parents"])["parents"][2] == len(parents)

    children = [(o, c) for o, parent in parents for c in o["objects"].values()
                if c["type"] == "process"
                and o["objects"].get(c.get("parent_ref", ""), {}) is parent]
    assert set(tables(out["find-children"])[0]) == rows_of(children)

    svchost = processes(observations, lambda o, p: p.get("name") == "svchost.exe")
    traffic = [o["objects"][ref] for o, p in svchost for ref in p.get("opened_connection_refs", [])]
    ports = {(str(t.get("src_port")), str(t.get("dst_port"))) for t in traffic}
    (conns,) = tables(out["find-conns"])
    assert len(conns) == 5 and set(conns) <= ports
    html = out["find-conns"][0]["data"]["text/html"]
    footer = re.search(r"kestrel-footer'>(.*?)<", html).group(1)
    assert footer.startswith(f"showing rows 1-5 of {len(ports)} ")
    assert summary(out["find-conns"])["conns"][0] == "network-traffic"

    owners = {o["objects"][p["creator_user_ref"]]["user_id"]
              for o, p in shells if "creator_user_ref" in p}
    assert {r[0] for r in tables(out["find-users"])[0]} == owners


def test_references_and_time(run_book, observations):
    out = run_book("references_and_time.ipynb")
    start, stop = when("2019-11-16T12:55:00Z"), when("2019-11-16T13:00:00Z")
    procs = processes(observations, lambda o, p: p.get("name") == "svchost.exe"
                      and start <= when(o["first_observed"]) < stop)
    assert set(tables(out["get-window"])[0]) == rows_of(procs)
    assert summary(out["get-window"])["procs"][2] == len(procs)

    pids = {p["pid"] for _, p in procs}
    day = (when("2019-11-16T12:00:00Z"), when("2019-11-16T14:00:00Z"))
    same_pid = processes(observations, lambda o, p: p.get("pid") in pids
                         and day[0] <= when(o["first_observed"]) < day[1])
    assert set(tables(out["ref-window"])[0]) == rows_of(same_pid)
    assert summary(out["ref-window"])["same_pid"][2] == len(same_pid)

    # the inferred window: procs' observations widened by 5 minutes each side (defaults.yaml)
    low = min(when(o["first_observed"]) for o, _ in procs) - timedelta(seconds=300)
    high = max(when(o["last_observed"]) for o, _ in procs) + timedelta(seconds=300)
    nearby = processes(observations, lambda o, p: p.get("pid") in pids
                       and low <= when(o["first_observed"]) < high)
    assert summary(out["ref-inferred"])["nearby"][2] == len(nearby)
    assert f"occurrences: {len(nearby)}" in texts(out["ref-inferred"])

    assert summary(out["last-minutes"])["recent"][1:] == (0, 0, 0)
    assert "recent is empty" in texts(out["last-minutes"])

    cmd = processes(observations, lambda o, p: p.get("name") == "cmd.exe")
    assert summary(out["last-days"])["shells"][2] == len(cmd)
    assert set(tables(out["last-days"])[0]) == rows_of(cmd)


# ------------------------------------------------------------ analytics.ipynb: figures' data

PLOTLY = "application/vnd.plotly.v1+json"


def figure(outputs):
    """The one plotly figure of a cell (the kernel's plotly MIME bundle), checking that
    it comes with its HTML and text fallbacks."""
    (shown,) = [o["data"] for o in outputs if PLOTLY in o["data"]]
    assert "plotly" in shown["text/html"].lower() and shown["text/plain"]
    return shown[PLOTLY]


def test_analytics(run_book, observations):
    out = run_book("analytics.ipynb")
    shell = lambda o, p: p.get("name") in ("cmd.exe", "powershell.exe")  # noqa: E731
    shells = processes(observations, shell)
    parents = [(o, o["objects"][p["parent_ref"]]) for o, p in shells if "parent_ref" in p]
    assert summary(out["get-procs"])["procs"][2] == len(shells)

    # process tree: a node per (pid, name), an edge per parent_ref, command lines on hover
    def ident(p):
        return (p.get("pid"), p.get("name"))

    expected_lines = collections.defaultdict(set)
    for _, p in shells + parents:
        if p.get("command_line"):
            expected_lines[ident(p)].add(p["command_line"])
    nodes, edges, where = graph_of(figure(out["tree"]))
    drawn = {key: (data[0], data[1]) for key, (_, data) in nodes.items()}
    assert set(drawn.values()) == {ident(p) for _, p in shells + parents}
    assert {(drawn[a], drawn[b]) for a, b in edges} == {
        (ident(o["objects"][p["parent_ref"]]), ident(p)) for o, p in shells if "parent_ref" in p}
    for key, (group, data) in nodes.items():
        assert set(data[2]) == expected_lines[drawn[key]]
        in_procs = drawn[key] in {ident(p) for _, p in shells}
        assert (group == "procs") == in_procs and (data[3] == ["procs"]) == in_procs
    assert all(where[a][1] > where[b][1] for a, b in edges)  # parents above children
    assert "WD Discovery.exe (6164)" in texts(out["tree"])

    # timeline: a point per (process, record) at the record's first_observed
    fig = figure(out["timeline"])
    points = collections.Counter(
        (t["meta"]["variable"], y, when(x.replace(" ", "T") + "Z"))
        for t in traces(fig, "points") for x, y in zip(t["x"], t["y"]))
    wanted = collections.Counter(
        [("procs", f"{p['name']} ({p['pid']})", when(o["first_observed"])) for o, p in shells]
        + [("parents", f"{p['name']} ({p['pid']})" if p.get("name") else f"? ({p['pid']})",
            when(o["first_observed"])) for o, p in parents])
    assert points == wanted
    assert fig["layout"]["xaxis"]["type"] == "date"

    # suspicious command lines: tagged with our two patterns, written back, filtered by GET
    def tags(line):
        line = (line or "").lower()
        found = ["wmic"] if "wmic" in line else []
        at = line.find("regsvr32")
        if at >= 0 and ("http://" in line[at:] or "https://" in line[at:]):
            found.append("regsvr32.*https?://")
        return ", ".join(found)

    flagged = [(o, p) for o, p in shells if tags(p.get("command_line"))]
    assert summary(out["suspicious"])["flagged"][2] == len(flagged)
    shown, rows = tables(out["suspicious"])  # the analytics' table, then DISP's
    assert {r[4] for r in shown} == {tags(p["command_line"]) for _, p in flagged}
    assert set(rows) == {(p["name"], str(p["pid"]), tags(p["command_line"])) for _, p in flagged}
    assert "x_suspicious_score, x_suspicious_patterns written to" in texts(out["suspicious"])

    # ip_class on HTTPS connections: each row's classes, computed here without ipaddress
    def klass(address):
        a, b = (int(x) for x in address.split(".")[:2])
        if a == 127:
            return "loopback"
        if a == 10 or (a, b) == (192, 168) or (a == 172 and 16 <= b <= 31):
            return "private"
        return "public"

    conns = [(o, o["objects"][k]) for o in observations for k, t in o["objects"].items()
             if t["type"] == "network-traffic" and t.get("dst_port") == 443]
    expected = {(o["objects"][t["src_ref"]]["value"], o["objects"][t["dst_ref"]]["value"])
                for o, t in conns}
    classes, rows = tables(out["ip-class"])
    assert {(s, d) for s, d, _, _ in rows} == expected
    assert all((sc, dc) == (klass(s), klass(d)) for s, d, sc, dc in rows)
    counted = collections.Counter(
        [("x_src_ip_class", klass(o["objects"][t["src_ref"]]["value"])) for o, t in conns]
        + [("x_dst_ip_class", klass(o["objects"][t["dst_ref"]]["value"])) for o, t in conns])
    assert {(a, c, int(n)) for _, a, c, n in classes} == {
        (a, c, n) for (a, c), n in counted.items()}
    public = [t for o, t in conns if klass(o["objects"][t["dst_ref"]]["value"]) == "public"]
    assert summary(out["ip-class"])["public"][2] == len(public)

    # the huntflow graph: the statements of this book, read back from the figure
    source = f"{DATA_IN_BOOKS}doctored-1k.json"
    nodes, edges, where = graph_of(figure(out["huntflow"]))
    label = {key: data[1] if data[0] == "variable" else "source"
             for key, (_, data) in nodes.items()}
    assert sorted(label.values()) == ["conns", "flagged", "parents", "procs", "public", "source"]
    (src,) = [k for k, v in label.items() if v == "source"]
    assert nodes[src][1][1].endswith("doctored-1k.json")
    assert {(label[a], label[b]) for a, b in edges} == {
        ("source", "procs"), ("procs", "parents"), ("procs", "flagged"),
        ("source", "conns"), ("conns", "public")}
    assert all(where[a][0] < where[b][0] for a, b in edges)  # drawn left to right
    commands = {label[k]: nodes[k][1][3] for k in nodes if label[k] != "source"}
    assert commands == {"procs": "get", "parents": "find", "flagged": "get", "conns": "get",
                        "public": "get"}
    arrows = [a for a in figure(out["huntflow"])["layout"]["annotations"] if a["showarrow"]]
    assert len(arrows) == len(edges)
    assert source.split("/")[-1] in texts(out["huntflow"])

    nodes, edges, _ = graph_of(figure(out["lineage"]))
    names = {nodes[k][1][1] if nodes[k][1][0] == "variable" else "source" for k in nodes}
    assert names == {"source", "procs", "flagged"}
    assert len(edges) == 2


# ------------------------------------------------------------ log4shell.ipynb

INNERMOST = re.compile(r"\$\{([^${}]*)\}")
DEFAULT_PORTS = {"ldap": 389}
# The operators of the attackers' and servers' networks, as they publish them
OPERATORS = {"157.245.": "digitalocean", "165.22.": "digitalocean", "143.198.": "digitalocean",
             "167.99.": "digitalocean", "157.90.": "hetzner", "162.55.": "hetzner"}


def jndi_names(text):
    """The JNDI names in a log line, by this test's own rules: the innermost ${...} replaced
    again and again (lower:, upper:, a :- default), JNDI lookups set aside."""
    kept = []

    def resolve(match):
        head, _, tail = match.group(1).partition(":")
        if head.lower() == "jndi":
            kept.append(tail)
            return f"\x00{len(kept) - 1}\x00"
        if head.lower() in ("lower", "upper"):
            return getattr(tail, head.lower())()
        return match.group(1).split(":-", 1)[1] if ":-" in match.group(1) else "?"

    while INNERMOST.search(text):
        text = INNERMOST.sub(resolve, text)
    return list(dict.fromkeys(kept[int(i)] for i in re.findall(r"\x00(\d+)\x00", text)))


def test_log4shell(run_book, shared_data):
    out = run_book("log4shell.ipynb")
    objects = json.loads((shared_data / "log4shell_bundle.json").read_text())["objects"]
    observed = [o for o in objects if o["type"] == "observed-data"]

    def of_type(o, kind):
        return [s for s in o["objects"].values() if s["type"] == kind]

    count = len(observed)  # one event and one artifact each
    assert summary(out["get-events"]) == {"events": ("x-oca-event", count, count, count),
                                          "payloads": ("artifact", count, count, count)}

    # detection: every payload decoded here, the same lookups and callbacks
    lines = {o["id"]: base64.b64decode(of_type(o, "artifact")[0]["payload_bin"]).decode()
             for o in observed}
    names = {k: jndi_names(line) for k, line in lines.items()}
    assert all(names.values())
    found, shown = tables(out["detect"])
    counted = collections.Counter("\n".join("${jndi:" + name + "}" for name in v)
                                  for v in names.values())
    assert {r[2]: int(r[-1]) for r in found} == counted
    servers = {}
    for name in (name for v in names.values() for name in v):
        scheme, host, port = re.match(r"(\w+)://([^/:]+)(?::(\d+))?", name).groups()
        servers[host.lower()] = f"{scheme}://{host.lower()}:{port or DEFAULT_PORTS[scheme]}"
    assert set(shown) == {(callback, host) for host, callback in servers.items()}
    assert summary(out["detect"])["exploits"][1] == count

    # the attackers: sources of the traffic of the records with an attempt
    sources = collections.Counter(o["objects"][t["src_ref"]]["value"] for o in observed
                                  for t in of_type(o, "network-traffic") if names[o["id"]])
    assert {r[0] for r in tables(out["attackers"])[0]} == set(sources)

    # nothing connected to a callback address; one of them also attacked
    addresses = {h for h in servers if re.fullmatch(r"[\d.]+", h)}
    outbound = [t for o in observed for t in of_type(o, "network-traffic")
                if o["objects"][t["dst_ref"]]["value"] in addresses]
    assert summary(out["callbacks"])["outbound"][1] == len(outbound) == 0
    assert {r[0] for r in tables(out["callbacks"])[0]} == addresses & set(sources)
    assert summary(out["servers"])["servers"][1] == len(addresses)

    # geolocation with the bundled data: the WAF's own country for each client it blocked
    waf = {}
    for line in lines.values():
        if line.startswith("{"):
            request = json.loads(line)["httpRequest"]
            waf[request["clientIp"]] = request["country"]
    assert "GeoLite2 Country and ASN of 2024-06-18" in texts(out["geoip"])
    _, attackers, located = tables(out["geoip"])
    placed = {}
    for value, ip_class, country, organisation in attackers:
        assert ip_class == ("private" if value.startswith("172.31.") else "public")
        placed[value] = country
        if value == "195.54.160.149":
            # RU for the WAF in December 2021; its network has moved since (BlueVPS, placed
            # in IT by the data of 2024): only that it is placed is checked
            assert re.fullmatch(r"[A-Z]{2}", country)
        elif ip_class == "public":
            assert country == waf[value], value
        operator = next((o for p, o in OPERATORS.items() if value.startswith(p)), None)
        assert operator is None or operator in organisation.lower(), value
    assert {r[0] for r in located} == addresses
    for value, country, organisation in located:
        assert re.fullmatch(r"[A-Z]{2}", country) and placed.get(value, country) == country
        operator = next((o for p, o in OPERATORS.items() if value.startswith(p)), None)
        assert operator is None or operator in organisation.lower(), value
        placed[value] = country

    # the map: a pin per placed address and variable, on its country, sized by its records
    fig = figure(out["map"])
    pins = {}
    for trace in traces(fig, "pins"):
        assert trace["meta"]["placement"] == "country"
        for data, location, size in zip(trace["customdata"], trace["locations"],
                                        trace["marker"]["size"]):
            pins[trace["meta"]["variable"], data[0]] = (data[2], data[1], size)
            assert location  # the country's name
    records = collections.Counter(v for o in observed for v in {s["value"] for s in
                                                                 of_type(o, "ipv4-addr")})
    public = {a for a in sources if not a.startswith("172.31.")}
    assert {k: v[:2] for k, v in pins.items()} == {
        **{("attackers", a): (placed[a], records[a]) for a in public},
        **{("servers", a): (placed[a], max(1, records[a])) for a in addresses}}
    sizes = {n: s for _, n, s in pins.values()}
    assert sizes[1] < sizes[2]
    notes = [a["text"] for a in fig["layout"]["annotations"]]
    assert notes[0] == "not placed: 172.31.79.90 (private)"
    assert not traces(fig, "links")


def test_sigma(run_book, observations):
    """The Outlook child and the WMIC disk reconnaissance are found by SigmaHQ's rules, as
    the bundle says (read here with plain json: parent binaries, names, command lines)."""
    out = run_book("sigma.ipynb")

    def binary_name(obs, proc):
        binary = obs["objects"].get(proc.get("binary_ref"), {})
        return (binary.get("name") or proc.get("name") or "").lower()

    outlook_children = {str(p["pid"]) for o, p in processes(observations) if binary_name(
        o, o["objects"].get(p.get("parent_ref"), {"type": "process"})) == "outlook.exe"
        and binary_name(o, p) == "cmd.exe"}
    wmic_disks = {str(p["pid"]) for o, p in processes(observations)
                  if binary_name(o, p) == "wmic.exe" and any(
                      word in (p.get("command_line") or "").lower()
                      for word in (" logicaldisk", " volumename"))}
    assert outlook_children and wmic_disks

    fired, shown = tables(out["hits"])
    titles = {row[0] for row in fired}
    assert {"Suspicious Outlook Child Process",
            "System Disk And Volume Reconnaissance Via Wmic.EXE"} <= titles
    levels = {pid: level for _, pid, level, _ in shown}
    assert {pid for pid in levels} >= outlook_children | wmic_disks
    assert {levels[pid] for pid in outlook_children} == {"high"}

    explained = texts(out["explain"])
    assert "System Disk And Volume Reconnaissance Via Wmic.EXE" in explained
    assert "binary_ref.name MATCHES '(?is)\\\\AWMIC\\\\.exe\\\\Z'" in explained

    (top,) = tables(out["top"])
    name, _, level, score = top[0]
    assert (name, level, score) == ("cmd.exe", "high", "8")
