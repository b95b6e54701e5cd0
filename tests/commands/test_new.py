"""NEW: a variable from literal data, a list of strings of a named type or a list of
objects (each with its "type", or of a named type)."""

import json

import pytest

from kestrel.errors import InvalidArgument, KestrelSyntaxError, UnknownEntityType

UNKNOWN_TYPE = ('the entity type is unknown: name it (NEW process [...], LOAD ... AS process) '
                'or give every object one "type"')


def test_strings_are_values_one_entity_each(hunt):
    """Addresses are identified by their value: a repeated one is one entity."""
    (summary,) = hunt.execute('n_ips = NEW ipv4-addr ["10.0.0.1", "10.0.0.2", "10.0.0.1"]')
    assert (summary.entity_type, summary.entities, summary.records) == ("ipv4-addr", 2, 0)
    assert sorted(r["value"] for r in hunt.get_variable("n_ips")) == ["10.0.0.1", "10.0.0.2"]


def test_process_strings_are_names(hunt):
    hunt.execute('n_names = NEW process ["cmd.exe", "reg.exe"]')
    assert sorted(r["name"] for r in hunt.get_variable("n_names")) == ["cmd.exe", "reg.exe"]


@pytest.mark.parametrize("typed", [True, False], ids=["with-type", "named-type"])
def test_objects_keep_their_attributes(hunt, typed):
    objects = [{"name": "evil.exe", "pid": 666, "command_line": "evil.exe -x 'a b'"},
               {"name": "good.exe", "pid": 7}]
    data = [{"type": "process", **o} for o in objects] if typed else objects
    name = f"n_objects_{typed}"
    (summary,) = hunt.execute(f"{name} = NEW {'' if typed else 'process '}{json.dumps(data)}")
    assert summary.entity_type == "process"
    got = [{k: r[k] for k in ("name", "pid", "command_line")}
           for r in hunt.get_variable(name, deref=False)]
    assert sorted(got, key=lambda r: r["pid"]) == sorted(
        ({"command_line": None, **o} for o in objects), key=lambda r: r["pid"])


def test_new_entities_are_a_variable_like_any(hunt):
    hunt.execute('n_two = NEW [{"type": "process", "name": "a.exe", "pid": 1}, '
                 '{"type": "process", "name": "b.exe", "pid": 2000}]\n'
                 "n_big = GET process FROM n_two WHERE pid > 1000\n"
                 "n_sorted = SORT n_two BY pid DESC")
    assert [r["name"] for r in hunt.get_variable("n_big")] == ["b.exe"]
    assert [r["pid"] for r in hunt.get_variable("n_sorted")] == [2000, 1]


@pytest.mark.parametrize("data, error, message", [
    ('[{"name": "x"}]', InvalidArgument, UNKNOWN_TYPE),
    ('["a", "b"]', InvalidArgument, UNKNOWN_TYPE),
    ('[{"type": "process", "name": "x"}, {"type": "file", "name": "y"}]', InvalidArgument,
     UNKNOWN_TYPE),
    ('process [{"type": "file", "name": "y"}]', InvalidArgument,
     "objects of another type than process"),
    ('nosuchtype ["a"]', UnknownEntityType, 'unknown entity type "nosuchtype"'),
    ("[]", KestrelSyntaxError, "NEW needs at least one entity"),
], ids=["no-type", "strings-no-type", "two-types", "other-type", "unknown-type", "empty"])
def test_refused(hunt, data, error, message):
    with pytest.raises(error) as caught:
        hunt.execute(f"n_bad = NEW {data}")
    assert caught.value.message == message
    assert "n_bad" not in hunt.get_variable_names()
