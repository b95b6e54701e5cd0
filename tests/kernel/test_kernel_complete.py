"""Completion and completeness through a real kernel: the cases of complete.toml marked
kernel = true (exact lists and cursor ranges), and candidates only the Session knows."""

import pathlib
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import pytest
from kerneltools import run_cell, start_kernel

CASES = tomllib.loads((pathlib.Path(__file__).parent / "complete.toml").read_text())


@pytest.fixture(scope="module")
def kernel(kernel_spec, bundle, tmp_path_factory):
    """A kernel holding exactly procs (process), conns (network-traffic), p2 (process)."""
    km, kc = start_kernel(tmp_path_factory.mktemp("kernel"))
    cell = run_cell(kc, f"procs = GET process FROM file://{bundle} WHERE name = 'svchost.exe'\n"
                        "conns = FIND network-traffic CREATED BY procs\n"
                        "p2 = FIND process CREATED BY procs")
    assert cell.status == "ok", cell.reply
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=False)


def kernel_cases(kind):
    cases = [c for c in CASES[kind] if c.get("kernel")]
    assert not [c["text"] for c in cases if "variables" in c], "the kernel holds no case's variables"
    return cases


@pytest.mark.parametrize("case", kernel_cases("complete"), ids=lambda c: c["text"])
def test_complete(kernel, case):
    code, cursor = case["text"].replace("|", ""), case["text"].index("|")
    reply = kernel.complete(code, cursor, reply=True, timeout=10)["content"]
    assert reply["status"] == "ok"
    assert (reply["cursor_start"], reply["cursor_end"]) == (case["cursor_start"], cursor)
    assert reply["matches"] == case["matches"]
    types = reply["metadata"]["_jupyter_types_experimental"]
    assert [t["text"] for t in types] == reply["matches"]
    assert all((t["start"], t["end"]) == (case["cursor_start"], cursor) for t in types)
    if "types" in case:
        assert [t["type"] for t in types] == case["types"]


@pytest.mark.parametrize("code, start, includes", [
    ("DISP procs ATTR ", 16, ["command_line", "name", "parent_ref", "pid"]),
    ("x = procs WHERE ", 16, ["name", "pid"]),
    ("x = GET process WHERE pid = procs.", 28, ["procs.name", "procs.pid"]),
    ("DISP conns ATTR ", 16, ["dst_port", "src_port"]),
    ("GET ", 4, ["network-traffic", "process", "user-account"]),
    ("GET process FROM ", 17, ["conns", "procs", "{bundle_uri}"]),
])
def test_complete_from_the_session(kernel, bundle, code, start, includes):
    """Attributes, entity types and data sources as the Session knows them (a subset)."""
    reply = kernel.complete(code, len(code), reply=True, timeout=10)["content"]
    assert (reply["cursor_start"], reply["cursor_end"]) == (start, len(code))
    wanted = {w.replace("{bundle_uri}", f"file://{bundle}") for w in includes}
    assert wanted <= set(reply["matches"]), reply["matches"]


def test_complete_replaces_the_partial_word(kernel):
    reply = kernel.complete("DISP procs ATTR na", 18, reply=True, timeout=10)["content"]
    assert (reply["matches"], reply["cursor_start"], reply["cursor_end"]) == (["name"], 16, 18)


@pytest.mark.parametrize("case", kernel_cases("is_complete"), ids=lambda c: c["text"] or "(empty)")
def test_is_complete(kernel, case):
    kernel.is_complete(case["text"])
    reply = kernel.get_shell_msg(timeout=10)["content"]
    assert reply["status"] == case["status"]
    if case["status"] == "incomplete":
        assert reply["indent"] == "    "
