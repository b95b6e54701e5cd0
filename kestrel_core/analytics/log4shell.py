"""python://log4shell: JNDI lookups (CVE-2021-44228) in any text, obfuscations undone.

    APPLY python://log4shell ON v[, more] [WITH attrs=[user_agent, command_line]]

Every string attribute of the entities is read (artifact `payload_bin` base64-decoded,
JSON values such as network-traffic `extensions` leaf by leaf, an x-oca-event's own
strings, url `value`, process `command_line`, ...), or only those `attrs` names.
Each text is tried as it is, URL-decoded (repeatedly) and, where a run of base64 decodes
to a lookup, base64-decoded.  Lookups are then evaluated the way a vulnerable Log4j 2
does, for what a detector can know: nested `${...}` first, the first `:-` splits off a
default, `lower:`/`upper:`, `date:'x'` and every default (`${::-j}`, `${env:X:-j}`,
`${k8s:x:-J}`) give constants, other lookups (`${env:USER}`) stay as they are.  A
`jndi:` lookup (its prefix in any case) is the attack.  Each entity gets

    x_log4shell                true or false
    x_log4shell_payload        the decoded lookups, one per line
    x_log4shell_callback       where the JNDI client connects: ldap://host:port
                               (the protocol's default port when none is given)
    x_log4shell_callback_host  the hosts alone, for `value IN v.x_log4shell_callback_host`
    x_log4shell_command        what a `.../Base64/<command>` path decodes to

(several distinct values are comma-joined, in the order found), so that
`GET artifact FROM v WHERE x_log4shell = true` keeps the attempts and the callback
hosts can be looked for in other data.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from urllib.parse import unquote

import pandas as pd

from ..errors import AnalyticsError
from ..results import Table
from . import AnalyticsResult

OUTPUTS = ("x_log4shell", "x_log4shell_payload", "x_log4shell_callback",
           "x_log4shell_callback_host", "x_log4shell_command")
DEFAULT_PORTS = {"ldap": 389, "ldaps": 636, "rmi": 1099, "dns": 53, "iiop": 900,
                 "http": 80, "https": 443}
BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
QUOTED_LITERALS = re.compile(r"(?:'[^']*')+")
MAX_DECODINGS = 8     # texts tried per value: as is, URL-decoded, base64-decoded
MAX_NESTING = 200     # deeper ${ are read as text: a crafted value cannot exhaust the stack


# ------------------------------------------------------------ Log4j lookups


def jndi_lookups(text: str) -> list:
    """The JNDI names a vulnerable Log4j would look up while formatting `text`
    (`ldap://host:port/x`, ...), in order, each once."""
    found = []
    _expand(text, 0, 0, found)
    return list(dict.fromkeys(found))


def _expand(text, start, depth, found):
    """Evaluate lookups from `start`, `depth` lookups deep: (text produced, position
    after, closed by `}`)."""
    out, i = [], start
    while i < len(text):
        if text.startswith("${", i) and depth < MAX_NESTING:
            name, i, closed = _expand(text, i + 2, depth + 1, found)
            out.append(_resolve(name, found) if closed else "${" + name)
        elif depth and text[i] == "}":
            return "".join(out), i + 1, True
        else:
            out.append(text[i])
            i += 1
    return "".join(out), i, False


def _resolve(name, found):
    """The value of `${name}` (name already evaluated); a JNDI lookup is recorded."""
    key, delimiter, default = name.partition(":-")
    prefix, colon, rest = key.partition(":")
    prefix = prefix.lower() if colon else ""
    if prefix == "jndi":
        found.append(rest)
        return "${jndi:" + rest + "}"
    if prefix == "lower":
        return rest.lower()
    if prefix == "upper":
        return rest.upper()
    if prefix == "date" and QUOTED_LITERALS.fullmatch(rest):
        return rest.replace("'", "")
    if delimiter:
        return default  # the attacker's variable is unset: Log4j takes the default
    return "${" + name + "}"  # unknown here (env, sys, ctx, ...): left as it is


def callback(name: str):
    """(protocol, host, port or None) of a JNDI name such as ldap://h:1389/x; None when
    it names no server (java:comp/env).  The host runs to the first / or ?, as the JNDI
    URL parsers read it (so ldap://127.0.0.1#evil.com:1389 connects to 127.0.0.1#evil.com)."""
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/?]*)", name)
    if not match or not match.group(2):
        return None
    protocol, authority = match.group(1).lower(), match.group(2).rpartition("@")[2]
    if authority.startswith("[") and "]" in authority:
        host, _, after = authority[1:].partition("]")
        port = after[1:] if after.startswith(":") else ""
    else:
        host, colon, port = authority.rpartition(":")
        if not colon or not port.isdigit():
            host, port = authority, ""
    if "${" not in host:
        host = host.lower()
    return protocol, host, int(port) if port.isdigit() else DEFAULT_PORTS.get(protocol)


def command(name: str):
    """The command a JNDIExploit-style path carries (.../Base64/<command>), decoded."""
    match = re.search(r"/base64/([A-Za-z0-9+/_=-]+)", name, re.IGNORECASE)
    return _base64_text(match.group(1)) if match else None


# ------------------------------------------------------------ texts to read


def texts_of(value, is_base64=False):
    """The texts in an attribute value: JSON leaves, and each as is, URL-decoded and
    base64-decoded (when that gives a lookup)."""
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from texts_of(item, is_base64)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from texts_of(key)
            yield from texts_of(item, is_base64)
        return
    if not isinstance(value, str):
        return
    if value[:1] in "{[":
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, (dict, list)):
            yield from texts_of(parsed, is_base64)
            return
    if is_base64:
        value = _base64_text(value, binary=True) or value
    yield from _decodings(value)


def _decodings(text):
    """`text`, then what URL- and base64-decoding it gives, breadth first, each once."""
    queue, seen = [text], set()
    while queue and len(seen) < MAX_DECODINGS:
        text = queue.pop(0)
        if text in seen:
            continue
        seen.add(text)
        yield text
        if "%" in text:
            queue.append(unquote(text))
        for run in BASE64_RUN.findall(text):
            decoded = _base64_text(run)
            if decoded and ("${" in decoded or "%24" in decoded.lower()):
                queue.append(decoded)


def _base64_text(text: str, binary=False):
    """`text` base64-decoded (standard or URL-safe, padding optional) when that gives
    UTF-8 text, or any bytes when `binary` (a payload, undecodable bytes replaced);
    None otherwise."""
    text = text.strip()
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4),
                               altchars=b"-_" if ("-" in text or "_" in text) else None,
                               validate=True)
    except (binascii.Error, ValueError):
        return None
    if binary:
        return raw.decode("utf-8", errors="replace")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return decoded if all(c.isprintable() or c.isspace() for c in decoded) else None


# ------------------------------------------------------------ the analytics


def detect(values: dict) -> dict:
    """{attribute: value} of one entity -> the OUTPUTS attributes and where lookups were."""
    names, where = [], []
    for attribute, value in values.items():
        is_base64 = attribute == "payload_bin" or attribute.endswith(".payload_bin")
        found = [n for text in texts_of(value, is_base64) for n in jndi_lookups(text)]
        if found:
            names += found
            where.append(attribute)
    names = list(dict.fromkeys(names))
    targets = [c for c in map(callback, names) if c]
    commands = [c for c in map(command, names) if c]
    return {
        "x_log4shell": bool(names),
        "x_log4shell_payload": "\n".join("${jndi:" + n + "}" for n in names) or None,
        "x_log4shell_callback": _joined(f"{p}://{_bracketed(h)}" + (f":{port}" if port else "")
                                        for p, h, port in targets),
        "x_log4shell_callback_host": _joined(h for _, h, _ in targets),
        "x_log4shell_command": _joined(commands),
        "attributes": where,
    }


def log4shell(frames, *, attrs: list[str] = (), context=None):
    if context is not None:
        context.require_entities()
    updated, found, scanned = {}, [], 0
    for name in frames:
        frame = frames[name]
        if frame.empty:
            continue
        columns = _columns(name, frame, attrs)
        rows = []
        for record in frame[["id"] + columns].to_dict(orient="records"):
            result = detect({c: record[c] for c in columns if not _missing(record[c])})
            rows.append({"id": record["id"], **{k: result[k] for k in OUTPUTS}})
            if result["x_log4shell"]:
                found.append({"variable": name, "attributes": ", ".join(result["attributes"]),
                              **{k: result[k] for k in OUTPUTS[1:]}})
        scanned += len(frame)
        updated[name] = pd.DataFrame(rows, columns=["id", *OUTPUTS]).astype(object)
    table = pd.DataFrame(found, columns=["variable", "attributes", *OUTPUTS[1:]])
    table = (table.fillna("").groupby(list(table.columns), sort=False).size()
             .reset_index(name="entities").sort_values("entities", ascending=False, kind="stable"))
    title = f"log4shell: JNDI lookups in {len(found)} of {scanned} entities"
    return AnalyticsResult(updated=updated, display=Table(table, total=len(table), title=title))


def _columns(name, frame, attrs) -> list:
    """The attributes of a variable to read: `attrs`, or every one holding text."""
    if attrs:
        missing = [a for a in attrs if a not in frame.columns]
        if missing:
            known = ", ".join(sorted(c for c in frame.columns if c not in ("id", "type")))
            raise AnalyticsError(f'{name} has no attribute "{missing[0]}" (attributes: {known})')
        return list(attrs)
    return [c for c in frame.columns
            if c not in ("id", "type") and not c.endswith(".id") and c not in OUTPUTS
            and any(isinstance(v, str) for v in frame[c])]


def _joined(values):
    return ", ".join(dict.fromkeys(values)) or None


def _bracketed(host):
    return f"[{host}]" if ":" in host and "${" not in host else host


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
