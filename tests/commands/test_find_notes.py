"""What FIND's EXPLAIN lines tell a hunter about its prefetch from a bundle: the store
holds it whole (read again only when it changed), or the configuration turned prefetch
off.  (What FIND asks a stix-shifter source: tests/stixshifter.)  Facts in the notes and
counts come from the raw JSON."""

import json
import uuid

import pytest

from kestrel.session import Session

STORED = "FIND used the records already stored"


def records(path):
    return [o for o in json.loads(path.read_text())["objects"] if o["type"] == "observed-data"]


def holding(recs, test):
    """The records holding an object for which `test` is true."""
    return [r for r in recs if any(test(o) for o in r["objects"].values())]


def explained(session, name):
    (result,) = session.execute(f"EXPLAIN {name}")
    return result.lines


@pytest.fixture
def hunt(store_url):
    with Session(session_id=f"fn_{uuid.uuid4().hex[:12]}", store_path=store_url) as session:
        yield session


@pytest.fixture(scope="module")
def doctored(shared_data):
    return shared_data / "doctored-1k.json"


def cmd(o):
    return o["type"] == "process" and o.get("name") == "cmd.exe"


def test_a_bundle_is_not_read_again(hunt, doctored):
    """The GET kept the whole bundle in the store: FIND says so and reads nothing."""
    hunt.execute(f"procs = GET process FROM '{doctored}' WHERE name = 'cmd.exe'\n"
                 "kids = FIND process CREATED BY procs")
    found = [line for line in explained(hunt, "kids") if "prefetch" in line]
    assert len(found) == 1 and found[0].startswith(
        f"    {doctored}: prefetch: {doctored} unchanged: answered from the store's copy of "
        f"its {len(records(doctored))} observations (read ")


def test_found_accounts_come_with_all_their_records(hunt, doctored):
    """The accounts FIND found are the same entity in every record: with the whole bundle
    stored, their records are every record of the bundle holding them."""
    recs = records(doctored)
    mine = holding(recs, cmd)
    users = {r["objects"][o["creator_user_ref"]]["user_id"] for r in mine
             for o in r["objects"].values() if cmd(o) and "creator_user_ref" in o}
    theirs = holding(recs, lambda o: o["type"] == "user-account" and o.get("user_id") in users)
    assert users and len(theirs) > len(mine)
    hunt.execute(f"procs = GET process FROM '{doctored}' WHERE name = 'cmd.exe'\n"
                 "users = FIND user-account OWNED procs")
    summary = hunt.variable_summary("users")
    assert (summary.entities, summary.records) == (len(users), len(theirs))


def test_a_changed_bundle_is_read_again_by_find(hunt, doctored, tmp_path):
    """A record added to the bundle after the GET is seen by the next FIND."""
    copy = tmp_path / "doctored.json"
    bundle = json.loads(doctored.read_text())
    copy.write_text(json.dumps(bundle))
    hunt.execute(f"procs = GET process FROM '{copy}' WHERE name = 'cmd.exe'")
    users = {r["objects"][o["creator_user_ref"]]["user_id"] for r in holding(records(copy), cmd)
             for o in r["objects"].values() if cmd(o) and "creator_user_ref" in o}
    before = len(holding(records(copy), lambda o: o.get("user_id") in users))
    later = dict(records(copy)[0], id=f"observed-data--{uuid.uuid4()}",
                 objects={"0": {"type": "user-account", "user_id": sorted(users)[0]}})
    bundle["objects"].append(later)
    copy.write_text(json.dumps(bundle))
    hunt.execute("users = FIND user-account OWNED procs")
    assert hunt.variable_summary("users").records == before + 1
    found = [line for line in explained(hunt, "users") if "prefetch" in line]
    assert found == [f"    {copy}: prefetch: read {copy}: {len(bundle['objects']) - 1} "
                     "observations, kept in the store"]


def test_prefetch_turned_off(store_url, doctored, tmp_path, monkeypatch):
    """The configuration, not the data, kept FIND from asking: the note says which."""
    (tmp_path / "kestrel.yaml").write_text("prefetch_find: false\n")
    monkeypatch.setenv("KESTREL_CONFIG", str(tmp_path / "kestrel.yaml"))
    with Session(session_id=f"fn_{uuid.uuid4().hex[:12]}", store_path=store_url) as session:
        session.execute(f"procs = GET process FROM '{doctored}' WHERE name = 'cmd.exe'\n"
                        "parents = FIND process CREATED procs")
        assert explained(session, "parents")[-1] == (
            f"    {doctored}: {STORED}: prefetch_find is off in the configuration")
