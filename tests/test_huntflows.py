"""Huntflows as test data: ``tests/huntflows/NAME.hf`` run against ``NAME.expected.json``.

Each case runs twice (ids ``NAME-sqlite`` and ``NAME-postgresql``), in a fresh Session on
the ``store_url`` store with a unique session id, closed afterwards.

``NAME.hf``
    A huntflow.  The text ``{DATA}`` is replaced by the absolute path of the shared data
    folder (the ``shared_data`` fixture) and ``{TMP}`` by a fresh temporary directory
    (for SAVE/LOAD round trips).  A comment in it says how the expected values were
    computed (independently of Kestrel, with plain Python over the raw JSON).

``NAME.expected.json``: an object, every key optional::

    {
      "variables": {VAR: {"entity_type": "process",   # VariableSummary.entity_type
                          "records": 14,             # observations holding VAR's entities
                          "entities": 3,             # only where identity is by value
                          "distinct": {ATTR: [...]}}},  # sorted distinct non-null values of
                                                        # ATTR over session.get_variable(VAR)
                                                        # (dereferenced names: binary_ref.name)
      "tables": [{"columns": [...], "rows": [[...], ...], "total": N}, ...],
                 # one per DISP (each Table result), in order; rows as lists in column order
      "error": {"class": "VariableNotFound", "contains": "text"}
    }

With ``"error"``, the huntflow's last statement must sit alone on its last non-blank,
non-comment line: everything before it must run without error, the last statement must
raise a KestrelError of exactly that class whose text contains ``contains``, and the
variables (checked after the failure) must still be intact.
"""

import json
import pathlib
import uuid

import pytest

from kestrel.session import Session
from kestrel import errors as kerrors
from kestrel.results import Table

HERE = pathlib.Path(__file__).resolve().parent / "huntflows"
CASES = sorted(p.stem for p in HERE.glob("*.hf"))


def _split_last(text):
    """(everything before the last statement line, the last statement line)."""
    lines = text.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            return "\n".join(lines[:i]), lines[i]
    raise AssertionError("huntflow has no statement")


def _norm(value):
    """JSON-comparable form of a cell (numpy/pandas scalars to Python)."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        return value.item()
    return value


PARAMS = [pytest.param(name, backend, id=f"{name}-{backend}",
                       marks=[pytest.mark.postgres] if backend == "postgresql" else [])
          for name in CASES for backend in ("sqlite", "postgresql")]


@pytest.mark.parametrize("name, store_url", PARAMS, indirect=["store_url"])
def test_huntflow(name, store_url, shared_data, tmp_path):
    text = (HERE / f"{name}.hf").read_text()
    text = text.replace("{DATA}", str(shared_data)).replace("{TMP}", str(tmp_path))
    expected = json.loads((HERE / f"{name}.expected.json").read_text())

    session = Session(session_id=f"hf_{name}_{uuid.uuid4().hex[:12]}", store_path=store_url)
    try:
        results = []
        if "error" in expected:
            head, last = _split_last(text)
            if head.strip():
                results.extend(session.execute(head))
            cls = getattr(kerrors, expected["error"]["class"])
            with pytest.raises(kerrors.KestrelError) as info:
                session.execute(last)
            assert type(info.value) is cls, f"{type(info.value).__name__}: {info.value}"
            assert expected["error"].get("contains", "") in str(info.value)
        else:
            results.extend(session.execute(text))

        tables = [r for r in results if isinstance(r, Table)]
        if "tables" in expected:
            got = []
            for table in tables:
                d = table.to_dict()
                got.append({"columns": d["columns"],
                            "rows": [[_norm(row[c]) for c in d["columns"]] for row in d["rows"]],
                            "total": d["total"]})
            want = [{k: t[k] for k in ("columns", "rows", "total") if k in t}
                    for t in expected["tables"]]
            got = [{k: g[k] for k in w} for g, w in zip(got, want)]
            assert len(tables) == len(expected["tables"]), f"{len(tables)} tables"
            assert got == want

        for var, spec in expected.get("variables", {}).items():
            summary = session.variable_summary(var)
            for key in ("entity_type", "records", "entities"):
                if key in spec:
                    assert getattr(summary, key) == spec[key], f"{var}.{key}"
            if "distinct" in spec:
                rows = session.get_variable(var)
                for attr, values in spec["distinct"].items():
                    got_values = sorted({_norm(r.get(attr)) for r in rows
                                         if r.get(attr) is not None}, key=repr)
                    assert got_values == sorted(values, key=repr), f"{var}.{attr}"
    finally:
        session.close()
