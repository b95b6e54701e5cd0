"""Fixtures of the command tests (a file per command).

The oracle is the demo bundle read with plain json (``records``, ``processes``, ``cmd``):
expected values are computed from it here, never taken from Kestrel.  ``session`` is a
fresh Session per test, for tests that change variables; ``hunt`` is one Session per
module and store, for tests that only read ``allp`` and ``procs`` (they may add variables
of their own, under names no other test uses).
"""

import json
import uuid

import pytest

from kestrel.session import Session


@pytest.fixture(scope="session")
def bundle(shared_data):
    return shared_data / "doctored-1k.json"


@pytest.fixture(scope="session")
def records(bundle):
    """The observed-data records of the bundle."""
    return [o for o in json.loads(bundle.read_text())["objects"] if o["type"] == "observed-data"]


@pytest.fixture(scope="session")
def processes(records):
    """(record, process) for every process object: each is one entity (no unique id)."""
    return [(r, p) for r in records for p in r["objects"].values() if p["type"] == "process"]


@pytest.fixture(scope="session")
def process_attributes(processes):
    """The attributes of stored processes, as errors list them: every property but `type`
    and lists (firepit keeps `_refs` lists in a table of their own)."""
    return sorted({k for _, p in processes for k, v in p.items()
                   if k != "type" and not isinstance(v, list)})


@pytest.fixture(scope="session")
def cmd(processes):
    """(record id, first_observed, process) for every cmd.exe process in the bundle."""
    return [(r["id"], r["first_observed"], p) for r, p in processes if p.get("name") == "cmd.exe"]


@pytest.fixture
def session(bundle):
    with Session() as session:
        session.execute(f"procs = GET process FROM '{bundle}' WHERE name = 'cmd.exe'")
        yield session


@pytest.fixture(scope="module")
def hunt(bundle, module_store_url):
    """Every process (`allp`) and the cmd.exe ones among them (`procs`, the same entities)."""
    with Session(session_id=f"cmd_{uuid.uuid4().hex[:12]}", store_path=module_store_url) as hunt:
        hunt.execute(f"allp = GET process FROM '{bundle}'\n"
                     "procs = GET process FROM allp WHERE name = 'cmd.exe'")
        yield hunt
