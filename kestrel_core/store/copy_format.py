"""PostgreSQL's COPY text format, written by us: firepit's own COPY path leaves JSON
text unescaped (a backslash in a list is corrupted)."""

from __future__ import annotations

import ujson

from .where import NUL_ON_POSTGRESQL

def replace_nul(obj):
    """PostgreSQL text cannot hold NUL: keep U+FFFD in its place (in place, recursively),
    so that one hostile value cannot make a whole GET or LOAD fail (see _copy_value)."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(
        obj, list) else ()
    for key, value in items:
        if isinstance(value, str):
            if "\x00" in value:
                obj[key] = value.replace("\x00", NUL_ON_POSTGRESQL)
        elif isinstance(value, (dict, list)):
            replace_nul(value)


# COPY's text format escapes these (\\N is NULL); NUL, which PostgreSQL text cannot
# hold, becomes U+FFFD as replace_nul has it
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                              "\x00": NUL_ON_POSTGRESQL})


def copy_line(values) -> str:
    """One row in COPY's text format (JSON for lists and objects, as firepit stores them)."""
    return "\t".join(_copy_value(v) for v in values) + "\n"


def _copy_value(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "true" if value else "false"  # right for BOOLEAN and TEXT columns alike
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a whole float (pandas' ints beside a blank) fits BIGINT
    if isinstance(value, (list, dict)):
        value = json_text(value)
    elif not isinstance(value, str):
        return str(value)
    return value.translate(COPY_ESCAPES)


def json_text(value) -> str:
    """A list or object as the JSON text PostgreSQL stores (firepit's, NUL as U+FFFD)."""
    text = ujson.dumps(value, ensure_ascii=False)
    if "\\u0000" in text:  # jsonb refuses \u0000: U+FFFD, as in plain text
        replace_nul(value)
        text = ujson.dumps(value, ensure_ascii=False)
    return text
