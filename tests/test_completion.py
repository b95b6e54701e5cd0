"""kestrel.completion against the cases in tests/kernel/complete.toml, with a fixed symbol table.

The same cases (those marked kernel = true) run through a real kernel in
tests/kernel/test_kernel_complete.py.
"""

import pathlib
import re
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import pytest

from kestrel.completion import KEYWORD_SYNTAX, complete, is_complete, keyword_words, word_at
from kestrel.session import Session
from kestrel.syntax.parser import PARSER

CASES = tomllib.loads((pathlib.Path(__file__).parent / "kernel" / "complete.toml").read_text())


class FixedSymbols:
    """A test double for the Session's symbol table: fixed answers from [context],
    plus a case's own `variables`."""

    def __init__(self, context, variables=None):
        self.context = dict(context, variables={**context["variables"], **(variables or {})})

    def variable_names(self):
        return sorted(self.context["variables"])

    def variable_type(self, name):
        return self.context["variables"].get(name)

    def entity_types(self):
        return list(self.context["entity_types"])

    def attributes_of(self, entity_type):
        return list(self.context["attributes"].get(entity_type, []))

    def data_source_uris(self):
        return list(self.context["data_sources"])

    def analytics_names(self):
        return list(self.context["analytics"])


@pytest.fixture(scope="module")
def path_dir(tmp_path_factory):
    """{dir} of the path cases: a.json, b.json, sub/, .hidden."""
    root = tmp_path_factory.mktemp("paths")
    for name in ("a.json", "b.json", ".hidden"):
        (root / name).write_text("{}")
    (root / "sub").mkdir()
    return str(root)


def split_cursor(text):
    assert text.count("|") == 1, f"one | marks the cursor: {text!r}"
    return text.replace("|", ""), text.index("|")


def check_completion(case, found, fill=lambda s: s):
    assert found.cursor_start == case["cursor_start"], "cursor_start"
    if "matches" in case:
        assert found.matches == [fill(m) for m in case["matches"]]
        if "types" in case:
            assert found.types == case["types"]
    else:
        missing = {fill(m) for m in case["includes"]} - set(found.matches)
        assert not missing, f"missing {sorted(missing)} in {found.matches}"
        unwanted = {fill(m) for m in case.get("excludes", [])} & set(found.matches)
        assert not unwanted, f"unexpected {sorted(unwanted)}"


@pytest.mark.parametrize("case", CASES["complete"], ids=lambda c: c["text"])
def test_complete(case, path_dir):
    def fill(s):
        return s.replace("{dir}", path_dir)

    code, cursor = split_cursor(fill(case["text"]))
    found = complete(code, cursor, FixedSymbols(CASES["context"], case.get("variables")))
    assert found.cursor_end == cursor
    assert len(found.types) == len(found.matches)
    check_completion(case, found, fill)


@pytest.mark.parametrize("case", CASES["is_complete"], ids=lambda c: c["text"] or "(empty)")
def test_is_complete(case):
    assert is_complete(case["text"]) == case["status"]


def test_cursor_none_means_end():
    found = complete("GET process W", None, FixedSymbols(CASES["context"]))
    assert (found.matches, found.cursor_start, found.cursor_end) == (["WHERE"], 12, 13)


def test_no_terminal_names_ever():
    """Across every prefix of every case, no match looks like a grammar terminal name."""
    symbols = FixedSymbols(CASES["context"])
    terminals = {t.name for t in PARSER.terminals}
    for case in CASES["complete"]:
        code = case["text"].replace("|", "")
        for cursor in range(len(code) + 1):
            for match in complete(code, cursor, symbols).matches:
                assert match not in terminals - {"NOT", "IN", "LIKE", "MATCHES", "ISSUBSET",
                                                  "ISSUPERSET"}, (code[:cursor], match)
                assert not match.startswith("_") and "ANON" not in match, (code[:cursor], match)


def test_anonymous_result_is_the_variable_underscore(shared_data):
    """A statement without `name =` leaves its result in `_`, which completes as a variable."""
    bundle = shared_data / "doctored-1k.json"
    with Session() as session:
        session.execute(f"GET process FROM file://{bundle} WHERE name = 'svchost.exe'")
        assert "_" in session.complete("DISP ").matches
        assert "_.pid" in session.complete("x = GET process WHERE pid = _.").matches


def keyword_terminals():
    return [t.name for t in PARSER.terminals if keyword_words(t.name)]


def test_keywords_come_from_the_grammar():
    words = {w for name in keyword_terminals() for w in keyword_words(name)}
    assert {"GET", "WHERE", "ISSUBSET", "CREATED", "NUNIQUE", "TIMESTAMPED", "DAYS"} <= words
    assert keyword_words("TIME_UNIT") == ("DAY", "DAYS", "HOUR", "HOURS", "MINUTE", "MINUTES",
                                          "SECOND", "SECONDS")
    assert keyword_words("VARIABLE") == () and keyword_words("URI") == ()


def test_every_keyword_has_a_syntax_line():
    words = {w for name in keyword_terminals() for w in keyword_words(name)}
    words -= {"TRUE", "FALSE", "NULL"}
    words -= {w for w in words if re.fullmatch(r"(DAY|HOUR|MINUTE|SECOND)S?", w)}
    assert sorted(words - set(KEYWORD_SYNTAX)) == []


@pytest.mark.parametrize("code, cursor, word", [
    ("DISP procs ATTR name", 8, "procs"),
    ("DISP procs ATTR name", 10, "procs"),
    ("DISP procs ATTR name", 0, "DISP"),
    ("DISP procs.pid", 7, "procs"),
    ("DISP procs ", 11, ""),
])
def test_word_at(code, cursor, word):
    assert word_at(code, cursor)[0] == word
