"""Merging sorted or sliced variables: firepit joined the view definitions as they were, so
a SORT's ORDER BY fell on the whole union; PostgreSQL refused it and the merge came out
empty without a word.  Expected pids from the bundle read with plain json."""

import uuid

from identities import objects

from kestrel.session import Session


def test_a_sorted_variable_merges(store_url, shared_data):
    bundle = shared_data / "doctored-1k.json"
    pids = {name: sorted(p["pid"] for _, p in objects(bundle, "process") if p["name"] == name)
            for name in ("WMIC.exe", "cmd.exe")}
    with Session(session_id=f"merge_{uuid.uuid4().hex[:12]}", store_path=store_url) as session:
        session.execute(f"wmic = GET process FROM '{bundle}' WHERE name = 'WMIC.exe'\n"
                        f"shells = GET process FROM '{bundle}' WHERE name = 'cmd.exe'\n"
                        "latest = SORT wmic BY pid DESC\n"
                        "both = shells + latest\n"
                        "two = wmic SORT BY pid LIMIT 2\n"
                        "three = two + latest")
        assert sorted(r["pid"] for r in session.get_variable("both", deref=False)) == sorted(
            pids["WMIC.exe"] + pids["cmd.exe"])
        assert sorted(r["pid"] for r in session.get_variable("three", deref=False)) == pids[
            "WMIC.exe"]
