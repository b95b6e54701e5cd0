"""Sigma rules as a WHERE condition: what running SigmaHQ's rules costs, beside a
hand-written GET measured in the same run.

    .venv/bin/python -m benchmarks.sigma [N ...] [--store sqlite|postgresql|both]
                                         [--runs R] [--timeout S] [--output PATH]

a. doctored-1k.json (the shared demo bundle) with every Windows process_creation rule
   (../shared/data/sigma/rules/windows/process_creation), each run a new interpreter and
   a new Session on SQLite: with a cold rule cache (no translations kept in
   $XDG_CACHE_HOME/kestrel/sigma: every rule is parsed and translated) and a warm one (the
   translations the run before kept).  The baseline is the hand-written
   `GET process FROM file://... WHERE name = 'cmd.exe'` in a fresh process.  Median of R
   runs (default 3) of the statement and of the whole process (start-up included);
   target: the whole process <= 10 s.
b. for each N (default 100,000; a smaller N for a quick run) a generated bundle
   (benchmarks.generate), on each store: in one fresh session the hand-written GET (the
   baseline: it reads the bundle and stores it whole), the same GET again, then the Sigma
   GET of the same bundle (the bundle is stored: the rules alone); then the Sigma GET in a
   fresh session (it reads the bundle itself).  Target: the Sigma GET <= 2x the
   hand-written GET.  The rule cache is warm here (part a filled it).

Rules per second: the rules the statement ran (those its fired-rules table counts: the
folder's rules less those that cannot run) over the statement's seconds.  Every process
gets its own $XDG_CACHE_HOME, so the user's cache is neither read nor changed.
PostgreSQL: a throwaway server started as the tests start theirs (benchmarks.pgserver);
the store is skipped, and told, when no server can be started.  Prints Markdown tables
and writes them, with the targets, to benchmarks/RESULTS-SIGMA.md (--output).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from .generate import write_bundle

HERE = Path(__file__).parent
SHARED = Path(os.environ.get("KESTREL_SHARED_DATA") or HERE.parent.parent / "shared" / "data")
DEMO = SHARED / "doctored-1k.json"
RULES = SHARED / "sigma" / "rules" / "windows" / "process_creation"
STORES = ("sqlite", "postgresql")
TARGET_DEMO = 10.0   # seconds: every Windows process_creation rule over doctored-1k
TARGET_RATIO = 2.0   # the Sigma GET against the hand-written GET of the same bundle

HAND = "base = GET process FROM file://{bundle} WHERE name = 'cmd.exe'"
HAND_AGAIN = "again = GET process FROM file://{bundle} WHERE name = 'cmd.exe'"
SIGMA = "hits = GET process FROM file://{bundle} WHERE SIGMA '{rules}'"

# one fresh interpreter: its steps' seconds, what the Sigma statements said, its peak RSS
PROBE = """
import json, re, resource, sys, time
from kestrel.session import Session
store, session_id, steps = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
times, said = [], []
with Session(session_id=session_id, store_path=None if store == "sqlite" else store) as s:
    for statement in steps:
        started = time.perf_counter()
        results = s.execute(statement)
        times.append(time.perf_counter() - started)
        texts = [r.to_text() for r in results]
        fired = [re.search(r"matched ([\\d,]+) of ([\\d,]+) Sigma rule", t) for t in texts]
        fired = next((m for m in fired if m), None)
        said.append({"summary": texts[-1].splitlines()[0] if texts else "",
                     "fired": int(fired.group(1).replace(",", "")) if fired else None,
                     "ran": int(fired.group(2).replace(",", "")) if fired else None})
print(json.dumps([times, said, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]))
"""


class Failed(RuntimeError):
    pass


def probe(steps: list, store: str = "sqlite", url: str | None = None, cache: str = "",
          timeout: float | None = None) -> dict:
    """Run `steps` in one fresh interpreter and Session; seconds per step, what the
    steps said, peak RSS (MB) and the process's wall time (start-up included)."""
    session_id = f"sigma{uuid.uuid4().hex[:10]}"
    location = "sqlite" if store == "sqlite" else url
    env = dict(os.environ, XDG_CACHE_HOME=cache) if cache else None
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", PROBE, location, session_id,
                               json.dumps(steps)], cwd=HERE.parent, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise Failed(f"killed after {timeout:.0f} s: {steps}") from err
    finally:
        wall = time.perf_counter() - started
        if store != "sqlite":
            from .pgserver import drop_schema

            with contextlib.suppress(Exception):
                drop_schema(url, session_id)
        shutil.rmtree(Path(tempfile.gettempdir()) / f"kestrel-session-{session_id}",
                      ignore_errors=True)
    if done.returncode != 0:
        raise Failed(f"exit {done.returncode} after {wall:.0f} s:\n{done.stderr[-3000:]}")
    times, said, rss = json.loads(done.stdout.strip().splitlines()[-1])
    return {"times": times, "said": said, "rss": rss, "wall": wall}


def fresh_cache(folder: Path, warm_parser: Path | None = None) -> str:
    """An empty $XDG_CACHE_HOME, with the parser's cache alone copied in when given (so a
    cold rule cache is not also a cold parser)."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "kestrel").mkdir(parents=True, mode=0o700)
    folder.chmod(0o700)
    if warm_parser is not None and warm_parser.exists():
        shutil.copy2(warm_parser, folder / "kestrel" / "parser.lark")
    return str(folder)


def median(runs: list, key) -> float:
    return statistics.median(key(r) for r in runs)


# ------------------------------------------------------------ a. doctored-1k, every rule


def demo(runs: int, cache: Path, timeout: float) -> list:
    """Rows (step, statement s, process s, peak RSS MB, rules ran, rules fired, summary)
    for doctored-1k: the hand-written GET, the Sigma GET with a cold and a warm cache."""
    bundle = str(DEMO)
    hand = [HAND.format(bundle=bundle)]
    sigma = [SIGMA.format(bundle=bundle, rules=RULES)]
    base_cache = fresh_cache(cache / "base")
    parser = cache / "base" / "kestrel" / "parser.lark"
    probe(hand, cache=base_cache, timeout=timeout)  # warms the OS file cache and the parser
    measured = {"hand": [], "cold": [], "warm": []}
    for i in range(runs):
        measured["hand"].append(probe(hand, cache=base_cache, timeout=timeout))
        cold = fresh_cache(cache / "rules", parser)
        measured["cold"].append(probe(sigma, cache=cold, timeout=timeout))
        measured["warm"].append(probe(sigma, cache=cold, timeout=timeout))  # kept by cold
        print(f"doctored-1k run {i + 1}/{runs}: hand-written GET "
              f"{measured['hand'][-1]['wall']:.2f} s, Sigma cold "
              f"{measured['cold'][-1]['wall']:.2f} s, warm {measured['warm'][-1]['wall']:.2f} s"
              " (process wall times)", file=sys.stderr, flush=True)
    rows = []
    for key, step in (("hand", "hand-written GET name = 'cmd.exe' (baseline)"),
                      ("cold", "Sigma GET, every rule, cold rule cache"),
                      ("warm", "Sigma GET, every rule, warm rule cache")):
        done = measured[key]
        said = done[-1]["said"][0]
        rows.append((step, median(done, lambda r: r["times"][0]), median(done, lambda r: r["wall"]),
                     median(done, lambda r: r["rss"]), said["ran"], said["fired"],
                     said["summary"]))
    return rows


def demo_table(rows, runs) -> str:
    base_stmt, base_wall = rows[0][1], rows[0][2]
    lines = [f"| step (median of {runs} fresh processes) | statement s | x hand-written | "
             "process s (start-up included) | x hand-written | rules run | rules/s "
             "(statement) | peak RSS MB | result |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for step, stmt, wall, rss, ran, fired, summary in rows:
        rate = f"{ran / stmt:,.0f}" if ran else ""
        result = summary + (f"; {fired} of {ran:,} rules fired" if ran else "")
        lines.append(f"| {step} | {stmt:.2f} | {stmt / base_stmt:.1f} | {wall:.2f} | "
                     f"{wall / base_wall:.1f} | {f'{ran:,}' if ran else ''} | {rate} | "
                     f"{rss:.0f} | {result} |")
    return "\n".join(lines)


# ------------------------------------------------------------ b. a generated bundle


def generated(count: int, bundle: str, stores, url, cache: str, timeout: float,
              failures: list) -> list:
    """Rows (N, store, step, seconds, x hand-written, rules ran, fired, RSS, summary)."""
    rows = []
    for store in stores:
        same = [HAND.format(bundle=bundle), HAND_AGAIN.format(bundle=bundle),
                SIGMA.format(bundle=bundle, rules=RULES)]
        try:
            one = probe(same, store, url, cache, timeout)
        except Failed as err:
            failures.append(f"N = {count:,}, {store}, the session of the hand-written GET "
                            f"and the Sigma GET: {err}")
            print(failures[-1], file=sys.stderr, flush=True)
            continue
        base = one["times"][0]
        steps = [("hand-written GET name = 'cmd.exe' (baseline: reads the bundle, stores it)",
                  one, 0),
                 ("the same hand-written GET again (same session)", one, 1),
                 ("Sigma GET, every rule (same session: bundle already stored)", one, 2)]
        print(f"N = {count:,}, {store}: hand-written GET {base:.2f} s, Sigma GET in the same "
              f"session {one['times'][2]:.2f} s", file=sys.stderr, flush=True)
        try:
            fresh = probe([SIGMA.format(bundle=bundle, rules=RULES)], store, url, cache, timeout)
            steps.append(("Sigma GET, every rule (fresh session: reads the bundle)", fresh, 0))
            print(f"N = {count:,}, {store}: Sigma GET in a fresh session "
                  f"{fresh['times'][0]:.2f} s", file=sys.stderr, flush=True)
        except Failed as err:
            failures.append(f"N = {count:,}, {store}, the Sigma GET in a fresh session: {err}")
            print(failures[-1], file=sys.stderr, flush=True)
        for step, done, i in steps:
            said, seconds = done["said"][i], done["times"][i]
            rows.append((count, store, step, seconds, seconds / base, said["ran"],
                         said["fired"], done["rss"], said["summary"]))
    return rows


def bundle_table(rows) -> str:
    lines = ["| N | store | step | seconds | x hand-written GET | rules run | rules/s | "
             "peak RSS MB (the session's) | result |",
             "|---:|---|---|---:|---:|---:|---:|---:|---|"]
    for n, store, step, seconds, ratio, ran, fired, rss, summary in rows:
        rate = f"{ran / seconds:,.0f}" if ran else ""
        result = summary + (f"; {fired} of {ran:,} rules fired" if ran else "")
        lines.append(f"| {n:,} | {store} | {step} | {seconds:.2f} | {ratio:.2f} | "
                     f"{f'{ran:,}' if ran else ''} | {rate} | {rss:.0f} | {result} |")
    return "\n".join(lines)


# ------------------------------------------------------------ targets and the report


def targets(demo_rows, rows) -> str:
    lines = ["| target | measured | holds |", "|---|---|---|"]

    def add(what, measured, holds):
        lines.append(f"| {what} | {measured} | {'yes' if holds else '**no**'} |")

    for step, stmt, wall, _, ran, _, _ in (demo_rows or [])[1:]:
        cache = "cold" if "cold" in step else "warm"
        add(f"every Windows process_creation rule over doctored-1k from a new session "
            f"({cache} rule cache) <= {TARGET_DEMO:.0f} s",
            f"{wall:.2f} s process ({stmt:.2f} s statement, {ran / stmt:,.0f} rules/s)",
            wall <= TARGET_DEMO)
    for n, store, step, seconds, ratio, ran, _, _, _ in rows:
        if step.startswith("Sigma GET"):
            where = "same session" if "same session" in step else "fresh session"
            add(f"N = {n:,}, {store}: Sigma GET ({where}) <= {TARGET_RATIO:.0f}x the "
                "hand-written GET", f"{seconds:.2f} s = {ratio:.2f}x ({ran / seconds:,.0f} "
                "rules/s)", ratio <= TARGET_RATIO)
    return "\n".join(lines)


def report(demo_rows, runs, rows, failures, skipped, command, minutes, done=True) -> str:
    state = "" if done else " (partial: the run was still going when this was written)"
    out = [f"# Sigma benchmark results\n\nMachine: {platform.platform()}, {os.cpu_count()} "
           f"cores, Python {platform.python_version()}. Generated by `{command}` on "
           f"{time.strftime('%Y-%m-%d')} in {minutes:.0f} minutes{state}.\n\n"
           f"Rules: `{os.path.relpath(RULES, HERE.parent)}` "
           "(SigmaHQ, DRL 1.1), read in place. Ratios are against the hand-written "
           "`GET process FROM file://... WHERE name = 'cmd.exe'` of the same bundle on the same "
           "store, measured in the same run. Rules/s: the rules the statement ran over its "
           "seconds.\n\n## Targets\n\n" + targets(demo_rows, rows)]
    if failures or skipped:
        out.append("Failed, timed out or skipped:\n\n"
                   + "\n".join(f"- {f}" for f in [*skipped, *failures]))
    if demo_rows:
        out.append("## doctored-1k.json, every Windows process_creation rule, from a new "
                   "session (SQLite)\n\n" + demo_table(demo_rows, runs))
    if rows:
        out.append("## Generated bundles\n\nThe first three steps share one session (its "
                   "peak RSS is theirs together); the last is a session of its own. The rule "
                   "cache is warm.\n\n" + bundle_table(rows))
    return "\n\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sigma")
    parser.add_argument("sizes", nargs="*", type=int, default=[100_000],
                        help="observations of the generated bundles (default 100000)")
    parser.add_argument("--store", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--runs", type=int, default=3,
                        help="fresh processes per doctored-1k step (median; default 3)")
    parser.add_argument("--no-demo", action="store_true",
                        help="skip part a (doctored-1k); the rule cache is filled first")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds one process may run before it is killed (default 1800)")
    parser.add_argument("--output", default=str(HERE / "RESULTS-SIGMA.md"))
    args = parser.parse_args(argv)
    for needed in (DEMO, RULES):
        if not needed.exists():
            parser.error(f"{needed} not found (set KESTREL_SHARED_DATA to the shared data)")
    stores = list(STORES if args.store == "both" else (args.store,))
    command = " ".join(["python -m benchmarks.sigma", *map(str, args.sizes)]
                       + ([f"--store {args.store}"] if args.store != "both" else [])
                       + ([f"--runs {args.runs}"] if args.runs != 3 else [])
                       + (["--no-demo"] if args.no_demo else [])
                       + ([f"--output {args.output}"] if args.output != parser.get_default(
                           "output") else []))
    started = time.perf_counter()
    rows, failures, skipped, demo_rows = [], [], [], []

    def write(done):
        Path(args.output).write_text(report(demo_rows, args.runs, rows, failures, skipped,
                                            command, (time.perf_counter() - started) / 60,
                                            done))

    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kestrel-sigma-")))
        if args.no_demo:
            probe([SIGMA.format(bundle=DEMO, rules=RULES)],
                  cache=fresh_cache(folder / "rules"), timeout=args.timeout)
        else:
            demo_rows = demo(args.runs, folder, args.timeout)
            print(demo_table(demo_rows, args.runs) + "\n", flush=True)
            write(False)
        warm = str(folder / "rules")  # holds the translations part a kept
        url = None
        if "postgresql" in stores:
            from .pgserver import postgres_server

            try:
                url = stack.enter_context(postgres_server())
            except Exception as err:  # no server binaries, or it would not start
                skipped.append(f"PostgreSQL skipped: {err}")
                print(skipped[-1], file=sys.stderr, flush=True)
                stores.remove("postgresql")
        for count in args.sizes:
            bundle = str(folder / f"bundle-{count}.json")
            write_bundle(count, bundle)
            try:
                rows.extend(generated(count, bundle, stores, url, warm, args.timeout,
                                      failures))
            finally:
                os.remove(bundle)
            print(bundle_table([r for r in rows if r[0] == count]) + "\n", flush=True)
            write(False)
    print(targets(demo_rows, rows), flush=True)
    for failure in failures:
        print(f"failed: {failure}", flush=True)
    write(True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
