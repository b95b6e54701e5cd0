"""Fixtures for real-kernel tests: the kernelspec in a temp prefix; the demo bundle and
what it says about svchost.exe processes, computed with plain json."""

import json

import pytest
from identities import entities


@pytest.fixture(scope="session")
def bundle(shared_data):
    return shared_data / "doctored-1k.json"


@pytest.fixture(scope="session")
def svchost(bundle):
    """What the bundle says about svchost.exe processes."""
    objects = json.loads(bundle.read_text())["objects"]
    observed = [o for o in objects if o["type"] == "observed-data"]
    procs = [(o, s) for o in observed for s in o["objects"].values()
             if s["type"] == "process" and s.get("name") == "svchost.exe"]
    return {"records": len({o["id"] for o, _ in procs}), "entities": len(entities(procs)),
            "occurrences": len(procs), "pids": sorted({s["pid"] for _, s in procs})}
