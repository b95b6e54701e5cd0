"""Huntbooks from huntflows and back, for sharing and for scheduled hunts.

`export`: a huntflow (.hf) as a notebook, a code cell per block of statements (blocks are
separated by blank lines or comments) and a markdown cell per comment block.  `run`:
a notebook executed headless with the Kestrel kernel, from the notebook's folder (so the
relative paths of a huntbook sent with its data resolve on another machine), its
outputs saved, stopping at the first failing cell.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .syntax.parser import parse

KERNEL_NAME = "kestrel"
KERNELSPEC = {"name": KERNEL_NAME, "display_name": "Kestrel", "language": "kestrel"}
_COMMENT = re.compile(r"\s*#")


def export(text: str):
    """The notebook (nbformat v4) of a huntflow; KestrelSyntaxError if it does not parse."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    notebook.metadata["language_info"] = {"name": "kestrel", "file_extension": ".hf"}
    for kind, lines in _blocks(text):
        source = "\n".join(lines)
        notebook.cells.append(nbformat.v4.new_code_cell(source) if kind == "code"
                              else nbformat.v4.new_markdown_cell(source))
    return notebook


def _blocks(text: str):
    """(kind, lines) in order: "code" for the lines of statements that follow one another
    (a comment inside a statement stays with it), "markdown" for comment lines between
    them, without their `#`; blank lines end a block."""
    lines = text.split("\n")
    in_statement = [False] * len(lines)
    for stmt in parse(text):
        for number in range(stmt.span.line, stmt.span.end_line + 1):
            in_statement[number - 1] = True
    kind, block = None, []
    for line, code in zip(lines, in_statement):
        this = "code" if code else "markdown" if _COMMENT.match(line) else None
        if this != kind and block:
            yield kind, block
            block = []
        kind = this
        if this == "code":
            block.append(line.rstrip())
        elif this == "markdown":
            block.append(re.sub(r"^\s*# ?", "", line).rstrip())
    if block:
        yield kind, block


@dataclass
class Run:
    """How a headless run went: the notebook with its outputs, and the first failure."""

    notebook: object
    failed_cell: int | None = None    # index of the cell that failed
    error: str = ""                   # its error, as the kernel reported it
    texts: list = field(default_factory=list)  # every text output, in order


def run(path: Path, timeout: int = 600) -> Run:
    """Execute the notebook at `path` with the Kestrel kernel from its own folder."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(path, as_version=4)
    _ensure_kernelspec()
    client = NotebookClient(notebook, timeout=timeout, kernel_name=KERNEL_NAME,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    outcome = Run(notebook)
    try:
        client.execute()
    except CellExecutionError as err:
        outcome.failed_cell = next((i for i, cell in enumerate(notebook.cells)
                                    if _errors(cell)), None)
        failed = notebook.cells[outcome.failed_cell] if outcome.failed_cell is not None else {}
        outcome.error = "\n".join(_errors(failed)) or f"{err.ename}: {err.evalue}"
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                outcome.texts.append(output.get("text", "").rstrip("\n"))
            elif "text/plain" in output.get("data", {}):
                outcome.texts.append(output["data"]["text/plain"])
    return outcome


def _errors(cell) -> list:
    return ["\n".join(output.get("traceback", [])) for output in cell.get("outputs", [])
            if output.get("output_type") == "error"]


def _ensure_kernelspec():
    """The Kestrel kernelspec, installed for this process (a temporary prefix on
    JUPYTER_PATH) when Jupyter does not know it: a scheduled hunt needs no set-up step."""
    from jupyter_client.kernelspec import KernelSpecManager

    if KERNEL_NAME in KernelSpecManager().find_kernel_specs():
        return
    from kestrel_kernel.install import install

    prefix = tempfile.mkdtemp(prefix="kestrel-kernelspec-")
    atexit.register(shutil.rmtree, prefix, ignore_errors=True)
    install(prefix=prefix)
    data = str(Path(prefix) / "share" / "jupyter")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [data] + [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p])
    print(f"kestrel: installed the Kestrel kernelspec for this run in {prefix}", file=sys.stderr)
