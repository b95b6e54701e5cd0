"""Fixtures for the browser tests: the package as a wheel ships it, JupyterLab on 127.0.0.1,
and Chromium driven by Playwright.

- ``source_copy`` / ``built_wheel``: a copy of the source tree, and a wheel built from it.
- ``jupyter_data``: a temp ``share/jupyter`` holding what the wheel installs there (the
  prebuilt labextension) and the Kestrel kernelspec, for ``JUPYTER_PATH``.
- ``jupyterlab``: a JupyterLab server of our own (free port, token, its own root, settings,
  workspaces, config, data and runtime dirs in tmp), stopped by its PID at the end.
- ``browser`` / ``page``: headless Debian Chromium (``/usr/bin/chromium``, never
  ``playwright install``); a page per test, with a fresh workspace.

Without Chromium or Playwright the tests skip, or fail when CI=true.
Screenshots and the server log go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import json
import os
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
import zipfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = pathlib.Path(os.environ.get("KESTREL_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EXTENSION = "jupyterlab-kestrel"

# Settings that keep JupyterLab quiet and the completer deterministic: no news toast, only the
# kernel's completions (the editor-token provider off) and time for the kernel to answer.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                    "checkForUpdates": False},
    "@jupyterlab/completer-extension/manager": {
        "providerTimeout": 15000,
        "availableProviders": {"CompletionProvider:kernel": 550,
                               "CompletionProvider:context": -1},
    },
}


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives JupyterLab in Chromium (tests/browser)")


def pytest_collection_modifyitems(items):
    here = pathlib.Path(__file__).parent
    for item in items:
        if here in pathlib.Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)


def missing(message: str):
    """Skip, or fail under CI=true, where a missing browser must not pass unnoticed."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------ the package as shipped


@pytest.fixture(scope="session")
def source_copy(tmp_path_factory) -> pathlib.Path:
    """The source tree without VCS, venv, node_modules and build output (builds write here)."""
    source = tmp_path_factory.mktemp("source") / "kestrel-huntbook"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "test-artifacts", "build", "dist", "*.egg-info",
        "__pycache__", ".pytest_cache", ".hypothesis"))
    return source


@pytest.fixture(scope="session")
def built_wheel(source_copy, tmp_path_factory) -> pathlib.Path:
    """A wheel of the project (pip wheel, no build isolation, no dependencies)."""
    dist = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-q", "-w", str(dist), str(source_copy)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"pip wheel failed:\n{proc.stdout}{proc.stderr}"
    (wheel,) = dist.glob("kestrel_huntbook-*.whl")
    return wheel


@pytest.fixture(scope="session")
def jupyter_data(built_wheel, tmp_path_factory) -> pathlib.Path:
    """A `share/jupyter` with the wheel's files for it and the Kestrel kernelspec."""
    prefix = tmp_path_factory.mktemp("jupyter-prefix")
    with zipfile.ZipFile(built_wheel) as wheel:
        for name in wheel.namelist():
            head, sep, rest = name.partition(".data/data/")
            if sep and "/" not in head and rest.startswith("share/jupyter/"):
                target = prefix / rest
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(wheel.read(name))
    subprocess.run([sys.executable, "-m", "kestrel_kernel.install", "--prefix", str(prefix)],
                   check=True, capture_output=True, text=True, timeout=60)
    return prefix / "share" / "jupyter"


# ------------------------------------------------------------ JupyterLab


class Lab:
    """A running JupyterLab: where it listens, its root dir, its log."""

    def __init__(self, port: int, token: str, root: pathlib.Path, log: pathlib.Path):
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}/"
        self.token = token
        self.root = root
        self.log = log

    def url(self, path: str, **query) -> str:
        params = "&".join([*(f"{k}={v}" if v is not None else k for k, v in query.items()),
                           f"token={self.token}"])
        return f"{self.base_url}{path}?{params}"

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _lab_env(tmp: pathlib.Path, jupyter_data: pathlib.Path) -> dict:
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "TMPDIR"):
        (tmp / name.lower()).mkdir()
        env[name] = str(tmp / name.lower())
    env["JUPYTER_PATH"] = str(jupyter_data)   # ahead of the venv's share/jupyter
    env.pop("JUPYTER_PREFER_ENV_PATH", None)
    return env


def _wait_ready(proc: subprocess.Popen, lab: Lab, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{lab.log_tail()}")
        try:
            with urllib.request.urlopen(lab.url("api/status"), timeout=5) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"JupyterLab not ready after {timeout} s:\n{lab.log_tail()}")


def _stop(proc: subprocess.Popen):
    """SIGTERM the server by its PID (it shuts its kernels down), then SIGKILL if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def jupyterlab(jupyter_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jupyterlab")
    root, settings, workspaces = tmp / "root", tmp / "settings", tmp / "workspaces"
    for path in (root, settings, workspaces):
        path.mkdir()
    for plugin, values in LAB_SETTINGS.items():
        target = settings / f"{plugin}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))

    lab = Lab(_free_port(), secrets.token_hex(16), root, tmp / "jupyterlab.log")
    argv = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
            f"--port={lab.port}", "--port-retries=0",
            f"--IdentityProvider.token={lab.token}", f"--ServerApp.root_dir={root}",
            f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={workspaces}",
            "--LabApp.expose_app_in_browser=True", "--LabApp.extension_manager=readonly"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    with open(lab.log, "w") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=_lab_env(tmp, jupyter_data))
    try:
        _wait_ready(proc, lab)
        yield lab
    finally:
        _stop(proc)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        if lab.log.exists():
            shutil.copy(lab.log, ARTIFACTS / "jupyterlab.log")


# ------------------------------------------------------------ Chromium


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} not found: install Debian's chromium "
                "(scripts/deps/chromium.sh does, run by scripts/test as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def artifacts() -> pathlib.Path:
    """test-artifacts/browser/: screenshots and the JupyterLab log (gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def page(browser, jupyterlab):
    """A page with JupyterLab loaded in a fresh workspace; console errors collected."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    page.goto(jupyterlab.url(f"lab/workspaces/t{uuid.uuid4().hex[:8]}", reset=None),
              timeout=60_000)
    page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
    try:
        yield page
    finally:
        context.close()
