"""Every huntbook in examples/huntbooks runs headless (nbclient, the real kernel) without
errors, and its tables hold what the bundle says, computed here with plain json."""

import collections
import json
import pathlib
import re
from datetime import datetime, timedelta

import nbformat
import pytest
from nbclient import NotebookClient

BOOKS = pathlib.Path(__file__).resolve().parents[2] / "examples" / "huntbooks"
DATA_IN_BOOKS = "../../../shared/data/"  # how the huntbooks name the shared data folder


# ------------------------------------------------------------ the bundle, read independently


@pytest.fixture(scope="module")
def observations(bundle):
    return [o for o in json.loads(bundle.read_text())["objects"] if o["type"] == "observed-data"]


def processes(observations, where=lambda obs, proc: True):
    return [(o, p) for o in observations for p in o["objects"].values()
            if p["type"] == "process" and where(o, p)]


def when(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def rows_of(pairs):
    """DISP rows of (name, pid): distinct, a missing name shown empty."""
    return {(p.get("name") or "", str(p.get("pid"))) for _, p in pairs}


# ------------------------------------------------------------ running a huntbook


@pytest.fixture(scope="module")
def run_book(kernel_spec, shared_data):
    def run(name):
        nb = nbformat.read(BOOKS / name, as_version=4)
        if (BOOKS / DATA_IN_BOOKS).resolve() != shared_data.resolve():  # KESTREL_SHARED_DATA
            for cell in nb.cells:
                cell.source = cell.source.replace(DATA_IN_BOOKS, f"{shared_data}/")
        NotebookClient(nb, timeout=120, kernel_name="kestrel",
                       resources={"metadata": {"path": str(BOOKS)}}).execute()
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                assert output["output_type"] == "display_data", (cell.id, output)
        return {cell.id: cell.get("outputs", []) for cell in nb.cells}
    return run


def tables(outputs):
    """Rows of the DISP tables in a cell's outputs."""
    return [_rows(o["data"]["text/html"]) for o in outputs
            if "kestrel-table" in o["data"]["text/html"]]


def summary(outputs):
    """{variable: (type, entities, records)} from the cell's summary table (records None
    for GROUP results)."""
    (html,) = [o["data"]["text/html"] for o in outputs
               if "class='kestrel-summary'" in o["data"]["text/html"]]
    return {r[0]: (r[1], int(r[2]), int(r[3]) if r[3] else None) for r in _rows(html)}


def _rows(html):
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [tuple(re.findall(r"<td>(.*?)</td>", row))
            for row in re.findall(r"<tr.*?</tr>", body, re.S)]


def texts(outputs):
    return "\n".join(o["data"]["text/plain"] for o in outputs)


# ------------------------------------------------------------ tests


@pytest.mark.parametrize("path", sorted(BOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "kestrel"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.id
    assert any(DATA_IN_BOOKS in c.source for c in nb.cells if c.cell_type == "code")


def test_quickstart(run_book, observations):
    out = run_book("quickstart.ipynb")
    procs = processes(observations)
    records = len({o["id"] for o, _ in procs})
    assert summary(out["get-procs"]) == {"procs": ("process", len(procs), records)}

    (shown,) = tables(out["disp-procs"])
    by_pid = sorted(rows_of(procs), key=lambda r: int(r[1]) if r[1] != "None" else 1 << 62)
    assert [pid for _, pid in shown] == [pid for _, pid in by_pid[:5]]
    assert set(shown) <= rows_of(procs)

    info = texts(out["info-procs"])
    assert f"entities: {len(procs)}" in info and f"records: {records}" in info

    counts = collections.Counter(p.get("name") for _, p in procs if p.get("pid") is not None)
    (groups,) = tables(out["group-names"])
    assert len(groups) == 10
    assert [(name, int(n)) for name, n in groups] == sorted(
        [(name, counts[name]) for name, _ in groups], key=lambda r: -r[1])
    assert int(groups[0][1]) == max(counts.values())
    groups_in_all = len({p.get("name") for _, p in procs})
    assert summary(out["group-names"])["names"] == ("process (grouped)", groups_in_all, None)


def test_process_tree(run_book, observations):
    out = run_book("process_tree.ipynb")
    shells = processes(observations, lambda o, p: p.get("name") in ("cmd.exe", "powershell.exe"))
    assert set(tables(out["get-shells"])[0]) == rows_of(shells)

    parents = [(o, o["objects"][p["parent_ref"]]) for o, p in shells if "parent_ref" in p]
    assert set(tables(out["find-parents"])[0]) == rows_of(parents)
    assert summary(out["find-parents"])["parents"][1] == len(parents)

    children = [(o, c) for o, parent in parents for c in o["objects"].values()
                if c["type"] == "process"
                and o["objects"].get(c.get("parent_ref", ""), {}) is parent]
    assert set(tables(out["find-children"])[0]) == rows_of(children)

    svchost = processes(observations, lambda o, p: p.get("name") == "svchost.exe")
    traffic = [o["objects"][ref] for o, p in svchost for ref in p.get("opened_connection_refs", [])]
    ports = {(str(t.get("src_port")), str(t.get("dst_port"))) for t in traffic}
    (conns,) = tables(out["find-conns"])
    assert len(conns) == 5 and set(conns) <= ports
    html = out["find-conns"][0]["data"]["text/html"]
    footer = re.search(r"kestrel-footer'>(.*?)<", html).group(1)
    assert footer.startswith(f"showing rows 1-5 of {len(ports)} ")
    assert summary(out["find-conns"])["conns"][0] == "network-traffic"

    owners = {o["objects"][p["creator_user_ref"]]["user_id"]
              for o, p in shells if "creator_user_ref" in p}
    assert {r[0] for r in tables(out["find-users"])[0]} == owners


def test_references_and_time(run_book, observations):
    out = run_book("references_and_time.ipynb")
    start, stop = when("2019-11-16T12:55:00Z"), when("2019-11-16T13:00:00Z")
    procs = processes(observations, lambda o, p: p.get("name") == "svchost.exe"
                      and start <= when(o["first_observed"]) < stop)
    assert set(tables(out["get-window"])[0]) == rows_of(procs)
    assert summary(out["get-window"])["procs"][1] == len(procs)

    pids = {p["pid"] for _, p in procs}
    day = (when("2019-11-16T12:00:00Z"), when("2019-11-16T14:00:00Z"))
    same_pid = processes(observations, lambda o, p: p.get("pid") in pids
                         and day[0] <= when(o["first_observed"]) < day[1])
    assert set(tables(out["ref-window"])[0]) == rows_of(same_pid)
    assert summary(out["ref-window"])["same_pid"][1] == len(same_pid)

    # the inferred window: procs' observations widened by 5 minutes each side (defaults.yaml)
    low = min(when(o["first_observed"]) for o, _ in procs) - timedelta(seconds=300)
    high = max(when(o["last_observed"]) for o, _ in procs) + timedelta(seconds=300)
    nearby = processes(observations, lambda o, p: p.get("pid") in pids
                       and low <= when(o["first_observed"]) < high)
    assert summary(out["ref-inferred"])["nearby"][1] == len(nearby)
    assert f"entities: {len(nearby)}" in texts(out["ref-inferred"])

    assert summary(out["last-minutes"])["recent"][1:] == (0, 0)
    assert "recent is empty" in texts(out["last-minutes"])

    cmd = processes(observations, lambda o, p: p.get("name") == "cmd.exe")
    assert summary(out["last-days"])["shells"][1] == len(cmd)
    assert set(tables(out["last-days"])[0]) == rows_of(cmd)
