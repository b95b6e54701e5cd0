"""Syntax fixtures as data: patterns/*.hf -> *.pattern, valid/*.hf round-trip (to the same
AST, and to the same canonical text), errors/*.hf -> *.err."""

from pathlib import Path

import pytest
from stix2patterns.validator import run_validator

from kestrel.errors import KestrelSyntaxError
from kestrel.syntax.ecgp import time_window, to_stix
from kestrel.syntax.parser import parse
from kestrel.syntax.unparse import unparse

HERE = Path(__file__).parent


def cases(folder, suffix=".hf"):
    return sorted((HERE / folder).glob(f"*{suffix}"), key=lambda p: p.name)


@pytest.mark.parametrize("hf", cases("patterns"), ids=lambda p: p.stem)
def test_pattern(hf):
    (stmt,) = parse(hf.read_text())
    pattern = to_stix(stmt.where, stmt.entity_type, time_window(stmt.timerange))
    assert pattern == hf.with_suffix(".pattern").read_text().strip()
    errors = [e for e in run_validator(pattern) if "MD5" not in e]  # validator's hash-format check
    assert errors == []


@pytest.mark.parametrize("hf", cases("valid"), ids=lambda p: p.stem)
def test_round_trip(hf):
    statements = parse(hf.read_text())
    again = parse("\n".join(unparse(s) for s in statements))
    assert again == statements


@pytest.mark.parametrize("hf", cases("valid"), ids=lambda p: p.stem)
def test_canonical_text_is_a_fixed_point(hf):
    """Unparsing the reparsed canonical text gives it back: EXPLAIN, INFO and the store show
    one spelling of a statement, however often it goes round."""
    canonical = [unparse(s) for s in parse(hf.read_text())]
    assert [unparse(s) for s in parse("\n".join(canonical))] == canonical


@pytest.mark.parametrize("hf", cases("errors"), ids=lambda p: p.stem)
def test_error(hf):
    with pytest.raises(KestrelSyntaxError) as caught:
        parse(hf.read_text())
    assert str(caught.value) == hf.with_suffix(".err").read_text().rstrip("\n")
