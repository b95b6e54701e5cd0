"""A hunter's session in a real browser: JupyterLab with the Kestrel kernel and the
jupyterlab-kestrel extension as the wheel installs them, driven through Chromium.

Screenshots: test-artifacts/browser/{completion,huntbook,huntflow-editor}.png.
"""

import json
import pathlib
import shutil
import time

from cmview import Highlighted, kind_of, tokens_by_position
from kestrel_kernel.lexer import KestrelLexer

SAMPLE = pathlib.Path(__file__).with_name("sample.hf")
KERNEL_IDLE = '.jp-Notebook-ExecutionIndicator[data-status="idle"]'
STDERR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'


def svchost(bundle: pathlib.Path):
    """What the bundle says about svchost.exe processes, read with plain json."""
    observed = [o for o in json.loads(bundle.read_text())["objects"]
                if o["type"] == "observed-data"]
    procs = [(o, s) for o in observed for s in o["objects"].values()
             if s["type"] == "process" and s.get("name") == "svchost.exe"]
    # distinct processes by identity (pid and name: the bundle has no hosts, and its
    # `created` is each record's time), and their occurrences
    identities = {(s.get("pid"), s.get("name")) for _, s in procs}
    return {"entities": len(identities), "occurrences": len(procs),
            "records": len({o["id"] for o, _ in procs}),
            "pids": sorted({s["pid"] for _, s in procs})}


def open_completer(page, editor, timeout: float = 30):
    """Press Tab until the completer shows (bounded).

    Right after a new notebook's kernel turns idle, JupyterLab may not have wired the
    kernel's completer to the cell yet: Tab then does nothing (no request, no text change)
    and is pressed again a moment later.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    completer = page.locator(".jp-Completer:not(.lm-mod-hidden)")
    before = Highlighted.read(editor).text
    deadline = time.monotonic() + timeout
    while not completer.is_visible():
        page.wait_for_selector(".jp-Notebook.jp-mod-editMode .jp-mod-completer-enabled")
        page.keyboard.press("Tab")
        try:
            completer.wait_for(state="visible", timeout=3_000)
        except PlaywrightTimeout:
            assert Highlighted.read(editor).text == before, "Tab changed the text instead"
            assert time.monotonic() < deadline, f"no completer after {timeout} s of Tab"
    return completer


def accept_completion(page, editor, label: str, artifacts: pathlib.Path):
    """Tab in the cell, then pick `label` from the completer with the arrows + Enter."""
    completer = open_completer(page, editor)
    labels = completer.locator(".jp-Completer-item .jp-Completer-match").all_inner_texts()
    assert label in labels, labels
    for _ in range(len(labels)):
        active = completer.locator(".jp-Completer-item.jp-mod-active .jp-Completer-match")
        if active.inner_text() == label:
            break
        page.keyboard.press("ArrowDown")
    page.screenshot(path=str(artifacts / "completion.png"))
    page.keyboard.press("Enter")
    completer.wait_for(state="hidden")
    return labels


def test_huntbook_in_jupyterlab(page, shared_data, artifacts):
    bundle = shared_data / "doctored-1k.json"
    expected = svchost(bundle)

    # a new Kestrel notebook from the launcher, its kernel ready
    page.locator('.jp-LauncherCard[data-category="Notebook"][title="Kestrel"]').click()
    page.wait_for_selector(KERNEL_IDLE, timeout=60_000)
    cell = page.locator(".jp-Notebook .jp-CodeCell").first
    editor = cell.locator(".cm-content")
    editor.click()

    # type a GET over the shared data, completing the command with Tab
    page.keyboard.type("# svchost.exe processes and their pids\nprocs = G")
    labels = accept_completion(page, editor, "GET", artifacts)
    assert "GROUP" in labels  # the kernel's other candidate for G
    page.keyboard.type(f" process FROM file://{bundle} WHERE name = 'svchost.exe'\n"
                       "DISP procs ATTR name, pid SORT BY pid LIMIT 5")
    assert Highlighted.read(editor).lines == [
        "# svchost.exe processes and their pids",
        f"procs = GET process FROM file://{bundle} WHERE name = 'svchost.exe'",
        "DISP procs ATTR name, pid SORT BY pid LIMIT 5",
    ]

    # run it: the DISP table and the summary of the new variable
    page.keyboard.press("Shift+Enter")
    table = cell.locator("table.kestrel-table")
    table.wait_for(timeout=120_000)
    rows = [r.split("\t") for r in table.locator("tbody tr").all_inner_texts()]
    assert rows == [["svchost.exe", str(pid)] for pid in expected["pids"][:5]]
    summary = cell.locator("table.kestrel-summary")
    summary.wait_for(timeout=30_000)
    assert summary.locator("tbody tr").first.inner_text().split("\t")[:5] == [
        "procs", "process", str(expected["entities"]), str(expected["occurrences"]),
        str(expected["records"])]
    assert cell.locator(".jp-InputArea-prompt").inner_text().strip() == "[1]:"

    # highlighting by the extension's Kestrel mode
    assert editor.get_attribute("data-language") == "kestrel"
    seen = Highlighted.read(editor)
    bare = seen.bare()
    keyword = seen.look_of_word("GET", line=1)
    assert keyword.wrapped and keyword.color != bare.color and keyword.weight in ("700", "bold")
    for word in ("FROM", "WHERE", "DISP", "ATTR", "SORT", "BY", "LIMIT"):
        assert seen.look_of_word(word) == keyword, word
    for word in ("procs", "name", "pid"):                       # identifiers: plain text
        assert not seen.look_of_word(word, line=2).wrapped, word
    looks = {
        "comment": seen.look_of(0, 0, len(seen.lines[0])),
        "string": seen.look_of_word("'svchost.exe'"),
        "type": seen.look_of_word("process", line=1),
        "url": seen.look_of_word(f"file://{bundle}"),
        "number": seen.look_of_word("5", line=2),
    }
    assert looks["comment"].font_style == "italic"
    for kind, look in looks.items():
        assert look.wrapped and look.color not in (bare.color, keyword.color), (kind, look)
    assert looks["string"].color != looks["comment"].color != looks["type"].color

    # an error is shown as an error, not as a result
    page.keyboard.type("DISP nosuch")
    page.keyboard.press("Shift+Enter")
    error = page.locator(".jp-CodeCell").nth(1).locator(STDERR)
    error.wait_for(timeout=60_000)
    assert "jp-RenderedText" in error.get_attribute("class")
    assert error.inner_text().startswith(
        'VariableNotFound: line 1, column 1: variable "nosuch" is not defined')
    page.locator(".jp-Notebook").evaluate("n => n.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts / "huntbook.png"))
    assert page.console_errors == [], "errors in the browser console"


def test_hf_files_open_highlighted_like_pygments(page, jupyterlab, artifacts):
    """A .hf file is a Kestrel file and opens in the editor, where every token looks like
    the others of its Pygments kind (same look per kind, only names bare)."""
    shutil.copy(SAMPLE, jupyterlab.root / "sample.hf")
    file_types = page.evaluate(
        "() => window.jupyterapp.docRegistry.getFileTypesForPath('sample.hf')"
        ".map(t => [t.name, t.mimeTypes])")
    assert ["kestrel", ["text/x-kestrel"]] in file_types
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:open', "
                  "{path: 'sample.hf'})")
    editor = page.locator('.jp-FileEditor .cm-content[data-language="kestrel"]')
    editor.wait_for(timeout=30_000)

    seen = Highlighted.read(editor)
    text = SAMPLE.read_text()
    assert seen.text.rstrip("\n") == text.rstrip("\n")
    looks = {}
    for token_type, line, start, end, value in tokens_by_position(KestrelLexer(), text):
        kind = kind_of(token_type)
        look = seen.look_of(line, start, end)
        looks.setdefault(kind, {}).setdefault(look, []).append(value)
    for kind, by_look in looks.items():
        assert len(by_look) == 1, (kind, {str(k): v for k, v in by_look.items()})
    one = {kind: next(iter(by_look)) for kind, by_look in looks.items()}
    assert not one.pop("name").wrapped
    bare = seen.bare()
    for kind, look in one.items():
        assert look.wrapped and look != bare, kind
    distinct = ["keyword", "string", "comment", "type", "timestamp", "number", "builtin"]
    assert len({one[kind] for kind in distinct}) == len(distinct), one
    page.screenshot(path=str(artifacts / "huntflow-editor.png"))
    assert page.console_errors == [], "errors in the browser console"
