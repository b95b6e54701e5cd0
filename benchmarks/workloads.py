"""One benchmark workload per process, so each peak RSS is its own.

`python -m benchmarks.workloads NAME BUNDLE` prints {"steps": {step: seconds}} as JSON.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path


def timed(steps, name, action):
    started = time.perf_counter()
    result = action()
    steps[name] = time.perf_counter() - started
    return result


def json_parse(bundle, steps):
    timed(steps, "json.load", lambda: json.loads(Path(bundle).read_text()))


def firepit_cache(bundle, steps):
    import firepit

    with tempfile.TemporaryDirectory() as tmp:
        store = firepit.get_storage(f"{tmp}/cache.db", "bench")
        timed(steps, "firepit cache()", lambda: store.cache("q", [bundle]))
        store.close()


def hunt(bundle, steps):
    from kestrel.session import Session

    with Session() as session:
        run = session.execute
        timed(steps, "GET one process name", lambda: run(
            f"procs = GET process FROM '{bundle}' WHERE name = 'cmd.exe'"))
        timed(steps, "GET all processes", lambda: run(f"allp = GET process FROM '{bundle}'"))
        timed(steps, "FIND parents", lambda: run("parents = FIND process CREATED procs"))
        timed(steps, "FIND network-traffic CREATED BY", lambda: run(
            "conns = FIND network-traffic CREATED BY procs"))
        timed(steps, "GROUP BY name WITH COUNT", lambda: run(
            "names = GROUP allp BY name WITH COUNT(pid) AS n"))
        timed(steps, "DISP first page of all processes", lambda: run("DISP allp ATTR name, pid"))
        chain = "\n".join([
            "c1 = GET process WHERE name = 'bash'", "c2 = FIND process CREATED c1",
            "c3 = FIND network-traffic CREATED BY c1", "c4 = FIND ipv4-addr ACCEPTED c3",
            "c5 = c1 WHERE pid > 30000", "c6 = SORT c5 BY pid DESC", "c7 = c6 LIMIT 10",
            "c8 = GROUP c1 BY pid WITH COUNT(name) AS n", "c9 = c1 + c5", "DISP c9 LIMIT 5",
        ])
        timed(steps, "huntflow of 10 chained statements", lambda: run(chain))


def get_one(bundle, steps):
    """The GET of the targets, alone in its process: its own peak RSS."""
    from kestrel.session import Session

    with Session() as session:
        timed(steps, "GET one process name (own process)", lambda: session.execute(
            f"procs = GET process FROM '{bundle}' WHERE name = 'cmd.exe'"))


def get_all(bundle, steps):
    from kestrel.session import Session

    with Session() as session:
        timed(steps, "GET all processes (own process)", lambda: session.execute(
            f"allp = GET process FROM '{bundle}'"))


def kernel_overhead(bundle, steps):
    """Per-cell cost of the kernel over Session.execute, on the same small statement."""
    import statistics

    from jupyter_client.manager import start_new_kernel

    from kestrel.session import Session

    cells, code = 50, "INFO procs"
    setup = f"procs = GET process FROM '{bundle}' WHERE name = 'cmd.exe'"
    with Session() as session:
        session.execute(setup)
        direct = []
        for _ in range(cells):
            started = time.perf_counter()
            session.execute(code)
            direct.append(time.perf_counter() - started)
    km, kc = start_new_kernel(kernel_name="kestrel")
    try:
        kc.execute_interactive(setup, timeout=600, output_hook=lambda msg: None)
        through = []
        for _ in range(cells):
            started = time.perf_counter()
            kc.execute_interactive(code, timeout=60, output_hook=lambda msg: None)
            through.append(time.perf_counter() - started)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    steps["INFO in-process (median)"] = statistics.median(direct)
    steps["INFO through the kernel (median)"] = statistics.median(through)
    steps["kernel overhead per cell (median)"] = statistics.median(through) - statistics.median(
        direct)


def completion(bundle, steps):
    """do_complete latency with 200 variables, at typical cursor positions."""
    from kestrel.session import Session

    with Session() as session:
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


WORKLOADS = {"kernel": kernel_overhead, "complete": completion, "json": json_parse, "cache": firepit_cache, "hunt": hunt,
             "get_one": get_one, "get_all": get_all}

if __name__ == "__main__":
    name, bundle = sys.argv[1], sys.argv[2]
    found = {}
    WORKLOADS[name](bundle, found)
    print(json.dumps({"steps": found}))
