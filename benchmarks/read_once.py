"""A bundle read once: the first GET against firepit's cache() of the same bundle into the
same kind of store (the baseline, measured in the same run), then what later statements
over the unchanged bundle cost against that first GET.

`python -m benchmarks.read_once [N] [--store sqlite|postgresql|both]` (default 100,000
observations, both stores) prints a Markdown table: seconds, the ratios, and the peak RSS
of the process (the baseline runs alone; the steps share one session, in this order).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from . import PEAK_MB
from .generate import write_bundle

STEPS = [  # (name, statement): run in this order in one session
    ("first GET (reads the bundle, stores it whole)",
     "procs = GET process FROM '{bundle}' WHERE name = 'cmd.exe'"),
    ("the same GET again (unchanged bundle)",
     "again = GET process FROM '{bundle}' WHERE name = 'cmd.exe'"),
    ("GET all processes (unchanged bundle)", "allp = GET process FROM '{bundle}'"),
    ("FIND parents (its prefetch: the bundle is unchanged)",
     "parents = FIND process CREATED procs"),
]

PROBE = PEAK_MB + """
import json, sys, time
from kestrel.session import Session
bundle, store, session_id, steps = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
times = []
with Session(session_id=session_id, store_path=None if store == "sqlite" else store) as s:
    for name, statement in steps:
        started = time.perf_counter()
        s.execute(statement.format(bundle=bundle))
        times.append(time.perf_counter() - started)
print(json.dumps([times, peak_mb()]))
"""

BASELINE = PEAK_MB + """
import json, sys, tempfile, time
import firepit
bundle, store, session_id = sys.argv[1], sys.argv[2], sys.argv[3]
with tempfile.TemporaryDirectory() as tmp:
    fp = firepit.get_storage(f"{tmp}/cache.db" if store == "sqlite" else store, session_id)
    started = time.perf_counter()
    fp.cache("q", [bundle])
    seconds = time.perf_counter() - started
    fp.close()
print(json.dumps([seconds, peak_mb()]))
"""


def measured(script: str, *args) -> tuple:
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True,
                          text=True, check=True)
    return tuple(json.loads(done.stdout.strip().splitlines()[-1]))


def rows_for(bundle: str, store: str, url: str | None) -> list:
    location = url if store == "postgresql" else "sqlite"
    rows = [("firepit cache() (baseline)",) + measured(BASELINE, bundle, location,
                                                       f"base{uuid.uuid4().hex[:8]}")]
    times, rss = measured(PROBE, bundle, location, f"once{uuid.uuid4().hex[:8]}",
                          json.dumps(STEPS))
    return rows + [(name, seconds, rss) for (name, _), seconds in zip(STEPS, times)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.read_once")
    parser.add_argument("size", nargs="?", type=int, default=100_000)
    parser.add_argument("--store", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args(argv)
    stores = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    with tempfile.TemporaryDirectory() as tmp:
        bundle = str(Path(tmp) / "bundle.json")
        write_bundle(args.size, bundle)
        print("| N | store | step | seconds | x cache() | x first GET | peak RSS MB |")
        print("|---:|---|---|---:|---:|---:|---:|")
        for store in stores:
            if store == "postgresql":
                from .pgserver import postgres_server

                with postgres_server() as url:
                    rows = rows_for(bundle, store, url)
            else:
                rows = rows_for(bundle, store, None)
            base, first = rows[0][1], rows[1][1]
            for name, seconds, rss in rows:
                print(f"| {args.size:,} | {store} | {name} | {seconds:.2f} | "
                      f"{seconds / base:.3f} | {seconds / first:.3f} | {rss:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
