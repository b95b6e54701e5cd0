"""Start-up stays light: a session that only gets, finds and groups never imports the
libraries DISP, APPLY, SAVE and stix-shifter sources need (pandas alone took half a
second of every start).  Each check runs in a fresh interpreter, since this one has
imported everything already.  Timings are in benchmarks/startup.py, not here."""

import json
import subprocess
import sys

# requests is not here: firepit imports it when the store opens (firepit/raft.py)
HEAVY = ("pandas", "numpy", "pyarrow", "plotly", "stix_shifter", "stix_shifter_modules",
         "stix_shifter_utils", "asyncio")

HUNT = """
import json, sys
from kestrel.session import Session

with Session(runtime_dir=sys.argv[1]) as session:
    for statement in json.loads(sys.argv[2]):
        session.execute(statement)
    session.complete("DISP p")
    session.is_complete("x = GET process")
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def loaded_after(tmp_path, *statements) -> set:
    """Top-level modules a fresh interpreter holds after a session ran `statements`."""
    out = subprocess.run([sys.executable, "-c", HUNT, str(tmp_path / "rt"),
                          json.dumps(statements)],
                         capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(out.stdout))


def test_a_hunt_without_displays_imports_nothing_heavy(tmp_path, shared_data):
    loaded = loaded_after(
        tmp_path,
        'x = NEW process [{"name": "a", "pid": 1}]',
        f"procs = GET process FROM '{shared_data}/test_bundle_3.json' WHERE pid > 0",
        "parents = FIND process CREATED procs",
        "g = GROUP procs BY name",
        "s = SORT procs BY pid",
        "INFO procs",
        "EXPLAIN procs",
    )
    assert "kestrel" in loaded and "firepit" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_disp_imports_pandas_when_it_runs(tmp_path):
    loaded = loaded_after(tmp_path, 'x = NEW process [{"name": "a"}]', "DISP x")
    assert "pandas" in loaded
