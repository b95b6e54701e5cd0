"""WHERE SIGMA on a stix-shifter source: the rules go to the connector in the STIX
pattern (the real stix_bundle connector, reading doctored-1k.json from 127.0.0.1), and
the result is the one the same rules give on the bundle read by Kestrel itself."""

import pytest
from sstools import bundle_profile

DAY = "START 2019-11-16T00:00:00Z STOP 2019-11-17T00:00:00Z"
RULES = "sigma/rules/windows/process_creation"


def _entities(session, name) -> set:
    return {(row.get("pid"), row.get("name"), row.get("command_line"))
            for row in session.get_variable(name)}


@pytest.mark.parametrize("rule", [
    "proc_creation_win_office_outlook_susp_child_processes.yml",
    "proc_creation_win_wmic_recon_volume.yml",
])
def test_a_rule_runs_in_the_connector(hunt, bundle_http, shared_data, rule):
    hunt.env("web", *bundle_profile(bundle_http, "doctored-1k.json"))
    session = hunt.session()
    path = shared_data / RULES / rule
    session.execute(f"remote = GET process FROM stixshifter://web WHERE SIGMA '{path}' {DAY}")
    session.execute(f"local = GET process FROM file://{shared_data / 'doctored-1k.json'} "
                    f"WHERE SIGMA '{path}' {DAY}")
    assert _entities(session, "remote") == _entities(session, "local") != set()
    explained = session.execute("EXPLAIN remote")[0].to_text()
    assert "stixshifter://web: [(process:" in explained and "MATCHES '(?is)" in explained
    labels = {row["x_sigma_level"] for row in session.get_variable("remote")}
    assert labels == {"high" if "outlook" in rule else "medium"}


def test_a_folder_of_rules_runs_in_the_connector(hunt, bundle_http, shared_data):
    hunt.env("web", *bundle_profile(bundle_http, "doctored-1k.json"))
    session = hunt.session()
    folder = shared_data / RULES
    session.execute(f"remote = GET process FROM stixshifter://web WHERE SIGMA '{folder}' {DAY}")
    session.execute(f"local = GET process FROM file://{shared_data / 'doctored-1k.json'} "
                    f"WHERE SIGMA '{folder}' {DAY}")
    assert _entities(session, "remote") == _entities(session, "local") != set()
