"""python://geoip: where addresses are and who routes them, offline.

    APPLY python://geoip ON ips[, conns] [WITH db=['GeoLite2-City.mmdb', 'GeoLite2-ASN.mmdb']]

On ipv4-addr / ipv6-addr entities (from `value`) it sets x_geo_country (ISO 3166
code), x_geo_city, x_geo_lat, x_geo_lon, x_asn and x_as_org; on network-traffic the
same for each end, x_src_geo_country ... x_src_as_org and x_dst_geo_country ...
x_dst_as_org.  Each address is also labelled with x_ip_class (x_src_ip_class,
x_dst_ip_class), as python://ip_class does: private, loopback, link-local, multicast
and reserved addresses are never looked up, since no database places them.

The data, first found wins:
  1. `WITH db=...`: MaxMind DB files (.mmdb: GeoLite2/GeoIP2 City or Country, ASN,
     ISP or Enterprise), read with MaxMind's reader (`maxminddb`); a City and an ASN
     file together give every attribute;
  2. the configuration's `geoip_db` list (or the environment variable KESTREL_GEOIP_DB,
     paths joined by os.pathsep, ":" on Linux), given in the analytics context;
  3. the data the `geoip2fast` package ships (MaxMind GeoLite2 Country and ASN, IPv4
     and IPv6, built 2024-06-18): country and AS organisation, no city, coordinates or
     AS number.
The table it shows names the data and its date.  Nothing is asked over the network.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import math
import os
import re
from dataclasses import dataclass
from typing import Optional

import pandas as pd

from ..errors import AnalyticsError
from ..results import Table
from . import AnalyticsResult
from .enrich import classify_ip

BUNDLED_FILE = "geoip2fast-asn-ipv6.dat.gz"
FIELDS = ("geo_country", "geo_city", "geo_lat", "geo_lon", "asn", "as_org")
ADDRESS_TYPES = ("ipv4-addr", "ipv6-addr")
NOT_FOUND = "not in the data"


@dataclass(frozen=True)
class Place:
    """What the data says about one address (None where it says nothing)."""

    country: Optional[str] = None       # ISO 3166 alpha-2
    country_name: Optional[str] = None  # in English, as plotly places countries
    city: Optional[str] = None
    lat: Optional[float] = None
    lon: Optional[float] = None
    asn: Optional[int] = None
    as_org: Optional[str] = None

    @property
    def found(self) -> bool:
        return any(v is not None for v in (self.country, self.lat, self.asn, self.as_org))


@dataclass(frozen=True)
class Located:
    """An address value as geoip reads it: its class and, for public ones, its place."""

    address: str
    ip_class: str
    place: Optional[Place] = None

    @property
    def status(self) -> str:
        """'located', 'not in the data', or the class of an address never looked up."""
        if self.ip_class != "public":
            return self.ip_class
        return "located" if self.place and self.place.found else NOT_FOUND

    def attributes(self, prefix: str = "") -> dict:
        place = self.place or Place()
        values = (self.ip_class, place.country, place.city, place.lat, place.lon, place.asn,
                  place.as_org)
        return dict(zip(attribute_names(prefix), values))


def attribute_names(prefix: str = "") -> list:
    """x_ip_class, x_geo_country, ... (prefix "") or x_src_ip_class, ... (prefix "src_")."""
    return [f"x_{prefix}{name}" for name in ("ip_class", *FIELDS)]


# ------------------------------------------------------------ data


class MaxMindData:
    """MaxMind DB files read together: each address takes, field by field, the first
    file that knows it (a City file gives the place, an ASN file the AS)."""

    def __init__(self, paths):
        import maxminddb

        self.readers, described = [], []
        for path in paths:
            try:
                reader = maxminddb.open_database(os.path.expanduser(path))
            except (OSError, ValueError, maxminddb.InvalidDatabaseError) as err:
                self.close()
                raise AnalyticsError(f"cannot read the MaxMind database {path}: {err}") from None
            meta = reader.metadata()
            built = datetime.datetime.fromtimestamp(meta.build_epoch, datetime.timezone.utc)
            described.append(f"{meta.database_type} of {built:%Y-%m-%d} ({path})")
            self.readers.append(reader)
        self.description = ", ".join(described)

    def place(self, address: str) -> Place:
        found = {}
        for reader in self.readers:
            record = reader.get(address)
            if isinstance(record, dict):
                for key, value in _maxmind_fields(record).items():
                    if value is not None:
                        found.setdefault(key, value)
        return Place(**found)

    def close(self):
        for reader in self.readers:
            reader.close()


def _maxmind_fields(record: dict) -> dict:
    """The Place fields of one MaxMind record (GeoIP2/GeoLite2 layouts: City, Country,
    ASN, ISP, Enterprise)."""
    country = record.get("country") or record.get("registered_country") or {}
    location = record.get("location") or {}
    traits = record.get("traits") or {}
    asn = record.get("autonomous_system_number", traits.get("autonomous_system_number"))
    return {
        "country": country.get("iso_code"),
        "country_name": (country.get("names") or {}).get("en"),
        "city": ((record.get("city") or {}).get("names") or {}).get("en"),
        "lat": location.get("latitude"),
        "lon": location.get("longitude"),
        "asn": int(asn) if asn is not None else None,
        "as_org": record.get("autonomous_system_organization",
                             traits.get("autonomous_system_organization")),
    }


class BundledData:
    """The GeoLite2 Country + ASN data geoip2fast ships: loaded once per process
    (0.3 s, about 120 MB), read by absolute path (geoip2fast would prefer a file of the
    same name in the working directory)."""

    def __init__(self):
        self.reader, self.description = _bundled()

    def place(self, address: str) -> Place:
        found = self.reader.lookup(address)
        country = found.country_code if re.fullmatch(r"[A-Z]{2}", found.country_code or "") \
            else None
        return Place(country=country, country_name=found.country_name if country else None,
                     as_org=found.asn_name or None)

    def close(self):
        """Kept loaded for the next APPLY."""


@functools.lru_cache(maxsize=1)
def _bundled():
    import geoip2fast

    path = os.path.join(os.path.dirname(geoip2fast.__file__), BUNDLED_FILE)
    reader = geoip2fast.GeoIP2Fast(geoip2fast_data_file=path)
    source = reader.get_database_info().get("source_info", "")  # MAXMIND:GeoLite2-...-20240618
    date = re.search(r"(\d{4})(\d{2})(\d{2})$", source)
    built = "-".join(date.groups()) if date else "an unknown date"
    return reader, (f"MaxMind GeoLite2 Country and ASN of {built}, as shipped by "
                    f"geoip2fast {geoip2fast.__version__}")


def open_data(db=(), context=None):
    """The data to read: `db` files, else the configuration's (geoip_db, or
    KESTREL_GEOIP_DB), else the bundled."""
    paths = list(db) or list(context.geoip_db if context is not None else ())
    return MaxMindData(paths) if paths else BundledData()


def locate(data, value, cache: dict) -> Optional[Located]:
    """One address value (an address or a CIDR, whose network address is looked up)
    classified, and placed when public; None for a missing value.  `cache` keeps what
    was found for each value."""
    if _missing(value):
        return None
    if value not in cache:
        cache[value] = _located(data, str(value).strip())
    return cache[value]


def _located(data, text) -> Located:
    ip_class = classify_ip(text)
    if ip_class != "public":
        return Located(text, ip_class)
    address = ipaddress.ip_network(text, strict=False).network_address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return Located(text, ip_class, data.place(str(address)))


def address_columns(name, frame, entity_type) -> dict:
    """{attribute prefix: column of address values} of a variable: "" -> value for
    addresses, src_/dst_ -> src_ref.value/dst_ref.value for traffic."""
    if entity_type in (None, *ADDRESS_TYPES) and "value" in frame.columns:
        return {"": "value"}
    ends = {"src_": "src_ref.value", "dst_": "dst_ref.value"}
    if entity_type in (None, "network-traffic") and set(ends.values()) & set(frame.columns):
        return {p: c for p, c in ends.items() if c in frame.columns}
    raise AnalyticsError(f"{name} is {entity_type or 'not addresses'}: it needs ipv4-addr, "
                         "ipv6-addr or network-traffic variables")


# ------------------------------------------------------------ the analytics


def geoip(frames, *, db: list[str] = (), context=None):
    if context is not None:
        context.require_entities()
    data = open_data(db, context)
    try:
        updated, rows, cache = {}, [], {}
        for name in frames:
            frame = frames[name]
            if frame.empty:
                continue
            entity_type = context.entity_types[name] if context else None
            out = frame[["id"]].copy()
            for prefix, column in address_columns(name, frame, entity_type).items():
                found = [locate(data, v, cache) for v in frame[column]]
                values = [f.attributes(prefix) if f else {} for f in found]
                for attribute in attribute_names(prefix):
                    out[attribute] = pd.Series([v.get(attribute) for v in values],
                                               index=frame.index, dtype=object)
                rows += [_row(name, f) for f in dict.fromkeys(f for f in found if f)]
            updated[name] = out
    finally:
        data.close()
    table = pd.DataFrame(rows, columns=["variable", "address", "status", *FIELDS])
    table = table.drop_duplicates(subset=["variable", "address"])
    table = table[[c for c in table.columns if c not in FIELDS or table[c].notna().any()]]
    title = f"IP geolocation (data: {data.description})"
    return AnalyticsResult(updated=updated, display=Table(table, total=len(table), title=title))


def _row(name, found: Located) -> dict:
    place = found.place or Place()
    return {"variable": name, "address": found.address, "status": found.status,
            "geo_country": place.country, "geo_city": place.city, "geo_lat": place.lat,
            "geo_lon": place.lon, "asn": place.asn, "as_org": place.as_org}


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
