"""Property-based fuzzing of the parser (issue 9).

(a) Random text: the only failure allowed is a KestrelSyntaxError with a
    position and a message in the hunter's words.
(b) Huntflows generated from the grammar parse, to the AST the language's rules
    give (ECGPs and literals), and survive unparse -> parse unchanged; their ECGPs
    give STIX patterns the stix2-patterns validator accepts.

Examples per property: kestrel_strategies.budget() (HYPOTHESIS_PROFILE=ci: 200,
long: 20,000).
"""

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from stix2patterns.validator import run_validator

from kestrel.errors import KestrelError, KestrelSyntaxError
from kestrel.syntax import ast
from kestrel.syntax.ecgp import substitute, time_window, to_stix
from kestrel.syntax.parser import parse
from kestrel.syntax.unparse import unparse, value_text

import kestrel_strategies as ks

# What must never reach a hunter: Python and lark internals.
INTERNALS = re.compile(r"Traceback|__ANON|Token\(|Tree\(|lark\.|UnexpectedToken|"
                       r"UnexpectedCharacters|unicodeescape|literal_eval|<module>")


def check_syntax_error(err: KestrelSyntaxError, text: str):
    assert err.line is not None and err.line >= 1, f"no line: {err!r}"
    assert err.column is not None and err.column >= 1, f"no column: {err!r}"
    assert err.line <= text.count("\n") + 1, "line beyond the text"
    shown = str(err)
    assert shown.startswith(f"KestrelSyntaxError: line {err.line}, column {err.column}: ")
    assert not INTERNALS.search(shown), shown
    assert err.to_dict()["line"] == err.line


# ------------------------------------------------------------------ (a) random text


@settings(max_examples=ks.budget())
@given(ks.random_texts)
@example("x = GET process WHERE name = '\x00'")
@example("x = GET process WHERE name = '\\x1' OR")
@example("x = NEW [\"\\ud800\"]")
@example("x = GET process WHERE pid = 1e999")
@example("DISP x LIMIT 99999999999999999999999")
@example("x = GET process LAST 99999999999999999999 DAYS")
@example("x = GROUP y BY BIN(a, 0)")
@example("DISP procs ATTR x_refs.'\"; DROP TABLE process; --'")
@example("\x00\u2028\x85")
def test_random_text_parses_or_fails_with_a_position(text):
    try:
        parse(text)
    except KestrelSyntaxError as err:
        check_syntax_error(err, text)


@settings(max_examples=ks.budget())
@given(ks.huntflows(), st.data())
def test_mutated_huntflow_parses_or_fails_with_a_position(flow, data):
    """Valid text with a cut, a deletion or an insertion: errors point into the text."""
    cut = data.draw(st.integers(0, len(flow)))
    how = data.draw(st.sampled_from(["truncate", "delete", "insert"]))
    if how == "truncate":
        text = flow[:cut]
    elif how == "delete":
        text = flow[:cut] + flow[cut + data.draw(st.integers(1, 5)):]
    else:
        text = flow[:cut] + data.draw(st.sampled_from(ks.FRAGMENTS)) + flow[cut:]
    try:
        parse(text)
    except KestrelSyntaxError as err:
        check_syntax_error(err, text)


# ------------------------------------------------------------------ (b) generated huntflows


@settings(max_examples=ks.budget())
@given(ks.huntflows())
def test_generated_huntflow_round_trips(flow):
    try:
        statements = parse(flow)
    except KestrelSyntaxError as err:
        pytest.fail(f"generated Kestrel does not parse:\n{flow!r}\n{err}")
    canonical = "\n".join(unparse(s) for s in statements)
    again = parse(canonical)
    assert again == statements, canonical
    # canonical text is a fixed point
    assert "\n".join(unparse(s) for s in again) == canonical


@settings(max_examples=ks.budget())
@given(ks.where_ecgps(), ks.entity_types)
def test_generated_ecgp_parses_to_the_expected_ast(ecgp, entity_type):
    text, expected = ecgp
    source = f"x = GET {entity_type} FROM 'data.json' WHERE {text}"
    (stmt,) = parse(source)
    assert stmt.where == expected, source


@settings(max_examples=ks.budget())
@given(ks.string_literals())
def test_string_literal_reads_back_its_value(literal):
    text, value = literal
    (stmt,) = parse(f"x = GET process WHERE name = {text}")
    assert stmt.where.value == value
    if text[0] not in "rR":  # NEW's JSON has no raw strings
        (new,) = parse(f"x = NEW process [{text}]")
        assert new.data == (value,)
    # and the unparser writes a literal that reads back the same, on one line
    written = value_text(value)
    assert "\n" not in written
    (again,) = parse(f"x = GET process WHERE name = {written}")
    assert again.where.value == value


@settings(max_examples=ks.budget())
@given(ks.time_ranges())
def test_generated_time_range_parses(timerange):
    text, expected = timerange
    (stmt,) = parse(f"x = GET process FROM a.json {text}")
    assert stmt.timerange == expected


def resolved(node, values):
    """The ECGP with every `var.attr` replaced by the drawn values."""
    return substitute(node, lambda ref: values)


# The validator also checks that hash values look like hashes: not what is tested here.
HASH_FORMAT = re.compile(r"is not a valid [A-Z0-9\-]+ hash")


@settings(max_examples=ks.budget())
@given(ks.where_ecgps(), ks.entity_types, st.lists(ks.scalar_literals(), min_size=1, max_size=3),
       st.one_of(st.none(), ks.time_ranges()))
def test_generated_ecgp_gives_a_valid_stix_pattern(ecgp, entity_type, refs, timerange):
    _, node = ecgp
    node = resolved(node, tuple(v for _, v in refs))
    window = time_window(timerange[1]) if timerange else None
    try:
        pattern = to_stix(node, entity_type, window)
    except KestrelError as err:
        # null has no STIX form: the one value refused, with a message (and position)
        assert "null" in err.message, err
        assert _has_null(node)
        return
    assert not _has_null(node), pattern
    errors = [e for e in run_validator(pattern) if not HASH_FORMAT.search(e)]
    assert errors == [], pattern


def _has_null(node) -> bool:
    """A null compared as a value (IS [NOT] NULL is a test of its own: EXISTS)."""
    if isinstance(node, ast.BoolExpr):
        return any(_has_null(o) for o in node.operands)
    if node.op == "IS":
        return False
    value = node.value
    return value is None or (isinstance(value, tuple) and None in value)


def test_null_in_a_pattern_is_refused_with_a_position():
    (stmt,) = parse("x = GET process FROM a.json WHERE name = 'a' OR pid = null")
    with pytest.raises(KestrelError) as caught:
        to_stix(stmt.where, "process")
    assert caught.value.line == 1 and caught.value.column == 49


# ------------------------------------------------------------------ regressions found by fuzzing
# Each was found by the properties above; fixed in kestrel/syntax (see the report in issue 9).

FIXED = [
    # raw NUL inside quotes: was "source code string cannot contain null bytes"
    ("x = GET process WHERE name = 'a\x00b'", "a\x00b"),
    # surrogate pair escapes are joined as in JSON
    ('x = GET process WHERE name = "\\ud83d\\ude00"', "\U0001F600"),
    # JSON's \/ in NEW
    ('x = NEW process ["a\\/b"]', "a/b"),
]


@pytest.mark.parametrize("text, value", FIXED, ids=["nul", "surrogate_pair", "json_slash"])
def test_fixed_string_decoding(text, value):
    (stmt,) = parse(text)
    got = stmt.data[0] if isinstance(stmt, ast.New) else stmt.where.value
    assert got == value


ERRORS = [
    # (text, line, column, message fragment)
    ("x = GET process WHERE name = '\\x1'", 1, 31, "\\x needs 2 hexadecimal digits"),
    ("x = GET process WHERE name = 'ab\\N{nope}'", 1, 33, "\\N needs a Unicode character name"),
    ('x = NEW ["\\ud800"]', 1, 10, "half of a surrogate pair"),
    ("x = GET process WHERE pid = 1e999", 1, 29, "number out of range"),
    ("x = NEW [1e999]", 1, 10, "number out of range"),
    ("DISP x LIMIT 99999999999999999999", 1, 14, "LIMIT must be at most"),
    ("DISP x OFFSET 99999999999999999999", 1, 15, "OFFSET must be at most"),
    ("x = GET process LAST 99999999999 DAYS", 1, 17, "at most 1000 years"),
    ("x = GROUP y BY BIN(a, 0)", 1, 23, "BIN size must be at least 1"),
    # Python refuses int() of more than 4300 digits: was an uncaught lark VisitError
    ("x = GET process WHERE pid = " + "1" * 5000, 1, 29, "more than 100 digits"),
    ("x = NEW [" + "1" * 5000 + "]", 1, 10, "more than 100 digits"),
    ("DISP x LIMIT " + "9" * 5000, 1, 14, "LIMIT must be at most"),
    ("x = GET process LAST " + "9" * 5000 + " DAYS", 1, 22, "LAST must be at most"),
    ("x = GET process WHERE pid > true", 1, 23, "> needs a number or a string, not true"),
    ("x = GET process WHERE pid <= NULL", 1, 23, "<= needs a number or a string, not null"),
    ("\x00", 1, 1, 'unexpected character "\\x00"'),
    ("x\u2028= y", 1, 2, 'unexpected character "\\u2028"'),
    # a quoted attribute step holds letters, digits, _ and - only (it reaches SQL)
    ("DISP p ATTR hashes.'\"; DROP TABLE process; --'", 1, 19, 'unexpected "."'),
]


@pytest.mark.parametrize("text, line, column, fragment", ERRORS,
                         ids=[f"error{i}" for i in range(len(ERRORS))])
def test_fixed_errors_have_positions(text, line, column, fragment):
    with pytest.raises(KestrelSyntaxError) as caught:
        parse(text)
    check_syntax_error(caught.value, text)
    assert (caught.value.line, caught.value.column) == (line, column), str(caught.value)
    assert fragment in caught.value.message


def test_in_with_one_value_needs_a_list():
    """As in Kestrel v1, IN with a single literal is an error; a list of one is fine."""
    with pytest.raises(KestrelSyntaxError) as caught:
        parse("x = GET process FROM a.json WHERE name IN 'cmd.exe'")
    assert caught.value.message == ('the operator "IN" should be paired with a list, not a '
                                    "single literal")
    (stmt,) = parse("x = GET process FROM a.json WHERE name IN ('cmd.exe')")
    assert to_stix(stmt.where, "process") == "[process:name IN ('cmd.exe')]"


def test_attribute_paths_are_canonical():
    (stmt,) = parse("x = GET file FROM a.json WHERE hashes.SHA-256 = 'a' AND hashes.'MD5' = 'b'"
                    " AND x.'a_b'[*].c = 1")
    paths = [c.path.attribute for c in stmt.where.operands]
    assert paths == ["hashes.'SHA-256'", "hashes.MD5", "x.a_b[*].c"]


def test_floats_in_stix_have_no_exponent():
    (stmt,) = parse("x = GET process FROM a.json WHERE x > 1e16 AND y < -1.5e-5")
    assert to_stix(stmt.where, "process") == \
        "[process:x > 10000000000000000.0 AND process:y < -0.000015]"


@pytest.mark.parametrize("name", ["asc", "desc", "DESC"])
def test_order_words_as_variable_names_after_sort(name):
    statements = parse(f"DISP x SORT BY pid\n{name} = GET process FROM a.json\n"
                       f"SORT x BY pid ASC {name} = x")
    assert [s.output for s in statements] == [None, name, "_", name]
    assert statements[0].expression.sort_by == "pid"


@pytest.mark.parametrize("word", ["null-x", "true.y", "FALSE-1"])
def test_bare_words_starting_like_literals(word):
    (stmt,) = parse(f"APPLY python://a ON x WITH k={word}")
    assert stmt.arguments == (("k", word),)


@pytest.mark.parametrize("sep", ["\x0c", "\r", "\u2028", "\x85"], ids=["ff", "cr", "ls", "nel"])
def test_snippet_shows_the_line_lark_counts(sep):
    text = f"x = GET process{sep}WHERE name = 'a' OR"
    with pytest.raises(KestrelSyntaxError) as caught:
        parse(text)
    err = caught.value
    shown = str(err).split("\n")[1]
    assert shown == f"  {err.line} | " + text.split("\n")[err.line - 1]
