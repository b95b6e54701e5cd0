"""Completion, completeness and keyword help for front ends (the kernel, a console).

What may come next is asked of the grammar, not guessed: lark's interactive
parser is fed the text before the word being typed and ``accepts()`` names the
terminals that fit.  Keywords are read from those terminals' patterns; names
(variables, entity types, attributes, data sources, analytics) are asked of a
*context*, duck-typed, which the Session provides::

    variable_names() -> list[str]        variable_type(name) -> str | None
    entity_types() -> list[str]          attributes_of(entity_type) -> list[str]
    data_source_uris() -> list[str]      analytics_names() -> list[str]

Matches are whole words for the range cursor_start..cursor_end, never suffixes."""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field

from lark import Token, Tree
from lark.exceptions import UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .syntax.parser import PARSER
from .timestamps import parse_timestamp


@dataclass
class Completion:
    """Whole candidates for the text between cursor_start and cursor_end, one type each."""

    matches: list = field(default_factory=list)
    cursor_start: int = 0
    cursor_end: int = 0
    types: list = field(default_factory=list)


# The word being typed: names, attribute paths (a.b, refs[*].x, ipv4-addr:value), URIs, paths.
_PARTIAL = re.compile(r"(?:[A-Za-z0-9_.\-:/~*?]|\[\*\])*\Z")
# (unrolled, possessive: a 1 MB string that never closes kept a backtracking state per
# character, 2.5 GB, as `(?:[^'\\\n]|\\.)*` does)
_STRINGS = re.compile(r"""[rRtT]?('[^'\\\n]*+(?:\\.[^'\\\n]*+)*+'"""
                      r"""|"[^"\\\n]*+(?:\\.[^"\\\n]*+)*+")""")
# A quoted time being typed (START t'2021-05): the word starts at its quote.
_QUOTED_TIME = re.compile(r"""(?<![A-Za-z0-9_'"])[tT]?['"][0-9:.TZ\-]*\Z""")
_KEYWORD_END = "(?![A-Za-z0-9_])"
_LITERALS = {"TRUE": "true", "FALSE": "false", "NULL": "null"}
_TERMINAL_KIND = {"RELATION": "relation", "AGG_FUNC": "function", "TRANSFORM": "function"}
# Punctuation offered where the grammar takes nothing else: after the word typed, or
# stripped, alone.
_PUNCTUATION = {"EQUAL": " = ", "COMMA": ", "}
# Names a finished word may be: `procs|` -> `procs = `, JOIN's `pid|` -> `pid, `.
_NAME_KIND = {"VARIABLE": "variable", "ATTRIBUTE": "attribute"}
# What a START/STOP time typed in part is filled with: 2021-05 -> 2021-05-01T00:00:00.000Z.
_TIME_TEMPLATE = "0000-01-01T00:00:00.000Z"
_MAX_PATHS = 500
# Clauses a statement takes at most once.
_ONCE = {"_FROM", "_WHERE", "_ATTR", "_SORT_BY", "_LIMIT", "_OFFSET", "_START", "_LAST"}


def complete(code: str, cursor_pos: int | None, context) -> Completion:
    """Candidates for the word ending at ``cursor_pos`` (None: the end of ``code``)."""
    cursor_pos = len(code) if cursor_pos is None else max(0, min(cursor_pos, len(code)))
    partial = _PARTIAL.search(code, 0, cursor_pos).group(0)
    start = cursor_pos - len(partial)
    empty = Completion([], start, cursor_pos, [])
    quoted = _QUOTED_TIME.search(code, 0, cursor_pos)
    if quoted and _in_text(code[:quoted.start()]):
        quoted = None  # the quote closes a string
    if quoted:
        partial, start = quoted.group(0), quoted.start()
    if _in_text(code[:start]):
        return _rule_paths(code, cursor_pos) or empty
    parsed = _parse_prefix(code[:start])
    if parsed is None:
        return empty
    here = _Here(context, partial, *parsed)
    if quoted and "TIMESTAMP" not in here.accepts:
        return empty  # in a string, not a time
    at_line_start = not code[:start].rpartition("\n")[2].strip()
    allowed = []
    for name in sorted(here.accepts):
        if name == "$END":
            continue
        if _starts_statement(here.parser, name):
            if not at_line_start:
                continue  # a new statement starts on a new line
        elif name in _ONCE and any(t.type == name for t in here.statement):
            continue  # a clause given already
        allowed.append(name)
    producers = {}
    for name in allowed:
        producers.setdefault(_PRODUCERS.get(name, _keywords), []).append(name)
    found = {}
    for producer, names in producers.items():
        for text, kind in producer(here, names):
            if text.lower().startswith(partial.lower()):
                found.setdefault(text, kind)
    if partial and all(text.lower() == partial.lower() for text in found):
        found = _finished(here, allowed) or found  # nothing longer fits: a finished word?
    matches = sorted(found, key=lambda m: (m.lower(), m))
    return Completion(matches, start, cursor_pos, [found[m] for m in matches])


def is_complete(code: str) -> str:
    """"complete", "incomplete" (a statement is still open) or "invalid"."""
    try:
        PARSER.parse(code)
        return "complete"
    except UnexpectedEOF:
        return "incomplete"
    except UnexpectedInput as err:
        if isinstance(err, UnexpectedToken) and err.token.type == "$END":
            return "incomplete"
        rest = code[err.pos_in_stream:] if err.pos_in_stream is not None else ""
        opened = re.match(r"[rRtT]?['\"]", rest) and not _STRINGS.match(rest)
        if opened and "\n" not in rest.rstrip():
            return "incomplete"  # a string opened on the last line
        return "invalid"


# ------------------------------------------------------------------ parsing the prefix


def _in_text(before: str) -> bool:
    """Does the text end inside a comment or an unfinished string (of its last line)?"""
    outside_strings = _STRINGS.sub("", before.rpartition("\n")[2])
    return "#" in outside_strings or "'" in outside_strings or '"' in outside_strings


@dataclass
class _Here:
    """Where the cursor is: the parser after the prefix and the current statement's tokens."""

    context: object
    partial: str
    parser: object
    statement: list
    previous: str | None  # type of the last token before the partial word
    accepts: set = field(init=False)

    def __post_init__(self):
        self.accepts = self.parser.accepts()


def _parse_prefix(text):
    """Feed ``text`` to an interactive parser; on an error, retry after the broken line.

    Returns (parser, statement tokens, previous token type) or None when the
    current line itself does not parse.
    """
    offset = 0
    while True:
        parser = PARSER.parse_interactive(text[offset:])
        try:
            tokens = parser.exhaust_lexer()
        except UnexpectedInput as err:
            line = getattr(err, "line", None) or 1
            lines = text[offset:].split("\n")
            if line >= len(lines):
                return None
            offset += sum(len(each) + 1 for each in lines[:line])
            continue
        previous = tokens[-1].type if tokens else None
        return parser, _statement_tokens(parser, tokens), previous


def _statement_tokens(parser, tokens) -> list:
    """Tokens of the unfinished statement, from its first token (which is still on
    the value stack: finished statements are reduced into trees below it) on."""
    stack = parser.parser_state.value_stack
    first = next((item for item in stack if isinstance(item, Token)), None)
    if first is None:
        return []
    start = next((i for i, token in enumerate(tokens) if token is first), len(tokens))
    return tokens[start:]


def _finished(here, allowed) -> dict:
    """The word typed taken as a finished name, with the punctuation the grammar then
    requires: `procs|` at a statement's start -> `procs = `, `JOIN a, b BY pid|` ->
    `pid, `.  Empty when the name may be followed by anything else."""
    for name in allowed:
        if name not in _NAME_KIND or not _terminal_regex(name).fullmatch(here.partial):
            continue
        probe = here.parser.copy()
        try:
            probe.feed_token(Token(name, here.partial))
        except UnexpectedInput:
            continue
        then = probe.accepts()
        if len(then) == 1 and then <= _PUNCTUATION.keys():
            (follow,) = then
            return {here.partial + _PUNCTUATION[follow]: _NAME_KIND[name]}
    return {}


@functools.lru_cache(maxsize=None)
def _terminal_regex(terminal: str):
    return re.compile(PARSER.get_terminal(terminal).pattern.to_regexp())


def _starts_statement(parser, terminal) -> bool:
    """Would ``terminal`` close the current statement and begin a new one?"""
    probe = parser.copy()
    try:
        probe.feed_token(Token(terminal, ""))
    except UnexpectedInput:
        return False
    stack = probe.parser_state.value_stack
    return all(isinstance(item, Tree) for item in stack[:-1])


# ------------------------------------------------------------------ candidates per terminal


@functools.lru_cache(maxsize=None)
def keyword_words(terminal: str) -> tuple:
    """The words a keyword-like terminal matches, upper case, from its pattern.

    ``_GET`` -> (GET,), ``RELATION`` -> (CREATED, ACCEPTED, ...), ``TIME_UNIT`` ->
    (DAY, DAYS, ...); punctuation and name terminals give ().
    """
    pattern = PARSER.get_terminal(terminal).pattern
    if pattern.type != "re" or not pattern.value.endswith(_KEYWORD_END):
        return ()
    body = pattern.value[: -len(_KEYWORD_END)]
    regex = re.compile(pattern.to_regexp(), re.IGNORECASE)
    words = []
    found = re.findall(r"[A-Za-z]{2,}", body)
    for word in found + [" ".join(found)]:  # "SORT BY" is one keyword of two words
        for form in (word.upper(), word.upper() + "S"):
            if regex.fullmatch(form) and form not in words:
                words.append(form)
    return tuple(words)


def _keywords(here, names):
    for name in names:
        if name in _LITERALS:
            yield _LITERALS[name], "literal"
            continue
        for word in keyword_words(name):
            yield word, _TERMINAL_KIND.get(name, "keyword")


def _punctuation(here, names):
    """`=` or `,` only where the grammar takes nothing else (after `procs ` at a
    statement's start, between JOIN's variables or keys): elsewhere words say more."""
    if len(here.accepts) == 1:
        for name in names:
            yield _PUNCTUATION[name].strip(), "punctuation"


def _timestamps(here, names):
    """A START/STOP time completed from what is typed, with the rest of
    0000-01-01T00:00:00.000Z (`2021-05` -> `2021-05-01T00:00:00.000Z`), quoted as
    typed (`t'2021` -> `t'2021-01-01T00:00:00.000Z'`); nothing until a digit is typed."""
    opening = re.match(r"[tT]?['\"]|", here.partial).group(0)
    typed = here.partial[len(opening):]
    if not typed:
        return
    for text in (typed, typed + _TIME_TEMPLATE[len(typed):], typed + "Z"):
        candidate = opening + text + opening[-1:]
        if _terminal_regex("TIMESTAMP").fullmatch(candidate):
            try:
                parse_timestamp(text)
            except ValueError:
                continue  # a month 13, a 31st of February
            yield candidate, "timestamp"
            return


def _variables(here, names):
    if here.previous == "_AS" or (here.statement and here.statement[0].type == "_APPLY"
                                  and any(t.type == "_WITH" for t in here.statement)):
        return  # a new name (an alias, an analytics parameter), not an existing variable
    for name in here.context.variable_names():
        yield name, "variable"


def _entity_types(here, names):
    for name in here.context.entity_types():
        yield name, "entity-type"


def _attributes(here, names):
    entity_type = _entity_type_in_context(here)
    if entity_type:
        for name in here.context.attributes_of(entity_type):
            yield name, "attribute"


def _variable_attributes(here, names):
    """`procs.` -> procs.<attribute>; without a dot, the variables as `procs.`."""
    ctx = here.context
    if "." not in here.partial:
        for name in ctx.variable_names():
            if ctx.variable_type(name):
                yield f"{name}.", "variable"
        return
    name = here.partial.split(".", 1)[0]
    entity_type = ctx.variable_type(name) if name in ctx.variable_names() else None
    if entity_type:
        for attribute in ctx.attributes_of(entity_type):
            yield f"{name}.{attribute}", "attribute"


def _locations(here, names):
    if here.previous == "_APPLY":
        for name in here.context.analytics_names():
            yield (name if "://" in name else f"python://{name}"), "analytics"
        return
    if here.previous == "_FROM":
        for uri in here.context.data_source_uris():
            yield uri, "datasource"
    if (here.partial.startswith(("file://", ".", "~")) or "/" in here.partial
            or here.previous in ("_LOAD", "_TO")):
        yield from _paths(here.partial)


# A rule path being typed in SIGMA's quotes: SIGMA '../rules/win
_SIGMA_PATH = re.compile(r"""(?<![A-Za-z0-9_])SIGMA\s+[rR]?['"]([^'"\n]*)\Z""", re.IGNORECASE)


def _rule_paths(code: str, cursor_pos: int):
    """Folders and rule files (.yml, .yaml) for the path typed in SIGMA's quotes."""
    typed = _SIGMA_PATH.search(code, 0, cursor_pos)
    if typed is None or _in_text(code[:typed.start()]):
        return None
    found = [(text, kind) for text, kind in _paths(typed.group(1))
             if text.endswith("/") or text.endswith((".yml", ".yaml"))]
    return Completion([text for text, _ in found], typed.start(1), cursor_pos,
                      [kind for _, kind in found])


def _paths(partial):
    """Directory entries completing a path or file:// URI; directories end with /."""
    scheme = "file://" if partial.startswith("file://") else ""
    path = partial[len(scheme):] or ("/" if scheme else "")
    directory, _, base = path.rpartition("/")
    directory = directory + "/" if "/" in path else ""
    try:
        entries = sorted(os.scandir(os.path.expanduser(directory or ".")), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries[:_MAX_PATHS]:
        if entry.name.startswith(".") and not base.startswith("."):
            continue
        try:
            slash = "/" if entry.is_dir() else ""
        except OSError:
            slash = ""
        yield f"{scheme}{directory}{entry.name}{slash}", "path"


_PRODUCERS = {
    "VARIABLE": _variables,
    "ENTITY_TYPE": _entity_types,
    "ATTRIBUTE": _attributes,
    "ATTR_PATH": _attributes,
    "VAR_ATTR": _variable_attributes,
    "URI": _locations,
    "PATH": _locations,
    "TIMESTAMP": _timestamps,
    "EQUAL": _punctuation,
    "COMMA": _punctuation,
}


def _entity_type_in_context(here):
    """The entity type whose attributes fit here: GET/FIND's type, or the type of the
    variable the statement works on (DISP/SORT/GROUP/expressions; JOIN's first or second)."""
    tokens = here.statement
    if len(tokens) >= 2 and tokens[0].type == "VARIABLE" and str(tokens[1]) == "=":
        tokens = tokens[2:]
    if not tokens:
        return None
    if tokens[0].type in ("_GET", "_FIND"):
        return next((str(t) for t in tokens if t.type == "ENTITY_TYPE"), None)
    variables = [str(t) for t in tokens if t.type == "VARIABLE"]
    if not variables:
        return None
    which = 0
    if tokens[0].type == "_JOIN":
        after_by = [t for t in tokens if t.type == "_BY"]
        if after_by:
            which = min(1, sum(1 for t in tokens[tokens.index(after_by[0]):] if str(t) == ","))
    variable = variables[min(which, len(variables) - 1)]
    return here.context.variable_type(variable)


# ------------------------------------------------------------------ inspection


KEYWORD_SYNTAX = {
    "GET": "[var =] GET <entity-type> [FROM <uri | path | var>] [WHERE <pattern>] "
           "[START <time> STOP <time> | LAST <n> <unit>] [LIMIT <n>]",
    "FIND": "[var =] FIND <entity-type> <relation> [BY] <var> [WHERE <pattern>] "
            "[START <time> STOP <time> | LAST <n> <unit>] [LIMIT <n>]",
    "NEW": "[var =] NEW [<entity-type>] [<JSON object or string>, ...]",
    "LOAD": "[var =] LOAD <path> [AS <entity-type>]",
    "SAVE": "SAVE <var> TO <path>",
    "SORT": "[var =] SORT <var> BY <attribute> [ASC | DESC]   "
            "or, in an expression, SORT BY <attribute>",
    "SORT BY": "DISP <var> SORT BY <attribute> [ASC | DESC]  (also in `v2 = v1 SORT BY ...`)",
    "GROUP": "[var =] GROUP <var> BY <attribute | BIN(attribute, n [unit])>, ... "
             "[WITH <COUNT|SUM|MIN|MAX|AVG|NUNIQUE>(<attribute>) [AS <name>], ...]",
    "JOIN": "[var =] JOIN <var>, <var> [BY <attribute>, <attribute>]",
    "APPLY": "APPLY <python://name> ON <var>, ... [WITH <name>=<value>, ...]",
    "DISP": "DISP <var> [WHERE <pattern>] [ATTR <attribute>, ...] "
            "[SORT BY <attribute> [ASC|DESC]] [LIMIT <n>] [OFFSET <n>]",
    "INFO": "INFO <var>",
    "DESCRIBE": "DESCRIBE <var>.<attribute>: statistics of one attribute",
    "EXPLAIN": "EXPLAIN <var>",
    "FROM": "GET <entity-type> FROM <uri | path | var>",
    "WHERE": "... WHERE <attribute> <operator> <value> [AND | OR ...]",
    "ATTR": "DISP <var> ATTR <attribute>, ...",
    "LIMIT": "... LIMIT <n>",
    "OFFSET": "DISP <var> ... OFFSET <n>",
    **dict.fromkeys(("START", "STOP"),
                    "... START <time> STOP <time>   (ISO 8601 UTC, e.g. 2022-11-11T15:05:00Z)"),
    "LAST": "... LAST <n> <DAYS | HOURS | MINUTES | SECONDS>",
    "BY": "SORT <var> BY <attribute> | GROUP <var> BY ... | FIND <type> <relation> BY <var>",
    "WITH": "GROUP ... WITH <aggregation>, ... | APPLY ... WITH <name>=<value>, ...",
    "BIN": "GROUP <var> BY BIN(<attribute>, <n> [DAYS | HOURS | MINUTES | SECONDS])",
    "AS": "LOAD <path> AS <entity-type> | <aggregation>(<attribute>) AS <name>",
    "TO": "SAVE <var> TO <path>",
    "ON": "APPLY <python://name> ON <var>, ...",
    "AND": "<comparison> AND <comparison>",
    "OR": "<comparison> OR <comparison>",
    "NOT": "<attribute> NOT <operator> <value> | <attribute> IS NOT NULL",
    "IS": "<attribute> IS [NOT] NULL",
    "SIGMA": "... WHERE SIGMA '<Sigma rule file or folder>'   (with AND, OR, other conditions)",
    "IN": "<attribute> IN (<value>, ...)",
    "LIKE": "<attribute> LIKE '<pattern with % and _>'",
    "MATCHES": "<attribute> MATCHES '<regular expression>'",
    "ISSUBSET": "<attribute> ISSUBSET '<CIDR>'",
    "ISSUPERSET": "<attribute> ISSUPERSET '<CIDR>'",
    "ASC": "SORT ... BY <attribute> ASC",
    "DESC": "SORT ... BY <attribute> DESC",
    "TIMESTAMPED": "TIMESTAMPED(<var>): each record with its first_observed time",
    "ADDOBSID": "ADDOBSID(<var>): each record with its observed-data id",
    "RECORDS": "RECORDS(<var>): the raw records of a variable",
}
for _word in ("CREATED", "ACCEPTED", "CONTAINED", "LINKED", "LOADED", "OWNED"):
    KEYWORD_SYNTAX[_word] = f"FIND <entity-type> {_word} [BY] <var>"
KEYWORD_SYNTAX["CONTAINED"] += ("   (also what other references point at, e.g. x-oca-event's "
                                "process_ref: FIND process CONTAINED BY events)")
for _word in ("COUNT", "SUM", "MIN", "MAX", "AVG", "NUNIQUE"):
    KEYWORD_SYNTAX[_word] = f"GROUP <var> BY <attribute> WITH {_word}(<attribute>) [AS <name>]"

_WORD = re.compile(r"[A-Za-z0-9_]*")


def word_at(code: str, cursor_pos: int | None) -> tuple:
    """The identifier under (or just before) the cursor: (word, start, end)."""
    cursor_pos = len(code) if cursor_pos is None else max(0, min(cursor_pos, len(code)))
    start = cursor_pos
    while start > 0 and (code[start - 1].isalnum() or code[start - 1] == "_"):
        start -= 1
    end = _WORD.match(code, cursor_pos).end()
    return code[start:end], start, end


def keyword_syntax(word: str) -> str | None:
    """The syntax line of a keyword (any case), or None."""
    return KEYWORD_SYNTAX.get(word.upper())
