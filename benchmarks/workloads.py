"""One benchmark workload per process, so each peak RSS is its own.

`python -m benchmarks.workloads NAME BUNDLE [STORE [SESSION_ID]]` prints
{"steps": {step: seconds}, "info": {...}} as JSON.  STORE is `sqlite` (a store file in
the session's own runtime directory, the default) or a `postgresql://` URL; SESSION_ID
names the session (on PostgreSQL: the schema firepit keeps it in).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
from pathlib import Path


def timed(steps, name, action):
    started = time.perf_counter()
    result = action()
    steps[name] = time.perf_counter() - started
    print(json.dumps({"steps": steps, "partial": True}), flush=True)  # kept if killed later
    return result


def open_session(store, session_id):
    from kestrel.session import Session

    return Session(session_id=session_id, store_path=None if store == "sqlite" else store)


def json_parse(bundle, steps, info, store, session_id):
    timed(steps, "json.load", lambda: json.loads(Path(bundle).read_text()))


def firepit_cache(bundle, steps, info, store, session_id):
    """The baseline: firepit's own cache() of the whole bundle into the same kind of store
    (firepit's default path: multi-row INSERTs on PostgreSQL too)."""
    import firepit

    with tempfile.TemporaryDirectory() as tmp:
        location = f"{tmp}/cache.db" if store == "sqlite" else store
        fp = firepit.get_storage(location, session_id)
        timed(steps, "firepit cache()", lambda: fp.cache("q", [bundle]))
        fp.close()


def first_row(session, name):
    """The first row of a variable's view straight from the database: no DISP can show
    a page sooner than its view gives one row."""
    view = session.symtable[name].view
    store = session._store
    with store.errors("first row"):
        store.fp._query(f'SELECT * FROM "{view}" LIMIT 1').fetchall()


# the hunt's own steps (their sum is the hunt's time); the others in `hunt` are probes
HUNT_STEPS = ("GET one process name", "GET all processes", "DISP first page of all processes",
              "FIND parents", "FIND network-traffic CREATED BY", "GROUP BY name WITH COUNT",
              "huntflow of 10 chained statements")
HUNT_TOTAL = "hunt total (sum of the steps marked *)"


def hunt(bundle, steps, info, store, session_id):
    with open_session(store, session_id) as session:
        run = session.execute
        timed(steps, "GET one process name", lambda: run(
            f"procs = GET process FROM '{bundle}' WHERE name = 'cmd.exe'"))
        timed(steps, "GET all processes", lambda: run(f"allp = GET process FROM '{bundle}'"))
        timed(steps, "first row of all processes' view (SQL LIMIT 1)",
              lambda: first_row(session, "allp"))
        page = timed(steps, "DISP first page of all processes",
                     lambda: run("DISP allp ATTR name, pid"))[0]
        info["DISP footer"] = page.to_text().splitlines()[-1]
        timed(steps, "FIND parents", lambda: run("parents = FIND process CREATED procs"))
        timed(steps, "FIND network-traffic CREATED BY", lambda: run(
            "conns = FIND network-traffic CREATED BY procs"))
        timed(steps, "GROUP BY name WITH COUNT", lambda: run(
            "names = GROUP allp BY name WITH COUNT(pid) AS n"))
        chain = "\n".join([
            "c1 = GET process WHERE name = 'bash'", "c2 = FIND process CREATED c1",
            "c3 = FIND network-traffic CREATED BY c1", "c4 = FIND ipv4-addr ACCEPTED c3",
            "c5 = c1 WHERE pid > 30000", "c6 = SORT c5 BY pid DESC", "c7 = c6 LIMIT 10",
            "c8 = GROUP c1 BY pid WITH COUNT(name) AS n", "c9 = c1 + c5", "DISP c9 LIMIT 5",
        ])
        timed(steps, "huntflow of 10 chained statements", lambda: run(chain))
        steps[HUNT_TOTAL] = sum(steps[name] for name in HUNT_STEPS)
        counted = timed(steps, "DISP first page SORT BY pid (counts all)",
                        lambda: run("DISP allp ATTR name, pid SORT BY pid"))[0]
        info["distinct (name, pid)"] = counted.total
        info["all processes"] = session._store.count(session.symtable["allp"].view)


# FIND from a variable holding a quarter of the processes, each timed beside the GET that
# made it (the target: no FIND costs more), summary included; the address steps without
# prefetch (the relation's SQL alone), then one with it (addresses are the same entity in
# every record: a source not in the store whole is asked for their other records)
FIND_INPUT = "GET a quarter of the processes (FIND's input)"
FIND_STEPS = {
    "FIND process CREATED BY q (parent_ref)": "kids = FIND process CREATED BY q",
    "FIND process CREATED q (parent_ref)": "parents = FIND process CREATED q",
    "FIND network-traffic CREATED BY q (opened_connection_refs)":
        "conns = FIND network-traffic CREATED BY q",
    "FIND process CREATED conns (opened_connection_refs)": "openers = FIND process CREATED conns",
    "FIND file LINKED q (same record)": "near = FIND file LINKED q",
    "FIND ipv4-addr ACCEPTED conns (dst_ref; no prefetch)": "dsts = FIND ipv4-addr ACCEPTED conns",
    "FIND network-traffic ACCEPTED BY dsts (dst_ref; no prefetch)":
        "back = FIND network-traffic ACCEPTED BY dsts",
}
FIND_PREFETCHED = "FIND ipv4-addr ACCEPTED conns with prefetch"


def find(bundle, steps, info, store, session_id):
    import dataclasses

    with open_session(store, session_id) as session:
        def run(step, statement):
            (summary,) = timed(steps, step, lambda: session.execute(statement))
            info[step] = summary.to_text().rsplit(" (", 1)[0]  # less the time

        run(FIND_INPUT, f"q = GET process FROM '{bundle}' WHERE name IN "
                        "('cmd.exe', 'powershell.exe')")
        prefetching = session.config
        for step, statement in FIND_STEPS.items():
            if "no prefetch" in step:
                session.config = dataclasses.replace(prefetching, prefetch_find=False)
            run(step, statement)
            session.config = prefetching
        run(FIND_PREFETCHED, "dsts2 = FIND ipv4-addr ACCEPTED conns")


def get_one(bundle, steps, info, store, session_id):
    """The GET of the targets, alone in its process: its own peak RSS."""
    with open_session(store, session_id) as session:
        timed(steps, "GET one process name (own process)", lambda: session.execute(
            f"procs = GET process FROM '{bundle}' WHERE name = 'cmd.exe'"))


def get_all(bundle, steps, info, store, session_id):
    """The GET of everything, alone in its process; then DISP of that variable, on a
    store that holds only it (the hunt's DISP follows an earlier GET)."""
    with open_session(store, session_id) as session:
        timed(steps, "GET all processes (own process)", lambda: session.execute(
            f"allp = GET process FROM '{bundle}'"))
        timed(steps, "first row of all processes' view (SQL LIMIT 1, after GET all)",
              lambda: first_row(session, "allp"))
        page = timed(steps, "DISP first page of all processes (after GET all)",
                     lambda: run_one(session, "DISP allp ATTR name, pid"))
        info["DISP footer"] = page.to_text().splitlines()[-1]
        info["all processes"] = session._store.count(session.symtable["allp"].view)


def run_one(session, statement):
    (result,) = session.execute(statement)
    return result


def kernel_overhead(bundle, steps, info, store, session_id):
    """Per-cell cost of the kernel over Session.execute, on the same statement.  Cells go
    in turns, one in-process and one through the kernel, so both meet the same load on
    the machine; the overhead is the median of the differences of the pairs.  The kernel
    always keeps its variables in a local SQLite store."""
    import statistics

    from jupyter_client.manager import start_new_kernel

    cells, code = 50, "INFO procs"
    setup = f"procs = GET process FROM '{bundle}' WHERE name = 'cmd.exe'"
    km, kc = start_new_kernel(kernel_name="kestrel")
    try:
        with open_session("sqlite", session_id) as session:
            session.execute(setup)
            kc.execute_interactive(setup, timeout=3600, output_hook=lambda msg: None)
            direct, through = [], []
            for _ in range(cells):
                started = time.perf_counter()
                session.execute(code)
                direct.append(time.perf_counter() - started)
                started = time.perf_counter()
                kc.execute_interactive(code, timeout=600, output_hook=lambda msg: None)
                through.append(time.perf_counter() - started)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    steps["INFO in-process (median)"] = statistics.median(direct)
    steps["INFO through the kernel (median)"] = statistics.median(through)
    steps["kernel overhead per cell (median)"] = statistics.median(
        k - d for k, d in zip(through, direct))


def completion(bundle, steps, info, store, session_id):
    """do_complete latency with 200 variables, at typical cursor positions."""
    with open_session(store, session_id) as session:
        session.execute(f"procs = GET process FROM '{bundle}' WHERE name = 'cmd.exe'")
        for i in range(200):
            session.create_variable(f"v{i:03d}", [f"10.0.{i // 250}.{i % 250 + 1}"], "ipv4-addr")
        texts = ["DISP v1", "x = GET process WHERE na", "DISP procs ATTR ", "p = FIND process CR",
                 "y = v0", "DISP procs WHERE pid = v10", "GROUP procs BY "]
        samples = []
        for _ in range(60):
            for text in texts:
                started = time.perf_counter()
                session.do_complete(text, len(text))
                samples.append(time.perf_counter() - started)
        samples.sort()
        steps["do_complete p50 (200 variables)"] = samples[len(samples) // 2]
        steps["do_complete p99 (200 variables)"] = samples[int(len(samples) * 0.99)]
        if store != "sqlite":  # INFO on SQLite is measured with the kernel
            print(json.dumps({"steps": steps, "partial": True}), flush=True)
            direct = []
            for _ in range(5):
                started = time.perf_counter()
                session.execute("INFO procs")
                direct.append(time.perf_counter() - started)
            steps["INFO in-process (median)"] = sorted(direct)[2]


WORKLOADS = {"kernel": kernel_overhead, "complete": completion, "json": json_parse,
             "cache": firepit_cache, "hunt": hunt, "get_one": get_one, "get_all": get_all,
             "find": find}

if __name__ == "__main__":
    name, bundle = sys.argv[1], sys.argv[2]
    store = sys.argv[3] if len(sys.argv) > 3 else "sqlite"
    session_id = sys.argv[4] if len(sys.argv) > 4 else f"bench_{uuid.uuid4().hex[:12]}"
    found, info = {}, {}
    WORKLOADS[name](bundle, found, info, store, session_id)
    print(json.dumps({"steps": found, "info": info}))
