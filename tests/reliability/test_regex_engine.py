"""Hardening (#26): catastrophic patterns answer at once wherever Kestrel matches one itself
(the store on SQLite and PostgreSQL, a bundle's records, the record matcher of stix-shifter
results, analytics), since they run on a linear-time engine (kestrel/regex.py); what that
engine cannot run is refused before any source is asked."""

import json
import threading
import uuid

import pytest

from kestrel.errors import KestrelSemanticError
from kestrel.session import Session
from kestrel.sources.match import matches
from kestrel.syntax import ast

HOSTILE = "a" * 30_000 + "b"     # backtracking engines take exponential time on it
NESTED = "^(a+)+$"
MANY_PERCENTS = "%a" * 25 + "%c"  # as a backtracking regular expression: polynomial blow-up


def _bundle(path):
    record = {"type": "observed-data", "id": f"observed-data--{uuid.uuid4()}",
              "created": "2021-01-01T00:00:00.000Z", "modified": "2021-01-01T00:00:00.000Z",
              "first_observed": "2021-01-01T00:00:00.000Z",
              "last_observed": "2021-01-01T00:00:00.000Z", "number_observed": 1,
              "objects": {"0": {"type": "process", "pid": 1, "name": "x.exe",
                                "command_line": HOSTILE},
                          "1": {"type": "process", "pid": 2, "name": "y.exe",
                                "command_line": "aaaa"}}}
    path.write_text(json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                                "spec_version": "2.0", "objects": [record]}))
    return path


def _finishes(action, seconds=120):
    """Runs `action`; a hang (a backtracking engine) fails the test instead of the run."""
    outcome = {}

    def run():
        try:
            outcome["value"] = action()
        except BaseException as err:  # reported below
            outcome["error"] = err

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "the statement did not finish: a pattern backtracked"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def test_catastrophic_patterns_on_a_bundle_and_a_variable(store_url, tmp_path):
    bundle = _bundle(tmp_path / "hostile.json")

    def hunt():  # the session lives in the worker: SQLite connections stay in one thread
        found = []
        with Session(session_id=f"re_{uuid.uuid4().hex[:12]}", store_path=store_url) as s:
            for statement in (
                    f"x = GET process FROM file://{bundle} WHERE command_line MATCHES "
                    f"'{NESTED}'",
                    f"procs = GET process FROM file://{bundle}\n"
                    f"x = procs WHERE command_line MATCHES '{NESTED}'",
                    f"x = procs WHERE command_line LIKE '{MANY_PERCENTS}'"):
                s.execute(statement)
                found.append({row["pid"] for row in s.get_variable("x")})
        return found

    assert _finishes(hunt) == [{2}, {2}, set()]


def test_the_record_matcher_answers_at_once():
    record = {"objects": {"0": {"type": "process", "command_line": HOSTILE}}}
    for op, pattern in (("MATCHES", NESTED), ("LIKE", MANY_PERCENTS)):
        node = ast.Comparison(ast.AttrPath(None, "command_line"), op, pattern)
        assert _finishes(lambda: matches(node, record, "process", {})) is False


def test_analytics_patterns_answer_at_once(tmp_path):
    bundle = _bundle(tmp_path / "hostile.json")

    def hunt():
        with Session(runtime_dir=str(tmp_path / "rt")) as session:
            session.execute(f"procs = GET process FROM file://{bundle}\n"
                            f"APPLY python://suspicious_cmdline ON procs WITH "
                            f"patterns=['{NESTED}']")
            return {row["pid"]: row["x_suspicious_score"]
                    for row in session.get_variable("procs")}

    assert _finishes(hunt) == {1: 0, 2: 1}


@pytest.mark.parametrize("pattern, reason", [
    ("(?=a)b", "invalid perl operator: (?="),
    ("(a)\\\\1", "invalid escape sequence: \\1"),
])
def test_what_only_backtracking_can_run_is_refused(tmp_path, pattern, reason):
    bundle = _bundle(tmp_path / "hostile.json")
    with Session(runtime_dir=str(tmp_path / "rt")) as session:
        statement = f"x = GET process FROM file://{bundle} WHERE command_line MATCHES " \
                    f"'{pattern}'"
        with pytest.raises(KestrelSemanticError) as caught:
            session.execute(statement)
        assert reason in caught.value.message
        assert caught.value.message.startswith("MATCHES needs a regular expression")
        assert caught.value.column == statement.index("command_line") + 1
