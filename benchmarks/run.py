"""Benchmarks: every figure beside baselines measured in the same run on the same bundle.

    .venv/bin/python -m benchmarks.run [N ...] [--store sqlite|postgresql|both] [--pg-url URL]

(default: 10000 100000 1000000, both stores).  For each N: a generated bundle
(benchmarks.generate), then in separate processes plain `json.load` and, for each store,
firepit's own `cache()` of the bundle into that store (the baseline, firepit's default path:
multi-row INSERTs on PostgreSQL), then the workloads on a Kestrel Session on that store
(--workloads picks some: a 1M run of them all takes over an hour per store).  Prints wall
time, peak RSS and the ratios to that store's cache() for each step, then the issue's
targets beside the measured figures, and rewrites benchmarks/RESULTS.md.

PostgreSQL: a throwaway server on 127.0.0.1 started as the tests start theirs
(benchmarks.pgserver) unless --pg-url names one; each workload keeps its data in its own
schema, dropped after it.  Peak RSS is the Kestrel (or firepit) process's own, never the
database server's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from .generate import write_bundle
from .workloads import FIND_INPUT, FIND_PREFETCHED, FIND_STEPS, HUNT_STEPS, HUNT_TOTAL

HERE = Path(__file__).parent
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
STORES = ("sqlite", "postgresql")
WORKLOADS = ("get_one", "get_all", "hunt", "find", "complete", "kernel")
GIB_MB = 1024

# DISP of the 2N-row variable `allp` -> the first row of its view alone (a floor for DISP),
# in the hunt and in its own process right after GET all
DISP_STEPS = {
    "DISP first page of all processes": "first row of all processes' view (SQL LIMIT 1)",
    "DISP first page of all processes (after GET all)":
        "first row of all processes' view (SQL LIMIT 1, after GET all)",
}


def run_workload(name: str, bundle: str, store: str = "sqlite", url: str | None = None,
                 timeout: float | None = None) -> dict:
    """Run one workload in a fresh interpreter; its steps' seconds, its peak RSS (MB) and
    its wall time (start-up included).  Killed after `timeout` seconds."""
    session_id = f"bench_{name}_{uuid.uuid4().hex[:10]}"
    # on PostgreSQL the connection carries the session id, so a killed workload's
    # backend can be found and stopped
    location = ("sqlite" if store == "sqlite" else
                f"{url}{'&' if '?' in url else '?'}application_name={session_id}")
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.workloads", name, bundle,
                                 location, session_id],
                                cwd=HERE.parent, stdout=out, stderr=err)
        while True:  # wait4 gives the child's own rusage: its peak RSS
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if timeout and time.perf_counter() - started > timeout:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.2)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if store != "sqlite":
        from .pgserver import drop_schema

        with contextlib.suppress(Exception):
            drop_schema(url, session_id)
    # a session that did not close (killed) leaves its runtime directory (and store) behind
    shutil.rmtree(Path(tempfile.gettempdir()) / f"kestrel-session-{session_id}",
                  ignore_errors=True)
    lines = stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {"steps": {}}
    measured = {"steps": result["steps"], "info": result.get("info", {}),
                "rss_mb": usage.ru_maxrss / 1024, "wall": wall}
    if proc.returncode != 0:
        if timeout and wall > timeout:
            why = f"killed by the benchmark after {timeout:.0f} s"
        elif proc.returncode < 0:
            why = (f"killed by signal {signal.Signals(-proc.returncode).name} after "
                   f"{wall:.0f} s (not by the benchmark)")
        else:
            why = f"failed (exit {proc.returncode}) after {wall:.0f} s:\n{stderr[-3000:]}"
        raise WorkloadFailed(f"workload {name} on {store} {why}", measured)
    return measured


class WorkloadFailed(RuntimeError):
    """A workload that failed or was killed; `measured` holds the steps it finished."""

    def __init__(self, message, measured):
        super().__init__(message)
        self.measured = measured


def measure(count: int, folder: str, stores, url, timeout=None, failures=None,
            selected=WORKLOADS) -> tuple:
    """(rows, notes) for one N: rows (n, store, step, seconds, rss, x time, x rss, MB),
    for the `selected` workloads beside the baselines. A workload that fails or times out
    is told in `failures`; the others still run."""
    bundle = os.path.join(folder, f"bundle-{count}.json")
    write_bundle(count, bundle)
    size_mb = os.path.getsize(bundle) / 2**20
    rows, notes = [], {}
    failures = [] if failures is None else failures
    try:
        parse = run_workload("json", bundle)
        for store in stores:
            try:
                cache = run_workload("cache", bundle, store, url, timeout)
            except WorkloadFailed as err:
                failures.append(f"N = {count:,}, {store}: {err}")
                print(failures[-1], file=sys.stderr, flush=True)
                continue
            base, base_rss = cache["steps"]["firepit cache()"], cache["rss_mb"]
            measured = [("json.load (baseline)", parse["steps"]["json.load"], parse["rss_mb"]),
                        ("firepit cache() (baseline)", base, base_rss)]
            # the kernel keeps its variables in SQLite
            workloads = [w for w in selected if w != "kernel" or store == "sqlite"]
            for workload in workloads:
                try:
                    result = run_workload(workload, bundle, store, url, timeout)
                except WorkloadFailed as err:
                    failures.append(f"N = {count:,}, {store}: {err} (the steps it finished "
                                    "are listed)")
                    print(failures[-1], file=sys.stderr, flush=True)
                    result = err.measured
                print(f"N = {count:,}, {store}: {workload} done in {result['wall']:.0f} s",
                      file=sys.stderr, flush=True)
                done = len(measured)
                for step, seconds in result["steps"].items():
                    if workload == "hunt" and step in HUNT_STEPS:
                        step += " *"
                    measured.append((step, seconds, result["rss_mb"]))
                # each workload's figures as soon as it ends: a stopped run keeps them
                for step, seconds, rss in measured[done:]:
                    print(f"  {step}: {seconds:.3f} s ({seconds / base:.3f}x cache()), peak RSS "
                          f"{rss:.0f} MB ({rss / base_rss:.2f}x)", file=sys.stderr, flush=True)
                if workload == "find":
                    notes.setdefault((count, store), {})["find"] = result["info"]
                if workload in ("hunt", "get_all"):
                    notes.setdefault((count, store), {}).update(
                        {f"{workload}: {k}" if k == "DISP footer" else k: v
                         for k, v in result["info"].items()})
            rows.extend((count, store, step, secs, rss, secs / base, rss / base_rss, size_mb)
                        for step, secs, rss in measured)
            print(table([r for r in rows if r[1] == store and r[0] == count]), flush=True)
    finally:
        os.remove(bundle)
    return rows, notes


def table(rows) -> str:
    lines = ["| N | store | bundle MB | step | seconds | x cache() time | peak RSS MB | "
             "x cache() RSS |", "|---:|---|---:|---|---:|---:|---:|---:|"]
    for n, store, step, secs, rss, ratio, rss_ratio, size in rows:
        lines.append(f"| {n:,} | {store} | {size:.0f} | {step} | {secs:.3f} | {ratio:.3f} | "
                     f"{rss:.0f} | {rss_ratio:.2f} |")
    return "\n".join(lines)


def _find(rows, n, store, step):
    for row in rows:
        if row[0] == n and row[1] == store and row[2].rstrip(" *") == step:
            return row
    return None


def targets(rows, notes) -> str:
    """The issue's targets beside what this run measured (a target whose N or store was
    not measured is left out)."""
    lines = ["| target | N | store | measured | holds |", "|---|---:|---|---|---|"]

    def add(what, n, store, measured, holds):
        lines.append(f"| {what} | {n:,} | {store} | {measured} | "
                     f"{'yes' if holds else '**no**'} |")

    for n, store in sorted({(r[0], r[1]) for r in rows}, key=lambda k: (k[1] != "sqlite", k)):
        get = _find(rows, n, store, "GET one process name (own process)")
        if get and n == 100_000:
            add("GET from a 100k bundle <= 0.25x cache() time, RSS <= 0.5x", n, store,
                f"{get[3]:.1f} s = {get[5]:.3f}x, {get[4]:.0f} MB = {get[6]:.2f}x",
                get[5] <= 0.25 and get[6] <= 0.5)
        hunt = _find(rows, n, store, HUNT_TOTAL)
        everything = _find(rows, n, store, "GET all processes (own process)")
        if n >= 1_000_000 and everything:
            add("1M observations: GET of all within 10 minutes and 24 GiB", n, store,
                f"{everything[3]:.0f} s ({everything[5]:.2f}x cache()), peak RSS "
                f"{everything[4]:.0f} MB", everything[3] <= 600 and everything[4] <= 24 * GIB_MB)
        if n >= 1_000_000 and (hunt or _find(rows, n, store, "GET one process name")):
            worst = max(r[4] for r in rows if r[0] == n and r[1] == store
                        and "baseline" not in r[2])
            finished = sum(r[3] for r in rows if r[0] == n and r[1] == store
                           and r[2].endswith(" *"))
            what = "1M observations: the hunt within 10 minutes, every process within 24 GiB"
            if hunt:
                add(what, n, store, f"hunt {hunt[3]:.0f} s ({hunt[5]:.2f}x cache()); peak "
                    f"RSS {worst:.0f} MB", hunt[3] <= 600 and worst <= 24 * GIB_MB)
            else:
                add(what, n, store, f"the hunt did not finish (see below); its finished steps "
                    f"took {finished:.0f} s; peak RSS {worst:.0f} MB", False)
        made = _find(rows, n, store, FIND_INPUT)
        for step in (*FIND_STEPS, FIND_PREFETCHED) if made else ():
            found = _find(rows, n, store, step)
            if found:
                add(f"{step} <= the GET of its input", n, store, f"{found[3]:.2f} s, the GET "
                    f"{made[3]:.2f} s ({found[3] / made[3]:.2f}x)", found[3] <= made[3])
        kernel = _find(rows, n, store, "kernel overhead per cell (median)")
        if kernel:
            add("kernel overhead <= 20 ms per cell", n, store, f"{kernel[3] * 1000:.1f} ms",
                kernel[3] <= 0.020)
        complete = _find(rows, n, store, "do_complete p99 (200 variables)")
        if complete:
            add("do_complete p99 <= 30 ms with 200 variables", n, store,
                f"{complete[3] * 1000:.1f} ms", complete[3] <= 0.030)
        size = notes.get((n, store), {}).get("all processes", 0)
        for step, floor_step in DISP_STEPS.items():
            disp, floor = _find(rows, n, store, step), _find(rows, n, store, floor_step)
            if disp and size >= 1_000_000:
                where = "after GET all" if step.endswith(")") else "in the hunt"
                add(f"DISP first page of a {size:,}-row variable < 1 s ({where})", n, store,
                    f"{disp[3]:.2f} s (the view's first row alone: {floor[3]:.2f} s)"
                    if floor else f"{disp[3]:.2f} s", disp[3] < 1)
    return "\n".join(lines)


def facts(notes) -> str:
    lines = []
    for (n, store), info in sorted(notes.items(), key=lambda k: (k[0][1] != "sqlite", k[0])):
        if "all processes" in info:
            distinct = info.get("distinct (name, pid)")
            footers = "; ".join(f"{where}: \"{info[f'{where}: DISP footer']}\""
                                for where in ("get_all", "hunt")
                                if f"{where}: DISP footer" in info)
            lines.append(f"- N = {n:,}, {store}: `allp` holds {info['all processes']:,} "
                         "process entities, "
                         + (f"{distinct:,} distinct (name, pid)" if distinct is not None else
                            "distinct (name, pid) not counted (the hunt did not get there)")
                         + f"; DISP's footer ({footers})")
        if "find" in info:
            lines.append(f"- N = {n:,}, {store}, the FINDs' variables: "
                         + "; ".join(info["find"].values()))
    return "\n".join(lines)


def report(rows, notes, failures, command, minutes, done=True) -> str:
    checked = targets(rows, notes)
    if failures:
        checked += "\n\nFailed or timed out:\n\n" + "\n".join(f"- {f}" for f in failures)
    state = "" if done else " (partial: the run was still going when this was written)"
    return (f"# Benchmark results\n\nMachine: {platform.platform()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}. Generated by `{command}` on "
            f"{time.strftime('%Y-%m-%d')} in {minutes:.0f} minutes{state}.\n\n"
            "Ratios are against firepit's own cache() of the same bundle into the same kind "
            "of store, measured in the same run (firepit's default: multi-row INSERTs on "
            "PostgreSQL too; Kestrel loads PostgreSQL with COPY). "
            "Steps marked (own process) run alone, so their peak RSS is theirs. The hunt runs "
            "in one process, whose peak RSS its steps share: the steps marked * are the hunt "
            "(the hunt total is their sum); the others there are probes: the first row of "
            "the variable's view straight from SQL (no DISP can be faster) and a DISP with "
            "SORT BY, which counts every distinct row. Peak RSS is the measured process's, "
            "never the PostgreSQL server's. The kernel always keeps its variables in SQLite, "
            "so its overhead is measured on SQLite only.\n\n"
            "## Targets\n\n" + checked + "\n\n" + facts(notes) + "\n\n## Figures\n\n"
            + table(rows) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument("sizes", nargs="*", type=int, default=list(DEFAULT_SIZES))
    parser.add_argument("--store", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-url", help="a PostgreSQL database to use instead of a "
                        "throwaway server (each workload gets its own schema)")
    parser.add_argument("--timeout", type=float, default=3600,
                        help="seconds one workload may run before it is killed; the steps "
                        "it finished are kept (default 3600)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help="which to run beside the baselines, comma-separated (default: "
                        f"{','.join(WORKLOADS)})")
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args(argv)
    stores = STORES if args.store == "both" else (args.store,)
    selected = tuple(w for w in WORKLOADS if w in args.workloads.split(","))
    unknown = set(args.workloads.split(",")) - set(WORKLOADS)
    if unknown or not selected:
        parser.error(f"--workloads: choose from {', '.join(WORKLOADS)}")
    command = " ".join(["python -m benchmarks.run", *map(str, args.sizes)]
                       + ([f"--store {args.store}"] if args.store != "both" else [])
                       + ([f"--workloads {','.join(selected)}"] if selected != WORKLOADS
                          else [])
                       + ([f"--output {args.output}"] if args.output != parser.get_default(
                           "output") else []))
    rows, notes, failures = [], {}, []
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        url = args.pg_url
        if "postgresql" in stores and not url:
            from .pgserver import postgres_server

            url = stack.enter_context(postgres_server())
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="kestrel-bench-"))
        for i, count in enumerate(args.sizes):
            measured, found = measure(count, folder, stores, url, args.timeout, failures,
                                      selected)
            rows.extend(measured)
            notes.update(found)
            if i + 1 < len(args.sizes):  # what is measured so far survives a later crash
                Path(args.output).write_text(report(
                    rows, notes, failures, command, (time.perf_counter() - started) / 60,
                    done=False))
    print("\n" + targets(rows, notes) + "\n\n" + facts(notes), flush=True)
    for failure in failures:
        print(f"failed: {failure}", flush=True)
    Path(args.output).write_text(report(rows, notes, failures, command,
                                        (time.perf_counter() - started) / 60))
    return 0


if __name__ == "__main__":
    sys.exit(main())
