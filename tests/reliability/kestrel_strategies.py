"""Hypothesis strategies that write Kestrel, rule by rule from kestrel.lark.

Every strategy draws *source text*; the ECGP and literal strategies also draw
the AST the text must parse to (an oracle written from the language's rules,
not from the transformer), so a consistent misreading (precedence, escapes,
`=` with a list) is caught, not only a failed round trip.

Layout is random too: keyword case, whitespace, comments, line breaks.
"""

from __future__ import annotations

import json
import re
import string
from datetime import datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st

from kestrel.syntax import ast
from kestrel.syntax.unparse import python_string

# Words VARIABLE may not be (kestrel.lark, VARIABLE's lookahead), compared case-insensitively.
RESERVED = set(
    "get find new load save sort group join apply disp info describe explain from where as to by "
    "with on attr limit offset and or not is start stop last in like matches issubset issuperset "
    "timestamped addobsid records true false null".split()
)

ENTITY_TYPES = ["process", "file", "network-traffic", "ipv4-addr", "ipv6-addr", "user-account",
                "domain-name", "url", "x-oca-asset", "x-oca-event", "windows-registry-key",
                "email-addr", "software", "directory"]

# Realistic attribute paths (canonical form) and how a hunter may also write them.
ATTRIBUTE_SPELLINGS = {
    "name": ["name"],
    "pid": ["pid"],
    "command_line": ["command_line"],
    "parent_ref.name": ["parent_ref.name"],
    "parent_ref.pid": ["parent_ref.pid"],
    "binary_ref.name": ["binary_ref.name"],
    "hashes.MD5": ["hashes.MD5", "hashes.'MD5'"],
    "hashes.'SHA-256'": ["hashes.'SHA-256'", "hashes.SHA-256"],
    "opened_connection_refs[*].dst_ref.value": ["opened_connection_refs[*].dst_ref.value"],
    "extensions.'windows-process-ext'.aslr_enabled":
        ["extensions.'windows-process-ext'.aslr_enabled",
         "extensions.windows-process-ext.aslr_enabled"],
    "x_custom[*].'a-b'[*]": ["x_custom[*].'a-b'[*]", "x_custom[*].a-b[*]"],
    "value": ["value"],
    "dst_port": ["dst_port"],
}



def budget(share: float = 1.0) -> int:
    """Examples for a property: `share` of the active profile's max_examples
    (profiles: conftest.py; `ci` by default, `long` for scripts/fuzz)."""
    return max(10, int(settings.default.max_examples * share))


# ------------------------------------------------------------------ layout

SPACES = st.sampled_from([" ", " ", " ", "  ", "\t", "\n", "\n    ", " \r\n ", " # note\n"])


def join_words(draw, words) -> str:
    """Words separated by random whitespace and comments."""
    out = [words[0]]
    for word in words[1:]:
        out.append(draw(SPACES))
        out.append(word)
    return "".join(out)


@st.composite
def keyword(draw, word: str) -> str:
    """A keyword in random case (keywords are case-insensitive)."""
    style = draw(st.sampled_from(["upper", "upper", "lower", "title", "random"]))
    if style == "upper":
        return word.upper()
    if style == "lower":
        return word.lower()
    if style == "title":
        return word.title()
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.upper() if f else c.lower() for c, f in zip(word, flips))


# ------------------------------------------------------------------ names

def _is_variable(name: str) -> bool:
    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) is not None and \
        name.lower() not in RESERVED


variable_names = st.one_of(
    st.sampled_from(["procs", "conns", "p2", "_", "x", "my_var", "getx", "orders", "desc", "asc",
                     "count", "created", "d", "days", "bin", "process", "_Tmp9", "inx", "ANDY"]),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True),
).filter(_is_variable)

entity_types = st.one_of(
    st.sampled_from(ENTITY_TYPES),
    st.from_regex(r"x-[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,5}){0,2}", fullmatch=True),
)

_plain_step = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
_dashed_step = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,4}(-[A-Za-z0-9_]{1,4}){1,2}",
                             fullmatch=True)
_quoted_body = st.from_regex(r"[A-Za-z0-9_\-]{1,10}", fullmatch=True)


def canonical_step(name: str) -> str:
    """A step as STIX and firepit write it: quoted unless a plain name."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return name
    return f"'{name}'"


@st.composite
def random_attribute(draw):
    """(text, canonical) of a random attribute path: steps plain, dashed, quoted, [*]."""
    first = draw(_plain_step)
    star = draw(st.booleans())
    text = canon = first + ("[*]" if star else "")
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["plain", "dashed", "quoted"]))
        star = "[*]" if draw(st.integers(0, 4)) == 0 else ""
        if kind == "plain":
            name = draw(_plain_step)
            written = name
        elif kind == "dashed":
            name = draw(_dashed_step)
            written = name
        else:
            name = draw(_quoted_body)
            written = f"'{name}'"
        text += f".{written}{star}"
        canon += f".{canonical_step(name)}{star}"
    return text, canon


@st.composite
def attributes(draw):
    """(text, canonical) of an attribute path as in ATTR, SORT BY, GROUP BY."""
    if draw(st.booleans()):
        canon = draw(st.sampled_from(sorted(ATTRIBUTE_SPELLINGS)))
        return draw(st.sampled_from(ATTRIBUTE_SPELLINGS[canon])), canon
    return draw(random_attribute())


# ------------------------------------------------------------------ literals

# Text with what breaks naive quoting: quotes, backslashes, SQL and LIKE metacharacters,
# NUL and other controls, separators, astral characters (no lone surrogates: not text).
NASTY = ["'", '"', "\\", "\\\\", "%", "_", ";", "--", "/*", "*/", "\x00", "\n", "\r", "\t",
         "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\xa0", "\u2028", "\u2029", "\ufeff", "é",
         "😀", "\U000e0001", "'; DROP TABLE process; --", "' OR '1'='1", "\\'", "$1", "?", "{}"]

string_values = st.one_of(
    st.text(max_size=12),
    st.lists(st.one_of(st.sampled_from(NASTY), st.text(string.printable, max_size=3)),
             max_size=6).map("".join),
)


def _written(char: str, quote: str, style: str) -> str:
    """`char` inside a string literal quoted with `quote`, escaped in `style`."""
    if char == "\\":
        return "\\\\"
    if char == quote:
        return "\\" + quote
    if char == "\n":
        return "\\n"  # the only character that may not stand raw between quotes
    if style == "plain":
        return char
    code = ord(char)
    if style == "hex" and code <= 0xFF:
        return f"\\x{code:02x}"
    if style == "octal" and code <= 0o777:
        return f"\\{code:03o}"
    if code <= 0xFFFF:
        return f"\\u{code:04X}"
    if style == "pair":  # a UTF-16 surrogate pair, joined as in JSON
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\U{code:08x}"


def raw_can_hold(value: str, quote: str) -> bool:
    """r'...' keeps its body verbatim: no quote of its own, no newline, no odd final backslash."""
    trailing = len(value) - len(value.rstrip("\\"))
    return quote not in value and "\n" not in value and trailing % 2 == 0


@st.composite
def string_literals(draw, value_strategy=string_values, raw=True):
    """(text, value) of a Kestrel string literal: quotes ' or ", raw strings, and each
    character raw or escaped (\\x, octal, \\u, \\U, surrogate pairs)."""
    value = draw(value_strategy)
    raw_quotes = [q for q in "'\"" if raw and raw_can_hold(value, q)]
    if raw_quotes and draw(st.integers(0, 3)) == 0:
        quote = draw(st.sampled_from(raw_quotes))
        return draw(st.sampled_from(["r", "R"])) + quote + value + quote, value
    quote = draw(st.sampled_from(["'", '"']))
    style = draw(st.sampled_from(["hex", "octal", "unicode", "pair"]))
    body = "".join(_written(c, quote, style if draw(st.booleans()) else "plain") for c in value)
    return quote + body + quote, value


def number_literals():
    """(text, value): ints, floats, exponents; value as the grammar reads the text."""
    ints = st.integers(-(10**30), 10**30).map(lambda i: (str(i), i))
    floats = st.floats(allow_nan=False, allow_infinity=False).map(repr).filter(
        lambda t: re.fullmatch(r"-?\d+(\.\d+)?([eE][+\-]?\d+)?", t) is not None)
    exps = st.tuples(st.integers(-999, 999), st.sampled_from(["e", "E"]),
                     st.sampled_from(["", "+", "-"]), st.integers(0, 300)).map(
        lambda t: f"{t[0]}{t[1]}{t[2]}{t[3]}")
    lead = st.integers(0, 999).map(lambda i: f"00{i}")
    texts = st.one_of(floats, exps, lead)
    return st.one_of(ints, texts.map(lambda t: (t, _read_number(t))))


def _read_number(text: str):
    return float(text) if any(c in text for c in ".eE") else int(text)


@st.composite
def scalar_literals(draw):
    """(text, value) of a string, number, true, false or null."""
    kind = draw(st.sampled_from(["string", "string", "number", "true", "false", "null"]))
    if kind == "string":
        return draw(string_literals())
    if kind == "number":
        return draw(number_literals())
    word = draw(keyword(kind))
    return word, {"true": True, "false": False, "null": None}[kind]


@st.composite
def var_attrs(draw):
    """(text, VarAttr): a variable's attribute used as a value (procs.pid)."""
    variable = draw(variable_names)
    attr_text, canon = draw(st.one_of(
        st.sampled_from([("pid", "pid"), ("name", "name"), ("parent_ref.name", "parent_ref.name"),
                         ("hashes.SHA-256", "hashes.'SHA-256'")]),
        random_attribute(),
    ))
    return f"{variable}.{attr_text}", ast.VarAttr(variable, canon)


@st.composite
def value_lists(draw, depth=0, var_refs=True):
    """(text, flattened tuple): ( ... ) or [ ... ], nested, optional trailing comma."""
    items = []
    for _ in range(draw(st.integers(1, 4))):
        choice = draw(st.integers(0, 9))
        if choice == 0 and depth < 2:
            items.append(draw(value_lists(depth + 1, var_refs)))
        elif choice == 1 and var_refs:
            text, ref = draw(var_attrs())
            items.append((text, (ref,)))
        else:
            text, value = draw(scalar_literals())
            items.append((text, (value,)))
    opening, closing = draw(st.sampled_from([("(", ")"), ("[", "]")]))
    comma = "," if draw(st.integers(0, 4)) == 0 else ""
    text = opening + ", ".join(t for t, _ in items) + comma + closing
    return text, tuple(v for _, values in items for v in values)


# ------------------------------------------------------------------ ECGP

OPERATORS = ["=", "==", "!=", ">", ">=", "<", "<=", "IN", "LIKE", "MATCHES", "ISSUBSET",
             "ISSUPERSET"]


@st.composite
def comparisons(draw, attribute_strategy=None, var_refs=True):
    """(text, Comparison) for `path op value`, following the rules of the language:
    `==` is `=`; `=`/`!=` with a variable reference mean IN/NOT IN; IN takes a list or
    a variable reference (a list with `=` and IN with one literal are errors, as in
    Kestrel v1); LIKE, MATCHES, ISSUBSET, ISSUPERSET take a string; >, >=, <, <= a single
    value."""
    if attribute_strategy is None:
        prefix = draw(st.sampled_from([None, None, None, "process", "x-oca-asset", "ipv4-addr"]))
        path_text, canon = draw(attributes())
        if prefix:
            path_text = f"{prefix}:{path_text}"
    else:
        prefix, (path_text, canon) = None, draw(attribute_strategy)
    if draw(st.integers(0, 9)) == 0:  # a null test: IS [NOT] NULL
        negated = draw(st.booleans())
        words = [path_text, draw(keyword("IS"))] + ([draw(keyword("NOT"))] if negated else [])
        node = ast.Comparison(ast.AttrPath(prefix, canon), "IS", None, negated)
        return join_words(draw, words + [draw(keyword("NULL"))]), node
    op_text = draw(st.sampled_from(OPERATORS))
    written_not = draw(st.integers(0, 3)) == 0
    op, negated = ("=" if op_text == "==" else op_text), written_not
    if op in ("LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET"):
        value_text, value = draw(string_literals())
    elif op in (">", ">=", "<", "<="):
        value_text, value = draw(st.one_of(string_literals(), number_literals()))
    else:
        kind = draw(st.integers(0, 5))
        if kind == 1 and var_refs:
            value_text, value = draw(var_attrs())
        elif op == "IN":
            value_text, value = draw(value_lists(var_refs=var_refs))
        else:
            value_text, value = draw(scalar_literals())
    if op in ("=", "!=") and isinstance(value, ast.VarAttr):
        op, negated = "IN", written_not != (op == "!=")
    words = [path_text] + ([draw(keyword("NOT"))] if written_not else [])
    words += [draw(keyword(op_text)) if op_text.isalpha() else op_text, value_text]
    node = ast.Comparison(ast.AttrPath(prefix, canon), op, value, negated)
    return join_words(draw, words), node


@st.composite
def ecgps(draw, comparison_strategy=None, depth=0):
    """(text, ECGP node): comparisons under AND/OR, parentheses where needed or not.

    The expected node flattens nested AND in AND (and OR in OR), as the language does."""
    leaf = comparison_strategy or comparisons()
    if depth >= 3 or draw(st.integers(0, 2)) == 0:
        return draw(leaf)
    op = draw(st.sampled_from(["AND", "OR"]))
    children = [draw(ecgps(comparison_strategy, depth + 1))
                for _ in range(draw(st.integers(2, 3)))]
    texts, operands = [], []
    for text, node in children:
        needs_parens = op == "AND" and isinstance(node, ast.BoolExpr) and node.op == "OR"
        if needs_parens or draw(st.integers(0, 4)) == 0:
            text = f"({draw(SPACES).strip(' ')}{text})"
        texts.append(text)
        if isinstance(node, ast.BoolExpr) and node.op == op:
            operands.extend(node.operands)
        else:
            operands.append(node)
    sep = draw(SPACES) + draw(keyword(op)) + draw(SPACES)
    return sep.join(texts), ast.BoolExpr(op, tuple(operands))


@st.composite
def where_ecgps(draw, comparison_strategy=None):
    """A whole WHERE pattern, optionally in STIX brackets."""
    text, node = draw(ecgps(comparison_strategy))
    if draw(st.integers(0, 5)) == 0:
        text = f"[{text}]"
    return text, node


# ------------------------------------------------------------------ time ranges

@st.composite
def timestamps(draw, moment):
    """A written form of `moment` (bare, quoted, t'...') and the text START/STOP keep."""
    digits = draw(st.integers(0, 9))
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{moment.microsecond:06d}{draw(st.integers(0, 999)):03d}"[:digits]
    text += "Z"
    form = draw(st.sampled_from(["bare", "bare", "'", '"', "t'", "T'", 't"']))
    if form == "bare":
        return text, text
    quote = form[-1]
    prefix = form[:-1]
    return f"{prefix}{quote}{text}{quote}", text


@st.composite
def time_ranges(draw):
    """(text, AbsoluteTime or RelativeTime)."""
    if draw(st.booleans()):
        unit_word = draw(st.sampled_from(["DAY", "DAYS", "HOUR", "HOURS", "MINUTE", "MINUTES",
                                          "SECOND", "SECONDS", "d", "h", "m", "s"]))
        unit = {"d": "DAY", "h": "HOUR", "m": "MINUTE", "s": "SECOND"}.get(
            unit_word, unit_word.rstrip("S"))
        amount = draw(st.integers(1, 5000))
        words = [draw(keyword("LAST")), str(amount), draw(keyword(unit_word))]
        return join_words(draw, words), ast.RelativeTime(amount, unit)
    start = draw(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2099, 1, 1)))
    length = draw(st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=3000)))
    start_text, start_kept = draw(timestamps(start))
    stop_text, stop_kept = draw(timestamps(start + length))
    words = [draw(keyword("START")), start_text, draw(keyword("STOP")), stop_text]
    return join_words(draw, words), ast.AbsoluteTime(start_kept, stop_kept)


# ------------------------------------------------------------------ statements

@st.composite
def data_sources(draw):
    kind = draw(st.sampled_from(["uri", "path", "string", "variable"]))
    if kind == "uri":
        return draw(st.sampled_from(["file:///tmp/a.json", "stixshifter://edr1",
                                     "https://example.com/b.json?x=1&y=%20", "http://h:8080/c"]))
    if kind == "path":
        return draw(st.from_regex(r"[A-Za-z0-9_~\-]{0,6}[./][A-Za-z0-9_.~\-/*?]{0,12}",
                                  fullmatch=True))
    if kind == "string":
        return draw(string_literals(st.text(min_size=1, max_size=15)))[0]
    return draw(variable_names)


@st.composite
def where_time_limit(draw) -> list:
    """The optional WHERE, time range and LIMIT that end a GET or a FIND."""
    words = []
    if draw(st.booleans()):
        words += [draw(keyword("WHERE")), draw(where_ecgps())[0]]
    if draw(st.integers(0, 3)) == 0:
        words.append(draw(time_ranges())[0])
    if draw(st.integers(0, 3)) == 0:
        words += [draw(keyword("LIMIT")), str(draw(st.integers(0, 10**6)))]
    return words


@st.composite
def get_statements(draw):
    words = [draw(keyword("GET")), draw(entity_types)]
    if draw(st.booleans()):
        words += [draw(keyword("FROM")), draw(data_sources())]
    words += draw(where_time_limit())
    return join_words(draw, words)


@st.composite
def find_statements(draw):
    words = [draw(keyword("FIND")), draw(entity_types),
             draw(keyword(draw(st.sampled_from(["CREATED", "ACCEPTED", "CONTAINED", "LINKED",
                                                 "LOADED", "OWNED"]))))]
    if draw(st.booleans()):
        words.append(draw(keyword("BY")))
    words.append(draw(variable_names))
    words += draw(where_time_limit())
    return join_words(draw, words)


json_scalars = st.one_of(
    st.builds(lambda lit: lit[0], string_literals(raw=False)),  # NEW's JSON: no r'...'
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr).filter(
        lambda t: re.fullmatch(r"-?\d+(\.\d+)?([eE][+\-]?\d+)?", t) is not None),
    st.sampled_from(["true", "false", "null"]),
)


def json_values(depth=0):
    if depth >= 2:
        return json_scalars
    return st.one_of(json_scalars, json_arrays(depth + 1), json_objects(depth + 1))


@st.composite
def json_objects(draw, depth=0):
    pairs = [f"{draw(string_literals(raw=False))[0]}: {draw(json_values(depth))}"
             for _ in range(draw(st.integers(0, 3)))]
    return "{" + ", ".join(pairs) + "}"


@st.composite
def json_arrays(draw, depth=0, min_size=0):
    items = [draw(json_values(depth)) for _ in range(draw(st.integers(min_size, 3)))]
    return "[" + ", ".join(items) + "]"


@st.composite
def new_statements(draw):
    words = [draw(keyword("NEW"))]
    if draw(st.booleans()):
        words.append(draw(entity_types))
        items = [draw(string_literals(raw=False))[0] for _ in range(draw(st.integers(1, 4)))]
        words.append("[" + ", ".join(items) + "]")
    else:
        objects = [draw(json_objects(1)) for _ in range(draw(st.integers(1, 3)))]
        words.append("[" + ", ".join(objects) + "]")
    return join_words(draw, words)


def paths():
    return st.one_of(
        st.from_regex(r"[A-Za-z0-9_~\-]{0,6}[./][A-Za-z0-9_.~\-/]{0,12}", fullmatch=True),
        st.builds(lambda lit: lit[0], string_literals(st.text(min_size=1, max_size=15))),
        st.sampled_from(["file:///tmp/x.csv"]),
    )


@st.composite
def load_statements(draw):
    words = [draw(keyword("LOAD")), draw(paths())]
    if draw(st.booleans()):
        words += [draw(keyword("AS")), draw(entity_types)]
    return join_words(draw, words)


@st.composite
def sort_statements(draw):
    words = [draw(keyword("SORT")), draw(variable_names), draw(keyword("BY")),
             draw(attributes())[0]]
    if draw(st.booleans()):
        words.append(draw(keyword(draw(st.sampled_from(["ASC", "DESC"])))))
    return join_words(draw, words)


@st.composite
def group_statements(draw):
    keys = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 2)) == 0:
            unit = draw(st.sampled_from(["", " DAYS", " h", " MINUTE", " seconds"]))
            keys.append(f"{draw(keyword('BIN'))}({draw(attributes())[0]}, "
                        f"{draw(st.integers(1, 10**6))}{unit})")
        else:
            keys.append(draw(attributes())[0])
    words = [draw(keyword("GROUP")), draw(variable_names), draw(keyword("BY")), ", ".join(keys)]
    if draw(st.booleans()):
        aggs = []
        for _ in range(draw(st.integers(1, 3))):
            func = draw(keyword(draw(st.sampled_from(["COUNT", "SUM", "MIN", "MAX", "AVG",
                                                       "NUNIQUE"]))))
            agg = f"{func}({draw(attributes())[0]})"
            if draw(st.booleans()):
                agg += f" {draw(keyword('AS'))} {draw(variable_names)}"
            aggs.append(agg)
        words += [draw(keyword("WITH")), ", ".join(aggs)]
    return join_words(draw, words)


@st.composite
def join_statements(draw):
    words = [draw(keyword("JOIN")), f"{draw(variable_names)}, {draw(variable_names)}"]
    if draw(st.booleans()):
        words += [draw(keyword("BY")), f"{draw(attributes())[0]}, {draw(attributes())[0]}"]
    return join_words(draw, words)


@st.composite
def apply_statements(draw):
    names = ", ".join(draw(st.lists(variable_names, min_size=1, max_size=3)))
    words = [draw(keyword("APPLY")),
             draw(st.sampled_from(["python://pin_ip", "docker://x", "python://a.b-c"])),
             draw(keyword("ON")), names]
    arg_names = draw(st.lists(variable_names, max_size=3, unique=True))
    if arg_names:
        args = []
        for name in arg_names:
            kind = draw(st.integers(0, 2))
            if kind == 0:
                value = draw(scalar_literals())[0]
            elif kind == 1:
                value = draw(st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,8}", fullmatch=True)
                             .filter(lambda w: w.lower() not in ("true", "false", "null")))
            else:
                value = "[" + ", ".join(draw(scalar_literals())[0]
                                        for _ in range(draw(st.integers(0, 3)))) + "]"
            args.append(f"{name}={value}")
        words += [draw(keyword("WITH")), ", ".join(args)]
    return join_words(draw, words)


@st.composite
def expressions(draw):
    """A variable or TRANSFORM(variable), then clauses in any order, each at most once."""
    name = draw(variable_names)
    if draw(st.integers(0, 3)) == 0:
        head = f"{draw(keyword(draw(st.sampled_from(['TIMESTAMPED', 'ADDOBSID', 'RECORDS']))))}({name})"
    else:
        head = name
    clauses = []
    if draw(st.booleans()):
        clauses.append([draw(keyword("WHERE")), draw(where_ecgps())[0]])
    if draw(st.booleans()):
        attrs = ", ".join(draw(attributes())[0] for _ in range(draw(st.integers(1, 4))))
        clauses.append([draw(keyword("ATTR")), attrs])
    if draw(st.booleans()):
        clause = [draw(keyword("SORT")) + draw(st.sampled_from([" ", "  ", "\n", "\t"])) +
                  draw(keyword("BY")), draw(attributes())[0]]
        if draw(st.booleans()):
            clause.append(draw(keyword(draw(st.sampled_from(["ASC", "DESC"])))))
        clauses.append(clause)
    if draw(st.booleans()):
        clauses.append([draw(keyword("LIMIT")), str(draw(st.integers(0, 10**6)))])
    if draw(st.booleans()):
        clauses.append([draw(keyword("OFFSET")), str(draw(st.integers(0, 10**6)))])
    clauses = draw(st.permutations(clauses)) if clauses else []
    return join_words(draw, [head] + [w for clause in clauses for w in clause])


@st.composite
def statements(draw):
    """One statement of any kind, named or not."""
    producing = draw(st.sampled_from(["get", "find", "new", "load", "sort", "group", "join"]))
    other = draw(st.sampled_from(["disp", "info", "explain", "save", "apply", "assign", "merge",
                                  "produce", "produce", "produce"]))
    if other == "produce":
        body = draw({"get": get_statements(), "find": find_statements(),
                     "new": new_statements(), "load": load_statements(),
                     "sort": sort_statements(), "group": group_statements(),
                     "join": join_statements()}[producing])
        if draw(st.integers(0, 3)) == 0:
            return body
        return f"{draw(variable_names)}{draw(st.sampled_from(['', ' ', '  ']))}={draw(SPACES)}{body}"
    if other == "disp":
        return join_words(draw, [draw(keyword("DISP")), draw(expressions())])
    if other in ("info", "explain"):
        return join_words(draw, [draw(keyword(other.upper())), draw(variable_names)])
    if other == "save":
        return join_words(draw, [draw(keyword("SAVE")), draw(variable_names), draw(keyword("TO")),
                                 draw(paths())])
    if other == "apply":
        return draw(apply_statements())
    if other == "assign":
        return f"{draw(variable_names)} = {draw(expressions())}"
    names = draw(st.lists(variable_names, min_size=2, max_size=4))
    return f"{draw(variable_names)} = " + " + ".join(names)


@st.composite
def huntflows(draw, min_size=1, max_size=4):
    parts = [draw(statements()) for _ in range(draw(st.integers(min_size, max_size)))]
    seps = [draw(st.sampled_from(["\n", "\n\n", " ", " # done\n", "\r\n"])) for _ in parts]
    return "".join(p + s for p, s in zip(parts, seps))


# ------------------------------------------------------------------ random text

FRAGMENTS = [
    "GET ", "FIND ", "NEW ", "LOAD ", "SAVE ", "SORT ", "SORT BY ", "GROUP ", "JOIN ", "APPLY ",
    "DISP ", "INFO ", "DESCRIBE ", "EXPLAIN ", "IS NULL ", "IS NOT NULL ", "FROM ", "WHERE ",
    "AS ", "TO ", "BY ", "BIN(", "WITH ", "ON ", "ATTR ", "LIMIT ", "OFFSET ", "AND ", "OR ", "NOT ", "START ", "STOP ", "LAST ", "IN ",
    "LIKE ", "MATCHES ", "ISSUBSET ", "ISSUPERSET ", "CREATED ", "ASC ", "DESC ", "COUNT(",
    "TIMESTAMPED(", "DAYS ", "true ", "null ", "process ", "x-oca-asset:hostname ",
    "parent_ref.name ", "hashes.'SHA-256' ", "procs.pid ", "p = ", "procs ", "= ", "== ", "!= ",
    "> ", ">= ", "< ", "<= ", "+ ", ", ", "(", ")", "[", "]", "{", "}", ":", "'", '"', "r'",
    "t'", "\\", "\\\\", "\\x", "\\u12", "\\N{", "'a'", '"b"', "r'\\d+'", "'%_'", "2022-11-11T15:05:00Z ",
    "2022-11-11T15:05:00.123456789Z ", "-1 ", "0 ", "1.5e308 ", "1e999 ", "99999999999999999999999 ",
    "file:///tmp/x.json ", "data/x.json ", "python://a ", "\n", "\r", "\r\n", "\t", "#", "# c\n",
    "\x00", "\x0b", "\x0c", "\x85", "\u2028", "\ufeff", "é", "😀", "\ud7ff",
    "'; DROP TABLE process; --", "9" * 4400, "1." + "5" * 400, "1e" + "9" * 30,
]

random_texts = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=3)), max_size=30
).map("".join)


# ------------------------------------------------------------------ execution over doctored-1k
# Statements a Session runs over /work/shared/data/doctored-1k.json, with `procs` (every
# process of the bundle) defined beforehand and never redefined.

PROCESS_ATTRIBUTES = [
    "name", "pid", "command_line", "created", "parent_ref.name", "parent_ref.pid",
    "binary_ref.name", "binary_ref.parent_directory_ref.path", "creator_user_ref.user_id",
    "opened_connection_refs[*].dst_ref.value", "opened_connection_refs[*].dst_port",
    "nosuchattr", "hashes.'SHA-256'",
]
EXTENDED_ATTRIBUTES = ["ipv4-addr:value", "network-traffic:dst_port", "user-account:user_id",
                       "file:name", "directory:path", "x-oca-asset:hostname"]
DATA_STRINGS = ["cmd.exe", "svchost.exe", "System", "wdsync.exe", "WMIC.exe", "kdd", "SYSTEM",
                "C:\\Windows\\System32", "192.168.1.1", "192.168.1.156", "WD Discovery.exe",
                "2019-11-16T12:55:28.101Z"]
LIKE_PATTERNS = ["%.exe", "svc%", "_md.exe", "%", "_", "%\\%", "%'%", "C:\\%", "%System%"]
REGEXES = ["^c.d\\.exe$", "exe$", "(", "[a-", "\\", "(?i)SVCHOST", ".*", "\\d+"]
CIDRS = ["192.168.1.0/24", "10.0.0.0/8", "not-a-cidr", "192.168.1.1", "::1/128"]
DATA_NUMBERS = [4, 1380, 0, -1, 60842, 47413, 2**63, 1.5]


def _exec_scalar(kind):
    strings = st.one_of(st.sampled_from(DATA_STRINGS), string_values)
    if kind == "string":
        return st.builds(lambda v: (_kestrel_string(v), v), strings)
    return st.one_of(
        st.builds(lambda v: (_kestrel_string(v), v), strings),
        st.sampled_from(DATA_NUMBERS).map(lambda n: (repr(n), n)),
        number_literals(),
        st.sampled_from([("true", True), ("false", False), ("null", None)]),
    )


def _kestrel_string(value: str) -> str:
    return python_string(value)


@st.composite
def exec_comparisons(draw):
    """`path op value` over process attributes (and extended subgraphs), values from the
    data, from procs, or random."""
    path = draw(st.one_of(st.sampled_from(PROCESS_ATTRIBUTES),
                          st.sampled_from(EXTENDED_ATTRIBUTES)))
    op = draw(st.sampled_from(OPERATORS))
    negated = draw(st.integers(0, 4)) == 0
    if draw(st.integers(0, 9)) == 0:
        return f"{path} IS {'NOT ' if negated else ''}NULL"
    if op == "LIKE":
        value = draw(st.one_of(st.sampled_from(LIKE_PATTERNS), string_values))
        value_text = _kestrel_string(value)
    elif op == "MATCHES":
        value = draw(st.one_of(st.sampled_from(REGEXES), string_values))
        value_text = _kestrel_string(value)
    elif op in ("ISSUBSET", "ISSUPERSET"):
        value_text = _kestrel_string(draw(st.sampled_from(CIDRS)))
    elif op in (">", ">=", "<", "<="):
        value_text = draw(st.one_of(_exec_scalar("string"),
                                    st.sampled_from(DATA_NUMBERS).map(lambda n: (repr(n), n))))[0]
    else:
        kind = draw(st.integers(0, 5))
        if kind == 0:
            items = draw(st.lists(_exec_scalar("any"), min_size=1, max_size=4))
            value_text = "(" + ", ".join(t for t, _ in items) + ")"
            op = "IN"  # a list goes with IN
        elif kind == 1:
            value_text = draw(st.sampled_from(["procs.pid", "procs.name", "procs.parent_ref.name",
                                               "procs.nosuchattr", "nosuchvar.pid"]))
        elif kind == 2 and op in ("=", "IN"):
            value_text = "(" + draw(st.sampled_from(["procs.pid", "4, procs.pid"])) + ")"
            op = "IN"
        else:
            value_text = draw(_exec_scalar("any"))[0]
            if op == "IN":
                value_text = f"({value_text})"
    return f"{path} {'NOT ' if negated else ''}{op} {value_text}"


@st.composite
def exec_ecgps(draw, depth=0):
    if depth >= 2 or draw(st.booleans()):
        return draw(exec_comparisons())
    op = draw(st.sampled_from(["AND", "OR"]))
    parts = [draw(exec_ecgps(depth + 1)) for _ in range(draw(st.integers(2, 3)))]
    return f" {op} ".join(f"({p})" for p in parts)


@st.composite
def exec_timeranges(draw):
    if draw(st.booleans()):
        return f"LAST {draw(st.integers(1, 100))} {draw(st.sampled_from(['DAYS', 'MINUTES']))}"
    start = draw(st.datetimes(min_value=datetime(2019, 11, 16, 12, 0),
                              max_value=datetime(2019, 11, 16, 14, 0)))
    stop = start + draw(st.timedeltas(min_value=timedelta(seconds=1),
                                      max_value=timedelta(hours=2)))
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    return f"START {start.strftime(fmt)} STOP t'{stop.strftime(fmt)}'"


@st.composite
def exec_statements(draw, bundle: str):
    """One statement for a Session whose `procs` holds doctored-1k's processes.
    Results go to `x` (or `_`); `procs` is never redefined."""
    attr = st.sampled_from(PROCESS_ATTRIBUTES[:9] + ["nosuchattr", "parent_ref.nosuch",
                                                     "x_refs.nosuch", "name.length"])
    kind = draw(st.sampled_from(["get", "get", "filter", "assign", "disp", "group", "sort",
                                 "find", "transform", "new", "info"]))
    where = f" WHERE {draw(exec_ecgps())}" if draw(st.integers(0, 5)) else ""
    limit = f" LIMIT {draw(st.integers(0, 50))}" if draw(st.integers(0, 3)) == 0 else ""
    if kind == "get":
        time = f" {draw(exec_timeranges())}" if draw(st.integers(0, 3)) == 0 else ""
        return f"x = GET process FROM {_kestrel_string(bundle)}{where}{time}{limit}"
    if kind == "filter":
        return f"x = GET process FROM procs{where}{limit}"
    if kind in ("assign", "disp"):
        clauses = [where] if where else []
        if draw(st.booleans()):
            clauses.append(" ATTR " + ", ".join(draw(st.lists(attr, min_size=1, max_size=3))))
        if draw(st.booleans()):
            clauses.append(f" SORT BY {draw(attr)} {draw(st.sampled_from(['ASC', 'DESC']))}")
        clauses.append(limit)
        if draw(st.booleans()):
            clauses.append(f" OFFSET {draw(st.integers(0, 2000))}")
        clauses = draw(st.permutations([c for c in clauses if c]))
        if kind == "disp":
            return "DISP procs" + "".join(clauses)
        return "x = procs" + "".join(c for c in clauses if not c.startswith(" ATTR"))
    if kind == "group":
        key = draw(st.one_of(attr, st.just("BIN(created, 5 MINUTES)"),
                             st.just("BIN(pid, 100)")))
        func = draw(st.sampled_from(["COUNT", "SUM", "MIN", "MAX", "AVG", "NUNIQUE"]))
        return f"x = GROUP procs BY {key} WITH {func}({draw(attr)}) AS n"
    if kind == "sort":
        return f"x = SORT procs BY {draw(attr)} {draw(st.sampled_from(['ASC', 'DESC']))}"
    if kind == "find":
        entity = draw(st.sampled_from(["process", "file", "network-traffic", "user-account",
                                       "ipv4-addr", "directory"]))
        relation = draw(st.sampled_from(["CREATED", "ACCEPTED", "CONTAINED", "LINKED", "LOADED",
                                         "OWNED"]))
        by = " BY" if draw(st.booleans()) else ""
        return f"x = FIND {entity} {relation}{by} procs{where}{limit}"
    if kind == "transform":
        transform = draw(st.sampled_from(["TIMESTAMPED", "ADDOBSID", "RECORDS"]))
        return f"x = {transform}(procs){limit}"
    if kind == "new":
        objects = []
        for _ in range(draw(st.integers(1, 3))):
            name = draw(string_values)
            objects.append({"type": "process", "name": name,
                            "pid": draw(st.integers(-(2**63), 2**63 - 1)),
                            "command_line": draw(string_values)})
        return "x = NEW " + json.dumps(objects)
    return f"{draw(st.sampled_from(['INFO', 'EXPLAIN']))} procs"
