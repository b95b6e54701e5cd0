"""Long flat chains work and deep nesting is a clear error (#26): a chain of ORs is what
an IN list or a rule compiles to, so 5,000 of them parse, match a bundle, and run as SQL on
both stores (SQLite refuses expressions deeper than 1,000); nesting past the limit is a
KestrelSyntaxError at its place, never a RecursionError.  Expected sets from plain json."""

import json

import pytest

from kestrel.errors import KestrelSyntaxError
from kestrel.session import Session
from kestrel.syntax.parser import MAX_NESTING, parse


@pytest.fixture(scope="module")
def processes(shared_data):
    bundle = json.loads((shared_data / "doctored-1k.json").read_text())
    return [o for r in bundle["objects"] if r["type"] == "observed-data"
            for o in r["objects"].values() if o["type"] == "process"]


def test_long_chains_run_on_both_stores(shared_data, store_url, processes):
    wanted = set(range(0, 5000, 4))  # 1,250 pids, some of them in the data
    ors = " OR ".join(f"pid = {pid}" for pid in sorted(wanted))
    ands = " AND ".join(f"pid != {pid}" for pid in range(-5000, 0))  # always true
    with Session(store_path=store_url) as session:
        session.execute(f"p = GET process FROM '{shared_data}/doctored-1k.json' WHERE {ors}")
        session.execute(f"q = p WHERE ({ors}) AND {ands}")
        expected = sorted(p["pid"] for p in processes if p.get("pid") in wanted)
        assert expected
        for name in ("p", "q"):
            assert sorted(r["pid"] for r in session.get_variable(name)) == expected


@pytest.mark.parametrize("nested", [
    "pid IN " + "(" * 2000 + "1" + ")" * 2000,
    "(pid = 1 AND " * 2000 + "pid = 2" + ")" * 2000,
])
def test_deep_nesting_is_a_syntax_error(nested):
    text = f"x = GET process FROM a.json WHERE {nested}"
    with pytest.raises(KestrelSyntaxError) as caught:
        parse(text)
    assert caught.value.message == (f"nested too deeply: more than {MAX_NESTING} levels of "
                                    "parentheses or lists")
    assert caught.value.line == 1 and 35 < caught.value.column < len(text)


def test_nesting_within_the_limit_parses():
    nested = "".join(f"(pid = {i} {'AND' if i % 2 else 'OR'} " for i in range(20))
    (stmt,) = parse(f"x = GET process FROM a.json WHERE {nested}pid = 20" + ")" * 20)
    depth, node = 0, stmt.where
    while hasattr(node, "operands"):
        depth, node = depth + 1, node.operands[-1]
    assert depth == 20
