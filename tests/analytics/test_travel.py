"""Figures that travel: the offline HTML form, static PNGs from kaleido in the local
Chromium (also with no network at all), and the kernel's bundles: plotly JSON, PNG and
HTML, plotly.js carried by one cell of a notebook, a short note when no image can be made.

PNGs are decoded with Pillow; sizes and colours are checked against the figures' own
layouts, computed here."""

import base64
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest
from figdata import PLOTLY, figure_in_html
from PIL import Image

from kestrel.analytics import offline
from kestrel.analytics.static_images import StaticImages

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "kernel"))
from kerneltools import Cell, start_kernel  # noqa: E402

GREEN = (0, 255, 0)
MAP = {"data": [{"type": "scattergeo", "locations": ["France", "Brazil"],
                 "locationmode": "country names", "mode": "markers",
                 "marker": {"size": 14, "color": "#ff0000"}}],
       "layout": {"width": 640, "height": 360, "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
                  "geo": {"showland": True, "landcolor": "#00ff00", "showcountries": True,
                          "resolution": 50, "lonaxis": {"range": [-180, 180]},
                          "lataxis": {"range": [-60, 85]}}}}
NO_BROWSER = "/nonexistent/chromium"


def need_chromium():
    if not (shutil.which("chromium") or shutil.which("google-chrome")):
        message = "no Chromium for kaleido: apt-get install chromium (scripts/deps/chromium.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def decoded(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()  # decodes every row: a truncated or corrupt PNG fails here
    assert image.format == "PNG"
    return image.convert("RGB")


def share(image: Image.Image, colour) -> float:
    pixels = image.width * image.height
    return {c: n for n, c in image.getcolors(pixels)}.get(colour, 0) / pixels


def plotlyjs() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


# ------------------------------------------------------------ the offline HTML form


def test_html_form_is_offline_and_safe():
    hostile = "</script><script>window.hacked = 1</script><!--"
    figure = {"data": [{"type": "scatter", "x": [1, 2], "y": [3, 4], "name": hostile}],
              "layout": {"title": {"text": hostile}}}
    fragment = offline.figure_html(figure, plotlyjs=False, image=b"\x89PNG-bytes",
                                   notes=["no static image: <reason>"], alt=hostile)
    assert fragment.count("<script>") == fragment.count("</script>") == 1  # data cannot end it
    assert figure_in_html(fragment) == figure
    assert "data:image/png;base64," + base64.b64encode(b"\x89PNG-bytes").decode() in fragment
    assert "<p class='kestrel-note'>no static image: &lt;reason&gt;</p>" in fragment
    assert plotlyjs() not in fragment and "PlotlyGeoAssets" not in fragment
    assert plotlyjs() in offline.figure_html(figure, plotlyjs=True)


def test_maps_carry_their_basemap():
    fragment = offline.figure_html(MAP, plotlyjs=False)
    # plotly.js names its basemap scope_resolution; the 50m one is drawn from the 110m file
    assert offline.basemap_names(MAP) == []  # 50m files are not shipped
    assert offline.basemap_names(offline.travelling(MAP)) == ["world_110m"]
    world = json.loads((offline.GEO_DIR / "world_110m.json").read_text())
    assert {"land", "countries", "coastlines"} <= set(world["objects"])
    at = fragment.index('PlotlyGeoAssets.topojson["world_110m"]=') + 39
    assert json.JSONDecoder().raw_decode(fragment, at)[0] == world
    assert figure_in_html(fragment)["layout"]["geo"]["resolution"] == 110
    assert MAP["layout"]["geo"]["resolution"] == 50  # the result's own figure is unchanged
    scoped = {"data": [{"type": "choropleth", "geo": "geo2"}],
              "layout": {"geo2": {"scope": "south america"}}}
    assert offline.basemap_names(scoped) == ["south-america_110m"]


def test_standalone_page_requests_nothing():
    page = offline.page_html(MAP, "a map")
    rest = page.replace(plotlyjs(), "")
    assert "src=" not in rest.replace("src='data:image/png", "") and "href=" not in rest
    assert "http" not in rest


# ------------------------------------------------------------ static PNGs


def test_static_png_has_the_layout_size_and_the_basemap():
    need_chromium()
    images = StaticImages()
    try:
        png = images.png(MAP)
        assert png is not None, images.why
        image = decoded(png)
        assert image.size == (640, 360)
        assert share(image, GREEN) > 0.1   # land, from the shipped basemap
        plain = decoded(images.png({"data": [{"type": "bar", "y": [1, 3, 2]}], "layout": {}}))
        assert plain.size == (offline.DEFAULT_WIDTH, offline.DEFAULT_HEIGHT)
        assert len(plain.getcolors(maxcolors=1 << 16)) > 3  # bars and axes, not a blank page
    finally:
        images.close()


def test_static_png_needs_no_network(tmp_path):
    """kaleido and Chromium in a network namespace of their own: no network at all."""
    need_chromium()
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -n is not allowed here (needs root or user namespaces)")
    out = tmp_path / "map.png"
    code = ("import json, sys; from kestrel.analytics.static_images import StaticImages\n"
            "images = StaticImages(); png = images.png(json.loads(sys.argv[1]))\n"
            "images.close(); sys.exit(images.why) if png is None else "
            "open(sys.argv[2], 'wb').write(png)")
    run = subprocess.run(["unshare", "-n", sys.executable, "-c", code, json.dumps(MAP),
                          str(out)], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    image = decoded(out.read_bytes())
    assert image.size == (640, 360) and share(image, GREEN) > 0.1


def browser_processes() -> int:
    """Processes descending from this one (kaleido's browser and its helpers)."""
    parents = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return len(found)


def test_idle_browser_stops_and_starts_again():
    need_chromium()
    before = browser_processes()
    images = StaticImages(idle=1.0)
    try:
        assert images.png(MAP) is not None and browser_processes() > before
        deadline = time.monotonic() + 30
        while browser_processes() > before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert browser_processes() == before  # ~400 MB given back while no figure comes
        assert decoded(images.png(MAP)).size == (640, 360)
    finally:
        images.close()


def test_no_browser_is_said_not_raised(monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", NO_BROWSER)
    images = StaticImages()
    assert images.png(MAP) is None
    assert images.why.startswith("kaleido found no Chrome or Chromium")
    assert images.png(MAP) is None and images.why == images.problem  # not tried again


# ------------------------------------------------------------ the kernel's bundles


def execute(kc, code, **metadata) -> Cell:
    """An execute_request carrying `metadata` (JupyterLab sends cellId, deletedCells)."""
    content = {"code": code, "silent": False, "store_history": True,
               "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}
    msg = kc.session.msg("execute_request", content, metadata=metadata)
    kc.shell_channel.send(msg)
    msg_id, messages = msg["header"]["msg_id"], []
    while True:
        message = kc.get_iopub_msg(timeout=180)
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            break
        messages.append(message)
    reply = kc.get_shell_msg(timeout=60)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=60)
    return Cell(reply, messages)


def figure_of(cell: Cell) -> dict:
    assert cell.status == "ok", cell.reply
    assert not cell.of_type("stream")  # nothing from kaleido or the browser on stderr
    (shown,) = [d for d in cell.displays if PLOTLY in d["data"]]
    return shown


@pytest.fixture(scope="module")
def kernel_factory(kernel_spec, bundle_path, tmp_path_factory):
    started = []

    def start(**env):
        km, kc = start_kernel(tmp_path_factory.mktemp("kernel"), **env)
        started.append((km, kc))
        cell = execute(kc, f"procs = GET process FROM '{bundle_path}' "
                           "WHERE name IN ('cmd.exe', 'powershell.exe')")
        assert cell.status == "ok", cell.reply
        return kc

    yield start
    for km, kc in started:
        kc.stop_channels()
        km.shutdown_kernel(now=False)


def test_kernel_figures_travel(kernel_factory):
    need_chromium()
    kc = kernel_factory()
    library = plotlyjs()
    tree = figure_of(execute(kc, "APPLY python://process_tree ON procs", cellId="tree"))
    data, metadata = tree["data"], tree["metadata"]
    assert set(data) == {PLOTLY, "image/png", "text/html", "text/plain"}
    layout = data[PLOTLY]["layout"]
    size = (layout.get("width") or 900, layout["height"])
    image = decoded(base64.b64decode(data["image/png"]))
    assert image.size == size and metadata["image/png"] == dict(zip(("width", "height"), size))
    assert share(image, (255, 255, 255)) < 0.99 and len(image.getcolors(1 << 16)) > 3
    html = data["text/html"]
    assert library in html and f"base64,{data['image/png']}" in html
    assert figure_in_html(html) == {"data": data[PLOTLY]["data"], "layout": layout}
    assert "note:" not in data["text/plain"]

    # later figures rely on the carrier; re-running it, or deleting it, moves plotly.js
    timeline = figure_of(execute(kc, "APPLY python://timeline ON procs", cellId="timeline"))
    assert library not in timeline["data"]["text/html"] and "image/png" in timeline["data"]
    again = figure_of(execute(kc, "APPLY python://process_tree ON procs", cellId="tree"))
    assert library in again["data"]["text/html"]
    moved = figure_of(execute(kc, "APPLY python://timeline ON procs", cellId="late",
                              deletedCells=["tree"]))
    assert library in moved["data"]["text/html"]
    plain = figure_of(execute(kc, "APPLY python://timeline ON procs"))  # no cell id
    assert library not in plain["data"]["text/html"]


def test_kernel_without_a_browser(kernel_factory):
    kc = kernel_factory(BROWSER_PATH=NO_BROWSER)
    first = figure_of(execute(kc, "APPLY python://process_tree ON procs"))["data"]
    second = figure_of(execute(kc, "APPLY python://timeline ON procs"))["data"]
    assert "image/png" not in first and "image/png" not in second
    note = "no static image: kaleido found no Chrome or Chromium"
    assert first["text/plain"].splitlines()[-1].startswith(f"note: {note}")
    assert f"<p class='kestrel-note'>{note}" in first["text/html"]
    assert note not in second["text/plain"] and note not in second["text/html"]  # said once
    assert plotlyjs() in first["text/html"] and "kestrel-static" not in first["text/html"]
