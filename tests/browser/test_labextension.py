"""The JupyterLab extension as shipped: built from the current sources, carried by the wheel
and the sdist, enabled in JupyterLab, and using the Pygments lexer's words."""

import hashlib
import json
import os
import pathlib
import re
import subprocess
import sys
import tarfile
import zipfile

import pytest

from kestrel_kernel import lexer

REPO = pathlib.Path(__file__).resolve().parents[2]
LABEXT = REPO / "labextension"
PREBUILT = LABEXT / "prebuilt"
NAME = "jupyterlab-kestrel"


def prebuilt_files():
    return sorted(p.relative_to(PREBUILT).as_posix() for p in PREBUILT.rglob("*") if p.is_file())


def test_prebuilt_is_built_from_the_current_sources():
    """prebuilt.sha256 (written by build.sh) names every source with its current hash."""
    recorded = {}
    for line in (LABEXT / "prebuilt.sha256").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        recorded[name] = digest
    sources = ["package.json", "package-lock.json", "tsconfig.json", "install.json",
               *sorted(p.relative_to(LABEXT).as_posix() for p in (LABEXT / "src").glob("*.ts"))]
    current = {name: hashlib.sha256((LABEXT / name).read_bytes()).hexdigest() for name in sources}
    assert recorded == current, "labextension/prebuilt is stale: run bash labextension/build.sh"


def test_prebuilt_layout():
    files = prebuilt_files()
    meta = json.loads((PREBUILT / "package.json").read_text())
    assert meta["name"] == NAME
    assert meta["jupyterlab"]["_build"]["load"] in files
    assert "install.json" in files
    shared = meta["jupyterlab"]["sharedPackages"]
    for package in ("@jupyterlab/codemirror", "@codemirror/language", "@lezer/highlight"):
        assert shared[package]["bundled"] is False and shared[package]["singleton"] is True
    assert sum(p.stat().st_size for p in PREBUILT.rglob("*") if p.is_file()) < 100_000


def test_wheel_ships_the_prebuilt_extension(built_wheel):
    prefix = f"share/jupyter/labextensions/{NAME}/"
    with zipfile.ZipFile(built_wheel) as wheel:
        shipped = {}
        for name in wheel.namelist():
            _, sep, rest = name.partition(".data/data/")
            if sep and rest.startswith(prefix):
                shipped[rest[len(prefix):]] = wheel.read(name)
    assert sorted(shipped) == prebuilt_files()
    for name, data in shipped.items():
        assert data == (PREBUILT / name).read_bytes(), name


def test_sdist_ships_the_prebuilt_extension(source_copy, tmp_path):
    code = "import sys, setuptools.build_meta as b; print(b.build_sdist(sys.argv[1]))"
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=source_copy,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    sdist = tmp_path / proc.stdout.strip().splitlines()[-1]
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert {f"labextension/prebuilt/{name}" for name in prebuilt_files()} <= names


def test_jupyterlab_lists_it_enabled(jupyter_data, tmp_path):
    """`jupyter labextension list` over what the wheel installs: enabled OK, from our package."""
    env = dict(os.environ, JUPYTER_PATH=str(jupyter_data), JUPYTER_CONFIG_DIR=str(tmp_path),
               NO_COLOR="1")
    command = pathlib.Path(sys.executable).parent / "jupyter-labextension"
    proc = subprocess.run([str(command), "list"], capture_output=True, text=True, env=env,
                          timeout=120)
    output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    assert proc.returncode == 0, output
    listed, directory = {}, None
    for line in output.splitlines():
        if line.startswith("/"):
            directory = line.strip()
        elif line.startswith((" ", "\t")) and directory:
            listed.setdefault(directory, []).append(line.strip())
    ours = listed.get(str(jupyter_data / "labextensions"), [])
    assert f"{NAME} v0.1.0 enabled OK (python, kestrel-huntbook)" in ours, output


def ts_array(source: str, name: str) -> list[str]:
    match = re.search(rf"export const {name} = \[(.*?)\];", source, re.S)
    assert match, name
    return re.findall(r"'([^']*)'", match.group(1))


@pytest.mark.parametrize("name", ["COMMANDS", "CLAUSES", "OPERATOR_WORDS", "RELATIONS",
                                  "FUNCTIONS", "TIME_UNITS", "CONSTANTS"])
def test_codemirror_words_are_the_lexers(name):
    """The CodeMirror mode's word lists are kestrel_kernel/lexer.py's, in the same order."""
    source = (LABEXT / "src" / "kestrel.ts").read_text()
    assert ts_array(source, name) == list(getattr(lexer, name))
