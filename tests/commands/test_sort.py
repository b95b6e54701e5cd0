"""SORT: a variable's entities in the order of one attribute, ascending unless DESC."""

import pytest

from kestrel.errors import UnknownAttribute

# lower-case names: their order is the same under any collation a PostgreSQL server uses
NAMES = ("cmd.exe", "conhost.exe", "csrss.exe", "kdd", "svchost.exe", "wdsync.exe",
         "wmpnetwk.exe")


@pytest.mark.parametrize("order, descending", [("", False), ("ASC", False), ("DESC", True)])
def test_by_a_number(hunt, processes, order, descending):
    name = f"s_pid_{order or 'default'}"
    hunt.execute(f"{name} = SORT allp BY pid {order}")
    assert [r["pid"] for r in hunt.get_variable(name, deref=False)] == sorted(
        (p["pid"] for _, p in processes), reverse=descending)


def test_by_a_name_keeps_every_entity(hunt, processes):
    hunt.execute(f"s_few = GET process FROM allp WHERE name IN {NAMES}\n"
                 "s_names = SORT s_few BY name DESC")
    rows = hunt.get_variable("s_names", deref=False)
    assert [r["name"] for r in rows] == sorted(
        (p["name"] for _, p in processes if p["name"] in NAMES), reverse=True)
    assert sorted(r["id"] for r in rows) == sorted(
        r["id"] for r in hunt.get_variable("s_few", deref=False))


def test_unknown_attribute_suggests_one(hunt, process_attributes):
    with pytest.raises(UnknownAttribute) as caught:
        hunt.execute("s_bad = SORT allp BY nmae DESC")
    assert caught.value.message == ('"nmae" is not an attribute of allp (attributes: '
                                    f'{", ".join(process_attributes)})')
    assert caught.value.hint == 'did you mean "name"?'
    assert "s_bad" not in hunt.get_variable_names()
