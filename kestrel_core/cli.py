"""`kestrel hunt.hf`: run a huntflow and print its tables and summaries.

Figures (APPLY python://process_tree, timeline, huntflow_graph, ...) are written as
standalone HTML pages (plotly.js inside, they open offline) to --output-dir (the
current directory by default), named after the huntflow and the figure:
`hunt-process_tree-procs.html`; a name met twice in one run gets `-2`, `-3`.
The path is printed under the figure's text.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from .errors import KestrelError
from .results import Figure
from .session import Session


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="kestrel", description="Run a Kestrel huntflow.")
    parser.add_argument("huntflow", help="a .hf file, or - for standard input")
    parser.add_argument("--store", help="firepit store: a SQLite path or a postgresql:// URL")
    parser.add_argument("--session", metavar="ID",
                        help="session id: reuse one to reopen a PostgreSQL store's variables")
    parser.add_argument("--debug", action="store_true",
                        help="keep the runtime directory (linked from /tmp/kestrel)")
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
