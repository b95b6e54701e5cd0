"""Sigma rules as a WHERE condition: what running SigmaHQ's rules costs, beside a
hand-written GET measured in the same run.

    .venv/bin/python -m benchmarks.sigma [N ...] [--store sqlite|postgresql|both]
        [--pg-sizes N ...] [--pg-set SETTING=VALUE ...] [--runs R] [--no-demo] [--timeout S]
        [--output PATH]

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
   hand-written GET.  The rule cache is warm here (part a filled it).  With
   --pg-set SETTING=VALUE, on PostgreSQL also, as a diagnostic, the fresh session's Sigma
   GET after `SET SETTING = VALUE` on the store's connection (e.g. jit=off: a server's JIT
   compiling the thousand-rule expression was most of the statement before the store
   turned it off itself; work_mem=256MB: with the default 4MB a subquery over 200,000
   processes is not hashed and is read again for each row).

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
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from . import PEAK_MB
from .generate import write_bundle

HERE = Path(__file__).parent
SHARED = Path(os.environ.get("KESTREL_SHARED_DATA") or HERE.parent.parent / "shared" / "data")
DEMO = SHARED / "doctored-1k.json"
RULES = SHARED / "sigma" / "rules" / "windows" / "process_creation"
STORES = ("sqlite", "postgresql")
TARGET_DEMO = 10.0   # seconds: every Windows process_creation rule over doctored-1k
TARGET_RATIO = 2.0   # the Sigma GET against the hand-written GET of the same bundle
COMMIT = "unknown"   # the code measured (set by main)

HAND = "base = GET process FROM file://{bundle} WHERE name = 'cmd.exe'"
HAND_AGAIN = "again = GET process FROM file://{bundle} WHERE name = 'cmd.exe'"
SIGMA = "hits = GET process FROM file://{bundle} WHERE SIGMA '{rules}'"
DIAGNOSTIC = "Sigma GET, every rule, SET"

# one fresh interpreter: its steps' seconds, what the Sigma statements said, its peak RSS
PROBE = PEAK_MB + """
import json, re, sys, time
from kestrel.session import Session
store, session_id, steps, setup = sys.argv[1], sys.argv[2], *map(json.loads, sys.argv[3:5])
times, said = [], []
with Session(session_id=session_id, store_path=None if store == "sqlite" else store) as s:
    for sql in setup:  # on the store's own connection, e.g. SET jit = off
        s._store.fp.connection.cursor().execute(sql)
        s._store.fp.connection.commit()
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
        # after each step: a probe killed later keeps the steps it finished
        print(json.dumps([times, said, peak_mb()]), flush=True)
"""


KILLED = "killed at the timeout"


class Failed(RuntimeError):
    """A probe that failed or was killed; `partial` holds the steps it finished (as
    probe() returns them) and `wall` its seconds."""

    def __init__(self, message, partial=None, wall=0.0):
        super().__init__(message)
        self.partial, self.wall = partial, wall


def _finished(stdout) -> dict | None:
    if isinstance(stdout, bytes):
        stdout = stdout.decode(errors="replace")
    lines = (stdout or "").strip().splitlines()
    if not lines:
        return None
    times, said, rss = json.loads(lines[-1])
    return {"times": times, "said": said, "rss": rss}


def probe(steps: list, store: str = "sqlite", url: str | None = None, cache: str = "",
          timeout: float | None = None, setup: tuple = ()) -> dict:
    """Run `steps` in one fresh interpreter and Session (after the SQL `setup` on its
    store); seconds per step, what the steps said, peak RSS (MB) and the process's wall
    time (start-up included)."""
    session_id = f"sigma{uuid.uuid4().hex[:10]}"
    # on PostgreSQL the connection carries the session id, so a killed probe's backend
    # can be found and stopped
    location = ("sqlite" if store == "sqlite" else
                f"{url}{'&' if '?' in url else '?'}application_name={session_id}")
    env = dict(os.environ, XDG_CACHE_HOME=cache) if cache else None
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", PROBE, location, session_id,
                               json.dumps(steps), json.dumps(list(setup))],
                              cwd=HERE.parent, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        partial = _finished(err.stdout)
        raise Failed(f"killed after {timeout:.0f} s", partial,
                     time.perf_counter() - started) from err
    finally:
        wall = time.perf_counter() - started
        if store != "sqlite":
            drop(url, session_id)
        shutil.rmtree(Path(tempfile.gettempdir()) / f"kestrel-session-{session_id}",
                      ignore_errors=True)
    if done.returncode != 0:
        raise Failed(f"exit {done.returncode} after {wall:.0f} s:\n{done.stderr[-3000:]}",
                     _finished(done.stdout), wall)
    return {**_finished(done.stdout), "wall": wall}


def drop(url: str, schema: str):
    """benchmarks.pgserver.drop_schema, bounded: a backend that outlives its killed probe
    (busy where it does not see the cancel) would make DROP SCHEMA wait for ever."""
    import psycopg2

    with contextlib.suppress(Exception):
        conn = psycopg2.connect(url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = %s AND pid <> pg_backend_pid()", (schema,))
            cur.execute("SET lock_timeout = '30s'")
            cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.close()


def tree() -> str:
    """The commit measured, and whether the working tree differed from it (or, when
    `kestrel` is imported from outside this repository, e.g. a `git archive` of one
    commit on PYTHONPATH, where from, and the COMMIT file beside it if any)."""
    import importlib.util

    def git(*args):
        return subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True,
                              text=True).stdout.strip()

    package = Path(importlib.util.find_spec("kestrel").origin).parent
    if HERE.parent not in package.parents:
        noted = package.parent / "COMMIT"
        return (f"`kestrel` from {package}"
                + (f" ({noted.read_text().strip()})" if noted.exists() else ""))
    commit = git("rev-parse", "--short", "HEAD")
    changed = git("status", "--porcelain", "--untracked-files=no", "--", "kestrel_core")
    return f"{commit}{' with uncommitted changes to kestrel_core' if changed else ''}" \
        if commit else "unknown"


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
              failures: list, settings: tuple = ()) -> list:
    """Rows (N, store, step, seconds, x hand-written, rules ran, fired, RSS, summary)."""
    rows = []
    for store in stores:
        same = [HAND.format(bundle=bundle), HAND_AGAIN.format(bundle=bundle),
                SIGMA.format(bundle=bundle, rules=RULES)]
        steps, base = [], None
        try:
            one = probe(same, store, url, cache, timeout)
        except Failed as err:
            # a Sigma GET that outlived the timeout with the bundle stored would in a
            # fresh session too: that one is not run (the diagnostics below are)
            failures.append(f"N = {count:,}, {store}, the session of the hand-written GET "
                            f"and the Sigma GET: {err}")
            print(failures[-1], file=sys.stderr, flush=True)
            rows.extend(unfinished(count, store, err))
            base = err.partial["times"][0] if err.partial and err.partial["times"] else None
        else:
            base = one["times"][0]
            steps = [("hand-written GET name = 'cmd.exe' (baseline: reads the bundle, stores "
                      "it)", one, 0),
                     ("the same hand-written GET again (same session)", one, 1),
                     ("Sigma GET, every rule (same session: bundle already stored)", one, 2)]
            print(f"N = {count:,}, {store}: hand-written GET {base:.2f} s, Sigma GET in the "
                  f"same session {one['times'][2]:.2f} s", file=sys.stderr, flush=True)
            try:
                fresh = probe([SIGMA.format(bundle=bundle, rules=RULES)], store, url, cache,
                              timeout)
                steps.append(("Sigma GET, every rule (fresh session: reads the bundle)", fresh,
                              0))
                print(f"N = {count:,}, {store}: Sigma GET in a fresh session "
                      f"{fresh['times'][0]:.2f} s", file=sys.stderr, flush=True)
            except Failed as err:
                failures.append(f"N = {count:,}, {store}, the Sigma GET in a fresh session: "
                                f"{err}")
                print(failures[-1], file=sys.stderr, flush=True)
        for setting in settings if store == "postgresql" else ():
            # diagnostic: the same fresh Sigma GET under another server setting
            name, _, value = setting.partition("=")
            sql = f"SET {name.strip()} = '{value.strip()}'"
            try:
                other = probe([SIGMA.format(bundle=bundle, rules=RULES)], store, url, cache,
                              timeout, setup=(sql,))
                steps.append((f"{DIAGNOSTIC} {name.strip()} = {value.strip()} (fresh session, "
                              "reads the bundle; diagnostic)", other, 0))
                print(f"N = {count:,}, {store}: Sigma GET in a fresh session after {sql} "
                      f"{other['times'][0]:.2f} s", file=sys.stderr, flush=True)
            except Failed as err:
                failures.append(f"N = {count:,}, {store}, the Sigma GET after {sql}: {err}")
                print(failures[-1], file=sys.stderr, flush=True)
        for step, done, i in steps:
            said, seconds = done["said"][i], done["times"][i]
            rows.append((count, store, step, seconds, seconds / base if base else math.nan,
                         said["ran"], said["fired"], done["rss"], said["summary"]))
    return rows


def unfinished(count, store, err) -> list:
    """The rows of a same-session probe that did not finish: the steps it did, and the
    Sigma GET as "killed" with the least it took (the probe's time less those steps')."""
    done = err.partial
    if not done or not done["times"] or "killed" not in str(err):
        return []
    names = ["hand-written GET name = 'cmd.exe' (baseline: reads the bundle, stores it)",
             "the same hand-written GET again (same session)"]
    base = done["times"][0]
    rows = [(count, store, name, seconds, seconds / base, None, None, done["rss"],
             said["summary"]) for name, seconds, said in zip(names, done["times"], done["said"])]
    if len(done["times"]) == 2:
        least = err.wall - sum(done["times"])
        rows.append((count, store, "Sigma GET, every rule (same session: bundle already "
                     "stored)", least, least / base, None, None, done["rss"],
                     f"{KILLED} ({err.wall:.0f} s of process): the fresh session's Sigma GET "
                     "with the server's defaults was not run"))
    return rows


def seconds_text(seconds, summary, digits=2) -> str:
    return f"> {seconds:.{digits}f}" if summary.startswith(KILLED) else f"{seconds:.{digits}f}"


def bundle_table(rows) -> str:
    lines = ["| N | store | step | seconds | x hand-written GET | rules run | rules/s | "
             "peak RSS MB (the session's) | result |",
             "|---:|---|---|---:|---:|---:|---:|---:|---|"]
    for n, store, step, seconds, ratio, ran, fired, rss, summary in rows:
        rate = f"{ran / seconds:,.0f}" if ran else ""
        result = summary + (f"; {fired} of {ran:,} rules fired" if ran else "")
        lines.append(f"| {n:,} | {store} | {step} | {seconds_text(seconds, summary)} | "
                     f"{seconds_text(ratio, summary)} | {f'{ran:,}' if ran else ''} | {rate} | "
                     f"{rss:.0f} | {result} |")
    return "\n".join(lines)


def scaling(rows) -> str:
    """Per store, how each step grows with N: its seconds and the exponent k of
    seconds ~ N^k between successive sizes (1: linear, 2: quadratic)."""
    lines = ["| store | N | hand-written GET s | Sigma GET s (same session) | k | "
             "Sigma GET s (fresh session) | k | x hand-written (same / fresh) |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for store in STORES:
        before = None
        for n in sorted({r[0] for r in rows if r[1] == store}):
            steps = {r[2].split(" (")[0] + (" fresh" if "fresh" in r[2] else ""): r
                     for r in rows if r[0] == n and r[1] == store}
            hand = steps.get("hand-written GET name = 'cmd.exe'")
            same, fresh = steps.get("Sigma GET, every rule"), steps.get(
                "Sigma GET, every rule fresh")
            now = (n, same and same[3], fresh and fresh[3])
            killed = bool(same and same[8].startswith(KILLED))

            def growth(i):
                if not before or not before[i] or not now[i] or killed:
                    return ""
                return f"{math.log(now[i] / before[i]) / math.log(n / before[0]):.2f}"

            lines.append(f"| {store} | {n:,} | {f'{hand[3]:.2f}' if hand else ''} | "
                         + (f"{seconds_text(same[3], same[8])} | {growth(1)} | " if same
                            else "| | ")
                         + (f"{fresh[3]:.2f} | {growth(2)} | " if fresh else "| | ")
                         + " / ".join(f"{seconds_text(r[4], r[8])}x" for r in (same, fresh)
                                      if r) + " |")
            before = now
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
    for n, store, step, seconds, ratio, ran, _, _, summary in rows:
        if step.startswith("Sigma GET") and not step.startswith(DIAGNOSTIC):
            where = "same session" if "same session" in step else "fresh session"
            what = (f"{KILLED}: more than {seconds:.0f} s = {ratio:.1f}x"
                    if summary.startswith(KILLED) else
                    f"{seconds:.2f} s = {ratio:.2f}x ({ran / seconds:,.0f} rules/s)")
            add(f"N = {n:,}, {store}: Sigma GET ({where}) <= {TARGET_RATIO:.0f}x the "
                "hand-written GET", what,
                ratio <= TARGET_RATIO and not summary.startswith(KILLED))
    return "\n".join(lines)


def report(demo_rows, runs, rows, failures, skipped, command, minutes, done=True) -> str:
    state = "" if done else " (partial: the run was still going when this was written)"
    out = [f"# Sigma benchmark results\n\nMachine: {platform.platform()}, {os.cpu_count()} "
           f"cores, Python {platform.python_version()}. Generated by `{command}` on "
           f"{time.strftime('%Y-%m-%d')} in {minutes:.0f} minutes{state}, code at "
           f"{COMMIT}.\n\n"
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
                   "peak RSS is theirs together); each later one is a session of its own. The "
                   "rule cache is warm."
                   + (" On PostgreSQL, diagnostics beside the targets: the fresh session's "
                      "Sigma GET again after a `SET` on the store's connection (the server's "
                      "defaults otherwise)."
                      if any(r[2].startswith(DIAGNOSTIC) for r in rows) else "") + "\n\n"
                   + bundle_table(rows))
        if len({r[0] for r in rows}) > 1:
            out.append("### Scaling\n\nk: the exponent of seconds ~ N^k from the size "
                       "before (1: linear, 2: quadratic).\n\n" + scaling(rows))
    return "\n\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sigma")
    parser.add_argument("sizes", nargs="*", type=int, default=[100_000],
                        help="observations of the generated bundles (default 100000)")
    parser.add_argument("--store", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-sizes", nargs="+", type=int, metavar="N",
                        help="other sizes for PostgreSQL (default: the same as SQLite's), "
                        "e.g. smaller ones where its Sigma GET grows faster than N")
    parser.add_argument("--pg-set", action="append", default=[], metavar="SETTING=VALUE",
                        help="PostgreSQL: also the fresh session's Sigma GET after SET "
                        "SETTING = VALUE (a diagnostic; repeatable), e.g. work_mem=256MB")
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
                       + ([f"--pg-sizes {' '.join(map(str, args.pg_sizes))}"]
                          if args.pg_sizes and args.store != "sqlite" else [])
                       + [f"--pg-set {setting}" for setting in args.pg_set]
                       + ([f"--runs {args.runs}"] if args.runs != 3 else [])
                       + (["--no-demo"] if args.no_demo else [])
                       + ([f"--timeout {args.timeout:g}"] if args.timeout != parser.get_default(
                           "timeout") else [])
                       + ([f"--output {args.output}"] if args.output != parser.get_default(
                           "output") else []))
    global COMMIT
    COMMIT = tree()
    # a stopped run still stops its PostgreSQL server and removes its files
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    rows, failures, skipped, demo_rows = [], [], [], []

    def write(done):
        Path(args.output).write_text(report(demo_rows, args.runs, rows, failures, skipped,
                                            command, (time.perf_counter() - started) / 60,
                                            done))

    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kestrel-sigma-")))
        if args.no_demo:
            probe([SIGMA.format(bundle=DEMO, rules=RULES)],  # fills the rule cache
                  cache=fresh_cache(folder / "rules"))
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
        sizes = {store: (args.pg_sizes or args.sizes) if store == "postgresql" else args.sizes
                 for store in stores}
        for count in sorted({n for chosen in sizes.values() for n in chosen}):
            bundle = str(folder / f"bundle-{count}.json")
            write_bundle(count, bundle)
            try:
                rows.extend(generated(count, bundle, [s for s in stores if count in sizes[s]],
                                      url, warm, args.timeout, failures, args.pg_set))
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
