"""stix-shifter profiles (environment and configuration file), their errors, and the pure
helpers: redaction and IN expansion.  No server is needed: every error here is raised
before a connector is asked anything."""

import pytest

from kestrel.errors import DataSourceError
from kestrel.redaction import redact, secrets_of
from kestrel.sources.stixshifter import stix_pattern
from kestrel.syntax.ecgp import time_window
from kestrel.syntax.parser import parse

BUNDLE = ("stix_bundle", {"host": "http://127.0.0.1:9/b.json"},
          {"auth": {"username": None, "password": None}})
FILE_PROFILE = dict(zip(("connector", "connection", "config"), BUNDLE))
GET = ("procs = GET process FROM stixshifter://{} WHERE name = 'cmd.exe' "
       "START 2019-11-16T00:00:00Z STOP 2019-11-17T00:00:00Z")
SECRET = "hunter2-very-secret"


def _error(hunt, name="edr") -> DataSourceError:
    session = hunt.session()
    with pytest.raises(DataSourceError) as caught:
        session.execute(GET.format(name))
    assert "procs" not in session.get_variable_names()  # a failed GET defines nothing
    return caught.value


# ------------------------------------------------------------------ listing


def test_profiles_from_env_and_file_are_listed(hunt):
    hunt.config({"stixshifter": {"profiles": {"siem": FILE_PROFILE}}})
    hunt.env("edr", *BUNDLE)
    hunt.env("my_edr", *BUNDLE)
    session = hunt.session()
    assert session.data_source_uris() == ["stixshifter://edr", "stixshifter://my_edr",
                                          "stixshifter://siem"]
    assert "stixshifter://my_edr" in session.do_complete("x = GET process FROM ", 21)


def test_env_set_after_the_session_started_is_seen(hunt):
    session = hunt.session()
    assert session.data_source_uris() == []
    hunt.env("late", *BUNDLE)
    assert session.data_source_uris() == ["stixshifter://late"]


def test_env_wins_over_the_file_per_part(hunt, bundle_http):
    hunt.config({"stixshifter": {"profiles": {"mixed": {
        "connector": "stix_bundle", "connection": {"host": "http://127.0.0.1:9/nothing.json"},
        "config": {"auth": {}}}}}})
    hunt.env("mixed", None, {"host": f"{bundle_http.base}/test_bundle_3.json"}, None)
    session = hunt.session()
    session.execute("c = GET network-traffic FROM stixshifter://MIXED "
                    "START 2020-06-30T00:00:00Z STOP 2020-07-01T00:00:00Z")
    assert session.variable_summary("c").records == 10


# ------------------------------------------------------------------ errors naming the culprit


def test_unknown_profile(hunt):
    hunt.env("edr", *BUNDLE)
    err = _error(hunt, "nope")
    assert err.message == (
        'no stix-shifter profile "nope" (defined: edr); set STIXSHIFTER_NOPE_CONNECTOR, '
        "STIXSHIFTER_NOPE_CONNECTION and STIXSHIFTER_NOPE_CONFIG, or "
        "stixshifter.profiles.nope in the configuration")
    assert (err.line, err.column) == (1, 1)


@pytest.mark.parametrize("parts, message", [
    ((BUNDLE[0], '{"host": ', BUNDLE[2]),
     "STIXSHIFTER_EDR_CONNECTION is not valid JSON (Expecting value at line 1, column 10)"),
    ((BUNDLE[0], BUNDLE[1], '{"auth": {"password": "' + SECRET + '"'),
     "STIXSHIFTER_EDR_CONFIG is not valid JSON (Expecting ',' delimiter at line 1, column 44)"),
    ((BUNDLE[0], BUNDLE[1], None),
     'stix-shifter profile "edr" has no config: set STIXSHIFTER_EDR_CONFIG or '
     "stixshifter.profiles.edr.config"),
    ((None, BUNDLE[1], BUNDLE[2]),
     'stix-shifter profile "edr" has no connector: set STIXSHIFTER_EDR_CONNECTOR or '
     "stixshifter.profiles.edr.connector"),
    ((BUNDLE[0], BUNDLE[1], "[1, 2]"),
     "STIXSHIFTER_EDR_CONFIG must be a JSON object, not a list"),
    ((BUNDLE[0], {"port": 9200}, BUNDLE[2]),
     'STIXSHIFTER_EDR_CONNECTION lacks "host" (where the data source listens)'),
    ((BUNDLE[0], BUNDLE[1], {"password": SECRET}),
     'STIXSHIFTER_EDR_CONFIG lacks "auth", the credentials object '
     '(e.g. {"auth": {"username": ..., "password": ...}})'),
], ids=["bad-json", "bad-json-secret", "no-config", "no-connector", "not-object", "no-host",
        "no-auth"])
def test_malformed_env_profile(hunt, parts, message):
    hunt.env("edr", *parts)
    err = _error(hunt)
    assert err.message == message
    assert SECRET not in str(err)


def test_connector_not_installed(hunt):
    hunt.env("edr", "no_such_connector", BUNDLE[1], {"auth": {"password": SECRET}})
    err = _error(hunt)
    assert err.message.startswith(
        'stixshifter://edr: connector "no_such_connector" (from STIXSHIFTER_EDR_CONNECTOR) '
        "is not installed (installed: ")
    assert "mysql" in err.message and "stix_bundle" in err.message
    assert err.message.endswith("install it with pip install "
                                "stix-shifter-modules-no_such_connector==8.1.3")


@pytest.mark.parametrize("section, message", [
    ({"profiles": ["edr"]},
     "configuration stixshifter.profiles must be a mapping of profile names to "
     "{connector, connection, config}"),
    ({"profiles": {"edr": "stix_bundle"}},
     "configuration key stixshifter.profiles.edr must be a mapping with connector, "
     "connection and config, not a string"),
    ({"profiles": {"edr": {"connector": "stix_bundle", "connection": "http://x",
                           "config": {"auth": {}}}}},
     "configuration key stixshifter.profiles.edr.connection must be a JSON object, "
     "not a string"),
    ({"profiles": {"edr": {**FILE_PROFILE, "pagesize": 5}}},
     "unknown keys in stixshifter.profiles.edr: pagesize (known: connector, connection, "
     "config, page_size, result_limit, default_lookback, call_timeout, query_timeout, "
     "poll_interval, retries, retry_backoff, retry_on, prefetch_batch)"),
    ({"page_size": "many", "profiles": {"edr": FILE_PROFILE}},
     "configuration stixshifter.page_size must be a number >= 0, not 'many'"),
    ({"retry_on": "all", "profiles": {"edr": FILE_PROFILE}},
     "configuration stixshifter.retry_on must be a list of error codes"),
], ids=["profiles-not-mapping", "profile-not-mapping", "connection-not-mapping",
        "unknown-profile-key", "bad-setting", "bad-retry-on"])
def test_malformed_file_profile(hunt, section, message):
    hunt.config({"stixshifter": section})
    assert _error(hunt).message == message


# ------------------------------------------------------------------ helpers


def test_secrets_of_finds_auth_secret_keys_and_url_passwords():
    connection = {"host": "https://svc:url-pass-1@siem.example", "port": 443,
                  "selfSignedCert": "-----BEGIN CERT-----", "options": {"api_key": "k-123"},
                  "indices": "logs-*"}
    config = {"auth": {"username": "analyst", "password": "p@ss word", "extra": [1234, None]}}
    assert secrets_of(connection) == {"url-pass-1", "-----BEGIN CERT-----", "k-123"}
    assert secrets_of(config) == {"analyst", "p@ss word", "1234"}


def test_redact_replaces_secrets_and_url_passwords_only():
    text = ("login analyst failed at https://svc:url-pass-1@siem.example/x "
            "with p@ss word; key abc in abcde")
    assert redact(text, {"analyst", "p@ss word", "abc"}) == (
        "login *** failed at https://svc:***@siem.example/x with ***; key *** in abcde")


@pytest.mark.parametrize("pattern, expanded", [
    ("[process:pid IN (1, 2)]", "[(process:pid = 1 OR process:pid = 2)]"),
    ("[process:name NOT IN ('a', 'b')]", "[(process:name != 'a' AND process:name != 'b')]"),
    ("[file:name IN ('a,b', 'c)\\'d') AND file:size > 3]",
     "[(file:name = 'a,b' OR file:name = 'c)\\'d') AND file:size > 3]"),
    ("[file:hashes.'SHA-256' IN ('x')]", "[(file:hashes.'SHA-256' = 'x')]"),
    ("[process:opened_connection_refs[*].dst_port IN (80, 443)]",
     "[(process:opened_connection_refs[*].dst_port = 80 OR "
     "process:opened_connection_refs[*].dst_port = 443)]"),
    ("[process:name = 'x IN (1)'] START t'2024-01-01T00:00:00Z' STOP t'2024-01-02T00:00:00Z'",
     "[process:name = 'x IN (1)'] START t'2024-01-01T00:00:00Z' STOP t'2024-01-02T00:00:00Z'"),
])
def test_expand_in(pattern, expanded):
    """The pattern a connector gets spells `IN` as ORs of equalities."""
    entity_type = pattern[1:pattern.index(":")]
    (stmt,) = parse(f"x = GET {entity_type} WHERE {pattern}")
    assert stix_pattern(stmt.where, entity_type, time_window(stmt.timerange)) == expanded
