"""Fixtures for the analytics tests: sessions that register tests/analytics/sample_analytics.py
through the configuration, the demo bundle read with plain json, and (for the real-kernel
tests) the kernelspec in a temp prefix, as tests/kernel does."""

import json
import uuid

import pytest

from kestrel.session import Session

SAMPLES = {name: f"sample_analytics:{name}" for name in (
    "name_length", "parameters", "explode", "lazy", "half_bad", "stranger", "no_id",
    "dict_value", "other_variable", "not_a_result", "plotly_figure", "free_form")}


@pytest.fixture
def configured(tmp_path, monkeypatch):
    """KESTREL_CONFIG naming a file that registers the sample analytics."""
    path = tmp_path / "kestrel.yaml"
    path.write_text("analytics:\n" + "".join(f"  {k}: \"{v}\"\n" for k, v in SAMPLES.items()))
    monkeypatch.setenv("KESTREL_CONFIG", str(path))
    return path


@pytest.fixture
def session(configured, tmp_path):
    with Session(runtime_dir=str(tmp_path / "runtime")) as s:
        yield s


@pytest.fixture
def store_session(configured, store_url, tmp_path):
    """A session on SQLite and on PostgreSQL (and how to reopen it)."""
    session_id = f"analytics-{uuid.uuid4().hex[:12]}"

    def open_session():
        return Session(session_id=session_id, store_path=store_url,
                       runtime_dir=str(tmp_path / f"runtime-{uuid.uuid4().hex[:6]}"))

    with open_session() as s:
        yield s, open_session


@pytest.fixture(scope="session")
def bundle_path(shared_data):
    return shared_data / "doctored-1k.json"


@pytest.fixture(scope="session")
def observations(bundle_path):
    objects = json.loads(bundle_path.read_text())["objects"]
    return [o for o in objects if o["type"] == "observed-data"]


