"""The Pygments lexer: every grammar keyword is highlighted, and no Kestrel we ship or test
lexes to an Error token."""

import pathlib

import nbformat
import pytest
from pygments.token import Comment, Error, Keyword, Literal, Name, Operator, Punctuation, String

from kestrel.completion import keyword_words
from kestrel.syntax.parser import PARSER
from kestrel_kernel.lexer import KestrelLexer

REPO = pathlib.Path(__file__).resolve().parents[2]


def tokens(code):
    return [(t, v) for t, v in KestrelLexer().get_tokens(code) if v.strip()]


def kestrel_sources():
    """Valid Kestrel: the syntax fixtures, examples/*.hf and the huntbooks' code cells."""
    syntax = REPO / "tests" / "syntax"
    files = (sorted((syntax / "valid").glob("*.hf")) + sorted((syntax / "patterns").glob("*.hf"))
             + sorted((REPO / "examples").glob("*.hf")))
    found = [pytest.param(path.read_text(), id=str(path.relative_to(REPO))) for path in files]
    for path in sorted((REPO / "examples" / "huntbooks").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                found.append(pytest.param(cell.source, id=f"{path.name}:{cell.id}"))
    return found


@pytest.mark.parametrize("code", kestrel_sources())
def test_no_error_tokens(code):
    assert [v for t, v in KestrelLexer().get_tokens(code) if t in Error] == []


def grammar_keywords():
    words = {w for t in PARSER.terminals for w in keyword_words(t.name)}
    return sorted(words - {"TRUE", "FALSE", "NULL"})


@pytest.mark.parametrize("word", grammar_keywords())
def test_every_grammar_keyword_is_highlighted(word):
    for form in (word, word.lower()):
        found = [(kind, value) for kind, value in tokens(form) if value.strip()]
        assert [value for _, value in found] == form.split()  # "SORT BY": two keywords
        for kind, value in found:
            assert kind in Keyword or kind in Operator.Word or kind in Name.Builtin, (form, kind)


def test_a_statement():
    code = ("procs = GET process FROM file:///data/b.json "
            "WHERE name = r'C:\\x' AND ipv4-addr:value ISSUBSET '10.0.0.0/8' "
            "START t'2019-11-16T12:00:00Z' STOP 2019-11-16T14:00:00Z  # the window")
    assert tokens(code) == [
        (Name, "procs"), (Operator, "="), (Keyword, "GET"), (Name.Class, "process"),
        (Keyword, "FROM"), (String.Other, "file:///data/b.json"),
        (Keyword, "WHERE"), (Name, "name"), (Operator, "="), (String.Affix, "r"),
        (String.Single, "'C:\\x'"), (Operator.Word, "AND"),
        (Name.Class, "ipv4-addr"), (Punctuation, ":"), (Name.Attribute, "value"),
        (Operator.Word, "ISSUBSET"), (String.Single, "'10.0.0.0/8'"),
        (Keyword, "START"), (Literal.Date, "t'2019-11-16T12:00:00Z'"),
        (Keyword, "STOP"), (Literal.Date, "2019-11-16T14:00:00Z"),
        (Comment.Single, "# the window"),
    ]


def test_relative_paths_and_references():
    assert (String.Other, "../../shared/data/doctored-1k.json") in tokens(
        "x = GET process FROM ../../shared/data/doctored-1k.json")
    assert tokens("pid = procs.pid") == [(Name, "pid"), (Operator, "="), (Name, "procs"),
                                         (Punctuation, "."), (Name, "pid")]


def test_registered_for_pygments():
    """`pygments_lexer: kestrel` in language_info needs the pygments.lexers entry point."""
    from pygments.lexers import get_lexer_by_name

    assert isinstance(get_lexer_by_name("kestrel"), KestrelLexer)
