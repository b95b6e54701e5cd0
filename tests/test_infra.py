"""Infrastructure checks: the PostgreSQL fixture serves queries and firepit stores work on both backends."""

import copy
import uuid

import firepit
import psycopg2
import pytest

BUNDLE = {
    "type": "bundle",
    "id": "bundle--8c9f4a8e-1b0e-4c1e-9a52-3d0c2b6f2a11",
    "spec_version": "2.0",  # STIX 2.0 style: SCOs inline under observed-data "objects"
    "objects": [
        {
            "type": "identity",
            "id": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff",
            "created": "2024-01-01T00:00:00.000Z",
            "modified": "2024-01-01T00:00:00.000Z",
            "name": "infra-test",
            "identity_class": "system",
        },
        {
            "type": "observed-data",
            "id": "observed-data--2b6ab8a1-0b1c-4f05-b2c1-9c8ce1a8f1d0",
            "created_by_ref": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff",
            "created": "2024-01-01T00:00:00.000Z",
            "modified": "2024-01-01T00:00:00.000Z",
            "first_observed": "2024-01-01T00:00:00.000Z",
            "last_observed": "2024-01-01T00:00:00.000Z",
            "number_observed": 1,
            "objects": {"0": {"type": "ipv4-addr", "value": "10.0.0.1"}},
        },
    ],
}


@pytest.mark.postgres
def test_postgres_answers(postgres_url):
    with psycopg2.connect(postgres_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
    conn.close()


def test_firepit_cache_extract_count(store_url):
    store = firepit.get_storage(store_url, "s" + uuid.uuid4().hex)
    try:
        store.cache("q1", [copy.deepcopy(BUNDLE)])  # cache() strips "objects" from the dicts it gets
        store.extract("ips", "ipv4-addr", "q1", "[ipv4-addr:value = '10.0.0.1']")
        assert store.count("ips") == 1
    finally:
        store.delete()
        store.close()
