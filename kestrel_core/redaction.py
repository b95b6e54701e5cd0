"""Credentials out of every message, log line and output.

A URL's password (store URLs, bundle URLs, stix-shifter connections), in its user info
or as a query parameter (`?password=`, a libpq form), and every secret of a stix-shifter
profile seen in this process are replaced by ***.
"""

from __future__ import annotations

import re

# keys whose values (and everything below them) are credentials
SECRET_KEY = re.compile(r"auth|pass|secret|token|api_?key|credential|private|cert|^sec$", re.I)
URL_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^/\s:@'\"]*):([^@\s/'\"]+)@", re.I)
# a URL's query parameter or a libpq keyword that holds a credential: ?password=..., sslkey=
URL_PARAMETER = re.compile(r"([?&;\s](?:password|passwd|pwd|sslpassword|token|api_?key|secret)"
                           r"=)([^&;\s'\"]+)", re.I)

_SECRETS: set = set()  # every secret of every profile seen: log lines are redacted of them


def remember(secrets):
    """Secrets every later `redact` without its own list removes."""
    _SECRETS.update(secrets)


def _leaves(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def secrets_of(value, secret=False) -> set:
    """Credential strings in a profile part: under secret-like keys, or URL passwords."""
    found = set()
    if isinstance(value, dict):
        for key, item in value.items():
            found |= secrets_of(item, secret or bool(SECRET_KEY.search(str(key))))
    elif isinstance(value, (list, tuple)):
        for item in value:
            found |= secrets_of(item, secret)
    elif secret:
        found.update(s for s in _leaves(value) if s)
    elif isinstance(value, str):
        found.update(m.group(2) for m in URL_USERINFO.finditer(value))
        found.update(m.group(2) for m in URL_PARAMETER.finditer(value))
    return found


def redact(text, secrets=None) -> str:
    """`text` with every known secret (or those given) and any URL password as ***."""
    text = URL_PARAMETER.sub(r"\1***", URL_USERINFO.sub(r"\1:***@", str(text)))
    for secret in sorted(secrets if secrets is not None else _SECRETS, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
        else:  # short ones only as whole words, not inside every other word
            text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", "***", text)
    return text
