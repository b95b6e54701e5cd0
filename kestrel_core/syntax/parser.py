"""Text -> AST, with errors a hunter can read.

One LALR parser is made when this module is imported (loaded from the user's
cache when it holds one for this grammar: lark_cache.py) and reused for every
parse and every completion keystroke.
"""

from __future__ import annotations

import re

from lark import Token, Tree
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from ..errors import KestrelError, KestrelSyntaxError
from .lark_cache import cache_folder, load_parser
from .transform import ToAst

PARSER = load_parser(
    "kestrel", "grammar/kestrel.lark", cache_folder(),
    parser="lalr", lexer="contextual", propagate_positions=True, maybe_placeholders=False,
)

# How each terminal is named to a user; keywords (`_GET`, `IN`) show as themselves.
TERMINAL_WORDS = {
    "VARIABLE": "a variable name",
    "ENTITY_TYPE": "an entity type (e.g. process)",
    "ATTRIBUTE": "an attribute (e.g. name)",
    "ATTR_PATH": "an attribute (e.g. name, parent_ref.name, ipv4-addr:value)",
    "VAR_ATTR": "a variable's attribute (e.g. procs.pid)",
    "RELATION": "a relation (CREATED, ACCEPTED, CONTAINED, LINKED, LOADED, OWNED)",
    "ORDER": "ASC or DESC",
    "AGG_FUNC": "an aggregation (COUNT, SUM, MIN, MAX, AVG, NUNIQUE)",
    "TRANSFORM": "a transform (TIMESTAMPED, ADDOBSID, RECORDS)",
    "TIME_UNIT": "a time unit (DAYS, HOURS, MINUTES, SECONDS)",
    "URI": "a URI (e.g. file:///data/bundle.json, stixshifter://edr)",
    "PATH": "a path (e.g. data/bundle.json)",
    "STRING": "a quoted string",
    "RAW_STRING": "a raw string (r'...')",
    "TIMESTAMP": "a timestamp (e.g. 2022-11-11T15:05:00Z)",
    "INT": "a whole number",
    "NUMBER": "a number",
    "BARE_WORD": "a word",
    "TRUE": "true",
    "FALSE": "false",
    "NULL": "null",
    "EQ": "=",
    "$END": "end of input",
}

MAX_EXPECTED = 12

_VARIABLE = re.compile(PARSER.get_terminal("VARIABLE").pattern.to_regexp())


def is_variable_name(name) -> bool:
    """What the grammar takes as a variable name (for names that skip the parser)."""
    return isinstance(name, str) and _VARIABLE.fullmatch(name) is not None


def describe_terminal(name: str) -> str:
    if name in TERMINAL_WORDS:
        return TERMINAL_WORDS[name]
    if name.startswith("_"):
        return name[1:].replace("_", " ")
    pattern = PARSER.get_terminal(name).pattern
    if pattern.type == "str":
        return pattern.value
    return name


def expected_words(names) -> list:
    """Terminal names -> sorted plain words: keywords first, then symbols, then descriptions."""
    words = sorted({describe_terminal(n) for n in names},
                   key=lambda w: (not w.isupper(), not w[0].isalpha(), w))
    if len(words) > MAX_EXPECTED:
        words = words[:MAX_EXPECTED] + ["..."]
    return words


def parse(text: str) -> list:
    """Parse a huntflow into a list of `ast` statements, or raise KestrelSyntaxError."""
    try:
        tree = PARSER.parse(text)
        _check_nesting(tree, text)
        return ToAst(text, is_variable_name).transform(tree)
    except VisitError as err:
        inner = err.orig_exc
        if isinstance(inner, KestrelError):
            if inner.source is None:
                inner.source = text
            raise inner from None
        raise
    except UnexpectedInput as err:
        raise syntax_error(err, text) from None


# How deep a statement may nest (parentheses, lists, JSON): every later stage walks the
# tree recursively; a flat chain of ANDs or ORs does not nest.
MAX_NESTING = 100


def _check_nesting(tree, text):
    """KestrelSyntaxError at the first node nested deeper than MAX_NESTING (checked
    without recursion, before anything recursive sees the tree)."""
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            raise KestrelSyntaxError(
                f"nested too deeply: more than {MAX_NESTING} levels of parentheses or lists",
                line=node.meta.line, column=node.meta.column, source=text)
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))


def syntax_error(err: UnexpectedInput, text: str) -> KestrelSyntaxError:
    """Translate a lark error into the user's words, with position and caret."""
    unfinished = _unfinished_before(err, text)
    if unfinished is not None:
        return unfinished
    if isinstance(err, UnexpectedToken):
        token = err.token
        if token.type == "$END":
            return _at_end(text, err.expected)
        hint = _hint(err.expected)
        if "URI" in err.expected and _APPLY_BEFORE.search(text, 0, token.start_pos):
            line = text.split("\n")[token.line - 1]
            fixed = line[:token.column - 1] + "python://" + line[token.column - 1:]
            hint = f"an analytics is named by its URI: write {fixed.strip()}"
        return KestrelSyntaxError(
            f"unexpected {_describe_token(token)}",
            line=token.line, column=token.column, source=text,
            width=len(str(token)), expected=expected_words(err.expected), hint=hint,
        )
    if isinstance(err, UnexpectedEOF):
        return _at_end(text, err.expected)
    if isinstance(err, UnexpectedCharacters):
        char = text[err.pos_in_stream]
        message = f'unexpected character "{visible(char)}"'
        if char in "'\"":
            message = "unterminated string (a string must close on the line it opens)"
        return KestrelSyntaxError(
            message, line=err.line, column=err.column, source=text,
            expected=expected_words(err.allowed or ()), hint=_hint(err.allowed or ()),
        )
    return KestrelSyntaxError(str(err), source=text)


def _at_end(text, expected,
            message="unexpected end of input: the statement is not finished"):
    lines = text.rstrip().split("\n")  # lines as lark counts them: only \n ends one
    line, column = len(lines), len(lines[-1]) + 1  # just after the last word
    return KestrelSyntaxError(
        message,
        line=line, column=column, source=text, expected=expected_words(expected),
        hint=_hint(expected),
    )


_APPLY_BEFORE = re.compile(r"\bAPPLY\s*\Z", re.IGNORECASE)

# A line that starts a statement: a command, or `name = <command>`.
_STATEMENT_START = re.compile(
    r"\s*(?:[A-Za-z_]\w*\s*=\s*)?(?:GET|FIND|NEW|LOAD|SAVE|SORT(?!\s+BY\b)|GROUP|JOIN|APPLY|DISP|"
    r"INFO|DESCRIBE|EXPLAIN)\b", re.IGNORECASE)


def _unfinished_before(err: UnexpectedInput, text: str) -> KestrelSyntaxError | None:
    """The error of a statement left unfinished at the end of a line, when the line where
    parsing failed starts another statement (`procs = GET process WHERE` then `DISP procs`):
    the place to fix is the end of the unfinished one, not the next statement."""
    line = getattr(err, "line", None)
    if not isinstance(line, int) or line < 2:
        return None
    lines = text.split("\n")
    if line > len(lines) or not _STATEMENT_START.match(lines[line - 1]):
        return None
    before = "\n".join(lines[:line - 1])
    try:
        PARSER.parse(before)
    except UnexpectedToken as inner:
        if inner.token.type != "$END":
            return None
        expected = inner.expected
    except UnexpectedEOF as inner:
        expected = inner.expected
    except UnexpectedInput:
        return None
    else:
        return None  # the statements before are whole: the error is on this line
    code = lines[:line - 1]
    while code and (not code[-1].strip() or code[-1].lstrip().startswith("#")):
        code.pop()  # point after the statement's last word, not at comments below it
    return _at_end("\n".join(code), expected,
                   f"unexpected end of the statement: line {line} starts another")


def _describe_token(token: Token) -> str:
    if token.type.startswith("_") or (token.type.isupper() and str(token).upper() == token.type):
        return f"keyword {str(token).upper()}"
    return f'"{visible(str(token))}"'


def visible(text: str) -> str:
    """Text with characters that do not print (NUL, controls, separators) as escapes."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def _hint(expected) -> str | None:
    expected = set(expected)
    if "TIMESTAMP" in expected:
        return "time is ISO 8601 in UTC: START 2022-11-11T15:05:00Z STOP 2022-11-12T08:00:00Z"
    if expected == {"RELATION"}:
        return ("e.g. FIND process CREATED procs (their parents), "
                "FIND process CREATED BY procs (their children)")
    if expected == {"EQUAL"}:
        return "a statement starts with a command (GET, FIND, DISP, ...) or with `name =`"
    return None
