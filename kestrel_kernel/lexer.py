"""Pygments lexer for Kestrel huntflows (.hf), for nbconvert and HTML exports.

Registered as the `pygments.lexers` entry point ``kestrel``; the kernel's
language_info names it in ``pygments_lexer``.  Kept free of lark so loading it
is cheap; tests check it against the grammar's keywords.
"""

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (Comment, Keyword, Literal, Name, Number, Operator, Punctuation,
                            String, Whitespace)

__all__ = ["KestrelLexer"]

_END = r"(?![A-Za-z0-9_])"
COMMANDS = ("GET", "FIND", "NEW", "LOAD", "SAVE", "SORT", "GROUP", "JOIN", "APPLY", "DISP",
            "INFO", "DESCRIBE", "EXPLAIN")
CLAUSES = ("FROM", "WHERE", "AS", "TO", "BY", "BIN", "WITH", "ON", "ATTR", "LIMIT", "OFFSET",
           "START", "STOP", "LAST", "ASC", "DESC", "SIGMA")
OPERATOR_WORDS = ("AND", "OR", "NOT", "IS", "IN", "LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET")
RELATIONS = ("CREATED", "ACCEPTED", "CONTAINED", "LINKED", "LOADED", "OWNED")
FUNCTIONS = ("COUNT", "SUM", "MIN", "MAX", "AVG", "NUNIQUE", "TIMESTAMPED", "ADDOBSID", "RECORDS")
TIME_UNITS = ("DAYS", "DAY", "HOURS", "HOUR", "MINUTES", "MINUTE", "SECONDS", "SECOND")
CONSTANTS = ("true", "false", "null")

_TYPE = r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*"
_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z"


class KestrelLexer(RegexLexer):
    name = "Kestrel"
    aliases = ["kestrel"]
    filenames = ["*.hf"]
    mimetypes = ["text/x-kestrel"]
    url = "https://kestrel.readthedocs.io/"

    tokens = {
        "root": [
            (r"\s+", Whitespace),
            (r"#.*?$", Comment.Single),
            # an entity type right after GET / FIND / NEW
            (r"(?i)(GET|FIND|NEW)(\s+)(" + _TYPE + r")" + _END,
             bygroups(Keyword, Whitespace, Name.Class)),
            (r"[tT]?'" + _TIME + r"'|[tT]?\"" + _TIME + r"\"|" + _TIME, Literal.Date),
            (r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"]*", String.Other),                 # URIs
            (r"(?:\.{1,2}|~)?[A-Za-z0-9_.~\-*?]*/[A-Za-z0-9_.~\-/*?]*", String.Other),  # paths
            (r"([rR])('[^'\\\n]*+(?:\\.[^'\\\n]*+)*+')",
             bygroups(String.Affix, String.Single)),
            (r"([rR])(\"[^\"\\\n]*+(?:\\.[^\"\\\n]*+)*+\")",
             bygroups(String.Affix, String.Double)),
            (r"'[^'\\\n]*+(?:\\.[^'\\\n]*+)*+'", String.Single),
            (r"\"[^\"\\\n]*+(?:\\.[^\"\\\n]*+)*+\"", String.Double),
            (words(COMMANDS, prefix=r"(?i)", suffix=_END), Keyword),
            (words(CLAUSES, prefix=r"(?i)", suffix=_END), Keyword),
            (words(OPERATOR_WORDS, prefix=r"(?i)", suffix=_END), Operator.Word),
            (words(RELATIONS, prefix=r"(?i)", suffix=_END), Keyword.Pseudo),
            (words(FUNCTIONS, prefix=r"(?i)", suffix=_END), Name.Builtin),
            (words(TIME_UNITS, prefix=r"(?i)", suffix=_END), Keyword.Type),
            (words(CONSTANTS, prefix=r"(?i)", suffix=_END), Keyword.Constant),
            # ipv4-addr:value, an attribute with its entity type
            (r"(" + _TYPE + r")(:)([A-Za-z_][A-Za-z0-9_]*)",
             bygroups(Name.Class, Punctuation, Name.Attribute)),
            (r"-?\d+(?:\.\d+)?(?:[eE][+\-]?\d+)?", Number),
            (r"==|!=|>=|<=|=|>|<|\+", Operator),
            (r"[\[\](){},:.*]", Punctuation),
            (r"[A-Za-z_][A-Za-z0-9_\-]*", Name),
        ],
    }
