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


def parent_names(processes, names):
    """The parent's name (None: no parent) of each process named in `names`."""
    return [r["objects"][p["parent_ref"]]["name"] if "parent_ref" in p else None
            for r, p in processes if p["name"] in names]


def nulls_last(values, descending=False):
    return (sorted((v for v in values if v is not None), reverse=descending)
            + [v for v in values if v is None])


# their parents' names are lower-case: ordered alike under any collation
CHILDREN = ("conhost.exe", "WMIC.exe", "taskhost.exe", "taskeng.exe", "kdd")


@pytest.mark.parametrize("order, descending", [("ASC", False), ("DESC", True)])
def test_by_a_reference_attribute(hunt, processes, order, descending):
    """SORT BY parent_ref.name sorts by the parent's name (SQLite read the path as a
    string constant and left the order alone; PostgreSQL refused it); entities without a
    parent come last either way, on both stores (v1 left that to the database)."""
    name = f"s_parents_{order}"
    hunt.execute(f"s_kids_{order} = GET process FROM allp WHERE name IN {CHILDREN}\n"
                 f"{name} = SORT s_kids_{order} BY parent_ref.name {order}")
    want = nulls_last(parent_names(processes, CHILDREN), descending)
    assert None in want and len(set(want)) > 3
    assert [r["parent_ref.name"] for r in hunt.get_variable(name)] == want


def test_assignment_sorted_by_a_reference_attribute(hunt, processes):
    """LIMIT and OFFSET count entities (pid and name) in the order of their first row,
    each kept with all its rows: taskeng.exe's row without a parent comes with it."""
    hunt.execute(f"s_kids = GET process FROM allp WHERE name IN {CHILDREN}\n"
                 "s_first = s_kids SORT BY parent_ref.name LIMIT 9\n"
                 "s_last = s_kids SORT BY parent_ref.name DESC OFFSET 15")
    parents = {}
    for r, p in processes:
        if p["name"] in CHILDREN:
            parents.setdefault((p["pid"], p["name"]), []).append(
                r["objects"][p["parent_ref"]]["name"] if "parent_ref" in p else None)

    def entities(descending):  # by the first parent name in that order, none last
        named = [names for names in parents.values() if any(names)]
        first = max if descending else min
        return (sorted(named, key=lambda names: first(n for n in names if n),
                       reverse=descending) + [n for n in parents.values() if not any(n)])

    assert [r["parent_ref.name"] for r in hunt.get_variable("s_first")] == nulls_last(
        [n for names in entities(False)[:9] for n in names])
    assert [r["parent_ref.name"] for r in hunt.get_variable("s_last")] == nulls_last(
        [n for names in entities(True)[15:] for n in names], descending=True)
