"""`kestrel hunt.hf`: run a huntflow and print its tables and summaries.

`kestrel export hunt.hf -o hunt.ipynb [--execute]` makes a huntbook of a huntflow;
`kestrel run hunt.ipynb [-o out.ipynb]` executes a huntbook headless (exit status 1 at
the first failing cell, outputs saved): see kestrel.huntbook.

Figures (APPLY python://process_tree, timeline, huntflow_graph, ...) are written as
standalone HTML pages (plotly.js and a map's basemap inside: they request nothing) to
--output-dir (the current directory by default), named after the huntflow and the figure:
`hunt-process_tree-procs.html`; a name met twice in one run gets `-2`, `-3`.
The path is printed under the figure's text.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from . import huntbook
from .errors import KestrelError
from .results import Figure
from .session import Session


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["export"]:
        return export_main(argv[1:])
    if argv[:1] == ["run"]:
        return run_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="kestrel", description="Run a Kestrel huntflow.",
        epilog="Also: kestrel export HUNT.hf -o HUNT.ipynb [--execute]; "
               "kestrel run HUNT.ipynb [-o OUT.ipynb] (a file named export or run: ./export)")
    parser.add_argument("huntflow", help="a .hf file, or - for standard input")
    parser.add_argument("--store", help="firepit store: a SQLite path or a postgresql:// URL")
    parser.add_argument("--session", metavar="ID",
                        help="session id: reuse one to reopen a PostgreSQL store's variables")
    parser.add_argument("--debug", action="store_true",
                        help="keep the runtime directory (linked from /tmp/kestrel-debug)")
    parser.add_argument("--output-dir", metavar="DIR", default=".",
                        help="where figures are written as HTML files (default: .)")
    args = parser.parse_args(argv)
    try:
        text = sys.stdin.read() if args.huntflow == "-" else open(args.huntflow).read()
    except OSError as err:
        print(f"kestrel: cannot read {args.huntflow}: {err.strerror}", file=sys.stderr)
        return 1
    stem = "kestrel" if args.huntflow == "-" else pathlib.Path(args.huntflow).stem
    figures = FigureFiles(pathlib.Path(args.output_dir), stem)
    try:
        with Session(session_id=args.session, store_path=args.store,
                     debug_mode=args.debug) as session:
            for output in session.execute_iter(text):
                print(output.to_text())
                if isinstance(output, Figure):
                    print(f"figure: {figures.write(output)}")
                print()
    except KestrelError as err:
        print(str(err), file=sys.stderr)
        return 1
    except OSError as err:
        print(f"kestrel: cannot write a figure to {args.output_dir}: {err.strerror or err}",
              file=sys.stderr)
        return 1
    return 0


class FigureFiles:
    """Where a run's figures go: DIR/STEM-NAME.html, numbered when a name repeats."""

    def __init__(self, directory: pathlib.Path, stem: str):
        self.directory, self.stem, self.used = directory, stem, {}

    def write(self, figure: Figure) -> pathlib.Path:
        count = self.used[figure.name] = self.used.get(figure.name, 0) + 1
        suffix = f"-{count}" if count > 1 else ""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = (self.directory / f"{self.stem}-{figure.name}{suffix}.html").resolve()
        return figure.write_html(path)


def export_main(argv) -> int:
    parser = argparse.ArgumentParser(prog="kestrel export",
                                     description="Make a huntbook (.ipynb) of a huntflow.")
    parser.add_argument("huntflow", help="a .hf file")
    parser.add_argument("-o", "--output", help="the notebook to write (default: beside it)")
    parser.add_argument("--execute", action="store_true",
                        help="run it with the Kestrel kernel and keep the outputs")
    args = parser.parse_args(argv)
    source = pathlib.Path(args.huntflow)
    target = pathlib.Path(args.output) if args.output else source.with_suffix(".ipynb")
    try:
        notebook = huntbook.export(source.read_text())
    except OSError as err:
        print(f"kestrel: cannot read {source}: {err.strerror}", file=sys.stderr)
        return 1
    except KestrelError as err:
        print(str(err), file=sys.stderr)
        return 1
    if not _write(notebook, target):
        return 1
    print(f"huntbook: {target} ({len(notebook.cells)} cells)")
    return _run(target, target, 600) if args.execute else 0


def run_main(argv) -> int:
    parser = argparse.ArgumentParser(prog="kestrel run",
                                     description="Execute a huntbook headless.")
    parser.add_argument("notebook", help="a .ipynb huntbook")
    parser.add_argument("-o", "--output", help="where the executed notebook goes "
                                               "(default: the notebook itself)")
    parser.add_argument("--timeout", type=int, default=600, metavar="SECONDS",
                        help="how long one cell may run (default: 600)")
    args = parser.parse_args(argv)
    source = pathlib.Path(args.notebook)
    return _run(source, pathlib.Path(args.output) if args.output else source, args.timeout)


def _run(source: pathlib.Path, target: pathlib.Path, timeout: int) -> int:
    """Execute `source`, print its text outputs, save it to `target`: 1 if a cell failed."""
    try:
        outcome = huntbook.run(source, timeout)
    except OSError as err:
        print(f"kestrel: cannot read {source}: {err.strerror or err}", file=sys.stderr)
        return 1
    except Exception as err:  # nbformat's validation, a kernel that does not start
        print(f"kestrel: cannot run {source}: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    for text in outcome.texts:
        print(text)
    saved = _write(outcome.notebook, target)
    if outcome.failed_cell is not None:
        print(f"kestrel: cell {outcome.failed_cell + 1} of {source} failed:\n{outcome.error}",
              file=sys.stderr)
        return 1
    return 0 if saved else 1


def _write(notebook, target: pathlib.Path) -> bool:
    import nbformat

    try:
        nbformat.write(notebook, str(target))
    except OSError as err:
        print(f"kestrel: cannot write {target}: {err.strerror or err}", file=sys.stderr)
        return False
    return True
