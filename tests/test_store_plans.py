"""Query plans of every FIND relation and reference path, on SQLite and PostgreSQL.

A FIND over a variable holding 25,000 processes ran for over 20 minutes (issue #25): the
database scanned the whole process table once per process of the variable. Here every
statement the store runs for a FIND, a reference path (WHERE, SORT, GROUP, DISP) or a
summary is recorded as it runs, then explained (EXPLAIN QUERY PLAN / EXPLAIN (FORMAT
JSON)); a full scan of a table nested under a loop over another's rows fails the test.

Data: a generated bundle (benchmarks.generate, with x-oca-events and assets: custom
references, and hosts that tell processes apart), every process in the store and a
variable holding a quarter of them. Two states of the store: as loads leave it
(Store.after_load: reference indexes, statistics), and without either (a store of an
earlier version, or variables from NEW/LOAD), where queries must make their indexes.
"""

import json
import re
import uuid
from collections import defaultdict

import pytest

from benchmarks.generate import write_bundle
from kestrel.session import Session

N = 2000
QUARTER = ("cmd.exe", "powershell.exe")  # 2 of the generator's 8 process names
FEW = 10  # PostgreSQL: loops, or rows per loop, below this make no product of sizes

SETUP = """allp = GET process FROM '{bundle}'
q = GET process FROM allp WHERE name IN ('cmd.exe', 'powershell.exe')
conns = FIND network-traffic CREATED BY q
srcs = FIND ipv4-addr CREATED conns
dsts = FIND ipv4-addr ACCEPTED conns
files = FIND file LOADED BY q
users = FIND user-account OWNED q
events = FIND x-oca-event CONTAINED q
hosts = FIND x-oca-asset LINKED q"""

CASES = {
    "created by: parent_ref, child_refs": "x = FIND process CREATED BY q",
    "created: parent_ref": "x = FIND process CREATED q",
    "created by: opened_connection_refs": "x = FIND network-traffic CREATED BY q",
    "created: opened_connection_refs": "x = FIND process CREATED conns",
    "created: src_ref": "x = FIND ipv4-addr CREATED conns",
    "accepted: dst_ref": "x = FIND ipv4-addr ACCEPTED conns",
    "created by: src_ref": "x = FIND network-traffic CREATED BY srcs",
    "accepted by: dst_ref": "x = FIND network-traffic ACCEPTED BY dsts",
    "loaded by: binary_ref": "x = FIND file LOADED BY q",
    "loaded: binary_ref": "x = FIND process LOADED files",
    "owned: creator_user_ref": "x = FIND user-account OWNED q",
    "owned by: creator_user_ref": "x = FIND process OWNED BY users",
    "linked": "x = FIND ipv4-addr LINKED q",
    "linked in a time range": "x = FIND process LINKED q START 2024-01-01T06:00:00Z "
                              "STOP 2024-01-01T12:00:00Z",
    "contained: custom process_ref": "x = FIND x-oca-event CONTAINED q",
    "contained by: custom process_ref": "x = FIND process CONTAINED BY events",
    "contained by: custom ip_refs list": "x = FIND ipv4-addr CONTAINED BY hosts",
    "contained: custom ip_refs list": "x = FIND x-oca-asset CONTAINED srcs",
    "find where a path": "x = FIND process CREATED BY q WHERE binary_ref.name = 'bash'",
    "find in a time range": "x = FIND process CREATED BY q START 2024-01-01T06:00:00Z "
                            "STOP 2024-01-01T12:00:00Z",
    "where parent_ref": "x = q WHERE parent_ref.name = 'bash'",
    "where creator_user_ref, binary_ref": "x = GET process FROM q WHERE "
                                          "creator_user_ref.user_id = 'root' AND "
                                          "binary_ref.name LIKE '%.exe'",
    "where a _refs list": "x = q WHERE opened_connection_refs[*].dst_port = 22",
    "where through a _refs list": "x = q WHERE opened_connection_refs[*].dst_ref.value "
                                  "LIKE '192.168.1%'",
    "where src_ref, dst_ref": "x = conns WHERE src_ref.value LIKE '10.0.1%' OR "
                              "dst_ref.value = '192.168.0.1'",
    "sort by a path": "x = SORT q BY parent_ref.name",
    "group by a path": "x = GROUP q BY parent_ref.name WITH COUNT(pid) AS n",
    "disp paths": "DISP q ATTR name, parent_ref.name, binary_ref.name LIMIT 5",
    "timestamped": "x = TIMESTAMPED(q)",
    "info": "INFO q",
}

# statements about the catalog or the load, not the data: not reference joins
NOT_DATA = re.compile(r"sqlite_master|information_schema|pg_catalog|pg_proc|pg_class|"
                      r"pg_namespace|pg_views|kestrel_load|__symtable|__columns|__metadata")


CURSOR = re.compile(r'^\s*DECLARE\s+"[^"]*"\s+CURSOR\b.*?\bFOR\s+', re.IGNORECASE | re.DOTALL)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    path = tmp_path_factory.mktemp("plans") / "bundle.json"
    write_bundle(N, str(path), events=True)
    return path


@pytest.fixture(scope="module", params=["after load", "no indexes or statistics"])
def hunt(request, bundle, module_store_url, tmp_path_factory):
    """A Session on a store of its own after SETUP, recording the SQL it runs; without
    indexes or statistics, the Session is reopened on a store that has neither."""
    session_id = f"plans_{uuid.uuid4().hex[:12]}"
    location = (module_store_url if module_store_url.startswith("postgresql")
                else str(tmp_path_factory.mktemp("store") / "store.db"))
    with Session(session_id=session_id, store_path=location) as session:
        session.execute(SETUP.format(bundle=bundle))
        store = session._store
        store.after_load(store.fp.types(private=True))
        if request.param == "after load":
            yield Recorder(session)
            return
        strip(store)
    with Session(session_id=session_id, store_path=location) as session:
        yield Recorder(session)


def strip(store):
    """Drop the indexes Kestrel makes, and SQLite's statistics."""
    fp = store.fp
    if fp.dialect == "sqlite3":
        names = [r["name"] for r in fp._query("SELECT name FROM sqlite_master WHERE "
                                                "type = 'index'")]
    else:
        names = [r["indexname"] for r in fp._query(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")]
    cursor = fp.connection.cursor()
    for name in names:
        if name.startswith("kestrel_") or name in ("__contains_target_source",
                                                   "__contains_source_target"):
            cursor.execute(f'DROP INDEX "{name}"')
    if fp.dialect == "sqlite3":
        cursor.execute("DROP TABLE IF EXISTS sqlite_stat1")
    fp.connection.commit()


class Recorder:
    """The data queries a Session runs, with the full scans per row of their plans:
    SQLite's statements traced as they run, then explained; PostgreSQL's plans as the
    server ran them (auto_explain: the rows and loops of each node)."""

    def __init__(self, session):
        self.session, self.fp = session, session._store.fp
        self.ran = []
        if self.fp.dialect == "sqlite3":
            self.fp.connection.set_trace_callback(self.ran.append)
            return
        cursor = self.fp.connection.cursor()
        cursor.execute("LOAD 'auto_explain'")
        for setting in ("log_min_duration = 0", "log_analyze = on", "log_timing = off",
                        "log_format = 'json'", "log_level = 'notice'"):
            cursor.execute(f"SET auto_explain.{setting}")
        self.fp.connection.commit()
        self.fp.connection.notices = self.ran

    def run(self, statement) -> dict:
        """{query: its full scans per row} of what `statement` and its summary ran."""
        self.ran.clear()
        self.session.execute(statement)
        return self.scans()

    def scans(self) -> dict:
        ran, found = list(self.ran), {}
        self.ran.clear()
        if self.fp.dialect == "postgresql":
            for notice in ran:
                if "plan:" not in notice:  # another notice ("... exists, skipping")
                    continue
                plan = json.loads(notice[notice.index("{"):])
                if is_data_query(plan["Query Text"]):
                    found[plan["Query Text"]] = postgresql_nested_scans(plan["Plan"])
            return found
        self.fp.connection.set_trace_callback(None)  # not the EXPLAINs
        try:
            for sql in filter(is_data_query, ran):
                found[sql] = sqlite_nested_scans(self.fp.connection, sql)
        finally:
            self.fp.connection.set_trace_callback(self.ran.append)
        return found


def is_data_query(sql) -> bool:
    sql = CURSOR.sub("", sql)  # a server-side cursor's query (PostgreSQL)
    head = sql.lstrip().split(None, 1)[0].upper()
    if head not in ("SELECT", "WITH", "INSERT", "DELETE", "UPDATE") or NOT_DATA.search(sql):
        return False
    return head != "INSERT" or re.search(r"\bSELECT\b", sql, re.IGNORECASE) is not None


def sqlite_nested_scans(connection, sql) -> list:
    """Full scans (SCAN of a table or an index) that run once per row of an outer loop:
    a loop after another at the same level of a join, or inside a correlated subquery.
    A subquery that is not correlated runs once, wherever it stands."""
    children = defaultdict(list)
    cursor = connection.cursor()
    cursor.row_factory = None  # (id, parent, _, detail)
    for row in cursor.execute("EXPLAIN QUERY PLAN " + sql).fetchall():
        children[row[1]].append((row[0], row[3]))
    found = []

    def walk(parent, per_row):
        loops = 0
        for node, detail in children[parent]:
            loop = detail.startswith(("SCAN ", "SEARCH "))
            inner = per_row or (loop and loops > 0)
            if (loop and inner and detail.startswith("SCAN ") and "CONSTANT ROW" not in detail
                    and "VIRTUAL TABLE" not in detail):
                found.append(detail)
            walk(node, inner or detail.startswith("CORRELATED "))
            loops += loop

    walk(0, False)
    return found


def postgresql_nested_scans(plan) -> list:
    """Full reads (a Seq Scan, or a Materialize read again) on the inner side of a
    Nested Loop or in a SubPlan that is not hashed, which ran more than a few times
    reading more than a few rows each time: a product of two sizes (a table of 4 rows
    read per row, or a big one read for each of 4 rows, is none)."""
    found = []

    def walk(node, per_row):
        if (per_row and node["Node Type"] in ("Seq Scan", "Materialize")
                and node["Actual Loops"] > FEW
                and node["Actual Rows"] + node.get("Rows Removed by Filter", 0) > FEW):
            found.append(f"{node['Node Type']} {node.get('Relation Name', '')}: "
                         f"{node['Actual Loops']} loops")
        own = json.dumps({k: v for k, v in node.items() if k != "Plans"})
        for child in node.get("Plans", []):
            relation = child.get("Parent Relationship")
            inner = per_row or (node["Node Type"] == "Nested Loop" and relation == "Inner")
            if relation == "SubPlan" and f"hashed {child.get('Subplan Name')}" not in own:
                inner = True
            walk(child, inner)

    walk(plan, False)
    return found


@pytest.mark.parametrize("statement", CASES.values(), ids=CASES.keys())
def test_no_full_scan_per_row(hunt, statement):
    planned = hunt.run(statement)
    assert planned, "no data query recorded"
    nested = {sql: scans for sql, scans in planned.items() if scans}
    assert not nested, "\n\n".join(f"{sql}\n  -> {scans}" for sql, scans in nested.items())


def test_rules_catch_a_scan_per_row(hunt):
    """The rules flag what the FIND of issue #25 ran: the process table read for each
    row of the variable (a join no index can serve; PostgreSQL kept from hashing it)."""
    view = hunt.session.symtable["q"].view
    sql = (f'SELECT COUNT(*) FROM "{view}" AS v CROSS JOIN "process" AS t '
           f"WHERE t.\"parent_ref\" || '' = v.\"id\" || ''")
    hunt.ran.clear()
    cursor = hunt.fp.connection.cursor()
    if hunt.fp.dialect == "postgresql":
        cursor.execute("SET LOCAL enable_hashjoin = off")
        cursor.execute("SET LOCAL enable_mergejoin = off")
    cursor.execute(sql)
    hunt.fp.connection.rollback()
    assert hunt.scans()[sql]


def test_results_match_the_bundle(hunt, bundle):
    """What the materialized FINDs hold, computed from the bundle with plain json."""
    records = [o for o in json.loads(bundle.read_text())["objects"]
               if o["type"] == "observed-data"]
    quarter = {r["id"] for r in records
               if {r["objects"]["0"]["name"], r["objects"]["1"]["name"]} & set(QUARTER)}
    hunt.session.execute("kids = FIND process CREATED BY q\n"
                         "held = FIND x-oca-event CONTAINED q\n"
                         "near = FIND user-account LINKED q")
    rows = hunt.session.get_variable("kids", deref=False)
    assert sorted(r["command_line"] for r in rows) == sorted(
        r["objects"]["0"]["command_line"] for r in records
        if r["objects"]["1"]["name"] in QUARTER)
    assert len(hunt.session.get_variable("held", deref=False)) == len(quarter)
    assert {r["user_id"] for r in hunt.session.get_variable("near")} == {
        r["objects"]["3"]["user_id"] for r in records if r["id"] in quarter}
