"""Requests per client address (issue 10): a token bucket per address; past it 429 with
Retry-After and a problem, before any work; the machine itself and listed addresses are
not limited; the table of buckets cannot grow without end."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from dothi.api import ratelimit
from dothi.app import create_app
from dothi.settings import Settings

TYPES = "/ngsi-ld/v1/types"


def app_with(database_url: Callable[[str], str], **limits: object) -> TestClient:
    return TestClient(create_app(Settings(database_url=database_url("test"),
                                          context_fetch=False, **limits)))


def test_past_the_burst_a_client_waits(database_url: Callable[[str], str]) -> None:
    with app_with(database_url, rate_limit=0.5, rate_burst=3) as client:
        assert [client.get(TYPES).status_code for _ in range(3)] == [200, 200, 200]
        refused = client.post("/ngsi-ld/v1/entities", json={"id": "urn:x:1", "type": "T"})
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "2"
        assert refused.headers["x-content-type-options"] == "nosniff"
        assert refused.json()["type"] == "urn:dothi:errors:TooManyRequests"
        assert "0.5 requests a second" in refused.json()["detail"]
    with app_with(database_url) as client:  # nothing was written by the refused request
        assert client.get("/ngsi-ld/v1/entities/urn:x:1").status_code == 404


def test_exempt_addresses_and_no_limit(database_url: Callable[[str], str]) -> None:
    with app_with(database_url, rate_limit=1, rate_burst=1,
                  rate_exempt="127.0.0.1,testclient") as client:
        assert {client.get(TYPES).status_code for _ in range(20)} == {200}
    with app_with(database_url, rate_limit=0, rate_burst=1) as client:
        assert {client.get(TYPES).status_code for _ in range(20)} == {200}


def test_buckets_refill_and_are_forgotten_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    limiter = ratelimit.Buckets(rate=2, burst=2)
    assert [limiter.take("a", 0.0), limiter.take("a", 0.0)] == [0.0, 0.0]
    assert limiter.take("a", 0.0) == 0.5  # half a second to the next token
    assert limiter.take("a", 0.5) == 0.0  # refilled at 2 a second
    assert limiter.take("b", 0.5) == 0.0  # every address has its own bucket
    monkeypatch.setattr(ratelimit, "_PRUNE_AT", 3)
    for n in range(3):
        limiter.take(f"c{n}", 10.0)
    # At 10 s, a and b have been idle long enough to be full again: they are dropped.
    assert set(limiter._buckets) == {"c0", "c1", "c2"}
