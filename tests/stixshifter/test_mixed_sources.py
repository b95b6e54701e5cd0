"""One FROM naming a bundle file and a stix-shifter profile (the real `stix_bundle`
connector reading another bundle over HTTP on 127.0.0.1): each part asks its own source,
the records are stored together, EXPLAIN and errors name the part.  Expected values come
from the bundle JSON with plain Python."""

import json

import pytest
from sstools import bundle_profile

from kestrel.errors import DataSourceError

SPAN = "START 2021-02-01T00:00:00Z STOP 2021-04-01T00:00:00Z"


def _powershell(path):
    """(record id, process, its parent) of every powershell.exe in the bundle."""
    with open(path) as f:
        records = [o for o in json.load(f)["objects"] if o["type"] == "observed-data"]
    return [(r["id"], p, r["objects"][p["parent_ref"]]) for r in records
            for p in r["objects"].values()
            if p["type"] == "process" and p.get("name") == "powershell.exe"]


def test_a_file_and_a_profile_in_one_get(hunt, bundle_http, shared_data):
    hunt.env("web", *bundle_profile(bundle_http, "test_bundle_5.json"))
    session = hunt.session()
    local = shared_data / "test_bundle_4.json"
    uri = f"file://{local},stixshifter://web"
    session.execute(f"ps = GET process FROM {uri} WHERE name = 'powershell.exe' {SPAN}\n"
                    "parents = FIND process CREATED ps")
    found = _powershell(local) + _powershell(shared_data / "test_bundle_5.json")
    summary = session.variable_summary("ps")
    assert (summary.entities, summary.records) == (len(found), len({r for r, _, _ in found}))
    assert sorted(p["pid"] for p in session.get_variable("ps")) == sorted(
        p["pid"] for _, p, _ in found)
    explain = session.execute("EXPLAIN ps")[0].to_text()
    assert f"    {uri}: read {local}: " in explain
    assert (f"    {uri}: stixshifter://web: [process:name = 'powershell.exe'] "
            "START t'2021-02-01T00:00:00.000Z' STOP t'2021-04-01T00:00:00.000Z'") in explain
    # FIND prefetches from the profile, by the identity its processes have; the bundle is
    # in the store whole
    explain = session.execute("EXPLAIN parents")[0].to_text()
    assert f"prefetch: {local} unchanged: answered from the store's copy" in explain
    assert "prefetch: stixshifter://web: [(process:x_unique_id = '" in explain
    assert sorted(p["pid"] for p in session.get_variable("parents")) == sorted(
        parent["pid"] for _, _, parent in found)
    assert session.data_source_uris() == [f"file://{local}", "stixshifter://web"]


def test_an_unknown_profile_is_named_before_any_query(hunt, bundle_http, shared_data):
    hunt.env("web", *bundle_profile(bundle_http, "test_bundle_5.json"))
    session = hunt.session()
    with pytest.raises(DataSourceError) as caught:
        session.execute(f"ps = GET process FROM file://{shared_data}/test_bundle_4.json,"
                        f"stixshifter://nope WHERE name = 'powershell.exe' {SPAN}")
    assert caught.value.message.startswith('no stix-shifter profile "nope" (defined: web); ')
    assert session.get_variable_names() == []
