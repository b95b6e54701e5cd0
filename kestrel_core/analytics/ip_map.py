"""python://ip_map: the addresses of variables pinned on a world map.

    APPLY python://ip_map ON ips[, conns] [WITH db=['GeoLite2-City.mmdb'], title='...']

Addresses are placed with the data python://geoip reads (the same `db`, else the
configuration's geoip_db or KESTREL_GEOIP_DB, else the data geoip2fast ships): at their
coordinates when the data has them, else on their country (plotly places a country by its
English name, so country-level data still maps).  A pin's size grows with the address's occurrences
(the records of the entities that hold it, at least one per entity), its colour is
its variable; hovering shows the address, the place and the AS.  For network-traffic
a line joins source and destination when both ends are placed.  Private, loopback,
reserved and unknown addresses cannot be placed: a note under the map lists them.

Traces say what they hold in `meta.kestrel` ("pins" or "links") with `meta.placement`
("coordinates" or "country"); a pin's customdata is [address, occurrences, country,
city, asn, as_org], a link trace lists, point by point, [source], [destination], [None].
"""

from __future__ import annotations

import math
from collections import Counter

import plotly.graph_objects as go

from ..results import Figure
from . import AnalyticsResult, graph
from .geoip import address_columns, locate, open_data

MAX_TEXT_PINS = 50
MAX_NOTE_ADDRESSES = 12
POSITIONLESS = "no position in the data"


def ip_map(frames, *, db: list[str] = (), title: str = "", context=None):
    if context is not None:
        context.require_entities()
    names = list(frames)
    data = open_data(db, context)
    try:
        pins, links, unplaced, cache = [], [], {}, {}
        for name in names:
            frame = frames[name]
            if frame.empty:
                continue
            entity_type = context.entity_types[name] if context else None
            ends = address_columns(name, frame, entity_type)
            weight = _records_per_entity(context, name) if context else Counter()
            counts, pairs = Counter(), Counter()
            for row in frame[["id", *ends.values()]].to_dict(orient="records"):
                n = max(1, weight[row["id"]])
                found = {p: locate(data, row[c], cache) for p, c in ends.items()}
                found = {p: f for p, f in found.items() if f}
                for located in found.values():
                    counts[located] += n
                if len(found) == 2 and _link_placement(found["src_"], found["dst_"]):
                    pairs[found["src_"], found["dst_"]] += n
            for located, n in counts.items():
                if _placement(located):
                    pins.append(_pin(name, located, n))
                else:
                    status = POSITIONLESS if located.status == "located" else located.status
                    unplaced.setdefault(located.address, (status, []))[1].append(name)
            links += [_link(name, src, dst, n) for (src, dst), n in pairs.items()]
    finally:
        data.close()

    which = ", ".join(names)
    heading = title or f"Where the addresses of {which} are"
    fig = go.Figure()
    for i, name in enumerate(names):
        colour = graph.PALETTE[i % 10]
        for link_trace in _link_traces(name, [k for k in links if k["variable"] == name], colour):
            fig.add_trace(link_trace)
        for pin_trace in _pin_traces(name, [p for p in pins if p["variable"] == name], colour):
            fig.add_trace(pin_trace)
    note = _unplaced_note(unplaced)
    fig.update_layout(
        title={"text": graph.hover([heading])}, height=560, showlegend=True,
        geo={"projection": {"type": "natural earth"}, "showcountries": True,
             "countrycolor": "#c8c8c8", "showland": True, "landcolor": "#f4f4f4",
             "coastlinecolor": "#b0b0b0", "showframe": False,
             # the whole inhabited world, not plotly's fit to the pins
             "lonaxis": {"range": [-180, 180]}, "lataxis": {"range": [-60, 85]}},
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
        margin={"l": 10, "r": 10, "t": 60, "b": 60},
        annotations=[_footnote(text, row) for row, text in
                     enumerate([note, f"data: {data.description}"]) if text])

    lines = [_summary(pins, links, unplaced, data.description)] + _per_pin(pins)
    if note:
        lines.append(note)
    found = {"pins": pins, "links": links, "data": data.description,
             "unplaced": [{"address": a, "status": s, "variables": v}
                          for a, (s, v) in unplaced.items()]}
    return AnalyticsResult(display=Figure("ip_map-" + "-".join(names), heading,
                                          graph.as_json(fig), lines, found))


def _records_per_entity(context, name) -> Counter:
    records = context.timestamped(name)
    return Counter(records["id"]) if "id" in records.columns else Counter()


def _placement(located):
    """'coordinates', 'country', or None for an address the map cannot show."""
    place = located.place
    if place is None:
        return None
    if place.lat is not None and place.lon is not None:
        return "coordinates"
    return "country" if place.country_name else None


def _pin(name, located, n) -> dict:
    place = located.place
    return {"variable": name, "address": located.address, "occurrences": n,
            "placement": _placement(located), "country": place.country,
            "country_name": place.country_name, "city": place.city, "lat": place.lat,
            "lon": place.lon, "asn": place.asn, "as_org": place.as_org}


def _link_placement(src, dst):
    """How a line can join two addresses: 'coordinates', 'country' or None."""
    ends = (_placement(src), _placement(dst))
    if ends == ("coordinates", "coordinates"):
        return "coordinates"
    if all(ends) and src.place.country_name and dst.place.country_name:
        return "country"
    return None


def _link(name, src, dst, n) -> dict:
    placement = _link_placement(src, dst)

    def at(located):
        place = located.place
        return [place.lat, place.lon] if placement == "coordinates" else place.country_name

    return {"variable": name, "src": src.address, "dst": dst.address, "occurrences": n,
            "placement": placement, "src_at": at(src), "dst_at": at(dst)}


def _pin_traces(name, pins, colour):
    traces = []
    for placement in ("coordinates", "country"):
        mine = [p for p in pins if p["placement"] == placement]
        if not mine:
            continue
        where = ({"lat": [p["lat"] for p in mine], "lon": [p["lon"] for p in mine]}
                 if placement == "coordinates" else
                 {"locations": [p["country_name"] for p in mine],
                  "locationmode": "country names"})
        traces.append(go.Scattergeo(
            **where, mode="markers", name=name, legendgroup=name,
            showlegend=not traces,
            marker={"size": [_size(p["occurrences"]) for p in mine], "color": colour,
                    "opacity": 0.75, "line": {"width": 1, "color": "#333"}},
            hovertext=[_hover(p) for p in mine], hoverinfo="text",
            customdata=[[p["address"], p["occurrences"], p["country"], p["city"], p["asn"],
                         p["as_org"]] for p in mine],
            meta={"kestrel": "pins", "variable": name, "placement": placement}))
    return traces


def _link_traces(name, links, colour):
    traces = []
    for placement in ("coordinates", "country"):
        mine = [k for k in links if k["placement"] == placement]
        if not mine:
            continue
        ends, points = [], []
        for link in mine:
            ends += [[link["src"]], [link["dst"]], [None]]
            points += [link["src_at"], link["dst_at"], None]
        where = ({"lat": [p and p[0] for p in points], "lon": [p and p[1] for p in points]}
                 if placement == "coordinates" else
                 {"locations": points, "locationmode": "country names"})
        traces.append(go.Scattergeo(
            **where, mode="lines", name=f"{name}: source -> destination", legendgroup=name,
            showlegend=False, hoverinfo="skip", customdata=ends,
            line={"width": 1.2, "color": colour}, opacity=0.6,
            meta={"kestrel": "links", "variable": name, "placement": placement}))
    return traces


def _size(occurrences: int) -> float:
    return round(min(40.0, 8 + 4 * math.sqrt(occurrences - 1)), 2)


def _place_text(pin) -> str:
    if pin["placement"] == "coordinates":
        return ", ".join(x for x in (pin["city"], pin["country"]) if x) or \
            f"{pin['lat']:.2f}, {pin['lon']:.2f}"
    return f"{pin['country_name']} ({pin['country']}), country level"


def _as_text(pin) -> str:
    if pin["asn"] is None and not pin["as_org"]:
        return "AS unknown"
    return " ".join(x for x in (f"AS{pin['asn']}" if pin["asn"] is not None else "",
                                pin["as_org"] or "") if x)


def _hover(pin) -> str:
    return graph.hover([pin["address"], _place_text(pin), _as_text(pin),
                        f"{pin['occurrences']} occurrences in {pin['variable']}"])


def _unplaced_note(unplaced) -> str:
    if not unplaced:
        return ""
    items = [f"{a} ({s})" for a, (s, _) in unplaced.items()]
    more = len(items) - MAX_NOTE_ADDRESSES
    shown = ", ".join(items[:MAX_NOTE_ADDRESSES]) + (f" and {more} more" if more > 0 else "")
    return f"not placed: {shown}"


def _footnote(text, row) -> dict:
    return {"text": graph.hover([text], width=160), "showarrow": False, "xref": "paper",
            "yref": "paper", "x": 0, "y": -0.04 - 0.05 * row, "xanchor": "left",
            "yanchor": "top", "align": "left", "font": {"size": 11, "color": "#555"}}


def _summary(pins, links, unplaced, description) -> str:
    addresses = len({p["address"] for p in pins})
    by = Counter(p["placement"] for p in {p["address"]: p for p in pins}.values())
    return (f"{addresses} addresses placed ({by['coordinates']} at coordinates, "
            f"{by['country']} by country), {len(links)} source-destination links, "
            f"{len(unplaced)} not placed; data: {description}")


def _per_pin(pins) -> list:
    ordered = sorted(pins, key=lambda p: (-p["occurrences"], p["variable"], p["address"]))
    lines = [f"{p['address']} in {p['variable']}: {_place_text(p)}, {_as_text(p)}, "
             f"{p['occurrences']} occurrences" for p in ordered[:MAX_TEXT_PINS]]
    if len(ordered) > MAX_TEXT_PINS:
        lines.append(f"... {len(ordered) - MAX_TEXT_PINS} more in the figure")
    return lines

