"""Start-up: import of kestrel.session plus the first Session(), in fresh processes.

    .venv/bin/python -m benchmarks.startup [--runs N]

Each run is a new interpreter (nothing in memory; the OS file cache and Kestrel's parser
cache warm after a first run, as for a hunter starting a second kernel).  Prints the
median of N runs of the process's wall time, of its CPU time (user + system: steadier
than wall time on a busy machine) and of the wall time it spends in the import and
Session() alone; the same for `import json` as a baseline (the interpreter's own
start-up), the ratios of the process times to it, and issue #20's target.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

# the child reports the seconds between its first line and the end of the timed code
CHILD = """\
import time
started = time.perf_counter()
{code}
print(time.perf_counter() - started)
{after}
"""

TARGET = 0.3  # seconds of import + first Session() (the "in code" column)

BASELINE, KESTREL = "import json", "import kestrel.session + Session()"
CASES = {
    BASELINE: ("import json", ""),
    KESTREL: ("from kestrel.session import Session\nsession = Session()", "session.close()"),
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(code: str, after: str) -> tuple:
    """(wall seconds of a fresh process, its CPU seconds, wall seconds inside it for
    `code`)."""
    cpu, started = _children_cpu(), time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD.format(code=code, after=after)],
                         capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    return wall, _children_cpu() - cpu, float(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per case")
    args = parser.parse_args(argv)
    print(f"median of {args.runs} fresh processes (Python {sys.version.split()[0]})")
    print(f"{'case':<36} {'process s':>10} {'CPU s':>8} {'in code s':>10}")
    medians = {}
    for name, (code, after) in CASES.items():
        timed_run(code, after)  # warm the file cache
        runs = [timed_run(code, after) for _ in range(args.runs)]
        medians[name] = wall, cpu, inner = [statistics.median(c) for c in zip(*runs)]
        print(f"{name:<36} {wall:>10.3f} {cpu:>8.3f} {inner:>10.3f}")
    (base_wall, base_cpu, _), (wall, cpu, inner) = medians[BASELINE], medians[KESTREL]
    print(f"x import json: {wall / base_wall:.1f} (process), {cpu / base_cpu:.1f} (CPU)")
    print(f"target: import + first Session() <= {TARGET} s: {inner:.3f} s, "
          f"{'holds' if inner <= TARGET else 'does not hold'}")


if __name__ == "__main__":
    main()
