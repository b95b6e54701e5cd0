"""Static PNGs of figures, rendered by kaleido in a local Chrome/Chromium.

Why kaleido: it is plotly's own static export, so the image is what plotly.js draws.  Why
one browser kept running: kaleido's one-shot calls start a browser per image (about 3 s);
kept, an image costs about 0.2 s after one start of about 2.5 s.  The browser holds about
400 MB, so it stops after IDLE_SECONDS without a figure and starts again when one comes.
Nothing is fetched: plotly.js is the copy plotly.py ships, MathJax is off (kaleido would
take it from a CDN) and the basemaps are the shipped ones (offline.py).

A missing kaleido or browser, or a failing render, is never an error: `png` returns None
and `why` says why, in a few words a hunter can act on.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import os
import shutil
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

from . import offline

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0     # seconds for the browser to start
RENDER_TIMEOUT = 60.0    # seconds for one image
IDLE_SECONDS = 300.0     # the browser stops after this long without a figure
NO_BROWSER = ("kaleido found no Chrome or Chromium (install one, e.g. `apt-get install "
              "chromium`, or set BROWSER_PATH)")


class StaticImages:
    """PNG images of plotly figures (JSON dicts) from one browser, started on first use."""

    def __init__(self, render_timeout: float = RENDER_TIMEOUT, idle: float = IDLE_SECONDS):
        self.render_timeout, self.idle = render_timeout, idle
        self._idle_timer = None
        self.problem: str | None = None   # why there are no images; None while they work
        self.why: str | None = None       # why the last `png` gave none
        self._kaleido = self._loop = self._thread = self._folder = None
        self._lock = threading.Lock()
        atexit.register(self.close)

    def png(self, figure: dict) -> bytes | None:
        """The figure as a PNG of its layout's size (offline.image_size), or None and
        `why` says why."""
        self.why = None
        with self._lock:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
            if self.problem is None and self._kaleido is None:
                self._start()
            if self.problem is not None:
                self.why = self.problem
                return None
            width, height = offline.image_size(figure)
            opts = {"format": "png", "width": width, "height": height, "scale": 1}
            job = asyncio.run_coroutine_threadsafe(
                self._kaleido.calc_fig(offline.travelling(figure), opts=opts), self._loop)
            try:  # kaleido's own timeout comes first; this one catches a stuck browser
                return job.result(self.render_timeout + 15)
            except concurrent.futures.TimeoutError:
                job.cancel()
                # the browser may be stuck: later figures should not wait as long again
                self._stop(f"rendering took over {self.render_timeout:.0f} s; no static "
                           "images for the rest of this session")
                self.why = self.problem
            except Exception as err:  # a figure kaleido cannot draw: the next may be fine
                log.warning("static image failed", exc_info=True)
                self.why = f"kaleido could not draw this figure ({type(err).__name__}: {err})"
            finally:
                if self._kaleido is not None:
                    self._idle_timer = threading.Timer(self.idle, self.close)
                    self._idle_timer.daemon = True
                    self._idle_timer.start()
            return None

    def _start(self):
        try:
            import kaleido
            from choreographer.errors import ChromeNotFoundError
        except ImportError:
            self.problem = "kaleido is not installed (pip install kaleido)"
            return
        self._folder = tempfile.mkdtemp(prefix="kestrel-", dir=_short_base())
        assets = Path(self._folder) / "basemaps.js"
        assets.write_text(offline.geo_assets_script(
            sorted(p.stem for p in offline.GEO_DIR.glob("*.json"))))
        import plotly

        plotlyjs = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="kestrel-kaleido")
        self._thread.start()

        async def open_browser():
            page = kaleido.PageGenerator(plotly=str(plotlyjs), mathjax=False,
                                         others=[str(assets)])
            browser = kaleido.Kaleido(n=1, timeout=self.render_timeout, page_generator=page,
                                      tmp_dir=self._folder)
            with _contained(self._folder):
                await browser.open()
            return browser

        opening = asyncio.run_coroutine_threadsafe(open_browser(), self._loop)
        try:
            self._kaleido = opening.result(START_TIMEOUT)
        except ChromeNotFoundError:
            self._stop(NO_BROWSER)
        except Exception as err:  # a browser that does not start
            opening.cancel()
            log.warning("kaleido did not start", exc_info=True)
            self._stop(f"kaleido's browser did not start ({type(err).__name__}: {err})")

    def _stop(self, problem: str | None):
        self.problem = problem
        if self._kaleido is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._kaleido.close(), self._loop).result(10)
            except Exception:  # a stuck browser: the loop's end leaves it to choreographer
                log.warning("kaleido did not close", exc_info=True)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            if not self._thread.is_alive():
                self._loop.close()
        if self._folder:
            shutil.rmtree(self._folder, ignore_errors=True)
        self._kaleido = self._loop = self._thread = self._folder = None

    def close(self):
        """Stop the browser; a later `png` starts it again."""
        with self._lock:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
            self._stop(self.problem)


SOCKET = "/org.chromium.Chromium.XXXXXX/SingletonSocket"  # the browser's, in its TMPDIR


def _short_base() -> str:
    """Where the browser's folder goes: TMPDIR, unless its path is too long for the socket
    the browser makes in its TMPDIR (at most 108 bytes: the browser dies at start), then
    /tmp."""
    base = tempfile.gettempdir()
    if len(base) + len("/kestrel-XXXXXXXX") + len(SOCKET) < 100 or not os.access("/tmp", os.W_OK):
        return base
    return "/tmp"


@contextmanager
def _contained(folder: str):
    """The environment the browser starts with: its settings, crash reports, runtime and
    temporary files go to `folder` (removed with it), not to the hunter's ~/.config,
    XDG_RUNTIME_DIR and TMPDIR.
    Set for the moment the process starts (choreographer copies os.environ then)."""
    paths = {"TMPDIR": Path(folder), "XDG_CONFIG_HOME": Path(folder) / "config",
             "XDG_CACHE_HOME": Path(folder) / "cache", "XDG_RUNTIME_DIR": Path(folder) / "run"}
    saved = {name: os.environ.get(name) for name in paths}
    for name, path in paths.items():
        path.mkdir(exist_ok=True)
        os.environ[name] = str(path)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
