"""Every answer carries the security headers, whatever the API and whatever the outcome:
a page, JSON, a download, a problem (404, 405, 400) and a static file."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from dothi.app import SECURITY_HEADERS


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/-/health", 200),
    ("GET", "/", 200),
    ("GET", "/ogc/collections", 200),
    ("GET", "/opendata", 200),
    ("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Nothing:1", 404),
    ("DELETE", "/opendata/catalog", 405),
    ("GET", "/ngsi-ld/v1/entities?limit=nope&type=T", 400),
    ("GET", "/-/static/web/common.js", 200),
])
def test_every_answer_carries_the_security_headers(client: TestClient, method: str, path: str,
                                                   status: int) -> None:
    r = client.request(method, path)
    assert r.status_code == status, r.text
    for name, value in SECURITY_HEADERS:
        assert r.headers[name.decode()] == value.decode(), (path, name)
