"""Install the Kestrel kernelspec so Jupyter can start the kernel.

    python -m kestrel_kernel.install [--user | --sys-prefix | --prefix PATH]

kernel.json is written with this interpreter (`sys.executable`) in argv, next
to the logos, into a temp dir that jupyter_client's KernelSpecManager installs.
Without a flag: into the virtualenv when running in one, else for the user.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager

KERNEL_NAME = "kestrel"
SPEC_DIRS = (
    Path(__file__).resolve().parent.parent / "kernelspec",               # source tree, editable
    Path(sys.prefix) / "share" / "kestrel-huntbook" / "kernelspec",      # wheel data-files
)


def spec_source() -> Path:
    for path in SPEC_DIRS:
        if (path / "kernel.json").is_file():
            return path
    raise FileNotFoundError("kernelspec/kernel.json not found in " + ", ".join(map(str, SPEC_DIRS)))


def install(user: bool = False, prefix: str | None = None) -> str:
    """Install the spec; returns the directory it went to."""
    source = spec_source()
    spec = json.loads((source / "kernel.json").read_text())
    spec["argv"] = [sys.executable, "-m", "kestrel_kernel", "-f", "{connection_file}"]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")
        for logo in sorted(source.glob("logo-*.png")):
            shutil.copy(logo, tmp)
        return KernelSpecManager().install_kernel_spec(tmp, KERNEL_NAME, user=user, prefix=prefix)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kestrel_kernel.install",
                                     description="Install the Kestrel Jupyter kernelspec.")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true",
                       help="install for the current user (~/.local/share/jupyter)")
    where.add_argument("--sys-prefix", action="store_true",
                       help=f"install into this Python's prefix ({sys.prefix})")
    where.add_argument("--prefix", metavar="PATH", help="install into PATH/share/jupyter/kernels")
    args = parser.parse_args(argv)
    prefix = args.prefix or (sys.prefix if args.sys_prefix else None)
    in_venv = sys.prefix != sys.base_prefix
    if not (args.user or prefix):
        prefix = sys.prefix if in_venv else None
    path = install(user=prefix is None, prefix=prefix)
    print(f"installed the Kestrel kernelspec in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
