"""APPLY as a command: the analytics named, its variables and what it writes back.
The analytics themselves are tested in tests/analytics."""

import pytest

from kestrel.errors import AnalyticsError, VariableNotFound


def test_apply_unknown_analytics_changes_nothing(session):
    before = session.get_variable("procs")
    with pytest.raises(AnalyticsError, match='no analytics "nosuch" is registered'):
        session.execute("APPLY python://nosuch ON procs WITH x=1")
    with pytest.raises(AnalyticsError, match="unknown analytics scheme"):
        session.execute("APPLY docker://x ON procs")
    assert session.get_variable("procs") == before


def test_written_attributes_are_seen_by_later_statements(session, cmd):
    """suspicious_cmdline scores the command lines matching the patterns given; a GET from
    the variable then filters on the score."""
    session.execute("APPLY python://suspicious_cmdline ON procs WITH patterns=['logicaldisk']\n"
                    "flagged = GET process FROM procs WHERE x_suspicious_score > 0")
    scores = sorted((r["pid"], r["x_suspicious_score"]) for r in session.get_variable("procs"))
    assert scores == sorted((p["pid"], int("logicaldisk" in p.get("command_line", "").lower()))
                            for _, _, p in cmd)
    assert sorted(r["pid"] for r in session.get_variable("flagged")) == sorted(
        p["pid"] for _, _, p in cmd if "logicaldisk" in p.get("command_line", "").lower())


def test_apply_on_an_unknown_variable(session):
    with pytest.raises(VariableNotFound) as caught:
        session.execute("APPLY python://ip_class ON procs, nosuch")
    assert caught.value.message == 'variable "nosuch" is not defined (defined: procs)'
