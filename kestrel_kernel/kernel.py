"""The Kestrel Jupyter kernel: protocol glue between ipykernel and one Session.

No language logic lives here: execution, completion, completeness and help are
asked of the core's Session (`kestrel.session`; its errors and results come from
`kestrel.errors` and `kestrel.results`); `render` turns results into MIME bundles.
"""

from __future__ import annotations

import atexit
import ipaddress
import logging
import os
import time
import uuid
from importlib.metadata import PackageNotFoundError, version

from ipykernel.kernelapp import IPKernelApp
from ipykernel.kernelbase import Kernel

from kestrel.errors import KestrelError
from kestrel.results import VariableSummary
from kestrel.session import Session

from . import render

log = logging.getLogger("kestrel.kernel")

try:
    VERSION = version("kestrel-huntbook")
except PackageNotFoundError:  # running from a source tree
    VERSION = "0"

INTERRUPTED = "interrupted: the statement was cancelled; earlier variables are unchanged"
_MALFORMED_CODE = "malformed request: code must be a string"


def _malformed(code, cursor_pos) -> str | None:
    """What is wrong with a request a front end sent, or None: a reply with status error
    beats none at all (ipykernel sends nothing when a handler raises)."""
    if not isinstance(code, str):
        return _MALFORMED_CODE
    if cursor_pos is not None and (isinstance(cursor_pos, bool)
                                   or not isinstance(cursor_pos, int)):
        return f"malformed request: cursor_pos must be a whole number, not {cursor_pos!r}"
    return None


class KestrelKernel(Kernel):
    implementation = "kestrel"
    implementation_version = VERSION
    language = "kestrel"
    language_version = "1"
    language_info = {
        "name": "kestrel",
        "version": "1",
        "mimetype": "text/x-kestrel",
        "file_extension": ".hf",
        "pygments_lexer": "kestrel",
        "codemirror_mode": "kestrel",
    }
    banner = "Kestrel: threat hunting with huntflows"
    help_links = [{"text": "Kestrel language",
                   "url": "https://kestrel.readthedocs.io/en/stable/language/index.html"}]

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        debug = os.environ.get("KESTREL_DEBUG", "").lower() in ("1", "true", "yes")
        # `self.session` is ipykernel's message session; the Kestrel one is `hunt`
        self.hunt, self.startup_error = None, None
        self.render = render.Renderer()
        try:
            self.hunt = Session(debug_mode=debug)
        except KestrelError as err:  # e.g. a bad configuration: told in each cell, no dead kernel
            self.startup_error = err
        else:
            atexit.register(self.hunt.close)

    # ------------------------------------------------------------ execute

    async def do_execute(self, code, silent, store_history=True, user_expressions=None,
                         allow_stdin=False):
        if not isinstance(code, str):
            return self._error_reply("KestrelProtocolError", _MALFORMED_CODE, silent)
        if self.hunt is None:
            err = self.startup_error
            return self._error_reply(type(err).__name__, str(err), silent)
        started = time.monotonic()
        request = self.get_parent("shell").get("metadata") or {}
        self.render.start_cell(request.get("cellId"), request.get("deletedCells") or ())
        before = self.hunt.variable_versions()
        results = []
        self.hunt.progress = None if silent else self._progress_display()
        try:
            # each statement's output shows when it finishes, so a later error keeps it
            for result in self.hunt.execute_iter(code):
                results.append(result)
                if not silent and not isinstance(result, VariableSummary):  # in the summary
                    self._display(self.render.bundle(result))
        except KeyboardInterrupt:
            # an error reply (not the deprecated "abort"): front ends show it, and ipykernel
            # then drops the cells queued after this one, as for any failed cell
            if not silent:
                self._summary(results, before, started)  # statements before the cancelled one
            return self._error_reply("KeyboardInterrupt", INTERRUPTED, silent)
        except KestrelError as err:
            if not silent:
                self._summary(results, before, started)  # statements before the failing one
            return self._error_reply(type(err).__name__, str(err), silent)
        except Exception as err:  # a bug: one line for the hunter, details in the log
            log.exception("kernel: internal error")
            text = (f"KestrelInternalError: {type(err).__name__}: {err}\n"
                    f"see the session log: {self.hunt.log_path}")
            return self._error_reply("KestrelInternalError", text, silent)
        if not silent:
            self._summary(results, before, started)
        return {"status": "ok", "execution_count": self.execution_count,
                "payload": [], "user_expressions": {}}

    def _error_reply(self, ename, text, silent):
        lines = text.splitlines() or [ename]
        evalue = lines[0].removeprefix(f"{ename}: ")
        content = {"ename": ename, "evalue": evalue, "traceback": lines}
        if not silent:
            self.send_response(self.iopub_socket, "error", content)
        return {"status": "error", "execution_count": self.execution_count, **content}

    def _summary(self, results, before, started):
        summaries = render.changed_variables(results, self.hunt, before)
        if summaries:
            self._display(render.summary_bundle(summaries, time.monotonic() - started))

    def _progress_display(self):
        """A callable that shows a query's progress in one display, updated in place."""
        display_id = f"kestrel-progress-{uuid.uuid4().hex}"
        shown = []

        def report(text):
            content = {"data": {"text/plain": text}, "metadata": {},
                       "transient": {"display_id": display_id}}
            self.send_response(self.iopub_socket,
                               "update_display_data" if shown else "display_data", content)
            shown.append(text)

        return report

    def _display(self, content):
        self.send_response(self.iopub_socket, "display_data", content)

    # ------------------------------------------------------------ complete, inspect

    async def do_complete(self, code, cursor_pos):
        problem = _malformed(code, cursor_pos)
        if problem:
            return self._error_reply("KestrelProtocolError", problem, silent=True)
        cursor_pos = len(code) if cursor_pos is None else cursor_pos
        if self.hunt is None:
            return {"status": "ok", "matches": [], "cursor_start": cursor_pos,
                    "cursor_end": cursor_pos, "metadata": {"_jupyter_types_experimental": []}}
        found = self.hunt.complete(code, cursor_pos)
        types = [{"start": found.cursor_start, "end": found.cursor_end, "text": text, "type": kind}
                 for text, kind in zip(found.matches, found.types)]
        return {"status": "ok", "matches": found.matches, "cursor_start": found.cursor_start,
                "cursor_end": found.cursor_end,
                "metadata": {"_jupyter_types_experimental": types}}

    async def do_is_complete(self, code):
        problem = _malformed(code, None)
        if problem:
            return self._error_reply("KestrelProtocolError", problem, silent=True)
        status = Session.is_complete(code)
        if status == "incomplete":
            return {"status": status, "indent": "    "}
        return {"status": status}

    async def do_inspect(self, code, cursor_pos, detail_level=0, omit_sections=()):
        problem = _malformed(code, cursor_pos)
        if problem:
            return self._error_reply("KestrelProtocolError", problem, silent=True)
        data = {}
        if self.hunt is not None:
            try:
                found = self.hunt.inspect(code, cursor_pos)
            except KestrelError as err:
                data = {"text/plain": str(err)}
            else:
                data = self.render.bundle(found)["data"] if found is not None else {}
        return {"status": "ok", "found": bool(data), "data": data, "metadata": {}}

    # ------------------------------------------------------------ shutdown

    async def do_shutdown(self, restart):
        # This runs on the control thread, but the store's SQLite connection belongs
        # to the main thread: close there, before the main loop stops (atexit as a net).
        self.render.close()
        loop = getattr(self, "io_loop", None)
        if self.hunt is not None and loop is not None:
            loop.add_callback(self.hunt.close)
        elif self.hunt is not None:
            self.hunt.close()
        return {"status": "ok", "restart": restart}


class KestrelKernelApp(IPKernelApp):
    """ipykernel's app, less its warning about unencrypted TCP when the kernel listens on
    the loopback interface only (Jupyter's usual set-up): that traffic never leaves the
    machine, and the warning would greet every hunter in every front end's log."""

    def init_sockets(self):
        if self.transport == "tcp" and _is_loopback(self.ip):
            self.log.addFilter(lambda record: "without encryption" not in record.getMessage())
        super().init_sockets()


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
