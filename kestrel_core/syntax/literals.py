"""Literal tokens -> Python values: strings (escapes, surrogate pairs), numbers, whole
numbers with the stores' bounds, timestamps; and the Span of a token.

Errors point inside the literal (the escape that is wrong), so a hunter sees where.
"""

from __future__ import annotations

import math
import re
import unicodedata

from lark import Token, Tree

from ..errors import KestrelSyntaxError
from . import ast

# The largest whole number SQLite and PostgreSQL take (LIMIT, OFFSET, BIN sizes).
MAX_INT = 2**63 - 1
# Integer literals beyond this many digits are refused (Python refuses above 4300).
MAX_DIGITS = 100


def span_of(item) -> ast.Span:
    """Span of a Token or of a Tree/meta (propagate_positions)."""
    meta = item if not isinstance(item, Tree) else item.meta
    if getattr(meta, "empty", False) or getattr(meta, "line", None) is None:
        return ast.NO_SPAN
    return ast.Span(meta.line, meta.column, meta.end_line, meta.end_column,
                    meta.start_pos, meta.end_pos)


def decode_string(token: Token, json_escapes: bool = False) -> str:
    """A string literal (quotes, Python escapes, r-prefix) to its value.

    Escapes are Python's (an unknown one such as `\\.` keeps its backslash);
    with `json_escapes` (NEW data) `\\/` is `/` as in JSON.  `\\uD83D\\uDE00`
    surrogate pairs are joined as in JSON; an unpaired surrogate is not text
    and is refused.  Any character may stand between the quotes, NUL included.
    """
    text = str(token)
    if text[0] in "rR":
        value = text[2:-1]  # verbatim, as in Python: r'a\'b' is a, backslash, quote, b
    else:
        value = _unescape(text[1:-1], token, json_escapes)
    if any("\ud800" <= c <= "\udfff" for c in value):
        value = _join_surrogates(value, token)
    return value


ESCAPES = {"\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f", "n": "\n",
           "r": "\r", "t": "\t", "v": "\v"}
HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


def _unescape(body: str, token: Token, json_escapes: bool) -> str:
    out, i = [], 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        start, kind = i, body[i + 1]  # the lexer guarantees a character after a backslash
        i += 2
        if kind in ESCAPES:
            out.append(ESCAPES[kind])
        elif json_escapes and kind == "/":
            out.append("/")
        elif kind in "01234567":
            digits = re.match(r"[0-7]{1,3}", body[start + 1:]).group()
            out.append(chr(int(digits, 8)))
            i = start + 1 + len(digits)
        elif kind in HEX_ESCAPES:
            size = HEX_ESCAPES[kind]
            digits = body[i:i + size]
            if not re.fullmatch(r"[0-9A-Fa-f]{%d}" % size, digits):
                raise _string_error(f"\\{kind} needs {size} hexadecimal digits", token, start,
                                    2 + len(re.match(r"[0-9A-Fa-f]*", digits).group()))
            code = int(digits, 16)
            if code > 0x10FFFF:
                raise _string_error(f"\\U{digits} is beyond Unicode (at most \\U0010FFFF)",
                                    token, start, 2 + size)
            out.append(chr(code))
            i += size
        elif kind == "N":
            found = re.match(r"\{([^{}]*)\}", body[i:])
            try:
                out.append(unicodedata.lookup(found.group(1)) if found else "")
            except KeyError:
                found = None
            if not found:
                raise _string_error("\\N needs a Unicode character name: \\N{BULLET}", token,
                                    start, 2)
            i += len(found.group())
        else:
            out.append("\\" + kind)  # as in Python: unknown escapes keep their backslash
    return "".join(out)


def _join_surrogates(value: str, token: Token) -> str:
    try:
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:
        lone = next(c for c in value if "\ud800" <= c <= "\udfff")
        raise _string_error(f"\\u{ord(lone):04x} is half of a surrogate pair, not a character",
                            token, None, len(str(token))) from None


def _string_error(message: str, token: Token, offset, width: int) -> KestrelSyntaxError:
    """An error inside a string literal, pointing at the escape at `offset` in its body
    (None: the whole literal); a string is on one line."""
    prefix = 2 if str(token)[0] in "rR" else 1
    span = span_of(token)
    if span is not ast.NO_SPAN and offset is not None:
        column = span.column + prefix + offset
        span = ast.Span(span.line, column, span.line, column + width,
                        span.start_pos + prefix + offset, span.start_pos + prefix + offset + width)
    return KestrelSyntaxError(f"invalid string: {message}").at(span, None)


def decode_number(token: Token):
    text = str(token)
    if any(c in text for c in ".eE"):
        value = float(text)
        if not math.isfinite(value):
            raise KestrelSyntaxError(f"number out of range: {text}").at(span_of(token), None)
        return value
    if len(text.lstrip("-").lstrip("0")) > MAX_DIGITS:
        raise KestrelSyntaxError(f"number out of range: more than {MAX_DIGITS} digits").at(
            span_of(token), None)
    return int(text)


def decode_int(token: Token, what: str, minimum: int = 0, maximum: int = MAX_INT) -> int:
    """A whole number of LIMIT, OFFSET, LAST or BIN, within what the stores can take."""
    digits = str(token).lstrip("0") or "0"
    value = int(digits) if len(digits) <= len(str(maximum)) else maximum + 1
    if value < minimum:
        raise KestrelSyntaxError(f"{what} must be at least {minimum}").at(span_of(token), None)
    if value > maximum:
        raise KestrelSyntaxError(f"{what} must be at most {maximum}").at(span_of(token), None)
    return value


def strip_timestamp(token: Token) -> str:
    text = str(token)
    if text[0] in "tT":
        text = text[1:]
    return text.strip("'\"")
