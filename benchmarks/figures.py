"""Figures that travel: what the static image and the offline HTML cost.

    .venv/bin/python -m benchmarks.figures [--nodes 5000] [--runs 3] [--data DIR]

1. A process tree of N processes (a 4-ary tree made in memory, command lines on hover).
   Baseline: python://process_tree building the figure.  Then its offline HTML form
   (plotly.js left out: a notebook carries it once), plotly's own `plotly.io.to_html` of
   the same figure for comparison, the PNG from kaleido (browser already started), the
   browser's start, the kernel's output of the figure (JSON, HTML and PNG; the first
   figure of a notebook also carries plotly.js), and the standalone page (plotly.js
   inside) drawn in headless Chromium (Playwright) with every request refused.  Sizes
   beside the plotly JSON's.
2. A notebook with five figures on the demo data (two process trees, a timeline, a
   huntflow graph, a map), executed with the Kestrel kernel and exported with nbconvert.
   Baseline: the same notebook where kaleido finds no browser (BROWSER_PATH pointing
   nowhere), so no static images; also the notebook without its figure cells.

Times are medians of --runs runs; all in this process's run, on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
MB = 1_000_000


def _median(runs: int, work):
    """(median seconds, last result) of `runs` calls of `work`."""
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def tree_frame(nodes: int):
    """N processes, process i the child of process (i - 1) // 4."""
    import pandas as pd

    def proc(i, prefix=""):
        return {f"{prefix}id": f"process--{i:08d}", f"{prefix}pid": 1000 + i,
                f"{prefix}name": f"proc{i % 50}.exe",
                f"{prefix}command_line": f"C:\\Windows\\proc{i % 50}.exe --task {i} --flag"}

    return pd.DataFrame([{**proc(i), **(proc((i - 1) // 4, "parent_ref.") if i else {})}
                         for i in range(nodes)])


def draw_seconds(page: pathlib.Path) -> float | None:
    """Seconds for headless Chromium to load the page and draw its traces, network off."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("KESTREL_TEST_CHROMIUM", "/usr/bin/chromium"),
            args=["--no-sandbox", "--disable-gpu"])
        try:
            tab = browser.new_page()
            tab.route("**/*", lambda route: route.continue_()
                      if route.request.url.startswith("file:") else route.abort())
            started = time.perf_counter()
            tab.goto(page.as_uri(), timeout=120_000)
            tab.wait_for_selector(".plotly-graph-div .main-svg .scatterlayer .trace",
                                  timeout=120_000)
            return time.perf_counter() - started
        finally:
            browser.close()


def big_tree(nodes: int, runs: int, folder: pathlib.Path) -> list:
    import plotly.io

    from kestrel.analytics import offline
    from kestrel.analytics.process_tree import process_tree
    from kestrel_kernel.render import Renderer

    frame = tree_frame(nodes)
    build, result = _median(runs, lambda: process_tree({"procs": frame}))
    figure = result.display.figure
    plotly_json = len(json.dumps(figure))
    html_s, html = _median(runs, lambda: offline.figure_html(figure, plotlyjs=False))
    theirs_s, theirs = _median(runs, lambda: plotly.io.to_html(
        figure, include_plotlyjs=False, full_html=False, validate=False))
    renderer = Renderer()  # the kernel's: PNG, HTML, JSON; plotly.js in the first figure
    started = time.perf_counter()
    renderer.images.png({"data": [{"type": "scatter", "y": [1, 2]}], "layout": {}})
    start_s = time.perf_counter() - started
    png_s, png = _median(runs, lambda: renderer.images.png(figure))
    if png is None:
        print(f"no static image: {renderer.images.why}")
    renderer.start_cell("first")
    first_s, first = _median(1, lambda: renderer.bundle(result.display))
    later_s, later = _median(runs, lambda: renderer.bundle(result.display))
    renderer.close()
    page = folder / "tree.html"
    page.write_text(offline.page_html(figure, "tree"), encoding="utf-8")
    drawn = draw_seconds(page)
    rows = [("build the figure (baseline)", build, plotly_json),
            ("offline HTML form", html_s, len(html)),
            ("plotly.io.to_html (comparison)", theirs_s, len(theirs)),
            ("static PNG (kaleido, warm)", png_s, len(png or b"")),
            ("kaleido browser start (once)", start_s, None),
            ("notebook output, first figure", first_s, len(json.dumps(first))),
            ("notebook output, a later figure", later_s, len(json.dumps(later))),
            ("standalone page drawn in Chromium", drawn, page.stat().st_size)]
    print(f"\n1. process tree of {nodes:,} processes "
          f"({len(result.display.data['edges']):,} links), median of {runs}")
    print(f"{'step':<36} {'seconds':>8} {'x build':>8} {'MB':>7} {'x JSON':>7}")
    for name, seconds, size in rows:
        sec = (f"{seconds:8.3f} {seconds / build:8.2f}" if seconds is not None
               else f"{'-':>8} {'-':>8}")
        mb = f"{size / MB:7.2f} {size / plotly_json:7.2f}" if size is not None else ""
        print(f"{name:<36} {sec} {mb}")
    return rows


BOOK = [
    "procs = GET process FROM {data}/doctored-1k.json WHERE name IN ('cmd.exe', 'powershell.exe')\n"
    "parents = FIND process CREATED procs\nDISP procs ATTR name, pid, command_line",
    "APPLY python://process_tree ON procs",
    "APPLY python://timeline ON procs, parents",
    "APPLY python://huntflow_graph ON parents WITH scope=all",
    'ips = NEW ipv4-addr ["195.54.160.149", "162.55.90.26", "167.99.32.139"]\n'
    "APPLY python://ip_map ON ips",
    "APPLY python://process_tree ON parents",
]


def _book(path: pathlib.Path, cells: list):
    import nbformat

    from kestrel.huntbook import KERNELSPEC

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    nbformat.write(notebook, str(path))


def _run_and_export(path: pathlib.Path, env: dict) -> tuple:
    """(seconds to execute, .ipynb bytes, seconds to export, HTML bytes), each in its own
    process as a hunter runs them."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kestrel", "run", str(path)], env=env, check=True,
                   capture_output=True)
    executed = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(path)],
                   env=env, check=True, capture_output=True)
    exported = time.perf_counter() - started
    return executed, path.stat().st_size, exported, path.with_suffix(".html").stat().st_size


def notebook(runs: int, data: pathlib.Path, folder: pathlib.Path) -> dict:
    cells = [c.format(data=data) for c in BOOK]
    cases = {"5 figures with static images": (cells, {}),
             "5 figures, no browser (baseline)": (cells, {"BROWSER_PATH": str(folder / "none")}),
             "no figures (GET, FIND, DISP only)": (cells[:1], {})}
    results = {}
    for name, (book_cells, extra) in cases.items():
        env = dict(os.environ, **extra)
        measured = []
        for i in range(runs):
            path = folder / f"book-{len(results)}-{i}.ipynb"
            _book(path, book_cells)
            measured.append(_run_and_export(path, env))
        results[name] = [statistics.median(column) for column in zip(*measured)]
    base = results["5 figures, no browser (baseline)"]
    print(f"\n2. notebook of the demo data, median of {runs} (kestrel run, then "
          "jupyter nbconvert --to html, each in its own process)")
    print(f"{'notebook':<36} {'run s':>7} {'x':>6} {'.ipynb MB':>10} {'x':>6} "
          f"{'export s':>9} {'HTML MB':>8} {'x':>6}")
    for name, (run_s, size, export_s, html) in results.items():
        print(f"{name:<36} {run_s:7.2f} {run_s / base[0]:6.2f} {size / MB:10.2f} "
              f"{size / base[1]:6.2f} {export_s:9.2f} {html / MB:8.2f} {html / base[3]:6.2f}")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000, help="processes in the big tree")
    parser.add_argument("--runs", type=int, default=3, help="runs per measure (median)")
    parser.add_argument("--data", type=pathlib.Path,
                        default=pathlib.Path(os.environ.get("KESTREL_SHARED_DATA")
                                             or REPO.parent / "shared" / "data"),
                        help="the demo data folder (doctored-1k.json)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kestrel-bench-figures-") as tmp:
        big_tree(args.nodes, args.runs, pathlib.Path(tmp))
        notebook(args.runs, args.data.resolve(), pathlib.Path(tmp))


if __name__ == "__main__":
    main()
