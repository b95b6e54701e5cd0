"""GET: entities of one type from a data source or a variable, matching a WHERE,
within START/STOP, at most LIMIT."""

from datetime import datetime

import pytest

from kestrel.errors import KestrelSemanticError, UnknownAttribute, UnknownEntityType
from kestrel.session import Session


def test_where_compares_and_combines(hunt, bundle, processes):
    """Each process object matching is one entity (processes have no unique id)."""
    hunt.execute(f"g_where = GET process FROM '{bundle}' WHERE name IN ('WMIC.exe', "
                 "'conhost.exe') AND pid > 9000 OR parent_ref.name = 'WD Discovery.exe'")
    want = sorted(p["pid"] for r, p in processes
                  if p["name"] in ("WMIC.exe", "conhost.exe") and p["pid"] > 9000
                  or r["objects"].get(p.get("parent_ref"), {}).get("name") == "WD Discovery.exe")
    assert len(want) > 6
    assert sorted(r["pid"] for r in hunt.get_variable("g_where", deref=False)) == want


def test_limit_keeps_that_many_matching_entities(hunt, bundle, processes):
    """LIMIT counts entities (5 svchost.exe processes in 704 records), each with all of
    its occurrences."""
    svchost = [p["pid"] for _, p in processes if p["name"] == "svchost.exe"]
    hunt.execute(f"g_three = GET process FROM '{bundle}' WHERE name = 'svchost.exe' LIMIT 3\n"
                 f"g_all = GET process FROM '{bundle}' WHERE name = 'svchost.exe' LIMIT 100000")
    three = [r["pid"] for r in hunt.get_variable("g_three", deref=False)]
    assert len(set(three)) == 3 and set(three) < set(svchost)
    assert sorted(three) == sorted(p for p in svchost if p in three)
    summary = hunt.variable_summary("g_all")
    assert (summary.entities, summary.occurrences) == (len(set(svchost)), len(svchost))


def test_start_is_inclusive_and_stop_exclusive(hunt, bundle, cmd):
    """START and STOP are two cmd.exe records' own timestamps: the first is in, the last out."""
    times = sorted({seen for _, seen, _ in cmd}, key=datetime.fromisoformat)
    start, stop = times[2], times[9]
    hunt.execute(f"g_window = GET process FROM '{bundle}' WHERE name = 'cmd.exe' "
                 f"START {start} STOP {stop}")
    inside = [datetime.fromisoformat(start) <= datetime.fromisoformat(seen)
              < datetime.fromisoformat(stop) for _, seen, _ in cmd]
    assert sorted(r["pid"] for r in hunt.get_variable("g_window", deref=False)) == sorted(
        p["pid"] for (_, _, p), keep in zip(cmd, inside) if keep)
    assert hunt.variable_summary("g_window").records == sum(inside) == 7


def test_from_a_variable_keeps_its_entities(hunt, processes):
    hunt.execute("g_wmic = GET process FROM allp WHERE name = 'WMIC.exe'")
    wmic = hunt.get_variable("g_wmic", deref=False)
    assert sorted(r["pid"] for r in wmic) == sorted(
        p["pid"] for _, p in processes if p["name"] == "WMIC.exe")
    assert {r["id"] for r in wmic} <= {r["id"] for r in hunt.get_variable("allp", deref=False)}


def test_addresses_are_one_entity_per_value(hunt, bundle, records):
    """An ipv4-addr is identified by its value, however many records hold it."""
    hunt.execute(f"g_ips = GET ipv4-addr FROM '{bundle}' WHERE value LIKE '192.168.1.1%'")
    values = [o["value"] for r in records for o in r["objects"].values()
              if o["type"] == "ipv4-addr" and o["value"].startswith("192.168.1.1")]
    assert len(values) > len(set(values)) > 1
    assert sorted(r["value"] for r in hunt.get_variable("g_ips")) == sorted(set(values))


def test_a_typo_in_a_where_is_an_error(shared_data):
    """An attribute neither STIX nor the stored data know is refused before the source is
    asked (#19), at the attribute, with the closest known one; x_ attributes are custom."""
    with Session() as session:
        statement = f"procs = GET process FROM '{shared_data}/doctored-1k.json' WHERE nme = 'a'"
        with pytest.raises(UnknownAttribute) as caught:
            session.execute(statement)
        assert caught.value.message == ('"nme" is not an attribute of process (process has no '
                                        '"nme" in STIX or in the stored data; custom attributes '
                                        "start with x_)")
        assert caught.value.hint == 'did you mean "name"?'
        assert caught.value.column == statement.index("nme") + 1
        assert session.get_variable_names() == []
        (summary,) = session.execute(
            f"procs = GET process FROM '{shared_data}/doctored-1k.json' WHERE x_custom = 1")
        assert summary.entities == 0


def test_an_empty_result_notes_stix_attributes_the_data_lacks(shared_data):
    """`cwd` is a STIX process property that no stored process has: a note, not an error."""
    with Session() as session:
        session.execute(f"all = GET process FROM '{shared_data}/doctored-1k.json'")
        (summary,) = session.execute(
            f"procs = GET process FROM '{shared_data}/doctored-1k.json' WHERE cwd = '/'")
    assert summary.entities == 0
    assert 'no stored process has "cwd": the data source may not send it' in summary.notes


def test_unknown_attribute_of_a_variable(hunt, process_attributes):
    """A WHERE on a variable names its attributes: a typo is an error at the attribute."""
    statement = "g_typo = GET process FROM procs WHERE pid > 1 AND nmae = 'cmd.exe'"
    with pytest.raises(UnknownAttribute) as caught:
        hunt.execute(statement)
    assert caught.value.message == ('"nmae" is not an attribute of procs (attributes: '
                                    f'{", ".join(process_attributes)})')
    assert caught.value.hint == 'did you mean "name"?'
    assert (caught.value.line, caught.value.column) == (1, statement.index("nmae") + 1)
    assert "g_typo" not in hunt.get_variable_names()


def test_unknown_entity_type(hunt, bundle):
    with pytest.raises(UnknownEntityType) as caught:
        hunt.execute(f"g_bad = GET proces FROM '{bundle}'")
    assert caught.value.message == 'unknown entity type "proces"'
    assert "process, file, network-traffic" in caught.value.hint
    assert "g_bad" not in hunt.get_variable_names()


def test_from_a_variable_of_another_type(hunt):
    with pytest.raises(KestrelSemanticError) as caught:
        hunt.execute("g_other = GET ipv4-addr FROM procs WHERE value = '10.0.0.1'")
    assert caught.value.message == "procs holds process entities, not ipv4-addr"


def test_a_time_range_missing_the_data_notes_its_span(shared_data, records):
    """LAST 5 MINUTES on 2019's data finds nothing, and says when the records are."""
    times = sorted(datetime.fromisoformat(r["first_observed"].replace("Z", "+00:00"))
                   for r in records)
    with Session() as session:
        (summary,) = session.execute(f"procs = GET process FROM '{shared_data}/doctored-1k.json'"
                                     " WHERE name = 'cmd.exe' LAST 5 MINUTES")
        assert summary.entities == 0
        (note,) = [n for n in summary.notes if n.startswith("the time range ")]
        assert note.endswith(f"holds none of the records of {shared_data}/doctored-1k.json: "
                             f"they span {_stix(times[0])} to {_stix(times[-1])}")
        (summary,) = session.execute(
            f"few = GET process FROM '{shared_data}/doctored-1k.json' WHERE name = 'no.exe' "
            "START 2019-11-16T00:00:00Z STOP 2019-11-17T00:00:00Z")
        assert not [n for n in summary.notes if n.startswith("the time range ")]


def _stix(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
