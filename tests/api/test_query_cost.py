"""Query cost limits (issue 10): a client's regular expression that would backtrack
without end is stopped after 50 ms on one value and refused as TooComplexQuery (403),
on every path that runs one in Python (SQLite's q and idPattern, subscriptions'
matching); a write is never refused for a subscription's pattern; PostgreSQL stops any
statement past DOTHI_DATABASE_STATEMENT_TIMEOUT, also as TooComplexQuery."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from dothi.errors import TooComplexQuery
from dothi.store.postgres import PostgresStore

E = "/ngsi-ld/v1/entities"
RUNAWAY = "(a|aa)+$"  # on a run of a's that ends otherwise, Python's engine never finishes
LONG = "a" * 40 + "!"


def test_a_runaway_pattern_is_refused_and_writes_go_on(
        client: TestClient, database_url: Callable[[str], str]) -> None:
    road = {"id": f"urn:ngsi-ld:Road:{LONG}", "type": "Road",
            "name": {"type": "Property", "value": LONG}}
    assert client.post(E, json=road).status_code == 201
    sub = client.post("/ngsi-ld/v1/subscriptions", json={
        "type": "Subscription", "entities": [{"type": "Road", "idPattern": RUNAWAY}],
        "q": f'name~="{RUNAWAY}"', "notification": {"endpoint": {"uri": "http://127.0.0.1:9/"}}})
    assert sub.status_code == 201, sub.text
    sqlite = database_url("x").startswith("sqlite:")
    for params in ({"type": "Road", "q": f'name~="{RUNAWAY}"'},
                   {"type": "Road", "idPattern": RUNAWAY}):
        r = client.get(E, params=params)
        if sqlite:
            assert r.status_code == 403, r.text
            assert r.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/TooComplexQuery"
            assert "simplify it" in r.json()["detail"]
        else:  # PostgreSQL's own engine does not backtrack on this pattern
            assert r.status_code == 200 and r.json() == []
    # A pattern that finishes is answered as ever.
    r = client.get(E, params={"type": "Road", "q": 'name~="^a+!$"'})
    assert r.status_code == 200 and [e["id"] for e in r.json()] == [road["id"]]
    # The subscription's patterns do not stop writes: they match nothing.
    r = client.patch(f"{E}/{road['id']}/attrs",
                     json={"name": {"type": "Property", "value": LONG + LONG}})
    assert r.status_code == 204, r.text


def test_postgres_stops_a_statement_past_its_timeout(postgres_databases: object) -> None:
    if postgres_databases is None:
        pytest.skip("PostgreSQL is not reachable")
    url = postgres_databases.url("cost")  # type: ignore[attr-defined]
    store = PostgresStore(url, statement_timeout_s=0.05)
    try:
        with pytest.raises(TooComplexQuery, match="STATEMENT_TIMEOUT"), \
                store._connection() as conn:
            conn.execute("SELECT pg_sleep(2)")
        with store._connection() as conn:  # the connection serves again
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        store.close()
