"""Concurrency (issue 9): hunts that run at the same time stay apart.

- Sessions in threads of one process, on one PostgreSQL store, each with its own session
  id, run the same huntflow (same variable names) on different data, statement by
  statement in lock step, and each sees only its own rows, then and after reopening.
- Sessions opening a fresh PostgreSQL database at the same moment all succeed.
- `kestrel` processes on one PostgreSQL store, and two kernels, run at the same time and
  get their own, correct results.

Expected values come from the raw JSON (or from how the test bundle was generated).
"""

import collections
import json
import os
import pathlib
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime
from urllib.parse import urlparse, urlunparse

import pytest

from kestrel.session import Session

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "kernel"))
from kerneltools import generate_bundle, start_kernel  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
NAMES = ("cmd.exe", "svchost.exe", "wdsync.exe")
ROUNDS = 3


@pytest.fixture(scope="module")
def doctored(shared_data):
    return shared_data / "doctored-1k.json"


@pytest.fixture(scope="module")
def truth(doctored):
    """name -> sorted distinct pids of the processes of that name, from the raw JSON."""
    found = collections.defaultdict(set)
    for record in json.loads(doctored.read_text())["objects"]:
        if record["type"] == "observed-data":
            for obj in record["objects"].values():
                if obj.get("type") == "process" and obj.get("name") in NAMES:
                    found[obj["name"]].add(obj["pid"])
    assert all(found[n] for n in NAMES)
    return {name: sorted(pids) for name, pids in found.items()}


def _huntflow(doctored, name):
    """One hunt, the same variable names whatever the data; a statement per step."""
    return [
        f"procs = GET process FROM {doctored} WHERE name = '{name}'",
        "kids = FIND process CREATED BY procs",
        "parents = FIND process CREATED procs",
        "again = GET process FROM procs WHERE pid > 0",
        "both = procs + again",
        "names = GROUP both BY name WITH COUNT(pid) AS n",
        "DISP procs ATTR name, pid",
    ]


def _pids(session, name):
    return sorted({r["pid"] for r in session.get_variable(name)})


def _check(session, name, pids):
    assert _pids(session, "procs") == pids
    assert _pids(session, "again") == pids
    assert _pids(session, "both") == pids
    assert {r["name"] for r in session.get_variable("procs")} == {name}
    groups = session.get_variable("names")
    assert [g["name"] for g in groups] == [name]


@pytest.mark.postgres
def test_sessions_on_one_postgres_store_hunt_apart(postgres_url, doctored, truth):
    run = uuid.uuid4().hex[:8]
    ids = {name: f"conc_{run}_{i}" for i, name in enumerate(NAMES)}
    steps = _huntflow(doctored, "{name}")
    barrier = threading.Barrier(len(NAMES))
    failures, spans = [], collections.defaultdict(list)

    def hunt(name):
        try:
            with Session(session_id=ids[name], store_path=postgres_url) as session:
                for _ in range(ROUNDS):
                    for step in steps:
                        barrier.wait(60)  # every session starts each statement together
                        started = time.monotonic()
                        session.execute(step.format(name=name))
                        spans[name].append((started, time.monotonic()))
                    _check(session, name, truth[name])
                assert sorted(session.get_variable_names()) == sorted(
                    ["procs", "kids", "parents", "again", "both", "names"])
        except BaseException as err:  # reported by the main thread
            failures.append((name, err))
            barrier.abort()

    threads = [threading.Thread(target=hunt, args=(name,)) for name in NAMES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not failures, failures
    # statements of different sessions did run at the same time
    first, second = (spans[name] for name in NAMES[:2])
    assert any(a0 < b1 and b0 < a1 for (a0, a1), (b0, b1) in zip(first, second))
    # each store schema has its own variables only, with its own rows
    for name, session_id in ids.items():
        with Session(session_id=session_id, store_path=postgres_url) as session:
            _check(session, name, truth[name])


def _fresh_database(postgres_url):
    """A new, empty database on the test server (firepit's shared schema not yet made)."""
    import psycopg2

    parsed = urlparse(postgres_url)
    name = "fresh_" + uuid.uuid4().hex[:10]
    try:
        conn = psycopg2.connect(postgres_url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
    except psycopg2.Error as err:
        pytest.skip(f"cannot create a database on {parsed.hostname}: {err}")
    return urlunparse(parsed._replace(path=f"/{name}"))


@pytest.mark.postgres
def test_sessions_opening_a_fresh_postgres_database_at_once(postgres_url):
    """firepit creates its shared schema on first use without a lock; sessions that meet
    there used to fail with 'duplicate key value violates unique constraint'."""
    for _ in range(3):
        url = _fresh_database(postgres_url)
        barrier, failures = threading.Barrier(6), []

        def open_and_hunt(i):
            try:
                barrier.wait(30)
                with Session(session_id=f"first_{i}", store_path=url) as session:
                    session.execute(f"ips = NEW ipv4-addr ['10.0.0.{i}']")
                    assert [r["value"] for r in session.get_variable("ips")] == [f"10.0.0.{i}"]
            except BaseException as err:
                failures.append(f"{type(err).__name__}: {err}")

        threads = [threading.Thread(target=open_and_hunt, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert failures == []


def test_a_session_log_holds_only_its_own_statements(tmp_path, doctored):
    with Session(session_id="loga", runtime_dir=str(tmp_path / "a")) as a, \
            Session(session_id="logb", runtime_dir=str(tmp_path / "b")) as b:
        a.execute("ips_of_a = NEW ipv4-addr ['10.1.1.1']")
        b.execute("ips_of_b = NEW ipv4-addr ['10.2.2.2']")
        log_a, log_b = pathlib.Path(a.log_path).read_text(), pathlib.Path(b.log_path).read_text()
    assert "ips_of_a" in log_a and "ips_of_b" in log_b
    assert "ips_of_b" not in log_a and "ips_of_a" not in log_b


@pytest.mark.postgres
def test_cli_runs_on_one_postgres_store_at_once(postgres_url, doctored, truth, tmp_path):
    """`kestrel --store URL --session ID` in parallel processes, same huntflow text."""
    run = uuid.uuid4().hex[:8]
    procs = {}
    for i, name in enumerate(NAMES):
        hunt = tmp_path / f"{i}.hf"
        hunt.write_text("\n".join(_huntflow(doctored, name)) + "\n")
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "kestrel", str(hunt), "--store", postgres_url,
             "--session", f"cli_{run}_{i}"], cwd=REPO, text=True, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=dict(os.environ, TMPDIR=str(tmp_path),
                                             KESTREL_DISP_ROWS="1000"))
    outputs = {name: proc.communicate(timeout=180) for name, proc in procs.items()}
    for i, name in enumerate(NAMES):
        out, err = outputs[name]
        assert procs[name].returncode == 0, err
        table = out.split("\n\n")[-2].splitlines()  # DISP procs, the last output
        assert table[0].split() == ["name", "pid"]
        assert sorted({int(line.split()[-1]) for line in table[1:-1]}) == truth[name]
        assert {line.split()[0] for line in table[1:-1]} == {name}
        with Session(session_id=f"cli_{run}_{i}", store_path=postgres_url) as session:
            _check(session, name, truth[name])


# ------------------------------------------------------------------ two kernels

KERNEL_OBS = 20_000  # generated: process i is named p{i % 97}.exe


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "gen.json"
    generate_bundle(path, KERNEL_OBS)
    return path


def _collect(kc, msg_ids, timeout=120):
    """iopub messages per request until each is idle again."""
    got, idle = collections.defaultdict(list), set()
    deadline = time.monotonic() + timeout
    while idle != set(msg_ids):
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        parent = msg["parent_header"].get("msg_id")
        if parent in msg_ids:
            got[parent].append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                idle.add(parent)
    return got


def _busy_span(messages):
    dates = [m["header"]["date"] for m in messages if m["msg_type"] == "status"]
    stamps = [d if isinstance(d, datetime) else datetime.fromisoformat(d) for d in dates]
    return min(stamps), max(stamps)


def test_two_kernels_hunt_at_once(kernel_spec, generated, tmp_path):
    want = {"a": 3, "b": 5}  # the name each kernel hunts: p3.exe, p5.exe
    kernels = {}
    try:
        for key in want:
            kernels[key] = start_kernel(tmp_path / key, KESTREL_DISP_ROWS="1000")
        cells = {key: [f"procs = GET process FROM {generated} WHERE name = 'p{k}.exe'\n"
                       "same = GET process FROM procs WHERE pid >= 0\n"
                       "DISP same ATTR name, pid SORT BY pid",
                       "DISP procs ATTR name, pid SORT BY pid"]
                 for key, k in want.items()}
        sent = {key: [kernels[key][1].execute(cell) for cell in cells[key]] for key in want}
        got = {key: _collect(kernels[key][1], sent[key]) for key in want}
        for key, k in want.items():
            kc = kernels[key][1]
            pids = [i for i in range(KERNEL_OBS) if i % 97 == k]
            for msg_id in sent[key]:
                reply = kc.get_shell_msg(timeout=60)["content"]
                assert reply["status"] == "ok", reply
                tables = [m["content"]["data"]["text/plain"] for m in got[key][msg_id]
                          if m["msg_type"] == "display_data"
                          and "rows" in m["content"]["data"]["text/plain"].splitlines()[-1]]
                lines = tables[0].splitlines()
                assert [line.split() for line in lines[1:-1]] == [[f"p{k}.exe", str(p)]
                                                                  for p in pids]
        (a_start, a_end), (b_start, b_end) = (_busy_span(got[key][sent[key][0]]) for key in want)
        assert a_start < b_end and b_start < a_end, "the kernels did not run at the same time"
    finally:
        for km, kc in kernels.values():
            kc.stop_channels()
            km.shutdown_kernel(now=True)
