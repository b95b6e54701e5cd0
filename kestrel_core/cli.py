"""`kestrel hunt.hf`: run a huntflow and print its tables and summaries."""

from __future__ import annotations

import argparse
import sys

from .errors import KestrelError
from .session import Session


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="kestrel", description="Run a Kestrel huntflow.")
    parser.add_argument("huntflow", help="a .hf file, or - for standard input")
    parser.add_argument("--store", help="firepit store: a SQLite path or a postgresql:// URL")
    parser.add_argument("--session", metavar="ID",
                        help="session id: reuse one to reopen a PostgreSQL store's variables")
    parser.add_argument("--debug", action="store_true",
                        help="keep the runtime directory (linked from /tmp/kestrel)")
    args = parser.parse_args(argv)
    try:
        text = sys.stdin.read() if args.huntflow == "-" else open(args.huntflow).read()
    except OSError as err:
        print(f"kestrel: cannot read {args.huntflow}: {err.strerror}", file=sys.stderr)
        return 1
    try:
        with Session(session_id=args.session, store_path=args.store,
                     debug_mode=args.debug) as session:
            for output in session.execute_iter(text):
                print(output.to_text())
                print()
    except KestrelError as err:
        print(str(err), file=sys.stderr)
        return 1
    return 0
