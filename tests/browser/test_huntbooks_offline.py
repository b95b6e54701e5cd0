"""Huntbooks that travel: each example huntbook is executed by `kestrel run` (nbclient and
the real Kestrel kernel; in a network namespace with only loopback where allowed, so
kaleido's static images are made with no network), exported with nbconvert to HTML and
opened in headless Chromium with every request but file:// refused.

Each figure must draw there (an SVG with as many points as its JSON has markers, a map
with its land), hold a real PNG of its layout's size, and show that PNG where JavaScript
is off; no output may reference a CDN; tables keep a text form and carry no external CSS.

Screenshots: test-artifacts/browser/offline-<huntbook>-<n>.png.
"""

import base64
import io
import json
import pathlib
import re
import subprocess
import sys

import nbformat
import pytest
from nbconvert import HTMLExporter
from PIL import Image

REPO = pathlib.Path(__file__).resolve().parents[2]
BOOKS = REPO / "examples" / "huntbooks"
DATA_IN_BOOKS = "../../../shared/data/"
PLOTLY = "application/vnd.plotly.v1+json"
CDN = re.compile(r"(?i)(https?:|(src|href)\s*=\s*[\"']?)//[^\s\"'<>()]*"
                 r"(cdn|unpkg|jsdelivr|plot\.ly|googleapis)")
DATA_URI = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]+")
EXTERNAL_CSS = re.compile(r"(?i)<link\b|@import|url\(\s*['\"]?(https?:)?//")
NO_NETWORK = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]


def _isolated() -> list:
    """A prefix that runs a command with loopback only, or [] where that is not allowed."""
    probe = subprocess.run([*NO_NETWORK, "true"], capture_output=True)
    return NO_NETWORK if probe.returncode == 0 else []


@pytest.fixture(scope="module")
def executed(kernel_spec, shared_data, tmp_path_factory):
    """name -> (executed notebook, its nbconvert HTML file)."""
    folder, prefix = tmp_path_factory.mktemp("offline-books"), _isolated()

    def run(name):
        book = folder / name
        book.write_text((BOOKS / name).read_text().replace(DATA_IN_BOOKS, f"{shared_data}/"))
        done = subprocess.run([*prefix, sys.executable, "-m", "kestrel", "run", str(book)],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        notebook = nbformat.read(book, as_version=4)
        page = book.with_suffix(".html")
        page.write_text(HTMLExporter().from_notebook_node(notebook)[0], encoding="utf-8")
        return notebook, page

    return run


def library() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def markers(figure) -> int:
    """Points plotly draws as markers: the traces with markers, one per value."""
    count = 0
    for trace in figure["data"]:
        if "markers" in trace.get("mode", "markers"):
            values = trace.get("x") or trace.get("lat") or trace.get("locations") or []
            count += sum(v is not None for v in values)
    return count


def image_size(figure) -> tuple:
    layout = figure["layout"]
    return layout.get("width") or 900, layout.get("height") or 450


@pytest.mark.parametrize("name", [p.name for p in sorted(BOOKS.glob("*.ipynb"))])
def test_huntbook_travels(name, executed, browser, artifacts):
    notebook, page = executed(name)
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    figures = [o for o in outputs if PLOTLY in o.get("data", {})]
    lib = library()

    # what the outputs hold, read from the .ipynb
    for output in outputs:
        assert output["output_type"] == "display_data", output
        data = output["data"]
        assert data["text/plain"].strip() and "<" not in data["text/plain"][:1]
        for mime, value in data.items():
            if mime.startswith("image/"):
                continue
            text = value if isinstance(value, str) else json.dumps(value)
            text = DATA_URI.sub("", text.replace(lib, ""))
            assert not CDN.search(text), (mime, CDN.search(text).group(0))
        if "text/html" in data and PLOTLY not in data:
            assert not EXTERNAL_CSS.search(data["text/html"])
    carriers = [i for i, f in enumerate(figures) if lib in f["data"]["text/html"]]
    assert carriers == ([0] if figures else [])  # plotly.js once, in the first figure
    for figure in figures:
        size = image_size(figure["data"][PLOTLY])
        image = Image.open(io.BytesIO(base64.b64decode(figure["data"]["image/png"])))
        image.load()
        assert image.format == "PNG" and image.size == size
        assert figure["metadata"]["image/png"] == {"width": size[0], "height": size[1]}
        assert len(image.convert("RGB").getcolors(size[0] * size[1])) > 3  # not blank

    # the exported page in Chromium, network refused: every figure draws
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    refused, errors = [], []
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
        "file:") else (refused.append(route.request.url), route.abort()))
    tab = context.new_page()
    tab.on("pageerror", lambda err: errors.append(str(err)))
    tab.goto(page.as_uri(), timeout=120_000)
    tab.wait_for_function(
        f"document.querySelectorAll('.plotly-graph-div .main-svg').length >= {len(figures)} "
        "&& document.querySelectorAll('img.kestrel-static').length === 0", timeout=120_000)
    drawn = tab.evaluate("""() => Array.from(document.querySelectorAll('.plotly-graph-div'))
        .map(div => ({traces: div.querySelectorAll('.main-svg .trace').length,
                      points: div.querySelectorAll('.main-svg .point').length,
                      land: Math.max(0, ...Array.from(div.querySelectorAll('.geo .layer.land path'))
                                     .map(p => (p.getAttribute('d') || '').length))}))""")
    for i, (figure, shown) in enumerate(zip(figures, drawn)):
        fig = figure["data"][PLOTLY]
        assert shown["traces"] >= 1 and shown["points"] == markers(fig), (i, shown)
        if any(t["type"] == "scattergeo" for t in fig["data"]):
            assert shown["land"] > 1000, shown  # the basemap, from the notebook itself
        tab.locator(".plotly-graph-div").nth(i).screenshot(
            path=str(artifacts / f"offline-{page.stem}-{i}.png"))
    assert len(drawn) == len(figures) and not errors, errors
    everything = json.dumps(outputs)
    assert not [url for url in refused if url in everything]  # only nbconvert's template's
    context.close()

    # where no script runs, the static images stand for the figures
    context = browser.new_context(java_script_enabled=False)
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
        "file:") else route.abort())
    tab = context.new_page()
    tab.goto(page.as_uri(), timeout=120_000)
    shown = tab.evaluate("""() => Array.from(document.querySelectorAll('img.kestrel-static'))
        .map(img => [img.complete, img.naturalWidth, img.naturalHeight])""")
    assert shown == [[True, *image_size(f["data"][PLOTLY])] for f in figures]
    context.close()
