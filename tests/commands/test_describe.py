"""DESCRIBE var.attr (Kestrel v1): count of values, unique values, the most frequent one and
its count, mean/min/max for numbers, on both stores.  Expected values from plain json."""

from collections import Counter

import pytest

from kestrel.errors import UnknownAttribute
from kestrel.results import Description


def _describe(hunt, text) -> Description:
    (result,) = hunt.execute(text)
    assert isinstance(result, Description)
    return result


def test_a_text_attribute(hunt, processes):
    names = Counter(p["name"] for _, p in processes if "name" in p)
    (top, freq), = names.most_common(1)
    result = _describe(hunt, "DESCRIBE allp.name")
    assert result.to_dict()["data"] == {"count": sum(names.values()), "unique": len(names),
                                        "top": top, "freq": freq}
    assert result.top_values == names.most_common(5)
    assert f"top     {top}" in result.to_text()


def test_a_number(hunt, processes):
    pids = [p["pid"] for _, p in processes if "pid" in p]
    data = _describe(hunt, "DESCRIBE allp.pid").to_dict()["data"]
    assert (data["count"], data["unique"], data["min"], data["max"]) == (
        len(pids), len(set(pids)), min(pids), max(pids))
    assert data["mean"] == pytest.approx(sum(pids) / len(pids))
    assert data["freq"] == Counter(pids).most_common(1)[0][1]


def test_through_a_reference(hunt, processes):
    parents = Counter(r["objects"][p["parent_ref"]].get("name") for r, p in processes
                      if "parent_ref" in p)
    parents.pop(None, None)
    data = _describe(hunt, "DESCRIBE allp.parent_ref.name").to_dict()["data"]
    assert (data["count"], data["unique"], data["freq"]) == (
        sum(parents.values()), len(parents), parents.most_common(1)[0][1])


def test_new_entities_as_v1_tests_them(hunt):
    hunt.execute('dnew = NEW [{"type": "process", "name": "cmd.exe", "pid": 123},'
                 ' {"type": "process", "name": "explorer.exe", "pid": 99},'
                 ' {"type": "process", "name": "explorer.exe", "pid": 200}]')
    assert _describe(hunt, "DESCRIBE dnew.name").to_dict()["data"] == {
        "count": 3, "unique": 2, "top": "explorer.exe", "freq": 2}
    data = _describe(hunt, "DESCRIBE dnew.pid").to_dict()["data"]
    assert (data["count"], data["min"], data["max"]) == (3, 99, 200)
    assert data["mean"] == pytest.approx((123 + 99 + 200) / 3)


def test_an_unknown_attribute_is_refused(hunt):
    with pytest.raises(UnknownAttribute) as caught:
        hunt.execute("DESCRIBE allp.nme")
    assert caught.value.message.startswith('"nme" is not an attribute of allp')
    assert caught.value.hint == 'did you mean "name"?'
