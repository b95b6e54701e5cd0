"""Offline enrichment analytics: they add attributes to the entities of variables.

    APPLY python://ip_class ON ips[, conns]
    APPLY python://suspicious_cmdline ON procs [WITH patterns=['...'], extra=['...']]

ip_class sets `x_ip_class` on ipv4-addr / ipv6-addr entities (from `value`), and
`x_src_ip_class` / `x_dst_ip_class` on network-traffic (from `src_ref.value`,
`dst_ref.value`), with Python's ipaddress, no network access:

    private     RFC 1918 (10/8, 172.16/12, 192.168/16), RFC 4193 (fc00::/7)
    loopback    127/8, ::1             link-local   169.254/16, fe80::/10
    multicast   224/4, ff00::/8        public       globally routable
    reserved    anything else: 0.0.0.0, 100.64/10 (CGNAT), documentation and
                benchmark ranges, 240/4, 255.255.255.255, ...
    invalid     not an IP address
A CIDR value (10.0.0.0/8) is classified by its network; an IPv4-mapped IPv6
address by its IPv4 address.

suspicious_cmdline matches each process's `command_line` against named regular
expressions (case-insensitive; DEFAULT_PATTERNS unless patterns=[...] replaces
them, extra=[...] adds to them; a pattern given in WITH is named by itself) and
sets `x_suspicious_score` (how many matched; 0 for none, unset without a command
line) and `x_suspicious_patterns` (their names, comma-separated).  Filter with
`GET process FROM procs WHERE x_suspicious_score > 0`.
"""

from __future__ import annotations

import ipaddress
import math

import pandas as pd

from .. import regex
from ..errors import AnalyticsError
from ..results import Table
from . import AnalyticsResult

PRIVATE = [ipaddress.ip_network(n) for n in
           ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")]

DEFAULT_PATTERNS = {
    "encoded-powershell":
        r"\b(powershell|pwsh)(\.exe)?\b.*\s[-/]e(nc?|ncodedcommand)?\s+[a-z0-9+/=]{16,}",
    "download-cradle": r"downloadstring|downloadfile|invoke-webrequest|\biwr\b|start-bitstransfer"
                       r"|net\.webclient|certutil(\.exe)?\s.*-urlcache",
    "hidden-window": r"\s[-/]w(indowstyle)?\s+hidden\b",
    "execution-policy-bypass": r"\s[-/]ex(ecutionpolicy)?\s+bypass\b",
    "shadow-copy-deletion": r"vssadmin(\.exe)?\s+delete\s+shadows|shadowcopy\s+delete",
    "wmic": r"\bwmic(\.exe)?\b",
    "proxy-execution":
        r"\b(rundll32|regsvr32|mshta)(\.exe)?\b.*(javascript:|https?://|scrobj\.dll)",
    "discovery": r"\b(whoami|systeminfo|nltest|net1?(\.exe)?\s+(user|group|localgroup))\b",
}


# ------------------------------------------------------------ ip_class


def classify_ip(value) -> str:
    """The class of one address (see the module's table)."""
    try:
        network = ipaddress.ip_network(str(value).strip(), strict=False)
    except ValueError:
        return "invalid"
    address = network.network_address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return classify_ip(address.ipv4_mapped)
    if any(network.version == p.version and network.subnet_of(p) for p in PRIVATE):
        return "private"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_global and not address.is_reserved and not address.is_unspecified:
        return "public"
    return "reserved"


def ip_class(frames, *, context=None):
    if context is not None:
        context.require_entities()
    updated, counts = {}, []
    for name in frames:
        frame = frames[name]
        entity_type = context.entity_types[name] if context else None
        if frame.empty and entity_type in ("ipv4-addr", "ipv6-addr", "network-traffic"):
            continue  # nothing to classify
        if "value" in frame.columns and entity_type in (None, "ipv4-addr", "ipv6-addr"):
            columns = {"x_ip_class": "value"}
        elif entity_type in (None, "network-traffic") and (
                {"src_ref.value", "dst_ref.value"} & set(frame.columns)):
            columns = {"x_src_ip_class": "src_ref.value", "x_dst_ip_class": "dst_ref.value"}
            columns = {k: v for k, v in columns.items() if v in frame.columns}
        else:
            raise AnalyticsError(f"{name} is {entity_type or 'not addresses'}: ip_class needs "
                                 "ipv4-addr, ipv6-addr or network-traffic variables")
        out = frame[["id"]].copy()
        for column, source in columns.items():
            out[column] = [None if _missing(v) else classify_ip(v) for v in frame[source]]
            for label, n in out[column].value_counts().items():
                counts.append({"variable": name, "attribute": column, "class": label,
                               "entities": int(n)})
        updated[name] = out
    table = pd.DataFrame(counts, columns=["variable", "attribute", "class", "entities"])
    return AnalyticsResult(updated=updated,
                           display=Table(table, title="IP address classes"))


# ------------------------------------------------------------ suspicious_cmdline


def suspicious_cmdline(frames, *, patterns: list[str] = (), extra: list[str] = (),
                       context=None):
    if context is not None:
        context.require_entities()
    chosen = {p: p for p in patterns} if patterns else dict(DEFAULT_PATTERNS)
    chosen.update({p: p for p in extra})
    compiled = {}
    for label, text in chosen.items():
        try:  # RE2: a hostile pattern cannot stall the session (kestrel/regex.py)
            compiled[label] = regex.compiled(text, case_sensitive=False, dot_nl=False)
        except regex.RegexError as err:
            raise AnalyticsError(f"pattern {text!r} is not a regular expression: {err}") from None
    updated, flagged = {}, []
    for name in frames:
        frame = frames[name]
        if context and context.entity_types[name] != "process":
            raise AnalyticsError(f"{name} is {context.entity_types[name]}: suspicious_cmdline "
                                 "needs process variables")
        if "command_line" not in frame.columns:
            updated[name] = frame[["id"]].assign(x_suspicious_score=None,
                                                 x_suspicious_patterns=None)
            continue
        scores, names = [], []
        for row in frame[["id", "name", "pid", "command_line"]
                         if {"name", "pid"} <= set(frame.columns) else ["id", "command_line"]
                         ].to_dict(orient="records"):
            line = row["command_line"]
            if _missing(line):
                scores.append(None)
                names.append(None)
                continue
            hits = [label for label, found in compiled.items() if found.search(str(line))]
            scores.append(len(hits))
            names.append(", ".join(hits) or None)
            if hits:
                flagged.append({"variable": name, "name": row.get("name"), "pid": row.get("pid"),
                                "command_line": line, "patterns": ", ".join(hits)})
        updated[name] = pd.DataFrame({"id": frame["id"], "x_suspicious_score": scores,
                                      "x_suspicious_patterns": names})
    table = pd.DataFrame(flagged, columns=["variable", "name", "pid", "command_line", "patterns"])
    table = table.drop_duplicates(subset=["variable", "name", "pid", "command_line"])
    return AnalyticsResult(updated=updated,
                           display=Table(table, title="suspicious command lines"))


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
