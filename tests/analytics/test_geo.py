"""python://geoip and python://ip_map: values read back from MaxMind databases these tests
build (mmdb-writer), with places deliberately unlike the real ones so that only the test
data can give them; the bundled default data against well-known public addresses; the map's
pins and links read back from the plotly JSON and compared with what the bundle says."""

import collections
import datetime
import json

import maxminddb
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from kestrel.errors import AnalyticsError
from kestrel.session import Session

SAPPORO = {"country": {"iso_code": "JP", "names": {"en": "Japan"}},
           "city": {"names": {"en": "Sapporo"}},
           "location": {"latitude": 43.0621, "longitude": 141.3544}}
RECIFE = {"country": {"iso_code": "BR", "names": {"en": "Brazil"}},
          "city": {"names": {"en": "Recife"}},
          "location": {"latitude": -8.0476, "longitude": -34.877}}
REYKJAVIK = {"country": {"iso_code": "IS", "names": {"en": "Iceland"}},
             "city": {"names": {"en": "Reykjavik"}},
             "location": {"latitude": 64.1466, "longitude": -21.9426}}
NETHERLANDS = {"country": {"iso_code": "NL", "names": {"en": "Netherlands"}}}  # country only
REGISTERED_ONLY = {"registered_country": {"iso_code": "AU", "names": {"en": "Australia"}}}

CITY = {"8.8.8.0/24": SAPPORO, "2001:4860::/32": RECIFE, "157.245.0.0/16": REYKJAVIK,
        "193.0.0.0/20": NETHERLANDS, "1.1.1.0/24": REGISTERED_ONLY}
ASN = {"8.8.8.0/24": (64500, "Example Transit One"), "2001:4860::/32": (64501, "Example Two"),
       "193.0.0.0/20": (64502, "Example Exchange"), "157.245.0.0/16": (64503, "Example Cloud"),
       "208.67.222.0/24": (64504, "Example Resolver")}  # an AS, no place

# value -> (x_ip_class, x_geo_country, x_geo_city, x_geo_lat, x_geo_lon, x_asn, x_as_org)
EXPECTED = {
    "8.8.8.8": ("public", "JP", "Sapporo", 43.0621, 141.3544, 64500, "Example Transit One"),
    "8.8.8.0/24": ("public", "JP", "Sapporo", 43.0621, 141.3544, 64500, "Example Transit One"),
    "193.0.6.139": ("public", "NL", None, None, None, 64502, "Example Exchange"),
    "1.1.1.1": ("public", "AU", None, None, None, None, None),
    "208.67.222.222": ("public", None, None, None, None, 64504, "Example Resolver"),
    "9.9.9.9": ("public", None, None, None, None, None, None),  # not in the test data
    "10.1.2.3": ("private", None, None, None, None, None, None),
    "127.0.0.1": ("loopback", None, None, None, None, None, None),
    "0.0.0.0": ("reserved", None, None, None, None, None, None),
    "2001:4860:4860::8888": ("public", "BR", "Recife", -8.0476, -34.877, 64501, "Example Two"),
    "::ffff:8.8.8.9": ("public", "JP", "Sapporo", 43.0621, 141.3544, 64500,
                       "Example Transit One"),
    "fe80::1": ("link-local", None, None, None, None, None, None),
}
V4 = [a for a in EXPECTED if ":" not in a]
V6 = [a for a in EXPECTED if ":" in a]
ATTRIBUTES = "x_ip_class, x_geo_country, x_geo_city, x_geo_lat, x_geo_lon, x_asn, x_as_org"


def build_mmdb(path, database_type, records):
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type=database_type,
                        languages=["en"], description={"en": "kestrel tests"})
    for network, record in records.items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


@pytest.fixture(scope="module")
def databases(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mmdb")
    city = build_mmdb(folder / "city.mmdb", "GeoLite2-City", CITY)
    asn = build_mmdb(folder / "asn.mmdb", "GeoLite2-ASN", {
        n: {"autonomous_system_number": a, "autonomous_system_organization": o}
        for n, (a, o) in ASN.items()})
    return city, asn


@pytest.fixture(autouse=True)
def no_configured_database(monkeypatch):
    monkeypatch.delenv("KESTREL_GEOIP_DB", raising=False)


def built(path):
    """'GeoLite2-City of 2025-01-31': what MaxMind's reader says of a file."""
    with maxminddb.open_database(str(path)) as reader:
        meta = reader.metadata()
    day = datetime.datetime.fromtimestamp(meta.build_epoch, datetime.timezone.utc)
    return f"{meta.database_type} of {day:%Y-%m-%d}"


def observed_data(path):
    return [o for o in json.loads(path.read_text())["objects"] if o["type"] == "observed-data"]


def rows(session, code):
    (table,) = session.execute(code)
    frame = table.dataframe.astype(object).where(table.dataframe.notna(), None)
    return [tuple(r) for r in frame.values.tolist()]


def new_addresses(session):
    session.execute(f"v4 = NEW ipv4-addr {json.dumps(V4)}")
    session.execute(f"v6 = NEW ipv6-addr {json.dumps(V6)}")


# ------------------------------------------------------------ geoip from MaxMind files


def test_geoip_from_city_and_asn_databases(session, databases):
    city, asn = databases
    new_addresses(session)
    table, done = session.execute(f"APPLY python://geoip ON v4, v6 WITH db=['{city}', '{asn}']")
    assert table.title == (f"IP geolocation (data: {built(city)} ({city}), "
                           f"{built(asn)} ({asn}))")
    for name in ("v4", "v6"):
        got = rows(session, f"DISP {name} ATTR value, {ATTRIBUTES}")
        assert {r[0]: r[1:] for r in got} == {a: EXPECTED[a] for a in
                                              (V4 if name == "v4" else V6)}
    status = {r[1]: r[2] for r in table.dataframe.values.tolist()}
    assert status == {a: ("located" if any(e[1:]) else "not in the data" if e[0] == "public"
                          else e[0]) for a, e in EXPECTED.items()}
    assert done.lines[0].startswith("v4: x_ip_class, x_geo_country, x_geo_city, x_geo_lat, "
                                    "x_geo_lon, x_asn, x_as_org written to")

    japan = session.execute("jp = GET ipv4-addr FROM v4 WHERE x_geo_country = 'JP'")[-1]
    assert japan.entities == sum(e[1] == "JP" for a, e in EXPECTED.items() if a in V4)
    near = session.execute("north = GET ipv4-addr FROM v4 WHERE x_geo_lat > 40 AND x_asn = 64500")
    assert near[-1].entities == 2


def test_geoip_values_on_both_stores(store_session, databases):
    session, reopen = store_session
    city, asn = databases
    session.execute('ips = NEW ipv4-addr ["8.8.8.8", "193.0.6.139", "10.1.2.3"]')
    session.execute(f"APPLY python://geoip ON ips WITH db=['{city}', '{asn}']")
    session.execute("north = GET ipv4-addr FROM ips WHERE x_geo_lat > 40.5 AND x_asn = 64500")
    session.close()
    with reopen() as again:
        assert rows(again, f"DISP ips ATTR value, {ATTRIBUTES} SORT BY value") == [
            (a, *EXPECTED[a]) for a in ("10.1.2.3", "193.0.6.139", "8.8.8.8")]
        assert rows(again, "DISP north ATTR value") == [("8.8.8.8",)]


@pytest.mark.parametrize("where", ["environment", "configuration"])
def test_geoip_databases_from_the_configuration(databases, monkeypatch, tmp_path, where):
    """`geoip_db` in the configuration file, or KESTREL_GEOIP_DB, read when a Session starts."""
    city, asn = databases
    if where == "environment":
        monkeypatch.setenv("KESTREL_GEOIP_DB", f"{city}:{asn}")
    else:
        config = tmp_path / "kestrel.yaml"
        config.write_text(f"geoip_db: ['{city}', '{asn}']\n")
        monkeypatch.setenv("KESTREL_CONFIG", str(config))
    with Session(runtime_dir=str(tmp_path / "rt")) as session:
        session.execute('ips = NEW ipv4-addr ["8.8.8.8", "193.0.6.139"]')
        table, _ = session.execute("APPLY python://geoip ON ips")
        assert str(city) in table.title and str(asn) in table.title
        assert rows(session, f"DISP ips ATTR value, {ATTRIBUTES} SORT BY value") == [
            ("193.0.6.139", *EXPECTED["193.0.6.139"]), ("8.8.8.8", *EXPECTED["8.8.8.8"])]


def test_geoip_on_traffic(session, databases, shared_data):
    city, asn = databases
    bundle = shared_data / "log4shell_bundle.json"
    session.execute(f"conns = GET network-traffic FROM '{bundle}' WHERE dst_port = 0")
    session.execute(f"APPLY python://geoip ON conns WITH db=['{city}', '{asn}']")
    got = rows(session, "DISP conns ATTR src_ref.value, x_src_ip_class, x_src_geo_country, "
                        "x_src_geo_city, x_src_asn, dst_ref.value, x_dst_ip_class")

    observed = observed_data(bundle)
    traffic = {(o["objects"][t["src_ref"]]["value"], o["objects"][t["dst_ref"]]["value"])
               for o in observed for t in o["objects"].values() if t["type"] == "network-traffic"}
    reykjavik = {s for s, _ in traffic if s.startswith("157.245.")}
    assert reykjavik  # the bundle has a source in the test data's 157.245.0.0/16
    hand = {"172.31.79.90": "private", "127.0.0.1": "loopback", "0.0.0.0": "reserved"}
    assert set(got) == {
        (s, hand.get(s, "public"), "IS" if s in reykjavik else None,
         "Reykjavik" if s in reykjavik else None, 64503 if s in reykjavik else None,
         d, hand[d]) for s, d in traffic}
    # no destination is public: nothing to write beyond the class
    assert "x_dst_geo_country" not in session.variable_dataframe("conns").columns


@pytest.mark.parametrize("db, message", [
    ("'/no/such.mmdb'", "cannot read the MaxMind database /no/such.mmdb: "),
    ("'{notmmdb}'", "cannot read the MaxMind database {notmmdb}: "),
])
def test_geoip_unreadable_database(session, tmp_path, db, message):
    notmmdb = tmp_path / "plain.txt"
    notmmdb.write_text("not a database")
    session.execute('ips = NEW ipv4-addr ["8.8.8.8"]')
    with pytest.raises(AnalyticsError) as err:
        session.execute(f"APPLY python://geoip ON ips WITH db={db.format(notmmdb=notmmdb)}")
    assert err.value.message.startswith("python://geoip: " + message.format(notmmdb=notmmdb))
    assert session.variable_dataframe("ips").columns.tolist() == ["value", "id", "type"]


def test_geoip_needs_addresses(session):
    session.execute('procs = NEW process ["cmd.exe"]')
    with pytest.raises(AnalyticsError) as err:
        session.execute("APPLY python://geoip ON procs")
    assert err.value.message == ("python://geoip: procs is process: it needs ipv4-addr, "
                                 "ipv6-addr or network-traffic variables")


# ------------------------------------------------------------ geoip with the bundled data

# Well-known public addresses: their operators' own statements (country, organisation).
WELL_KNOWN = [
    ("8.8.8.8", "US", "google"),                         # Google Public DNS
    ("2001:4860:4860::8888", "US", "google"),
    ("208.67.222.222", "US", "opendns"),                 # Cisco OpenDNS
    ("193.0.6.139", "NL", "ripe"),                       # www.ripe.net, Amsterdam
    ("2001:67c:2e8:22::c100:68b", "NL", "ripe"),
    ("202.12.27.33", "JP", "wide"),                      # M-root, WIDE Project, Tokyo
    ("1.1.1.1", "AU", "cloudflare"),                     # APNIC/Cloudflare, registered in AU
]


def test_geoip_bundled_data(session):
    v4 = [a for a, _, _ in WELL_KNOWN if ":" not in a] + ["192.168.1.1"]
    v6 = [a for a, _, _ in WELL_KNOWN if ":" in a]
    session.execute(f"v4 = NEW ipv4-addr {json.dumps(v4)}")
    session.execute(f"v6 = NEW ipv6-addr {json.dumps(v6)}")
    table, _ = session.execute("APPLY python://geoip ON v4, v6")
    assert table.title == ("IP geolocation (data: MaxMind GeoLite2 Country and ASN of "
                           "2024-06-18, as shipped by geoip2fast 1.2.2)")
    got = {r[0]: r[1:] for n in ("v4", "v6") for r in rows(
        session, f"DISP {n} ATTR value, x_geo_country, x_as_org, x_ip_class")}
    for address, country, organisation in WELL_KNOWN:
        assert got[address][0] == country, address
        assert organisation in got[address][1].lower(), address
    assert got["192.168.1.1"] == (None, None, "private")
    # country level only: no city, coordinates or AS number in this data
    assert "x_geo_city" not in session.variable_dataframe("v4").columns


# ------------------------------------------------------------ ip_map


def traces(fig, role):
    return [t for t in fig["data"] if (t.get("meta") or {}).get("kestrel") == role]


def pins_of(fig):
    """{(variable, address): (placement, where, occurrences, marker size)}"""
    found = {}
    for trace in traces(fig, "pins"):
        meta = trace["meta"]
        where = (list(zip(trace["lat"], trace["lon"])) if meta["placement"] == "coordinates"
                 else trace["locations"])
        for data, at, size in zip(trace["customdata"], where, trace["marker"]["size"]):
            key = (meta["variable"], data[0])
            assert key not in found
            found[key] = (meta["placement"], tuple(at) if isinstance(at, list) else at,
                          data[1], size)
    return found


def links_of(fig):
    """{(variable, src, dst): (placement, where src, where dst)}"""
    found = {}
    for trace in traces(fig, "links"):
        placement = trace["meta"]["placement"]
        where = (list(zip(trace["lat"], trace["lon"])) if placement == "coordinates"
                 else trace["locations"])
        ends = trace["customdata"]
        for i in range(0, len(ends), 3):
            assert ends[i + 2] == [None] and where[i + 2] in (None, (None, None))
            found[trace["meta"]["variable"], ends[i][0], ends[i + 1][0]] = (
                placement, where[i], where[i + 1])
    return found


TRAFFIC = [  # (source, destination, records of this connection)
    ("8.8.8.8", "157.245.10.1", 3),      # both have coordinates: a line between them
    ("8.8.8.8", "193.0.6.139", 1),       # Sapporo -> the Netherlands (country level)
    ("10.0.0.5", "8.8.8.8", 2),          # a private source: no line
    ("9.9.9.9", "193.0.6.139", 1),       # not in the test data: no line
]


def traffic_bundle(path):
    observations, n = [], 0
    for src, dst, records in TRAFFIC:
        for _ in range(records):
            n += 1
            observations.append({
                "type": "observed-data", "id": f"observed-data--00000000-0000-4000-8000-{n:012d}",
                "first_observed": f"2024-01-01T00:00:{n:02d}.000Z",
                "last_observed": f"2024-01-01T00:00:{n:02d}.000Z", "number_observed": 1,
                "objects": {"0": {"type": "ipv4-addr", "value": src},
                            "1": {"type": "ipv4-addr", "value": dst},
                            "2": {"type": "network-traffic", "src_ref": "0", "dst_ref": "1",
                                  "src_port": 40000 + n, "dst_port": 443,
                                  "protocols": ["tcp"]}}})
    path.write_text(json.dumps({"type": "bundle", "id": "bundle--1", "objects": observations}))
    return path


def test_ip_map_with_coordinates(session, databases, tmp_path):
    city, asn = databases
    bundle = traffic_bundle(tmp_path / "traffic.json")
    session.execute(f"conns = GET network-traffic FROM '{bundle}' WHERE dst_port = 443")
    session.execute('extra = NEW ipv4-addr ["8.8.8.8", "1.1.1.1", "208.67.222.222", '
                    '"127.0.0.1"]')
    (fig,) = session.execute(f"APPLY python://ip_map ON conns, extra WITH db=['{city}', "
                             f"'{asn}'], title='test map'")
    assert fig.title == "test map"

    def where(address):
        record = next((r for n, r in CITY.items() if _within(address, n)), {})
        if "location" in record:
            return "coordinates", (record["location"]["latitude"],
                                   record["location"]["longitude"])
        return ("country", _country(address)) if record else None

    occurrences = collections.Counter()
    for src, dst, records in TRAFFIC:
        occurrences[src] += records
        occurrences[dst] += records
    expected = {("conns", a): (*where(a), n) for a, n in occurrences.items() if where(a)}
    # an address is one entity wherever it was seen: its records are those of the bundle
    # (as INFO counts them), at least one
    expected.update({("extra", a): (*where(a), occurrences[a] or 1)
                     for a in ("8.8.8.8", "1.1.1.1")})
    pins = pins_of(fig.figure)
    assert {k: v[:3] for k, v in pins.items()} == expected
    sizes = {pins[k][2]: pins[k][3] for k in pins}
    assert sizes[1] < sizes[2] < sizes[3] < sizes[6]  # 8.8.8.8 occurs 3+1+2 times in conns

    expected_links = {}
    for src, dst, _ in TRAFFIC:
        a, b = where(src), where(dst)
        if a and b and a[0] == b[0] == "coordinates":
            expected_links["conns", src, dst] = ("coordinates", a[1], b[1])
        elif a and b:
            expected_links["conns", src, dst] = ("country", _country(src), _country(dst))
    assert links_of(fig.figure) == expected_links

    unplaced = {u["address"]: u["status"] for u in fig.data["unplaced"]}
    assert unplaced == {"10.0.0.5": "private", "9.9.9.9": "not in the data",
                        "127.0.0.1": "loopback", "208.67.222.222": "no position in the data"}
    note = fig.figure["layout"]["annotations"][0]["text"]
    assert note.startswith("not placed: ") and all(a in note for a in unplaced)
    assert fig.lines[0].startswith("4 addresses placed (2 at coordinates, 2 by country), "
                                   "2 source-destination links, 4 not placed")
    hover = next(t for t in traces(fig.figure, "pins") if t["meta"]["variable"] == "conns"
                 and t["meta"]["placement"] == "coordinates")
    text = hover["hovertext"][[d[0] for d in hover["customdata"]].index("8.8.8.8")]
    assert text == ("8.8.8.8<br>Sapporo, JP<br>AS64500 Example Transit One<br>"
                    "6 occurrences in conns")


def _within(address, network):
    import ipaddress
    return ipaddress.ip_address(address) in ipaddress.ip_network(network)


def _country(address):
    """The English name of the country the test data gives (or its registered country)."""
    record = next(r for n, r in CITY.items() if _within(address, n))
    return (record.get("country") or record["registered_country"])["names"]["en"]


def test_ip_map_with_the_bundled_data(session, shared_data):
    bundle = shared_data / "log4shell_bundle.json"
    session.execute(f"conns = GET network-traffic FROM '{bundle}' WHERE dst_port = 0")
    session.execute("sources = FIND ipv4-addr CREATED conns")
    (fig,) = session.execute("APPLY python://ip_map ON sources")
    pins = pins_of(fig.figure)
    observed = observed_data(bundle)
    records = collections.Counter(o["objects"][t["src_ref"]]["value"] for o in observed
                                  for t in o["objects"].values() if t["type"] == "network-traffic")
    public = {a for a in records if not a.startswith(("172.", "127.", "0."))}
    assert {a for _, a in pins} == public
    assert all(p[0] == "country" for p in pins.values())
    assert {a: p[2] for (_, a), p in pins.items()} == {a: records[a] for a in public}
    assert [u["address"] for u in fig.data["unplaced"]] == ["172.31.79.90"]
    data_note = fig.figure["layout"]["annotations"][1]["text"]
    assert data_note == ("data: MaxMind GeoLite2 Country and ASN of 2024-06-18, as shipped by "
                         "geoip2fast 1.2.2")
